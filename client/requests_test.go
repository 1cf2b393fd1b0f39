package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/client"
)

// auditRecorder passes requests on and records their method, path and query keys.
type auditRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	keys map[string][]string // "GET /billing/sites/x/customers" → the query keys sent
}

func (r *auditRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasPrefix(req.URL.Path, "/billing/") {
		r.mu.Lock()
		for k := range req.URL.Query() {
			r.keys[req.Method+" "+req.URL.Path] = append(r.keys[req.Method+" "+req.URL.Path], k)
		}
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

// Every query parameter the document gives a route, the client's options can send, and the
// server takes it (no request:unknown-field).
func TestQueryParametersOfTheDocument(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, _ *client.Site) {
		ctx := context.Background()
		rec := &auditRecorder{next: s.HTTP.Transport, keys: map[string][]string{}}
		c, err := client.New(client.Config{BaseURL: s.URL, ClientID: s.ClientID, ClientSecret: s.ClientSecret, HTTPClient: &http.Client{Transport: rec}})
		if err != nil {
			t.Fatal(err)
		}
		site := c.Site(s.Site.ID)
		url, _ := receiver(t)
		ep := must(site.CreateWebhookEndpoint(ctx, client.WebhookEndpointRequest{URL: url}))(t)
		for _, ref := range []string{"Q-1", "Q-2"} {
			must(site.InviteCustomer(ctx, ref))(t)
			must(site.SubmitBatch(ctx, client.BatchRequest{BatchReference: ref, Rows: []client.RowRequest{{RowReference: "R1", CustomerReference: ref, Amount: 100}}}))(t)
		}
		events := listed(t, site, 4)
		must(site.SimulateWebhookTest(ctx, ep.EndpointID))(t)
		must(site.SimulateWebhookTest(ctx, ep.EndpointID))(t)

		first := must(site.CustomersPage(ctx, client.ListCustomersOptions{Limit: 1}))(t)
		must(site.CustomersPage(ctx, client.ListCustomersOptions{State: client.LinkInvited, Limit: 1, Cursor: first.NextCursor}))(t)
		bfirst := must(site.BatchesPage(ctx, client.ListBatchesOptions{Limit: 1}))(t)
		must(site.BatchesPage(ctx, client.ListBatchesOptions{Limit: 1, Cursor: bfirst.NextCursor}))(t)
		must(site.GetBatch(ctx, "Q-1", client.GetBatchOptions{RowState: client.RowFailed}))(t)
		must(site.EventsPage(ctx, client.ListEventsOptions{After: events[0].EventID, Type: client.EventCustomerInvited, Limit: 1}))(t)
		dfirst := must(site.DeliveriesPage(ctx, ep.EndpointID, client.ListDeliveriesOptions{Limit: 1}))(t)
		must(site.DeliveriesPage(ctx, ep.EndpointID, client.ListDeliveriesOptions{Limit: 1, Cursor: dfirst.NextCursor}))(t)

		doc := auditDocument(t)
		for path, item := range doc.Paths.Map() {
			if !strings.HasPrefix(path, "/billing/") {
				continue
			}
			for method, op := range item.Operations() {
				var want []string
				for _, p := range op.Parameters {
					if p.Value.In == "query" {
						want = append(want, p.Value.Name)
					}
				}
				if len(want) == 0 {
					continue
				}
				sort.Strings(want)
				concrete := strings.NewReplacer("{siteId}", s.Site.ID, "{batchReference}", "Q-1", "{endpointId}", ep.EndpointID).Replace(path)
				got := slices.Clone(rec.keys[method+" "+concrete])
				sort.Strings(got)
				got = slices.Compact(got)
				if !slices.Equal(got, want) {
					t.Errorf("%s %s (%s): the client sent the query parameters %v, the document has %v", method, path, op.OperationID, got, want)
				}
			}
		}
	})
}

// An empty list of event types is not a subscription to every type: the server refuses
// eventTypes: [] (invalid-field), while the client leaves the member out (omitempty), which the
// server reads as "*", every type, now and to come.
func TestEmptyEventTypesAreNotWidened(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, site *client.Site) {
		ctx := context.Background()
		url, _ := receiver(t)
		ep, err := site.CreateWebhookEndpoint(ctx, client.WebhookEndpointRequest{URL: url, EventTypes: []client.EventType{}})
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || apiErr.Code != client.CodeInvalidField || apiErr.Target != "eventTypes" {
			t.Errorf("an endpoint of no event types: %+v, %v; want 400 invalid-field on eventTypes, as the server answers eventTypes: []", ep, err)
		}
		api := newAuditAPI(t, s)
		api.do("POST", "/webhook-endpoints", map[string]any{"url": url, "eventTypes": []string{}}, http.StatusBadRequest)
	})
}

// auditProxy stands between the client and the server: it passes every request on, and answers
// the first request for which swallow is true with status after the server has acted on it (a
// gateway that lost the server's answer), or, with drop, closes the connection without answering
// (a connection that broke once the server had acted).
type auditProxy struct {
	target  string
	status  int
	drop    bool
	swallow func(r *http.Request) bool

	mu      sync.Mutex
	seen    int
	matched int
}

