package jobs_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/jobs"
	"github.com/pyng/receivables/webhook/deliver"
)

func TestRetryScheduleOutcomes(t *testing.T) {
	schedule := billing.RetrySchedule{time.Second, time.Minute}
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		tries, status int
		state         billing.DeliveryState
		next          time.Duration
	}{
		{0, 200, billing.DeliverySucceeded, 0},
		{0, 500, billing.DeliveryPending, time.Second},
		{1, 0, billing.DeliveryPending, time.Minute},
		{2, 204, billing.DeliverySucceeded, 0},
		{2, 410, billing.DeliveryFailed, 0},
	} {
		o := schedule.Outcome(billing.Delivery{ID: "dlv_1", Tries: c.tries}, billing.DeliveryAttempt{At: at, Status: c.status})
		want := time.Time{}
		if c.next > 0 {
			want = at.Add(c.next)
		}
		if o.DeliveryID != "dlv_1" || o.State != c.state || !o.NextAttemptAt.Equal(want) || o.Attempt.Status != c.status {
			t.Errorf("after try %d answered %d: %+v, want %s next at %v", c.tries+1, c.status, o, c.state, want)
		}
	}
}

// run works the endpoint's job once, as River would.
func run(t testing.TB, w river.Worker[billing.DeliverWebhooksJob], endpointID string) {
	t.Helper()
	if err := w.Work(context.Background(), deliveryJob(endpointID)); err != nil {
		t.Fatalf("Work: %v", err)
	}
}

// runUntil works the endpoint's job until done, or for 10 seconds, and leaves the caller to check
// the outcome: on PostgreSQL an event listed may reach a run a moment later (see awaitRequests),
// so a run may find nothing yet that the scheduler's next look would find.
func runUntil(t *testing.T, w river.Worker[billing.DeliverWebhooksJob], endpointID string, done func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if run(t, w, endpointID); done() {
			return
		}
	}
}

// deliveries lists every delivery of the endpoint, every page of it.
func deliveries(t *testing.T, service *billing.Service, site billing.Site, endpointID string) []billing.Delivery {
	t.Helper()
	var ds []billing.Delivery
	for f := (billing.DeliveryFilter{Limit: 100}); ; {
		page, next, err := service.Deliveries(context.Background(), site, endpointID, f)
		if err != nil {
			t.Fatal(err)
		}
		if ds = append(ds, page...); next == "" {
			return ds
		}
		f.Before = next
	}
}

// nonePending reports whether none of the endpoint's deliveries is pending.
func nonePending(t *testing.T, service *billing.Service, site billing.Site, endpointID string) func() bool {
	return func() bool {
		t.Helper()
		for _, d := range deliveries(t, service, site, endpointID) {
			if d.State == billing.DeliveryPending {
				return false
			}
		}
		return true
	}
}

func deliveryJob(endpointID string) *river.Job[billing.DeliverWebhooksJob] {
	return &river.Job[billing.DeliverWebhooksJob]{JobRow: &rivertype.JobRow{Attempt: 1}, Args: billing.DeliverWebhooksJob{EndpointID: endpointID}}
}

// runInBackground works the endpoint's job once, as River would, in a goroutine of its own, and
// sends its error when it has ended.
func runInBackground(w river.Worker[billing.DeliverWebhooksJob], endpointID string) <-chan error {
	worked := make(chan error, 1)
	go func() { worked <- w.Work(context.Background(), deliveryJob(endpointID)) }()
	return worked
}

