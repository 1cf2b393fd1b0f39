// The executor's methods whose statements differ per engine: the bulk paths. The others, the same
// on both engines, are in executor.go.

package sqlite

import (
	"context"
	"encoding/json"

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
		File    string `json:"file"`
	}
	progressJSON struct {
		ID   string `json:"id"`
		File string `json:"file"`
	}
	returnJSON struct {
		ID        string `json:"id"`
		Reason    string `json:"reason"`
		Retryable bool   `json:"retryable"`
		At        int64  `json:"at"`
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

func (e executor) LinkedCustomers(ctx context.Context, siteID string, refs []string) ([]driver.LinkedCustomerRecord, error) {
	js, err := json.Marshal(refs)
	if err != nil {
		return nil, err
	}
	return many(linkedCustomer)(e.q.LinkedCustomers(ctx, dbsqlc.LinkedCustomersParams{SiteID: siteID, Refs: string(js)}))
}

// markInProgress, like recordOutcomes, is an UPDATE ... FROM: rows is a JSON array of {"id",
// "file"}; an empty file leaves the row's as it is.
const markInProgress = `UPDATE batch_rows
SET state = 'inProgress', file_id = coalesce(nullif(p.file, ''), batch_rows.file_id)
FROM (SELECT value ->> '$.id' AS id, value ->> '$.file' AS file FROM jsonb_each(?)) AS p
WHERE batch_rows.id = p.id AND batch_rows.state = 'pending'`

func (e executor) MarkInProgress(ctx context.Context, rows []billing.RowProgress) error {
	js, err := jsonArray(rows, func(r billing.RowProgress) progressJSON { return progressJSON{ID: r.RowID, File: r.FileID} })
	if err != nil {
		return err
	}
	_, err = e.exec(ctx, markInProgress, js)
	return err
}

// returnRows records returns, given as a JSON array of {"id", "reason", "retryable", "at"}, of
// the rows that are succeeded and not returned yet, and gives those rows as they now stand, their
// columns in the order of dbsqlc.BatchRow's fields (reading them again by id would cost as much
// as the update).
const returnRows = `UPDATE batch_rows
SET returned_at = o.at, return_reason = o.reason, return_retryable = o.retryable
FROM (SELECT value ->> '$.id' AS id, value ->> '$.reason' AS reason, value ->> '$.retryable' AS retryable,
             value ->> '$.at' AS at
      FROM jsonb_each(?)) AS o
WHERE batch_rows.id = o.id AND batch_rows.state = 'succeeded' AND batch_rows.returned_at IS NULL
RETURNING id, batch_id, idx, row_reference, customer_reference, amount, state, failure_reason, outcome_at, file_id,
          returned_at, return_reason, return_retryable`

func (e executor) ReturnRows(ctx context.Context, returns []billing.RowReturn) ([]billing.Row, error) {
	js, err := jsonArray(returns, func(r billing.RowReturn) returnJSON {
		return returnJSON{ID: r.RowID, Reason: string(r.Reason), Retryable: r.Retryable, At: billing.Millis(r.At)}
	})
	if err != nil {
		return nil, err
	}
	rs, err := e.query(ctx, returnRows, js)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	rows := make([]billing.Row, 0, len(returns))
	for rs.Next() {
		var r dbsqlc.BatchRow
		if err := rs.Scan(&r.ID, &r.BatchID, &r.Idx, &r.RowReference, &r.CustomerReference, &r.Amount, &r.State,
			&r.FailureReason, &r.OutcomeAt, &r.FileID, &r.ReturnedAt, &r.ReturnReason, &r.ReturnRetryable); err != nil {
			return nil, err
		}
		rows = append(rows, row(r))
	}
	return rows, rs.Err()
}

func (e executor) RowsByID(ctx context.Context, ids []string) ([]billing.Row, error) {
	js, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	return many(row)(e.q.RowsByID(ctx, string(js)))
}

// recordOutcomes is written here, not in queries.sql, because sqlc's SQLite parser does not
// accept UPDATE ... FROM. outcomes is a JSON array of {"id", "failure", "at"}; an empty failure
// means succeeded. One statement for the lot: SQLite walks jsonb_each and finds each row by its
// primary key. Rows already terminal keep their outcome.
const recordOutcomes = `UPDATE batch_rows
SET state = CASE WHEN o.failure = '' THEN 'succeeded' ELSE 'failed' END,
    failure_reason = nullif(o.failure, ''),
    outcome_at = o.at,
    file_id = coalesce(nullif(o.file, ''), batch_rows.file_id)
FROM (SELECT value ->> '$.id' AS id, value ->> '$.failure' AS failure, value ->> '$.at' AS at,
             value ->> '$.file' AS file
      FROM jsonb_each(?)) AS o
WHERE batch_rows.id = o.id AND batch_rows.state IN ('pending', 'inProgress')`

func (e executor) RecordOutcomes(ctx context.Context, outcomes []billing.RowOutcome) error {
	js, err := jsonArray(outcomes, func(o billing.RowOutcome) outcomeJSON {
		return outcomeJSON{ID: o.RowID, Failure: string(o.Failure), At: billing.Millis(o.At), File: o.FileID}
	})
	if err != nil {
		return err
	}
	_, err = e.exec(ctx, recordOutcomes, js)
	return err
}

func (e executor) PendingRows(ctx context.Context, batchID string) ([]billing.PendingRow, error) {
	return many(pendingRow)(e.q.PendingRows(ctx, batchID))
}
