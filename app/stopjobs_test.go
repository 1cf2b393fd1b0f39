package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/jobs"
)

// A job still running when the shutdown's grace period ends (a step longer than the 25 s grace) is
// cancelled, so that it ends now and is retried, and the stop succeeds: before, the stop returned
// "context deadline exceeded" (pyng serve exited 1 after SIGTERM) and left the job running, its
// row claimed until another replica rescued it.
func TestStoppingJobsCancelsThoseStillRunningAtTheGracePeriodsEnd(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		db := dbtest.Open(t, engine)
		service, _, err := app.NewService(ctx, db, clocktest.New(), app.ServiceSettings{Sandbox: true})
		if err != nil {
			t.Fatal(err)
		}
		started, cancelled := make(chan struct{}), make(chan struct{})
		slow := jobs.Task{Name: "slow", Next: func(t time.Time) time.Time { return t.Add(10 * time.Millisecond) },
			Run: func(ctx context.Context) error {
				select {
				case <-started:
					return nil // a later run, if any
				default:
				}
				close(started)
				<-ctx.Done()
				close(cancelled)
				return ctx.Err()
			}}
		cfg := jobs.DefaultConfig
		cfg.PollInterval = 20 * time.Millisecond
		stop, err := app.StartJobs(ctx, db, service, slog.New(slog.DiscardHandler), cfg, slow)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-started:
		case <-time.After(20 * time.Second):
			_ = stop(ctx)
			t.Fatal("the task never ran")
		}
		grace, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if err := stop(grace); err != nil {
			t.Errorf("stop = %v; want the running job cancelled and nil", err)
		}
		select {
		case <-cancelled:
		case <-time.After(5 * time.Second):
			t.Error("the running job was not cancelled")
		}
	})
}

// Stopping the jobs ends a webhook delivery run once its requests in flight have ended: before,
// the run went on sending its endpoint's backlog (up to a quarter of PYNG_JOB_RESCUE_AFTER), so
// that every stop of a replica with a backlog took the whole grace period and then cut off the
// requests in flight, listed failed ("request failed") though the receiver had them, and sent
// again at the next start.
func TestStoppingJobsEndsTheWebhookRunsOnceTheirRequestsInFlightEnd(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		db := dbtest.Open(t, engine)
		service, _, err := app.NewService(ctx, db, clocktest.New(), app.ServiceSettings{Sandbox: true, PrivateWebhooks: true})
		if err != nil {
			t.Fatal(err)
		}
		site := apptest.NewSite(t, service, "Acme")
		var mu sync.Mutex
		stopping, received, late := false, 0, 0
		receiver := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			mu.Lock()
			received++
			if stopping {
				late++
			}
			mu.Unlock()
			time.Sleep(200 * time.Millisecond)
		}))
		t.Cleanup(receiver.Close)
		e, err := service.CreateWebhookEndpoint(ctx, site, billing.WebhookEndpointRequest{URL: &receiver.URL})
		if err != nil {
			t.Fatal(err)
		}
		const n, inFlight = 300, 8 // 7.5 s of requests, 8 at a time to one endpoint
		for i := range n {
			if _, err := service.Invite(ctx, site, fmt.Sprintf("C-%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		cfg := jobs.DefaultConfig
		cfg.PollInterval, cfg.AllowPrivateWebhooks = 20*time.Millisecond, true
		stop, err := app.StartJobs(ctx, db, service, slog.New(slog.DiscardHandler), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for began := time.Now(); ; time.Sleep(5 * time.Millisecond) {
			mu.Lock()
			n := received
			mu.Unlock()
			if n >= inFlight {
				break
			}
			if time.Since(began) > 20*time.Second {
				_ = stop(ctx)
				t.Fatal("no delivery was sent")
			}
		}
		mu.Lock()
		stopping = true
		mu.Unlock()
		grace, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		began := time.Now()
		if err := stop(grace); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(began); took > 2*time.Second {
			t.Errorf("the stop took %v, want the requests in flight (200 ms) and little more", took.Round(time.Millisecond))
		}
		mu.Lock()
		defer mu.Unlock()
		if late > inFlight {
			t.Errorf("%d requests began after the stop began, want at most the %d handed to a sender then", late, inFlight)
		}
		ds, _, err := service.Deliveries(ctx, site, e.ID, billing.DeliveryFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			for _, a := range d.Attempts {
				if !a.Succeeded() {
					t.Errorf("delivery of %s has an attempt %+v, want only the receiver's answers", d.EventID, a)
				}
			}
		}
	})
}