// matches is how many requests swallow matched.
func (p *auditProxy) matches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.matched
}

func (p *auditProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	p.mu.Lock()
	p.seen++
	lose := false
	if p.swallow(r) {
		p.matched++
		lose = p.matched == 1
	}
	p.mu.Unlock()
	if lose && p.drop {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if lose {
		w.WriteHeader(p.status)
		io.WriteString(w, "<html>gateway error</html>")
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(answer)
}

func auditBehindProxy(t *testing.T, s *apptest.Server, p *auditProxy) *client.Site {
	t.Helper()
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	c, err := client.New(client.Config{BaseURL: srv.URL, ClientID: s.ClientID, ClientSecret: s.ClientSecret, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return c.Site(s.Site.ID)
}

// A batch whose answer a gateway lost (502 after the server accepted it) is sent again and
// replayed by the server, not made twice; an invitation whose answer was lost (503) is not sent
// again.
func TestRetriesDoNotActTwice(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, site *client.Site) {
		ctx := context.Background()
		batches := &auditProxy{target: s.URL, status: http.StatusBadGateway, swallow: func(r *http.Request) bool {
			return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/batches")
		}}
		receipt, err := auditBehindProxy(t, s, batches).SubmitBatch(ctx, client.BatchRequest{BatchReference: "B-1",
			Rows: []client.RowRequest{{RowReference: "R1", CustomerReference: "C-1", Amount: 100}}})
		if err != nil || receipt.BatchReference != "B-1" || batches.matched != 2 {
			t.Errorf("a batch whose 202 was lost: %+v, %v after %d submissions; want the receipt after 2", receipt, err, batches.matched)
		}
		if list := collect(t, site.ListBatches(ctx, client.ListBatchesOptions{})); len(list) != 1 {
			t.Errorf("batches = %+v, want B-1 once", list)
		}

		invites := &auditProxy{target: s.URL, status: http.StatusServiceUnavailable, swallow: func(r *http.Request) bool {
			return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/invitations")
		}}
		_, err = auditBehindProxy(t, s, invites).InviteCustomer(ctx, "C-1")
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable || !apiErr.Temporary() || invites.matched != 1 {
			t.Errorf("an invitation whose 201 was lost: %v after %d requests, want the 503, temporary, after 1", err, invites.matched)
		}
		if l := must(site.GetCustomer(ctx, "C-1"))(t); l.State != client.LinkInvited {
			t.Errorf("C-1 = %+v, want invited once", l)
		}

		// The same when the connection breaks after the server acted, before its answer came.
		batches = &auditProxy{target: s.URL, drop: true, swallow: func(r *http.Request) bool {
			return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/batches")
		}}
		receipt, err = auditBehindProxy(t, s, batches).SubmitBatch(ctx, client.BatchRequest{BatchReference: "B-2",
			Rows: []client.RowRequest{{RowReference: "R1", CustomerReference: "C-1", Amount: 100}}})
		if err != nil || receipt.BatchReference != "B-2" || !receipt.Replayed || batches.matches() != 2 {
			t.Errorf("a batch whose connection broke: %+v, %v after %d submissions; want the replayed receipt after 2", receipt, err, batches.matches())
		}
		if list := collect(t, site.ListBatches(ctx, client.ListBatchesOptions{})); len(list) != 2 {
			t.Errorf("batches = %+v, want B-1 and B-2 once each", list)
		}
		reads := &auditProxy{target: s.URL, drop: true, swallow: func(r *http.Request) bool {
			return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/customers/C-1")
		}}
		if l, err := auditBehindProxy(t, s, reads).GetCustomer(ctx, "C-1"); err != nil || l.CustomerReference != "C-1" || reads.matches() != 2 {
			t.Errorf("a read whose connection broke: %+v, %v after %d requests; want C-1 after 2", l, err, reads.matches())
		}
		invites = &auditProxy{target: s.URL, drop: true, swallow: func(r *http.Request) bool {
			return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/invitations")
		}}
		_, err = auditBehindProxy(t, s, invites).InviteCustomer(ctx, "C-2")
		if !errors.Is(err, client.ErrNoAnswer) || errors.As(err, &apiErr) || invites.matches() != 1 {
			t.Errorf("an invitation whose connection broke: %v after %d requests, want the connection's error (ErrNoAnswer) after 1", err, invites.matches())
		}
		// A refusal for the request itself is not temporary; nor is it ErrNoAnswer.
		_, err = site.InviteCustomer(ctx, "C-2")
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict || apiErr.Temporary() || errors.Is(err, client.ErrNoAnswer) {
			t.Errorf("inviting C-2 again: %v; want a 409 that is not temporary", err)
		}
		if l := must(site.GetCustomer(ctx, "C-2"))(t); l.State != client.LinkInvited {
			t.Errorf("C-2 = %+v, want invited once", l)
		}
	})
}
