package httpapi_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/becs/aba"
)

// event is an event as the list and the webhooks carry it.
type event struct {
	EventID   string          `json:"eventId"`
	Type      string          `json:"type"`
	CreatedAt int64           `json:"createdAt"`
	SiteID    string          `json:"siteId"`
	Data      json.RawMessage `json:"data"`
}

type eventPage struct {
	Data       []json.RawMessage `json:"data"`
	NextCursor string            `json:"nextCursor"`
}

// events lists the partner's events with query, and returns each event's bytes and its decoding.
func (p partner) events(t testing.TB, query string) (raw []json.RawMessage, events []event, next string) {
	t.Helper()
	r := p.do(t, http.MethodGet, "/events"+query, nil)
	wantStatus(t, r, http.StatusOK)
	var pg eventPage
	r.JSON(t, &pg)
	for _, item := range pg.Data {
		var e event
		if err := json.Unmarshal(item, &e); err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	return pg.Data, events, pg.NextCursor
}

// eventsUntil lists the partner's events until the last is of type last, and returns them.
func (p partner) eventsUntil(t testing.TB, last string) []event {
	t.Helper()
	_, events := p.awaitEvents(t, func(events []event) bool { return len(events) > 0 && events[len(events)-1].Type == last })
	return events
}

// awaitEvents lists the partner's events until done holds of them. An event is listed once every
// transaction that began before it has ended (on PostgreSQL), which is a moment after it commits.
func (p partner) awaitEvents(t testing.TB, done func([]event) bool) ([]json.RawMessage, []event) {
	t.Helper()
	raw, events, _, ok := p.eventsWhen(t, "?limit=100", done)
	if !ok {
		t.Fatalf("the events are %v", types(events))
	}
	return raw, events
}

// eventsPage lists one page of the partner's events, as events does, until it holds n events or
// 20 seconds have passed. On PostgreSQL the list can show fewer of the newest events for a moment
// after it showed them, never more (the horizon is read low, never high, while the test databases'
// transactions end on the shared server): a page the test awaited can read short once.
func (p partner) eventsPage(t testing.TB, query string, n int) (raw []json.RawMessage, events []event, next string) {
	t.Helper()
	raw, events, next, _ = p.eventsWhen(t, query, atLeast(n))
	return raw, events, next
}

// eventsWhen lists a page of the partner's events (events) until done holds of it, or 20 seconds
// have passed; ok says whether it held. It gives the last page read.
func (p partner) eventsWhen(t testing.TB, query string, done func([]event) bool) (raw []json.RawMessage, events []event, next string, ok bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		raw, events, next = p.events(t, query)
		if done(events) {
			return raw, events, next, true
		}
		if time.Now().After(deadline) {
			return raw, events, next, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// atLeast is a condition of awaitEvents and eventsWhen: n events or more.
func atLeast(n int) func([]event) bool { return func(events []event) bool { return len(events) >= n } }

func types(events []event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Type
	}
	return out
}

// Every change a partner can see writes its event, oldest first, carrying the object GET answers
// with at that moment, and nothing of what the customer told Pyng.
func TestEveryChangeWritesItsEvent(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		ctx := context.Background()

		p.mustInvite(t, "cust-a")
		wantStatus(t, p.post(t, "/sandbox/customers/cust-a/signup"), http.StatusOK)
		linked := p.mustGet(t, "cust-a")
		wantStatus(t, p.post(t, "/customers/cust-a/revoke"), http.StatusOK)
		revoked := p.mustGet(t, "cust-a")
		p.mustInvite(t, "cust-b")
		s.Clock.Advance(billing.DefaultInvitationTTL)
		p.token = s.Token(t, p.p) // the one before has expired on the test's clock
		// The server's own sweep, run at its start (late, on a loaded machine), may write the
		// expiry first: it is written once, by one or the other (the events below hold one).
		if n, err := s.Service.ExpireInvitations(ctx); err != nil || n > 1 {
			t.Fatalf("ExpireInvitations = %d, %v; want 1, or 0 when the server's sweep wrote it", n, err)
		}
		if n, err := s.Service.ExpireInvitations(ctx); err != nil || n != 0 {
			t.Fatalf("ExpireInvitations again = %d, %v; want 0: an expiry is written once", n, err)
		}
		expired := p.mustGet(t, "cust-b")
		p.mustInvite(t, "cust-c")
		wantStatus(t, p.post(t, "/sandbox/customers/cust-c/signup"), http.StatusOK)
		wantStatus(t, p.do(t, http.MethodPost, "/batches", map[string]any{"batchReference": "b-1", "rows": []map[string]any{
			{"rowReference": "r1", "customerReference": "cust-c", "amount": 1000},
			{"rowReference": "r2", "customerReference": "cust-a", "amount": 2000},
		}}), http.StatusAccepted)
		s.Clock.Advance(time.Hour) // past the sandbox's settlement
		p.token = s.Token(t, p.p)
		events := p.eventsUntil(t, "batch.completed")

		want := []string{"customer.invited", "customer.linked", "customer.revoked", "customer.invited", "customer.expired",
			"customer.invited", "customer.linked", "batch.accepted", "batch.completed"}
		if got := types(events); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("event types = %v, want %v", got, want)
		}
		seen := map[string]bool{}
		for _, e := range events {
			if e.SiteID != p.site || !strings.HasPrefix(e.EventID, "evt_") || seen[e.EventID] || e.CreatedAt == 0 {
				t.Errorf("event %+v: want a unique evt_ id, the site %s and a time", e, p.site)
			}
			seen[e.EventID] = true
		}
		// The data is the link as GET answered at that moment, less the signup URL.
		asGet := func(l link) string {
			l.SignupURL = ""
			b, _ := json.Marshal(l)
			return string(b)
		}
		dataOf := func(e event) string {
			var l link
			if err := json.Unmarshal(e.Data, &l); err != nil {
				t.Fatal(err)
			}
			return asGet(l)
		}
		for i, want := range map[int]link{1: linked, 2: revoked, 4: expired} {
			if got := dataOf(events[i]); got != asGet(want) {
				t.Errorf("%s data = %s, want %s", events[i].Type, got, asGet(want))
			}
		}
		if bytes.Contains(events[0].Data, []byte("signupUrl")) {
			t.Errorf("customer.invited carries the signup URL: %s", events[0].Data)
		}
		var revokedData link
		_ = json.Unmarshal(events[2].Data, &revokedData)
		if revokedData.RevokedBy != "partner" {
			t.Errorf("customer.revoked data has revokedBy %q, want partner", revokedData.RevokedBy)
		}

		var accepted, completed struct {
			billing.BatchSummaryView
			Rows json.RawMessage `json:"rows"`
		}
		_ = json.Unmarshal(events[7].Data, &accepted)
		_ = json.Unmarshal(events[8].Data, &completed)
		if accepted.State != billing.BatchAccepted || accepted.Summary.Pending != (billing.TotalView{Count: 2, Amount: 3000}) || accepted.Rows != nil {
			t.Errorf("batch.accepted data = %s", events[7].Data)
		}
		if completed.State != billing.BatchCompleted || completed.CompletedAt == 0 || completed.Rows != nil ||
			completed.Summary.Succeeded != (billing.TotalView{Count: 1, Amount: 1000}) || completed.Summary.Failed != (billing.TotalView{Count: 1, Amount: 2000}) {
			t.Errorf("batch.completed data = %s", events[8].Data)
		}

		// The customer revoking writes customer.revoked too, revokedBy customer.
		wantStatus(t, p.post(t, "/sandbox/customers/cust-c/customer-revocation"), http.StatusOK)
		byCustomer := p.mustGet(t, "cust-c")
		events = p.eventsUntil(t, "customer.revoked")
		last := events[len(events)-1]
		if got := dataOf(last); got != asGet(byCustomer) || byCustomer.RevokedBy != "customer" {
			t.Errorf("customer.revoked data = %s, want %s, revokedBy customer", got, asGet(byCustomer))
		}

		raw, _ := p.awaitEvents(t, atLeast(len(events)))
		for _, secret := range []string{billing.SandboxCustomer.Name, billing.SandboxCustomer.Email, billing.SandboxCustomer.BSB, billing.SandboxCustomer.AccountNumber} {
			for _, item := range raw {
				if bytes.Contains(item, []byte(secret)) {
					t.Errorf("an event shows the partner %q of what the customer told Pyng: %s", secret, item)
				}
			}
		}
	})
}

