package httpapi_test

// Events and webhooks from a partner's point of view, beyond events_test.go: each test states
// what issue 11 ("Events and signed webhooks"), the README or api/openapi.yaml promise, and checks
// the running server over HTTP.

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/jobs"
	"github.com/pyng/receivables/storage"
)

// listedDelivery is a delivery as GET .../deliveries lists it, with every documented field.
type listedDelivery struct {
	DeliveryID string `json:"deliveryId"`
	EventID    string `json:"eventId"`
	EventType  string `json:"eventType"`
	State      string `json:"state"`
	CreatedAt  int64  `json:"createdAt"`
	Attempts   []struct {
		AttemptedAt int64  `json:"attemptedAt"`
		Status      int    `json:"status"`
		Error       string `json:"error"`
		DurationMs  *int64 `json:"durationMs"`
	} `json:"attempts"`
}

func (p partner) listDeliveries(t testing.TB, endpointID, query string) ([]listedDelivery, string) {
	t.Helper()
	r := p.do(t, http.MethodGet, "/webhook-endpoints/"+endpointID+"/deliveries"+query, nil)
	wantStatus(t, r, http.StatusOK)
	var body struct {
		Data       []listedDelivery `json:"data"`
		NextCursor string           `json:"nextCursor"`
	}
	r.JSON(t, &body)
	return body.Data, body.NextCursor
}

// waitFor polls until done, failing after 20 s.
func waitFor(t testing.TB, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signatureCount is the number of v1 signatures in a delivery.
func signatureCount(d delivery) int {
	return len(strings.Fields(d.header.Get("webhook-signature")))
}

// verifiedBy reports whether the Standard Webhooks library accepts d with secret.
func verifiedBy(t testing.TB, d delivery, secret string) bool {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return wh.Verify(d.body, d.header) == nil
}

// rotateSecret rotates the endpoint's secret and returns the new one.
func (p partner) rotateSecret(t testing.TB, endpointID string) string {
	t.Helper()
	r := p.do(t, http.MethodPost, "/webhook-endpoints/"+endpointID+"/secret-rotation", nil)
	wantStatus(t, r, http.StatusOK)
	return dataOf[endpoint](t, r).Secret
}

// "A site has at most 16 endpoints" (README; 409 webhook-endpoint:limit-reached). The cap must
// hold when a partner's deployment creates endpoints concurrently, not only one at a time.
func TestTheWebhookEndpointLimitHoldsUnderConcurrentCreations(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		const tries = 40
		statuses := make([]int, tries)
		var wg sync.WaitGroup
		for i := range tries {
			wg.Go(func() {
				statuses[i] = p.do(t, http.MethodPost, "/webhook-endpoints", map[string]any{"url": "https://example.com/c"}).Status
			})
		}
		wg.Wait()
		created, other := 0, map[int]int{}
		for _, st := range statuses {
			switch st {
			case http.StatusCreated:
				created++
			case http.StatusConflict:
			default:
				other[st]++
			}
		}
		n := len(p.endpoints(t))
		if n > billing.MaxWebhookEndpoints || created > billing.MaxWebhookEndpoints {
			t.Errorf("%d concurrent creations: %d answered 201 and the site has %d endpoints; at most %d allowed",
				tries, created, n, billing.MaxWebhookEndpoints)
		}
		if len(other) > 0 {
			t.Errorf("statuses other than 201/409: %v", other)
		}
	})
}

// Issue: "for 24 hours both the old and the new secret sign every message (two signatures in the
// header)"; then the old one no longer does. README: "rotating again within those 24 hours ends
// the older one at once".
func TestARotatedSecretSignsFor24HoursThenNoLonger(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		rc := newReceiver(t)
		e := p.createEndpoint(t, map[string]any{"url": rc.srv.URL})
		first := e.Secret
		second := p.rotateSecret(t, e.EndpointID)
		// deliveryOf invites ref and returns the first request of its event, once the delivery is
		// recorded (the test's clock may then jump without a run losing its hold mid-attempt).
		n := 0
		deliveryOf := func(ref string) delivery {
			t.Helper()
			p.mustInvite(t, ref)
			n++
			p.awaitDeliveries(t, e.EndpointID, n, "succeeded")
			for _, d := range rc.await(n) {
				if bytes.Contains(d.body, []byte(`"customerReference":"`+ref+`"`)) {
					return d
				}
			}
			t.Fatalf("no delivery of %s", ref)
			return delivery{}
		}

		s.Clock.Advance(23 * time.Hour)
		p.token = s.Token(t, p.p)
		d := deliveryOf("r1")
		verify(t, d, first, second)
		if signatureCount(d) != 2 {
			t.Errorf("23 h after the rotation: %d signatures, want 2", signatureCount(d))
		}

		s.Clock.Advance(time.Hour + time.Second)
		p.token = s.Token(t, p.p)
		d = deliveryOf("r2")
		verify(t, d, second)
		if signatureCount(d) != 1 || verifiedBy(t, d, first) {
			t.Errorf("24 h after the rotation: signature %q; want one, by the new secret alone", d.header.Get("webhook-signature"))
		}

		third := p.rotateSecret(t, e.EndpointID)
		fourth := p.rotateSecret(t, e.EndpointID) // within 24 h of the last: `third` signs beside it, `second` no more
		d = deliveryOf("r3")
		verify(t, d, third, fourth)
		if signatureCount(d) != 2 || verifiedBy(t, d, second) {
			t.Errorf("after two rotations: signature %q; want two, by the last two secrets", d.header.Get("webhook-signature"))
		}
	})
}

