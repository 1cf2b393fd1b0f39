// The executor's event methods whose statements differ per engine: SQLite orders a site's events
// by seq alone, for it commits one writer at a time.

package sqlite

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/sqlite/internal/dbsqlc"
	"github.com/pyng/receivables/storage/driver"
)

// InsertEvents inserts the events in their order (seq follows it), eventsPerInsert to a
// statement of many VALUES rows. It is the one bulk write here that takes no JSON array: an
// event's body is itself JSON text, which the array would escape and SQLite unescape again, and
// for the 10,000 events of a returns file that cost three times what bound parameters do. A
// statement per event (prepared once) cost half as much again, in the driver's work per statement.
func (e executor) InsertEvents(ctx context.Context, events []billing.Event) error {
	for chunk := range slices.Chunk(events, eventsPerInsert) {
		args := make([]any, 0, 5*len(chunk))
		for _, ev := range chunk {
			args = append(args, ev.ID, ev.SiteID, string(ev.Type), billing.Millis(ev.CreatedAt), string(ev.Body))
		}
		if _, err := e.exec(ctx, insertEvents(len(chunk)), args...); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

// eventsPerInsert bounds the rows of one insert of events: 5 parameters each, well within
// SQLite's limit of 32,766 parameters to a statement.
const eventsPerInsert = 500

// insertEvents is the statement that inserts n events, 5 parameters each.
func insertEvents(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO events (id, site_id, type, created_at, body) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?)")
	}
	return b.String()
}

// deliveryJSON is a delivery in the JSON array of InsertDeliveries.
type deliveryJSON struct {
	ID       string `json:"id"`
	Endpoint string `json:"endpoint"`
	Event    string `json:"event"`
	Type     string `json:"type"`
	At       int64  `json:"at"`
}

// InsertDeliveries inserts the deliveries as one JSON array, read with jsonb_each: one statement.
func (e executor) InsertDeliveries(ctx context.Context, ds []billing.Delivery) error {
	js, err := jsonArray(ds, func(d billing.Delivery) deliveryJSON {
		return deliveryJSON{ID: d.ID, Endpoint: d.EndpointID, Event: d.EventID, Type: string(d.EventType), At: billing.Millis(d.CreatedAt)}
	})
	if err != nil {
		return err
	}
	return mapErr(e.q.InsertDeliveries(ctx, js))
}

func (e executor) EndpointToSend(ctx context.Context, id string) (driver.SendingEndpoint, error) {
	return one(func(r dbsqlc.EndpointToSendRow) driver.SendingEndpoint {
		return driver.SendingRecord(r.SiteID, r.State, r.EventTypes, driver.EventPosition{Seq: r.SentSeq})
	})(e.q.EndpointToSend(ctx, id))
}

func (e executor) EventsToSend(ctx context.Context, siteID string, after driver.EventPosition, limit int) ([]driver.EventToSend, error) {
	return many(func(r dbsqlc.EventsToSendRow) driver.EventToSend {
		return driver.EventToSend{Position: driver.EventPosition{Seq: r.Seq}, ID: r.ID, Type: billing.EventType(r.Type), CreatedAt: billing.FromMillis(r.CreatedAt)}
	})(e.q.EventsToSend(ctx, dbsqlc.EventsToSendParams{SiteID: siteID, AfterSeq: after.Seq, Lim: int64(limit)}))
}

func (e executor) SetEndpointSent(ctx context.Context, id string, read, p driver.EventPosition) (bool, error) {
	n, err := e.q.SetEndpointSent(ctx, dbsqlc.SetEndpointSentParams{ID: id, SentSeq: p.Seq, ReadSeq: read.Seq})
	return n == 1, err
}

func (e executor) EventPosition(ctx context.Context, siteID, id string, since time.Time) (driver.EventPosition, error) {
	seq, err := e.q.EventPosition(ctx, dbsqlc.EventPositionParams{SiteID: siteID, ID: id, Since: billing.Millis(since)})
	return driver.EventPosition{Seq: seq}, mapErr(err)
}

func (e executor) ListEvents(ctx context.Context, p driver.EventPage) ([]billing.Event, error) {
	toEvent := func(r dbsqlc.ListEventsRow) billing.Event { return driver.EventRecord(r).Event() }
	if p.Type == "" {
		hidden, err := json.Marshal(append([]billing.EventType{}, p.Hidden...)) // [], never null
		if err != nil {
			return nil, err
		}
		return many(toEvent)(e.q.ListEvents(ctx, dbsqlc.ListEventsParams{SiteID: p.SiteID, AfterSeq: p.After.Seq, Since: billing.Millis(p.Since),
			Hidden: string(hidden), Lim: int64(p.Limit)}))
	}
	return many(func(r dbsqlc.ListEventsOfTypeRow) billing.Event { return toEvent(dbsqlc.ListEventsRow(r)) })(
		e.q.ListEventsOfType(ctx, dbsqlc.ListEventsOfTypeParams{SiteID: p.SiteID, Type: string(p.Type), AfterSeq: p.After.Seq, Since: billing.Millis(p.Since), Lim: int64(p.Limit)}))
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
// {"id", "at", "status", "error", "ms", "state", "next", "retries"} (next: 0 when no longer
// pending; retries: the delivery's as the run read it). updateDeliveries leaves a delivery that
// was retried since (its retries are not those read) as the retry left it.
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
FROM (SELECT value ->> '$.id' AS id, value ->> '$.state' AS state, value ->> '$.next' AS next, value ->> '$.retries' AS retries
      FROM jsonb_each(?)) AS o
WHERE webhook_deliveries.id = o.id AND webhook_deliveries.retries = o.retries`
)

// deliveryOutcomeJSON is a delivery's outcome in the JSON array of insertAttempts and updateDeliveries.
type deliveryOutcomeJSON struct {
	ID      string `json:"id"`
	At      int64  `json:"at"`
	Status  int    `json:"status"`
	Error   string `json:"error"`
	Ms      int64  `json:"ms"`
	State   string `json:"state"`
	Next    int64  `json:"next"`
	Retries int    `json:"retries"`
}

func (e executor) RecordDeliveryOutcomes(ctx context.Context, outcomes []billing.DeliveryOutcome) error {
	js, err := jsonArray(outcomes, func(o billing.DeliveryOutcome) deliveryOutcomeJSON {
		a := o.Attempt
		return deliveryOutcomeJSON{ID: o.DeliveryID, At: billing.Millis(a.At), Status: a.Status, Error: a.Error, Ms: a.Duration.Milliseconds(),
			State: string(o.State), Next: driver.OptionalMillis(o.NextAttemptAt), Retries: o.Retries}
	})
	if err != nil {
		return err
	}
	if _, err := e.exec(ctx, insertAttempts, js); err != nil {
		return mapErr(err)
	}
	_, err = e.exec(ctx, updateDeliveries, js)
	return err
}
