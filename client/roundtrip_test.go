package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/client"
)

// The tests of this file decode what the server sends into the client's types, encode those
// again (as pyng-partner does to print them) and compare the result with the server's JSON as
// JSON values: a member the client lacks, one it adds, or an absent member it turns into null
// or zero, shows as a difference.

// auditJSONValue decodes b as a JSON value, numbers exact.
func auditJSONValue(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return v
}

// auditSameJSON reports a difference between the server's JSON and the client's encoding of it.
func auditSameJSON(t *testing.T, what string, server, ours []byte) {
	t.Helper()
	if !reflect.DeepEqual(auditJSONValue(t, server), auditJSONValue(t, ours)) {
		t.Errorf("%s: the client does not carry what the server sends\nserver: %s\nclient: %s", what, bytes.TrimSpace(server), ours)
	}
}

// auditRoundTrip decodes server into a T, encodes it again and compares.
func auditRoundTrip[T any](t *testing.T, what string, server []byte) {
	t.Helper()
	var v T
	if err := json.Unmarshal(server, &v); err != nil {
		t.Errorf("%s: the client cannot decode %s: %v", what, server, err)
		return
	}
	ours, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: encode: %v", what, err)
	}
	auditSameJSON(t, what, server, ours)
}

// auditData is the data member of a {data, traceId} answer.
func auditData(t *testing.T, body []byte) []byte {
	t.Helper()
	var envelope struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &envelope); err != nil || envelope.Data == nil {
		t.Fatalf("not an envelope: %s", body)
	}
	return envelope.Data
}

// auditAPI sends raw requests to the server with the partner's token.
type auditAPI struct {
	t     *testing.T
	s     *apptest.Server
	token string
}

func newAuditAPI(t *testing.T, s *apptest.Server) *auditAPI {
	return &auditAPI{t: t, s: s, token: s.Token(t, s.Partner)}
}

// do sends method path (under the site) and returns the body, failing unless the status is want.
func (a *auditAPI) do(method, path string, body any, want int) []byte {
	a.t.Helper()
	r := a.s.Do(a.t, apptest.Request{Method: method, Path: "/billing/sites/" + url.PathEscape(a.s.Site.ID) + path, Token: a.token, Body: body})
	if r.Status != want {
		a.t.Fatalf("%s %s = %d %s, want %d", method, path, r.Status, r.Body, want)
	}
	return r.Body
}

// auditFixture gives the site something of every shape the API answers with: links in every
// state (with and without metadata), a completed batch with rows of every failure reason, an
// expired batch, endpoints enabled and disabled (by the partner), deliveries that succeeded and
// attempts that failed without an answer, and the events of all of it.
func auditFixture(t *testing.T, s *apptest.Server, site *client.Site) *client.Site {
	t.Helper()
	ctx := context.Background()
	must(site.InviteCustomer(ctx, "X-EXP"))(t)
	s.Clock.Advance(8 * 24 * time.Hour)                         // past the invitation's 7 days
	if _, err := s.Service.ExpireInvitations(ctx); err != nil { // the periodic job's customer.expired
		t.Fatal(err)
	}
	// The server's clock has moved on: its tokens are expired, so a new client takes a new one.
	site = newClient(t, s, s.Partner).Site(s.Site.ID)
	ok, _ := receiver(t)
	must(site.CreateWebhookEndpoint(ctx, client.WebhookEndpointRequest{URL: ok}))(t)
	bad := must(site.CreateWebhookEndpoint(ctx, client.WebhookEndpointRequest{URL: "http://127.0.0.1:1/hook",
		EventTypes: []client.EventType{client.EventCustomerInvited, client.EventBatchCompleted}}))(t)
	off := must(site.CreateWebhookEndpoint(ctx, client.WebhookEndpointRequest{URL: ok + "/off"}))(t)
	must(site.UpdateWebhookEndpoint(ctx, off.EndpointID, client.WebhookEndpointUpdate{State: client.EndpointDisabled}))(t)

	meta := map[string]string{"accountId": "8841", "plan": "pro"}
	must(site.Invite(ctx, client.InvitationRequest{CustomerReference: "A-INV", Metadata: meta}))(t)
	must(site.Invite(ctx, client.InvitationRequest{CustomerReference: "A-LNK", Metadata: meta}))(t)
	must(site.SimulateSignup(ctx, "A-LNK"))(t)
	must(site.InviteCustomer(ctx, "A-REVP"))(t)
	must(site.RevokeCustomer(ctx, "A-REVP"))(t)
	must(site.InviteCustomer(ctx, "A-REVC"))(t)
	must(site.SimulateSignup(ctx, "A-REVC"))(t)
	must(site.SimulateCustomerRevocation(ctx, "A-REVC"))(t)

	must(site.SubmitBatch(ctx, client.BatchRequest{BatchReference: "B-1", Rows: []client.RowRequest{
		{RowReference: "R1", CustomerReference: "A-LNK", Amount: 12000},
		{RowReference: "R2", CustomerReference: "A-LNK", Amount: 1051},
		{RowReference: "R3", CustomerReference: "A-LNK", Amount: 1052},
		{RowReference: "R4", CustomerReference: "NOBODY", Amount: 9900},
	}}))(t)
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	must(site.AwaitBatch(waitCtx, "B-1", 20*time.Millisecond))(t)
	must(site.SubmitBatch(ctx, client.BatchRequest{BatchReference: "B-2", Rows: []client.RowRequest{
		{RowReference: "R1", CustomerReference: "A-LNK", Amount: 500},
	}}))(t)
	must(site.SimulateDeadline(ctx, "B-2"))(t)
	must(site.AwaitBatch(waitCtx, "B-2", 20*time.Millisecond))(t)
	must(site.SimulateWebhookTest(ctx, bad.EndpointID))(t)

	// Wait for an attempt of the failing endpoint, so that a delivery lists an attempt without
	// a status.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ds := collect(t, site.ListDeliveries(ctx, bad.EndpointID, client.ListDeliveriesOptions{}))
		if len(ds) > 0 && len(ds[len(ds)-1].Attempts) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no attempt of the failing endpoint within 30 s")
		}
	}
	listed(t, site, 15)
	return site
}