func TestEventsListPagesFiltersAndRefuses(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		for _, ref := range []string{"e1", "e2", "e3", "e4", "e5"} {
			p.mustInvite(t, ref)
		}
		wantStatus(t, p.post(t, "/sandbox/customers/e2/signup"), http.StatusOK)
		p.awaitEvents(t, atLeast(6))
		all, allEvents, next := p.eventsPage(t, "", 6)
		if len(all) != 6 || next != "" {
			t.Fatalf("%d events and nextCursor %q, want 6 and none", len(all), next)
		}
		var paged []json.RawMessage
		query := "?limit=4"
		for {
			items, _, next := p.eventsPage(t, query, min(4, len(all)-len(paged)))
			paged = append(paged, items...)
			if next == "" {
				break
			}
			query = "?limit=4&after=" + next
		}
		if !equalItems(paged, all) {
			t.Errorf("paging by 4 gave %d events, not the list's", len(paged))
		}
		_, after, _ := p.eventsPage(t, "?after="+allEvents[3].EventID, 2)
		if len(after) != 2 || after[0].EventID != allEvents[4].EventID {
			t.Errorf("after the 4th event: %v", types(after))
		}
		_, linked, _ := p.eventsPage(t, "?type=customer.linked", 1)
		if len(linked) != 1 || linked[0].EventID != allEvents[5].EventID {
			t.Errorf("?type=customer.linked gave %v", types(linked))
		}

		other := newPartner(t, s)
		other.mustInvite(t, "x1")
		_, otherEvents := other.awaitEvents(t, atLeast(1))
		if len(otherEvents) != 1 {
			t.Errorf("another partner sees %d events, want its own 1", len(otherEvents))
		}
		for _, tc := range []struct{ query, target string }{
			{"?after=evt_unknown", "after"},
			{"?after=" + otherEvents[0].EventID, "after"}, // another site's event
			{"?after=a&after=b", "after"},
			{"?type=customer.exploded", "type"},
			{"?type=customer.linked&type=customer.revoked", "type"},
			{"?limit=0", "limit"},
			{"?limit=101", "limit"},
		} {
			wantError(t, p.do(t, http.MethodGet, "/events"+tc.query, nil), http.StatusBadRequest,
				"request:invalid-field", tc.target)
		}
	})
}

