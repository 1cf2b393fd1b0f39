// Package jobs runs the server's background work on River, a job queue kept in the server's own
// database: executing submitted batches, withdrawing a revoked customer's debits not yet sent
// (enqueued with the revocation), failing rows still open at their 24-hour deadline,
// removing batches past their 90-day retention, erasing customers' bank details some time after
// their links end, sending webhook deliveries (on a queue of their own, with the retry schedule)
// and the customers' emails (on another), writing customer.expired for invitations past their
// expiry, and removing events after 30 days.
// The batch execution job, billing.ExecuteBatchJob, is inserted by the store in the same
// transaction as its batch (see storage.Store.CreateBatch), so an accepted batch always runs; an
// event is written in the transaction of its change, and ScheduleDeliveries, which runs beside the
// queue, enqueues the jobs that make its webhook deliveries and send them. NewConfig gives the River configuration that
// works them; the database gives the client for its engine (storage.Database.NewJobClient).
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/webhook/deliver"
)

// ExpireOverdueRows fails rows still open at their batch's deadline.
type ExpireOverdueRows struct{}

// Kind is the job's name in the queue.
func (ExpireOverdueRows) Kind() string { return "expire_overdue_rows" }

// PurgeBatches removes batches past their retention.
type PurgeBatches struct{}

// Kind is the job's name in the queue.
func (PurgeBatches) Kind() string { return "purge_batches" }

// EraseBankDetails erases the bank details of links that ended long enough ago, and the rails'
// copies of them; and forgets the emails sent to customers a day ago, which count against no cap
// any more (billing.Service.ForgetSentEmails).
type EraseBankDetails struct{}

// Kind is the job's name in the queue.
func (EraseBankDetails) Kind() string { return "erase_bank_details" }

// maxRetryDelay caps the exponential backoff of the jobs that move money (retryAfterOutage), so
// that they resume soon after an outage ends.
const maxRetryDelay = time.Minute

// retryAfterOutage is when a job that moves money is tried again after its failed attempt:
// doubling from 200 milliseconds, up to maxRetryDelay.
func retryAfterOutage(attempt int) time.Time {
	delay := time.Duration(1<<min(attempt, 10)) * 100 * time.Millisecond
	return time.Now().Add(min(delay, maxRetryDelay))
}

type executeBatchWorker struct {
	river.WorkerDefaults[billing.ExecuteBatchJob]
	service *billing.Service
}

func (w *executeBatchWorker) Work(ctx context.Context, job *river.Job[billing.ExecuteBatchJob]) error {
	done, wait, err := w.service.ExecuteBatch(ctx, job.Args.BatchID)
	if err != nil {
		return err
	}
	if !done {
		return river.JobSnooze(wait)
	}
	return nil
}

func (w *executeBatchWorker) NextRetry(job *river.Job[billing.ExecuteBatchJob]) time.Time {
	return retryAfterOutage(job.Attempt)
}

// withdrawUnsentWorker has the rails withdraw the unsent debits of a revoked customer; a rail that
// fails is asked again within a minute, before a cut-off sends the debits if it can.
type withdrawUnsentWorker struct {
	river.WorkerDefaults[billing.WithdrawUnsentJob]
	service *billing.Service
}

func (w *withdrawUnsentWorker) Work(ctx context.Context, job *river.Job[billing.WithdrawUnsentJob]) error {
	return w.service.WithdrawUnsent(ctx, job.Args.LinkID)
}

func (w *withdrawUnsentWorker) NextRetry(job *river.Job[billing.WithdrawUnsentJob]) time.Time {
	return retryAfterOutage(job.Attempt)
}

// sweepWorker runs one of the service's sweeps and, when it changed anything, logs how much:
// the deadline sweep, the purges and the expiry of invitations.
type sweepWorker[T river.JobArgs] struct {
	river.WorkerDefaults[T]
	sweep func(context.Context) (int, error)
	// log is the logger's method of the message's level; the count is logged under unit.
	log           func(msg string, args ...any)
	message, unit string
}

func (w *sweepWorker[T]) Work(ctx context.Context, _ *river.Job[T]) error {
	n, err := w.sweep(ctx)
	if n > 0 {
		w.log(w.message, w.unit, n)
	}
	return err
}

