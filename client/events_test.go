package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/client"
)

// delivered is a request a receiver got.
type delivered struct {
	header http.Header
	body   []byte
}

// receiver is a partner's webhook endpoint on loopback that passes on every request it gets.
func receiver(t *testing.T) (string, <-chan delivered) {
	t.Helper()
	got := make(chan delivered, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- delivered{header: r.Header.Clone(), body: body}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, got
}

// next is the next request the receiver got, verified with secret by the Standard Webhooks
// library.
func next(t *testing.T, got <-chan delivered, secret string) client.Event {
	t.Helper()
	select {
	case d := <-got:
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(d.body, d.header); err != nil {
			t.Fatalf("the delivery does not verify with the endpoint's secret: %v", err)
		}
		var e client.Event
		if err := e.UnmarshalJSON(d.body); err != nil {
			t.Fatal(err)
		}
		if e.EventID != d.header.Get("webhook-id") {
			t.Errorf("webhook-id %q, event %q", d.header.Get("webhook-id"), e.EventID)
		}
		return e
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery within 30 s")
		return client.Event{}
	}
}

// listed waits until the site lists n events (on PostgreSQL an event is listed once every
// transaction older than it has ended, which other tests' transactions may delay), and returns
// them.
func listed(t *testing.T, site *client.Site, n int) []client.Event {
	t.Helper()
	return listedAgain(t, n, func() []client.Event {
		return collect(t, site.ListEvents(context.Background(), client.ListEventsOptions{}))
	})
}

// listedAgain lists with list until it gives n events or more, or 30 s have passed, and returns the
// last listing: on PostgreSQL a list can show fewer of the newest events for a moment after it
// showed them, never more (the horizon read low for one statement, as the test databases'
// transactions end on the shared server), so a listing the test awaited can read short once.
func listedAgain(t *testing.T, n int, list func() []client.Event) []client.Event {
	t.Helper()
	var events []client.Event
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if events = list(); len(events) >= n || time.Now().After(deadline) {
			return events
		}
	}
}

func TestEventsThroughTheClient(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, site *client.Site) {
		ctx := context.Background()
		refs := []string{"E-1", "E-2", "E-3"}
		for _, ref := range refs {
			must(site.InviteCustomer(ctx, ref))(t)
		}
		must(site.SimulateSignup(ctx, "E-2"))(t)
		listed(t, site, 4)

		t.Run("the iterator follows after, oldest first", func(t *testing.T) {
			events := listedAgain(t, 4, func() []client.Event { return collect(t, site.ListEvents(ctx, client.ListEventsOptions{Limit: 1})) })
			var got []string
			for _, e := range events {
				l, err := e.LinkData()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(e.Type)+" "+l.CustomerReference)
				if e.SiteID != s.Site.ID || !strings.HasPrefix(e.EventID, "evt_") || e.CreatedAt == 0 || !strings.Contains(string(e.Raw), e.EventID) {
					t.Errorf("event = %+v", e)
				}
			}
			want := []string{"customer.invited E-1", "customer.invited E-2", "customer.invited E-3", "customer.linked E-2"}
			if !slices.Equal(got, want) {
				t.Fatalf("events %v, want %v", got, want)
			}
			var page *client.Page[client.Event]
			listedAgain(t, 2, func() []client.Event {
				page = must(site.EventsPage(ctx, client.ListEventsOptions{Limit: 2}))(t)
				return page.Items
			})
			if len(page.Items) != 2 || page.NextCursor != page.Items[1].EventID {
				t.Errorf("first page = %+v, want 2 events and the last one's id as the cursor", page)
			}
			rest := listedAgain(t, 2, func() []client.Event {
				return collect(t, site.ListEvents(ctx, client.ListEventsOptions{After: events[1].EventID}))
			})
			if len(rest) != 2 || rest[0].EventID != events[2].EventID {
				t.Errorf("after the second event: %+v", rest)
			}
			if _, err := events[0].BatchData(); err == nil {
				t.Error("a customer event gave its data as a batch")
			}
		})

		t.Run("filtered by type", func(t *testing.T) {
			linked := listedAgain(t, 1, func() []client.Event {
				return collect(t, site.ListEvents(ctx, client.ListEventsOptions{Type: client.EventCustomerLinked}))
			})
			if len(linked) != 1 || linked[0].Type != client.EventCustomerLinked {
				t.Errorf("linked events = %+v", linked)
			}
		})

		t.Run("an after of no event of the site is refused with its target", func(t *testing.T) {
			_, err := site.EventsPage(ctx, client.ListEventsOptions{After: "evt_nothing"})
			var apiErr *client.Error
			if !errors.As(err, &apiErr) || apiErr.Code != client.CodeInvalidField || apiErr.Target != "after" {
				t.Errorf("error = %v, want invalid-field on after", err)
			}
		})
	})
}

