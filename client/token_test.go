package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/client"
)

// The token endpoint's error answers ({error, error_description}, with Pyng-Trace-Id) reach the
// caller as an *client.Error with the status and traceId, as every other error answer does, so
// that pyng-partner (which reports an *client.Error with its traceId) can show them.
func TestTokenErrorIsAnError(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, _ *client.Site) {
		wrong := s.Partner
		wrong.ClientSecret = "sec_wrong"
		_, err := newClient(t, s, wrong).Site(s.Site.ID).WebhookEndpoints(context.Background())
		var apiErr *client.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("a wrong secret gave %v (%T), want a *client.Error", err, err)
		}
		if apiErr.StatusCode != http.StatusUnauthorized || !uuid.MatchString(apiErr.TraceID) {
			t.Errorf("a wrong secret gave %+v, want 401 with the answer's traceId", apiErr)
		}
		if !errors.Is(err, client.Code("invalid_client")) {
			t.Errorf("a wrong secret gave %v, not errors.Is invalid_client", err)
		}
		if !errors.Is(err, client.ErrNotSent) || errors.Is(err, client.ErrNoAnswer) {
			t.Errorf("a wrong secret gave %v; want ErrNotSent, not ErrNoAnswer: the request was not sent", err)
		}
	})
}

// A token endpoint that cannot be reached leaves the request unsent: its error is ErrNotSent,
// never ErrNoAnswer, which says that the server may have acted (pyng-partner would then tell a
// partner whose URL is wrong that its batch may have been accepted).
func TestAnUnreachableTokenEndpointLeavesTheRequestNotSent(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // its port now refuses connections
	c, err := client.New(client.Config{BaseURL: srv.URL, ClientID: "cli", ClientSecret: "sec", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Site("site_1").SubmitBatch(context.Background(), client.BatchRequest{BatchReference: "B1",
		Rows: []client.RowRequest{{RowReference: "R1", CustomerReference: "C1", Amount: 100}}})
	if !errors.Is(err, client.ErrNotSent) || errors.Is(err, client.ErrNoAnswer) {
		t.Errorf("a batch whose token endpoint refused the connection: %v; want ErrNotSent, not ErrNoAnswer", err)
	}
}

// A batch sent once without an answer, whose retry then gets no access token, may have been
// stored by the first attempt: the call's error is ErrNoAnswer, never ErrNotSent, which would
// tell the partner that nothing was sent, however the call ends: its retries spent, a Retry-After
// longer than it waits, or its context ended while it waits to retry. The token endpoint's error,
// and the context's, stay in the error.
func TestARetryWithoutATokenAfterAnAttemptSentIsNoAnswer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retries    int
		retryAfter string // of the token endpoint's 503
		cancel     bool   // the call's context ends 100 ms after the 503, while the call waits (250 ms or more)
		also       error  // what the error is too (errors.Is), if anything
	}{
		{name: "its retries spent", retries: 1},
		{name: "a Retry-After longer than it waits", retryAfter: "120"},
		{name: "its context ended while it waits", cancel: true, also: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var tokens, batches atomic.Int32
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if r.URL.Path == "/oauth2/token" {
					if tokens.Add(1) > 1 {
						if tc.cancel {
							time.AfterFunc(100*time.Millisecond, cancel)
						}
						if tc.retryAfter != "" {
							w.Header().Set("Retry-After", tc.retryAfter)
						}
						w.WriteHeader(http.StatusServiceUnavailable)
						fmt.Fprint(w, `{"error":"temporarily_unavailable"}`)
						return
					}
					// Expired at once: the retry asks for another.
					fmt.Fprint(w, `{"access_token":"tok","token_type":"Bearer","expires_in":1,"scope":""}`)
					return
				}
				batches.Add(1)
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					conn.Close()
				}
			}))
			t.Cleanup(srv.Close)
			c, err := client.New(client.Config{BaseURL: srv.URL, ClientID: "cli", ClientSecret: "sec", HTTPClient: srv.Client(), MaxRetries: tc.retries})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Site("site_1").SubmitBatch(ctx, client.BatchRequest{BatchReference: "B1",
				Rows: []client.RowRequest{{RowReference: "R1", CustomerReference: "C1", Amount: 100}}})
			var apiErr *client.Error
			if !errors.Is(err, client.ErrNoAnswer) || errors.Is(err, client.ErrNotSent) || batches.Load() != 1 || tokens.Load() < 2 {
				t.Errorf("%v after %d batch requests and %d token requests; want ErrNoAnswer, not ErrNotSent, after 1 and 2 or more", err, batches.Load(), tokens.Load())
			}
			if tc.also != nil && !errors.Is(err, tc.also) {
				t.Errorf("%v; want it %v too", err, tc.also)
			}
			if tc.also == nil && (!errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable) {
				t.Errorf("%v; want the token endpoint's *client.Error (503) in it", err)
			}
		})
	}
}

// A 429 slow_down of the token endpoint, with Retry-After, is retried as the client's
// Config.MaxRetries says every 429 is ("the server refused it before acting on it").
func TestTokenSlowDownIsRetried(t *testing.T) {
	t.Parallel()
	var tokens atomic.Int32
	const trace = "9ae2e340-b983-4274-b400-c974a9ab40ab"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Pyng-Trace-Id", trace)
		if r.URL.Path == "/oauth2/token" {
			if tokens.Add(1) == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprint(w, `{"error":"slow_down","error_description":"Too many token requests; try again after Retry-After seconds."}`)
				return
			}
			fmt.Fprint(w, `{"access_token":"tok","token_type":"Bearer","expires_in":3600,"scope":""}`)
			return
		}
		fmt.Fprintf(w, `{"data":[],"traceId":%q}`, trace)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(client.Config{BaseURL: srv.URL, ClientID: "cli", ClientSecret: "sec", HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Site("site_1").WebhookEndpoints(context.Background()); err != nil {
		t.Errorf("after a token 429 with Retry-After: 1: %v (after %d token requests), want the call to succeed on a retry", err, tokens.Load())
	}
}

// A token request whose connection broke is sent again, before any request, even one that is
// not sent again itself (an invitation): the request was not sent yet.
func TestTokenRequestWithoutAnswerIsRetried(t *testing.T) {
	t.Parallel()
	var tokens, invites atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/oauth2/token" {
			if tokens.Add(1) == 1 {
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					conn.Close()
				}
				return
			}
			fmt.Fprint(w, `{"access_token":"tok","token_type":"Bearer","expires_in":3600,"scope":""}`)
			return
		}
		invites.Add(1)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"data":{"customerReference":"C-1","signupUrl":"http://x/signup?token=t","expiresAt":1,"state":"invited"},"traceId":"t"}`)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(client.Config{BaseURL: srv.URL, ClientID: "cli", ClientSecret: "sec", HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Site("site_1").InviteCustomer(context.Background(), "C-1"); err != nil || invites.Load() != 1 {
		t.Errorf("after a token request without answer: %v after %d token requests and %d invitations, want the invitation once", err, tokens.Load(), invites.Load())
	}
}

// An access token the server answers as expired (401 auth:invalid-token) is replaced: the client
// renews its tokens itself. The client's clock and the server's need not agree to the second;
// here the server's runs ahead of it.
func TestExpiredTokenIsRenewed(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, site *client.Site) {
		ctx := context.Background()
		must(site.WebhookEndpoints(ctx))(t)
		s.Clock.Advance(61 * time.Minute) // the token, of an hour, is expired at the server
		if _, err := site.WebhookEndpoints(ctx); err != nil {
			t.Errorf("once the server reads the token as expired: %v, want the client to take a new token", err)
		}
	})
}