type eraseBankDetailsWorker struct {
	river.WorkerDefaults[EraseBankDetails]
	service   *billing.Service
	logger    *slog.Logger
	retention time.Duration
}

// Work erases what is due; replicas that run it at once erase nothing twice, for what one erased
// the other finds erased.
func (w *eraseBankDetailsWorker) Work(ctx context.Context, _ *river.Job[EraseBankDetails]) error {
	links, rails, err := w.service.EraseBankDetails(ctx, w.retention)
	if links+rails.Debits+rails.Files+rails.Returns > 0 {
		w.logger.Info("bank details erased after their retention", "links", links, "railDebits", rails.Debits, "railFiles", rails.Files,
			"railReturnedItems", rails.Returns, "retention", w.retention.String())
	}
	emails, ferr := w.service.ForgetSentEmails(ctx)
	if emails > 0 {
		w.logger.Info("emails to customers forgotten a day after they were sent (the cap of emails an address)", "emails", emails)
	}
	return errors.Join(err, ferr)
}

// emailWait is how long an email waits in the queue, while no SMTP server is configured, before
// it is looked at again.
const emailWait = 5 * time.Minute

// sendEmailWorker sends an email to a customer; a failure is retried with River's backoff.
type sendEmailWorker struct {
	river.WorkerDefaults[billing.SendEmailJob]
	send func(ctx context.Context, id int64, job billing.SendEmailJob) error
}

func (w *sendEmailWorker) Work(ctx context.Context, job *river.Job[billing.SendEmailJob]) error {
	if w.send == nil {
		return river.JobSnooze(emailWait)
	}
	return w.send(ctx, job.ID, job.Args)
}

// Config tunes the workers.
type Config struct {
	// Workers is how many jobs run at once in this process.
	Workers int
	// PollInterval is how often the queue is polled for jobs (SQLite has no notifications;
	// PostgreSQL is notified at once and polls only as a fallback).
	PollInterval time.Duration
	// RescueAfter is how long a job may run before another worker takes it over, for jobs whose
	// process died. Batch execution is safe to repeat, so a short time is safe. A job's own
	// timeout is half of it (one step handles at most 1000 rows).
	RescueAfter time.Duration
	// SweepInterval is how often the deadline and retention jobs run.
	SweepInterval time.Duration
	// BankDetailsRetention is how long a customer's bank details are kept after their link ends.
	BankDetailsRetention time.Duration
	// WebhookWorkers is how many webhook requests this process sends at once, and how many
	// endpoints' deliveries it works on at once, in a queue of their own (billing.WebhookQueue).
	WebhookWorkers int
	// EmailWorkers is how many emails this process sends at once, in a queue of their own
	// (billing.EmailQueue).
	EmailWorkers int
	// AllowPrivateWebhooks lets deliveries go to loopback and private addresses (the sandbox).
	AllowPrivateWebhooks bool
	// RetrySchedule is how long a failed delivery waits before each next attempt.
	RetrySchedule []time.Duration
	// SendEmailFunc writes and sends the email of a billing.SendEmailJob, given the job's id in
	// the queue, which names the email whatever its attempt (email.Mailer.Send); nil while no
	// SMTP server is configured, when the emails wait in the queue.
	SendEmailFunc func(ctx context.Context, id int64, job billing.SendEmailJob) error
	// JobFailedFunc, when set, is told of each failed attempt of a job, by its kind (and task),
	// and whether it was the last (the server counts them as a metric).
	JobFailedFunc func(kind JobKind, last bool)
	// JobKindsFunc, when set, is told by NewConfig the kinds of job its workers work, a run_task
	// job's by task: the server counts each kind's failures from zero (a counter that first
	// appears at 1 shows Prometheus no increase to alert on).
	JobKindsFunc func(kinds []JobKind)
	// StoppingFunc, when set, reports whether the process has begun to stop (app.StartJobs): a
	// webhook delivery run then starts no more requests, and ends once those in flight have,
	// rather than sending on, its backlog holding the stop for the whole grace period, to be cut
	// off then.
	StoppingFunc func() bool
}

// JobTimeout is a job's own timeout: half of RescueAfter, so that a job ends before another
// worker may take it over.
func (c Config) JobTimeout() time.Duration { return c.RescueAfter / 2 }

