// The executor's event methods whose statements differ per engine: SQLite orders a site's events
// by seq alone, for it commits one writer at a time.

package sqlite

import (
	"context"
	"encoding/json"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/sqlite/internal/dbsqlc"
	"github.com/pyng/receivables/storage/driver"
)

// eventJSON is an event in the JSON array of InsertEvents.
type eventJSON struct {
	ID   string `json:"id"`
	Site string `json:"site"`
	Type string `json:"type"`
	At   int64  `json:"at"`
	Body string `json:"body"`
}

// InsertEvents inserts the events as one JSON array, read with jsonb_each: one statement.
func (e executor) InsertEvents(ctx context.Context, events []billing.Event) error {
	js, err := jsonArray(events, func(ev billing.Event) eventJSON {
		return eventJSON{ID: ev.ID, Site: ev.SiteID, Type: string(ev.Type), At: billing.Millis(ev.CreatedAt), Body: string(ev.Body)}
	})
	if err != nil {
		return err
	}
	return mapErr(e.q.InsertEvents(ctx, js))
}

func (e executor) EventPosition(ctx context.Context, siteID, id string) (driver.EventPosition, error) {
	seq, err := e.q.EventPosition(ctx, dbsqlc.EventPositionParams{SiteID: siteID, ID: id})
	return driver.EventPosition{Seq: seq}, mapErr(err)
}

func (e executor) ListEvents(ctx context.Context, p driver.EventPage) ([]billing.Event, error) {
	toEvent := func(r dbsqlc.ListEventsRow) billing.Event { return driver.EventRecord(r).Event() }
	if p.Type == "" {
		return many(toEvent)(e.q.ListEvents(ctx, dbsqlc.ListEventsParams{SiteID: p.SiteID, AfterSeq: p.After.Seq, Lim: int64(p.Limit)}))
	}
	return many(func(r dbsqlc.ListEventsOfTypeRow) billing.Event { return toEvent(dbsqlc.ListEventsRow(r)) })(
		e.q.ListEventsOfType(ctx, dbsqlc.ListEventsOfTypeParams{SiteID: p.SiteID, Type: string(p.Type), AfterSeq: p.After.Seq, Lim: int64(p.Limit)}))
}

func (e executor) DeliveryAttempts(ctx context.Context, deliveryIDs []string) ([]driver.DeliveryAttempt, error) {
	ids, err := json.Marshal(deliveryIDs)
	if err != nil {
		return nil, err
	}
	return many(attempt)(e.q.DeliveryAttempts(ctx, string(ids)))
}

// InsertInvitation always leaves the invitation to a transaction: SQLite has no data-modifying
// common table expressions, and its transactions cost no round trip.
func (e executor) InsertInvitation(context.Context, billing.Link, billing.Event) (bool, error) {
	return false, nil
}

// insertAttempts and updateDeliveries record a round of deliveries, given as a JSON array of
// {"id", "at", "status", "error", "ms", "state", "next"} (next: 0 when no longer pending).
const (
	insertAttempts = `INSERT INTO webhook_attempts (delivery_id, n, attempted_at, status, error, duration_ms)
SELECT o.id, COALESCE((SELECT max(w.n) FROM webhook_attempts AS w WHERE w.delivery_id = o.id), 0) + 1,
       o.at, o.status, o.error, o.ms
FROM (SELECT value ->> '$.id' AS id, value ->> '$.at' AS at, value ->> '$.status' AS status,
             value ->> '$.error' AS error, value ->> '$.ms' AS ms
      FROM jsonb_each(?)) AS o
JOIN webhook_deliveries AS d ON d.id = o.id`
	updateDeliveries = `UPDATE webhook_deliveries
SET state = o.state, tries = tries + 1, next_attempt_at = nullif(o.next, 0)
FROM (SELECT value ->> '$.id' AS id, value ->> '$.state' AS state, value ->> '$.next' AS next FROM jsonb_each(?)) AS o
WHERE webhook_deliveries.id = o.id`
)

// deliveryOutcomeJSON is a delivery's outcome in the JSON array of insertAttempts and updateDeliveries.
type deliveryOutcomeJSON struct {
	ID     string `json:"id"`
	At     int64  `json:"at"`
	Status int    `json:"status"`
	Error  string `json:"error"`
	Ms     int64  `json:"ms"`
	State  string `json:"state"`
	Next   int64  `json:"next"`
}

func (e executor) RecordDeliveryOutcomes(ctx context.Context, outcomes []billing.DeliveryOutcome) error {
	js, err := jsonArray(outcomes, func(o billing.DeliveryOutcome) deliveryOutcomeJSON {
		a := o.Attempt
		return deliveryOutcomeJSON{ID: o.DeliveryID, At: billing.Millis(a.At), Status: a.Status, Error: a.Error, Ms: a.Duration.Milliseconds(),
			State: string(o.State), Next: driver.OptionalMillis(o.NextAttemptAt)}
	})
	if err != nil {
		return err
	}
	if _, err := e.db.ExecContext(ctx, insertAttempts, js); err != nil {
		return mapErr(err)
	}
	_, err = e.db.ExecContext(ctx, updateDeliveries, js)
	return err
}