// Issue: "the target host must not resolve to a loopback, private ... address outside the
// sandbox, checked at connect time (a dialer control, so DNS rebinding can't get around it)".
// A host name (not an IP literal) is accepted when saved; the delivery must then be refused when
// it connects, and the receiver never reached.
func TestAHostNameResolvingToLoopbackIsRefusedWhenConnecting(t *testing.T) {
	name, _ := os.Hostname()
	addrs, _ := net.LookupHost(name)
	loopback := false
	for _, a := range addrs {
		if ip, err := netip.ParseAddr(a); err == nil && ip.IsLoopback() {
			loopback = true
		}
	}
	if name == "" || name == "localhost" || !loopback {
		t.Skipf("the host name %q does not resolve to loopback (%v)", name, addrs)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	s := apptest.Start(t, "sqlite", apptest.Options{NoSandbox: true})
	p := newPartner(t, s)
	putOnBECS(t, s, p.site) // outside the sandbox a site on the sandbox rail takes no invitation
	e := p.createEndpoint(t, map[string]any{"url": "https://" + name + ":" + port + "/hook"})
	p.mustInvite(t, "dns-1")
	var ds []listedDelivery
	waitFor(t, "an attempt", func() bool {
		ds, _ = p.listDeliveries(t, e.EndpointID, "")
		return len(ds) == 1 && len(ds[0].Attempts) > 0
	})
	a := ds[0].Attempts[0]
	if a.Status != 0 || !strings.Contains(a.Error, "refused") || strings.Contains(a.Error, "127.0.0.1") {
		t.Errorf("attempt %+v; want refused at connect time, without the address", a)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the loopback listener was connected to %d times", n)
	}
}

// Issue: retried "immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, then the delivery is
// failed": eight attempts in all (README: "after the eighth attempt it is failed"), each listed
// with its time, status, error and duration.
func TestADeliveryIsAttemptedEightTimesThenFailed(t *testing.T) {
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	if !reflect.DeepEqual(jobs.DefaultRetrySchedule, want) {
		t.Errorf("DefaultRetrySchedule = %v, want %v", jobs.DefaultRetrySchedule, want)
	}
	schedule := make([]time.Duration, 7)
	for i := range schedule {
		schedule[i] = time.Duration(i+1) * 30 * time.Millisecond
	}
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		s.Clock.Run(t)
		p := newPartner(t, s)
		rc := newReceiver(t)
		rc.answer(http.StatusInternalServerError)
		e := p.createEndpoint(t, map[string]any{"url": rc.srv.URL})
		p.mustInvite(t, "sched-1")
		var ds []listedDelivery
		waitFor(t, "the delivery failed", func() bool {
			ds, _ = p.listDeliveries(t, e.EndpointID, "")
			return len(ds) == 1 && ds[0].State == "failed"
		})
		time.Sleep(500 * time.Millisecond)
		ds, _ = p.listDeliveries(t, e.EndpointID, "")
		if len(ds[0].Attempts) != 8 || rc.count() != 8 {
			t.Fatalf("%d attempts listed, %d requests received; want 8", len(ds[0].Attempts), rc.count())
		}
		for i, a := range ds[0].Attempts {
			if a.Status != 500 || a.Error == "" || a.AttemptedAt == 0 || a.DurationMs == nil {
				t.Errorf("attempt %d = %+v; want its time, status 500, an error and a duration", i+1, a)
			}
			if i > 0 {
				if gap := time.Duration(a.AttemptedAt-ds[0].Attempts[i-1].AttemptedAt) * time.Millisecond; gap < schedule[i-1] {
					t.Errorf("attempt %d came %v after the one before, want at least %v", i+1, gap, schedule[i-1])
				}
			}
		}
	}, apptest.Options{RetrySchedule: schedule})
}