func TestGETAnswersRoundTrip(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, site *client.Site) {
		auditFixture(t, s, site)
		api := newAuditAPI(t, s)

		// The lists, whole pages (data, nextCursor, traceId) and page by page.
		for _, q := range []string{"", "?limit=2", "?state=invited", "?state=linked", "?state=revoked", "?state=expired"} {
			body := api.do("GET", "/customers"+q, nil, http.StatusOK)
			auditRoundTrip[client.Page[client.Link]](t, "GET customers"+q, body)
		}
		for _, q := range []string{"", "?limit=1"} {
			auditRoundTrip[client.Page[client.Batch]](t, "GET batches"+q, api.do("GET", "/batches"+q, nil, http.StatusOK))
		}
		events := api.do("GET", "/events?limit=100", nil, http.StatusOK)
		auditRoundTrip[client.Page[client.Event]](t, "GET events", events)
		auditRoundTrip[client.Page[client.Event]](t, "GET events?limit=3", api.do("GET", "/events?limit=3", nil, http.StatusOK))
		endpoints := api.do("GET", "/webhook-endpoints", nil, http.StatusOK)
		auditRoundTrip[client.Page[client.WebhookEndpoint]](t, "GET webhook-endpoints", endpoints)

		// Each resource.
		for _, ref := range []string{"X-EXP", "A-INV", "A-LNK", "A-REVP", "A-REVC"} {
			auditRoundTrip[client.Link](t, "GET customers/"+ref, auditData(t, api.do("GET", "/customers/"+ref, nil, http.StatusOK)))
		}
		for _, ref := range []string{"B-1", "B-2"} {
			auditRoundTrip[client.BatchDetail](t, "GET batches/"+ref, auditData(t, api.do("GET", "/batches/"+ref, nil, http.StatusOK)))
			auditRoundTrip[client.BatchDetail](t, "GET batches/"+ref+"?rowState=failed",
				auditData(t, api.do("GET", "/batches/"+ref+"?rowState=failed", nil, http.StatusOK)))
		}
		var list client.Page[client.WebhookEndpoint]
		if err := json.Unmarshal(endpoints, &list); err != nil {
			t.Fatal(err)
		}
		for _, ep := range list.Items {
			auditRoundTrip[client.WebhookEndpoint](t, "GET webhook-endpoints/"+ep.EndpointID,
				auditData(t, api.do("GET", "/webhook-endpoints/"+ep.EndpointID, nil, http.StatusOK)))
			for _, q := range []string{"", "?limit=1"} {
				auditRoundTrip[client.Page[client.Delivery]](t, "GET deliveries"+q,
					api.do("GET", "/webhook-endpoints/"+ep.EndpointID+"/deliveries"+q, nil, http.StatusOK))
			}
		}
	})
}

// An accepted batch, its rows pending, as no job has run yet.
func TestAcceptedBatchRoundTrip(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, site *client.Site) {
		api := newAuditAPI(t, s)
		receipt := api.do("POST", "/batches", map[string]any{"batchReference": "B-1", "rows": []map[string]any{
			{"rowReference": "R1", "customerReference": "NOBODY", "amount": 100},
		}}, http.StatusAccepted)
		auditRoundTrip[client.BatchReceipt](t, "POST batches", auditData(t, receipt))
		auditRoundTrip[client.BatchDetail](t, "GET batches/B-1 (accepted)", auditData(t, api.do("GET", "/batches/B-1", nil, http.StatusOK)))
		auditRoundTrip[client.Page[client.Batch]](t, "GET batches (accepted)", api.do("GET", "/batches", nil, http.StatusOK))
	}, apptest.Options{NoJobs: true})
}

