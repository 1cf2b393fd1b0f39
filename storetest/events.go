package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/webhook"
)

// EventStore is what the events suite exercises: billing.EventStore, with the stores whose
// changes write events.
type EventStore interface {
	billing.Store
	billing.BatchStore
	billing.EventStore
}

// Events is a fresh, empty store for one test of the events suite.
type Events struct {
	Store EventStore
	// DeliveryJobsFunc counts the billing.DeliverWebhooksJob jobs in the store's queue for the
	// endpoint.
	DeliveryJobsFunc func(ctx context.Context, endpointID string) (int, error)
	// EmailJobsFunc returns the arguments, as the queue keeps them (JSON), of the
	// billing.SendEmailJob jobs in the store's queue for the link.
	EmailJobsFunc func(ctx context.Context, linkID string) ([]string, error)
}

// RunEvents runs the suite of billing.EventStore and of the events the other stores write. open
// returns a fresh, empty store for one test; the subtests run in parallel.
func RunEvents(t *testing.T, open func(t *testing.T) Events) {
	s := eventSuite{openFunc: open}
	t.Run("EachChangeWritesItsEvent", s.eachChange)
	t.Run("ARefusedChangeWritesNoEvent", s.refusedChange)
	t.Run("Deliveries", s.deliveries)
	t.Run("FanOutDeliveries", s.fanOutDeliveries)
	t.Run("ADeliveryIsDueOnceItsEventIsListed", s.deliveryAwaitsItsEvent)
	t.Run("CreateWebhookEndpoint", s.createWebhookEndpoint)
	t.Run("LeaseEndpoint", s.leaseEndpoint)
	t.Run("ExpireInvitations", s.expireInvitations)
	t.Run("ListEvents", s.listEvents)
	t.Run("PurgeEvents", s.purgeEvents)
	t.Run("RecordAttempts", s.recordAttempts)
	t.Run("ARetryDuringAnAttemptStands", s.retryDuringAttempt)
	t.Run("UpdateWebhookEndpoint", s.updateWebhookEndpoint)
	t.Run("AnEndpointChangeLosesNoOtherChange", s.endpointChangesInterleaved)
	t.Run("Metadata", s.metadata)
	t.Run("EmailJobs", s.emailJobs)
}

type eventSuite struct {
	openFunc func(t *testing.T) Events
}

type eventBundle struct {
	Events
	site billing.Site
}

func (s eventSuite) setup(t *testing.T) eventBundle {
	t.Helper()
	b := eventBundle{Events: s.openFunc(t)}
	b.site = createSite(t, b.Store, createOrganisation(t, b.Store).ID)
	return b
}

