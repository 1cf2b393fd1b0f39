package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Each method below is one route of the API under /billing/sites/{siteId}/.

// InviteCustomer mints a signup link for the customer (POST customers/invitations). It is not
// sent again after a 5xx: the invitation may have been minted.
func (s *Site) InviteCustomer(ctx context.Context, customerReference string) (*Invitation, error) {
	return s.Invite(ctx, InvitationRequest{CustomerReference: customerReference})
}

// Invite is InviteCustomer with the rest of an invitation: the partner's metadata.
func (s *Site) Invite(ctx context.Context, req InvitationRequest) (*Invitation, error) {
	return data[Invitation](s.send(ctx, request{method: http.MethodPost, path: []string{"customers", "invitations"}, body: req}))
}

// ListCustomersOptions filter and page a list of customers.
type ListCustomersOptions struct {
	// State keeps only the links in this state (all when empty).
	State LinkState
	// Limit is the page size, 1 to 100 (the server's default, 50, when 0).
	Limit int
	// Cursor starts the list at a page's NextCursor (at the start when empty).
	Cursor string
}

// CustomersPage reads one page of the site's customers, ordered by customerReference (GET
// customers).
func (s *Site) CustomersPage(ctx context.Context, opts ListCustomersOptions) (*Page[Link], error) {
	q := pageQuery(opts.Limit, opts.Cursor)
	if opts.State != "" {
		q.Set("state", string(opts.State))
	}
	return page[Link](s.send(ctx, request{method: http.MethodGet, path: []string{"customers"}, query: q, safe: true}))
}

// ListCustomers iterates over the site's customers, page after page, from opts.Cursor. It stops
// at the first error, which it yields.
func (s *Site) ListCustomers(ctx context.Context, opts ListCustomersOptions) iter.Seq2[Link, error] {
	return list(opts.Cursor, func(cursor string) (*Page[Link], error) {
		o := opts // a copy: ranges over the iterator may run at once
		o.Cursor = cursor
		return s.CustomersPage(ctx, o)
	})
}

// GetCustomer reads the customer's current link (GET customers/{customerReference}).
func (s *Site) GetCustomer(ctx context.Context, customerReference string) (*Link, error) {
	return data[Link](s.send(ctx, request{method: http.MethodGet, path: []string{"customers", customerReference}, safe: true}))
}

// RevokeCustomer revokes the customer's link (POST customers/{customerReference}/revoke).
func (s *Site) RevokeCustomer(ctx context.Context, customerReference string) (*Link, error) {
	return data[Link](s.send(ctx, request{method: http.MethodPost, path: []string{"customers", customerReference, "revoke"}}))
}

// SubmitBatch submits a batch of debits (POST batches). The submission is idempotent on its
// batchReference, so it is sent again after a 429 or 5xx; the receipt of a replay has Replayed.
func (s *Site) SubmitBatch(ctx context.Context, batch BatchRequest) (*BatchReceipt, error) {
	a, err := s.send(ctx, request{method: http.MethodPost, path: []string{"batches"}, body: batch, safe: true})
	receipt, err := data[BatchReceipt](a, err)
	if err != nil {
		return nil, err
	}
	receipt.Replayed = a.header.Get("Idempotent-Replayed") == "true"
	return receipt, nil
}

// ListBatchesOptions page a list of batches.
type ListBatchesOptions struct {
	// Limit is the page size, 1 to 100 (the server's default, 50, when 0).
	Limit int
	// Cursor starts the list at a page's NextCursor (at the start when empty).
	Cursor string
}

// BatchesPage reads one page of the site's batches, newest first (GET batches).
func (s *Site) BatchesPage(ctx context.Context, opts ListBatchesOptions) (*Page[Batch], error) {
	q := pageQuery(opts.Limit, opts.Cursor)
	return page[Batch](s.send(ctx, request{method: http.MethodGet, path: []string{"batches"}, query: q, safe: true}))
}

// ListBatches iterates over the site's batches, page after page, from opts.Cursor. It stops at
// the first error, which it yields.
func (s *Site) ListBatches(ctx context.Context, opts ListBatchesOptions) iter.Seq2[Batch, error] {
	return list(opts.Cursor, func(cursor string) (*Page[Batch], error) {
		o := opts
		o.Cursor = cursor
		return s.BatchesPage(ctx, o)
	})
}

// GetBatchOptions filter the rows of a batch.
type GetBatchOptions struct {
	// RowState keeps only the rows in this state (the summary still counts every row).
	RowState RowState
}