// awaitRequests waits until count, of the receiver's requests, is n from the endpoint's runs, and
// returns the channel of the run in progress (runInBackground). A run that fails fails the test,
// rather than leave it waiting; one that ends without an error before (it found nothing due: on
// PostgreSQL an event listed may reach a run a moment later) is followed by another, as the
// scheduler's next look would.
func awaitRequests(t *testing.T, count func() int32, n int32, w river.Worker[billing.DeliverWebhooksJob], endpointID string) <-chan error {
	t.Helper()
	worked := runInBackground(w, endpointID)
	for count() < n {
		select {
		case err := <-worked:
			if err != nil {
				t.Fatalf("the run ended (%v) after %d requests, before %d", err, count(), n)
			}
			worked = runInBackground(w, endpointID)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return worked
}

// invite invites each customer and waits until the site's events list shows their events: on
// PostgreSQL an event is given its deliveries once it is listed (see storage.FanOutDeliveries),
// which is once every transaction begun before it has ended (other tests' too).
func invite(t *testing.T, service *billing.Service, site billing.Site, refs ...string) {
	t.Helper()
	ctx := context.Background()
	invited := func() int {
		t.Helper()
		n := 0
		for f := (billing.EventFilter{Type: billing.EventCustomerInvited, Limit: 100}); ; {
			events, next, err := service.Events(ctx, site, f)
			if err != nil {
				t.Fatal(err)
			}
			if n += len(events); next == "" {
				return n
			}
			f.After = next
		}
	}
	want := invited() + len(refs)
	for _, ref := range refs {
		if _, err := service.Invite(ctx, site, ref); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); invited() < want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the events of %d invitations are not listed", len(refs))
		}
	}
}

func TestDeliveriesFollowTheRetryScheduleThenFail(t *testing.T) {
	schedule := []time.Duration{time.Second, time.Minute, time.Hour}
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		clock := clocktest.New()
		service, _ := apptest.NewService(t, engine, apptest.ServiceOptions{Clock: clock})
		site := apptest.NewSite(t, service, "Acme")
		var answered atomic.Int32
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			answered.Add(1)
			w.WriteHeader(http.StatusBadGateway)
		}))
		t.Cleanup(receiver.Close)
		url := receiver.URL
		e, err := service.CreateWebhookEndpoint(ctx, site, billing.WebhookEndpointRequest{URL: &url})
		if err != nil {
			t.Fatal(err)
		}
		invite(t, service, site, "cust-1")
		w := jobs.DeliverWebhooksWorker(service, deliver.New(deliver.Options{AllowPrivate: true}), schedule, time.Minute, 16)
		waits := append([]time.Duration{0}, schedule...)
		for attempt, wait := range waits {
			// Not due a moment before its time: a run sends nothing.
			clock.Advance(wait - time.Millisecond)
			run(t, w, e.ID)
			if n := answered.Load(); n != int32(attempt) {
				t.Fatalf("before attempt %d is due, the receiver was sent %d requests", attempt+1, n)
			}
			clock.Advance(time.Millisecond)
			runUntil(t, w, e.ID, func() bool { return answered.Load() == int32(attempt+1) })
			ds, _, _ := service.Deliveries(ctx, site, e.ID, billing.DeliveryFilter{Limit: 10})
			final := attempt == len(schedule)
			wantState := billing.DeliveryPending
			if final {
				wantState = billing.DeliveryFailed
			}
			if len(ds) != 1 || ds[0].State != wantState || len(ds[0].Attempts) != attempt+1 || ds[0].Attempts[attempt].Status != http.StatusBadGateway ||
				ds[0].Attempts[attempt].Error == "" {
				t.Fatalf("after attempt %d: %+v, want %s with %d attempts answered 502", attempt+1, ds, wantState, attempt+1)
			}
		}
		clock.Advance(24 * time.Hour)
		run(t, w, e.ID)
		if n := answered.Load(); n != int32(len(schedule)+1) {
			t.Errorf("the receiver was sent %d requests, want %d", n, len(schedule)+1)
		}

		// A retry of an endpoint disabled since is failed without a request, and the events written
		// while it is disabled are not sent to it.
		invite(t, service, site, "cust-2")
		runUntil(t, w, e.ID, func() bool { return answered.Load() == int32(len(schedule)+2) })
		disabled := billing.EndpointDisabled
		if _, err := service.UpdateWebhookEndpoint(ctx, site, e.ID, billing.WebhookEndpointRequest{State: &disabled}); err != nil {
			t.Fatal(err)
		}
		invite(t, service, site, "cust-3")
		clock.Advance(schedule[0])
		runUntil(t, w, e.ID, nonePending(t, service, site, e.ID))
		d, _, _ := service.Deliveries(ctx, site, e.ID, billing.DeliveryFilter{Limit: 10})
		if len(d) != 2 || d[0].State != billing.DeliveryFailed || len(d[0].Attempts) != 2 || d[0].Attempts[1].Status != 0 ||
			d[0].Attempts[1].Error != "not sent: the endpoint is disabled" || answered.Load() != int32(len(schedule)+2) {
			t.Errorf("the deliveries after the endpoint was disabled: %+v, want the retry of cust-2's event skipped, none of cust-3's", d)
		}
	})
}

