package app_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/jobs"
)

// A job still running when the shutdown's grace period ends (a webhook delivery run to a slow
// receiver lasts up to a quarter of PYNG_JOB_RESCUE_AFTER, 30 s, longer than the 25 s grace) is
// cancelled, so that it ends now and is retried, and the stop succeeds: before, the stop returned
// "context deadline exceeded" (pyng serve exited 1 after SIGTERM) and left the job running, its
// row claimed until another replica rescued it.
func TestStoppingJobsCancelsThoseStillRunningAtTheGracePeriodsEnd(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		db := dbtest.Open(t, engine)
		service, _, err := app.NewService(ctx, db, clocktest.New(), billing.DefaultInvitationTTL, 0, true)
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