// The data of each event, decoded by its type as the client offers (LinkData, BatchData,
// RowData, EndpointData), is the event's data, no more and no less.
func TestEventDataRoundTrip(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, site *client.Site) {
		site = auditFixture(t, s, site)
		seen := map[client.EventType]bool{}
		for _, e := range collect(t, site.ListEvents(context.Background(), client.ListEventsOptions{})) {
			var v any
			var err error
			switch {
			case e.Type == client.EventCustomerInvited || e.Type == client.EventCustomerLinked ||
				e.Type == client.EventCustomerRevoked || e.Type == client.EventCustomerExpired:
				v, err = e.LinkData()
			case e.Type == client.EventBatchAccepted || e.Type == client.EventBatchCompleted:
				v, err = e.BatchData()
			case e.Type == client.EventDebitReturned:
				v, err = e.RowData()
			case e.Type == client.EventWebhookEndpointDisabled || e.Type == client.EventWebhookTest:
				v, err = e.EndpointData()
			default:
				t.Errorf("event %s of type %s has no typed data in the client", e.EventID, e.Type)
				continue
			}
			if err != nil {
				t.Errorf("%s data: %v", e.Type, err)
				continue
			}
			ours, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if !seen[e.Type] {
				auditSameJSON(t, "the data of a "+string(e.Type)+" event", e.Data, ours)
			}
			seen[e.Type] = true
		}
		for _, typ := range []client.EventType{client.EventCustomerInvited, client.EventCustomerLinked, client.EventCustomerRevoked,
			client.EventCustomerExpired, client.EventBatchAccepted, client.EventBatchCompleted, client.EventWebhookTest} {
			if !seen[typ] {
				t.Errorf("the fixture made no %s event", typ)
			}
		}
	})
}

// The answers of the routes that change something, and error answers.
func TestWriteAnswersRoundTrip(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, site *client.Site) {
		api := newAuditAPI(t, s)
		ok, _ := receiver(t)

		inv := api.do("POST", "/customers/invitations", map[string]any{"customerReference": "W-1", "metadata": map[string]string{"plan": "pro"}}, http.StatusCreated)
		auditRoundTrip[client.Invitation](t, "POST customers/invitations", auditData(t, inv))
		auditRoundTrip[client.Link](t, "POST sandbox signup", auditData(t, api.do("POST", "/sandbox/customers/W-1/signup", nil, http.StatusOK)))
		auditRoundTrip[client.Link](t, "POST revoke", auditData(t, api.do("POST", "/customers/W-1/revoke", nil, http.StatusOK)))

		created := api.do("POST", "/webhook-endpoints", map[string]any{"url": ok, "eventTypes": []string{"customer.linked", "batch.accepted"}}, http.StatusCreated)
		auditRoundTrip[client.WebhookEndpointWithSecret](t, "POST webhook-endpoints", auditData(t, created))
		var ep client.WebhookEndpointWithSecret
		if err := json.Unmarshal(auditData(t, created), &ep); err != nil {
			t.Fatal(err)
		}
		path := "/webhook-endpoints/" + ep.EndpointID
		auditRoundTrip[client.WebhookEndpointWithSecret](t, "POST secret-rotation", auditData(t, api.do("POST", path+"/secret-rotation", nil, http.StatusOK)))
		test := api.do("POST", "/sandbox"+path+"/test", nil, http.StatusAccepted)
		auditRoundTrip[client.Delivery](t, "POST sandbox test", auditData(t, test))
		var d client.Delivery
		if err := json.Unmarshal(auditData(t, test), &d); err != nil {
			t.Fatal(err)
		}
		auditRoundTrip[client.Delivery](t, "POST retry", auditData(t, api.do("POST", path+"/deliveries/"+d.DeliveryID+"/retry", nil, http.StatusAccepted)))
		auditRoundTrip[client.WebhookEndpoint](t, "PATCH webhook-endpoints", auditData(t, api.do("PATCH", path, map[string]any{"state": "disabled"}, http.StatusOK)))
		auditRoundTrip[client.WebhookEndpoint](t, "DELETE webhook-endpoints", auditData(t, api.do("DELETE", path, nil, http.StatusOK)))

		// Error answers: {errors: [{code, displayMessage, target?}], traceId}.
		type envelope struct {
			Errors  []client.Problem `json:"errors"`
			TraceID string           `json:"traceId"`
		}
		auditRoundTrip[envelope](t, "404 batch", api.do("GET", "/batches/NOPE", nil, http.StatusNotFound))
		auditRoundTrip[envelope](t, "400 batch problems", api.do("POST", "/batches", map[string]any{"batchReference": "B 1", "rows": []map[string]any{
			{"rowReference": "R1", "customerReference": "C-1", "amount": 0, "colour": "red"},
		}}, http.StatusBadRequest))
		auditRoundTrip[envelope](t, "400 malformed (no target)", api.do("POST", "/customers/invitations", "{", http.StatusBadRequest))
	})
}
