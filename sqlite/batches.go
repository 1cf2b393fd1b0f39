package sqlite

import (
	"context"
	"encoding/json"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/sqlite/internal/dbsqlc"
	"github.com/pyng/receivables/storage/driver"
)

// The set-based statements take their many values as one JSON array. An array of objects is read
// with jsonb_each, whose values are binary JSON that json_extract and ->> read without parsing
// each object's text again (json_each would render each one as text first).
type (
	rowJSON struct {
		ID       string `json:"id"`
		Idx      int    `json:"idx"`
		Ref      string `json:"ref"`
		Customer string `json:"customer"`
		Amount   int64  `json:"amount"`
	}
	outcomeJSON struct {
		ID      string `json:"id"`
		Failure string `json:"failure"`
		At      int64  `json:"at"`
	}
)

// jsonArray encodes the values of s, mapped by fn, as a JSON array ("[]" when empty, never null).
func jsonArray[S ~[]E, E, J any](s S, fn func(E) J) (string, error) {
	out := make([]J, len(s))
	for i, e := range s {
		out[i] = fn(e)
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func (e executor) DeleteBatchPastRetention(ctx context.Context, siteID, reference string, at time.Time) error {
	return e.q.DeleteBatchPastRetention(ctx, dbsqlc.DeleteBatchPastRetentionParams{SiteID: siteID, Reference: reference, At: billing.Millis(at)})
}

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

// InsertBatchRows inserts the rows as one JSON array, read with jsonb_each: one statement.
func (e executor) InsertBatchRows(ctx context.Context, batchID string, rows []billing.Row) error {
	js, err := jsonArray(rows, func(r billing.Row) rowJSON {
		return rowJSON{ID: r.ID, Idx: r.Index, Ref: r.Reference, Customer: r.CustomerReference, Amount: r.Amount}
	})
	if err != nil {
		return err
	}
	return mapErr(e.q.InsertBatchRows(ctx, dbsqlc.InsertBatchRowsParams{BatchID: batchID, Rows: js}))
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
	js, err := json.Marshal(refs)
	if err != nil {
		return nil, err
	}
	return e.q.LinkedCustomers(ctx, dbsqlc.LinkedCustomersParams{SiteID: siteID, Refs: string(js)})
}

func (e executor) StartBatch(ctx context.Context, batchID string) error {
	return e.q.StartBatch(ctx, batchID)
}

func (e executor) PendingRows(ctx context.Context, batchID string) ([]billing.PendingRow, error) {
	return many(pendingRow)(e.q.PendingRows(ctx, batchID))
}

func (e executor) MarkInProgress(ctx context.Context, rowIDs []string) error {
	ids, err := json.Marshal(rowIDs)
	if err != nil {
		return err
	}
	return e.q.MarkInProgress(ctx, string(ids))
}

func (e executor) InProgressRows(ctx context.Context, batchID string) ([]string, error) {
	return e.q.InProgressRows(ctx, batchID)
}

// recordOutcomes is written here, not in queries.sql, because sqlc's SQLite parser does not
// accept UPDATE ... FROM. outcomes is a JSON array of {"id", "failure", "at"}; an empty failure
// means succeeded. One statement for the lot: SQLite walks jsonb_each and finds each row by its
// primary key. Rows already terminal keep their outcome.
const recordOutcomes = `UPDATE batch_rows
SET state = CASE WHEN o.failure = '' THEN 'succeeded' ELSE 'failed' END,
    failure_reason = nullif(o.failure, ''),
    outcome_at = o.at
FROM (SELECT value ->> '$.id' AS id, value ->> '$.failure' AS failure, value ->> '$.at' AS at
      FROM jsonb_each(?)) AS o
WHERE batch_rows.id = o.id AND batch_rows.state IN ('pending', 'inProgress')`

func (e executor) RecordOutcomes(ctx context.Context, outcomes []billing.RowOutcome) error {
	js, err := jsonArray(outcomes, func(o billing.RowOutcome) outcomeJSON {
		return outcomeJSON{ID: o.RowID, Failure: string(o.Failure), At: billing.Millis(o.At)}
	})
	if err != nil {
		return err
	}
	_, err = e.db.ExecContext(ctx, recordOutcomes, js)
	return err
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
