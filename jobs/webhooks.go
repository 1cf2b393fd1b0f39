package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
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
	// deliveryRound is how many due deliveries a run reads at a time (one statement), and how
	// many attempts it records at most in one transaction.
	deliveryRound = 100
	// endpointRequests is how many requests a run sends to its endpoint at once.
	endpointRequests = 8
	// recordWait is how long the attempts that end are gathered for one recording transaction.
	recordWait = 20 * time.Millisecond
	// passPause is how long a run waits before its next pass over its due deliveries when the last
	// found less than a round: deliveries that come due one at a time (an event each) are then
	// read, and recorded, in rounds rather than a query each, the reading not spinning while the
	// endpoint's events trickle in.
	passPause = 100 * time.Millisecond
	// targetAge is how long a run sends with what it last read of its endpoint (its URL, its
	// secrets, that it is enabled) before it reads it again: a partner's change of the endpoint
	// reaches the deliveries the run read before it within this time, not at the next run.
	targetAge = 100 * time.Millisecond
	// failingWait is how long a run of a failing endpoint waits for one of the requests failing
	// endpoints share before it ends, its deliveries left due for a later run: waiting on, it
	// would keep one of the queue's workers from the runs of endpoints that answer.
	failingWait = time.Second
)

// failingShare is the part of the process's requests that the deliveries of failing endpoints
// (whose last attempt failed) may take together, at least one: an endpoint that holds each
// request until its timeout (10 s) leaves the others to those that answer, whoever's it is and
// however many such endpoints there are.
const failingShare = 4

// failingRequests is how many requests the deliveries of failing endpoints may take at once in a
// process that sends requests at once.
func failingRequests(requests int) int { return max(requests/failingShare, 1) }

// deliveryLease is how long a run holds its endpoint between renewals (and the period of the
// runs' scheduling): the queue's job timeout. A run renews its hold each quarter of it and starts
// no request after half of it, and a request lasts at most deliver.DefaultTimeout, so a run that
// lives never loses its hold.
func deliveryLease(cfg Config) time.Duration { return cfg.JobTimeout() }

// deliverWebhooksWorker sends an endpoint's due deliveries while it holds the endpoint, until none
// is due or its time (half the lease) is spent; what is left is due for the next run.
type deliverWebhooksWorker struct {
	river.WorkerDefaults[billing.DeliverWebhooksJob]
	service  *billing.Service
	client   *deliver.Client
	schedule billing.RetrySchedule
	lease    time.Duration
	// requests bounds the requests in flight in this process, all endpoints together, and
	// failing those of failing endpoints (failingRequests), which take one of each.
	requests, failing chan struct{}
	// stopping reports whether the process is stopping (Config.StoppingFunc); nil: never.
	stopping func() bool
}

// isStopping reports whether the process is stopping: a run then sends no more.
func (w *deliverWebhooksWorker) isStopping() bool { return w.stopping != nil && w.stopping() }

func newDeliverWebhooksWorker(service *billing.Service, client *deliver.Client, schedule []time.Duration, lease time.Duration, requests int) *deliverWebhooksWorker {
	requests = max(requests, 1)
	return &deliverWebhooksWorker{service: service, client: client, schedule: schedule, lease: lease,
		requests: make(chan struct{}, requests), failing: make(chan struct{}, failingRequests(requests))}
}

// slots are the process's requests one delivery takes: one of the process's, and one of those of
// the failing endpoints when its endpoint is failing.
type slots []chan struct{}

func (w *deliverWebhooksWorker) slots(failing bool) slots {
	if failing {
		return slots{w.failing, w.requests}
	}
	return slots{w.requests}
}

// take takes the slots, in order, and reports whether it did: a failing endpoint's waits at most
// failingWait for its first, and none are taken once ctx is done.
func (s slots) take(ctx context.Context) bool {
	for i, c := range s {
		var gaveUp <-chan time.Time
		if len(s) > 1 && i == 0 {
			t := time.NewTimer(failingWait)
			defer t.Stop()
			gaveUp = t.C
		}
		select {
		case c <- struct{}{}:
		case <-gaveUp:
			return false
		case <-ctx.Done():
			s[:i].release()
			return false
		}
	}
	return true
}

// release gives the slots back.
func (s slots) release() {
	for _, c := range s {
		<-c
	}
}

