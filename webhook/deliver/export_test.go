package deliver

import "context"

// SendUnchecked is Send without webhook.CheckDestination, so that the tests reach the check every
// connection gets when it is made, which a URL that CheckDestination accepts may still meet (a
// name that resolves to a private address).
func SendUnchecked(ctx context.Context, c *Client, r Request) Result {
	return c.send(ctx, r, false)
}
