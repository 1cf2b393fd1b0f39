// The executor's methods whose statements differ per engine: the bulk paths. The others, the same
// on both engines, are in executor.go, generated from sqlite/executor.go.

package postgres

import (
	"context"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/postgres/internal/dbsqlc"
)

// InsertBatchRows copies the rows in (COPY FROM STDIN).
func (e executor) InsertBatchRows(ctx context.Context, batchID string, rows []billing.Row) error {
	params := make([]dbsqlc.InsertBatchRowsParams, len(rows))
	for i, r := range rows {
		params[i] = dbsqlc.InsertBatchRowsParams{ID: r.ID, BatchID: batchID, Idx: int64(r.Index), RowReference: r.Reference,
			CustomerReference: r.CustomerReference, Amount: r.Amount, State: string(billing.RowPending)}
	}
	_, err := e.q.InsertBatchRows(ctx, params)
	return mapErr(err)
}

func (e executor) LinkedCustomers(ctx context.Context, siteID string, refs []string) ([]string, error) {
	return e.q.LinkedCustomers(ctx, dbsqlc.LinkedCustomersParams{SiteID: siteID, Refs: refs})
}

func (e executor) MarkInProgress(ctx context.Context, rowIDs []string) error {
	return e.q.MarkInProgress(ctx, rowIDs)
}

// RecordOutcomes passes the outcomes as three arrays, zipped by the statement.
func (e executor) RecordOutcomes(ctx context.Context, outcomes []billing.RowOutcome) error {
	p := dbsqlc.RecordOutcomesParams{
		Ids:      make([]string, len(outcomes)),
		Failures: make([]string, len(outcomes)),
		Ats:      make([]int64, len(outcomes)),
	}
	for i, o := range outcomes {
		p.Ids[i], p.Failures[i], p.Ats[i] = o.RowID, string(o.Failure), billing.Millis(o.At)
	}
	return e.q.RecordOutcomes(ctx, p)
}