// A run sends every due delivery of its endpoint, in rounds, at most EndpointRequests at once and
// no more than the process's limit, and records each once.
func TestARunSendsTheEndpointsDueDeliveriesInRounds(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		service, _ := apptest.NewService(t, engine)
		site := apptest.NewSite(t, service, "Acme")
		var mu sync.Mutex
		inFlight, most := 0, 0
		received := map[string]int{}
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			inFlight++
			most = max(most, inFlight)
			received[r.Header.Get("webhook-id")]++
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
			mu.Lock()
			inFlight--
			mu.Unlock()
		}))
		t.Cleanup(receiver.Close)
		url := receiver.URL
		e, err := service.CreateWebhookEndpoint(ctx, site, billing.WebhookEndpointRequest{URL: &url})
		if err != nil {
			t.Fatal(err)
		}
		const n = 250 // more than two rounds
		refs := make([]string, n)
		for i := range refs {
			refs[i] = fmt.Sprintf("cust-%d", i)
		}
		invite(t, service, site, refs...)
		w := jobs.DeliverWebhooksWorker(service, deliver.New(deliver.Options{AllowPrivate: true}), jobs.DefaultRetrySchedule, time.Minute, 16)
		runUntil(t, w, e.ID, func() bool { mu.Lock(); defer mu.Unlock(); return len(received) == n })
		ds := deliveries(t, service, site, e.ID)
		if len(ds) != n {
			t.Fatalf("%d deliveries, want %d", len(ds), n)
		}
		for _, d := range ds {
			if d.State != billing.DeliverySucceeded || len(d.Attempts) != 1 || received[d.EventID] != 1 {
				t.Fatalf("delivery %+v: received %d times", d, received[d.EventID])
			}
		}
		if most > jobs.EndpointRequests {
			t.Errorf("%d requests at once to one endpoint, want at most %d", most, jobs.EndpointRequests)
		}

		// A run sends nothing while another holds the endpoint; with the process's limit below the
		// endpoint's, the process's holds; a run whose time is spent sends nothing more, and what
		// is left stays due.
		most = 0
		late := make([]string, 20)
		for i := range late {
			late[i] = fmt.Sprintf("late-%d", i)
		}
		invite(t, service, site, late...)
		if held, err := service.HoldWebhooks(ctx, e.ID, "another run", time.Minute); err != nil || !held {
			t.Fatalf("HoldWebhooks = %v, %v", held, err)
		}
		run(t, w, e.ID)
		if len(received) != n {
			t.Fatalf("a run sent %d deliveries while another held the endpoint", len(received)-n)
		}
		if err := service.ReleaseWebhooks(ctx, e.ID, "another run"); err != nil {
			t.Fatal(err)
		}
		run(t, jobs.DeliverWebhooksWorker(service, deliver.New(deliver.Options{AllowPrivate: true}), jobs.DefaultRetrySchedule, 0, 16), e.ID)
		if len(received) != n {
			t.Fatalf("a run with no time sent %d deliveries", len(received)-n)
		}
		runUntil(t, jobs.DeliverWebhooksWorker(service, deliver.New(deliver.Options{AllowPrivate: true}), jobs.DefaultRetrySchedule, time.Minute, 2), e.ID,
			func() bool { mu.Lock(); defer mu.Unlock(); return len(received) == n+20 })
		if len(received) != n+20 || most > 2 {
			t.Errorf("received %d deliveries, %d at most at once; want %d, at most 2", len(received), most, n+20)
		}
	})
}

