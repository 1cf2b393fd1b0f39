package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/jobs"
)

func TestRetryDelayGrowsAndIsCapped(t *testing.T) {
	w := jobs.ExecuteBatchWorker(nil)
	previous := time.Duration(0)
	for attempt := 1; attempt <= 25; attempt++ {
		job := &river.Job[billing.ExecuteBatchJob]{JobRow: &rivertype.JobRow{Attempt: attempt}}
		delay := time.Until(w.NextRetry(job))
		if delay > jobs.MaxRetryDelay+time.Second {
			t.Fatalf("attempt %d: retry in %v, want at most %v", attempt, delay, jobs.MaxRetryDelay)
		}
		if delay+time.Second < previous {
			t.Fatalf("attempt %d: retry in %v, sooner than the attempt before (%v)", attempt, delay, previous)
		}
		previous = delay
	}
}

// TestExecuteBatchSnoozesUntilTheRailSettles checks the worker's contract with River: a batch whose
// debits have not settled is snoozed (which uses no attempt) until they are due, and a completed
// batch finishes the job.
func TestExecuteBatchSnoozesUntilTheRailSettles(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		clock := clocktest.New()
		service, _ := apptest.NewService(t, engine, apptest.ServiceOptions{Clock: clock, SettlementDelay: time.Hour})
		b := apptest.SubmitOneDebit(t, service, apptest.NewSite(t, service, "Acme"))

		w := jobs.ExecuteBatchWorker(service)
		job := &river.Job[billing.ExecuteBatchJob]{JobRow: &rivertype.JobRow{Attempt: 1}, Args: billing.ExecuteBatchJob{BatchID: b.ID}}
		var snooze *river.JobSnoozeError
		if err := w.Work(ctx, job); !errors.As(err, &snooze) || snooze.Duration != time.Hour {
			t.Fatalf("Work before settlement = %v, want a snooze of 1h", err)
		}
		clock.Advance(time.Hour)
		if err := w.Work(ctx, job); err != nil {
			t.Fatalf("Work after settlement = %v, want the job done", err)
		}
		if err := w.Work(ctx, job); err != nil {
			t.Fatalf("Work of a completed batch = %v, want the job done", err)
		}
	})
}