func equalItems(a, b []json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// endpoint is a webhook endpoint as the API answers with it.
type endpoint struct {
	EndpointID     string   `json:"endpointId"`
	URL            string   `json:"url"`
	EventTypes     []string `json:"eventTypes"`
	CreatedAt      int64    `json:"createdAt"`
	State          string   `json:"state"`
	DisabledReason string   `json:"disabledReason"`
	Secret         string   `json:"secret"`
}

func (p partner) createEndpoint(t testing.TB, body any) endpoint {
	t.Helper()
	r := p.do(t, http.MethodPost, "/webhook-endpoints", body)
	wantStatus(t, r, http.StatusCreated)
	return dataOf[endpoint](t, r)
}

func (p partner) endpoints(t testing.TB) []endpoint {
	t.Helper()
	r := p.do(t, http.MethodGet, "/webhook-endpoints", nil)
	wantStatus(t, r, http.StatusOK)
	return dataOf[[]endpoint](t, r)
}

func TestWebhookEndpointsLifecycle(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		created := p.createEndpoint(t, map[string]any{"url": "https://example.com/hooks"})
		if !strings.HasPrefix(created.Secret, "whsec_") || created.State != "enabled" ||
			strings.Join(created.EventTypes, ",") != "*" || created.URL != "https://example.com/hooks" {
			t.Fatalf("created = %+v", created)
		}
		path := "/webhook-endpoints/" + created.EndpointID
		got := dataOf[endpoint](t, p.do(t, http.MethodGet, path, nil))
		if got.Secret != "" || got.EndpointID != created.EndpointID {
			t.Errorf("GET shows %+v; the secret is shown only when made", got)
		}

		updated := dataOf[endpoint](t, p.do(t, http.MethodPatch, path, map[string]any{
			"url": "https://example.com/v2", "eventTypes": []string{"batch.completed", "customer.linked", "batch.completed"}}))
		if updated.URL != "https://example.com/v2" || strings.Join(updated.EventTypes, ",") != "batch.completed,customer.linked" {
			t.Errorf("updated = %+v", updated)
		}
		disabled := dataOf[endpoint](t, p.do(t, http.MethodPatch, path, map[string]any{"state": "disabled"}))
		if disabled.State != "disabled" || disabled.DisabledReason != "partner" || disabled.URL != updated.URL {
			t.Errorf("disabled = %+v", disabled)
		}
		enabled := dataOf[endpoint](t, p.do(t, http.MethodPatch, path, map[string]any{"state": "enabled"}))
		if enabled.State != "enabled" || enabled.DisabledReason != "" {
			t.Errorf("enabled = %+v", enabled)
		}

		r := p.do(t, http.MethodPost, path+"/secret-rotation", nil)
		wantStatus(t, r, http.StatusOK)
		if rotated := dataOf[endpoint](t, r); !strings.HasPrefix(rotated.Secret, "whsec_") || rotated.Secret == created.Secret {
			t.Errorf("rotation gave %q after %q", rotated.Secret, created.Secret)
		}

		s.Clock.Advance(time.Millisecond) // the list is oldest first
		second := p.createEndpoint(t, map[string]any{"url": "https://example.com/second", "eventTypes": []string{"customer.revoked"}})
		if list := p.endpoints(t); len(list) != 2 || list[0].EndpointID != created.EndpointID || list[1].EndpointID != second.EndpointID || list[0].Secret != "" {
			t.Errorf("list = %+v", list)
		}
		other := newPartner(t, s)
		wantError(t, other.do(t, http.MethodGet, path, nil), http.StatusNotFound, "webhook-endpoint:not-found", "endpointId")
		wantError(t, other.do(t, http.MethodDelete, path, nil), http.StatusNotFound, "webhook-endpoint:not-found", "endpointId")

		deleted := dataOf[endpoint](t, p.do(t, http.MethodDelete, path, nil))
		if deleted.EndpointID != created.EndpointID {
			t.Errorf("DELETE answered %+v", deleted)
		}
		wantError(t, p.do(t, http.MethodGet, path, nil), http.StatusNotFound, "webhook-endpoint:not-found", "endpointId")
		wantError(t, p.do(t, http.MethodDelete, path, nil), http.StatusNotFound, "webhook-endpoint:not-found", "endpointId")

		for range billing.MaxWebhookEndpoints - 1 {
			p.createEndpoint(t, map[string]any{"url": "https://example.com/more"})
		}
		wantError(t, p.do(t, http.MethodPost, "/webhook-endpoints", map[string]any{"url": "https://example.com/one-too-many"}),
			http.StatusConflict, "webhook-endpoint:limit-reached", "")
	})
}

