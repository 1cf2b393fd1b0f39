package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/pyng/receivables/app"
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
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := dbtest.Open(t, engine)
			clock := clocktest.New()
			service, err := app.NewService(ctx, db, clock, billing.DefaultInvitationTTL, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			org, err := service.CreateOrganisation(ctx, "Acme")
			if err != nil {
				t.Fatal(err)
			}
			site, err := service.CreateSite(ctx, org.ID, "Acme")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := service.Invite(ctx, site, "C1"); err != nil {
				t.Fatal(err)
			}
			if _, err := service.SimulateSignup(ctx, site, "C1"); err != nil {
				t.Fatal(err)
			}
			b, _, err := service.SubmitBatch(ctx, site, billing.BatchRequest{Reference: "B1",
				Rows: []billing.RowRequest{{Reference: "R1", CustomerReference: "C1", Amount: 100}}})
			if err != nil {
				t.Fatal(err)
			}

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
}
