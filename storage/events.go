package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/storage/driver"
	"github.com/pyng/receivables/webhook"
)

var _ billing.EventStore = (*Store)(nil)

// inTx runs fn in a transaction and commits it if fn succeeds.
func (s *Store) inTx(ctx context.Context, fn func(driver.ExecutorTx) error) error {
	tx, err := s.d.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // a no-op once committed
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// record writes the events in tx: the outbox, so that an event exists exactly when its change
// committed. Their deliveries are made by FanOutDeliveries.
func (s *Store) record(ctx context.Context, tx driver.ExecutorTx, events ...billing.Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := tx.InsertEvents(ctx, events); err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	return nil
}

// FanOutDeliveries reads the events after the endpoint's position outside a transaction, and
// writes their deliveries and its new position in one only when there are some: the run holding
// the endpoint is the one writer of both, and a delivery the endpoint has already is kept. When
// the position moved since it was read (the partner disabled and enabled the endpoint again),
// nothing is written: the next fan-out starts where the enabling put it.
func (s *Store) FanOutDeliveries(ctx context.Context, endpointID string, limit int) (int, error) {
	e := s.d.Executor()
	ep, err := e.EndpointToSend(ctx, endpointID)
	if err != nil || !ep.Enabled {
		return 0, interpret(err)
	}
	events, err := e.EventsToSend(ctx, ep.SiteID, ep.Sent, limit)
	if err != nil || len(events) == 0 {
		return 0, err
	}
	err = s.inTx(ctx, func(tx driver.ExecutorTx) error { return giveDeliveries(ctx, tx, endpointID, ep, events) })
	if errors.Is(err, errEndpointMoved) {
		return 0, nil
	}
	return len(events), err
}

// giveDeliveries writes in tx the endpoint's deliveries of those of the events, read after its
// position ep.Sent, that it subscribes to, and moves its position past them; errEndpointMoved
// when the position is no longer ep.Sent.
func giveDeliveries(ctx context.Context, tx driver.ExecutorTx, endpointID string, ep driver.SendingEndpoint, events []driver.EventToSend) error {
	subscriber := billing.WebhookEndpoint{EventTypes: ep.EventTypes}
	var ds []billing.Delivery
	for _, ev := range events {
		if subscriber.Subscribes(ev.Type) {
			ds = append(ds, billing.Delivery{EndpointID: endpointID, EventID: ev.ID, EventType: ev.Type, CreatedAt: ev.CreatedAt})
		}
	}
	for i, id := range billing.NewIDs("dlv", len(ds)) {
		ds[i].ID = id
	}
	// The endpoint's row first, then the deliveries (whose foreign key reads it), as a transaction
	// that disables the endpoint takes them: on PostgreSQL, the other order deadlocked with one.
	moved, err := tx.SetEndpointSent(ctx, endpointID, ep.Sent, events[len(events)-1].Position)
	if err != nil {
		return err
	}
	if !moved {
		return errEndpointMoved
	}
	if len(ds) > 0 { // none when the endpoint subscribes to none of the events
		if err := tx.InsertDeliveries(ctx, ds); err != nil {
			return fmt.Errorf("insert deliveries: %w", interpret(err))
		}
	}
	return nil
}

// errEndpointMoved rolls back a fan-out whose endpoint's position moved since it was read.
var errEndpointMoved = errors.New("the endpoint's position moved during the fan-out")

// errEndpointGone ends a recording of attempts whose endpoint was deleted.
var errEndpointGone = errors.New("the endpoint is gone")

// fanOutAsDisabled gives the endpoint, in tx, which disables it and holds its row, the deliveries
// of the events of its site after its position, as its run would: those written while it was
// enabled, which it is owed (its next run skips them, failed, and the partner sees them and can
// retry them once it is enabled again). Without them, an event written just before the endpoint
// was disabled, not yet given to it by its run, would have no delivery at all: enabling the
// endpoint again moves its position past the events of its time disabled. On PostgreSQL, as for
// the run, only the events below the events horizon: one committed while an older transaction is
// still open is not given (given, it would be delivered before an event of that transaction that
// the events list shows before it, and the last delivery would be no safe `after`); the events
// list has it, after the endpoint's last delivery.
func fanOutAsDisabled(ctx context.Context, tx driver.ExecutorTx, endpointID string) error {
	ep, err := tx.EndpointToSend(ctx, endpointID)
	if err != nil {
		return interpret(err)
	}
	for {
		events, err := tx.EventsToSend(ctx, ep.SiteID, ep.Sent, billing.FanOutLimit)
		if err != nil || len(events) == 0 {
			return err
		}
		if err := giveDeliveries(ctx, tx, endpointID, ep, events); err != nil {
			return err
		}
		ep.Sent = events[len(events)-1].Position
	}
}

// recordLinks records an event of type t for each link, as it stands at `at`.
func (s *Store) recordLinks(ctx context.Context, tx driver.ExecutorTx, t billing.EventType, links []billing.Link, at time.Time) error {
	events := make([]billing.Event, len(links))
	for i, l := range links {
		var err error
		if events[i], err = billing.LinkEvent(t, l, at); err != nil {
			return err
		}
	}
	return s.record(ctx, tx, events...)
}

// recordBatch records an event of type t of the batch with its summary.
func (s *Store) recordBatch(ctx context.Context, tx driver.ExecutorTx, t billing.EventType, b billing.Batch, summary billing.BatchSummary, at time.Time) error {
	e, err := billing.BatchEvent(t, b, summary, at)
	if err != nil {
		return err
	}
	return s.record(ctx, tx, e)
}

// recordCompleted records batch.completed for each of the batches, as tx sees them.
func (s *Store) recordCompleted(ctx context.Context, tx driver.ExecutorTx, batchIDs []string, at time.Time) error {
	for _, id := range batchIDs {
		b, err := tx.GetBatchByID(ctx, id)
		if err != nil {
			return fmt.Errorf("get completed batch: %w", interpret(err))
		}
		totals, err := tx.BatchSummary(ctx, id)
		if err != nil {
			return fmt.Errorf("completed batch summary: %w", err)
		}
		summary := billing.BatchSummary{}
		for _, t := range totals {
			summary[t.State] = billing.StateTotal{Count: t.Count, Amount: t.Amount}
		}
		if err := s.recordBatch(ctx, tx, billing.EventBatchCompleted, b, summary, at); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) ListEvents(ctx context.Context, siteID string, f billing.EventFilter) ([]billing.Event, error) {
	e := s.d.Executor()
	var after driver.EventPosition
	if f.After != "" {
		var err error
		if after, err = e.EventPosition(ctx, siteID, f.After, f.Since); err != nil {
			return nil, interpret(err)
		}
	}
	return e.ListEvents(ctx, driver.EventPage{SiteID: siteID, After: after, Type: f.Type, Limit: limit(f.Limit), Since: f.Since,
		Hidden: f.Hidden()})
}

func (s *Store) GetEvent(ctx context.Context, id string) (billing.Event, error) {
	return result(s.d.Executor().GetEvent(ctx, id))
}

func (s *Store) ExpireInvitations(ctx context.Context, now time.Time, max int) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx driver.ExecutorTx) error {
		expired, err := tx.ExpireDueInvitations(ctx, now, max)
		if err != nil {
			return fmt.Errorf("expire invitations: %w", err)
		}
		n = len(expired)
		return s.recordLinks(ctx, tx, billing.EventCustomerExpired, expired, now)
	})
	return n, err
}

