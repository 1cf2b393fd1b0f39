package client_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
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
		// On PostgreSQL a page can read short for a moment (the horizon read low for one
		// statement, never high), which ends the iteration early: a partner then goes on from
		// the cursor it kept, as here, and misses nothing.
		for deadline := time.Now().Add(30 * time.Second); !containsAll(paged, whole) && len(paged) > 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for e, err := range site.ListEvents(ctx, client.ListEventsOptions{After: paged[len(paged)-1]}) {
				if err != nil {
					t.Fatal(err)
				}
				paged = append(paged, e.EventID)
			}
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

// pager is a loopback API that issues tokens and lists five customers (C-0 to C-4) and five
// events (evt_0 to evt_4), two a page.
func pager(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/oauth2/token" {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"tok","token_type":"Bearer","expires_in":3600,"scope":""}`)
		return
	}
	from := 0
	if c := r.URL.Query().Get("cursor"); c != "" {
		from, _ = strconv.Atoi(c)
	}
	if a := r.URL.Query().Get("after"); a != "" {
		n, _ := strconv.Atoi(strings.TrimPrefix(a, "evt_"))
		from = n + 1
	}
	var items []string
	for i := from; i < min(from+2, 5); i++ {
		if strings.HasSuffix(r.URL.Path, "/events") {
			items = append(items, fmt.Sprintf(`{"eventId":"evt_%d","type":"customer.invited","createdAt":1,"siteId":"site_1","data":{}}`, i))
		} else {
			items = append(items, fmt.Sprintf(`{"customerReference":"C-%d","state":"invited","createdAt":1,"expiresAt":2}`, i))
		}
	}
	next := ""
	if from+2 < 5 {
		next = strconv.Itoa(from + 2)
		if strings.HasSuffix(r.URL.Path, "/events") {
			next = fmt.Sprintf("evt_%d", from+1)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"data":[%s],"nextCursor":%q,"traceId":"t"}`, strings.Join(items, ","), next)
}

// An iterator starts from the start of its list each time it is ranged over: ranged over again,
// or by two goroutines at once, it lists every item once each time.
func TestIteratorsRestartOnEachRange(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(pager))
	t.Cleanup(srv.Close)
	c, err := client.New(client.Config{BaseURL: srv.URL, ClientID: "cli", ClientSecret: "sec", HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	site := c.Site("site_1")
	ctx := context.Background()
	customers := site.ListCustomers(ctx, client.ListCustomersOptions{Limit: 2})
	events := site.ListEvents(ctx, client.ListEventsOptions{Limit: 2})
	want := "C-0 C-1 C-2 C-3 C-4 evt_0 evt_1 evt_2 evt_3 evt_4"
	each := func() string {
		var got []string
		for l, err := range customers {
			if err != nil {
				t.Error(err)
				return ""
			}
			got = append(got, l.CustomerReference)
		}
		for e, err := range events {
			if err != nil {
				t.Error(err)
				return ""
			}
			got = append(got, e.EventID)
		}
		return strings.Join(got, " ")
	}
	for pass := range 2 {
		if got := each(); got != want {
			t.Errorf("range %d listed %q, want %q", pass+1, got, want)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			if got := each(); got != want {
				t.Errorf("goroutine %d listed %q, want %q", g, got, want)
			}
		})
	}
	wg.Wait()
}

// containsAll reports whether every one of want is in got.
func containsAll(got, want []string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// An iterator that a server would send round in circles ends with an error after a page or two,
// rather than reading pages for ever: a page that names as the next one a page read already (or
// the one the iteration started from), or an empty page that names a next one.
func TestIteratorsStopWhenTheServerSendsThemRoundInCircles(t *testing.T) {
	t.Parallel()
	customer := func(ref string) string {
		return fmt.Sprintf(`{"customerReference":%q,"state":"invited","createdAt":1,"expiresAt":2}`, ref)
	}
	tests := []struct {
		name  string
		pages map[string]string // the answer's data and nextCursor by the cursor (or after) asked for
		list  func(ctx context.Context, site *client.Site) func(yield func(string, error) bool)
		want  string // the items listed
	}{
		{"an empty page that names a next page",
			map[string]string{"": `"data":[],"nextCursor":"c1"`, "c1": `"data":[],"nextCursor":"c1"`},
			customers, ""},
		{"an empty page that names a new next page each time",
			map[string]string{"": `"data":[],"nextCursor":"c1"`, "c1": `"data":[],"nextCursor":"c2"`, "c2": `"data":[],"nextCursor":"c3"`},
			customers, ""},
		{"a page that names itself as the next",
			map[string]string{"": `"data":[` + customer("C-0") + `],"nextCursor":"c1"`, "c1": `"data":[` + customer("C-1") + `],"nextCursor":"c1"`},
			customers, "C-0 C-1"},
		{"a page that names an earlier page as the next",
			map[string]string{"": `"data":[` + customer("C-0") + `],"nextCursor":"c1"`, "c1": `"data":[` + customer("C-1") + `],"nextCursor":"c2"`,
				"c2": `"data":[` + customer("C-2") + `],"nextCursor":"c1"`},
			customers, "C-0 C-1 C-2"},
		{"events whose next page is the event they were listed after",
			map[string]string{"evt_0": `"data":[{"eventId":"evt_1","type":"customer.invited","createdAt":1,"siteId":"site_1","data":{}}],"nextCursor":"evt_0"`},
			func(ctx context.Context, site *client.Site) func(yield func(string, error) bool) {
				return func(yield func(string, error) bool) {
					for e, err := range site.ListEvents(ctx, client.ListEventsOptions{After: "evt_0"}) {
						if !yield(e.EventID, err) {
							return
						}
					}
				}
			}, "evt_1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			requests := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if r.URL.Path == "/oauth2/token" {
					fmt.Fprint(w, `{"access_token":"tok","token_type":"Bearer","expires_in":3600,"scope":""}`)
					return
				}
				mu.Lock()
				requests++
				stop := requests > len(tt.pages)+1 // an iterator going round in circles: ended here, so that the test ends
				mu.Unlock()
				if stop {
					w.WriteHeader(http.StatusNotFound)
					return
				}
				from := r.URL.Query().Get("cursor") + r.URL.Query().Get("after")
				fmt.Fprintf(w, `{%s,"traceId":"t"}`, tt.pages[from])
			}))
			t.Cleanup(srv.Close)
			c, err := client.New(client.Config{BaseURL: srv.URL, ClientID: "cli", ClientSecret: "sec", HTTPClient: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			var listed []string
			var last error
			for item, err := range tt.list(context.Background(), c.Site("site_1")) {
				if err != nil {
					last = err
					break
				}
				listed = append(listed, item)
			}
			mu.Lock()
			defer mu.Unlock()
			if got := strings.Join(listed, " "); last == nil || got != tt.want || requests > len(tt.pages) {
				t.Errorf("listed %q, then %v, after %d requests; want %q, then an error, after %d at most", got, last, requests, tt.want, len(tt.pages))
			}
		})
	}
}

// customers lists the site's customers' references.
func customers(ctx context.Context, site *client.Site) func(yield func(string, error) bool) {
	return func(yield func(string, error) bool) {
		for l, err := range site.ListCustomers(ctx, client.ListCustomersOptions{}) {
			if !yield(l.CustomerReference, err) {
				return
			}
		}
	}
}
