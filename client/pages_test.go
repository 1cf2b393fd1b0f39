package client_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/client"
)

// The iterators list every item once, page by page, in the order of one big page, when every
// item bears the same instant (the test's clock stands still) and while new items are made
// between the pages.
func TestIteratorsNeitherSkipNorRepeat(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, site *client.Site) {
		ctx := context.Background()
		url, _ := receiver(t)
		ep := must(site.CreateWebhookEndpoint(ctx, client.WebhookEndpointRequest{URL: url}))(t)
		for i := range 6 {
			ref := fmt.Sprintf("M-%d", i)
			must(site.InviteCustomer(ctx, ref))(t)
			must(site.SubmitBatch(ctx, client.BatchRequest{BatchReference: ref, Rows: []client.RowRequest{{RowReference: "R1", CustomerReference: ref, Amount: 100}}}))(t)
		}
		listed(t, site, 12)
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if p := must(site.DeliveriesPage(ctx, ep.EndpointID, client.ListDeliveriesOptions{Limit: 100}))(t); len(p.Items) >= 12 {
				break
			}
		}

		extra, budget := 0, 0
		more := func() { // a new customer, batch and events between two pages (new items may be listed or not)
			if budget >= 6 {
				return
			}
			budget++
			extra++
			ref := fmt.Sprintf("A-%d", extra) // before every M- in the customers' order
			must(site.InviteCustomer(ctx, ref))(t)
			must(site.SubmitBatch(ctx, client.BatchRequest{BatchReference: ref, Rows: []client.RowRequest{{RowReference: "R1", CustomerReference: ref, Amount: 100}}}))(t)
		}

		check := func(name string, whole []string, paged []string) {
			t.Helper()
			for _, id := range whole {
				if n := count(paged, id); n != 1 {
					t.Errorf("%s: %s listed %d times page by page", name, id, n)
				}
			}
			for i := range paged {
				if slices.Contains(paged[:i], paged[i]) {
					t.Errorf("%s: %s repeated", name, paged[i])
				}
			}
		}

		var whole, paged []string
		for _, l := range must(site.CustomersPage(ctx, client.ListCustomersOptions{Limit: 100}))(t).Items {
			whole = append(whole, l.CustomerReference)
		}
		for l, err := range site.ListCustomers(ctx, client.ListCustomersOptions{Limit: 1}) {
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, l.CustomerReference)
			more()
		}
		check("customers", whole, paged)
		budget = 0

		whole, paged = nil, nil
		for _, b := range must(site.BatchesPage(ctx, client.ListBatchesOptions{Limit: 100}))(t).Items {
			whole = append(whole, b.BatchReference)
		}
		for b, err := range site.ListBatches(ctx, client.ListBatchesOptions{Limit: 1}) {
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, b.BatchReference)
			more()
		}
		check("batches", whole, paged)
		budget = 0

		whole, paged = nil, nil
		for _, e := range must(site.EventsPage(ctx, client.ListEventsOptions{Limit: 100}))(t).Items {
			whole = append(whole, e.EventID)
		}
		for e, err := range site.ListEvents(ctx, client.ListEventsOptions{Limit: 1}) {
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, e.EventID)
			more()
		}
		check("events", whole, paged)
		budget = 0

		whole, paged = nil, nil
		for _, d := range must(site.DeliveriesPage(ctx, ep.EndpointID, client.ListDeliveriesOptions{Limit: 100}))(t).Items {
			whole = append(whole, d.DeliveryID)
		}
		for d, err := range site.ListDeliveries(ctx, ep.EndpointID, client.ListDeliveriesOptions{Limit: 1}) {
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, d.DeliveryID)
			more()
		}
		check("deliveries", whole, paged)
	})
}

func count(items []string, item string) int {
	n := 0
	for _, i := range items {
		if i == item {
			n++
		}
	}
	return n
}