// events lists the site's events f selects, once n of them are listed. On PostgreSQL an event is
// listed once every transaction that began before it has ended, a moment after it committed
// (other tests' transactions count too).
func (b eventBundle) events(t *testing.T, f billing.EventFilter, n int) []billing.Event {
	t.Helper()
	if f.Limit == 0 {
		f.Limit = 1000
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		events, err := b.Store.ListEvents(context.Background(), b.site.ID, f)
		if err != nil {
			t.Fatalf("ListEvents: %v", err)
		}
		if len(events) >= n || time.Now().After(deadline) {
			return events
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func eventTypes(events []billing.Event) []billing.EventType {
	out := make([]billing.EventType, len(events))
	for i, e := range events {
		out[i] = e.Type
	}
	return out
}

func (b eventBundle) invite(t *testing.T, ref string, at time.Time) billing.Link {
	t.Helper()
	l := newLink(b.site.ID, ref, at)
	if err := b.Store.CreateLink(context.Background(), l); err != nil {
		t.Fatalf("CreateLink: %v", err)
	}
	return l
}

func (b eventBundle) endpoint(t *testing.T, state billing.EndpointState, types ...billing.EventType) billing.WebhookEndpoint {
	t.Helper()
	secret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	e := billing.WebhookEndpoint{ID: billing.NewID("whe"), SiteID: b.site.ID, URL: "https://example.com/hooks",
		EventTypes: types, State: state, Secret: secret, CreatedAt: t0}
	if state == billing.EndpointDisabled {
		e.DisabledReason = billing.DisabledByPartner
	}
	if created, err := b.Store.CreateWebhookEndpoint(context.Background(), e, billing.MaxWebhookEndpoints); err != nil || !created {
		t.Fatalf("CreateWebhookEndpoint = %v, %v", created, err)
	}
	return e
}

// fanOut gives each endpoint the deliveries of its site's new events, and returns how many events
// each took.
func (b eventBundle) fanOut(t *testing.T, endpoints ...billing.WebhookEndpoint) []int {
	t.Helper()
	taken := make([]int, len(endpoints))
	for i, e := range endpoints {
		// Until two takes in a row find nothing: on PostgreSQL an event listed may be held back
		// again for a moment (flickerRetry), and a take then finds it the next time.
		for empty := 0; empty < 2; {
			n, err := b.Store.FanOutDeliveries(context.Background(), e.ID, 100)
			if err != nil {
				t.Fatalf("FanOutDeliveries: %v", err)
			}
			if taken[i] += n; n == 0 {
				empty++
				time.Sleep(flickerRetry)
			}
		}
	}
	return taken
}

// flickerRetry is how long a test waits before it reads again what PostgreSQL's events horizon
// may have held back for a moment: a transaction of another database that ends while the horizon
// is being read is taken for one of this database's (events_horizon), so an event already listed
// can be held back by one read, and given by the next.
const flickerRetry = 20 * time.Millisecond

func (b eventBundle) deliveries(t *testing.T, endpointID string) []billing.Delivery {
	t.Helper()
	ds, err := b.Store.Deliveries(context.Background(), endpointID, billing.DeliveryFilter{Limit: 1000})
	if err != nil {
		t.Fatalf("Deliveries: %v", err)
	}
	return ds
}

func (s eventSuite) eachChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := s.setup(t)
	l := b.invite(t, "cust-1", t0)
	linked, err := b.Store.LinkCustomer(ctx, l.ID, customer, terms, "", t0.Add(time.Minute))
	wantErr(t, "LinkCustomer", err, nil)
	_, err = b.Store.RevokeLink(ctx, l.ID, billing.RevokedByCustomer, t0.Add(2*time.Minute))
	wantErr(t, "RevokeLink", err, nil)
	b.invite(t, "cust-2", t0)
	n, err := b.Store.ExpireInvitations(ctx, t0.Add(ttl), 100)
	if err != nil || n != 1 {
		t.Fatalf("ExpireInvitations = %d, %v; want 1", n, err)
	}
	batch, rows := newBatch(b.site.ID, "batch-1", 2, t0)
	_, _, err = b.Store.CreateBatch(ctx, batch, rows)
	wantErr(t, "CreateBatch", err, nil)
	wantErr(t, "RecordOutcomes", b.Store.RecordOutcomes(ctx, []billing.RowOutcome{
		{RowID: rows[0].ID, At: t0}, {RowID: rows[1].ID, Failure: billing.FailureInsufficientFunds, At: t0},
	}), nil)
	completed, err := b.Store.CompleteBatch(ctx, batch.ID, t0.Add(time.Hour))
	if err != nil || !completed {
		t.Fatalf("CompleteBatch = %v, %v", completed, err)
	}
	completed, err = b.Store.CompleteBatch(ctx, batch.ID, t0.Add(2*time.Hour))
	if err != nil || !completed {
		t.Fatalf("CompleteBatch again = %v, %v", completed, err)
	}

	events := b.events(t, billing.EventFilter{}, 7)
	want := []billing.EventType{billing.EventCustomerInvited, billing.EventCustomerLinked, billing.EventCustomerRevoked,
		billing.EventCustomerInvited, billing.EventCustomerExpired, billing.EventBatchAccepted, billing.EventBatchCompleted}
	if got := eventTypes(events); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v (a batch completes once)", got, want)
	}
	if events[1].CreatedAt != linked.LinkedAt || events[6].CreatedAt != t0.Add(time.Hour) {
		t.Errorf("events are not at their changes: %v, %v", events[1].CreatedAt, events[6].CreatedAt)
	}
	for _, e := range events {
		if e.SiteID != b.site.ID || len(e.Body) == 0 {
			t.Errorf("event %+v", e)
		}
		got, err := b.Store.GetEvent(ctx, e.ID)
		wantErr(t, "GetEvent", err, nil)
		wantEqual(t, "GetEvent", got, e)
	}
}

func (s eventSuite) refusedChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := s.setup(t)
	l := b.invite(t, "cust-1", t0)
	err := b.Store.CreateLink(ctx, newLink(b.site.ID, "cust-1", t0))
	wantErr(t, "CreateLink of an active pair", err, billing.ErrDuplicate)
	_, err = b.Store.LinkCustomer(ctx, l.ID, customer, terms, "", t0.Add(ttl))
	wantErr(t, "LinkCustomer after the expiry", err, billing.ErrStale)
	batch, rows := newBatch(b.site.ID, "batch-1", 2, t0)
	_, _, err = b.Store.CreateBatch(ctx, batch, rows)
	wantErr(t, "CreateBatch", err, nil)
	again, againRows := newBatch(b.site.ID, "batch-1", 2, t0)
	_, created, err := b.Store.CreateBatch(ctx, again, againRows)
	if err != nil || created {
		t.Fatalf("CreateBatch of a retained reference = %v, %v", created, err)
	}
	want := []billing.EventType{billing.EventCustomerInvited, billing.EventBatchAccepted}
	if got := eventTypes(b.events(t, billing.EventFilter{}, len(want))); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// due reads the endpoint's deliveries due at now.
func (b eventBundle) due(t *testing.T, endpointID string, now time.Time) []billing.DueDelivery {
	t.Helper()
	due, err := b.Store.DueDeliveries(context.Background(), endpointID, now, billing.DueDelivery{}, 100)
	if err != nil {
		t.Fatalf("DueDeliveries: %v", err)
	}
	return due
}

// dueOnceListed is due once n deliveries are due (or after 10 s): a delivery is due once the
// events list shows its event, on PostgreSQL a moment after the event committed (as events), and
// a read may hold it back again for a moment (flickerRetry): a read that expects deliveries waits
// for them.
func (b eventBundle) dueOnceListed(t *testing.T, endpointID string, now time.Time, n int) []billing.DueDelivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		due := b.due(t, endpointID, now)
		if len(due) >= n || time.Now().After(deadline) {
			return due
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s eventSuite) deliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := s.setup(t)
	all := b.endpoint(t, billing.EndpointEnabled, billing.AllEventTypes)
	invitedOnly := b.endpoint(t, billing.EndpointEnabled, billing.EventCustomerInvited)
	linkedOnly := b.endpoint(t, billing.EndpointEnabled, billing.EventCustomerLinked)
	disabled := b.endpoint(t, billing.EndpointDisabled, billing.AllEventTypes)
	b.invite(t, "cust-1", t0)
	event := b.events(t, billing.EventFilter{}, 1)[0]

	// The event's transaction makes no delivery; the enabled endpoints have an event to be given.
	if ds := b.deliveries(t, all.ID); len(ds) != 0 {
		t.Fatalf("deliveries before the fan-out: %+v", ds)
	}
	if n, err := b.Store.ScheduleDeliveries(ctx, t0, time.Minute); err != nil || n != 3 {
		t.Fatalf("ScheduleDeliveries before the fan-out = %d, %v; want the 3 enabled endpoints", n, err)
	}
	if taken := b.fanOut(t, all, invitedOnly, linkedOnly, disabled); !slices.Equal(taken, []int{1, 1, 1, 0}) {
		t.Fatalf("events taken by the fan-out: %v, want the enabled endpoints' one each", taken)
	}
	if taken := b.fanOut(t, all, invitedOnly, linkedOnly); !slices.Equal(taken, []int{0, 0, 0}) {
		t.Fatalf("events taken by the fan-out again: %v", taken)
	}

	ds := b.deliveries(t, all.ID)
	if len(ds) != 1 || ds[0].EventID != event.ID || ds[0].State != billing.DeliveryPending || ds[0].EventType != billing.EventCustomerInvited ||
		ds[0].Tries != 0 || !ds[0].CreatedAt.Equal(t0) {
		t.Fatalf("deliveries to the endpoint of every type: %+v", ds)
	}
	if other := b.deliveries(t, invitedOnly.ID); len(other) != 1 || other[0].EventID != event.ID || other[0].ID == ds[0].ID {
		t.Errorf("the endpoint of customer.invited got %+v (the other's: %s)", other, ds[0].ID)
	}
	if ds := b.deliveries(t, linkedOnly.ID); len(ds) != 0 {
		t.Errorf("the endpoint of customer.linked got %+v", ds)
	}
	if ds := b.deliveries(t, disabled.ID); len(ds) != 0 {
		t.Errorf("the disabled endpoint got %+v", ds)
	}

	// Each endpoint with due deliveries gets one job a round, however often they are looked for
	// (the one before the fan-out included).
	for range 2 {
		n, err := b.Store.ScheduleDeliveries(ctx, t0, time.Minute)
		if err != nil || n != 2 {
			t.Fatalf("ScheduleDeliveries = %d, %v; want the 2 endpoints with due deliveries", n, err)
		}
	}
	jobs := func(want map[string]int) {
		t.Helper()
		for _, e := range []billing.WebhookEndpoint{all, invitedOnly, linkedOnly} {
			if n, err := b.DeliveryJobsFunc(ctx, e.ID); err != nil || n != want[e.ID] {
				t.Errorf("%d jobs of endpoint %s (%v), want %d", n, e.URL, err, want[e.ID])
			}
		}
	}
	jobs(map[string]int{all.ID: 1, invitedOnly.ID: 1, linkedOnly.ID: 1})
	if _, err := b.Store.ScheduleDeliveries(ctx, t0.Add(time.Minute), time.Minute); err != nil {
		t.Fatal(err)
	}
	jobs(map[string]int{all.ID: 2, invitedOnly.ID: 2, linkedOnly.ID: 1}) // the next round's
	if n, err := b.Store.ScheduleDeliveries(ctx, t0.Add(-time.Millisecond), time.Minute); err != nil || n != 0 {
		t.Errorf("ScheduleDeliveries before any is due = %d, %v", n, err)
	}
	// An endpoint whose lease a run holds gets no job: that run sends what comes due, where another
	// would find the lease held and end at once (a job a poll, for as long as the lease lasts, were
	// its run dead). It gets one once the lease ends.
	held := t0.Add(2 * time.Minute)
	if ok, err := b.Store.LeaseEndpoint(ctx, all.ID, "run", held, held.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("LeaseEndpoint = %v, %v", ok, err)
	}
	for _, now := range []time.Time{held, held.Add(time.Minute - time.Millisecond), held.Add(time.Minute)} {
		if _, err := b.Store.ScheduleDeliveries(ctx, now, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	jobs(map[string]int{all.ID: 3, invitedOnly.ID: 4, linkedOnly.ID: 1}) // invitedOnly: a job each of the two rounds
	wantErr(t, "ReleaseEndpoint", b.Store.ReleaseEndpoint(ctx, all.ID, "run"), nil)

	// A delivery is due from its event's time, with the event's body.
	if due := b.due(t, all.ID, t0.Add(-time.Millisecond)); len(due) != 0 {
		t.Errorf("due before the event: %+v", due)
	}
	due := b.dueOnceListed(t, all.ID, t0, 1)
	if len(due) != 1 || due[0].Delivery.ID != ds[0].ID || due[0].Delivery.EventID != event.ID || string(due[0].Body) != string(event.Body) ||
		!due[0].Due.Equal(t0) {
		t.Errorf("DueDeliveries = %+v", due)
	}
	if after, err := b.Store.DueDeliveries(ctx, all.ID, t0, due[0], 100); err != nil || len(after) != 0 {
		t.Errorf("DueDeliveries after the last = %+v, %v", after, err)
	}

	// A retried delivery starts its schedule again, due at the retry.
	sent := billing.DeliveryOutcome{DeliveryID: ds[0].ID, Attempt: billing.DeliveryAttempt{At: t0, Status: 200}, State: billing.DeliverySucceeded}
	wantErr(t, "RecordAttempts", b.Store.RecordAttempts(ctx, all.ID, []billing.DeliveryOutcome{sent}, billing.EndpointFailureLimit), nil)
	if due := b.due(t, all.ID, t0.Add(time.Hour)); len(due) != 0 {
		t.Errorf("a succeeded delivery is due: %+v", due)
	}
	retried := t0.Add(time.Hour)
	wantErr(t, "RetryDelivery", b.Store.RetryDelivery(ctx, ds[0].ID, retried, 2), nil)
	if got, _ := b.Store.Delivery(ctx, ds[0].ID); got.State != billing.DeliveryPending || got.Tries != 0 || len(got.Attempts) != 1 || got.Retries != 1 {
		t.Errorf("after a retry: %+v", got)
	}
	if due := b.due(t, all.ID, retried.Add(-time.Millisecond)); len(due) != 0 {
		t.Errorf("a retried delivery is due before the retry: %+v", due)
	}
	if due := b.dueOnceListed(t, all.ID, retried, 1); len(due) != 1 {
		t.Errorf("a retried delivery is not due at the retry: %+v", due)
	}
	wantErr(t, "RetryDelivery of none", b.Store.RetryDelivery(ctx, "dlv_missing", retried, 2), billing.ErrNotFound)
	// Retried up to its limit: one more is refused, and changes nothing.
	wantErr(t, "RetryDelivery to the limit", b.Store.RetryDelivery(ctx, ds[0].ID, retried, 2), nil)
	wantErr(t, "RetryDelivery past the limit", b.Store.RetryDelivery(ctx, ds[0].ID, retried.Add(time.Hour), 2), billing.ErrNotFound)
	if got, _ := b.Store.Delivery(ctx, ds[0].ID); got.Retries != 2 || got.State != billing.DeliveryPending {
		t.Errorf("after a retry past the limit: %+v", got)
	}

	test, err := billing.NewEvent(billing.EventWebhookTest, b.site.ID, t0, billing.ViewWebhookEndpoint(linkedOnly))
	wantErr(t, "NewEvent", err, nil)
	testDelivery, err := b.Store.SendTestEvent(ctx, test, linkedOnly.ID)
	wantErr(t, "SendTestEvent", err, nil)
	if got := b.deliveries(t, linkedOnly.ID); len(got) != 1 || got[0].ID != testDelivery.ID || got[0].EventID != test.ID {
		t.Errorf("after the test: %+v", got)
	}
	if got := b.deliveries(t, all.ID); len(got) != 1 {
		t.Errorf("the test went to another endpoint too: %+v", got)
	}
	if due := b.dueOnceListed(t, linkedOnly.ID, t0, 1); len(due) != 1 || string(due[0].Body) != string(test.Body) {
		t.Errorf("the test's delivery is not due: %+v", due)
	}

	wantErr(t, "DeleteWebhookEndpoint", b.Store.DeleteWebhookEndpoint(ctx, b.site.ID, all.ID), nil)
	_, err = b.Store.Delivery(ctx, ds[0].ID)
	wantErr(t, "Delivery of a deleted endpoint", err, billing.ErrNotFound)
	wantErr(t, "DeleteWebhookEndpoint again", b.Store.DeleteWebhookEndpoint(ctx, b.site.ID, all.ID), billing.ErrNotFound)
}

// A delivery made in its event's transaction (SendTestEvent's) is due only once the events list
// shows the event: never while a transaction that began before it is open, whose event the list
// may then show before it, so that a partner passing the delivered eventId as `after` skips none.
// (On PostgreSQL the test event commits while the other transaction is open; on SQLite it waits
// for the other's write lock, and is listed once it commits.)
func (s eventSuite) deliveryAwaitsItsEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := s.setup(t)
	held, tested := b.endpoint(t, billing.EndpointEnabled, billing.AllEventTypes), b.endpoint(t, billing.EndpointEnabled, billing.AllEventTypes)
	read, release, changed := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() { // a transaction that writes (locks a row), held open
		_, err := b.Store.UpdateWebhookEndpoint(ctx, held.ID, func(c *billing.WebhookEndpoint) error {
			close(read)
			<-release
			c.URL = "https://example.com/changed"
			return nil
		})
		changed <- err
	}()
	<-read
	test, err := billing.NewEvent(billing.EventWebhookTest, b.site.ID, t0, billing.ViewWebhookEndpoint(tested))
	wantErr(t, "NewEvent", err, nil)
	sent := make(chan error, 1)
	go func() {
		_, err := b.Store.SendTestEvent(ctx, test, tested.ID)
		sent <- err
	}()
	select {
	case err := <-sent:
		wantErr(t, "SendTestEvent", err, nil)
		sent <- nil
		time.Sleep(50 * time.Millisecond) // a few polls of a delivery run
		if due := b.due(t, tested.ID, t0); len(due) != 0 {
			t.Errorf("the delivery of the test event %s is due while a transaction that began before it is open", due[0].Delivery.EventID)
		}
		if listed := b.events(t, billing.EventFilter{}, 0); len(listed) != 0 {
			t.Errorf("the test event %s is listed while a transaction that began before it is open", listed[0].ID)
		}
	case <-time.After(500 * time.Millisecond):
	}
	close(release)
	wantErr(t, "UpdateWebhookEndpoint", <-changed, nil)
	wantErr(t, "SendTestEvent", <-sent, nil)
	if due := b.dueOnceListed(t, tested.ID, t0, 1); len(due) != 1 || due[0].Delivery.EventID != test.ID {
		t.Fatalf("after the other transaction ended: %d deliveries due, want the test's", len(due))
	}
	if listed := b.events(t, billing.EventFilter{}, 0); len(listed) != 1 || listed[0].ID != test.ID {
		t.Errorf("once its delivery is due the list holds %v, want the test event", eventTypes(listed))
	}
}

// CreateWebhookEndpoint counts the site's endpoints, disabled ones included, and inserts one in
// one operation: never more than the limit, even when creations race.
func (s eventSuite) createWebhookEndpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := s.setup(t)
	newEndpoint := func(siteID string) billing.WebhookEndpoint {
		secret, err := webhook.NewSecret()
		wantErr(t, "NewSecret", err, nil)
		return billing.WebhookEndpoint{ID: billing.NewID("whe"), SiteID: siteID, URL: "https://example.com/hooks",
			EventTypes: []billing.EventType{billing.AllEventTypes}, State: billing.EndpointEnabled, Secret: secret, CreatedAt: t0}
	}
	count := func(siteID string) int {
		t.Helper()
		es, err := b.Store.WebhookEndpoints(ctx, siteID)
		wantErr(t, "WebhookEndpoints", err, nil)
		return len(es)
	}
	const limit = 3
	b.endpoint(t, billing.EndpointDisabled, billing.AllEventTypes) // counts too
	for i := 1; i < limit; i++ {
		if created, err := b.Store.CreateWebhookEndpoint(ctx, newEndpoint(b.site.ID), limit); err != nil || !created {
			t.Fatalf("endpoint %d of %d: CreateWebhookEndpoint = %v, %v", i+1, limit, created, err)
		}
	}
	refused := newEndpoint(b.site.ID)
	if created, err := b.Store.CreateWebhookEndpoint(ctx, refused, limit); err != nil || created {
		t.Fatalf("beyond the limit: CreateWebhookEndpoint = %v, %v; want false", created, err)
	}
	_, err := b.Store.WebhookEndpoint(ctx, refused.ID)
	wantErr(t, "WebhookEndpoint refused", err, billing.ErrNotFound)
	if n := count(b.site.ID); n != limit {
		t.Errorf("%d endpoints, want %d", n, limit)
	}
	// Another site has a limit of its own.
	other := createSite(t, b.Store, b.site.OrganisationID)
	if created, err := b.Store.CreateWebhookEndpoint(ctx, newEndpoint(other.ID), limit); err != nil || !created {
		t.Errorf("another site's endpoint: CreateWebhookEndpoint = %v, %v", created, err)
	}
	_, err = b.Store.CreateWebhookEndpoint(ctx, newEndpoint("site_missing"), limit)
	wantErr(t, "CreateWebhookEndpoint of no site", err, billing.ErrNotFound)

	// Creations at once: the limit holds.
	racing := createSite(t, b.Store, b.site.OrganisationID)
	const tries = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for range tries {
		wg.Go(func() {
			ok, err := b.Store.CreateWebhookEndpoint(ctx, newEndpoint(racing.ID), limit)
			if err != nil {
				t.Errorf("CreateWebhookEndpoint: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				created++
			}
		})
	}
	wg.Wait()
	if n := count(racing.ID); created != limit || n != limit {
		t.Errorf("%d creations at once: %d made, %d stored; want %d", tries, created, n, limit)
	}
}

// An endpoint is given a delivery of each event of its site written since it was made or last
// enabled that it subscribes to, once, in the order of the events, at most limit events at a time.
func (s eventSuite) fanOutDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := s.setup(t)
	b.invite(t, "before", t0)
	b.events(t, billing.EventFilter{}, 1)
	all := b.endpoint(t, billing.EndpointEnabled, billing.AllEventTypes)
	linkedOnly := b.endpoint(t, billing.EndpointEnabled, billing.EventCustomerLinked)
	for i := range 3 {
		b.invite(t, fmt.Sprintf("after-%d", i), t0.Add(time.Duration(i)*time.Second))
	}
	events := b.events(t, billing.EventFilter{}, 4)[1:]

	take := func(e billing.WebhookEndpoint, limit, want int) {
		t.Helper()
		n, err := b.Store.FanOutDeliveries(ctx, e.ID, limit)
		for deadline := time.Now().Add(10 * time.Second); err == nil && n < want && time.Now().Before(deadline); {
			time.Sleep(flickerRetry) // held back for a moment (flickerRetry): the next take finds the rest
			var more int
			more, err = b.Store.FanOutDeliveries(ctx, e.ID, limit-n)
			n += more
		}
		if err != nil || n != want {
			t.Fatalf("FanOutDeliveries(%s, %d) = %d, %v; want %d", e.URL, limit, n, err, want)
		}
	}
	take(all, 2, 2)
	take(all, 2, 1)
	take(all, 2, 0)
	ds := b.deliveries(t, all.ID)
	slices.Reverse(ds) // newest first
	if len(ds) != 3 {
		t.Fatalf("deliveries: %+v; want those of the 3 events after the endpoint was made", ds)
	}
	for i, d := range ds {
		if d.EventID != events[i].ID || d.State != billing.DeliveryPending || !d.CreatedAt.Equal(events[i].CreatedAt) {
			t.Errorf("delivery %d: %+v, of event %+v", i, d, events[i])
		}
	}
	take(linkedOnly, 100, 3) // passed: it subscribes to none of them
	if ds := b.deliveries(t, linkedOnly.ID); len(ds) != 0 {
		t.Errorf("the endpoint of customer.linked got %+v", ds)
	}

	// Disabled, it is given nothing; enabled again, it is given the events written since.
	setState := func(e billing.WebhookEndpoint, state billing.EndpointState) {
		t.Helper()
		_, err := b.Store.UpdateWebhookEndpoint(ctx, e.ID, func(e *billing.WebhookEndpoint) error {
			e.State, e.DisabledReason = state, ""
			if state == billing.EndpointDisabled {
				e.DisabledReason = billing.DisabledByPartner
			}
			return nil
		})
		wantErr(t, "UpdateWebhookEndpoint", err, nil)
	}
	setState(all, billing.EndpointDisabled)
	b.invite(t, "while-disabled", t0)
	b.events(t, billing.EventFilter{}, 5)
	take(all, 100, 0)
	setState(all, billing.EndpointEnabled)
	b.invite(t, "enabled-again", t0.Add(time.Hour))
	last := b.events(t, billing.EventFilter{}, 6)[5]
	take(all, 100, 1)
	if ds := b.deliveries(t, all.ID); len(ds) != 4 || ds[0].EventID != last.ID {
		t.Errorf("after it was enabled again: %+v; want the delivery of %s alone added", ds, last.ID)
	}

	// A test event goes to the endpoint it tests alone.
	test, err := billing.NewEvent(billing.EventWebhookTest, b.site.ID, t0, billing.ViewWebhookEndpoint(linkedOnly))
	wantErr(t, "NewEvent", err, nil)
	_, err = b.Store.SendTestEvent(ctx, test, linkedOnly.ID)
	wantErr(t, "SendTestEvent", err, nil)
	b.events(t, billing.EventFilter{}, 7)
	take(all, 100, 1)
	if ds := b.deliveries(t, all.ID); len(ds) != 4 {
		t.Errorf("the test of another endpoint was given to this one: %+v", ds)
	}
}

