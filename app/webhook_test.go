package app_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
)

// partnerAPI calls one partner's /billing/ routes on a test server.
type partnerAPI struct {
	t     *testing.T
	srv   *apptest.Server
	token string
}

// call sends the request and fails the test unless the answer has status want.
func (p partnerAPI) call(method, path string, body any, want int) *apptest.Response {
	p.t.Helper()
	resp := p.srv.Do(p.t, apptest.Request{Method: method, Path: "/billing/sites/" + p.srv.Site.ID + path, Token: p.token, Body: body})
	if resp.Status != want {
		p.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.Status, resp.Body, want)
	}
	return resp
}

// deliveries reads every delivery to the endpoint, page after page.
func (p partnerAPI) deliveries(endpointID string) []billing.DeliveryView {
	p.t.Helper()
	var all []billing.DeliveryView
	query := "?limit=100"
	for {
		var page struct {
			Data       []billing.DeliveryView
			NextCursor string
		}
		p.call("GET", "/webhook-endpoints/"+endpointID+"/deliveries"+query, nil, 200).JSON(p.t, &page)
		all = append(all, page.Data...)
		if page.NextCursor == "" {
			return all
		}
		query = "?limit=100&cursor=" + url.QueryEscape(page.NextCursor)
	}
}

// waitUntil polls done every 20ms until it holds, failing the test after limit.
func waitUntil(t *testing.T, limit time.Duration, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAReceiverThatIsDownLosesNothing stops a partner's receiver (first answering 503, then not
// listening at all), makes changes of every kind meanwhile, starts it again, and checks that it
// then has every event exactly as the events list has it, byte for byte and verified by the
// official Standard Webhooks library: the retry schedule (shortened by configuration, as an hour
// of downtime is by the default one) carries every delivery over the outage.
func TestAReceiverThatIsDownLosesNothing(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		schedule := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
			800 * time.Millisecond, 1600 * time.Millisecond, 3 * time.Second, 10 * time.Second}
		srv := apptest.Start(t, engine, apptest.Options{RetrySchedule: schedule})
		srv.Clock.Run(t) // the retries come due on the server's clock
		p := partnerAPI{t: t, srv: srv, token: srv.Token(t, srv.Partner)}
		recv := apptest.NewReceiver(t)

		var endpoint struct {
			Data billing.WebhookEndpointWithSecret
		}
		p.call("POST", "/webhook-endpoints", map[string]any{"url": recv.URL}, 201).JSON(t, &endpoint)
		recv.SetSecret(t, endpoint.Data.Secret)
		endpointID := endpoint.Data.EndpointID

		// Up: the first invitation arrives at once.
		p.call("POST", "/customers/invitations", map[string]string{"customerReference": "UP-1"}, 201)
		waitUntil(t, 10*time.Second, "the first event received", func() bool {
			got, _ := recv.Accepted()
			return len(got) == 1
		})

		// Down, answering 503: invitations and signups.
		recv.SetAnswer(http.StatusServiceUnavailable, 0)
		for _, c := range []string{"C1", "C2", "C3", "C4"} {
			p.call("POST", "/customers/invitations", map[string]string{"customerReference": c}, 201)
			p.call("POST", "/sandbox/customers/"+c+"/signup", nil, 200)
		}
		// Down, not listening: revocations by the partner and by a customer, a test event, and a
		// batch executed to completion.
		waitUntil(t, 10*time.Second, "a 503 answered", func() bool { return recv.Requests() > 1 })
		recv.Stop()
		p.call("POST", "/customers/C1/revoke", nil, 200)
		p.call("POST", "/sandbox/customers/C2/customer-revocation", nil, 200)
		p.call("POST", "/sandbox/webhook-endpoints/"+endpointID+"/test", nil, 202)
		rows := []map[string]any{}
		for i, c := range []string{"C3", "C4", "C1", "NOBODY", "C3", "C4"} {
			rows = append(rows, map[string]any{"rowReference": fmt.Sprintf("R%d", i), "customerReference": c, "amount": 1000 + 51*(i%2)})
		}
		p.call("POST", "/batches", map[string]any{"batchReference": "B1", "rows": rows}, 202)
		waitUntil(t, 30*time.Second, "batch B1 completed", func() bool {
			var b struct{ Data struct{ State string } }
			p.call("GET", "/batches/B1", nil, 200).JSON(t, &b)
			return b.Data.State == "completed"
		})
		// Every delivery made while down has failed at least twice before the receiver is back.
		waitUntil(t, 20*time.Second, "every pending delivery failed twice", func() bool {
			for _, d := range p.deliveries(endpointID) {
				if d.State == billing.DeliveryPending && len(d.Attempts) < 2 {
					return false
				}
			}
			return true
		})

		if got, _ := recv.Accepted(); len(got) != 1 {
			t.Fatalf("the receiver accepted %d messages while down, want only the first", len(got))
		}
		recv.SetAnswer(http.StatusOK, 0)
		recv.Start(t)
		want := map[string]int{"customer.invited": 5, "customer.linked": 4, "customer.revoked": 2, "webhook.test": 1,
			"batch.accepted": 1, "batch.completed": 1}
		events := recv.AwaitEvents(t, 30*time.Second, 14, func() []apptest.Event { return srv.Events(t, srv.Partner, p.token) })
		types := map[string]int{}
		for _, e := range events {
			types[e.Type]++
		}
		if fmt.Sprint(types) != fmt.Sprint(want) {
			t.Errorf("events by type = %v, want %v", types, want)
		}
		// The deliveries list tells the outage: each delivery succeeded, the later ones after
		// 503s and refused connections. (The receiver has a message a moment before the server
		// records its answer.)
		var deliveries []billing.DeliveryView
		waitUntil(t, 10*time.Second, "no delivery pending", func() bool {
			deliveries = p.deliveries(endpointID)
			for _, d := range deliveries {
				if d.State == billing.DeliveryPending {
					return false
				}
			}
			return true
		})
		if len(deliveries) != len(events) {
			t.Errorf("%d deliveries, want one for each of the %d events", len(deliveries), len(events))
		}
		refused, unavailable := 0, 0
		for _, d := range deliveries {
			if d.State != billing.DeliverySucceeded {
				t.Errorf("delivery %s of %s is %s, want succeeded", d.DeliveryID, d.EventType, d.State)
			}
			for _, a := range d.Attempts {
				switch {
				case a.Status == http.StatusServiceUnavailable:
					unavailable++
				case strings.Contains(a.Error, "connection refused"):
					refused++
				}
			}
		}
		if refused == 0 || unavailable == 0 {
			t.Errorf("attempts refused %d, answered 503 %d: want the outage seen both ways", refused, unavailable)
		}
	})
}