// TestARunEndsOnTimeBehindAnotherEndpointsSlowRequests: while another endpoint's slow requests
// hold the process's requests, a run whose time ends stops waiting for one: it waits for one
// request at most, not for one per sender only to leave its delivery due.
func TestARunEndsOnTimeBehindAnotherEndpointsSlowRequests(t *testing.T) {
	ctx := context.Background()
	service, _ := apptest.NewService(t, "sqlite")
	site := apptest.NewSite(t, service, "Acme")
	const slowRequest = 600 * time.Millisecond
	endpoint := func(hold time.Duration) string {
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { time.Sleep(hold) }))
		t.Cleanup(srv.Close)
		e, err := service.CreateWebhookEndpoint(ctx, site, billing.WebhookEndpointRequest{URL: &srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	slow, fast := endpoint(slowRequest), endpoint(0)
	refs := make([]string, 30)
	for i := range refs {
		refs[i] = fmt.Sprintf("C-%02d", i)
	}
	invite(t, service, site, refs...)

	// One process, two requests at once: the slow endpoint's run has 10 s, the other's 1 s.
	client := deliver.New(deliver.Options{AllowPrivate: true})
	long := jobs.DeliverWebhooksWorker(service, client, jobs.DefaultRetrySchedule, 20*time.Second, 2)
	short := jobs.DeliverWebhooksWorker(service, client, jobs.DefaultRetrySchedule, 2*time.Second, 2)
	jobs.ShareRequests(short, long)
	slowRun, stop := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() {
		job := &river.Job[billing.DeliverWebhooksJob]{JobRow: &rivertype.JobRow{Attempt: 1}, Args: billing.DeliverWebhooksJob{EndpointID: slow}}
		stopped <- long.Work(slowRun, job)
	}()
	defer func() { stop(); <-stopped }()
	time.Sleep(200 * time.Millisecond) // the slow run holds both requests
	start := time.Now()
	run(t, short, fast)
	if late := time.Since(start) - time.Second; late > 2*slowRequest {
		t.Errorf("the run returned %v after its end, behind the slow endpoint's requests of %v", late.Round(time.Millisecond), slowRequest)
	}
}

// While the database is away, the scheduler of deliveries says so once a minute, not at every
// poll (a log line each 200 ms drowned the rest of an outage's log).
func TestAFailingLookForDueDeliveriesIsLoggedOnceAMinute(t *testing.T) {
	service, db := apptest.NewService(t, "sqlite")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	logger := slog.New(slog.NewTextHandler(&out, nil))
	cfg := jobs.DefaultConfig
	cfg.PollInterval = 5 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	jobs.ScheduleDeliveries(ctx, service, logger, cfg)
	if n := strings.Count(out.String(), `msg="looking for due webhook deliveries"`); n != 1 {
		t.Errorf("%d warnings in 300 ms of polls every 5 ms against a closed database; want 1:\n%s", n, out.String())
	}
}

// TestAChangeOfTheEndpointStopsTheDeliveriesARunReadBefore: a run reads its endpoint's due
// deliveries a round ahead of sending them, with the endpoint's URL; the deletion of the
// endpoint, its disabling or a new URL made while it sends must apply to what it has not sent
// yet, not only to the next run. Only the requests in flight when the change is made, and those
// begun before the run next reads the endpoint, may still reach the old URL.
func TestAChangeOfTheEndpointStopsTheDeliveriesARunReadBefore(t *testing.T) {
	disabled := billing.EndpointDisabled
	for _, change := range []string{"delete", "disable", "url"} {
		t.Run(change, func(t *testing.T) {
			dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
				ctx := context.Background()
				service, _ := apptest.NewService(t, engine)
				site := apptest.NewSite(t, service, "Acme")
				var mu sync.Mutex
				var changed time.Time // when the change returned; zero before
				old, late, moved := 0, 0, 0
				receiver := func(counts func()) string {
					srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
						mu.Lock()
						counts()
						mu.Unlock()
						time.Sleep(50 * time.Millisecond)
					}))
					t.Cleanup(srv.Close)
					return srv.URL
				}
				oldURL := receiver(func() {
					old++
					if !changed.IsZero() {
						late++
					}
				})
				newURL := receiver(func() { moved++ })
				e, err := service.CreateWebhookEndpoint(ctx, site, billing.WebhookEndpointRequest{URL: &oldURL})
				if err != nil {
					t.Fatal(err)
				}
				const n = 120
				refs := make([]string, n)
				for i := range refs {
					refs[i] = fmt.Sprintf("cust-%d", i)
				}
				invite(t, service, site, refs...)

				w := jobs.DeliverWebhooksWorker(service, deliver.New(deliver.Options{AllowPrivate: true}), jobs.DefaultRetrySchedule, time.Minute, 16)
				worked := awaitRequests(t, func() int32 {
					mu.Lock()
					defer mu.Unlock()
					return int32(old)
				}, jobs.EndpointRequests, w, e.ID)
				switch change {
				case "delete":
					err = service.DeleteWebhookEndpoint(ctx, site, e.ID)
				case "disable":
					_, err = service.UpdateWebhookEndpoint(ctx, site, e.ID, billing.WebhookEndpointRequest{State: &disabled})
				case "url":
					_, err = service.UpdateWebhookEndpoint(ctx, site, e.ID, billing.WebhookEndpointRequest{URL: &newURL})
				}
				if err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				changed = time.Now()
				mu.Unlock()
				if err := <-worked; err != nil {
					t.Fatalf("Work: %v", err)
				}
				mu.Lock()
				defer mu.Unlock()
				// In flight at the change, and begun before the run read the endpoint again: each
				// request lasts longer than the run waits before it reads it again.
				if most := 2 * jobs.EndpointRequests; late > most {
					t.Errorf("after the %s, the run sent %d more deliveries to the old URL (of %d), want at most %d", change, late, old, most)
				}
				if change == "url" && old+moved != n {
					t.Errorf("%d deliveries to the old URL and %d to the new, want %d in all", old, moved, n)
				}
			})
		})
	}
}

