package billing

import (
	"slices"
	"time"

	"github.com/pyng/receivables/webhook"
)

// EndpointState is whether a webhook endpoint is sent events.
type EndpointState string

// The endpoint states.
const (
	EndpointEnabled  EndpointState = "enabled"
	EndpointDisabled EndpointState = "disabled"
)

// Valid reports whether s is one of the two states.
func (s EndpointState) Valid() bool { return s == EndpointEnabled || s == EndpointDisabled }

// AllEventTypes is the subscription to every event type, now and to come (Stripe's "*").
const AllEventTypes EventType = "*"

// The limits of webhook endpoints.
const (
	// MaxWebhookEndpoints is how many endpoints a site may have (as Stripe allows).
	MaxWebhookEndpoints = 16
	// SecretRotationOverlap is how long the secret a rotation replaced still signs, beside the new.
	SecretRotationOverlap = 24 * time.Hour
	// EndpointFailureLimit is how long every delivery to an endpoint may fail before it is
	// disabled.
	EndpointFailureLimit = 5 * 24 * time.Hour
)

// WebhookEndpoint is a partner's URL that the site's events are sent to, signed with its secret.
type WebhookEndpoint struct {
	ID     string
	SiteID string
	URL    string
	// EventTypes are the types it is sent; [AllEventTypes] for every type.
	EventTypes []EventType
	State      EndpointState
	Secret     webhook.Secret
	// PreviousSecret, the secret the last rotation replaced, signs beside Secret until
	// PreviousSecretUntil.
	PreviousSecret      webhook.Secret
	PreviousSecretUntil time.Time
	CreatedAt           time.Time
	// FailingSince is when the first of the failed attempts since the last success was made;
	// zero while the latest attempt succeeded.
	FailingSince time.Time
	// DisabledReason says why the endpoint is disabled: "partner" or "failing".
	DisabledReason string
}

// Subscribes reports whether the endpoint is sent the site's events of type t. A webhook.test
// event is sent to the endpoint it tests alone (EventStore.SendTestEvent).
func (e WebhookEndpoint) Subscribes(t EventType) bool {
	if t == EventWebhookTest {
		return false
	}
	return slices.Contains(e.EventTypes, AllEventTypes) || slices.Contains(e.EventTypes, t)
}

// SecretsAt are the secrets that sign a message sent at now: the current one, and during a
// rotation's overlap the previous one.
func (e WebhookEndpoint) SecretsAt(now time.Time) []webhook.Secret {
	secrets := []webhook.Secret{e.Secret}
	if now.Before(e.PreviousSecretUntil) {
		secrets = append(secrets, e.PreviousSecret)
	}
	return secrets
}

// The reasons an endpoint is disabled.
const (
	DisabledByPartner = "partner"
	DisabledFailing   = "failing"
)

// WebhookEndpointView is an endpoint as the partner sees it. Its secret is shown only when it is
// made (WebhookEndpointWithSecret).
type WebhookEndpointView struct {
	EndpointID     string        `json:"endpointId"`
	URL            string        `json:"url"`
	EventTypes     []EventType   `json:"eventTypes"`
	CreatedAt      int64         `json:"createdAt"`
	State          EndpointState `json:"state"`
	DisabledReason string        `json:"disabledReason,omitempty"`
}

// ViewWebhookEndpoint presents e.
func ViewWebhookEndpoint(e WebhookEndpoint) WebhookEndpointView {
	v := WebhookEndpointView{EndpointID: e.ID, URL: e.URL, EventTypes: e.EventTypes, CreatedAt: Millis(e.CreatedAt), State: e.State}
	if e.State == EndpointDisabled {
		v.DisabledReason = e.DisabledReason
	}
	return v
}

// WebhookEndpointWithSecret is an endpoint with its secret: the answer to its creation and to a
// rotation of its secret, the only times the secret is shown.
type WebhookEndpointWithSecret struct {
	WebhookEndpointView
	Secret string `json:"secret"`
}

// WebhookEndpointRequest is what a partner asks of an endpoint: all of it on creation (nil
// EventTypes: every type), what is set on an update.
type WebhookEndpointRequest struct {
	URL        *string
	EventTypes *[]EventType
	State      *EndpointState
}

// DeliveryState is where a delivery of an event to an endpoint stands.
type DeliveryState string

// The delivery states.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliverySucceeded DeliveryState = "succeeded"
	DeliveryFailed    DeliveryState = "failed"
)

// Delivery is the sending of one event to one endpoint, over one or more attempts.
type Delivery struct {
	ID         string
	EndpointID string
	EventID    string
	EventType  EventType
	State      DeliveryState
	CreatedAt  time.Time
	// Tries counts the attempts since the delivery was made or a partner retried it: its place in
	// the retry schedule.
	Tries int
	// Retries counts the partner's retries of the delivery (Service.RetryDelivery). An attempt's
	// outcome moves the delivery only while its Retries are those read before the attempt
	// (DeliveryOutcome.Retries), so that a retry made while the attempt was in flight stands.
	Retries  int
	Attempts []DeliveryAttempt
}