func (o GetBatchOptions) query() url.Values {
	q := url.Values{}
	if o.RowState != "" {
		q.Set("rowState", string(o.RowState))
	}
	return q
}

// GetBatch reads the batch with its summary and rows (GET batches/{batchReference}).
func (s *Site) GetBatch(ctx context.Context, batchReference string, opts GetBatchOptions) (*BatchDetail, error) {
	return data[BatchDetail](s.send(ctx, request{method: http.MethodGet, path: []string{"batches", batchReference}, query: opts.query(), safe: true}))
}

// GetBatchCSV reads the batch's rows as CSV (RFC 4180), for reconciliation in a spreadsheet.
func (s *Site) GetBatchCSV(ctx context.Context, batchReference string, opts GetBatchOptions) ([]byte, error) {
	a, err := s.send(ctx, request{method: http.MethodGet, path: []string{"batches", batchReference}, query: opts.query(), accept: "text/csv", safe: true})
	if err != nil {
		return nil, err
	}
	return a.body, nil
}

// AwaitBatch reads the batch every interval (every second when interval is 0 or less) until it
// is completed, and returns it then. A read that fails in a way that may pass (Temporary: no
// answer, a 429 or a 5xx, once the client's own retries are spent) does not end the wait: the
// batch is read again after the interval, or after the answer's Retry-After when that is longer.
// A read refused (a 4xx other than 429) ends the wait at once, and so does the end of ctx: the
// error is then ErrOutcomeUnknown, and wraps the refusal or ctx.Err() (errors.Is, errors.As). The
// batch executes all the same: do not take that error for a batch not made. A 404 (no such
// batch: it was not accepted, or was purged after 90 days) is returned as it is.
func (s *Site) AwaitBatch(ctx context.Context, batchReference string, interval time.Duration) (*BatchDetail, error) {
	return s.AwaitBatchProgress(ctx, batchReference, interval, nil)
}

// AwaitBatchProgress is AwaitBatch that calls progress, when not nil, after each read that does
// not end the wait unanswered: with the batch read (the completed one included), or with the
// failure that it reads again after.
func (s *Site) AwaitBatchProgress(ctx context.Context, batchReference string, interval time.Duration,
	progress func(*BatchDetail, error)) (*BatchDetail, error) {
	if interval <= 0 {
		// Not at once: reading without a pause would spend the API client's rate limit, which
		// its other calls share, until the batch completes.
		interval = time.Second
	}
	for {
		wait := interval
		b, err := s.GetBatch(ctx, batchReference, GetBatchOptions{})
		if err != nil {
			var apiErr *Error
			switch {
			case ctx.Err() != nil:
				return nil, &outcomeUnknownError{batchReference: batchReference, cause: ctx.Err(), lastFailure: err}
			case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound:
				return nil, err
			case !Temporary(err):
				return nil, &outcomeUnknownError{batchReference: batchReference, cause: err}
			case apiErr != nil: // a 429 or 5xx, found by the As above
				wait = max(wait, apiErr.RetryAfter)
			}
		}
		if progress != nil {
			progress(b, err)
		}
		if err == nil && b.State == BatchCompleted {
			return b, nil
		}
		select {
		case <-ctx.Done():
			return nil, &outcomeUnknownError{batchReference: batchReference, cause: ctx.Err(), lastFailure: err}
		case <-time.After(wait):
		}
	}
}

// SimulateSignup completes the customer's active invitation as if the customer had signed up
// (sandbox only; POST sandbox/customers/{customerReference}/signup).
func (s *Site) SimulateSignup(ctx context.Context, customerReference string) (*Link, error) {
	return data[Link](s.send(ctx, request{method: http.MethodPost, path: []string{"sandbox", "customers", customerReference, "signup"}}))
}

// SimulateCustomerRevocation revokes the customer's link as if the customer had done it
// (sandbox only; POST sandbox/customers/{customerReference}/customer-revocation).
func (s *Site) SimulateCustomerRevocation(ctx context.Context, customerReference string) (*Link, error) {
	return data[Link](s.send(ctx, request{method: http.MethodPost, path: []string{"sandbox", "customers", customerReference, "customer-revocation"}}))
}

// SimulateDeadline fails the batch's open rows as if its 24-hour deadline had passed, and
// returns the batch (sandbox only; POST sandbox/batches/{batchReference}/deadline). Repeating it
// changes nothing, so it is sent again after a 5xx.
func (s *Site) SimulateDeadline(ctx context.Context, batchReference string) (*BatchDetail, error) {
	return data[BatchDetail](s.send(ctx, request{method: http.MethodPost, path: []string{"sandbox", "batches", batchReference, "deadline"}, safe: true}))
}