// Bad input is refused with a clear error and a target, and changes nothing.
func TestWebhookEndpointsRefuseBadInput(t *testing.T) {
	const invalidField = "request:invalid-field"
	// 21 known types, beyond the document's maxItems (a type given twice counts once, but a list
	// so long can only be a mistake).
	twentyOneTypes := strings.Repeat(`"customer.linked", "batch.completed", "customer.revoked", `, 7)
	twentyOneTypes = strings.TrimSuffix(twentyOneTypes, ", ")
	const invalidURL = "webhook-endpoint:invalid-url"
	cases := []struct {
		name         string
		method, body string
		sandbox      bool // the sandbox allows http and private hosts
		status       int
		code, target string
	}{
		{"no url", "POST", `{}`, true, 400, invalidField, "url"},
		{"url not a string", "POST", `{"url": 5}`, true, 400, invalidField, "url"},
		{"ftp", "POST", `{"url": "ftp://example.com/x"}`, true, 400, invalidURL, "url"},
		{"relative", "POST", `{"url": "/hooks"}`, true, 400, invalidURL, "url"},
		{"userinfo", "POST", `{"url": "https://user:pw@example.com/x"}`, true, 400, invalidURL, "url"},
		{"too long", "POST", `{"url": "https://example.com/` + strings.Repeat("a", 2048) + `"}`, true, 400, invalidURL, "url"},
		{"http outside the sandbox", "POST", `{"url": "http://example.com/x"}`, false, 400, invalidURL, "url"},
		{"loopback outside the sandbox", "POST", `{"url": "https://127.0.0.1/x"}`, false, 400, invalidURL, "url"},
		{"localhost outside the sandbox", "POST", `{"url": "https://localhost/x"}`, false, 400, invalidURL, "url"},
		{"private outside the sandbox", "POST", `{"url": "https://10.1.2.3/x"}`, false, 400, invalidURL, "url"},
		{"link-local outside the sandbox", "POST", `{"url": "https://[fe80::1]/x"}`, false, 400, invalidURL, "url"},
		{"metadata address outside the sandbox", "POST", `{"url": "https://169.254.169.254/latest"}`, false, 400, invalidURL, "url"},
		// No developer's receiver is at a link-local address; the cloud's metadata service is.
		{"metadata address in the sandbox", "POST", `{"url": "http://169.254.169.254/latest"}`, true, 400, invalidURL, "url"},
		{"link-local in the sandbox", "POST", `{"url": "http://[fe80::1]:8080/x"}`, true, 400, invalidURL, "url"},
		{"unknown event type", "POST", `{"url": "https://example.com/x", "eventTypes": ["customer.exploded"]}`, true, 400, invalidField, "eventTypes"},
		{"star among others", "POST", `{"url": "https://example.com/x", "eventTypes": ["*", "batch.completed"]}`, true, 400, invalidField, "eventTypes"},
		{"the test type", "POST", `{"url": "https://example.com/x", "eventTypes": ["webhook.test"]}`, true, 400, invalidField, "eventTypes"},
		{"more than 20 event types", "POST", `{"url": "https://example.com/x", "eventTypes": [` + twentyOneTypes + `]}`, true, 400, invalidField, "eventTypes"},
		{"event types not a list", "POST", `{"url": "https://example.com/x", "eventTypes": "batch.completed"}`, true, 400, invalidField, "eventTypes"},
		{"state on creation", "POST", `{"url": "https://example.com/x", "state": "disabled"}`, true, 400, "request:unknown-field", "state"},
		{"unknown member", "POST", `{"url": "https://example.com/x", "colour": "blue"}`, true, 400, "request:unknown-field", "colour"},
		{"malformed", "POST", `{"url": `, true, 400, "request:malformed-json", ""},
		{"not an object", "POST", `["https://example.com/x"]`, true, 400, "request:malformed-json", ""},
		{"bad state", "PATCH", `{"state": "paused"}`, true, 400, invalidField, "state"},
		{"bad url on update", "PATCH", `{"url": "gopher://example.com"}`, true, 400, invalidURL, "url"},
		{"private url on update outside the sandbox", "PATCH", `{"url": "https://192.168.1.1/x"}`, false, 400, invalidURL, "url"},
		{"bad types on update", "PATCH", `{"eventTypes": []}`, true, 400, invalidField, "eventTypes"},
		{"more than 20 event types on update", "PATCH", `{"eventTypes": [` + twentyOneTypes + `]}`, true, 400, invalidField, "eventTypes"},
		{"unknown member on update", "PATCH", `{"secret": "whsec_x"}`, true, 400, "request:unknown-field", "secret"},
	}
	for _, sandbox := range []bool{true, false} {
		s := apptest.Start(t, "sqlite", apptest.Options{NoSandbox: !sandbox})
		p := newPartner(t, s)
		existing := p.createEndpoint(t, map[string]any{"url": "https://example.com/existing"})
		before := p.endpoints(t)
		for _, tc := range cases {
			if tc.sandbox && !sandbox && tc.code == invalidURL {
				continue // a URL the sandbox refuses is refused outside it too, tested there
			}
			if !tc.sandbox && sandbox {
				continue
			}
			t.Run(tc.name, func(t *testing.T) {
				path := "/webhook-endpoints"
				if tc.method == "PATCH" {
					path += "/" + existing.EndpointID
				}
				wantError(t, p.do(t, tc.method, path, tc.body), tc.status, tc.code, tc.target)
				if after := p.endpoints(t); !reflect.DeepEqual(after, before) {
					t.Errorf("endpoints changed: %+v, were %+v", after, before)
				}
			})
		}
	}
	// The sandbox takes the http, loopback and private URLs of a partner's receivers on its own
	// machine and network.
	s := apptest.Start(t, "sqlite")
	p := newPartner(t, s)
	p.createEndpoint(t, map[string]any{"url": "http://127.0.0.1:9999/hooks"})
	p.createEndpoint(t, map[string]any{"url": "http://localhost:9999/hooks", "eventTypes": []string{"*"}})
	p.createEndpoint(t, map[string]any{"url": "http://192.168.1.20:9999/hooks"})

	// What an error quotes of a refused type is cut: a long input makes no long answer.
	long := strings.Repeat("x", 60000)
	r := p.do(t, "POST", "/webhook-endpoints", `{"url": "https://example.com/x", "eventTypes": ["`+long+`"]}`)
	if e := wantError(t, r, 400, invalidField, "eventTypes"); strings.Contains(e.DisplayMessage, long[:100]) || !strings.Contains(e.DisplayMessage, "…") || len(r.Body) > 2000 {
		t.Errorf("a refused type of 60,000 bytes: %d bytes of answer, message %.300q; want the type cut", len(r.Body), e.DisplayMessage)
	}
	// "*" is refused beside other types for being there, not for not being a type.
	r = p.do(t, "POST", "/webhook-endpoints", `{"url": "https://example.com/x", "eventTypes": ["*", "batch.completed"]}`)
	if e := wantError(t, r, 400, invalidField, "eventTypes"); !strings.Contains(e.DisplayMessage, `"*" (every type) stands alone`) {
		t.Errorf("\"*\" beside another type: %q", e.DisplayMessage)
	}
}

func TestWebhookRoutesNeedTheirScopes(t *testing.T) {
	s := apptest.Start(t, "sqlite")
	p := newPartner(t, s)
	e := p.createEndpoint(t, map[string]any{"url": "https://example.com/x"})
	limited := p
	limited.token = s.Token(t, p.p, billing.ScopeCustomersRead, billing.ScopeBatchesRead)
	base := "/webhook-endpoints/" + e.EndpointID
	for _, tc := range []struct{ method, path, scope string }{
		{"GET", "/events", "billing:events:read"},
		{"POST", "/webhook-endpoints", "billing:webhooks:manage"},
		{"GET", "/webhook-endpoints", "billing:webhooks:manage"},
		{"GET", base, "billing:webhooks:manage"},
		{"PATCH", base, "billing:webhooks:manage"},
		{"DELETE", base, "billing:webhooks:manage"},
		{"POST", base + "/secret-rotation", "billing:webhooks:manage"},
		{"GET", base + "/deliveries", "billing:webhooks:manage"},
		{"POST", base + "/deliveries/dlv_x/retry", "billing:webhooks:manage"},
		{"POST", "/sandbox/webhook-endpoints/" + e.EndpointID + "/test", "billing:webhooks:manage"},
	} {
		r := limited.do(t, tc.method, tc.path, nil)
		wantError(t, r, http.StatusForbidden, "auth:insufficient-scope", "Authorization")
		if !strings.Contains(r.Header.Get("WWW-Authenticate"), `scope="`+tc.scope+`"`) {
			t.Errorf("%s %s: WWW-Authenticate %q, want scope %s", tc.method, tc.path, r.Header.Get("WWW-Authenticate"), tc.scope)
		}
	}
}