// An endpoint's lease has one holder at a time, of those asking at once too, until it ends or is
// released.
func (s eventSuite) leaseEndpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := s.setup(t)
	e := b.endpoint(t, billing.EndpointEnabled, billing.AllEventTypes)
	lease := func(holder string, now time.Time) bool {
		t.Helper()
		held, err := b.Store.LeaseEndpoint(ctx, e.ID, holder, now, now.Add(time.Minute))
		wantErr(t, "LeaseEndpoint", err, nil)
		return held
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var holders []string
	for i := range 8 {
		wg.Go(func() {
			if lease(fmt.Sprint("run ", i), t0) {
				mu.Lock()
				holders = append(holders, fmt.Sprint("run ", i))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(holders) != 1 {
		t.Fatalf("holders of one lease asked at once: %v", holders)
	}
	first := holders[0]
	if lease("other", t0.Add(time.Minute-time.Millisecond)) {
		t.Error("another took the lease before it ended")
	}
	if !lease(first, t0.Add(30*time.Second)) {
		t.Error("the holder could not renew its lease")
	}
	if lease("other", t0.Add(time.Minute)) {
		t.Error("another took the renewed lease before it ended")
	}
	if !lease("other", t0.Add(90*time.Second)) {
		t.Error("another could not take the lease once it ended")
	}
	if lease(first, t0.Add(91*time.Second)) {
		t.Error("the holder whose lease ended took it back from the new one")
	}
	wantErr(t, "ReleaseEndpoint by a former holder", b.Store.ReleaseEndpoint(ctx, e.ID, first), nil)
	if lease("third", t0.Add(92*time.Second)) {
		t.Error("a former holder released the new holder's lease")
	}
	wantErr(t, "ReleaseEndpoint", b.Store.ReleaseEndpoint(ctx, e.ID, "other"), nil)
	if !lease("third", t0.Add(92*time.Second)) {
		t.Error("a released lease could not be taken")
	}
	if held, err := b.Store.LeaseEndpoint(ctx, "whe_missing", "x", t0, t0.Add(time.Minute)); err != nil || held {
		t.Errorf("LeaseEndpoint of no endpoint = %v, %v", held, err)
	}
}

// Replicas sweeping at once write each expiry once.
func (s eventSuite) expireInvitations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := s.setup(t)
	const n = 24
	for i := range n {
		b.invite(t, "cust-"+string(rune('a'+i)), t0)
	}
	b.invite(t, "fresh", t0.Add(time.Hour)) // not expired at the sweep
	var (
		mu    sync.Mutex
		total int
		wg    sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for {
				k, err := b.Store.ExpireInvitations(ctx, t0.Add(ttl), 5)
				if err != nil {
					t.Errorf("ExpireInvitations: %v", err)
					return
				}
				mu.Lock()
				total += k
				mu.Unlock()
				if k == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	expired := b.events(t, billing.EventFilter{Type: billing.EventCustomerExpired}, n)
	if total != n || len(expired) != n {
		t.Fatalf("the sweeps expired %d links with %d events, want %d", total, len(expired), n)
	}
	fresh, err := b.Store.GetCurrentLink(ctx, b.site.ID, "fresh")
	wantErr(t, "GetCurrentLink", err, nil)
	if fresh.StoredState != billing.LinkInvited {
		t.Errorf("an open invitation was expired: %+v", fresh)
	}
}

func (s eventSuite) listEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := s.setup(t)
	for _, ref := range []string{"a", "b", "c", "d", "e"} {
		b.invite(t, ref, t0)
	}
	l, err := b.Store.GetCurrentLink(ctx, b.site.ID, "c")
	wantErr(t, "GetCurrentLink", err, nil)
	_, err = b.Store.LinkCustomer(ctx, l.ID, customer, terms, "", t0)
	wantErr(t, "LinkCustomer", err, nil)
	all := b.events(t, billing.EventFilter{}, 6)
	if len(all) != 6 {
		t.Fatalf("%d events, want 6", len(all))
	}
	var paged []billing.Event
	f := billing.EventFilter{Limit: 4}
	for {
		page := b.events(t, f, 0)
		paged = append(paged, page...)
		if len(page) < f.Limit {
			break
		}
		f.After = page[len(page)-1].ID
	}
	wantEqual(t, "paged events", paged, all)
	wantEqual(t, "events of a type", b.events(t, billing.EventFilter{Type: billing.EventCustomerLinked}, 1), all[5:])
	wantEqual(t, "events of a type after one", b.events(t, billing.EventFilter{Type: billing.EventCustomerInvited, After: all[3].ID}, 1), all[4:5])

	other := s.setup(t)
	other.invite(t, "x", t0)
	otherEvent := other.events(t, billing.EventFilter{}, 1)[0]
	for _, after := range []string{"evt_missing", otherEvent.ID} {
		_, err := b.Store.ListEvents(ctx, b.site.ID, billing.EventFilter{After: after, Limit: 10})
		wantErr(t, "ListEvents after "+after, err, billing.ErrNotFound)
	}
}

func (s eventSuite) purgeEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := s.setup(t)
	e := b.endpoint(t, billing.EndpointEnabled, billing.AllEventTypes)
	b.invite(t, "old", t0)
	b.invite(t, "new", t0.Add(time.Hour))
	b.events(t, billing.EventFilter{}, 2)
	b.fanOut(t, e)
	n, err := b.Store.PurgeEvents(ctx, t0)
	if err != nil || n != 1 {
		t.Fatalf("PurgeEvents = %d, %v; want 1", n, err)
	}
	events := b.events(t, billing.EventFilter{}, 1)
	if len(events) != 1 || !events[0].CreatedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("after the purge: %v", eventTypes(events))
	}
	if ds := b.deliveries(t, e.ID); len(ds) != 1 || ds[0].EventID != events[0].ID {
		t.Errorf("the purged event's delivery is left: %+v", ds)
	}
}

func (s eventSuite) recordAttempts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := s.setup(t)
	failing := b.endpoint(t, billing.EndpointEnabled, billing.AllEventTypes)
	watcher := b.endpoint(t, billing.EndpointEnabled, billing.EventWebhookEndpointDisabled)
	b.invite(t, "cust-1", t0)
	b.invite(t, "cust-2", t0)
	b.events(t, billing.EventFilter{}, 2) // on PostgreSQL, the fan-out too takes the events the list shows
	b.fanOut(t, failing, watcher)
	ds := b.deliveries(t, failing.ID)
	d, other := ds[0], ds[1]
	limit := billing.EndpointFailureLimit
	outcome := func(d billing.Delivery, at time.Time, status int, state billing.DeliveryState, next time.Time) billing.DeliveryOutcome {
		a := billing.DeliveryAttempt{At: at, Status: status, Duration: 15 * time.Millisecond}
		if status >= 300 || status == 0 {
			a.Error = "status"
		}
		return billing.DeliveryOutcome{DeliveryID: d.ID, Attempt: a, State: state, NextAttemptAt: next}
	}
	record := func(outcomes ...billing.DeliveryOutcome) {
		t.Helper()
		wantErr(t, "RecordAttempts", b.Store.RecordAttempts(ctx, failing.ID, outcomes, limit), nil)
	}
	endpoint := func() billing.WebhookEndpoint {
		t.Helper()
		e, err := b.Store.WebhookEndpoint(ctx, failing.ID)
		wantErr(t, "WebhookEndpoint", err, nil)
		return e
	}
	delivery := func(id string) billing.Delivery {
		t.Helper()
		got, err := b.Store.Delivery(ctx, id)
		wantErr(t, "Delivery", err, nil)
		return got
	}

	// Both fail: pending, due at their next attempts; the endpoint failing since the first.
	record(outcome(d, t0.Add(time.Second), 500, billing.DeliveryPending, t0.Add(time.Minute)),
		outcome(other, t0, 0, billing.DeliveryPending, t0.Add(2*time.Minute)))
	if e := endpoint(); !e.FailingSince.Equal(t0) || e.State != billing.EndpointEnabled {
		t.Fatalf("after failures: %+v", e)
	}
	if got := delivery(d.ID); got.State != billing.DeliveryPending || got.Tries != 1 || len(got.Attempts) != 1 || got.Attempts[0].Status != 500 ||
		got.Attempts[0].Duration != 15*time.Millisecond || !got.Attempts[0].At.Equal(t0.Add(time.Second)) {
		t.Fatalf("after a failure: %+v", got)
	}
	if due := b.dueOnceListed(t, failing.ID, t0.Add(time.Minute), 1); len(due) != 1 || due[0].Delivery.ID != d.ID || due[0].Delivery.Tries != 1 {
		t.Fatalf("due at the first's next attempt: %+v", due)
	}
	if due := b.dueOnceListed(t, failing.ID, t0.Add(2*time.Minute), 2); len(due) != 2 {
		t.Fatalf("due at the second's next attempt: %+v", due)
	}

	// A success after a failure clears the mark; the attempts are numbered in order.
	record(outcome(other, t0.Add(time.Hour), 503, billing.DeliveryPending, t0.Add(2*time.Hour)),
		outcome(d, t0.Add(time.Hour+time.Second), 200, billing.DeliverySucceeded, time.Time{}))
	if got := delivery(d.ID); got.State != billing.DeliverySucceeded || got.Tries != 2 || len(got.Attempts) != 2 || got.Attempts[1].Status != 200 {
		t.Fatalf("after a success: %+v", got)
	}
	if e := endpoint(); !e.FailingSince.IsZero() {
		t.Fatalf("a success after the failures leaves FailingSince %v", e.FailingSince)
	}
	// Failures after the latest success mark the endpoint again, since the first of them.
	start := t0.Add(2 * time.Hour)
	record(outcome(d, start.Add(-time.Second), 200, billing.DeliverySucceeded, time.Time{}),
		outcome(other, start, 0, billing.DeliveryPending, start.Add(time.Hour)))
	if e := endpoint(); !e.FailingSince.Equal(start) {
		t.Fatalf("a failure after a success in one round: FailingSince %v, want %v", e.FailingSince, start)
	}
	record(outcome(other, start.Add(limit-time.Millisecond), 503, billing.DeliveryFailed, time.Time{}))
	if e := endpoint(); e.State != billing.EndpointEnabled || !e.FailingSince.Equal(start) {
		t.Fatalf("failing for less than the limit: %+v", e)
	}
	if got := delivery(other.ID); got.State != billing.DeliveryFailed || got.Tries != 4 {
		t.Fatalf("after the final attempt: %+v", got)
	}
	if due := b.due(t, failing.ID, start.Add(limit*2)); len(due) != 0 {
		t.Fatalf("ended deliveries are due: %+v", due)
	}
	// Only a delivery's last attempt disables it: a failure with retries left does not.
	record(outcome(other, start.Add(limit), 503, billing.DeliveryPending, start.Add(limit+time.Minute)))
	if e := endpoint(); e.State != billing.EndpointEnabled {
		t.Fatalf("a failure with retries left, past the limit: %+v", e)
	}
	record(outcome(other, start.Add(limit+time.Minute), 503, billing.DeliveryFailed, time.Time{}))
	record(outcome(other, start.Add(limit+time.Hour), 503, billing.DeliveryFailed, time.Time{}))
	if e := endpoint(); e.State != billing.EndpointDisabled || e.DisabledReason != billing.DisabledFailing {
		t.Fatalf("failing for the limit: %+v", e)
	}
	disabled := b.events(t, billing.EventFilter{Type: billing.EventWebhookEndpointDisabled}, 1)
	if len(disabled) != 1 {
		t.Fatalf("%d webhookEndpoint.disabled events, want 1", len(disabled))
	}
	if taken := b.fanOut(t, failing, watcher); taken[0] != 0 || taken[1] != 1 {
		t.Errorf("events taken by the disabled endpoint and the other: %v", taken)
	}
	if ds := b.deliveries(t, watcher.ID); len(ds) != 1 || ds[0].EventID != disabled[0].ID {
		t.Errorf("the other endpoint's deliveries: %+v", ds)
	}

	// A skip fails the deliveries and leaves the endpoint as it is; a delivery that is gone is
	// left out.
	if _, err := b.Store.UpdateWebhookEndpoint(ctx, failing.ID, func(e *billing.WebhookEndpoint) error {
		e.State, e.DisabledReason, e.FailingSince = billing.EndpointEnabled, "", time.Time{}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	skip := billing.DeliveryAttempt{At: start.Add(limit + 2*time.Hour), Error: "not sent"}
	wantErr(t, "SkipDeliveries", b.Store.SkipDeliveries(ctx, []billing.Delivery{other, {ID: "dlv_missing"}}, skip), nil)
	if got := delivery(other.ID); got.State != billing.DeliveryFailed || len(got.Attempts) != 8 || got.Attempts[7].Error != "not sent" {
		t.Errorf("after a skip: %+v", got)
	}
	if e := endpoint(); !e.FailingSince.IsZero() || e.State != billing.EndpointEnabled {
		t.Errorf("a skip changed the endpoint: %+v", e)
	}
	wantErr(t, "RecordAttempts of no delivery", b.Store.RecordAttempts(ctx, failing.ID,
		[]billing.DeliveryOutcome{outcome(billing.Delivery{ID: "dlv_missing"}, t0, 200, billing.DeliverySucceeded, time.Time{})}, limit), nil)
	if _, err := b.Store.Delivery(ctx, "dlv_missing"); !errors.Is(err, billing.ErrNotFound) {
		t.Errorf("RecordAttempts made a delivery: %v", err)
	}
}

func (s eventSuite) metadata(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := s.setup(t)
	l := newLink(b.site.ID, "cust-meta", t0)
	l.Metadata = map[string]string{"accountId": "8841", "note": "ünïcode 'quoted' \"and\" more"}
	wantErr(t, "CreateLink", b.Store.CreateLink(ctx, l), nil)
	wantEqual(t, "GetLink", getLink(t, b.Store, l.ID), l)
	linked, err := b.Store.LinkCustomer(ctx, l.ID, customer, terms, "", t0.Add(time.Minute))
	wantErr(t, "LinkCustomer", err, nil)
	if !maps.Equal(linked.Metadata, l.Metadata) {
		t.Errorf("LinkCustomer returned metadata %v, want %v", linked.Metadata, l.Metadata)
	}
	events := b.events(t, billing.EventFilter{}, 2)
	for _, e := range events {
		var body struct {
			Data struct{ Metadata map[string]string }
		}
		if err := json.Unmarshal(e.Body, &body); err != nil || !maps.Equal(body.Data.Metadata, l.Metadata) {
			t.Errorf("%s carries metadata %v (%v), want %v", e.Type, body.Data.Metadata, err, l.Metadata)
		}
	}
	none := b.invite(t, "cust-none", t0)
	if got := getLink(t, b.Store, none.ID).Metadata; got != nil {
		t.Errorf("a link without metadata reads back %v, want nil", got)
	}
}

// emailJobs returns the email jobs of the link, decoded, after checking that their arguments
// hold nothing of what the customer told Pyng.
func (b eventBundle) emailJobs(t *testing.T, linkID string) []billing.SendEmailJob {
	t.Helper()
	raw, err := b.EmailJobsFunc(context.Background(), linkID)
	if err != nil {
		t.Fatalf("email jobs: %v", err)
	}
	var jobs []billing.SendEmailJob
	for _, r := range raw {
		for _, secret := range []string{customer.Name, customer.Email, customer.BSB, customer.AccountNumber} {
			if strings.Contains(r, secret) {
				t.Errorf("an email job's arguments %s hold the customer's %q", r, secret)
			}
		}
		var j billing.SendEmailJob
		if err := json.Unmarshal([]byte(r), &j); err != nil {
			t.Fatalf("email job %s: %v", r, err)
		}
		jobs = append(jobs, j)
	}
	slices.SortFunc(jobs, func(a, b billing.SendEmailJob) int { return strings.Compare(string(a.Email), string(b.Email)) })
	return jobs
}

func (s eventSuite) emailJobs(t *testing.T) {
	ctx := context.Background()
	job := func(l billing.Link, kind billing.EmailKind) billing.SendEmailJob {
		return billing.SendEmailJob{LinkID: l.ID, Email: kind}
	}
	t.Run("linking enqueues the signup confirmation; revoking, the revocation confirmation", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		l := b.invite(t, "cust-1", t0)
		if got := b.emailJobs(t, l.ID); len(got) != 0 {
			t.Fatalf("an invitation enqueued emails %v", got)
		}
		_, err := b.Store.LinkCustomer(ctx, l.ID, customer, terms, "", t0.Add(time.Minute))
		wantErr(t, "LinkCustomer", err, nil)
		wantEqual(t, "email jobs after linking", b.emailJobs(t, l.ID), []billing.SendEmailJob{job(l, billing.EmailSignupConfirmation)})
		_, err = b.Store.RevokeLink(ctx, l.ID, billing.RevokedByPartner, t0.Add(2*time.Minute))
		wantErr(t, "RevokeLink", err, nil)
		wantEqual(t, "email jobs after revoking", b.emailJobs(t, l.ID),
			[]billing.SendEmailJob{job(l, billing.EmailRevocationConfirmation), job(l, billing.EmailSignupConfirmation)})
	})
	t.Run("a refused change enqueues no email", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		l := b.invite(t, "cust-1", t0)
		_, err := b.Store.LinkCustomer(ctx, l.ID, customer, terms, "", t0.Add(ttl)) // expired
		wantErr(t, "LinkCustomer of an expired invitation", err, billing.ErrStale)
		if got := b.emailJobs(t, l.ID); len(got) != 0 {
			t.Errorf("a refused signup enqueued %v", got)
		}
	})
	t.Run("an invitation revoked unused has no one to write to", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		l := b.invite(t, "cust-1", t0)
		_, err := b.Store.RevokeLink(ctx, l.ID, billing.RevokedByPartner, t0.Add(time.Minute))
		wantErr(t, "RevokeLink", err, nil)
		if got := b.emailJobs(t, l.ID); len(got) != 0 {
			t.Errorf("revoking an invitation enqueued %v", got)
		}
	})
	t.Run("EnqueueEmail enqueues the job", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		l := b.invite(t, "cust-1", t0)
		wantErr(t, "EnqueueEmail", b.Store.EnqueueEmail(ctx, job(l, billing.EmailManagementLink)), nil)
		wantEqual(t, "email jobs", b.emailJobs(t, l.ID), []billing.SendEmailJob{job(l, billing.EmailManagementLink)})
	})
}