// DefaultConfig is the tuning for a process that has no settings of its own. The server reads
// Workers, PollInterval, RescueAfter and BankDetailsRetention from its settings (by default it
// polls more often) and takes only SweepInterval from here.
var DefaultConfig = Config{Workers: 8, PollInterval: time.Second, RescueAfter: 2 * time.Minute, SweepInterval: time.Minute,
	BankDetailsRetention: billing.DefaultBankDetailsRetention, WebhookWorkers: 16, EmailWorkers: 4, RetrySchedule: DefaultRetrySchedule}

// NewConfig returns the River configuration that works the server's jobs with service: the
// workers, the queue's tuning and the periodic sweeps, and the periodic tasks of other
// components (the BECS rail's cut-off and delivery). A database makes a client of it
// (storage.Database.NewJobClient); start it with Start(ctx) and stop it with Stop(ctx).
func NewConfig(service *billing.Service, logger *slog.Logger, cfg Config, tasks ...Task) *river.Config {
	workers := &kindsOfWorkers{workers: river.NewWorkers()}
	addWorker(workers, &executeBatchWorker{service: service})
	addWorker(workers, &withdrawUnsentWorker{service: service})
	addWorker(workers, &sweepWorker[ExpireOverdueRows]{sweep: service.ExpireOverdue, log: logger.Warn,
		message: "rows failed at their 24-hour deadline", unit: "rows"})
	addWorker(workers, &sweepWorker[PurgeBatches]{sweep: service.PurgeBatches, log: logger.Info,
		message: "batches removed after their retention", unit: "batches"})
	addWorker(workers, &eraseBankDetailsWorker{service: service, logger: logger, retention: cfg.BankDetailsRetention})
	webhooks := deliver.New(deliver.Options{AllowPrivate: cfg.AllowPrivateWebhooks, UserAgent: "Pyng-Webhooks/1"})
	deliveries := newDeliverWebhooksWorker(service, webhooks, cfg.RetrySchedule, deliveryLease(cfg), cfg.WebhookWorkers)
	deliveries.stopping = cfg.StoppingFunc
	addWorker(workers, deliveries)
	addWorker(workers, &sweepWorker[ExpireInvitations]{sweep: service.ExpireInvitations, log: logger.Info,
		message: "invitations expired", unit: "links"})
	addWorker(workers, &sweepWorker[PurgeEvents]{sweep: service.PurgeEvents, log: logger.Info,
		message: "events removed after their retention", unit: "events"})
	addWorker(workers, &sendEmailWorker{send: cfg.SendEmailFunc})
	periodicTasks := addTasks(workers, tasks)
	if cfg.JobKindsFunc != nil {
		cfg.JobKindsFunc(slices.Clone(workers.kinds))
	}
	sweep := river.PeriodicInterval(cfg.SweepInterval)
	hourly := river.PeriodicInterval(max(cfg.SweepInterval, time.Hour))
	return &river.Config{
		Queues: map[string]river.QueueConfig{
			river.QueueDefault:   {MaxWorkers: cfg.Workers},
			billing.WebhookQueue: {MaxWorkers: cfg.WebhookWorkers},
			billing.EmailQueue:   {MaxWorkers: cfg.EmailWorkers},
			// A withdrawal is a statement or two of a rail: two at once keep up with any
			// revocations.
			billing.WithdrawalQueue: {MaxWorkers: 2},
		},
		Workers:              workers.workers,
		FetchPollInterval:    cfg.PollInterval,
		FetchCooldown:        min(cfg.PollInterval, river.FetchCooldownDefault),
		JobTimeout:           cfg.JobTimeout(),
		RescueStuckJobsAfter: cfg.RescueAfter,
		Logger:               slog.New(newQuietRepeats(logger.Handler())),
		ErrorHandler:         jobErrors{logger: logger, failed: cfg.JobFailedFunc},
		PeriodicJobs: append([]*river.PeriodicJob{
			river.NewPeriodicJob(sweep, func() (river.JobArgs, *river.InsertOpts) { return ExpireOverdueRows{}, nil },
				&river.PeriodicJobOpts{ID: "expire_overdue_rows", RunOnStart: true}),
			river.NewPeriodicJob(hourly, func() (river.JobArgs, *river.InsertOpts) { return PurgeBatches{}, nil },
				&river.PeriodicJobOpts{ID: "purge_batches", RunOnStart: true}),
			river.NewPeriodicJob(hourly, func() (river.JobArgs, *river.InsertOpts) { return EraseBankDetails{}, nil },
				&river.PeriodicJobOpts{ID: "erase_bank_details", RunOnStart: true}),
			river.NewPeriodicJob(sweep, func() (river.JobArgs, *river.InsertOpts) { return ExpireInvitations{}, nil },
				&river.PeriodicJobOpts{ID: "expire_invitations", RunOnStart: true}),
			river.NewPeriodicJob(hourly, func() (river.JobArgs, *river.InsertOpts) { return PurgeEvents{}, nil },
				&river.PeriodicJobOpts{ID: "purge_events", RunOnStart: true}),
		}, periodicTasks...),
	}
}