// The events about a webhook endpoint (webhook.test, webhookEndpoint.disabled) carry it, its URL
// with it, which GET of the endpoint shows only with billing:webhooks:manage: a caller with
// billing:events:read alone is not shown them, page by page, and asking for their type is refused.
func TestEventsOfAnEndpointAreListedOnlyToWhoManagesEndpoints(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		e := p.createEndpoint(t, map[string]any{"url": "https://example.com/hooks?key=SECRET-IN-URL"})
		wantStatus(t, p.post(t, "/sandbox/webhook-endpoints/"+e.EndpointID+"/test"), http.StatusAccepted)
		p.mustInvite(t, "A")
		wantStatus(t, p.post(t, "/sandbox/webhook-endpoints/"+e.EndpointID+"/test"), http.StatusAccepted)
		p.mustInvite(t, "B")
		_, all := p.awaitEvents(t, func(events []event) bool { return len(events) == 4 })
		if got := types(all); !slices.Equal(got, []string{"webhook.test", "customer.invited", "webhook.test", "customer.invited"}) {
			t.Fatalf("a caller with every scope lists %v", got)
		}

		reader := p
		reader.token = s.Token(t, p.p, billing.ScopeEventsRead)
		// Each list awaited (eventsPage): on PostgreSQL it may show fewer of the newest events
		// for a moment after the list above showed them.
		raw, events, next := reader.eventsPage(t, "?limit=100", 2)
		if got := types(events); !slices.Equal(got, []string{"customer.invited", "customer.invited"}) || next != "" {
			t.Errorf("events:read alone lists %v (next %q); want the two invitations", got, next)
		}
		for _, r := range raw {
			if strings.Contains(string(r), "SECRET-IN-URL") {
				t.Errorf("events:read alone is shown an endpoint's URL: %s", r)
			}
		}
		// A page of one skips the events it may not read, before and between those it may.
		_, first, next := reader.eventsPage(t, "?limit=1", 1)
		if len(first) != 1 || first[0].EventID != all[1].EventID || next != all[1].EventID {
			t.Errorf("first page %v, next %q; want the first invitation, then its id", types(first), next)
		}
		_, second, next := reader.eventsPage(t, "?limit=1&after="+all[1].EventID, 1)
		if len(second) != 1 || second[0].EventID != all[3].EventID || next != "" {
			t.Errorf("second page %v, next %q; want the second invitation, and no next", types(second), next)
		}
		for _, typ := range []string{"webhook.test", "webhookEndpoint.disabled"} {
			wantError(t, reader.do(t, http.MethodGet, "/events?type="+typ, nil), http.StatusForbidden, "auth:insufficient-scope", "type")
		}
		if _, got, _ := reader.eventsPage(t, "?type=customer.invited", 2); len(got) != 2 {
			t.Errorf("events:read alone lists %v of type customer.invited; want both invitations", types(got))
		}
	})
}

// Another organisation's endpoint, or another site's, is not there for a caller: every route
// of an endpoint answers 404 webhook-endpoint:not-found, and nothing of it changes.
func TestAnotherSitesWebhookEndpointIsInvisible(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		rc, e, d := p.failedDelivery(t, http.StatusServiceUnavailable, "h1") // for the retry
		rc.answer(http.StatusOK)
		base := "/webhook-endpoints/" + e.EndpointID
		snapshot := func() string {
			t.Helper()
			var got string
			for _, path := range []string{base, base + "/deliveries"} {
				r := p.do(t, http.MethodGet, path, nil)
				wantStatus(t, r, http.StatusOK)
				var body struct{ Data json.RawMessage }
				r.JSON(t, &body)
				got += string(body.Data) + "\n"
			}
			return got
		}
		before := snapshot()

		secondSite, err := s.Service.CreateSite(context.Background(), p.p.Organisation.ID, "Second site")
		if err != nil {
			t.Fatal(err)
		}
		callers := []struct {
			name   string
			caller partner
		}{
			{"another organisation", newPartner(t, s)},
			{"another site of the organisation", partner{s: s, p: p.p, token: p.token, site: secondSite.ID}},
		}
		routes := []struct {
			name, method, path string
			body               any
		}{
			{"read", http.MethodGet, base, nil},
			{"update", http.MethodPatch, base, map[string]any{"url": "https://example.com/taken", "eventTypes": []string{"batch.completed"}, "state": "disabled"}},
			{"delete", http.MethodDelete, base, nil},
			{"rotate the secret", http.MethodPost, base + "/secret-rotation", nil},
			{"list the deliveries", http.MethodGet, base + "/deliveries", nil},
			{"retry a delivery", http.MethodPost, base + "/deliveries/" + d.DeliveryID + "/retry", nil},
			{"test it (sandbox)", http.MethodPost, "/sandbox/webhook-endpoints/" + e.EndpointID + "/test", nil},
		}
		for _, c := range callers {
			for _, tc := range routes {
				t.Run(c.name+" cannot "+tc.name, func(t *testing.T) {
					wantError(t, c.caller.do(t, tc.method, tc.path, tc.body), http.StatusNotFound, "webhook-endpoint:not-found", "endpointId")
				})
			}
		}

		time.Sleep(100 * time.Millisecond) // time for a retry or a test that should not be sent
		if after := snapshot(); after != before {
			t.Errorf("the endpoint and its deliveries changed:\n%s\nwere\n%s", after, before)
		}
		if n := rc.count(); n != 1 {
			t.Errorf("the endpoint was sent %d requests, want the one failed delivery alone", n)
		}
		// Still enabled, at its URL, on its own secret alone (no rotation): the next event comes
		// signed once, by the secret it was made with.
		p.mustInvite(t, "h2")
		next := rc.await(2)[1]
		verify(t, next, e.Secret)
		var nextEvent event
		_ = json.Unmarshal(next.body, &nextEvent)
		if nextEvent.Type != "customer.invited" || strings.Count(next.header.Get("webhook-signature"), "v1,") != 1 {
			t.Errorf("the next delivery is %s, signed %q; want customer.invited, signed once", next.body, next.header.Get("webhook-signature"))
		}
	})
}

// receiver is a partner's webhook endpoint on loopback. It verifies every delivery with the
// official Standard Webhooks library, against each of the secrets it is given.
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	mu     sync.Mutex
	status int
	got    []delivery
}

type delivery struct {
	header http.Header
	body   []byte
}

func newReceiver(t testing.TB) *receiver {
	rc := &receiver{t: t, status: http.StatusOK}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{header: r.Header.Clone(), body: body})
		status := rc.status
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) answer(status int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.status = status
}

// count is how many requests came.
func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// await waits until n deliveries came, and returns them.
func (rc *receiver) await(n int) []delivery {
	rc.t.Helper()
	return rc.awaitUntil(fmt.Sprintf("want %d", n), func(got []delivery) bool { return len(got) >= n })
}

// awaitEvent waits until a delivery of an event of type typ came, and returns the first: others
// may come before it, and again (a delivery is at least once: a run that took over an endpoint
// whose hold the tests' clock ended sends again what was in flight).
func (rc *receiver) awaitEvent(typ string) delivery {
	rc.t.Helper()
	of := func(d delivery) bool {
		var e event
		return json.Unmarshal(d.body, &e) == nil && e.Type == typ
	}
	got := rc.awaitUntil("none of a "+typ+" event", func(got []delivery) bool { return slices.ContainsFunc(got, of) })
	return got[slices.IndexFunc(got, of)]
}