// The events list's cursor and limits: limit 1..100 (50 by default), nextCursor absent on the last
// page, `after` the last event gives an empty page, ?type= with an `after` of another type, the
// parameters of other routes refused as unknown.
func TestEventsListPagingEdges(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		for i := range 51 {
			p.mustInvite(t, "pg-"+string(rune('a'+i/26))+string(rune('a'+i%26)))
		}
		wantStatus(t, p.post(t, "/sandbox/customers/pg-aa/signup"), http.StatusOK)
		p.awaitEvents(t, atLeast(52))

		raw, events, next := p.eventsPage(t, "", 50)
		if len(raw) != 50 || next != events[49].EventID {
			t.Errorf("default page: %d events, nextCursor %q; want 50 and the 50th's id", len(raw), next)
		}
		_, rest, next := p.eventsPage(t, "?after="+next, 2)
		if len(rest) != 2 || next != "" {
			t.Errorf("second page: %d events, nextCursor %q; want 2 and none", len(rest), next)
		}
		last := rest[len(rest)-1].EventID
		r := p.do(t, http.MethodGet, "/events?after="+last, nil)
		wantStatus(t, r, http.StatusOK)
		if !bytes.Contains(r.Body, []byte(`"data":[]`)) || bytes.Contains(r.Body, []byte("nextCursor")) {
			t.Errorf("after the last event: %s; want an empty data array and no nextCursor", r.Body)
		}
		raw, _, _ = p.eventsPage(t, "?limit=100", 52)
		if len(raw) != 52 {
			t.Errorf("limit=100 gave %d events, want 52", len(raw))
		}
		_, one, next := p.eventsPage(t, "?limit=1", 1)
		if len(one) != 1 || next != one[0].EventID {
			t.Errorf("limit=1: %d events, nextCursor %q", len(one), next)
		}
		// The type filter applies after a cursor of another type.
		_, linked, next := p.eventsPage(t, "?type=customer.linked&after="+events[0].EventID, 1)
		if len(linked) != 1 || linked[0].Type != "customer.linked" || next != "" {
			t.Errorf("?type=customer.linked after an invitation gave %v, nextCursor %q", types(linked), next)
		}
		// webhook.test is a type of the list (the document's EventType).
		wantStatus(t, p.do(t, http.MethodGet, "/events?type=webhook.test", nil), http.StatusOK)
		for _, q := range []string{"?limit=abc", "?limit=-1", "?limit=1.5", "?limit=", "?limit=1&limit=2"} {
			wantError(t, p.do(t, http.MethodGet, "/events"+q, nil), http.StatusBadRequest, "request:invalid-field", "limit")
		}
		for _, q := range []string{"?type=", "?type=*", "?type=Customer.Linked"} {
			wantError(t, p.do(t, http.MethodGet, "/events"+q, nil), http.StatusBadRequest, "request:invalid-field", "type")
		}
		wantError(t, p.do(t, http.MethodGet, "/events?after=", nil), http.StatusBadRequest, "request:invalid-field", "after")
		wantError(t, p.do(t, http.MethodGet, "/events?cursor=x", nil), http.StatusBadRequest, "request:unknown-field", "cursor")
	})
}

// Events are kept 30 days: then they leave the list, before the hourly purge deletes them as
// after it, and an `after` naming a purged one is refused as the document says ("an eventId of
// this site from the last 30 days"), never a 500.
func TestPurgedEventsLeaveTheListAndTheirCursor(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p, old := eventPastRetention(t, s)
		p.mustInvite(t, "new-1")
		for _, when := range []string{"before the purge", "after the purge"} {
			if when == "after the purge" {
				if _, err := s.Service.PurgeEvents(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			_, events := p.awaitEvents(t, atLeast(1))
			if len(events) != 1 || events[0].Type != "customer.invited" || events[0].EventID == old {
				t.Errorf("after 30 days, %s, the list is %+v; want the new invitation alone", when, events)
			}
			wantError(t, p.do(t, http.MethodGet, "/events?after="+old, nil), http.StatusBadRequest, "request:invalid-field", "after")
		}
	})
}

// eventPastRetention is a partner whose site's one event (an invitation) is past its retention
// by a second, and that event's id.
func eventPastRetention(t *testing.T, s *apptest.Server) (partner, string) {
	t.Helper()
	p := newPartner(t, s)
	p.mustInvite(t, "old-1")
	_, old := p.awaitEvents(t, atLeast(1))
	s.Clock.Advance(billing.EventRetention + time.Second)
	p.token = s.Token(t, p.p)
	return p, old[0].EventID
}

// The latest event, past its retention, is no cursor either, though the purge keeps it on SQLite
// (so that new events never take the positions of those removed).
func TestTheLatestEventPastItsRetentionIsNoCursor(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p, old := eventPastRetention(t, s)
		if _, err := s.Service.PurgeEvents(t.Context()); err != nil {
			t.Fatal(err)
		}
		wantError(t, p.do(t, http.MethodGet, "/events?after="+old, nil), http.StatusBadRequest, "request:invalid-field", "after")
		p.mustInvite(t, "new-1")
		if _, events := p.awaitEvents(t, atLeast(1)); len(events) != 1 || events[0].EventID == old {
			t.Errorf("the list after the purge is %+v; want the new invitation alone", events)
		}
	})
}