// Work holds the endpoint and sends its due deliveries, keeping endpointRequests of them in
// flight; the database is kept off that path: one goroutine reads the next round while the last
// is sent, another records the attempts that ended, a round at a time.
func (w *deliverWebhooksWorker) Work(ctx context.Context, job *river.Job[billing.DeliverWebhooksJob]) error {
	id, holder := job.Args.EndpointID, fmt.Sprintf("job %d", job.ID)
	if held, err := w.service.HoldWebhooks(ctx, id, holder, w.lease); err != nil || !held {
		return err // another run sends the endpoint's deliveries
	}
	defer func() { _ = w.service.ReleaseWebhooks(context.WithoutCancel(ctx), id, holder) }()
	end := time.Now().Add(w.lease / 2)
	rounds, readErr := w.read(ctx, id, holder, end)
	outcomes := make(chan billing.DeliveryOutcome, deliveryRound)
	recorded := make(chan error, 1)
	go func() { recorded <- w.record(ctx, id, outcomes) }()

	// The run's endpointRequests senders live as long as it does (a goroutine a request would grow
	// a new stack for each). The run itself takes one of its endpoint's requests and then the
	// process's slots for each delivery before handing it to a sender, and stops when its time
	// ended meanwhile: a run whose time ends waits for one slot at most. Whether the endpoint is
	// failing, which decides its slots, is read with the endpoint, and follows the run's attempts.
	type sending struct {
		target billing.WebhookTarget
		due    billing.DueDelivery
		slots  slots
	}
	var failing atomic.Bool
	endpoint := make(chan struct{}, endpointRequests)
	toSend := make(chan sending, endpointRequests) // never full: endpoint bounds what is in it
	var senders sync.WaitGroup
	for range endpointRequests {
		senders.Go(func() {
			for s := range toSend {
				o := w.send(ctx, s.target, s.due)
				failing.Store(!o.Attempt.Succeeded())
				s.slots.release()
				<-endpoint
				outcomes <- o
			}
		})
	}
	// The rounds were read ahead: each delivery is sent to the endpoint as read after its round
	// was and within targetAge, and none once it is disabled or deleted (the next run skips what
	// is left, or finds it gone).
	var (
		target    billing.WebhookTarget
		targetAt  time.Time
		targetErr error
		read      bool // whether the endpoint was read: its failing is then the run's to follow
	)
send:
	for round := range rounds {
		// Read at the start of each round too, after its deliveries were read: a secret rotated
		// before their events were written signs them, though the last read may be older.
		targetAt = time.Time{}
		for _, due := range round {
			endpoint <- struct{}{}
			stop := ctx.Err() != nil || time.Now().After(end) || w.isStopping()
			if !stop && time.Since(targetAt) > targetAge {
				var enabled bool
				target, enabled, targetErr = w.service.WebhookTarget(ctx, id)
				targetAt, stop = time.Now(), targetErr != nil || !enabled
				if !read && !stop {
					failing.Store(target.Failing)
					read = true
				}
			}
			var slots slots
			if !stop {
				slots = w.slots(failing.Load())
				stop = !slots.take(ctx)
			}
			if !stop && (time.Now().After(end) || w.isStopping()) {
				slots.release()
				stop = true
			}
			if stop {
				<-endpoint
				break send // the rest is due for the next run
			}
			toSend <- sending{target, due, slots}
		}
	}
	close(toSend)
	for range rounds { // let the reader end
	}
	senders.Wait()
	close(outcomes)
	return errors.Join(<-readErr, <-recorded, targetErr)
}