// A partner's retry of a delivery whose attempt is in flight stands: the attempt's outcome, read
// before the retry, is recorded as an attempt but leaves the delivery pending and due at the
// retry, at the start of its schedule.
func (s eventSuite) retryDuringAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := s.setup(t)
	e := b.endpoint(t, billing.EndpointEnabled, billing.AllEventTypes)
	b.invite(t, "cust-1", t0)
	b.events(t, billing.EventFilter{}, 1)
	b.fanOut(t, e)
	schedule := billing.RetrySchedule{time.Minute} // two attempts
	failure := func(at time.Time) billing.DeliveryAttempt {
		return billing.DeliveryAttempt{At: at, Status: 503, Error: "status 503", Duration: time.Millisecond}
	}
	record := func(o billing.DeliveryOutcome) {
		t.Helper()
		wantErr(t, "RecordAttempts", b.Store.RecordAttempts(ctx, e.ID, []billing.DeliveryOutcome{o}, billing.EndpointFailureLimit), nil)
	}
	first := b.dueOnceListed(t, e.ID, t0, 1)
	if len(first) != 1 {
		t.Fatalf("due: %+v", first)
	}
	record(schedule.Outcome(first[0].Delivery, failure(t0)))

	// The last attempt is in flight when the partner retries; its outcome (failed) comes after.
	last := b.dueOnceListed(t, e.ID, t0.Add(time.Minute), 1)
	if len(last) != 1 || last[0].Delivery.Tries != 1 {
		t.Fatalf("due for the last attempt: %+v", last)
	}
	retried := t0.Add(time.Minute + time.Second)
	wantErr(t, "RetryDelivery", b.Store.RetryDelivery(ctx, last[0].Delivery.ID, retried, billing.DeliveryRetryLimit), nil)
	outcome := schedule.Outcome(last[0].Delivery, failure(t0.Add(time.Minute)))
	if outcome.State != billing.DeliveryFailed {
		t.Fatalf("the last attempt's outcome: %+v, want failed", outcome)
	}
	record(outcome)
	got, err := b.Store.Delivery(ctx, last[0].Delivery.ID)
	wantErr(t, "Delivery", err, nil)
	if got.State != billing.DeliveryPending || got.Tries != 0 || len(got.Attempts) != 2 {
		t.Fatalf("after the outcome of an attempt made before the retry: %+v; want pending, no tries, both attempts", got)
	}
	if due := b.dueOnceListed(t, e.ID, retried, 1); len(due) != 1 || !due[0].Due.Equal(retried) {
		t.Fatalf("the retried delivery is not due at the retry: %+v", due)
	}

	// A skip of the delivery as read before the retry leaves it pending too.
	wantErr(t, "SkipDeliveries", b.Store.SkipDeliveries(ctx, []billing.Delivery{last[0].Delivery},
		billing.DeliveryAttempt{At: retried, Error: "not sent"}), nil)
	if got, _ := b.Store.Delivery(ctx, got.ID); got.State != billing.DeliveryPending || len(got.Attempts) != 3 {
		t.Fatalf("after a skip of the delivery read before the retry: %+v", got)
	}

	// The outcome of the attempt the retry asked for moves the delivery as usual.
	again := b.dueOnceListed(t, e.ID, retried, 1)
	record(schedule.Outcome(again[0].Delivery, billing.DeliveryAttempt{At: retried, Status: 200}))
	if got, _ := b.Store.Delivery(ctx, got.ID); got.State != billing.DeliverySucceeded || got.Tries != 1 || len(got.Attempts) != 4 {
		t.Fatalf("after the retried attempt succeeded: %+v", got)
	}
}