// PATCH changes the members sent, and only them; an unknown endpoint is 404 webhook-endpoint:not-found.
func TestAWebhookEndpointPatchChangesOnlyWhatIsSent(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		e := p.createEndpoint(t, map[string]any{"url": "https://example.com/a", "eventTypes": []string{"customer.linked"}})
		path := "/webhook-endpoints/" + e.EndpointID
		before := dataOf[endpoint](t, p.do(t, http.MethodGet, path, nil))
		for _, body := range []string{`{}`, `{"state":"enabled"}`} {
			r := p.do(t, http.MethodPatch, path, body)
			wantStatus(t, r, http.StatusOK)
			if got := dataOf[endpoint](t, r); !reflect.DeepEqual(got, before) {
				t.Errorf("PATCH %s changed the endpoint: %+v, was %+v", body, got, before)
			}
		}
		got := dataOf[endpoint](t, p.do(t, http.MethodPatch, path, map[string]any{"eventTypes": []string{"*"}}))
		if strings.Join(got.EventTypes, ",") != "*" || got.URL != before.URL || got.State != "enabled" {
			t.Errorf("PATCH eventTypes [*] gave %+v", got)
		}
		wantError(t, p.do(t, http.MethodPatch, "/webhook-endpoints/whe_unknown", map[string]any{"state": "disabled"}),
			http.StatusNotFound, "webhook-endpoint:not-found", "endpointId")
	})
}

// The document's SubscribedEventTypes: `["*"]` for every type, and "a type given twice counts
// once". ["*", "*"] is "*" given twice.
func TestEventTypeStarGivenTwiceCountsOnce(t *testing.T) {
	s := apptest.Start(t, "sqlite")
	p := newPartner(t, s)
	r := p.do(t, http.MethodPost, "/webhook-endpoints", map[string]any{"url": "https://example.com/x", "eventTypes": []string{"*", "*"}})
	wantStatus(t, r, http.StatusCreated)
	if got := dataOf[endpoint](t, r); strings.Join(got.EventTypes, ",") != "*" {
		t.Errorf("eventTypes = %v, want [*]", got.EventTypes)
	}
}

// The document's WebhookURL: "at most 2048 characters" (maxLength: 2048, which JSON Schema counts
// in characters). A URL of 1,120 characters is within it, whatever its bytes.
func TestWebhookURLLengthIsCountedInCharactersAsDocumented(t *testing.T) {
	s := apptest.Start(t, "sqlite")
	p := newPartner(t, s)
	u := "https://example.com/" + strings.Repeat("é", 1100)
	r := p.do(t, http.MethodPost, "/webhook-endpoints", map[string]any{"url": u})
	if r.Status != http.StatusCreated {
		t.Errorf("a URL of %d characters (%d bytes): %d %s; the document allows 2048 characters",
			len([]rune(u)), len(u), r.Status, r.Body)
	}
}

// The sandbox test: a webhook.test event, whose data is the endpoint (as GET answers it, without
// its secret), sent to that endpoint alone whatever it subscribes to, and listed among the events
// byte for byte as delivered.
func TestAWebhookTestGoesToTheTestedEndpointAlone(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		tested, other := newReceiver(t), newReceiver(t)
		e := p.createEndpoint(t, map[string]any{"url": tested.srv.URL, "eventTypes": []string{"batch.completed"}})
		p.createEndpoint(t, map[string]any{"url": other.srv.URL})
		r := p.do(t, http.MethodPost, "/sandbox/webhook-endpoints/"+e.EndpointID+"/test", `{}`)
		wantStatus(t, r, http.StatusAccepted)
		accepted := dataOf[listedDelivery](t, r)
		d := tested.await(1)[0]
		verify(t, d, e.Secret)
		var ev event
		if err := json.Unmarshal(d.body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != "webhook.test" || d.header.Get("webhook-id") != ev.EventID || accepted.EventID != ev.EventID || accepted.EventType != "webhook.test" {
			t.Errorf("test delivery %s (header id %s), answer %+v", d.body, d.header.Get("webhook-id"), accepted)
		}
		var data, asGet map[string]any
		_ = json.Unmarshal(ev.Data, &data)
		getBody := p.do(t, http.MethodGet, "/webhook-endpoints/"+e.EndpointID, nil)
		var env struct{ Data map[string]any }
		getBody.JSON(t, &env)
		asGet = env.Data
		if !reflect.DeepEqual(data, asGet) {
			t.Errorf("webhook.test data %v; GET of the endpoint %v", data, asGet)
		}
		raw, _ := p.awaitEvents(t, atLeast(1))
		if len(raw) != 1 || !bytes.Equal(raw[0], d.body) {
			t.Errorf("events list %s; want the test event byte for byte %s", raw, d.body)
		}
		time.Sleep(300 * time.Millisecond)
		if n := other.count(); n != 0 {
			t.Errorf("another endpoint of the site got %d requests", n)
		}
	})
}