func (s *Store) PurgeEvents(ctx context.Context, before time.Time) (int, error) {
	return inChunks(purgeChunks.events, func(limit int) (int, error) { return s.d.Executor().PurgeEvents(ctx, before, limit) })
}

// The sealed columns of webhook endpoints (see keys.go).
const (
	sealedEndpointSecret         = "webhook_endpoints.secret"
	sealedEndpointPreviousSecret = "webhook_endpoints.previous_secret"
)

// ResealWebhookEndpoints seals again, with the current key of the ring, the secrets of every
// webhook endpoint that holds one in plaintext or sealed with another key, and returns how many
// endpoints it sealed. Each endpoint is resealed in a transaction of its own that holds it, so a
// change made meanwhile, a rotation of its secret say, is kept, and of two runs at once one
// reseals it.
func (s *Store) ResealWebhookEndpoints(ctx context.Context) (int, error) {
	n := 0
	page := driver.Page{Limit: 500}
	for {
		sites, err := s.d.Executor().ListSites(ctx, page)
		if err != nil || len(sites) == 0 {
			return n, err
		}
		for _, site := range sites {
			endpoints, err := s.d.Executor().ListWebhookEndpoints(ctx, site.ID)
			if err != nil {
				return n, err
			}
			for _, e := range endpoints {
				if !s.staleEndpoint(e) {
					continue
				}
				resealed, err := s.resealEndpoint(ctx, e.Endpoint.ID)
				if err != nil {
					return n, fmt.Errorf("webhook endpoint %s: %w", e.Endpoint.ID, err)
				}
				if resealed {
					n++
				}
			}
		}
		last := sites[len(sites)-1]
		page.AfterCreatedAt, page.AfterID = last.CreatedAt, last.ID
	}
}

