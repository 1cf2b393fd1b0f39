package billing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pyng/receivables/webhook"
)

// Events lists the site's events, oldest first. next is the eventId to list after for the
// following page, empty on the last page. With f.Scopes, the events the caller may not read are
// left out (EventFilter.Hidden), and a Type it may not read is refused (CodeInsufficientScope).
func (s *Service) Events(ctx context.Context, site Site, f EventFilter) (events []Event, next string, err error) {
	if !validPageSize(f.Limit) {
		return nil, "", invalidPageSize()
	}
	if f.Type != "" && !f.Type.Valid() {
		return nil, "", invalidEventType()
	}
	if f.Type != "" && !f.shows(f.Type) {
		return nil, "", Errorf(CodeInsufficientScope, "type", fmt.Sprintf(
			"Events of type %s carry a webhook endpoint: listing them needs the scope %s.", f.Type, f.Type.Scope()))
	}
	if !PlainText(f.After) { // no eventId holds one, and a PostgreSQL text cannot be compared with NUL
		return nil, "", invalidEventCursor()
	}
	page := f
	page.Limit, page.Since = f.Limit+1, s.now().Add(-EventRetention)
	events, err = s.events.ListEvents(ctx, site.ID, page)
	if errors.Is(err, ErrNotFound) {
		return nil, "", invalidEventCursor()
	}
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	if len(events) > f.Limit {
		events = events[:f.Limit]
		next = events[len(events)-1].ID
	}
	return events, next, nil
}

func invalidEventCursor() *Error {
	return Errorf(CodeInvalidField, "after", "after must be the eventId of an event of this site from the last 30 days.")
}

// ParseEventType reads the type a list of events is filtered by, as a partner wrote it.
func ParseEventType(s string) (EventType, error) {
	if t := EventType(s); t.Valid() {
		return t, nil
	}
	return "", invalidEventType()
}

func invalidEventType() *Error {
	return Errorf(CodeInvalidField, "type", "type must be one of "+eventTypeList()+".")
}

func eventTypeList() string {
	names := make([]string, len(EventTypes))
	for i, t := range EventTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// expireBatchSize bounds the invitations one sweep step expires, so a transaction stays short.
const expireBatchSize = 500

// ExpireInvitations marks expired the invitations past their expiry, each with its
// customer.expired event, and returns how many.
func (s *Service) ExpireInvitations(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.events.ExpireInvitations(ctx, s.now(), expireBatchSize)
		total += n
		if err != nil || n < expireBatchSize {
			return total, err
		}
	}
}

// PurgeEvents deletes the events past EventRetention, and their deliveries.
func (s *Service) PurgeEvents(ctx context.Context) (int, error) {
	return s.events.PurgeEvents(ctx, s.now().Add(-EventRetention))
}