// Scopes: billing:events:read reads the events and nothing of the webhooks; billing:webhooks:manage
// manages the endpoints and does not read the events.
func TestTheEventsAndWebhooksScopesOpenTheirOwnRoutesAlone(t *testing.T) {
	s := apptest.Start(t, "sqlite")
	p := newPartner(t, s)
	e := p.createEndpoint(t, map[string]any{"url": "https://example.com/x"})
	events, hooks := p, p
	events.token = s.Token(t, p.p, billing.ScopeEventsRead)
	hooks.token = s.Token(t, p.p, billing.ScopeWebhooksManage)
	wantStatus(t, events.do(t, http.MethodGet, "/events", nil), http.StatusOK)
	wantError(t, hooks.do(t, http.MethodGet, "/events", nil), http.StatusForbidden, "auth:insufficient-scope", "Authorization")
	for _, path := range []string{"/webhook-endpoints", "/webhook-endpoints/" + e.EndpointID, "/webhook-endpoints/" + e.EndpointID + "/deliveries"} {
		wantStatus(t, hooks.do(t, http.MethodGet, path, nil), http.StatusOK)
		wantError(t, events.do(t, http.MethodGet, path, nil), http.StatusForbidden, "auth:insufficient-scope", "Authorization")
	}
}

// The deliveries list: newest first, a page at a time, nextCursor absent on the last page, each
// delivery once.
func TestDeliveriesListPages(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		rc := newReceiver(t)
		e := p.createEndpoint(t, map[string]any{"url": rc.srv.URL})
		for _, ref := range []string{"d1", "d2", "d3"} {
			p.mustInvite(t, ref)
			s.Clock.Advance(time.Millisecond)
		}
		p.awaitDeliveries(t, e.EndpointID, 3, "succeeded")
		all, next := p.listDeliveries(t, e.EndpointID, "")
		if len(all) != 3 || next != "" {
			t.Fatalf("%d deliveries, nextCursor %q", len(all), next)
		}
		for i := 1; i < len(all); i++ {
			if all[i].CreatedAt > all[i-1].CreatedAt {
				t.Errorf("deliveries not newest first: %+v", all)
			}
		}
		var paged []listedDelivery
		query := "?limit=1"
		for range 10 {
			page, next := p.listDeliveries(t, e.EndpointID, query)
			paged = append(paged, page...)
			if next == "" {
				break
			}
			query = "?limit=1&cursor=" + url.QueryEscape(next)
		}
		if len(paged) != 3 {
			t.Fatalf("paging by 1 gave %d deliveries, want 3", len(paged))
		}
		for i := range paged {
			if paged[i].DeliveryID != all[i].DeliveryID {
				t.Errorf("paging by 1 gave %v, not the list's order", paged)
			}
		}
		wantError(t, p.do(t, http.MethodGet, "/webhook-endpoints/"+e.EndpointID+"/deliveries?after=x", nil),
			http.StatusBadRequest, "request:unknown-field", "after")
		for _, q := range []string{"?limit=0", "?limit=101", "?limit=x"} {
			wantError(t, p.do(t, http.MethodGet, "/webhook-endpoints/"+e.EndpointID+"/deliveries"+q, nil),
				http.StatusBadRequest, "request:invalid-field", "limit")
		}
	})
}

// An idempotent replay of a batch is not a change: it writes no second batch.accepted.
func TestABatchReplayWritesNoSecondEvent(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		body := batchRequest("B-REPLAY", debit{"R1", "nobody", 100})
		p.mustSubmit(t, body)
		r := p.do(t, http.MethodPost, "/batches", body)
		wantStatus(t, r, http.StatusAccepted)
		if r.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("the second submission was not a replay: %v", r.Header)
		}
		events := p.eventsUntil(t, "batch.completed")
		if got := strings.Join(types(events), " "); got != "batch.accepted batch.completed" {
			t.Errorf("events %s; want one batch.accepted and one batch.completed", got)
		}
		// The event's createdAt is the change's time: the batch's completedAt.
		var data struct {
			CompletedAt int64 `json:"completedAt"`
		}
		_ = json.Unmarshal(events[1].Data, &data)
		if data.CompletedAt != events[1].CreatedAt {
			t.Errorf("batch.completed createdAt %d, data.completedAt %d", events[1].CreatedAt, data.CompletedAt)
		}
		// Its data is GET of the batch without its rows.
		var got struct{ Data map[string]any }
		p.do(t, http.MethodGet, "/batches/B-REPLAY", nil).JSON(t, &got)
		delete(got.Data, "rows")
		var fromEvent map[string]any
		_ = json.Unmarshal(events[1].Data, &fromEvent)
		if !reflect.DeepEqual(got.Data, fromEvent) {
			t.Errorf("batch.completed data %v; GET of the batch without rows %v", fromEvent, got.Data)
		}
	})
}

