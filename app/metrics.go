package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/storage"
)

// becsBacklog is the metrics of the BECS files the bank has yet to be given, read at each scrape:
// how many are cut but not delivered, or delivered (to the outbox) but not lodged, and how long
// until the earliest of them can no longer be lodged, for an alert well before it (its rows then
// fail expired, and the money is not collected).
type becsBacklog struct {
	rail   *becs.Rail
	clock  billing.Clock
	logger *slog.Logger
	files  *prometheus.Desc
	lodge  *prometheus.Desc
}

func newBECSBacklog(r *becs.Rail, clock billing.Clock, logger *slog.Logger) *becsBacklog {
	return &becsBacklog{rail: r, clock: clock, logger: logger,
		files: prometheus.NewDesc("pyng_becs_files_unlodged", "BECS files not lodged that still may be, by state: cut (not yet delivered) or delivered (to the outbox, for the operator to upload).", []string{"state"}, nil),
		lodge: prometheus.NewDesc("pyng_becs_earliest_lodge_by_seconds", "Seconds until the earliest lodge-by time of the BECS files not lodged (absent when there is none).", nil, nil),
	}
}

func (b *becsBacklog) Describe(ch chan<- *prometheus.Desc) { ch <- b.files; ch <- b.lodge }

func (b *becsBacklog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	files, err := b.rail.Unlodged(ctx)
	if err != nil {
		b.logger.Warn("metrics: the BECS files not lodged could not be read", "err", err)
		return
	}
	now := b.clock.Now()
	counts := map[becs.FileState]int{becs.FileCut: 0, becs.FileDelivered: 0}
	for _, f := range files {
		counts[f.State(now)]++
	}
	for _, state := range []becs.FileState{becs.FileCut, becs.FileDelivered} {
		ch <- prometheus.MustNewConstMetric(b.files, prometheus.GaugeValue, float64(counts[state]), string(state))
	}
	if len(files) > 0 {
		ch <- prometheus.MustNewConstMetric(b.lodge, prometheus.GaugeValue, files[0].LodgeBy().Sub(now).Seconds())
	}
}

// newSuppressedEmails is the counter of the emails to customers not sent because their address
// was sent PYNG_EMAILS_PER_ADDRESS_PER_DAY in the last 24 hours, by kind, each kind there from 0
// (a counter that first appears at 1 shows Prometheus no increase to alert on). A rise is someone
// typing one address into many signup forms (or a customer who signs up, revokes and signs up
// again all day); the log names each email's link.
func newSuppressedEmails() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pyng_customer_emails_suppressed_total",
		Help: "Emails to customers not sent: their address was sent PYNG_EMAILS_PER_ADDRESS_PER_DAY emails in the last 24 hours, by kind (signupConfirmation, revocationConfirmation, managementLink)."},
		[]string{"kind"})
	for _, kind := range []billing.EmailKind{billing.EmailSignupConfirmation, billing.EmailRevocationConfirmation, billing.EmailManagementLink} {
		c.WithLabelValues(string(kind))
	}
	return c
}

// jobBacklog is the metrics of the job queues' backlogs, read at each scrape: how many jobs of
// each queue are not yet done, and how long the oldest of them has waited. An email queue that
// only grows is an SMTP server that is down, refuses Pyng, or is not configured: customers are
// not getting their confirmations.
type jobBacklog struct {
	db      storage.Database
	logger  *slog.Logger
	waiting *prometheus.Desc
	oldest  *prometheus.Desc
}

// backlogQueues are the queues jobBacklog reads.
var backlogQueues = []string{river.QueueDefault, billing.EmailQueue, billing.WebhookQueue, billing.WithdrawalQueue}

func newJobBacklog(db storage.Database, logger *slog.Logger) *jobBacklog {
	return &jobBacklog{db: db, logger: logger,
		waiting: prometheus.NewDesc("pyng_jobs_waiting", "Jobs not yet done (to run, running, or waiting to be tried again), by queue: default (batch executions and sweeps), emails, webhooks, withdrawals.", []string{"queue"}, nil),
		oldest:  prometheus.NewDesc("pyng_jobs_oldest_waiting_seconds", "Seconds since the oldest job not yet done was enqueued, by queue (0 when there is none).", []string{"queue"}, nil),
	}
}

func (b *jobBacklog) Describe(ch chan<- *prometheus.Desc) { ch <- b.waiting; ch <- b.oldest }

func (b *jobBacklog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, queue := range backlogQueues {
		n, since, err := b.db.JobsWaiting(ctx, queue)
		if err != nil {
			b.logger.Warn("metrics: the jobs waiting could not be read", "queue", queue, "err", err)
			return
		}
		age := 0.0 // on the wall clock, River's
		if n > 0 {
			age = max(time.Since(since).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(b.waiting, prometheus.GaugeValue, float64(n), queue)
		ch <- prometheus.MustNewConstMetric(b.oldest, prometheus.GaugeValue, age, queue)
	}
}