func TestWebhookEndpointsThroughTheClient(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, site *client.Site) {
		ctx := context.Background()
		url, got := receiver(t)
		ep := must(site.CreateWebhookEndpoint(ctx, client.WebhookEndpointRequest{URL: url,
			EventTypes: []client.EventType{client.EventCustomerInvited}}))(t)
		if !strings.HasPrefix(ep.EndpointID, "whe_") || !strings.HasPrefix(ep.Secret, "whsec_") || ep.URL != url ||
			ep.State != client.EndpointEnabled || !slices.Equal(ep.EventTypes, []client.EventType{client.EventCustomerInvited}) {
			t.Fatalf("created %+v", ep)
		}
		if list := must(site.WebhookEndpoints(ctx))(t); len(list) != 1 || !equalEndpoints(list[0], ep.WebhookEndpoint) {
			t.Errorf("endpoints = %+v, want %+v", list, ep.WebhookEndpoint)
		}
		if one := must(site.GetWebhookEndpoint(ctx, ep.EndpointID))(t); !equalEndpoints(*one, ep.WebhookEndpoint) {
			t.Errorf("endpoint = %+v, want %+v", one, ep.WebhookEndpoint)
		}

		// An event of a subscribed type arrives signed with the secret, as the list has it.
		must(site.InviteCustomer(ctx, "W-1"))(t)
		invited := next(t, got, ep.Secret)
		listed := listed(t, site, 1)
		if len(listed) != 1 || string(listed[0].Raw) != string(invited.Raw) {
			t.Errorf("delivered %s, listed %+v: want the same bytes", invited.Raw, listed)
		}

		// The sandbox's test event carries the endpoint. (A second later, so that the deliveries'
		// order, newest first, does not rest on a tie-break.)
		s.Clock.Advance(time.Second)
		test := must(site.SimulateWebhookTest(ctx, ep.EndpointID))(t)
		if test.EventType != client.EventWebhookTest || test.State != client.DeliveryPending || !strings.HasPrefix(test.DeliveryID, "dlv_") {
			t.Errorf("test delivery = %+v", test)
		}
		tested := next(t, got, ep.Secret)
		if data, err := tested.EndpointData(); err != nil || data.EndpointID != ep.EndpointID || tested.EventID != test.EventID {
			t.Errorf("test event %+v: data %+v, %v", tested, data, err)
		}

		// Deliveries, newest first, each with its attempts, page after page.
		var deliveries []client.Delivery
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			deliveries = collect(t, site.ListDeliveries(ctx, ep.EndpointID, client.ListDeliveriesOptions{Limit: 1}))
			if len(deliveries) == 2 && deliveries[0].State == client.DeliverySucceeded && deliveries[1].State == client.DeliverySucceeded {
				break
			}
		}
		if len(deliveries) != 2 || deliveries[0].DeliveryID != test.DeliveryID || deliveries[1].EventID != invited.EventID ||
			len(deliveries[0].Attempts) != 1 || deliveries[0].Attempts[0].Status != http.StatusOK {
			t.Fatalf("deliveries = %+v", deliveries)
		}

		retried := must(site.RetryDelivery(ctx, ep.EndpointID, deliveries[1].DeliveryID))(t)
		if retried.DeliveryID != deliveries[1].DeliveryID || retried.State != client.DeliveryPending {
			t.Errorf("retried = %+v", retried)
		}
		if again := next(t, got, ep.Secret); again.EventID != invited.EventID {
			t.Errorf("the retry sent %s, want %s", again.EventID, invited.EventID)
		}

		rotated := must(site.RotateWebhookSecret(ctx, ep.EndpointID))(t)
		if rotated.Secret == ep.Secret || !strings.HasPrefix(rotated.Secret, "whsec_") {
			t.Errorf("rotated secret %q", rotated.Secret)
		}
		must(site.SimulateWebhookTest(ctx, ep.EndpointID))(t)
		// During the overlap both secrets sign.
		d := <-got
		for _, secret := range []string{ep.Secret, rotated.Secret} {
			wh, _ := standardwebhooks.NewWebhook(secret)
			if err := wh.Verify(d.body, d.header); err != nil {
				t.Errorf("after rotation, a delivery does not verify with one of the secrets: %v", err)
			}
		}

		disabled := must(site.UpdateWebhookEndpoint(ctx, ep.EndpointID, client.WebhookEndpointUpdate{State: client.EndpointDisabled}))(t)
		if disabled.State != client.EndpointDisabled || disabled.DisabledReason != "partner" || disabled.URL != url {
			t.Errorf("disabled = %+v", disabled)
		}
		if _, err := site.RetryDelivery(ctx, ep.EndpointID, deliveries[1].DeliveryID); !errors.Is(err, client.CodeWebhookEndpointDisabled) {
			t.Errorf("retry on a disabled endpoint: %v", err)
		}
		if _, err := site.RetryDelivery(ctx, ep.EndpointID, "dlv_nothing"); !errors.Is(err, client.CodeWebhookDeliveryNotFound) {
			t.Errorf("retry of no delivery: %v", err)
		}

		deleted := must(site.DeleteWebhookEndpoint(ctx, ep.EndpointID))(t)
		if deleted.EndpointID != ep.EndpointID {
			t.Errorf("deleted = %+v", deleted)
		}
		if _, err := site.GetWebhookEndpoint(ctx, ep.EndpointID); !errors.Is(err, client.CodeWebhookEndpointNotFound) {
			t.Errorf("get after delete: %v", err)
		}
		if _, err := site.CreateWebhookEndpoint(ctx, client.WebhookEndpointRequest{URL: "ftp://example.com/"}); !errors.Is(err, client.CodeWebhookInvalidURL) {
			t.Errorf("an ftp URL: %v", err)
		}
	})
}

func equalEndpoints(a, b client.WebhookEndpoint) bool {
	return a.EndpointID == b.EndpointID && a.URL == b.URL && slices.Equal(a.EventTypes, b.EventTypes) &&
		a.CreatedAt == b.CreatedAt && a.State == b.State && a.DisabledReason == b.DisabledReason
}
