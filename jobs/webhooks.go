package jobs

import (
	"context"
	"errors"
	"fmt"
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

// deliverWebhookWorker makes one attempt of a delivery. Its job's attempt number says where the
// delivery is in the retry schedule; the attempt after the schedule's last wait is the last.
type deliverWebhookWorker struct {
	river.WorkerDefaults[billing.DeliverWebhookJob]
	service  *billing.Service
	client   *deliver.Client
	schedule []time.Duration
}

func (w *deliverWebhookWorker) Work(ctx context.Context, job *river.Job[billing.DeliverWebhookJob]) error {
	msg, err := w.service.WebhookMessage(ctx, job.Args.DeliveryID)
	if errors.Is(err, billing.ErrNotFound) {
		// The endpoint was deleted or disabled, or the event is past its retention: nothing to
		// send.
		return nil
	}
	if err != nil {
		return err
	}
	// The attempt is recorded on the service's clock, as every other time; the signed timestamp
	// is the wall clock's, which the receiver compares with its own to refuse replays.
	at := w.service.Now()
	res := w.client.Send(ctx, deliver.Request{URL: msg.URL, ID: msg.Event.ID, Timestamp: time.Now(), Body: msg.Event.Body, Secrets: msg.Secrets})
	final := job.Attempt > len(w.schedule)
	attempt := billing.DeliveryAttempt{At: at, Status: res.Status, Error: res.Err, Duration: res.Duration}
	if !res.OK() && attempt.Error == "" {
		attempt.Error = fmt.Sprintf("status %d", res.Status)
	}
	if err := w.service.RecordDeliveryAttempt(ctx, msg.Delivery, attempt, final); err != nil {
		return fmt.Errorf("record delivery attempt: %w", err)
	}
	if res.OK() || final {
		return nil
	}
	return fmt.Errorf("delivery %s, attempt %d: %s", msg.Delivery.ID, job.Attempt, attempt.Error)
}

// NextRetry follows the schedule: the wait after attempt n is schedule[n-1].
func (w *deliverWebhookWorker) NextRetry(job *river.Job[billing.DeliverWebhookJob]) time.Time {
	return time.Now().Add(w.schedule[min(job.Attempt, len(w.schedule))-1])
}

// Timeout leaves the attempt its HTTP timeout and the bookkeeping around it.
func (w *deliverWebhookWorker) Timeout(*river.Job[billing.DeliverWebhookJob]) time.Duration {
	return time.Minute
}
