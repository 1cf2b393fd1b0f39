// The executor's event methods whose statements differ per engine: PostgreSQL orders a site's
// events by (writing transaction, seq) and lists only those no later commit can precede (see
// migration 00005).

package postgres

import (
	"context"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/postgres/internal/dbsqlc"
	"github.com/pyng/receivables/storage/driver"
)

// InsertEvents inserts the events as arrays of their columns: one statement.
func (e executor) InsertEvents(ctx context.Context, events []billing.Event) error {
	p := dbsqlc.InsertEventsParams{}
	for _, ev := range events {
		p.Ids = append(p.Ids, ev.ID)
		p.SiteIds = append(p.SiteIds, ev.SiteID)
		p.Types = append(p.Types, string(ev.Type))
		p.CreatedAts = append(p.CreatedAts, billing.Millis(ev.CreatedAt))
		p.Bodies = append(p.Bodies, string(ev.Body))
	}
	return mapErr(e.q.InsertEvents(ctx, p))
}

func (e executor) EventPosition(ctx context.Context, siteID, id string, since time.Time) (driver.EventPosition, error) {
	r, err := e.q.EventPosition(ctx, dbsqlc.EventPositionParams{SiteID: siteID, ID: id, Since: billing.Millis(since)})
	return driver.EventPosition{Tx: r.Txid, Seq: r.Seq}, mapErr(err)
}

func (e executor) ListEvents(ctx context.Context, p driver.EventPage) ([]billing.Event, error) {
	tx := p.After.Tx
	if tx == "" {
		tx = "0"
	}
	toEvent := func(r dbsqlc.ListEventsRow) billing.Event { return driver.EventRecord(r).Event() }
	if p.Type == "" {
		hidden := make([]string, len(p.Hidden))
		for i, t := range p.Hidden {
			hidden[i] = string(t)
		}
		return many(toEvent)(e.q.ListEvents(ctx, dbsqlc.ListEventsParams{SiteID: p.SiteID, AfterTxid: tx, AfterSeq: p.After.Seq, Since: billing.Millis(p.Since),
			Hidden: hidden, Lim: int64(p.Limit)}))
	}
	return many(func(r dbsqlc.ListEventsOfTypeRow) billing.Event { return toEvent(dbsqlc.ListEventsRow(r)) })(
		e.q.ListEventsOfType(ctx, dbsqlc.ListEventsOfTypeParams{SiteID: p.SiteID, Type: string(p.Type), AfterTxid: tx, AfterSeq: p.After.Seq, Since: billing.Millis(p.Since), Lim: int64(p.Limit)}))
}

func (e executor) DeliveryAttempts(ctx context.Context, deliveryIDs []string) ([]driver.DeliveryAttempt, error) {
	return many(attempt)(e.q.DeliveryAttempts(ctx, deliveryIDs))
}

// InsertInvitation inserts the invitation and its event in one statement (see the query).
func (e executor) InsertInvitation(ctx context.Context, l billing.Link, ev billing.Event) (bool, error) {
	n, err := e.q.InsertInvitation(ctx, dbsqlc.InsertInvitationParams{
		ID: l.ID, SiteID: l.SiteID, CustomerReference: l.CustomerReference,
		CreatedAt: billing.Millis(l.CreatedAt), ExpiresAt: billing.Millis(l.ExpiresAt), Metadata: driver.Metadata(l.Metadata),
		EventID: ev.ID, EventType: string(ev.Type), EventCreatedAt: billing.Millis(ev.CreatedAt), EventBody: string(ev.Body),
	})
	return n == 1, mapErr(err)
}

func (e executor) EventsToSend(ctx context.Context, siteID string, after driver.EventPosition, limit int) ([]driver.EventToSend, error) {
	tx := after.Tx
	if tx == "" {
		tx = "0"
	}
	return many(func(r dbsqlc.EventsToSendRow) driver.EventToSend {
		return driver.EventToSend{Position: driver.EventPosition{Tx: r.Txid, Seq: r.Seq}, ID: r.ID, Type: billing.EventType(r.Type),
			CreatedAt: billing.FromMillis(r.CreatedAt)}
	})(e.q.EventsToSend(ctx, dbsqlc.EventsToSendParams{SiteID: siteID, AfterTxid: tx, AfterSeq: after.Seq, Lim: int64(limit)}))
}

func (e executor) EndpointToSend(ctx context.Context, id string) (driver.SendingEndpoint, error) {
	return one(func(r dbsqlc.EndpointToSendRow) driver.SendingEndpoint {
		return driver.SendingRecord(r.SiteID, r.State, r.EventTypes, driver.EventPosition{Tx: r.SentTxid, Seq: r.SentSeq})
	})(e.q.EndpointToSend(ctx, id))
}

func (e executor) SetEndpointSent(ctx context.Context, id string, read, p driver.EventPosition) (bool, error) {
	n, err := e.q.SetEndpointSent(ctx, dbsqlc.SetEndpointSentParams{ID: id, SentTxid: p.Tx, SentSeq: p.Seq, ReadTxid: read.Tx, ReadSeq: read.Seq})
	return n == 1, err
}

// InsertDeliveries inserts the deliveries as arrays of their columns: one statement.
func (e executor) InsertDeliveries(ctx context.Context, ds []billing.Delivery) error {
	var p dbsqlc.InsertDeliveriesParams
	for _, d := range ds {
		p.Ids = append(p.Ids, d.ID)
		p.EndpointIds = append(p.EndpointIds, d.EndpointID)
		p.EventIds = append(p.EventIds, d.EventID)
		p.EventTypes = append(p.EventTypes, string(d.EventType))
		p.CreatedAts = append(p.CreatedAts, billing.Millis(d.CreatedAt))
	}
	return mapErr(e.q.InsertDeliveries(ctx, p))
}

// RecordDeliveryOutcomes records a round of deliveries as arrays of their columns: two statements.
func (e executor) RecordDeliveryOutcomes(ctx context.Context, outcomes []billing.DeliveryOutcome) error {
	var a dbsqlc.InsertAttemptsParams
	var u dbsqlc.UpdateDeliveriesParams
	for _, o := range outcomes {
		a.DeliveryIds = append(a.DeliveryIds, o.DeliveryID)
		a.AttemptedAts = append(a.AttemptedAts, billing.Millis(o.Attempt.At))
		a.Statuses = append(a.Statuses, int64(o.Attempt.Status))
		a.Errors = append(a.Errors, o.Attempt.Error)
		a.DurationsMs = append(a.DurationsMs, o.Attempt.Duration.Milliseconds())
		u.Ids = append(u.Ids, o.DeliveryID)
		u.States = append(u.States, string(o.State))
		u.NextAttemptAts = append(u.NextAttemptAts, driver.OptionalMillis(o.NextAttemptAt))
		u.Retries = append(u.Retries, int64(o.Retries))
	}
	if err := e.q.InsertAttempts(ctx, a); err != nil {
		return mapErr(err)
	}
	return e.q.UpdateDeliveries(ctx, u)
}