// read reads the endpoint's due deliveries a round ahead of the sending, in passes in the order
// they came due, renewing the run's hold each quarter of the lease, until a pass finds none that is
// not in flight, the hold is lost, or end; it then closes rounds and sends its error, if any. A
// pass after the first finds the deliveries that came due behind the last (their transactions
// committed late); a delivery is read once a run, and again once the partner retried it since.
func (w *deliverWebhooksWorker) read(ctx context.Context, id, holder string, end time.Time) (<-chan []billing.DueDelivery, <-chan error) {
	rounds, errc := make(chan []billing.DueDelivery, 1), make(chan error, 1)
	go func() {
		defer close(rounds)
		renewed, found := time.Now(), 0 // found: the deliveries of this pass not read before
		var after billing.DueDelivery   // where the pass stands
		// read are the deliveries the run has read, with their Retries as read: a pass skips them
		// (those in flight are still due, and a read may see one as due that was recorded since)
		// unless the partner retried them since, which is to be sent at once; and so does the
		// failing of a disabled endpoint's due deliveries (DueWebhooks), as one in flight is being
		// sent.
		read := map[string]int{}
		for time.Now().Before(end) && ctx.Err() == nil && !w.isStopping() {
			if time.Since(renewed) > w.lease/4 {
				if held, err := w.service.HoldWebhooks(ctx, id, holder, w.lease); err != nil || !held {
					errc <- err
					return
				}
				renewed = time.Now()
			}
			due, err := w.service.DueWebhooks(ctx, id, after, deliveryRound, func(d string) bool { _, ok := read[d]; return ok })
			if err != nil {
				errc <- err
				return
			}
			if len(due) == 0 { // the end of a pass
				if found == 0 {
					break
				}
				if found < deliveryRound { // a trickle: see passPause
					select {
					case <-ctx.Done():
					case <-time.After(passPause):
					}
				}
				after, found = billing.DueDelivery{}, 0
				continue
			}
			after = due[len(due)-1]
			fresh := due[:0]
			for _, d := range due {
				if retries, ok := read[d.Delivery.ID]; !ok || retries != d.Delivery.Retries {
					read[d.Delivery.ID] = d.Delivery.Retries
					fresh = append(fresh, d)
				}
			}
			if len(fresh) > 0 {
				found += len(fresh)
				rounds <- fresh
			}
		}
		errc <- nil
	}()
	return rounds, errc
}

// record records the outcomes as they come, in transactions of up to a round's, each taking what
// ended within recordWait of its first, until outcomes is closed; it goes on after an error (or
// the run's context ended), so that what was sent is recorded, and returns the first error.
func (w *deliverWebhooksWorker) record(ctx context.Context, id string, outcomes <-chan billing.DeliveryOutcome) error {
	var first error
	for o := range outcomes {
		batch := []billing.DeliveryOutcome{o}
		wait := time.NewTimer(recordWait)
	more:
		for len(batch) < deliveryRound {
			select {
			case o, ok := <-outcomes:
				if !ok {
					break more
				}
				batch = append(batch, o)
			case <-wait.C:
				break more
			}
		}
		wait.Stop()
		if err := w.service.RecordDeliveryAttempts(context.WithoutCancel(ctx), id, batch); err != nil && first == nil {
			first = fmt.Errorf("record delivery attempts: %w", err)
		}
	}
	return first
}

// send makes one attempt of the delivery and says where it leaves it.
func (w *deliverWebhooksWorker) send(ctx context.Context, target billing.WebhookTarget, due billing.DueDelivery) billing.DeliveryOutcome {
	// The attempt is recorded on the service's clock, as every other time; the signed timestamp
	// is the wall clock's, which the receiver compares with its own to refuse replays.
	at := w.service.Now()
	res := w.client.Send(ctx, deliver.Request{URL: target.URL, ID: due.Delivery.EventID, Timestamp: time.Now(),
		Body: due.Body, Secrets: target.Secrets})
	a := billing.DeliveryAttempt{At: at, Status: res.Status, Error: res.Err, Duration: res.Duration}
	if !res.OK() && a.Error == "" {
		a.Error = fmt.Sprintf("status %d", res.Status)
	}
	return w.schedule.Outcome(due.Delivery, a)
}

// ScheduleDeliveries looks for due deliveries and new events every cfg.PollInterval until ctx
// ends, enqueuing a run for each endpoint that has some (billing.Service.ScheduleDeliveries): the
// first attempts of new events, the retries that came due, and the deliveries of a run that died. Every process
// that works the queue runs it beside the queue's client (app.StartJobs). While the database is
// away, its warning is logged once a minute (quietRepeats), not at every poll.
func ScheduleDeliveries(ctx context.Context, service *billing.Service, logger *slog.Logger, cfg Config) {
	tick := time.NewTicker(cfg.PollInterval)
	defer tick.Stop()
	quiet := slog.New(newQuietRepeats(logger.Handler()))
	var failing time.Time // since when each look has failed; zero while they succeed
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		_, err := service.ScheduleDeliveries(ctx, deliveryLease(cfg))
		switch {
		case ctx.Err() != nil:
		case err != nil:
			if failing.IsZero() {
				failing = time.Now()
			}
			quiet.Warn("looking for due webhook deliveries", "err", err, "failingFor", time.Since(failing).Round(time.Second))
		case !failing.IsZero():
			logger.Info("looking for due webhook deliveries works again", "failedFor", time.Since(failing).Round(time.Second))
			failing = time.Time{}
			quiet = slog.New(newQuietRepeats(logger.Handler())) // the next outage's first warning is logged
		}
	}
}
