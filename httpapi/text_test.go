package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
)

// TestControlCharactersAndInvalidUTF8AreRefusedOnEachEngine sends NUL, other control characters
// and invalid UTF-8 in every string a partner sends (body members, path segments, query
// parameters, the client's credentials): each engine answers with the same client error, never
// a 500 (a PostgreSQL text cannot hold NUL), and stores nothing.
func TestControlCharactersAndInvalidUTF8AreRefusedOnEachEngine(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		site := "/billing/sites/" + p.site
		created := s.Do(t, apptest.Request{Method: http.MethodPost, Path: site + "/webhook-endpoints", Token: p.token,
			Body: `{"url":"https://example.com/hook","eventTypes":["customer.linked"]}`})
		if created.Status != http.StatusCreated {
			t.Fatalf("create endpoint: %d %s", created.Status, created.Body)
		}
		var body struct {
			Data struct {
				EndpointID string `json:"endpointId"`
			}
		}
		created.JSON(t, &body)
		endpoint := body.Data.EndpointID
		if endpoint == "" {
			t.Fatalf("no endpointId in %s", created.Body)
		}
		for _, bad := range []struct{ name, json, raw string }{
			{"NUL", `\u0000`, "\x00"},
			{"an escape", `\u001b`, "\x1b"},
			{"invalid UTF-8", "\xff", "\xff"},
		} {
			for _, tt := range []struct {
				name   string
				method string
				path   string
				body   string
				want   int
			}{
				{"invitation's customerReference", http.MethodPost, site + "/customers/invitations", `{"customerReference":"A` + bad.json + `"}`, http.StatusBadRequest},
				{"customerReference in the path", http.MethodGet, site + "/customers/A" + url.PathEscape(bad.raw), "", http.StatusNotFound},
				{"customerReference of a revocation", http.MethodPost, site + "/customers/A" + url.PathEscape(bad.raw) + "/revoke", "", http.StatusNotFound},
				{"state filter of the customers list", http.MethodGet, site + "/customers?state=" + url.QueryEscape("linked"+bad.raw), "", http.StatusBadRequest},
				{"cursor of the customers list", http.MethodGet, site + "/customers?cursor=" + url.QueryEscape("A"+bad.raw), "", http.StatusBadRequest},
				{"batchReference", http.MethodPost, site + "/batches", `{"batchReference":"B` + bad.json + `","rows":[{"rowReference":"R1","customerReference":"C1","amount":100}]}`, http.StatusBadRequest},
				{"rowReference", http.MethodPost, site + "/batches", `{"batchReference":"B1","rows":[{"rowReference":"R` + bad.json + `","customerReference":"C1","amount":100}]}`, http.StatusBadRequest},
				{"row's customerReference", http.MethodPost, site + "/batches", `{"batchReference":"B1","rows":[{"rowReference":"R1","customerReference":"C` + bad.json + `","amount":100}]}`, http.StatusBadRequest},
				{"batchReference in the path", http.MethodGet, site + "/batches/B" + url.PathEscape(bad.raw), "", http.StatusNotFound},
				{"type filter of the events list", http.MethodGet, site + "/events?type=" + url.QueryEscape("customer.linked"+bad.raw), "", http.StatusBadRequest},
				{"after cursor of the events list", http.MethodGet, site + "/events?after=" + url.QueryEscape("evt_"+bad.raw), "", http.StatusBadRequest},
				{"after cursor of the events list alone", http.MethodGet, site + "/events?after=" + url.QueryEscape(bad.raw), "", http.StatusBadRequest},
				{"webhook endpoint's url", http.MethodPost, site + "/webhook-endpoints", `{"url":"https://example.com/` + bad.json + `","eventTypes":["customer.linked"]}`, http.StatusBadRequest},
				{"webhook endpoint's event type", http.MethodPost, site + "/webhook-endpoints", `{"url":"https://example.com/hook","eventTypes":["customer.linked` + bad.json + `"]}`, http.StatusBadRequest},
				{"endpointId in the path", http.MethodGet, site + "/webhook-endpoints/we_" + url.PathEscape(bad.raw), "", http.StatusNotFound},
				{"deliveryId of a retry", http.MethodPost, site + "/webhook-endpoints/" + endpoint + "/deliveries/dlv_" + url.PathEscape(bad.raw) + "/retry", "", http.StatusNotFound},
				{"siteId in the path", http.MethodGet, "/billing/sites/site_" + url.PathEscape(bad.raw) + "/customers", "", http.StatusNotFound},
			} {
				t.Run(tt.name+" with "+bad.name, func(t *testing.T) {
					t.Parallel()
					r := s.Do(t, apptest.Request{Method: tt.method, Path: tt.path, Token: p.token, Body: tt.body})
					if r.Status != tt.want {
						t.Fatalf("status %d, want %d: %s", r.Status, tt.want, r.Body)
					}
				})
			}
		}
		t.Run("nothing was stored", func(t *testing.T) {
			t.Parallel()
			links, _, err := s.Service.Links(t.Context(), billing.Site{ID: p.site}, billing.LinkFilter{Limit: 10})
			if err != nil || len(links) != 0 {
				t.Errorf("the site has %d customers (%v), want none", len(links), err)
			}
		})
		t.Run("client credentials with NUL or invalid UTF-8 are refused", func(t *testing.T) {
			t.Parallel()
			for _, id := range []string{p.p.ClientID + "\x00", "cli_\xff", strings.Repeat("\x00", 8)} {
				form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {p.p.ClientSecret}}
				r := s.Do(t, apptest.Request{Method: http.MethodPost, Path: "/oauth2/token", Body: form.Encode(),
					Header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}})
				if r.Status != http.StatusUnauthorized && r.Status != http.StatusBadRequest {
					t.Errorf("client_id %q: status %d, want 400 or 401: %s", id, r.Status, r.Body)
				}
			}
		})
	})
}
