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
func (e executor) InsertInvitation(context.Context, billing.Link, billing.Event) (driver.InvitationInsert, error) {
	return driver.InvitationInsert{NeedsTx: true}, nil
}