// JobKind is a kind of job, as the failures are counted: a run_task job by the Task it runs,
// for a rail's cut-off failing and its delivery failing call for different actions.
type JobKind struct {
	Kind string
	Task string // the task's name, of a run_task job; "" for the other kinds
}

// kindsOfWorkers are River's workers, with the kinds of job they work (addWorker adds to both).
type kindsOfWorkers struct {
	workers *river.Workers
	kinds   []JobKind
}

// addWorker registers w for its kind of job, whose failures are counted as those of each of
// the tasks given, or else of the kind.
func addWorker[T river.JobArgs](ws *kindsOfWorkers, w river.Worker[T], tasks ...string) {
	river.AddWorker(ws.workers, w)
	var args T
	if len(tasks) == 0 {
		ws.kinds = append(ws.kinds, JobKind{Kind: args.Kind()})
	}
	for _, t := range tasks {
		ws.kinds = append(ws.kinds, JobKind{Kind: args.Kind(), Task: t})
	}
}

// jobErrors logs each failed attempt of a job at WARN, and a job left with no attempt at ERROR:
// River's own lines say so at INFO (a panic it logs at ERROR itself), and a BECS file that cannot be delivered or an email that
// cannot be sent must reach the operator's alerts before the rows' deadline, not after.
type jobErrors struct {
	logger *slog.Logger
	failed func(kind JobKind, last bool) // nil: none
}

func (h jobErrors) HandleError(ctx context.Context, job *rivertype.JobRow, err error) *river.ErrorHandlerResult {
	args := []any{"kind", job.Kind, "job", job.ID, "attempt", job.Attempt, "maxAttempts", job.MaxAttempts, "err", err.Error()}
	switch {
	case redoneByALook[job.Kind]:
		h.count(job)
		h.logger.WarnContext(ctx, "job failed; its work stays due, for a job the next look enqueues", args...)
	case h.count(job):
		h.logger.ErrorContext(ctx, "job failed, and has no attempt left", args...)
	default:
		h.logger.WarnContext(ctx, "job attempt failed; it will be retried", args...)
	}
	return nil
}

// redoneByALook are the kinds of job tried once, whose work a failure leaves due: the next look
// for it enqueues another (a webhook delivery run: jobs.ScheduleDeliveries, every poll). Their
// failure is no job's last: an operator alerting on the last attempts is not paged by a run that
// a moment's outage of the database ended, and nothing lost.
var redoneByALook = map[string]bool{billing.DeliverWebhooksJob{}.Kind(): true}

// HandlePanic counts a panic as a failed attempt, and leaves its log line to River, which logs it
// at ERROR with its stack.
func (h jobErrors) HandlePanic(_ context.Context, job *rivertype.JobRow, _ any, _ string) *river.ErrorHandlerResult {
	h.count(job)
	return nil
}

// kindOf is the job's kind, with the task of a run_task job.
func kindOf(job *rivertype.JobRow) JobKind {
	kind := JobKind{Kind: job.Kind}
	if job.Kind == (RunTask{}).Kind() {
		var args RunTask
		if json.Unmarshal(job.EncodedArgs, &args) == nil {
			kind.Task = args.Name
		}
	}
	return kind
}

// count tells failed of the job's failed attempt, and reports whether it was its last.
func (h jobErrors) count(job *rivertype.JobRow) (last bool) {
	last = job.Attempt >= job.MaxAttempts && !redoneByALook[job.Kind]
	if h.failed != nil {
		h.failed(kindOf(job), last)
	}
	return last
}