// checkEventTypes normalises the event types of an endpoint request: one to maxEventTypes (as
// the document's SubscribedEventTypes says: far more than the types there are); duplicates are
// dropped, and then AllEventTypes stands alone (["*", "*"] is "*" given twice).
func checkEventTypes(types []EventType) ([]EventType, error) {
	const maxEventTypes = 20
	if len(types) == 0 {
		return nil, Errorf(CodeInvalidField, "eventTypes", `eventTypes must hold at least one type, or "*" for every type.`)
	}
	if len(types) > maxEventTypes {
		return nil, Errorf(CodeInvalidField, "eventTypes", fmt.Sprintf("eventTypes must hold at most %d types.", maxEventTypes))
	}
	var out []EventType // a type given twice counts once, "*" too
	for _, t := range types {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	for _, t := range out {
		switch {
		case t == AllEventTypes && len(out) == 1:
		case t == AllEventTypes:
			return nil, Errorf(CodeInvalidField, "eventTypes", "eventTypes must hold \"*\" alone or the types to send: \"*\" (every type) stands alone.")
		case t == EventWebhookTest || !t.Valid():
			return nil, Errorf(CodeInvalidField, "eventTypes", fmt.Sprintf(
				"eventTypes must hold \"*\" alone (every type) or types among %s; %q is not one.", subscribableList(), Quoted(string(t))))
		}
	}
	return out, nil
}

func subscribableList() string {
	var names []string
	for _, t := range EventTypes {
		if t != EventWebhookTest {
			names = append(names, string(t))
		}
	}
	return strings.Join(names, ", ")
}

// checkWebhookURL applies the URL rules (package webhook): https, and no host that is a private,
// loopback or other internal address, unless Config.PrivateWebhooks.
func (s *Service) checkWebhookURL(raw string) *Error {
	err := webhook.CheckURL(raw, s.privateWebhooks)
	if err == nil {
		return nil
	}
	message := err.Error() + "."
	var urlErr *webhook.URLError
	if errors.As(err, &urlErr) {
		message = "The webhook URL " + urlErr.Reason + "."
	}
	return Errorf(CodeWebhookInvalidURL, "url", message)
}

// CreateWebhookEndpoint adds an endpoint to the site, enabled, with a new secret.
func (s *Service) CreateWebhookEndpoint(ctx context.Context, site Site, req WebhookEndpointRequest) (WebhookEndpoint, error) {
	if req.URL == nil {
		return WebhookEndpoint{}, Errorf(CodeInvalidField, "url", "url is required.")
	}
	if problem := s.checkWebhookURL(*req.URL); problem != nil {
		return WebhookEndpoint{}, problem
	}
	types := []EventType{AllEventTypes}
	if req.EventTypes != nil {
		var err error
		if types, err = checkEventTypes(*req.EventTypes); err != nil {
			return WebhookEndpoint{}, err
		}
	}
	if req.State != nil { // the document's request to create one has no state
		return WebhookEndpoint{}, Errorf(CodeUnknownField, "state",
			"state is not a field of this request: a new endpoint is enabled; set its state with an update.")
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		return WebhookEndpoint{}, err
	}
	e := WebhookEndpoint{ID: NewID("whe"), SiteID: site.ID, URL: *req.URL, EventTypes: types, State: EndpointEnabled,
		Secret: secret, CreatedAt: s.now()}
	created, err := s.events.CreateWebhookEndpoint(ctx, e, MaxWebhookEndpoints)
	if err != nil {
		return WebhookEndpoint{}, fmt.Errorf("create webhook endpoint: %w", err)
	}
	if !created {
		return WebhookEndpoint{}, Errorf(CodeWebhookEndpointLimit, "", fmt.Sprintf(
			"A site can have at most %d webhook endpoints; delete one first.", MaxWebhookEndpoints))
	}
	return e, nil
}

// WebhookEndpoints returns the site's endpoints, oldest first.
func (s *Service) WebhookEndpoints(ctx context.Context, site Site) ([]WebhookEndpoint, error) {
	return s.events.WebhookEndpoints(ctx, site.ID)
}

// WebhookEndpoint returns the site's endpoint with the id.
func (s *Service) WebhookEndpoint(ctx context.Context, site Site, id string) (WebhookEndpoint, error) {
	if !PlainText(id) { // no id holds one, and a PostgreSQL text cannot be compared with NUL
		return WebhookEndpoint{}, endpointNotFound()
	}
	e, err := s.events.WebhookEndpoint(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && e.SiteID != site.ID) {
		return WebhookEndpoint{}, endpointNotFound()
	}
	if err != nil {
		return WebhookEndpoint{}, fmt.Errorf("get webhook endpoint: %w", err)
	}
	return e, nil
}

func endpointNotFound() *Error {
	return Errorf(CodeWebhookEndpointNotFound, "endpointId", "No webhook endpoint with this endpointId exists for this site.")
}

// UpdateWebhookEndpoint changes what req sets of the endpoint. Enabling it clears its failures,
// so that it has five days again before it is disabled.
func (s *Service) UpdateWebhookEndpoint(ctx context.Context, site Site, id string, req WebhookEndpointRequest) (WebhookEndpoint, error) {
	var errs Errors
	if req.URL != nil {
		if problem := s.checkWebhookURL(*req.URL); problem != nil {
			errs = append(errs, problem)
		}
	}
	var types []EventType
	if req.EventTypes != nil {
		var err error
		if types, err = checkEventTypes(*req.EventTypes); err != nil {
			errs = append(errs, AsErrors(err)...)
		}
	}
	if req.State != nil && !req.State.Valid() {
		errs = append(errs, Errorf(CodeInvalidField, "state", "state must be enabled or disabled."))
	}
	if len(errs) > 0 {
		return WebhookEndpoint{}, errs
	}
	return s.changeWebhookEndpoint(ctx, site, id, func(e *WebhookEndpoint) {
		if req.URL != nil {
			e.URL = *req.URL
		}
		if req.EventTypes != nil {
			e.EventTypes = types
		}
		if req.State != nil && *req.State != e.State {
			e.State = *req.State
			e.FailingSince = time.Time{}
			e.DisabledReason = ""
			if e.State == EndpointDisabled {
				e.DisabledReason = DisabledByPartner
			}
		}
	})
}

// changeWebhookEndpoint makes change to the site's endpoint as it stands, in one transaction of
// the store (EventStore.UpdateWebhookEndpoint): what another change wrote meanwhile (a rotation's
// secret, the delivery run's disabling of the endpoint) is kept, never written over with what was
// read before it.
func (s *Service) changeWebhookEndpoint(ctx context.Context, site Site, id string, change func(*WebhookEndpoint)) (WebhookEndpoint, error) {
	if !PlainText(id) { // no id holds one, and a PostgreSQL text cannot be compared with NUL
		return WebhookEndpoint{}, endpointNotFound()
	}
	e, err := s.events.UpdateWebhookEndpoint(ctx, id, func(e *WebhookEndpoint) error {
		if e.SiteID != site.ID {
			return ErrNotFound
		}
		change(e)
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return WebhookEndpoint{}, endpointNotFound()
	}
	if err != nil {
		return WebhookEndpoint{}, fmt.Errorf("update webhook endpoint: %w", err)
	}
	return e, nil
}

// DeleteWebhookEndpoint deletes the site's endpoint and its deliveries.
func (s *Service) DeleteWebhookEndpoint(ctx context.Context, site Site, id string) error {
	err := s.events.DeleteWebhookEndpoint(ctx, site.ID, id)
	if errors.Is(err, ErrNotFound) {
		return endpointNotFound()
	}
	return err
}

// RotateWebhookSecret gives the endpoint a new secret. The one it replaces goes on signing beside
// it for SecretRotationOverlap, so a partner can deploy the new one without losing a delivery.
func (s *Service) RotateWebhookSecret(ctx context.Context, site Site, id string) (WebhookEndpoint, error) {
	secret, err := webhook.NewSecret()
	if err != nil {
		return WebhookEndpoint{}, err
	}
	return s.changeWebhookEndpoint(ctx, site, id, func(e *WebhookEndpoint) {
		e.PreviousSecret, e.PreviousSecretUntil, e.Secret = e.Secret, s.now().Add(SecretRotationOverlap), secret
	})
}

// Deliveries lists the deliveries to the site's endpoint, newest first; next is the Before of the
// following page, empty on the last.
func (s *Service) Deliveries(ctx context.Context, site Site, endpointID string, f DeliveryFilter) (ds []Delivery, next string, err error) {
	if !validPageSize(f.Limit) {
		return nil, "", invalidPageSize()
	}
	if _, err := s.WebhookEndpoint(ctx, site, endpointID); err != nil {
		return nil, "", err
	}
	page := f
	page.Limit = f.Limit + 1
	ds, err = s.events.Deliveries(ctx, endpointID, page)
	if errors.Is(err, ErrNotFound) {
		return nil, "", errInvalidDeliveryCursor
	}
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	if len(ds) > f.Limit {
		ds = ds[:f.Limit]
		next = ds[len(ds)-1].ID
	}
	return ds, next, nil
}

var errInvalidDeliveryCursor = Errorf(CodeInvalidField, "cursor",
	"cursor is not valid: pass the nextCursor of the previous page as it was given.")

// DeliveryRetryLimit is how many times a partner may retry one delivery (RetryDelivery): each
// retry is an attempt more, kept with the delivery and listed with it, so that they are bounded.
const DeliveryRetryLimit = 10

// RetryDelivery sends the delivery again now, whatever its state; its attempts so far are kept.
// A delivery retried DeliveryRetryLimit times is refused (CodeWebhookRetryLimit).
func (s *Service) RetryDelivery(ctx context.Context, site Site, endpointID, deliveryID string) (Delivery, error) {
	e, err := s.WebhookEndpoint(ctx, site, endpointID)
	if err != nil {
		return Delivery{}, err
	}
	d, err := Delivery{}, error(ErrNotFound) // no id holds a control character
	if PlainText(deliveryID) {
		d, err = s.events.Delivery(ctx, deliveryID)
	}
	if errors.Is(err, ErrNotFound) || (err == nil && d.EndpointID != e.ID) {
		return Delivery{}, Errorf(CodeWebhookDeliveryNotFound, "deliveryId", "No delivery with this deliveryId exists for this endpoint.")
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("get delivery: %w", err)
	}
	if e.State != EndpointEnabled {
		return Delivery{}, Errorf(CodeWebhookEndpointDisabled, "endpointId", "The endpoint is disabled; enable it before retrying a delivery.")
	}
	// The store refuses past the limit too (two retries at once, the limit between them): the
	// delivery was read just now, so a refusal there is the limit's.
	if d.Retries >= DeliveryRetryLimit {
		return Delivery{}, retryLimitReached()
	}
	err = s.events.RetryDelivery(ctx, d.ID, s.now(), DeliveryRetryLimit)
	if errors.Is(err, ErrNotFound) {
		return Delivery{}, retryLimitReached()
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("retry delivery: %w", err)
	}
	d.State = DeliveryPending
	return d, nil
}

func retryLimitReached() *Error {
	return Errorf(CodeWebhookRetryLimit, "deliveryId", fmt.Sprintf(
		"This delivery was retried %d times, the most it may be: a new attempt needs a new event (the events list has this one).", DeliveryRetryLimit))
}

// SendTestEvent sends a webhook.test event to the endpoint alone (the sandbox simulator).
func (s *Service) SendTestEvent(ctx context.Context, site Site, endpointID string) (Delivery, error) {
	e, err := s.WebhookEndpoint(ctx, site, endpointID)
	if err != nil {
		return Delivery{}, err
	}
	if e.State != EndpointEnabled {
		return Delivery{}, Errorf(CodeWebhookEndpointDisabled, "endpointId", "The endpoint is disabled; enable it before testing it.")
	}
	event, err := NewEvent(EventWebhookTest, site.ID, s.now(), ViewWebhookEndpoint(e))
	if err != nil {
		return Delivery{}, err
	}
	d, err := s.events.SendTestEvent(ctx, event, e.ID)
	if err != nil {
		return Delivery{}, fmt.Errorf("send test event: %w", err)
	}
	return d, nil
}

// ScheduleDeliveries enqueues the sending of every endpoint's due deliveries and new events, one
// run an endpoint a period (see DeliverWebhooksJob), and returns how many endpoints have some.
func (s *Service) ScheduleDeliveries(ctx context.Context, period time.Duration) (int, error) {
	return s.events.ScheduleDeliveries(ctx, s.now(), period)
}

// WebhookTarget is where an endpoint's deliveries are sent, and the secrets that sign them.
type WebhookTarget struct {
	EndpointID string
	URL        string
	Secrets    []webhook.Secret
	// Failing is whether the endpoint's latest attempt failed (WebhookEndpoint.FailingSince).
	Failing bool
}

// HoldWebhooks gives a run, holder, the sending of the endpoint's deliveries for lease, or renews
// its hold; false when another run holds them (see DeliverWebhooksJob).
func (s *Service) HoldWebhooks(ctx context.Context, endpointID, holder string, lease time.Duration) (bool, error) {
	now := s.now()
	return s.events.LeaseEndpoint(ctx, endpointID, holder, now, now.Add(lease))
}

// ReleaseWebhooks ends holder's hold of the endpoint's deliveries.
func (s *Service) ReleaseWebhooks(ctx context.Context, endpointID, holder string) error {
	return s.events.ReleaseEndpoint(ctx, endpointID, holder)
}

// FanOutLimit is how many of its site's new events an endpoint is given deliveries of at a time
// (EventStore.FanOutDeliveries): one transaction writes them all, and while they are sent the
// next ones are written.
const FanOutLimit = 1000

// DueWebhooks gives the endpoint the deliveries of up to FanOutLimit of its site's new events
// (EventStore.FanOutDeliveries), then returns up to limit of its deliveries due now, after `after`
// in the order they came due, to be sent; none when the endpoint is gone (its deliveries with it).
// Where they go and what signs them is the run's to read when it sends them (WebhookTarget). The
// deliveries due to an endpoint that was disabled since they were made are failed, each with an
// attempt that says why: they are skipped, not kept for when the endpoint is enabled (the events
// list has their events); but not those that read reports the run read before (nil: none), which
// may be in flight, their attempts to be recorded.
func (s *Service) DueWebhooks(ctx context.Context, endpointID string, after DueDelivery, limit int, read func(deliveryID string) bool) ([]DueDelivery, error) {
	_, err := s.events.FanOutDeliveries(ctx, endpointID, FanOutLimit)
	if errors.Is(err, ErrNotFound) { // deleted while its run reads
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fan out deliveries: %w", err)
	}
	for {
		now := s.now()
		due, err := s.events.DueDeliveries(ctx, endpointID, now, after, limit)
		if err != nil {
			return nil, fmt.Errorf("due deliveries: %w", err)
		}
		if len(due) == 0 {
			return nil, nil
		}
		e, err := s.events.WebhookEndpoint(ctx, endpointID)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("webhook endpoint: %w", err)
		}
		if e.State == EndpointEnabled {
			return due, nil
		}
		ds := make([]Delivery, 0, len(due))
		for _, d := range due {
			if read == nil || !read(d.Delivery.ID) {
				ds = append(ds, d.Delivery)
			}
		}
		if len(ds) == 0 { // the run's own: the next run skips those it did not send
			return nil, nil
		}
		skipped := DeliveryAttempt{At: now, Error: "not sent: the endpoint is disabled"}
		if err := s.events.SkipDeliveries(ctx, ds, skipped); err != nil {
			return nil, fmt.Errorf("skip deliveries: %w", err)
		}
	}
}

// WebhookTarget is where the endpoint's deliveries are sent now and the secrets that sign them;
// false when the endpoint is gone or disabled. A run reads it when it starts sending a round of
// deliveries, after it read them, so that a secret rotated before their events were written signs
// them, and again while it sends, so that a change of the endpoint made meanwhile (its deletion,
// its disabling, a new URL or secret) applies to the deliveries not yet sent.
func (s *Service) WebhookTarget(ctx context.Context, endpointID string) (WebhookTarget, bool, error) {
	e, err := s.events.WebhookEndpoint(ctx, endpointID)
	if errors.Is(err, ErrNotFound) {
		return WebhookTarget{EndpointID: endpointID}, false, nil
	}
	if err != nil {
		return WebhookTarget{}, false, fmt.Errorf("webhook endpoint: %w", err)
	}
	if e.State != EndpointEnabled {
		return WebhookTarget{EndpointID: endpointID}, false, nil
	}
	return WebhookTarget{EndpointID: e.ID, URL: e.URL, Secrets: e.SecretsAt(s.now()), Failing: !e.FailingSince.IsZero()}, true, nil
}

// RecordDeliveryAttempts records the outcomes of a round of the endpoint's deliveries (see
// EventStore.RecordAttempts).
func (s *Service) RecordDeliveryAttempts(ctx context.Context, endpointID string, outcomes []DeliveryOutcome) error {
	return s.events.RecordAttempts(ctx, endpointID, outcomes, EndpointFailureLimit)
}