// customer.expired is written exactly once for an invitation that expired lazily, whether the
// customer is invited again before the sweep runs or the sweep finds it; a revocation or a signup
// of it is refused and writes nothing.
func TestALazilyExpiredInvitationHasOneExpiredEvent(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		p.mustInvite(t, "lazy")
		s.Clock.Advance(billing.DefaultInvitationTTL + time.Second)
		p.token = s.Token(t, p.p)
		wantError(t, p.post(t, "/customers/lazy/revoke"), http.StatusConflict, "customer-link:invalid-state", "customerReference")
		r := p.post(t, "/sandbox/customers/lazy/signup")
		if r.Status != http.StatusConflict {
			t.Errorf("signup of an expired invitation: %d %s; want 409", r.Status, r.Body)
		}
		p.mustInvite(t, "lazy")
		if _, err := s.Service.ExpireInvitations(t.Context()); err != nil {
			t.Fatal(err)
		}
		p.awaitEvents(t, atLeast(3))
		time.Sleep(200 * time.Millisecond)
		_, events, _ := p.eventsPage(t, "", 3)
		if got := strings.Join(types(events), " "); got != "customer.invited customer.expired customer.invited" {
			t.Errorf("events %s; want invited, expired once, invited", got)
		}
		var data link
		_ = json.Unmarshal(events[1].Data, &data)
		if data.State != "expired" || data.SignupURL != "" {
			t.Errorf("customer.expired data %s", events[1].Data)
		}
	}, apptest.Options{NoJobs: true})
}

// Retry "sends again now", also a delivery that succeeded, with the same webhook-id and body.
func TestRetryOfASucceededDeliverySendsItAgain(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		rc := newReceiver(t)
		e := p.createEndpoint(t, map[string]any{"url": rc.srv.URL})
		p.mustInvite(t, "again")
		first := rc.await(1)[0]
		d := p.awaitDeliveries(t, e.EndpointID, 1, "succeeded")[0]
		r := p.do(t, http.MethodPost, "/webhook-endpoints/"+e.EndpointID+"/deliveries/"+d.DeliveryID+"/retry", `{}`)
		wantStatus(t, r, http.StatusAccepted)
		second := rc.await(2)[1]
		verify(t, second, e.Secret)
		if second.header.Get("webhook-id") != first.header.Get("webhook-id") || !bytes.Equal(second.body, first.body) {
			t.Errorf("the retry sent %s %s; the first %s %s", second.header.Get("webhook-id"), second.body, first.header.Get("webhook-id"), first.body)
		}
		ts := second.header.Get("webhook-timestamp")
		n, _ := strconv.ParseInt(ts, 10, 64)
		if diff := time.Since(time.Unix(n, 0)); diff < -5*time.Second || diff > 30*time.Second {
			t.Errorf("webhook-timestamp %q is %v from now; want the attempt's time in seconds", ts, diff)
		}
		p.awaitDeliveriesWhere(t, e.EndpointID, "two attempts", func(ds []deliveryJSON) bool {
			return len(ds) == 1 && len(ds[0].Attempts) == 2 && ds[0].State == "succeeded"
		})
	})
}

// Every event of every type follows the API's conventions: no null anywhere, createdAt in
// milliseconds equal to the change's own time in its data.
func TestEventsHoldNoNullAndTheirTimeIsTheChanges(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		p.mustInvite(t, "t1")
		s.Clock.Advance(time.Second)
		wantStatus(t, p.post(t, "/sandbox/customers/t1/signup"), http.StatusOK)
		s.Clock.Advance(time.Second)
		wantStatus(t, p.post(t, "/customers/t1/revoke"), http.StatusOK)
		raw, events := p.awaitEvents(t, atLeast(3))
		for _, item := range raw {
			if bytes.Contains(item, []byte("null")) {
				t.Errorf("event holds a null: %s", item)
			}
		}
		var linked, revoked link
		_ = json.Unmarshal(events[1].Data, &linked)
		_ = json.Unmarshal(events[2].Data, &revoked)
		if events[0].CreatedAt != linked.CreatedAt || events[1].CreatedAt != linked.LinkedAt || events[2].CreatedAt != revoked.RevokedAt {
			t.Errorf("createdAt %d %d %d; the link's createdAt %d, linkedAt %d, revokedAt %d",
				events[0].CreatedAt, events[1].CreatedAt, events[2].CreatedAt, linked.CreatedAt, linked.LinkedAt, revoked.RevokedAt)
		}
	})
}

// Issue: customer.expired is written "exactly once (several replicas must not write it twice)",
// also while partners invite the same customers again as the sweeps run.
func TestConcurrentExpirySweepsWriteEachExpiryOnce(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		const n = 60
		for i := range n {
			p.mustInvite(t, "exp-"+strconv.Itoa(i))
		}
		s.Clock.Advance(billing.DefaultInvitationTTL + time.Second)
		p.token = s.Token(t, p.p)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if _, err := s.Service.ExpireInvitations(t.Context()); err != nil {
					t.Error(err)
				}
			})
		}
		for i := range 10 {
			wg.Go(func() { p.mustInvite(t, "exp-"+strconv.Itoa(i)) })
		}
		wg.Wait()
		all := func() []event {
			var events []event
			query := "?limit=100"
			for {
				_, page, next := p.events(t, query)
				events = append(events, page...)
				if next == "" {
					return events
				}
				query = "?limit=100&after=" + next
			}
		}
		var events []event
		waitFor(t, "the events", func() bool { events = all(); return len(events) >= n+n+10 })
		time.Sleep(200 * time.Millisecond)
		events = all()
		expired := map[string]int{}
		for _, e := range events {
			if e.Type == "customer.expired" {
				var l link
				_ = json.Unmarshal(e.Data, &l)
				expired[l.CustomerReference]++
			}
		}
		if len(expired) != n {
			t.Errorf("%d customers have customer.expired, want %d", len(expired), n)
		}
		for ref, k := range expired {
			if k != 1 {
				t.Errorf("%s has %d customer.expired events", ref, k)
			}
		}
	}, apptest.Options{NoJobs: true})
}