func (s eventSuite) updateWebhookEndpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := s.setup(t)
	e := b.endpoint(t, billing.EndpointEnabled, billing.AllEventTypes)
	secret, err := webhook.NewSecret()
	wantErr(t, "NewSecret", err, nil)
	until := t0.Add(billing.SecretRotationOverlap)

	// The change is made to the endpoint as stored, secrets included, and written but for the
	// endpoint's identity.
	got, err := b.Store.UpdateWebhookEndpoint(ctx, e.ID, func(c *billing.WebhookEndpoint) error {
		if c.URL != e.URL || c.Secret.Reveal() != e.Secret.Reveal() || c.SiteID != b.site.ID {
			t.Errorf("change was given %+v, want the stored %+v", c, e)
		}
		c.URL, c.EventTypes = "https://example.com/other", []billing.EventType{billing.EventCustomerLinked}
		c.PreviousSecret, c.PreviousSecretUntil, c.Secret = c.Secret, until, secret
		c.ID, c.SiteID, c.CreatedAt = "whe_other", "site_other", t0.Add(time.Hour)
		return nil
	})
	wantErr(t, "UpdateWebhookEndpoint", err, nil)
	want := e
	want.URL, want.EventTypes = "https://example.com/other", []billing.EventType{billing.EventCustomerLinked}
	want.PreviousSecret, want.PreviousSecretUntil, want.Secret = e.Secret, until, secret
	wantEqual(t, "UpdateWebhookEndpoint", got, want)
	stored, err := b.Store.WebhookEndpoint(ctx, e.ID)
	wantErr(t, "WebhookEndpoint", err, nil)
	wantEqual(t, "WebhookEndpoint after the change", stored, want)

	// A change that fails writes nothing, and its error is returned as it is.
	refused := errors.New("refused")
	_, err = b.Store.UpdateWebhookEndpoint(ctx, e.ID, func(c *billing.WebhookEndpoint) error {
		c.URL = "https://example.com/refused"
		return refused
	})
	wantErr(t, "UpdateWebhookEndpoint refused", err, refused)
	stored, err = b.Store.WebhookEndpoint(ctx, e.ID)
	wantErr(t, "WebhookEndpoint", err, nil)
	wantEqual(t, "WebhookEndpoint after a refused change", stored, want)

	_, err = b.Store.UpdateWebhookEndpoint(ctx, "whe_missing", func(*billing.WebhookEndpoint) error {
		t.Error("change was called for no endpoint")
		return nil
	})
	wantErr(t, "UpdateWebhookEndpoint of none", err, billing.ErrNotFound)
}