// TestARequestInFlightWhenItsEndpointIsDisabledIsNotListedNotSent: the run that sends an endpoint's
// deliveries fails, each with an attempt "not sent", those due once the endpoint is disabled; the
// deliveries it is sending then are sent, and listed so: one attempt each, the receiver's answer,
// not a "not sent" attempt beside it (written after it was sent, and listed before it). Those it
// had not sent are failed as not sent.
func TestARequestInFlightWhenItsEndpointIsDisabledIsNotListedNotSent(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		service, site, e, received := slowEndpoint(t, engine, 300*time.Millisecond)
		refs := make([]string, jobs.EndpointRequests)
		for i := range refs {
			refs[i] = fmt.Sprintf("first-%d", i)
		}
		invite(t, service, site, refs...)

		w := jobs.DeliverWebhooksWorker(service, deliver.New(deliver.Options{AllowPrivate: true}), jobs.DefaultRetrySchedule, time.Minute, 16)
		// Invitations one after another keep the run reading while its requests are in flight.
		stopInviting := inviteEvery(t, service, site, 20*time.Millisecond)
		defer stopInviting()
		worked := awaitRequests(t, received.Load, jobs.EndpointRequests, w, e.ID)
		disabled := billing.EndpointDisabled
		if _, err := service.UpdateWebhookEndpoint(ctx, site, e.ID, billing.WebhookEndpointRequest{State: &disabled}); err != nil {
			t.Fatal(err)
		}
		if err := <-worked; err != nil {
			t.Fatalf("Work: %v", err)
		}
		stopInviting()
		runUntil(t, w, e.ID, nonePending(t, service, site, e.ID)) // the next run fails what was left due

		sent := 0
		for _, d := range deliveries(t, service, site, e.ID) {
			if len(d.Attempts) != 1 {
				t.Errorf("delivery of %s, %s, has %d attempts, want 1: %+v", d.EventID, d.State, len(d.Attempts), d.Attempts)
				continue
			}
			if a := d.Attempts[0]; a.Succeeded() {
				sent++
			} else if a.Error != "not sent: the endpoint is disabled" || d.State != billing.DeliveryFailed {
				t.Errorf("delivery of %s is %s with %+v, want failed as not sent", d.EventID, d.State, a)
			}
		}
		if n := int(received.Load()); sent != n {
			t.Errorf("%d deliveries listed sent, the receiver received %d", sent, n)
		}
	})
}