// The document: "polling with after never skips an event, for an event is listed only once every
// transaction that began before it has ended"; each delivery is the list's item; the README:
// "Missed some? ... pass the last eventId you have". A webhook.test event, whose delivery is made
// in its own transaction, is delivered only once the list shows it: never while a change's
// transaction that began before it is open, whose event the list then shows before it. So when it
// arrives, every event listed before it is listed already, and a partner passing its eventId as
// `after` skips none it could not have read. (PostgreSQL, which orders the list by writing
// transaction: the change's transaction is held open here with one raw INSERT of its event, as
// any change's is for a moment. SQLite's one writer commits in the list's order.)
func TestAWebhookTestEventIsDeliveredOnlyOnceTheListShowsIt(t *testing.T) {
	s := apptest.Start(t, "postgres")
	p := newPartner(t, s)
	rc := newReceiver(t)
	e := p.createEndpoint(t, map[string]any{"url": rc.srv.URL, "eventTypes": []string{"batch.completed"}})

	now := s.Clock.Now().UnixMilli()
	heldID := billing.NewID("evt")
	body := `{"eventId":"` + heldID + `","type":"customer.invited","createdAt":` + strconv.FormatInt(now, 10) + `,"siteId":"` + p.site +
		`","data":{"customerReference":"held","state":"invited","createdAt":` + strconv.FormatInt(now, 10) + `,"expiresAt":` + strconv.FormatInt(now+1000, 10) + `}}`
	inserted, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.Store.Conn().InTx(context.Background(), func(tx storage.Statements) error {
			if _, err := tx.Exec(context.Background(), `INSERT INTO events (id, site_id, type, created_at, body) VALUES ($1, $2, 'customer.invited', $3, $4)`,
				heldID, p.site, now, body); err != nil {
				return err
			}
			close(inserted)
			<-release
			return nil
		})
	}()
	var (
		once      sync.Once
		committed error
	)
	commit := func() error {
		once.Do(func() { close(release); committed = <-done })
		return committed
	}
	t.Cleanup(func() { _ = commit() }) // before the server stops, whatever fails
	select {
	case <-inserted:
	case err := <-done:
		t.Fatalf("the held transaction ended: %v", err)
	}

	r := p.do(t, http.MethodPost, "/sandbox/webhook-endpoints/"+e.EndpointID+"/test", nil)
	wantStatus(t, r, http.StatusAccepted)
	testID := dataOf[listedDelivery](t, r).EventID
	time.Sleep(time.Second) // several polls of the delivery runs
	if n := rc.count(); n != 0 {
		t.Errorf("the test event was delivered %d times while a transaction that began before it was open", n)
	}
	if raw, _, _ := p.events(t, ""); len(raw) != 0 {
		t.Errorf("the list shows %d events while a transaction that began before the test event is open", len(raw))
	}

	if err := commit(); err != nil {
		t.Fatal(err)
	}
	got := rc.await(1)[0]
	_, all, _ := p.events(t, "") // as the partner reads the list the moment the test event arrives
	if got.header.Get("webhook-id") != testID {
		t.Fatalf("delivered %s, want the test event %s", got.header.Get("webhook-id"), testID)
	}
	if len(all) != 2 || all[0].EventID != heldID || all[1].EventID != testID {
		t.Errorf("when the test event arrived the list held %v; want the held change's event %s, then the test event %s",
			eventIDs(all), heldID, testID)
	}
	if _, after, _ := p.events(t, "?after="+testID); len(after) != 0 {
		t.Errorf("after the test event the list holds %v, want nothing", eventIDs(after))
	}
}

func eventIDs(events []event) []string {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.EventID
	}
	return ids
}

// customer.invited carries the link as GET answers it at that moment, less the signupUrl,
// metadata included (whatever characters it holds).
func TestInvitedDataIsTheLinkAsGetAnswersIt(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		wantStatus(t, p.do(t, http.MethodPost, "/customers/invitations", map[string]any{"customerReference": "m1",
			"metadata": map[string]string{"note": "a<b & c>d \u2028 é", "z": "1", "a": "2"}}), http.StatusCreated)
		var got struct{ Data map[string]any }
		p.get(t, "m1").JSON(t, &got)
		delete(got.Data, "signupUrl")
		_, events := p.awaitEvents(t, atLeast(1))
		var data map[string]any
		_ = json.Unmarshal(events[0].Data, &data)
		if !reflect.DeepEqual(got.Data, data) {
			t.Errorf("customer.invited data %v; GET less signupUrl %v", data, got.Data)
		}
		rc := newReceiver(t)
		e := p.createEndpoint(t, map[string]any{"url": rc.srv.URL})
		r := p.do(t, http.MethodPost, "/customers/invitations", map[string]any{"customerReference": "m2",
			"metadata": map[string]string{"note": "x<y>&"}})
		wantStatus(t, r, http.StatusCreated)
		d := rc.await(1)[0]
		verify(t, d, e.Secret)
		raw, _ := p.awaitEvents(t, atLeast(2))
		if !bytes.Equal(raw[1], d.body) {
			t.Errorf("delivered %s; listed %s", d.body, raw[1])
		}
	})
}