// staleEndpoint reports whether a stored endpoint holds a secret in plaintext or sealed with
// another key than the ring's current one.
func (s *Store) staleEndpoint(e driver.StoredEndpoint) bool {
	return s.keys.Stale(e.Secret) || e.PreviousSecret != "" && s.keys.Stale(e.PreviousSecret)
}

// resealEndpoint seals the endpoint's secrets again in a transaction that holds it, if they are
// still stale then: of two rotations at once, one reseals it. It reports whether it did; an
// endpoint deleted meanwhile is not.
func (s *Store) resealEndpoint(ctx context.Context, id string) (bool, error) {
	resealed := false
	err := s.inTx(ctx, func(tx driver.ExecutorTx) error {
		locked, err := tx.LockWebhookEndpoint(ctx, id)
		if errors.Is(interpret(err), billing.ErrNotFound) || err == nil && !s.staleEndpoint(locked) {
			return nil
		}
		if err != nil {
			return err
		}
		e, err := s.openEndpoint(locked)
		if err != nil {
			return err
		}
		stored, err := s.sealEndpoint(e)
		if err != nil {
			return err
		}
		resealed, err = tx.UpdateWebhookEndpoint(ctx, stored)
		return err
	})
	return resealed, err
}

// sealEndpoint seals the endpoint's secrets for storing.
func (s *Store) sealEndpoint(e billing.WebhookEndpoint) (driver.StoredEndpoint, error) {
	stored := driver.StoredEndpoint{Endpoint: e}
	stored.Endpoint.Secret, stored.Endpoint.PreviousSecret = webhook.Secret{}, webhook.Secret{}
	var errs [2]error
	stored.Secret, errs[0] = s.keys.SealString(sealedEndpointSecret, e.Secret.Reveal())
	if !e.PreviousSecret.IsZero() {
		stored.PreviousSecret, errs[1] = s.keys.SealString(sealedEndpointPreviousSecret, e.PreviousSecret.Reveal())
	}
	if err := errors.Join(errs[:]...); err != nil {
		return driver.StoredEndpoint{}, fmt.Errorf("webhook endpoint %s: %w", e.ID, err)
	}
	return stored, nil
}

// openEndpoint opens the secrets of a stored endpoint.
func (s *Store) openEndpoint(stored driver.StoredEndpoint) (billing.WebhookEndpoint, error) {
	e := stored.Endpoint
	secret := func(aad, sealed string) (webhook.Secret, error) {
		if sealed == "" {
			return webhook.Secret{}, nil
		}
		text, err := s.keys.OpenString(aad, sealed)
		if err != nil {
			return webhook.Secret{}, err
		}
		return webhook.ParseSecret(text)
	}
	var errs [2]error
	e.Secret, errs[0] = secret(sealedEndpointSecret, stored.Secret)
	e.PreviousSecret, errs[1] = secret(sealedEndpointPreviousSecret, stored.PreviousSecret)
	if err := errors.Join(errs[:]...); err != nil {
		return billing.WebhookEndpoint{}, fmt.Errorf("webhook endpoint %s: %w", e.ID, err)
	}
	return e, nil
}