// awaitUntil waits until the deliveries that came are done, and returns them; want says what is
// missing when they never are.
func (rc *receiver) awaitUntil(want string, done func([]delivery) bool) []delivery {
	rc.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rc.mu.Lock()
		got := append([]delivery(nil), rc.got...)
		rc.mu.Unlock()
		if done(got) {
			return got
		}
		if time.Now().After(deadline) {
			rc.t.Fatalf("%d deliveries came, %s", len(got), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// verify checks d with the Standard Webhooks library and each secret, and against the OpenAPI
// document's webhooks.
func verify(t testing.TB, d delivery, secrets ...string) {
	t.Helper()
	if err := apptest.CheckWebhook(d.header, d.body); err != nil {
		t.Error(err)
	}
	for _, secret := range secrets {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(d.body, d.header); err != nil {
			t.Errorf("the Standard Webhooks library refuses the delivery with secret %d: %v", len(secret), err)
		}
	}
}

func TestWebhooksAreSignedAsTheEventsListHasThem(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		rc := newReceiver(t)
		all := p.createEndpoint(t, map[string]any{"url": rc.srv.URL + "/all"})
		p.createEndpoint(t, map[string]any{"url": rc.srv.URL + "/revocations", "eventTypes": []string{"customer.revoked"}})

		p.mustInvite(t, "w1")
		got := rc.await(1)
		raw, events := p.awaitEvents(t, atLeast(1))
		d := got[0]
		verify(t, d, all.Secret)
		if !bytes.Equal(d.body, raw[0]) {
			t.Errorf("the delivery's body %s is not the events list's %s", d.body, raw[0])
		}
		if d.header.Get("webhook-id") != events[0].EventID || d.header.Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", d.header)
		}

		// During a rotation both secrets sign: a receiver still on the old one loses nothing.
		r := p.do(t, http.MethodPost, "/webhook-endpoints/"+all.EndpointID+"/secret-rotation", nil)
		rotated := dataOf[endpoint](t, r)
		wantStatus(t, p.post(t, "/sandbox/customers/w1/signup"), http.StatusOK)
		got = rc.await(2)
		verify(t, got[1], all.Secret, rotated.Secret)
		if n := strings.Count(got[1].header.Get("webhook-signature"), "v1,"); n != 2 {
			t.Errorf("webhook-signature %q: want two signatures during the rotation", got[1].header.Get("webhook-signature"))
		}

		// The endpoint subscribed to revocations gets those alone.
		wantStatus(t, p.post(t, "/customers/w1/revoke"), http.StatusOK)
		got = rc.await(4)
		time.Sleep(100 * time.Millisecond)
		var revocations int
		for _, d := range rc.await(4) {
			var e event
			_ = json.Unmarshal(d.body, &e)
			if e.Type == "customer.revoked" {
				revocations++
			}
		}
		if len(rc.got) != 4 || revocations != 2 {
			t.Errorf("%d deliveries, %d of customer.revoked; want 4 and 2", len(got), revocations)
		}

		// The deliveries list shows each attempt; a sandbox test goes to the endpoint alone.
		r = p.do(t, http.MethodPost, "/sandbox/webhook-endpoints/"+all.EndpointID+"/test", nil)
		wantStatus(t, r, http.StatusAccepted)
		test := rc.await(5)[4]
		verify(t, test, rotated.Secret)
		var testEvent event
		_ = json.Unmarshal(test.body, &testEvent)
		if testEvent.Type != "webhook.test" {
			t.Errorf("the test delivered %s", testEvent.Type)
		}
		deliveries := p.awaitDeliveries(t, all.EndpointID, 4, "succeeded")
		for _, d := range deliveries {
			if len(d.Attempts) != 1 || d.Attempts[0].Status != 200 || d.Attempts[0].Error != "" {
				t.Errorf("delivery %+v: want one attempt answered 200", d)
			}
		}
	})
}

type deliveryJSON struct {
	DeliveryID string `json:"deliveryId"`
	EventID    string `json:"eventId"`
	EventType  string `json:"eventType"`
	State      string `json:"state"`
	Attempts   []struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	} `json:"attempts"`
}

// awaitDeliveries waits until the endpoint's newest n deliveries are all in state, and returns
// them.
func (p partner) awaitDeliveries(t testing.TB, endpointID string, n int, state string) []deliveryJSON {
	t.Helper()
	return p.awaitDeliveriesWhere(t, endpointID, fmt.Sprintf("%d %s", n, state), func(ds []deliveryJSON) bool {
		done := len(ds) >= n
		for _, d := range ds {
			done = done && d.State == state
		}
		return done
	})
}