// DeliveryAttempt is one HTTP request of a delivery: the status the endpoint answered with, or
// the error that kept it from answering.
type DeliveryAttempt struct {
	At       time.Time
	Status   int
	Error    string
	Duration time.Duration
}

// Succeeded reports whether the endpoint answered 2xx.
func (a DeliveryAttempt) Succeeded() bool { return a.Status >= 200 && a.Status < 300 }

// DeliveryView is a delivery as the partner sees it.
type DeliveryView struct {
	DeliveryID string        `json:"deliveryId"`
	EventID    string        `json:"eventId"`
	EventType  EventType     `json:"eventType"`
	State      DeliveryState `json:"state"`
	CreatedAt  int64         `json:"createdAt"`
	Attempts   []AttemptView `json:"attempts"`
}

// AttemptView is an attempt as the partner sees it.
type AttemptView struct {
	AttemptedAt int64  `json:"attemptedAt"`
	Status      int    `json:"status,omitzero"`
	Error       string `json:"error,omitempty"`
	DurationMs  int64  `json:"durationMs"`
}

// ViewDelivery presents d.
func ViewDelivery(d Delivery) DeliveryView {
	v := DeliveryView{DeliveryID: d.ID, EventID: d.EventID, EventType: d.EventType, State: d.State,
		CreatedAt: Millis(d.CreatedAt), Attempts: make([]AttemptView, len(d.Attempts))}
	for i, a := range d.Attempts {
		v.Attempts[i] = AttemptView{AttemptedAt: Millis(a.At), Status: a.Status, Error: a.Error, DurationMs: a.Duration.Milliseconds()}
	}
	return v
}

// DeliveryFilter selects a page of an endpoint's deliveries, newest first: up to Limit of those
// made before the delivery Before (from the newest when empty).
type DeliveryFilter struct {
	Before string
	Limit  int
}

// DeliverWebhooksJob makes the deliveries of the endpoint's new events (EventStore.FanOutDeliveries)
// and sends its due deliveries, in rounds, until none is due. The store writes an event in the
// transaction of its change (the outbox); the job is enqueued by Service.ScheduleDeliveries, which
// looks for due deliveries and new events every poll interval. A run sends
// only while it holds the endpoint's lease (Service.HoldWebhooks), so one run at a time sends an
// endpoint's deliveries, whatever the number of replicas, and a run that died lets go when its
// lease ends. The job is unique per endpoint and Round while it waits or runs: one new run an
// endpoint a period, and a run that died holds up none after its period.
type DeliverWebhooksJob struct {
	EndpointID string `json:"endpointId"`
	// Round is the period of the scheduling: its start in milliseconds over the period's length.
	Round int64 `json:"round"`
}

// Kind is the job's name in the queue.
func (DeliverWebhooksJob) Kind() string { return "deliver_webhooks" }

// MaxAttempts is one: a run that fails leaves its deliveries due, and the next look for due
// deliveries enqueues another.
func (DeliverWebhooksJob) MaxAttempts() int { return 1 }

// Unique makes the job one per endpoint and round while it waits or runs (package driver's
// InsertJobs).
func (DeliverWebhooksJob) Unique() bool { return true }

// WebhookQueue is the queue of the deliveries: a queue of their own, with workers of their own,
// so that slow partner endpoints never hold up the execution of batches.
const WebhookQueue = "webhooks"

// Queue names the job's queue.
func (DeliverWebhooksJob) Queue() string { return WebhookQueue }

// DueDelivery is a pending delivery whose next attempt is due (since Due), with the body of its
// event.
type DueDelivery struct {
	Delivery Delivery
	Due      time.Time
	Body     []byte
}

// DeliveryOutcome is an attempt of a delivery and where it leaves the delivery: State, and when
// it is still pending, the time of its next attempt.
type DeliveryOutcome struct {
	DeliveryID    string
	Attempt       DeliveryAttempt
	State         DeliveryState
	NextAttemptAt time.Time
	// Retries are the delivery's Retries as read before the attempt: when the partner retried it
	// since, the attempt is recorded but the delivery stays as the retry left it.
	Retries int
}

// RetrySchedule is how long a failed delivery waits before each next attempt (the first is made at
// once); the attempt after the last wait is the last.
type RetrySchedule []time.Duration

// Outcome is where attempt a leaves delivery d: succeeded on a 2xx; else pending until the next
// wait of the schedule has passed, or failed when the schedule is spent.
func (s RetrySchedule) Outcome(d Delivery, a DeliveryAttempt) DeliveryOutcome {
	o := DeliveryOutcome{DeliveryID: d.ID, Attempt: a, State: DeliverySucceeded, Retries: d.Retries}
	switch tries := d.Tries + 1; {
	case a.Succeeded():
	case tries > len(s):
		o.State = DeliveryFailed
	default:
		o.State, o.NextAttemptAt = DeliveryPending, a.At.Add(s[tries-1])
	}
	return o
}