// ListEventsOptions filter and page the events list.
type ListEventsOptions struct {
	// After starts the list after the event with this eventId (at the oldest event of the last
	// 30 days when empty).
	After string
	// Type keeps only the events of this type (all when empty).
	Type EventType
	// Limit is the page size, 1 to 100 (the server's default, 50, when 0).
	Limit int
}

// EventsPage reads one page of the site's events, oldest first (GET events). Its NextCursor is
// the eventId to pass as After for the next page.
func (s *Site) EventsPage(ctx context.Context, opts ListEventsOptions) (*Page[Event], error) {
	q := pageQuery(opts.Limit, "")
	if opts.After != "" {
		q.Set("after", opts.After)
	}
	if opts.Type != "" {
		q.Set("type", string(opts.Type))
	}
	return page[Event](s.send(ctx, request{method: http.MethodGet, path: []string{"events"}, query: q, safe: true}))
}

// ListEvents iterates over the site's events, oldest first, after opts.After, page after page,
// up to the newest. It stops at the first error, which it yields. To follow the events as they
// come, read on later with After set to the eventId of the last event read. Events are kept 30
// days: once that event is purged, the list refuses it (400 CodeInvalidField, Target "after");
// read on from the start of the list (After empty), skipping the events already read (as
// pyng-partner events tail does).
func (s *Site) ListEvents(ctx context.Context, opts ListEventsOptions) iter.Seq2[Event, error] {
	return list(opts.After, func(after string) (*Page[Event], error) {
		o := opts
		o.After = after
		return s.EventsPage(ctx, o)
	})
}

// CreateWebhookEndpoint adds an endpoint the site's events are sent to (POST
// webhook-endpoints). The answer carries the endpoint's secret, shown this once.
func (s *Site) CreateWebhookEndpoint(ctx context.Context, endpoint WebhookEndpointRequest) (*WebhookEndpointWithSecret, error) {
	return data[WebhookEndpointWithSecret](s.send(ctx, request{method: http.MethodPost, path: []string{"webhook-endpoints"}, body: endpoint}))
}

// WebhookEndpoints lists the site's endpoints (at most 16), oldest first, without their secrets
// (GET webhook-endpoints).
func (s *Site) WebhookEndpoints(ctx context.Context) ([]WebhookEndpoint, error) {
	p, err := page[WebhookEndpoint](s.send(ctx, request{method: http.MethodGet, path: []string{"webhook-endpoints"}, safe: true}))
	if err != nil {
		return nil, err
	}
	return p.Items, nil
}

// GetWebhookEndpoint reads an endpoint, without its secret (GET webhook-endpoints/{endpointId}).
func (s *Site) GetWebhookEndpoint(ctx context.Context, endpointID string) (*WebhookEndpoint, error) {
	return data[WebhookEndpoint](s.send(ctx, request{method: http.MethodGet, path: []string{"webhook-endpoints", endpointID}, safe: true}))
}

// UpdateWebhookEndpoint changes the fields of the endpoint that update sets (PATCH
// webhook-endpoints/{endpointId}). Setting them again changes nothing, so it is sent again after
// a 5xx.
func (s *Site) UpdateWebhookEndpoint(ctx context.Context, endpointID string, update WebhookEndpointUpdate) (*WebhookEndpoint, error) {
	return data[WebhookEndpoint](s.send(ctx, request{method: http.MethodPatch, path: []string{"webhook-endpoints", endpointID}, body: update, safe: true}))
}

// DeleteWebhookEndpoint deletes the endpoint and its deliveries, and returns the endpoint as it
// was (DELETE webhook-endpoints/{endpointId}).
func (s *Site) DeleteWebhookEndpoint(ctx context.Context, endpointID string) (*WebhookEndpoint, error) {
	return data[WebhookEndpoint](s.send(ctx, request{method: http.MethodDelete, path: []string{"webhook-endpoints", endpointID}}))
}

// RotateWebhookSecret gives the endpoint a new secret, returned this once (POST
// webhook-endpoints/{endpointId}/secret-rotation). For 24 hours deliveries are signed with both
// the new and the previous secret. It is not sent again after a 5xx: the secret may have turned.
func (s *Site) RotateWebhookSecret(ctx context.Context, endpointID string) (*WebhookEndpointWithSecret, error) {
	return data[WebhookEndpointWithSecret](s.send(ctx, request{method: http.MethodPost, path: []string{"webhook-endpoints", endpointID, "secret-rotation"}}))
}