// awaitDeliveriesWhere lists the endpoint's deliveries until done holds of them, and returns them;
// want says what done waits for.
func (p partner) awaitDeliveriesWhere(t testing.TB, endpointID, want string, done func([]deliveryJSON) bool) []deliveryJSON {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := p.do(t, http.MethodGet, "/webhook-endpoints/"+endpointID+"/deliveries", nil)
		wantStatus(t, r, http.StatusOK)
		ds := dataOf[[]deliveryJSON](t, r)
		if done(ds) {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries = %+v, want %s", ds, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAFailedDeliveryIsRecordedAndRetriedOnRequest(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		rc, e, d := p.failedDelivery(t, http.StatusServiceUnavailable, "f1")
		if d.State != "pending" || d.Attempts[0].Status != 503 || d.Attempts[0].Error == "" {
			t.Errorf("after a 503: %+v; want pending, with the status and an error", d)
		}

		rc.answer(http.StatusOK)
		r := p.do(t, http.MethodPost, "/webhook-endpoints/"+e.EndpointID+"/deliveries/"+d.DeliveryID+"/retry", nil)
		wantStatus(t, r, http.StatusAccepted)
		retried := p.awaitDeliveries(t, e.EndpointID, 1, "succeeded")
		if last := retried[0].Attempts[len(retried[0].Attempts)-1]; last.Status != 200 {
			t.Errorf("after the retry: %+v", retried[0])
		}
		got := rc.await(2)
		verify(t, got[len(got)-1], e.Secret)
		if got[0].header.Get("webhook-id") != got[len(got)-1].header.Get("webhook-id") {
			t.Errorf("a retry has another webhook-id: receivers de-duplicate on it")
		}

		base := "/webhook-endpoints/" + e.EndpointID
		// Each retry is an attempt more, kept and listed with the delivery: they are bounded.
		for range billing.DeliveryRetryLimit - 1 {
			wantStatus(t, p.do(t, http.MethodPost, base+"/deliveries/"+d.DeliveryID+"/retry", nil), http.StatusAccepted)
		}
		wantError(t, p.do(t, http.MethodPost, base+"/deliveries/"+d.DeliveryID+"/retry", nil), http.StatusConflict,
			"webhook-delivery:retry-limit", "deliveryId")
		wantError(t, p.do(t, http.MethodPost, base+"/deliveries/dlv_unknown/retry", nil), http.StatusNotFound,
			"webhook-delivery:not-found", "deliveryId")
		wantError(t, p.do(t, http.MethodGet, base+"/deliveries?cursor=!", nil), http.StatusBadRequest,
			"request:invalid-field", "cursor")
		wantError(t, p.do(t, http.MethodGet, base+"/deliveries?limit=500", nil), http.StatusBadRequest,
			"request:invalid-field", "limit")
		wantStatus(t, p.do(t, http.MethodPatch, base, map[string]any{"state": "disabled"}), http.StatusOK)
		wantError(t, p.do(t, http.MethodPost, base+"/deliveries/"+d.DeliveryID+"/retry", nil), http.StatusConflict,
			"webhook-endpoint:disabled", "endpointId")
		wantError(t, p.do(t, http.MethodPost, "/sandbox/webhook-endpoints/"+e.EndpointID+"/test", nil), http.StatusConflict,
			"webhook-endpoint:disabled", "endpointId")
	})
}

// An endpoint whose every delivery failed for five days is disabled, visibly: its state says so,
// and a webhookEndpoint.disabled event goes to the site's other endpoints and the events list.
func TestAnEndpointFailingForFiveDaysIsDisabled(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		failing, healthy := newReceiver(t), newReceiver(t)
		failing.answer(http.StatusInternalServerError)
		bad := p.createEndpoint(t, map[string]any{"url": failing.srv.URL})
		good := p.createEndpoint(t, map[string]any{"url": healthy.srv.URL})
		p.mustInvite(t, "d1")
		failing.await(1)
		healthy.await(1)
		first := p.awaitAttempts(t, bad.EndpointID, 1)

		s.Clock.Advance(billing.EndpointFailureLimit - time.Minute)
		p.token = s.Token(t, p.p)
		wantStatus(t, p.post(t, "/webhook-endpoints/"+bad.EndpointID+"/deliveries/"+first.DeliveryID+"/retry"), http.StatusAccepted)
		failing.await(2)
		p.awaitAttempts(t, bad.EndpointID, 2)
		if e := dataOf[endpoint](t, p.do(t, http.MethodGet, "/webhook-endpoints/"+bad.EndpointID, nil)); e.State != "enabled" {
			t.Fatalf("after failing for less than five days the endpoint is %s", e.State)
		}

		s.Clock.Advance(time.Minute)
		p.token = s.Token(t, p.p)
		wantStatus(t, p.post(t, "/webhook-endpoints/"+bad.EndpointID+"/deliveries/"+first.DeliveryID+"/retry"), http.StatusAccepted)
		failing.await(3)
		got := healthy.awaitEvent("webhookEndpoint.disabled")
		verify(t, got, good.Secret)
		var disabledEvent event
		_ = json.Unmarshal(got.body, &disabledEvent)
		var data endpoint
		_ = json.Unmarshal(disabledEvent.Data, &data)
		if data.EndpointID != bad.EndpointID || data.DisabledReason != "failing" || data.Secret != "" {
			t.Errorf("the healthy endpoint got %s", got.body)
		}
		e := dataOf[endpoint](t, p.do(t, http.MethodGet, "/webhook-endpoints/"+bad.EndpointID, nil))
		if e.State != "disabled" || e.DisabledReason != "failing" {
			t.Errorf("the failing endpoint is %+v, want disabled as failing", e)
		}
		p.awaitEvents(t, func(events []event) bool {
			return len(events) == 2 && events[1].Type == "webhookEndpoint.disabled"
		})

		// Enabling it gives it five days again, and deliveries flow once it answers.
		failing.answer(http.StatusOK)
		wantStatus(t, p.do(t, http.MethodPatch, "/webhook-endpoints/"+bad.EndpointID, map[string]any{"state": "enabled"}), http.StatusOK)
		p.mustInvite(t, "d2")
		verify(t, failing.await(4)[3], bad.Secret)
	}, apptest.Options{RetrySchedule: []time.Duration{}}) // each attempt a delivery's last
}

// An endpoint is disabled by a delivery's last attempt, not by a first one: after six quiet days,
// its last failures older than the five days that disable it, a new event's first attempt failing
// leaves the endpoint enabled for its retries, which reach it once it answers again. (Six days:
// within the invitations' seven, so that no customer.expired event comes meanwhile.)
func TestAnEndpointIsNotDisabledByAFirstFailureAfterQuietDays(t *testing.T) {
	schedule := []time.Duration{time.Hour, time.Hour, time.Hour}
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		rc, e, _ := p.failedDelivery(t, http.StatusInternalServerError, "q1")
		for i := range schedule { // to the first delivery's last attempt
			s.Clock.Advance(time.Hour)
			p.token = s.Token(t, p.p)
			p.awaitAttempts(t, e.EndpointID, i+2)
		}
		p.awaitDeliveriesWhere(t, e.EndpointID, "the first delivery failed", func(ds []deliveryJSON) bool {
			return len(ds) == 1 && ds[0].State == "failed"
		})

		s.Clock.Advance(6 * 24 * time.Hour)
		p.token = s.Token(t, p.p)
		p.mustInvite(t, "q2")
		// A run that took over the endpoint, its hold ended by the clock's leap, may send it twice
		// (at least once): the schedule leaves retries either way.
		p.awaitDeliveriesWhere(t, e.EndpointID, "the new event's first attempt", func(ds []deliveryJSON) bool {
			return len(ds) == 2 && len(ds[0].Attempts) >= 1
		})
		if got := dataOf[endpoint](t, p.do(t, http.MethodGet, "/webhook-endpoints/"+e.EndpointID, nil)); got.State != "enabled" {
			t.Fatalf("after a first failure the endpoint is %s (%s), want enabled", got.State, got.DisabledReason)
		}
		rc.answer(http.StatusOK)
		s.Clock.Advance(time.Hour)
		p.token = s.Token(t, p.p)
		p.awaitDeliveriesWhere(t, e.EndpointID, "the new event delivered", func(ds []deliveryJSON) bool {
			return len(ds) == 2 && ds[0].State == "succeeded"
		})
		got := rc.await(1)
		verify(t, got[len(got)-1], e.Secret)
	}, apptest.Options{RetrySchedule: schedule})
}