// TestARunWhoseEndpointIsDeletedEndsWithoutError: an endpoint deleted while its run is reading its
// due deliveries (events coming in) has none (DueWebhooks): the run ends, without an error for the
// queue to log, rather than failing to find the endpoint it gives the new events to.
func TestARunWhoseEndpointIsDeletedEndsWithoutError(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		service, site, e, received := slowEndpoint(t, engine, 100*time.Millisecond)
		invite(t, service, site, "first")
		w := jobs.DeliverWebhooksWorker(service, deliver.New(deliver.Options{AllowPrivate: true}), jobs.DefaultRetrySchedule, time.Minute, 16)
		// Invitations one after another keep the run reading.
		stopInviting := inviteEvery(t, service, site, 20*time.Millisecond)
		defer stopInviting()
		worked := awaitRequests(t, received.Load, 2, w, e.ID)
		if err := service.DeleteWebhookEndpoint(ctx, site, e.ID); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-worked:
			if err != nil {
				t.Errorf("the run of the deleted endpoint ended with %v, want no error", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the run of the deleted endpoint did not end")
		}
	})
}

// slowEndpoint is a new site's endpoint whose receiver answers each request after delay, and the
// count of the requests it received.
func slowEndpoint(t *testing.T, engine string, delay time.Duration) (*billing.Service, billing.Site, billing.WebhookEndpoint, *atomic.Int32) {
	t.Helper()
	service, _ := apptest.NewService(t, engine)
	site := apptest.NewSite(t, service, "Acme")
	received := new(atomic.Int32)
	receiver := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		received.Add(1)
		time.Sleep(delay)
	}))
	t.Cleanup(receiver.Close)
	e, err := service.CreateWebhookEndpoint(context.Background(), site, billing.WebhookEndpointRequest{URL: &receiver.URL})
	if err != nil {
		t.Fatal(err)
	}
	return service, site, e, received
}