// ListDeliveriesOptions page a list of deliveries.
type ListDeliveriesOptions struct {
	// Limit is the page size, 1 to 100 (the server's default, 50, when 0).
	Limit int
	// Cursor starts the list at a page's NextCursor (at the newest when empty).
	Cursor string
}

// DeliveriesPage reads one page of the endpoint's deliveries with their attempts, newest first
// (GET webhook-endpoints/{endpointId}/deliveries).
func (s *Site) DeliveriesPage(ctx context.Context, endpointID string, opts ListDeliveriesOptions) (*Page[Delivery], error) {
	q := pageQuery(opts.Limit, opts.Cursor)
	return page[Delivery](s.send(ctx, request{method: http.MethodGet, path: []string{"webhook-endpoints", endpointID, "deliveries"}, query: q, safe: true}))
}

// ListDeliveries iterates over the endpoint's deliveries, newest first, page after page, from
// opts.Cursor. It stops at the first error, which it yields.
func (s *Site) ListDeliveries(ctx context.Context, endpointID string, opts ListDeliveriesOptions) iter.Seq2[Delivery, error] {
	return list(opts.Cursor, func(cursor string) (*Page[Delivery], error) {
		o := opts
		o.Cursor = cursor
		return s.DeliveriesPage(ctx, endpointID, o)
	})
}

// RetryDelivery makes another attempt of the delivery now, and returns it as queued (POST
// webhook-endpoints/{endpointId}/deliveries/{deliveryId}/retry). The endpoint must be enabled.
func (s *Site) RetryDelivery(ctx context.Context, endpointID, deliveryID string) (*Delivery, error) {
	return data[Delivery](s.send(ctx, request{method: http.MethodPost, path: []string{"webhook-endpoints", endpointID, "deliveries", deliveryID, "retry"}}))
}

// SimulateWebhookTest sends a webhook.test event, whose data is the endpoint, to this endpoint
// alone, signed as every delivery is, and returns its delivery (sandbox only; POST
// sandbox/webhook-endpoints/{endpointId}/test).
func (s *Site) SimulateWebhookTest(ctx context.Context, endpointID string) (*Delivery, error) {
	return data[Delivery](s.send(ctx, request{method: http.MethodPost, path: []string{"sandbox", "webhook-endpoints", endpointID, "test"}}))
}

// Page is one page of a list. NextCursor reads the next page; it is empty on the last.
type Page[T any] struct {
	Items      []T    `json:"data"`
	NextCursor string `json:"nextCursor,omitempty"`
	TraceID    string `json:"traceId"`
}

// page decodes a page of a list.
func page[T any](a *answer, err error) (*Page[T], error) {
	if err != nil {
		return nil, err
	}
	var p Page[T]
	if err := json.Unmarshal(a.body, &p); err != nil {
		return nil, fmt.Errorf("pyng client: the answer is not a page: %w", err)
	}
	return &p, nil
}

// pageQuery is the query of a page.
func pageQuery(limit int, cursor string) url.Values {
	q := url.Values{}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	return q
}

// list iterates over the items of a list, reading its pages with read from start on. Each range
// over it starts at start again, so that the same iterator may be ranged over twice, or by two
// goroutines at once. A page that would send it round in circles ends it with an error: one whose
// nextCursor it has read from already (or started from), or one that is empty but names a next
// page (the API gives a next page only after a full one; reading on from an empty page makes no
// progress, and a server that answered so with a new cursor each time would never end).
func list[T any](start string, read func(cursor string) (*Page[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		cursor := start
		readFrom := map[string]bool{cursor: true}
		for {
			p, err := read(cursor)
			if err != nil {
				yield(zero, err)
				return
			}
			for _, item := range p.Items {
				if !yield(item, nil) {
					return
				}
			}
			switch {
			case p.NextCursor == "":
				return
			case len(p.Items) == 0:
				yield(zero, fmt.Errorf("pyng client: the page read from %q is empty but names a next page (%q); stopped, to not read pages for ever", cursor, p.NextCursor))
				return
			case readFrom[p.NextCursor]:
				yield(zero, fmt.Errorf("pyng client: the page read from %q names %q as the next page, which was read already; stopped, to not read pages for ever", cursor, p.NextCursor))
				return
			}
			cursor = p.NextCursor
			readFrom[cursor] = true
		}
	}
}
