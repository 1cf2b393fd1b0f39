package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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

// TestEmailsNeverHoldUpBatchExecution runs the server's queue with two workers for jobs and one for
// emails, while the SMTP server hangs (every send waits until the test ends) and more emails wait
// than there are workers: the batch submitted after them is executed all the same. In one queue,
// the emails would hold every worker.
func TestEmailsNeverHoldUpBatchExecution(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		service, db := apptest.NewService(t, engine)
		site := apptest.NewSite(t, service, "Acme")
		for i := range 5 { // each signup enqueues its confirmation email
			apptest.LinkedCustomer(t, service, site, fmt.Sprintf("C%d", i+2))
		}
		b := apptest.SubmitOneDebit(t, service, site)

		hung, sending := make(chan struct{}), make(chan struct{}, 10)
		defer close(hung)
		cfg := jobs.DefaultConfig
		cfg.Workers, cfg.EmailWorkers, cfg.PollInterval = 2, 1, 20*time.Millisecond
		cfg.SendEmailFunc = func(ctx context.Context, _ int64, _ billing.SendEmailJob) error {
			sending <- struct{}{}
			select {
			case <-hung:
			case <-ctx.Done():
			}
			return errors.New("the SMTP server did not answer")
		}
		client, err := db.NewJobClient(jobs.NewConfig(service, slog.New(slog.DiscardHandler), cfg))
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			stopped, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = client.Stop(stopped)
		})
		select {
		case <-sending:
		case <-time.After(30 * time.Second):
			t.Fatal("no email was sent within 30s")
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, err := db.GetBatchByID(ctx, b.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State == billing.BatchCompleted {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the batch is %s 30s after the queue started, while the emails hang", got.State)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// A job's failed attempt is logged at WARN and its last at ERROR, naming the job's kind and the
// error, through the River configuration the server runs (River's own lines are INFO): a BECS
// file that cannot be delivered, or an email that cannot be sent, reaches the operator's alerts.
func TestFailedJobAttemptsAreWarningsAndTheLastAnError(t *testing.T) {
	service, _ := apptest.NewService(t, "sqlite")
	var out strings.Builder
	logger := slog.New(slog.NewTextHandler(&out, nil))
	cfg := jobs.DefaultConfig
	var counted []string
	cfg.JobFailedFunc = func(kind jobs.JobKind, last bool) {
		counted = append(counted, fmt.Sprint(kind.Kind, " ", kind.Task, " ", last))
	}
	handler := jobs.NewConfig(service, logger, cfg).ErrorHandler
	failed := errors.New("becs rail: deliver file file_1: permission denied")
	for _, tc := range []struct {
		attempt int
		want    string
	}{
		{1, `level=WARN msg="job attempt failed; it will be retried" kind=run_task job=7 attempt=1 maxAttempts=3 err="becs rail: deliver file file_1: permission denied"`},
		{3, `level=ERROR msg="job failed, and has no attempt left" kind=run_task job=7 attempt=3 maxAttempts=3 err="becs rail: deliver file file_1: permission denied"`},
	} {
		out.Reset()
		handler.HandleError(context.Background(), &rivertype.JobRow{ID: 7, Kind: "run_task", EncodedArgs: []byte(`{"name":"becs_deliver"}`),
			Attempt: tc.attempt, MaxAttempts: 3}, failed)
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("attempt %d logged %q; want %q", tc.attempt, out.String(), tc.want)
		}
	}
	handler.HandleError(context.Background(), &rivertype.JobRow{ID: 8, Kind: "send_email", EncodedArgs: []byte(`{"name":"x"}`), Attempt: 1, MaxAttempts: 25}, failed)
	// A webhook delivery run is tried once, and its deliveries stay due for the next run the
	// scheduler enqueues: its failure is a warning, and no last attempt.
	out.Reset()
	handler.HandleError(context.Background(), &rivertype.JobRow{ID: 9, Kind: "deliver_webhooks", EncodedArgs: []byte(`{"endpointId":"whe_1"}`), Attempt: 1, MaxAttempts: 1}, failed)
	if want := `level=WARN msg="job failed; its work stays due, for a job the next look enqueues" kind=deliver_webhooks`; !strings.Contains(out.String(), want) {
		t.Errorf("a failed delivery run logged %q; want %q", out.String(), want)
	}
	if want := []string{"run_task becs_deliver false", "run_task becs_deliver true", "send_email  false", "deliver_webhooks  false"}; !slices.Equal(counted, want) {
		t.Errorf("JobFailedFunc was told %q, want %q (the metric pyng_job_failures_total)", counted, want)
	}
}

// River's own messages at WARN or above are logged once a minute while they repeat (during a
// database outage its producer says the same at every poll), the next saying how many were left
// out; its INFO lines, and other messages, pass as they are.
func TestRiversRepeatedWarningsAreLoggedOnceAMinute(t *testing.T) {
	var out strings.Builder
	logger := slog.New(jobs.QuietRepeats(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	log := func(at time.Duration, level slog.Level, msg string) {
		r := slog.NewRecord(t0.Add(at), level, msg, 0)
		_ = logger.Handler().Handle(context.Background(), r)
	}
	for i := range 5 {
		log(time.Duration(i)*time.Second, slog.LevelError, "producer: Error fetching jobs")
		log(time.Duration(i)*time.Second, slog.LevelInfo, "jobexecutor.JobExecutor: Job errored; retrying")
	}
	log(2*time.Second, slog.LevelWarn, "another message")
	log(61*time.Second, slog.LevelError, "producer: Error fetching jobs")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var fetching []string
	for _, l := range lines {
		if strings.Contains(l, "Error fetching jobs") {
			fetching = append(fetching, l)
		}
	}
	if len(fetching) != 2 || strings.Contains(fetching[0], "repeated") || !strings.HasSuffix(fetching[1], "repeated=4") {
		t.Errorf("the repeated error was logged as %q; want twice, the second with repeated=4", fetching)
	}
	if n := strings.Count(out.String(), "Job errored; retrying"); n != 5 {
		t.Errorf("INFO lines logged %d times, want every one of 5", n)
	}
	if !strings.Contains(out.String(), "another message") {
		t.Errorf("another message was left out:\n%s", out.String())
	}
}

// A WARN or ERROR of River's whose error is a canceled context (the server stopping: River's
// maintenance services log "Error starting transaction" so) is logged at INFO, or not at all below
// INFO; any other error keeps its level.
func TestACanceledContextIsNoError(t *testing.T) {
	canceled := slog.String("error", "context canceled")
	tests := []struct {
		name      string
		level     slog.Level // of the log
		attrs     []slog.Attr
		wantLevel string // "" for not logged
	}{
		{"River's text", slog.LevelDebug, []slog.Attr{canceled}, "INFO"},
		{"wrapped text", slog.LevelDebug, []slog.Attr{slog.String("error", "begin: context canceled")}, "INFO"},
		{"an error value", slog.LevelDebug, []slog.Attr{slog.Any("err", fmt.Errorf("look: %w", context.Canceled))}, "INFO"},
		{"a LogValuer", slog.LevelDebug, []slog.Attr{slog.Any("error", canceledValuer{})}, "INFO"},
		{"with other attributes", slog.LevelDebug, []slog.Attr{slog.String("queue", "default"), canceled}, "INFO"},
		{"below the log's level", slog.LevelWarn, []slog.Attr{canceled}, ""},
		{"a deadline is a fault", slog.LevelDebug, []slog.Attr{slog.String("error", "context deadline exceeded")}, "ERROR"},
		{"another error", slog.LevelDebug, []slog.Attr{slog.String("error", "connection refused")}, "ERROR"},
		{"another error value", slog.LevelDebug, []slog.Attr{slog.Any("err", errors.New("connection refused")), canceled}, "ERROR"},
		{"canceled, but not the error", slog.LevelDebug, []slog.Attr{slog.String("job", "context canceled")}, "ERROR"},
		{"of a job", slog.LevelDebug, []slog.Attr{canceled, slog.Int64("job_id", 7)}, "ERROR"},
		{"and another error", slog.LevelDebug, []slog.Attr{canceled, slog.String("err", "connection refused")}, "ERROR"},
		{"another error first", slog.LevelDebug, []slog.Attr{slog.String("err", "connection refused"), canceled}, "ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			h := jobs.QuietRepeats(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: tt.level}))
			r := slog.NewRecord(time.Now(), slog.LevelError, "maintenance.PeriodicJobEnqueuer: Error starting transaction", 0)
			r.AddAttrs(tt.attrs...)
			if err := h.Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			got := ""
			if _, rest, ok := strings.Cut(out.String(), "level="); ok {
				got, _, _ = strings.Cut(rest, " ")
			}
			if got != tt.wantLevel {
				t.Errorf("logged at %q, want %q: %q", got, tt.wantLevel, out.String())
			}
		})
	}
}

// canceledValuer logs as a canceled context.
type canceledValuer struct{}

func (canceledValuer) LogValue() slog.Value {
	return slog.AnyValue(fmt.Errorf("stop: %w", context.Canceled))
}

// A task job runs the task of its name; one for a task this process does not have (a replica
// configured otherwise than the one that inserted it) fails, to be logged and tried again, rather
// than being done with the task's work skipped unseen.
func TestATaskJobRunsItsTaskOrFails(t *testing.T) {
	ran := 0
	w := jobs.RunTaskWorker(jobs.Task{Name: "becs_returns", Run: func(context.Context) error { ran++; return nil }})
	for _, tc := range []struct {
		name    string
		wantErr bool
	}{
		{"becs_returns", false},
		{"becs_cut", true},
	} {
		err := w.Work(t.Context(), &river.Job[jobs.RunTask]{JobRow: &rivertype.JobRow{}, Args: jobs.RunTask{Name: tc.name}})
		if (err != nil) != tc.wantErr || tc.wantErr && !strings.Contains(err.Error(), "task "+tc.name+": this process does not have it") {
			t.Errorf("the job of task %s = %v; want an error: %v", tc.name, err, tc.wantErr)
		}
	}
	if ran != 1 {
		t.Errorf("the task ran %d times, want once", ran)
	}
}
