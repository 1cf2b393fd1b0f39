package postgres

import (
	"context"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/postgres/internal/dbsqlc"
	"github.com/pyng/receivables/storage/driver"
)

func (e executor) DeleteBatchPastRetention(ctx context.Context, siteID, reference string, at time.Time) error {
	return e.q.DeleteBatchPastRetention(ctx, dbsqlc.DeleteBatchPastRetentionParams{SiteID: siteID, Reference: reference, At: billing.Millis(at)})
}

// InsertBatch returns no row when the site has a batch with the reference, after waiting, if
// another transaction is inserting one, for that transaction to end.
func (e executor) InsertBatch(ctx context.Context, b billing.Batch) (billing.Batch, error) {
	return one(batch)(e.q.InsertBatch(ctx, dbsqlc.InsertBatchParams{
		ID:          b.ID,
		SiteID:      b.SiteID,
		Reference:   b.Reference,
		Fingerprint: b.Fingerprint,
		State:       string(b.State),
		RowCount:    int64(b.RowCount),
		TotalAmount: b.TotalAmount,
		SubmittedAt: billing.Millis(b.SubmittedAt),
		CompletedAt: driver.NullMillis(b.CompletedAt),
		DeadlineAt:  billing.Millis(b.Deadline),
		RetainUntil: billing.Millis(b.RetainUntil),
	}))
}

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

func (e executor) GetBatch(ctx context.Context, siteID, reference string) (billing.Batch, error) {
	return one(batch)(e.q.GetBatch(ctx, dbsqlc.GetBatchParams{SiteID: siteID, Reference: reference}))
}

func (e executor) GetBatchByID(ctx context.Context, id string) (billing.Batch, error) {
	return one(batch)(e.q.GetBatchByID(ctx, id))
}

func (e executor) BatchRows(ctx context.Context, batchID string) ([]billing.Row, error) {
	return many(row)(e.q.BatchRows(ctx, batchID))
}

func (e executor) BatchRowsInState(ctx context.Context, batchID string, state billing.RowState) ([]billing.Row, error) {
	return many(row)(e.q.BatchRowsInState(ctx, dbsqlc.BatchRowsInStateParams{BatchID: batchID, State: string(state)}))
}

func (e executor) BatchSummary(ctx context.Context, batchID string) ([]driver.StateTotal, error) {
	return many(stateTotal)(e.q.BatchSummary(ctx, batchID))
}

func (e executor) ListBatches(ctx context.Context, siteID string, limit int) ([]billing.Batch, error) {
	return many(batch)(e.q.ListBatches(ctx, dbsqlc.ListBatchesParams{SiteID: siteID, Lim: int64(limit)}))
}

func (e executor) ListBatchesAfter(ctx context.Context, siteID string, afterSubmittedAt time.Time, afterID string, limit int) ([]billing.Batch, error) {
	return many(batch)(e.q.ListBatchesAfter(ctx, dbsqlc.ListBatchesAfterParams{SiteID: siteID,
		AfterSubmittedAt: billing.Millis(afterSubmittedAt), AfterID: afterID, Lim: int64(limit)}))
}

func (e executor) LinkedCustomers(ctx context.Context, siteID string, refs []string) ([]string, error) {
	return e.q.LinkedCustomers(ctx, dbsqlc.LinkedCustomersParams{SiteID: siteID, Refs: refs})
}

func (e executor) StartBatch(ctx context.Context, batchID string) error {
	return e.q.StartBatch(ctx, batchID)
}

func (e executor) PendingRows(ctx context.Context, batchID string) ([]billing.PendingRow, error) {
	return many(pendingRow)(e.q.PendingRows(ctx, batchID))
}

func (e executor) MarkInProgress(ctx context.Context, rowIDs []string) error {
	return e.q.MarkInProgress(ctx, rowIDs)
}

func (e executor) InProgressRows(ctx context.Context, batchID string) ([]string, error) {
	return e.q.InProgressRows(ctx, batchID)
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

func (e executor) CompleteBatch(ctx context.Context, batchID string, at time.Time) error {
	return e.q.CompleteBatch(ctx, dbsqlc.CompleteBatchParams{ID: batchID, At: billing.Millis(at)})
}

func (e executor) ExpireOverdueRows(ctx context.Context, now time.Time) (int, error) {
	n, err := e.q.ExpireOverdueRows(ctx, billing.Millis(now))
	return int(n), err
}

func (e executor) CompleteOverdueBatches(ctx context.Context, now time.Time) error {
	return e.q.CompleteOverdueBatches(ctx, billing.Millis(now))
}

func (e executor) ExpireBatchRows(ctx context.Context, batchID string, at time.Time) (int, error) {
	n, err := e.q.ExpireBatchRows(ctx, dbsqlc.ExpireBatchRowsParams{At: billing.Millis(at), BatchID: batchID})
	return int(n), err
}

func (e executor) CompleteExpiredBatch(ctx context.Context, batchID string, at time.Time) error {
	return e.q.CompleteExpiredBatch(ctx, dbsqlc.CompleteExpiredBatchParams{At: billing.Millis(at), BatchID: batchID})
}

func (e executor) PurgeBatches(ctx context.Context, now time.Time) (int, error) {
	n, err := e.q.PurgeBatches(ctx, billing.Millis(now))
	return int(n), err
}
