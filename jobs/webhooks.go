package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/webhook/deliver"
)

// DefaultRetrySchedule is how long a failed delivery waits before each next attempt (the first is
// made at once): the Standard Webhooks reference schedule, eight attempts over about 28 hours.
var DefaultRetrySchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// ExpireInvitations writes customer.expired for the invitations past their expiry.
type ExpireInvitations struct{}

// Kind is the job's name in the queue.
func (ExpireInvitations) Kind() string { return "expire_invitations" }

// PurgeEvents removes events past their retention, with their deliveries.
type PurgeEvents struct{}

// Kind is the job's name in the queue.
func (PurgeEvents) Kind() string { return "purge_events" }

// The bounds of a run of an endpoint's deliveries.
const (
	// deliveryRound is how many due deliveries a run takes at a time: one statement takes them,
	// and the attempts that ended by the time the next round is taken are recorded in one
	// transaction.
	deliveryRound = 100
	// endpointRequests is how many requests a run sends to its endpoint at once.
	endpointRequests = 8
)

// deliveryLease is how long a run holds its endpoint between renewals (and the period of the
// runs' scheduling): the queue's job timeout, half the rescue time. A run renews its hold each
// quarter of it and starts no request after half of it, and a request lasts at most
// deliver.DefaultTimeout, so a run that lives never loses its hold.
func deliveryLease(cfg Config) time.Duration { return cfg.RescueAfter / 2 }

// deliverWebhooksWorker sends an endpoint's due deliveries while it holds the endpoint, a round at
// a time, until none is due or its time (half the lease) is spent; what is left is due for the
// next run.
type deliverWebhooksWorker struct {
	river.WorkerDefaults[billing.DeliverWebhooksJob]
	service  *billing.Service
	client   *deliver.Client
	schedule billing.RetrySchedule
	lease    time.Duration
	// requests bounds the requests in flight in this process, all endpoints together.
	requests chan struct{}
}

func newDeliverWebhooksWorker(service *billing.Service, client *deliver.Client, schedule []time.Duration, lease time.Duration, requests int) *deliverWebhooksWorker {
	return &deliverWebhooksWorker{service: service, client: client, schedule: schedule, lease: lease,
		requests: make(chan struct{}, max(requests, 1))}
}

// Work holds the endpoint, reads its due deliveries a round at a time and keeps endpointRequests
// of them in flight: the next round is read, and the attempts that ended are recorded, while the
// requests of the last are still out.
func (w *deliverWebhooksWorker) Work(ctx context.Context, job *river.Job[billing.DeliverWebhooksJob]) error {
	id, holder := job.Args.EndpointID, fmt.Sprintf("job %d", job.ID)
	start := time.Now()
	if held, err := w.service.HoldWebhooks(ctx, id, holder, w.lease); err != nil || !held {
		return err // another run sends the endpoint's deliveries
	}
	defer func() { _ = w.service.ReleaseWebhooks(context.WithoutCancel(ctx), id, holder) }()
	end, renewed := start.Add(w.lease/2), start
	endpoint := make(chan struct{}, endpointRequests)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		ended []billing.DeliveryOutcome
	)
	// record records the attempts that ended, even when the run's context ended meanwhile.
	record := func() error {
		mu.Lock()
		outcomes := ended
		ended = nil
		mu.Unlock()
		if len(outcomes) == 0 {
			return nil
		}
		if err := w.service.RecordDeliveryAttempts(context.WithoutCancel(ctx), id, outcomes); err != nil {
			return fmt.Errorf("record delivery attempts: %w", err)
		}
		return nil
	}
	var (
		err   error
		after billing.DueDelivery // the last delivery read: the deliveries in flight are not read again
	)
rounds:
	for time.Now().Before(end) && ctx.Err() == nil {
		if time.Since(renewed) > w.lease/4 {
			var held bool
			if held, err = w.service.HoldWebhooks(ctx, id, holder, w.lease); err != nil || !held {
				break
			}
			renewed = time.Now()
		}
		var batch billing.WebhookBatch
		if batch, err = w.service.DueWebhooks(ctx, id, after, deliveryRound); err != nil || len(batch.Due) == 0 {
			break
		}
		after = batch.Due[len(batch.Due)-1]
		for _, due := range batch.Due {
			endpoint <- struct{}{}
			w.requests <- struct{}{}
			if ctx.Err() != nil || time.Now().After(end) {
				<-w.requests
				<-endpoint
				break rounds // the rest is due for the next run
			}
			wg.Go(func() {
				defer func() { <-w.requests; <-endpoint }()
				o := w.send(ctx, batch, due)
				mu.Lock()
				ended = append(ended, o)
				mu.Unlock()
			})
		}
		if err = record(); err != nil {
			break
		}
	}
	wg.Wait()
	return errors.Join(err, record())
}

// send makes one attempt of the delivery and says where it leaves it.
func (w *deliverWebhooksWorker) send(ctx context.Context, batch billing.WebhookBatch, due billing.DueDelivery) billing.DeliveryOutcome {
	// The attempt is recorded on the service's clock, as every other time; the signed timestamp
	// is the wall clock's, which the receiver compares with its own to refuse replays.
	at := w.service.Now()
	res := w.client.Send(ctx, deliver.Request{URL: batch.URL, ID: due.Delivery.EventID, Timestamp: time.Now(),
		Body: due.Body, Secrets: batch.Secrets})
	a := billing.DeliveryAttempt{At: at, Status: res.Status, Error: res.Err, Duration: res.Duration}
	if !res.OK() && a.Error == "" {
		a.Error = fmt.Sprintf("status %d", res.Status)
	}
	return w.schedule.Outcome(due.Delivery, a)
}

// ScheduleDeliveries looks for due deliveries every cfg.PollInterval until ctx ends, enqueuing a
// run for each endpoint that has some (billing.Service.ScheduleDeliveries): the first attempts of
// new events, the retries that came due, and the deliveries of a run that died. Every process
// that works the queue runs it beside the queue's client (app.StartJobs).
func ScheduleDeliveries(ctx context.Context, service *billing.Service, logger *slog.Logger, cfg Config) {
	tick := time.NewTicker(cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := service.ScheduleDeliveries(ctx, deliveryLease(cfg)); err != nil && ctx.Err() == nil {
			logger.Warn("looking for due webhook deliveries", "err", err)
		}
	}
}
