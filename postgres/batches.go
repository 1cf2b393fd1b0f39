// The executor's methods whose statements differ per engine: the bulk paths. The others, the same
// on both engines, are in executor.go, generated from sqlite/executor.go.

package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/postgres/internal/dbsqlc"
	"github.com/pyng/receivables/storage/driver"
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

func (e executor) LinkedCustomers(ctx context.Context, siteID string, refs []string) ([]driver.LinkedCustomerRecord, error) {
	return many(linkedCustomer)(e.q.LinkedCustomers(ctx, dbsqlc.LinkedCustomersParams{SiteID: siteID, Refs: refs}))
}

func (e executor) MarkInProgress(ctx context.Context, rows []billing.RowProgress) error {
	p := dbsqlc.MarkInProgressParams{Ids: make([]string, len(rows)), FileIds: make([]string, len(rows))}
	for i, r := range rows {
		p.Ids[i], p.FileIds[i] = r.RowID, r.FileID
	}
	return e.q.MarkInProgress(ctx, p)
}

// returnsLock is the advisory lock that makes the transactions returning rows take turns
// (LockReturns).
var returnsLock = advisoryKey("pyng/receivables returns")

// ReturnRows waits for any other transaction returning rows (LockReturns), then passes the
// returns as four arrays, zipped by the statement, which gives the rows returned.
func (e executor) ReturnRows(ctx context.Context, returns []billing.RowReturn) ([]billing.Row, error) {
	p := dbsqlc.ReturnRowsParams{
		Ids:        make([]string, len(returns)),
		Reasons:    make([]string, len(returns)),
		Retryables: make([]bool, len(returns)),
		Ats:        make([]int64, len(returns)),
	}
	for i, r := range returns {
		p.Ids[i], p.Reasons[i], p.Retryables[i], p.Ats[i] = r.RowID, string(r.Reason), r.Retryable, billing.Millis(r.At)
	}
	if err := e.q.LockReturns(ctx, returnsLock); err != nil {
		return nil, mapErr(err)
	}
	return many(row)(e.q.ReturnRows(ctx, p))
}

func (e executor) RowsByID(ctx context.Context, ids []string) ([]billing.Row, error) {
	return many(row)(e.q.RowsByID(ctx, ids))
}

// RecordOutcomes passes the outcomes as three arrays, zipped by the statement.
func (e executor) RecordOutcomes(ctx context.Context, outcomes []billing.RowOutcome) error {
	p := dbsqlc.RecordOutcomesParams{
		Ids:      make([]string, len(outcomes)),
		Failures: make([]string, len(outcomes)),
		Ats:      make([]int64, len(outcomes)),
		FileIds:  make([]string, len(outcomes)),
	}
	for i, o := range outcomes {
		p.Ids[i], p.Failures[i], p.Ats[i], p.FileIds[i] = o.RowID, string(o.Failure), billing.Millis(o.At), o.FileID
	}
	return e.q.RecordOutcomes(ctx, p)
}

// PendingRows is planned for its batch each time it runs (pgx.QueryExecModeExec: an unnamed
// statement), not by a plan the connection cached: a plan made while customer_links was small
// reads the whole table for each of the batch's rows once it has grown, until an ANALYZE (seen
// after a burst of invitations: the execution of a batch taking seconds instead of milliseconds).
func (e executor) PendingRows(ctx context.Context, batchID string) ([]billing.PendingRow, error) {
	return many(pendingRow)(dbsqlc.New(plannedEachTime{e.db}).PendingRows(ctx, batchID))
}

// plannedEachTime runs its queries as unnamed statements, which PostgreSQL plans for their
// arguments each time.
type plannedEachTime struct{ dbsqlc.DBTX }

func (p plannedEachTime) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return p.DBTX.Query(ctx, sql, append([]any{pgx.QueryExecModeExec}, args...)...)
}
