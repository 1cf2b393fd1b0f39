package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"testing"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/client"
)

// A call made with a context from WithResponse records its answer: the status, the traceId of a
// success (which the data alone does not carry) and of an error (the *Error's), and the header.
func TestWithResponseRecordsTheAnswer(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, site *client.Site) {
		ctx := context.Background()
		var invited client.Response
		must(site.InviteCustomer(client.WithResponse(ctx, &invited), "ACME-001"))(t)
		if invited.StatusCode != http.StatusCreated || !uuid.MatchString(invited.TraceID) || invited.Header.Get("Pyng-Trace-Id") != invited.TraceID {
			t.Errorf("the invitation's answer: %+v; want 201 with its traceId", invited)
		}

		batch := client.BatchRequest{BatchReference: "B-1", Rows: []client.RowRequest{{RowReference: "R1", CustomerReference: "ACME-001", Amount: 100}}}
		var first, replay client.Response
		must(site.SubmitBatch(client.WithResponse(ctx, &first), batch))(t)
		must(site.SubmitBatch(client.WithResponse(ctx, &replay), batch))(t)
		location := "/billing/sites/" + s.Site.ID + "/batches/B-1"
		if first.StatusCode != http.StatusAccepted || first.Header.Get("Location") != location || first.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("the batch's receipt: %d, Location %q, Idempotent-Replayed %q", first.StatusCode, first.Header.Get("Location"), first.Header.Get("Idempotent-Replayed"))
		}
		if replay.Header.Get("Idempotent-Replayed") != "true" || replay.TraceID == first.TraceID || !uuid.MatchString(replay.TraceID) {
			t.Errorf("the replay's answer: %+v; want Idempotent-Replayed and a traceId of its own", replay)
		}

		var missing client.Response
		_, err := site.GetBatch(client.WithResponse(ctx, &missing), "NOPE", client.GetBatchOptions{})
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || missing.StatusCode != http.StatusNotFound || missing.TraceID != apiErr.TraceID {
			t.Errorf("an error's answer: %+v, error %v; want 404 with the error's traceId", missing, err)
		}

		var untouched client.Response
		must(site.GetCustomer(ctx, "ACME-001"))(t) // a call without WithResponse records nothing
		if untouched.StatusCode != 0 {
			t.Errorf("a Response no call was given: %+v", untouched)
		}
	})
}

// Scopes gives the scopes the server granted: those asked for, or all of the API client's.
func TestScopesAreTheGrantedOnes(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, _ *client.Site) {
		ctx := context.Background()
		readOnly := must(newClient(t, s, s.Partner, string(billing.ScopeCustomersRead)).Scopes(ctx))(t)
		if !slices.Equal(readOnly, []string{string(billing.ScopeCustomersRead)}) {
			t.Errorf("the scopes of a client that asked for one: %v", readOnly)
		}
		all := must(newClient(t, s, s.Partner).Scopes(ctx))(t)
		for _, scope := range []billing.Scope{billing.ScopeCustomersRead, billing.ScopeCustomersInvite, billing.ScopeBatchesWrite, billing.ScopeEventsRead} {
			if !slices.Contains(all, string(scope)) {
				t.Errorf("the scopes of a client that asked for none: %v; want %s among them", all, scope)
			}
		}
		if _, err := newClient(t, s, apptest.Partner{ClientID: s.Partner.ClientID, ClientSecret: "wrong"}).Scopes(ctx); !errors.Is(err, client.Code("invalid_client")) {
			t.Errorf("Scopes with a wrong secret: %v; want invalid_client", err)
		}
	})
}

// A call whose last attempt got no answer (the connection dropped) leaves the zero Response, not
// an earlier call's answer.
func TestWithResponseIsEmptyWhenTheCallGotNoAnswer(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, _ *client.Site) {
		target, err := url.Parse(s.URL)
		if err != nil {
			t.Fatal(err)
		}
		token := httputil.NewSingleHostReverseProxy(target)
		dropping := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/oauth2/token" {
				token.ServeHTTP(w, r)
				return
			}
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}))
		t.Cleanup(dropping.Close)
		c, err := client.New(client.Config{BaseURL: dropping.URL, ClientID: s.Partner.ClientID, ClientSecret: s.Partner.ClientSecret})
		if err != nil {
			t.Fatal(err)
		}
		resp := client.Response{StatusCode: http.StatusOK, TraceID: "an earlier call's"}
		if _, err := c.Site(s.Site.ID).GetCustomer(client.WithResponse(context.Background(), &resp), "ACME-001"); err == nil {
			t.Fatal("a call whose connection dropped succeeded")
		}
		if resp.StatusCode != 0 || resp.TraceID != "" || resp.Header != nil {
			t.Errorf("the Response of a call that got no answer: %+v; want the zero Response", resp)
		}
	})
}