// README: "each endpoint is sent the events of its site written after it was made". An endpoint
// keeps being sent its site's events after a quiet spell in which the purge removed every event
// (on SQLite the next events must not take the positions of those removed, which the endpoint
// has passed).
func TestEventsWrittenAfterAPurgeOfEveryEventAreDelivered(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		rc := newReceiver(t)
		p.createEndpoint(t, map[string]any{"url": rc.srv.URL})
		for _, ref := range []string{"q1", "q2", "q3"} {
			p.mustInvite(t, ref)
		}
		rc.await(3)
		s.Clock.Advance(billing.EventRetention + time.Hour)
		purgedAt := s.Clock.Now().UnixMilli()
		p.token = s.Token(t, p.p)
		if _, err := s.Service.PurgeEvents(t.Context()); err != nil {
			t.Fatal(err)
		}
		p.mustInvite(t, "after-the-purge")
		rc.awaitUntil("none of the invitation after the purge", func(ds []delivery) bool {
			return slices.ContainsFunc(ds, func(d delivery) bool {
				return bytes.Contains(d.body, []byte(`"customerReference":"after-the-purge"`))
			})
		})
		// The events list holds none of before the purge. (It may hold the invitations' expiry,
		// customer.expired, which the sweep writes once the clock has moved past it.)
		_, events := p.awaitEvents(t, atLeast(1))
		for _, e := range events {
			if e.CreatedAt < purgedAt {
				t.Errorf("the events list after the purge holds %s %s, written before it", e.Type, e.EventID)
			}
		}
	})
}

// Disabling skips the retries that come due while the endpoint is disabled (jobs' tests); a retry
// still ahead when the partner enables it again is made then, at its time, as the PATCH
// description says: the delivery of an event written before the disabling is not lost.
func TestARetryNotYetDueWhenAnEndpointIsEnabledAgainIsMade(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		rc, e, d := p.failedDelivery(t, http.StatusServiceUnavailable, "back")
		for _, state := range []string{"disabled", "enabled"} {
			wantStatus(t, p.do(t, http.MethodPatch, "/webhook-endpoints/"+e.EndpointID, map[string]any{"state": state}), http.StatusOK)
		}
		rc.answer(http.StatusOK)
		s.Clock.Advance(time.Hour)
		p.token = s.Token(t, p.p)
		got := p.awaitDeliveriesWhere(t, e.EndpointID, "the retry made", func(ds []deliveryJSON) bool {
			return len(ds) == 1 && ds[0].State != "pending"
		})[0]
		if got.DeliveryID != d.DeliveryID || got.State != "succeeded" || len(got.Attempts) != 2 || got.Attempts[1].Status != http.StatusOK {
			t.Errorf("the delivery is %+v, want succeeded by its retry", got)
		}
		verify(t, rc.await(2)[1], e.Secret)
	}, apptest.Options{RetrySchedule: []time.Duration{time.Hour}})
}

// An event written while an endpoint is enabled is its, even when the partner disables the
// endpoint before the endpoint's delivery run has given it the event (here no run comes): the
// disabling gives the endpoint its delivery, which a run skips, failed, while the endpoint stays
// disabled, and which is there to retry once the endpoint is enabled again. Enabling it again
// passes over the events of its time disabled only.
func TestAnEventWrittenJustBeforeItsEndpointIsDisabledHasItsDelivery(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		e := p.createEndpoint(t, map[string]any{"url": newReceiver(t).srv.URL})
		p.mustInvite(t, "before")
		_, events, _ := p.eventsPage(t, "", 1)
		if len(events) != 1 {
			t.Fatalf("events %v; want customer.invited", types(events))
		}
		wantStatus(t, p.do(t, http.MethodPatch, "/webhook-endpoints/"+e.EndpointID, map[string]any{"state": "disabled"}), http.StatusOK)
		p.mustInvite(t, "while-disabled")
		wantStatus(t, p.do(t, http.MethodPatch, "/webhook-endpoints/"+e.EndpointID, map[string]any{"state": "enabled"}), http.StatusOK)
		ds, _ := p.listDeliveries(t, e.EndpointID, "")
		if len(ds) != 1 || ds[0].EventID != events[0].EventID || ds[0].State != "pending" {
			t.Errorf("deliveries %+v; want one, pending, of %s, the event written while the endpoint was enabled", ds, events[0].EventID)
		}
	}, apptest.Options{NoJobs: true})
}