// CreateWebhookEndpoint counts the site's endpoints and inserts e in one transaction that holds
// the site (LockSite): a creation made meanwhile waits for it and counts the endpoint it made, so
// that of creations at once no more than limit allows are made.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, e billing.WebhookEndpoint, limit int) (bool, error) {
	stored, err := s.sealEndpoint(e)
	if err != nil {
		return false, err
	}
	created := false
	err = s.inTx(ctx, func(tx driver.ExecutorTx) error {
		if err := tx.LockSite(ctx, e.SiteID); err != nil {
			return interpret(err)
		}
		n, err := tx.CountWebhookEndpoints(ctx, e.SiteID)
		if err != nil || n >= limit {
			return err
		}
		if err := tx.InsertWebhookEndpoint(ctx, stored); err != nil {
			return interpret(err)
		}
		created = true
		return nil
	})
	return created && err == nil, err
}

func (s *Store) WebhookEndpoints(ctx context.Context, siteID string) ([]billing.WebhookEndpoint, error) {
	stored, err := s.d.Executor().ListWebhookEndpoints(ctx, siteID)
	if err != nil {
		return nil, err
	}
	out := make([]billing.WebhookEndpoint, len(stored))
	for i, se := range stored {
		if out[i], err = s.openEndpoint(se); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) WebhookEndpoint(ctx context.Context, id string) (billing.WebhookEndpoint, error) {
	stored, err := s.d.Executor().GetWebhookEndpoint(ctx, id)
	if err != nil {
		return billing.WebhookEndpoint{}, interpret(err)
	}
	return s.openEndpoint(stored)
}

// UpdateWebhookEndpoint reads the endpoint locked (LockWebhookEndpoint) and writes it back changed
// in the same transaction, so that a change made meanwhile (a rotation of the secret, the delivery
// run disabling the endpoint) waits for this one and is not overwritten by it.
func (s *Store) UpdateWebhookEndpoint(ctx context.Context, id string, change func(*billing.WebhookEndpoint) error) (billing.WebhookEndpoint, error) {
	var e billing.WebhookEndpoint
	err := s.inTx(ctx, func(tx driver.ExecutorTx) error {
		locked, err := tx.LockWebhookEndpoint(ctx, id)
		if err != nil {
			return interpret(err)
		}
		if e, err = s.openEndpoint(locked); err != nil {
			return err
		}
		wasEnabled := e.State == billing.EndpointEnabled
		if err := change(&e); err != nil {
			return err
		}
		if wasEnabled && e.State == billing.EndpointDisabled {
			if err := fanOutAsDisabled(ctx, tx, id); err != nil {
				return fmt.Errorf("fan out the deliveries of the endpoint being disabled: %w", err)
			}
		}
		e.ID, e.SiteID, e.CreatedAt = locked.Endpoint.ID, locked.Endpoint.SiteID, locked.Endpoint.CreatedAt
		stored, err := s.sealEndpoint(e)
		if err != nil {
			return err
		}
		found, err := tx.UpdateWebhookEndpoint(ctx, stored)
		if err == nil && !found {
			return billing.ErrNotFound
		}
		return err
	})
	if err != nil {
		return billing.WebhookEndpoint{}, err
	}
	return e, nil
}

func (s *Store) DeleteWebhookEndpoint(ctx context.Context, siteID, id string) error {
	found, err := s.d.Executor().DeleteWebhookEndpoint(ctx, siteID, id)
	if err == nil && !found {
		return billing.ErrNotFound
	}
	return err
}

func (s *Store) SendTestEvent(ctx context.Context, e billing.Event, endpointID string) (billing.Delivery, error) {
	d := billing.Delivery{ID: billing.NewID("dlv"), EndpointID: endpointID, EventID: e.ID, EventType: e.Type,
		State: billing.DeliveryPending, CreatedAt: e.CreatedAt, Attempts: []billing.DeliveryAttempt{}}
	err := s.inTx(ctx, func(tx driver.ExecutorTx) error {
		if err := tx.InsertEvents(ctx, []billing.Event{e}); err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
		if err := tx.InsertDeliveries(ctx, []billing.Delivery{d}); err != nil {
			return fmt.Errorf("insert delivery: %w", interpret(err))
		}
		return nil
	})
	return d, err
}

func (s *Store) Deliveries(ctx context.Context, endpointID string, f billing.DeliveryFilter) ([]billing.Delivery, error) {
	e := s.d.Executor()
	var ds []billing.Delivery
	var err error
	if f.Before == "" {
		ds, err = e.ListDeliveries(ctx, endpointID, limit(f.Limit))
	} else {
		var before billing.Delivery
		if before, err = e.GetDelivery(ctx, f.Before); err != nil {
			return nil, interpret(err)
		}
		if before.EndpointID != endpointID {
			return nil, billing.ErrNotFound
		}
		ds, err = e.ListDeliveriesBefore(ctx, endpointID, before.CreatedAt, before.ID, limit(f.Limit))
	}
	if err != nil {
		return nil, err
	}
	return ds, s.withAttempts(ctx, ds)
}

// withAttempts reads the attempts of the deliveries into them.
func (s *Store) withAttempts(ctx context.Context, ds []billing.Delivery) error {
	ids := make([]string, len(ds))
	index := make(map[string]int, len(ds))
	for i, d := range ds {
		ids[i], index[d.ID] = d.ID, i
		ds[i].Attempts = []billing.DeliveryAttempt{}
	}
	if len(ds) == 0 {
		return nil
	}
	attempts, err := s.d.Executor().DeliveryAttempts(ctx, ids)
	if err != nil {
		return fmt.Errorf("delivery attempts: %w", err)
	}
	for _, a := range attempts {
		i := index[a.DeliveryID]
		ds[i].Attempts = append(ds[i].Attempts, a.Attempt)
	}
	return nil
}

func (s *Store) Delivery(ctx context.Context, id string) (billing.Delivery, error) {
	d, err := s.d.Executor().GetDelivery(ctx, id)
	if err != nil {
		return billing.Delivery{}, interpret(err)
	}
	ds := []billing.Delivery{d}
	return ds[0], s.withAttempts(ctx, ds)
}

func (s *Store) RetryDelivery(ctx context.Context, id string, now time.Time, maxRetries int) error {
	found, err := s.d.Executor().RetryDelivery(ctx, id, now, maxRetries)
	if err == nil && !found {
		return billing.ErrNotFound
	}
	return err
}

// ScheduleDeliveries enqueues the jobs of the endpoints with due deliveries in one statement,
// which leaves out an endpoint whose job of the round waits or runs (the job is unique).
func (s *Store) ScheduleDeliveries(ctx context.Context, now time.Time, period time.Duration) (int, error) {
	ids, err := s.d.Executor().DueEndpoints(ctx, now)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	round := billing.Millis(now) / max(period.Milliseconds(), 1)
	jobs := make([]billing.Job, len(ids))
	for i, id := range ids {
		jobs[i] = billing.DeliverWebhooksJob{EndpointID: id, Round: round}
	}
	return len(ids), s.inTx(ctx, func(tx driver.ExecutorTx) error { return tx.InsertJobs(ctx, jobs) })
}

func (s *Store) LeaseEndpoint(ctx context.Context, endpointID, holder string, now, until time.Time) (bool, error) {
	return s.d.Executor().LeaseEndpoint(ctx, endpointID, holder, now, until)
}

func (s *Store) ReleaseEndpoint(ctx context.Context, endpointID, holder string) error {
	return s.d.Executor().ReleaseEndpoint(ctx, endpointID, holder)
}

func (s *Store) DueDeliveries(ctx context.Context, endpointID string, now time.Time, after billing.DueDelivery, limit int) ([]billing.DueDelivery, error) {
	return s.d.Executor().DueDeliveries(ctx, endpointID, now, after, limit)
}

func (s *Store) RecordAttempts(ctx context.Context, endpointID string, outcomes []billing.DeliveryOutcome, failureLimit time.Duration) error {
	if len(outcomes) == 0 {
		return nil
	}
	// The endpoint is marked by its latest attempts: a success, then the failures after it. It is
	// disabled only by a delivery's last attempt (lastGivenUp): a first failure after a quiet
	// month, its earlier failures a month old, leaves it the rest of its retries to recover.
	var lastSuccess, firstFailure, lastGivenUp time.Time
	for _, o := range outcomes {
		if o.Attempt.Succeeded() && o.Attempt.At.After(lastSuccess) {
			lastSuccess = o.Attempt.At
		}
	}
	for _, o := range outcomes {
		at := o.Attempt.At
		if o.Attempt.Succeeded() || !lastSuccess.IsZero() && !at.After(lastSuccess) {
			continue
		}
		if firstFailure.IsZero() || at.Before(firstFailure) {
			firstFailure = at
		}
		if o.State == billing.DeliveryFailed && at.After(lastGivenUp) {
			lastGivenUp = at
		}
	}
	record := func(tx driver.ExecutorTx) error {
		// The endpoint's row first, then the deliveries, the order of every transaction that
		// changes both (the partner's change of the endpoint, a fan-out): holding a delivery while
		// it waited for the endpoint, the recording deadlocked on PostgreSQL with the deletion of
		// the endpoint, which removes its deliveries.
		if _, err := tx.LockWebhookEndpoint(ctx, endpointID); err != nil {
			if err = interpret(err); errors.Is(err, billing.ErrNotFound) {
				return errEndpointGone
			}
			return err
		}
		if err := tx.RecordDeliveryOutcomes(ctx, outcomes); err != nil {
			return fmt.Errorf("record delivery outcomes: %w", interpret(err))
		}
		if !lastSuccess.IsZero() {
			if err := tx.MarkEndpointSucceeded(ctx, endpointID); err != nil {
				return err
			}
		}
		if firstFailure.IsZero() {
			return nil
		}
		if err := tx.MarkEndpointFailing(ctx, endpointID, firstFailure); err != nil {
			return err
		}
		if lastGivenUp.IsZero() {
			return nil
		}
		disabled, err := tx.DisableFailingEndpoint(ctx, endpointID, lastGivenUp.Add(-failureLimit))
		if err != nil || !disabled {
			return err
		}
		if err := fanOutAsDisabled(ctx, tx, endpointID); err != nil {
			return fmt.Errorf("fan out the deliveries of the endpoint being disabled: %w", err)
		}
		stored, err := tx.GetWebhookEndpoint(ctx, endpointID)
		if err != nil {
			return interpret(err)
		}
		e, err := billing.NewEvent(billing.EventWebhookEndpointDisabled, stored.Endpoint.SiteID, lastGivenUp, billing.ViewWebhookEndpoint(stored.Endpoint))
		if err != nil {
			return err
		}
		return s.record(ctx, tx, e)
	}
	err := s.inTx(ctx, record)
	if errors.Is(err, billing.ErrNotFound) {
		// A delivery deleted (its event purged) by a transaction that committed while this one
		// inserted its attempt fails the attempt's foreign key on PostgreSQL; recorded again, the
		// attempts of the deliveries gone are left out.
		err = s.inTx(ctx, record)
	}
	if errors.Is(err, errEndpointGone) {
		return nil // and its deliveries with it: there is nothing to record
	}
	return err
}

func (s *Store) SkipDeliveries(ctx context.Context, ds []billing.Delivery, a billing.DeliveryAttempt) error {
	outcomes := make([]billing.DeliveryOutcome, len(ds))
	for i, d := range ds {
		outcomes[i] = billing.DeliveryOutcome{DeliveryID: d.ID, Attempt: a, State: billing.DeliveryFailed, Retries: d.Retries}
	}
	return s.inTx(ctx, func(tx driver.ExecutorTx) error { return tx.RecordDeliveryOutcomes(ctx, outcomes) })
}