// inviteEvery invites a new customer of the site every interval until the function it returns is
// called (once or more), which returns once the inviting has stopped.
func inviteEvery(t *testing.T, service *billing.Service, site billing.Site, interval time.Duration) (stop func()) {
	stopping, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for i := 0; ; i++ {
			select {
			case <-stopping:
				return
			case <-time.After(interval):
			}
			if _, err := service.Invite(context.Background(), site, fmt.Sprintf("later-%d", i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	return sync.OnceFunc(func() { close(stopping); <-stopped })
}

// TestFailingEndpointsLeaveTheRequestsToThoseThatAnswer: the deliveries of endpoints whose latest
// attempt failed take a quarter of the process's requests together (at least one), however many
// such endpoints there are; while theirs are held until their timeout, an endpoint that answers
// is sent its deliveries, not after those timeouts.
func TestFailingEndpointsLeaveTheRequestsToThoseThatAnswer(t *testing.T) {
	ctx := context.Background()
	service, _ := apptest.NewService(t, "sqlite")
	noisy, acme := apptest.NewSite(t, service, "Noisy"), apptest.NewSite(t, service, "Acme")
	var (
		hang           atomic.Bool
		mu             sync.Mutex
		inFlight, most int
	)
	release := make(chan struct{})
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			mu.Lock()
			inFlight++
			most = max(most, inFlight)
			mu.Unlock()
			select {
			case <-release:
			case <-r.Context().Done():
			}
			mu.Lock()
			inFlight--
			mu.Unlock()
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	var answered atomic.Int32
	answering := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { answered.Add(1) }))
	t.Cleanup(answering.Close)
	endpoint := func(site billing.Site, url string) string {
		e, err := service.CreateWebhookEndpoint(ctx, site, billing.WebhookEndpointRequest{URL: &url})
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	failingIDs := []string{endpoint(noisy, failing.URL), endpoint(noisy, failing.URL), endpoint(noisy, failing.URL)}
	answeringID := endpoint(acme, answering.URL)
	refs := func(prefix string) []string {
		refs := make([]string, 20)
		for i := range refs {
			refs[i] = fmt.Sprintf("%s-%02d", prefix, i)
		}
		return refs
	}

	// Four requests at once in the process: one for the failing endpoints.
	const timeout = 5 * time.Second
	w := jobs.DeliverWebhooksWorker(service, deliver.New(deliver.Options{AllowPrivate: true, Timeout: timeout}), jobs.DefaultRetrySchedule, 10*time.Second, 4)
	invite(t, service, noisy, "first")
	for _, id := range failingIDs {
		run(t, w, id) // its first attempt fails at once: the endpoint is failing
	}
	hang.Store(true)
	invite(t, service, noisy, refs("N")...)
	invite(t, service, acme, refs("A")...)
	var runs sync.WaitGroup
	defer runs.Wait()
	defer close(release)
	for _, id := range failingIDs {
		runs.Go(func() { _ = w.Work(ctx, deliveryJob(id)) })
	}
	time.Sleep(200 * time.Millisecond) // the failing endpoints' runs take what they may
	start := time.Now()
	runUntil(t, w, answeringID, func() bool { return answered.Load() == 20 })
	if took := time.Since(start); answered.Load() != 20 || took >= timeout/2 {
		t.Errorf("the answering endpoint got %d deliveries of 20 in %v, behind the failing endpoints' requests of %v",
			answered.Load(), took.Round(time.Millisecond), timeout)
	}
	mu.Lock()
	defer mu.Unlock()
	if most != 1 {
		t.Errorf("%d requests at once to the failing endpoints, want 1 (a quarter of the process's 4)", most)
	}
}

// A delivery the partner retries while a run sends its endpoint's events is sent again by that
// run, at once, not left to the next run once the endpoint's flow of events has stopped.
func TestARetryAskedForDuringARunIsSentByIt(t *testing.T) {
	ctx := context.Background()
	service, _ := apptest.NewService(t, "sqlite")
	site := apptest.NewSite(t, service, "Acme")
	var mu sync.Mutex
	received := map[string]int{}
	var first string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		id := r.Header.Get("webhook-id")
		if first == "" {
			first = id
		}
		received[id]++
	}))
	t.Cleanup(receiver.Close)
	e, err := service.CreateWebhookEndpoint(ctx, site, billing.WebhookEndpointRequest{URL: &receiver.URL})
	if err != nil {
		t.Fatal(err)
	}
	count := func(id string) int { mu.Lock(); defer mu.Unlock(); return received[id] }

	// Events keep coming, so that the run goes on (each pass finds new ones), until stopped.
	stop, inviting := make(chan struct{}), make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				inviting <- nil
				return
			case <-time.After(10 * time.Millisecond):
			}
			if _, err := service.Invite(ctx, site, fmt.Sprintf("C-%04d", i)); err != nil {
				inviting <- err
				return
			}
		}
	}()
	w := jobs.DeliverWebhooksWorker(service, deliver.New(deliver.Options{AllowPrivate: true}), jobs.DefaultRetrySchedule, time.Minute, 16)
	worked := awaitRequests(t, func() int32 { mu.Lock(); defer mu.Unlock(); return int32(len(received)) }, 1, w, e.ID)
	mu.Lock()
	eventID := first
	mu.Unlock()
	for _, d := range deliveries(t, service, site, e.ID) {
		if d.EventID == eventID {
			if _, err := service.RetryDelivery(ctx, site, e.ID, d.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A run that ends meanwhile (a pass found no new event: a loaded machine) is followed by
	// another, as the scheduler's next look would; it would send the retry whatever the run
	// before did, so the test shows the run's own sending only while the first run goes on.
	for deadline := time.Now().Add(5 * time.Second); count(eventID) < 2 && time.Now().Before(deadline); {
		select {
		case err := <-worked:
			if err != nil {
				t.Fatal(err)
			}
			t.Log("the run ended while events were coming; another follows")
			worked = runInBackground(w, e.ID)
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(stop)
	if err := <-inviting; err != nil {
		t.Fatal(err)
	}
	if err := <-worked; err != nil {
		t.Fatal(err)
	}
	if n := count(eventID); n != 2 {
		t.Errorf("the delivery retried during the run was sent %d times in 5 s, want 2", n)
	}
}
