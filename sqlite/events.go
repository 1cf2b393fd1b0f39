// The executor's event methods whose statements differ per engine: SQLite orders a site's events
// by seq alone, for it commits one writer at a time.

package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/sqlite/internal/dbsqlc"
	"github.com/pyng/receivables/storage/driver"
)

// InsertEvents inserts the events one by one, in their order, by one statement prepared for them
// all. It is the one bulk write here that takes no JSON array: an event's body is itself JSON
// text, which the array would escape and SQLite unescape again, and for the 10,000 events of a
// returns file that cost three times or more what the prepared insert does (SQLite runs in the
// process, so a statement per event costs no round trip).
func (e executor) InsertEvents(ctx context.Context, events []billing.Event) error {
	db := &preparedDB{DBTX: e.db}
	defer db.close()
	q := dbsqlc.New(db)
	for _, ev := range events {
		err := q.InsertEvent(ctx, dbsqlc.InsertEventParams{ID: ev.ID, SiteID: ev.SiteID, Type: string(ev.Type),
			CreatedAt: billing.Millis(ev.CreatedAt), Body: string(ev.Body)})
		if err != nil {
			return mapErr(err)
		}
	}
	return nil
}

// preparedDB prepares each statement it executes on its first run and reuses it after: for a
// statement run once per value of a bulk write. Queries pass through unprepared.
type preparedDB struct {
	dbsqlc.DBTX
	statements map[string]*sql.Stmt
}

func (p *preparedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, ok := p.statements[query]
	if !ok {
		var err error
		if s, err = p.DBTX.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		if p.statements == nil {
			p.statements = map[string]*sql.Stmt{}
		}
		p.statements[query] = s
	}
	return s.ExecContext(ctx, args...)
}

// close closes the prepared statements; closing one only frees it, so its error tells nothing.
func (p *preparedDB) close() {
	for _, s := range p.statements {
		_ = s.Close()
	}
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