// failedDelivery makes an endpoint whose receiver answers status, and an invitation (ref) whose
// delivery's first attempt it fails; it returns the receiver, the endpoint and the delivery.
func (p partner) failedDelivery(t testing.TB, status int, ref string) (*receiver, endpoint, deliveryJSON) {
	t.Helper()
	rc := newReceiver(t)
	rc.answer(status)
	e := p.createEndpoint(t, map[string]any{"url": rc.srv.URL})
	p.mustInvite(t, ref)
	rc.await(1)
	return rc, e, p.awaitAttempts(t, e.EndpointID, 1)
}

// awaitAttempts waits until the endpoint's newest delivery has n attempts, and returns it.
func (p partner) awaitAttempts(t testing.TB, endpointID string, n int) deliveryJSON {
	t.Helper()
	return p.awaitDeliveriesWhere(t, endpointID, fmt.Sprintf("%d attempts", n), func(ds []deliveryJSON) bool {
		return len(ds) > 0 && len(ds[0].Attempts) >= n
	})[0]
}

// A debit the customer's bank returns (BECS) is delivered to the endpoints that subscribe to
// debit.returned as the document's webhooks describe it: the row as GET of the batch shows it,
// with its batch's reference, byte for byte the events list's item.
func TestADebitReturnedIsDeliveredAsDocumented(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		ctx := context.Background()
		p := newPartner(t, s)
		r := putOnBECS(t, s, p.site)
		site := p.p.Site
		rc := newReceiver(t)
		e := p.createEndpoint(t, map[string]any{"url": rc.srv.URL, "eventTypes": []string{"debit.returned"}})
		p.link(t, "C1")
		p.mustSubmit(t, batchRequest("B1", debit{"R1", "C1", 100}, debit{"R2", "C1", 200}))
		b, _, rows, err := s.Service.Batch(ctx, site, "B1", "")
		if err != nil {
			t.Fatal(err)
		}
		// The test drives the rail: execute (the debits are queued), cut, lodge, execute again (the
		// rows succeed). The job workers may execute the batch too: an execution is safe to repeat.
		execute := func() {
			t.Helper()
			if _, _, err := s.Service.ExecuteBatch(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
		}
		execute()
		files, err := r.Cut(ctx, becs.Calendar{})
		if err != nil || len(files) != 1 {
			t.Fatalf("Cut = %+v, %v; want one file", files, err)
		}
		if _, err := r.Lodge(ctx, files[0].ID); err != nil {
			t.Fatal(err)
		}
		execute()
		content, err := r.Content(ctx, files[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		returns, err := becs.ReturnsOf(content, map[string]aba.ReturnReason{
			becs.LodgementReference(rows[1].ID): aba.ReturnReferToCustomer,
		}, s.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if report, err := app.ImportBECSReturns(ctx, r, s.Service, s.Clock, returns); err != nil || report.Returned != 1 {
			t.Fatalf("ImportBECSReturns = %+v, %v; want one row returned", report, err)
		}

		d := rc.await(1)[0]
		verify(t, d, e.Secret)
		raw, events := p.awaitEvents(t, func(events []event) bool {
			return len(events) > 0 && events[len(events)-1].Type == "debit.returned"
		})
		if !bytes.Equal(d.body, raw[len(raw)-1]) || d.header.Get("webhook-id") != events[len(events)-1].EventID {
			t.Errorf("the delivery %s is not the events list's %s", d.body, raw[len(raw)-1])
		}
		var returned struct {
			BatchReference string `json:"batchReference"`
			RowReference   string `json:"rowReference"`
			State          string `json:"state"`
			Retryable      *bool  `json:"retryable"`
			FileID         string `json:"fileId"`
			ReturnedAt     int64  `json:"returnedAt"`
			ReturnReason   string `json:"returnReason"`
		}
		var got event
		_ = json.Unmarshal(d.body, &got)
		_ = json.Unmarshal(got.Data, &returned)
		if got.Type != "debit.returned" || returned.BatchReference != "B1" || returned.RowReference != "R2" || returned.State != "succeeded" ||
			returned.ReturnReason != "referToCustomer" || returned.Retryable == nil || !*returned.Retryable ||
			returned.FileID != files[0].ID || returned.ReturnedAt != s.Clock.Now().UnixMilli() {
			t.Errorf("the debit.returned delivery is %s; want R2 of B1 in %s, returned for referToCustomer, retryable", d.body, files[0].ID)
		}

		// The batch's CSV carries the file and the return too, for the partner who reconciles in a
		// spreadsheet.
		csvAnswer := p.getBatch(t, "B1", "", "Accept", "text/csv")
		records, err := csv.NewReader(bytes.NewReader(csvAnswer.Body)).ReadAll()
		if err != nil || len(records) != 3 {
			t.Fatalf("the CSV is %s (%v); want a header and two rows", csvAnswer.Body, err)
		}
		at := strconv.FormatInt(s.Clock.Now().UnixMilli(), 10)
		wantTail := map[string][]string{"R1": {files[0].ID, "", ""}, "R2": {files[0].ID, at, "referToCustomer"}}
		for _, rec := range records[1:] {
			if tail := rec[len(rec)-3:]; !slices.Equal(tail, wantTail[rec[0]]) || rec[5] != map[string]string{"R1": "", "R2": "true"}[rec[0]] {
				t.Errorf("the CSV's line of %s is %v; want it to end %v", rec[0], rec, wantTail[rec[0]])
			}
		}
	})
}
