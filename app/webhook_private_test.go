package app_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"

	"github.com/pyng/receivables/client"
	"github.com/pyng/receivables/dbtest"
)

// A sandbox that others reach (a public URL of another host) takes no webhook URL of a loopback or
// private address unless its operator says so, as a server outside the sandbox: its deliveries,
// their statuses and errors listed, would let any partner probe the network it runs in. A sandbox
// on the developer's machine takes them, for the developer's receivers.
func TestASandboxOthersReachRefusesPrivateWebhookURLs(t *testing.T) {
	const loopback, private = "http://127.0.0.1:9/hook", "https://10.1.2.3/hook"
	for _, tc := range []struct {
		name     string
		settings map[string]string
		refused  bool
	}{
		{"on this machine", nil, false},
		{"reached by others", map[string]string{"public-url": "https://sandbox.example.com"}, true},
		{"reached by others, allowed by its operator", map[string]string{"public-url": "https://sandbox.example.com",
			"webhook-private-destinations": "true"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			settings := map[string]string{"database-url": dbtest.URL(t, "sqlite"), "encryption-key": dbtest.KeyRing}
			for k, v := range tc.settings {
				settings[k] = v
			}
			r := runServer(t, settings, slog.New(slog.DiscardHandler))
			partner, err := client.New(client.Config{BaseURL: r.base, ClientID: r.banner(t, `client id\s+(\S+)`),
				ClientSecret: r.banner(t, `client secret\s+(\S+)`)})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			site := partner.Site(r.banner(t, `site\s+(\S+)`))
			for _, url := range []string{loopback, private} {
				_, err := site.CreateWebhookEndpoint(ctx, client.WebhookEndpointRequest{URL: url})
				var refusal *client.Error
				switch {
				case !tc.refused && err != nil:
					t.Errorf("adding %s: %v, want it added", url, err)
				case tc.refused && (!errors.As(err, &refusal) || refusal.StatusCode != http.StatusBadRequest ||
					refusal.Code != client.CodeWebhookInvalidURL || refusal.Target != "url"):
					t.Errorf("adding %s: %v, want 400 %s on url", url, err, client.CodeWebhookInvalidURL)
				}
			}
			endpoints, err := site.WebhookEndpoints(ctx)
			if want := map[bool]int{true: 0, false: 2}[tc.refused]; err != nil || len(endpoints) != want {
				t.Errorf("the site's endpoints: %d (%v), want %d", len(endpoints), err, want)
			}
		})
	}
}
