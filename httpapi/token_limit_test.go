package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
)

// TestTokenEndpointIsRateLimitedPerClientAndPerAddress checks the limits of POST /oauth2/token
// at 2 requests a minute: per client id whatever the address, per remote address whatever the
// client (unknown clients and wrong secrets count too), answered 429 slow_down in the endpoint's
// own error format with Retry-After; a refused request takes nothing, and the buckets fill on the
// server's clock.
func TestTokenEndpointIsRateLimitedPerClientAndPerAddress(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		addresses := 0
		// from is the server as seen from a loopback address no other request of the test uses.
		from := func() *apptest.Server {
			addresses++
			other := *s
			other.HTTP = s.From(t, fmt.Sprintf("127.0.0.%d", addresses+1))
			return &other
		}
		ask := func(from *apptest.Server, id, secret string) *apptest.Response {
			return from.Do(t, apptest.Request{Method: http.MethodPost, Path: "/oauth2/token", Body: "grant_type=client_credentials",
				Header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": basic(id, secret)}})
		}
		wantIssued := func(r *apptest.Response) {
			t.Helper()
			wantStatus(t, r, http.StatusOK)
		}
		wantSlowDown := func(r *apptest.Response, retryAfter string) {
			t.Helper()
			wantStatus(t, r, http.StatusTooManyRequests)
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			r.JSON(t, &body)
			if body.Error != "slow_down" || body.Description == "" {
				t.Errorf("body = %s, want error slow_down with a description", r.Body)
			}
			if got := r.Header.Get("Retry-After"); got != retryAfter {
				t.Errorf("Retry-After = %q, want %s", got, retryAfter)
			}
			if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
				t.Errorf("Cache-Control %q, Pragma %q; want no-store, no-cache", r.Header.Get("Cache-Control"), r.Header.Get("Pragma"))
			}
		}
		a, b, c, d := s.Partner, s.NewPartner(t, billing.AllScopes...), s.NewPartner(t, billing.AllScopes...), s.NewPartner(t, billing.AllScopes...)

		t.Run("a client id gets 2 tokens a minute from any address", func(t *testing.T) {
			wantIssued(ask(from(), a.ClientID, a.ClientSecret))
			wantIssued(ask(from(), a.ClientID, a.ClientSecret))
			wantSlowDown(ask(from(), a.ClientID, a.ClientSecret), "30")
			wantIssued(ask(from(), b.ClientID, b.ClientSecret)) // another client is not held back
		})
		t.Run("an address gets 2 token requests a minute whatever the client", func(t *testing.T) {
			one := from()
			wantIssued(ask(one, c.ClientID, c.ClientSecret))
			wantStatus(t, ask(one, "cli_doesnotexist", "sec_guess"), http.StatusUnauthorized)
			wantSlowDown(ask(one, d.ClientID, d.ClientSecret), "30")
			wantIssued(ask(from(), d.ClientID, d.ClientSecret)) // the client is not held back elsewhere
		})
		t.Run("wrong secrets count against the client id's wrong secrets, never its tokens", func(t *testing.T) {
			e := s.NewPartner(t, billing.AllScopes...)
			wantStatus(t, ask(from(), e.ClientID, "sec_guess"), http.StatusUnauthorized)
			wantStatus(t, ask(from(), e.ClientID, "sec_guess"), http.StatusUnauthorized)
			wantSlowDown(ask(from(), e.ClientID, "sec_guess"), "30")
			wantIssued(ask(from(), e.ClientID, e.ClientSecret)) // the partner is not locked out
		})
		t.Run("the buckets fill on the server's clock, and a refusal takes nothing", func(t *testing.T) {
			s.Clock.Advance(30*time.Second - time.Millisecond)
			wantSlowDown(ask(from(), a.ClientID, a.ClientSecret), "1")
			s.Clock.Advance(time.Millisecond)
			r := ask(from(), a.ClientID, a.ClientSecret)
			wantIssued(r)
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			r.JSON(t, &tok)
			if tok.AccessToken == "" {
				t.Errorf("no access token in %s", r.Body)
			}
			wantSlowDown(ask(from(), a.ClientID, a.ClientSecret), "30")
		})
	}, apptest.Options{TokenRateLimit: 2})
}

// TestTokenEndpointIsNotLimitedWithoutALimit checks that a limit of 0 sets none.
func TestTokenEndpointIsNotLimitedWithoutALimit(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		for range 20 {
			s.Token(t, s.Partner)
		}
	})
}