// A change of an endpoint made while another is being made (between its read and its write)
// waits for it and is made to what it wrote: a rotation's secret, or the delivery run's disabling
// of a failing endpoint, is never written over by a change that read the endpoint before it.
func (s eventSuite) endpointChangesInterleaved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := s.setup(t)
	e := b.endpoint(t, billing.EndpointEnabled, billing.AllEventTypes)
	b.invite(t, "cust-1", t0)
	b.events(t, billing.EventFilter{}, 1)
	b.fanOut(t, e)
	d := b.deliveries(t, e.ID)[0]
	limit := billing.EndpointFailureLimit
	fail := func(at time.Time) error { // the delivery's last attempt, which may disable the endpoint
		o := billing.DeliveryOutcome{DeliveryID: d.ID, Attempt: billing.DeliveryAttempt{At: at, Error: "refused"},
			State: billing.DeliveryFailed}
		return b.Store.RecordAttempts(ctx, e.ID, []billing.DeliveryOutcome{o}, limit)
	}
	wantErr(t, "RecordAttempts", fail(t0), nil) // failing since t0

	// while runs other (which changes the endpoint too) while a change of the URL is held between
	// its read and its write, giving other a moment to overtake it, and returns the endpoint as
	// stored after both.
	while := func(url string, other func() error) billing.WebhookEndpoint {
		t.Helper()
		read, release := make(chan struct{}), make(chan struct{})
		changed := make(chan error, 1)
		go func() {
			_, err := b.Store.UpdateWebhookEndpoint(ctx, e.ID, func(c *billing.WebhookEndpoint) error {
				close(read)
				<-release
				c.URL = url
				return nil
			})
			changed <- err
		}()
		<-read
		otherDone := make(chan error, 1)
		go func() { otherDone <- other() }()
		var otherErr error
		overtook := false
		select {
		case otherErr = <-otherDone:
			overtook = true
		case <-time.After(200 * time.Millisecond):
		}
		close(release)
		wantErr(t, "UpdateWebhookEndpoint", <-changed, nil)
		if !overtook {
			otherErr = <-otherDone
		}
		wantErr(t, "the other change", otherErr, nil)
		got, err := b.Store.WebhookEndpoint(ctx, e.ID)
		wantErr(t, "WebhookEndpoint", err, nil)
		return got
	}

	var rotated webhook.Secret
	got := while("https://example.com/first", func() error {
		secret, err := webhook.NewSecret()
		if err != nil {
			return err
		}
		after, err := b.Store.UpdateWebhookEndpoint(ctx, e.ID, func(c *billing.WebhookEndpoint) error {
			c.PreviousSecret, c.PreviousSecretUntil, c.Secret = c.Secret, t0.Add(billing.SecretRotationOverlap), secret
			return nil
		})
		rotated = after.Secret
		return err
	})
	if got.Secret.Reveal() != rotated.Reveal() || got.PreviousSecret.Reveal() != e.Secret.Reveal() || got.URL != "https://example.com/first" {
		t.Errorf("after a rotation during a change of the URL: secret %s, previous %s, url %s; want the rotation's %s, the first %s, and the URL",
			got.Secret.Reveal(), got.PreviousSecret.Reveal(), got.URL, rotated.Reveal(), e.Secret.Reveal())
	}

	got = while("https://example.com/second", func() error { return fail(t0.Add(limit)) })
	if got.State != billing.EndpointDisabled || got.DisabledReason != billing.DisabledFailing || !got.FailingSince.Equal(t0) ||
		got.URL != "https://example.com/second" {
		t.Errorf("after the delivery run disabled the endpoint during a change of the URL: %+v; want it disabled, failing since %v", got, t0)
	}
	if disabled := b.events(t, billing.EventFilter{Type: billing.EventWebhookEndpointDisabled}, 1); len(disabled) != 1 {
		t.Errorf("%d webhookEndpoint.disabled events, want 1", len(disabled))
	}
}
