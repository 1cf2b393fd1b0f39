package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/jobs"
	"github.com/pyng/receivables/postgres/internal/dbsqlc"
)

var _ billing.BatchStore = (*Store)(nil)

// CreateBatch runs at READ COMMITTED whatever the server's default: when a concurrent
// transaction is inserting the same (site, reference), the insert waits for it to end and then
// does nothing, and the next statement's fresh snapshot sees the batch it committed.
func (s *Store) CreateBatch(ctx context.Context, b billing.Batch, rows []billing.Row) (stored billing.Batch, created bool, err error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return billing.Batch{}, false, err
	}
	defer tx.Rollback(ctx) // a no-op once committed; undoes nothing when the batch existed
	q := s.q.WithTx(tx)
	if err := q.DeleteBatchPastRetention(ctx, dbsqlc.DeleteBatchPastRetentionParams{
		SiteID:    b.SiteID,
		Reference: b.Reference,
		At:        billing.Millis(b.SubmittedAt),
	}); err != nil {
		return billing.Batch{}, false, fmt.Errorf("delete batch past retention: %w", err)
	}
	r, err := q.InsertBatch(ctx, dbsqlc.InsertBatchParams{
		ID:          b.ID,
		SiteID:      b.SiteID,
		Reference:   b.Reference,
		Fingerprint: b.Fingerprint,
		State:       string(b.State),
		RowCount:    int32(b.RowCount),
		TotalAmount: b.TotalAmount,
		SubmittedAt: billing.Millis(b.SubmittedAt),
		CompletedAt: nullMillis(b.CompletedAt),
		DeadlineAt:  billing.Millis(b.Deadline),
		RetainUntil: billing.Millis(b.RetainUntil),
	})
	if errors.Is(err, pgx.ErrNoRows) {
		existing, err := q.GetBatch(ctx, dbsqlc.GetBatchParams{SiteID: b.SiteID, Reference: b.Reference})
		if err != nil {
			return billing.Batch{}, false, fmt.Errorf("get the batch holding the reference: %w", mapErr(err))
		}
		return batch(existing), false, nil
	}
	if err != nil {
		return billing.Batch{}, false, fmt.Errorf("insert batch: %w", mapErr(err))
	}
	params := make([]dbsqlc.InsertBatchRowsParams, len(rows))
	for i, row := range rows {
		params[i] = dbsqlc.InsertBatchRowsParams{
			ID:                row.ID,
			BatchID:           b.ID,
			Idx:               int32(row.Index),
			RowReference:      row.Reference,
			CustomerReference: row.CustomerReference,
			Amount:            row.Amount,
			State:             string(billing.RowPending),
		}
	}
	if _, err := q.InsertBatchRows(ctx, params); err != nil {
		return billing.Batch{}, false, fmt.Errorf("insert batch rows: %w", mapErr(err))
	}
	if _, err := s.inserter.InsertTx(ctx, tx, jobs.ExecuteBatch{BatchID: b.ID}, nil); err != nil {
		return billing.Batch{}, false, fmt.Errorf("enqueue batch execution: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return billing.Batch{}, false, err
	}
	return batch(r), true, nil
}

func (s *Store) GetBatch(ctx context.Context, siteID, reference string) (billing.Batch, error) {
	r, err := s.q.GetBatch(ctx, dbsqlc.GetBatchParams{SiteID: siteID, Reference: reference})
	if err != nil {
		return billing.Batch{}, mapErr(err)
	}
	return batch(r), nil
}

func (s *Store) GetBatchByID(ctx context.Context, id string) (billing.Batch, error) {
	r, err := s.q.GetBatchByID(ctx, id)
	if err != nil {
		return billing.Batch{}, mapErr(err)
	}
	return batch(r), nil
}

func (s *Store) BatchRows(ctx context.Context, batchID string, state billing.RowState) ([]billing.Row, error) {
	var (
		rs  []dbsqlc.BatchRow
		err error
	)
	if state == "" {
		rs, err = s.q.BatchRows(ctx, batchID)
	} else {
		rs, err = s.q.BatchRowsInState(ctx, dbsqlc.BatchRowsInStateParams{BatchID: batchID, State: string(state)})
	}
	if err != nil {
		return nil, err
	}
	rows := make([]billing.Row, len(rs))
	for i, r := range rs {
		rows[i] = row(r)
	}
	return rows, nil
}

func (s *Store) BatchSummary(ctx context.Context, batchID string) (billing.BatchSummary, error) {
	rs, err := s.q.BatchSummary(ctx, batchID)
	if err != nil {
		return nil, err
	}
	summary := billing.BatchSummary{}
	for _, r := range rs {
		summary[billing.RowState(r.State)] = billing.StateTotal{Count: int(r.RowCount), Amount: r.Amount}
	}
	return summary, nil
}

func (s *Store) ListBatches(ctx context.Context, siteID string, f billing.BatchFilter) ([]billing.Batch, error) {
	var (
		rs  []dbsqlc.Batch
		err error
		lim = int32(min(max(f.Limit, 0), 1<<31-1))
	)
	if f.AfterID == "" && f.AfterSubmittedAt.IsZero() {
		rs, err = s.q.ListBatches(ctx, dbsqlc.ListBatchesParams{SiteID: siteID, Lim: lim})
	} else {
		rs, err = s.q.ListBatchesAfter(ctx, dbsqlc.ListBatchesAfterParams{
			SiteID:           siteID,
			AfterSubmittedAt: billing.Millis(f.AfterSubmittedAt),
			AfterID:          f.AfterID,
			Lim:              lim,
		})
	}
	if err != nil {
		return nil, err
	}
	batches := make([]billing.Batch, len(rs))
	for i, r := range rs {
		batches[i] = batch(r)
	}
	return batches, nil
}

func (s *Store) StartBatch(ctx context.Context, batchID string, _ time.Time) error {
	return s.q.StartBatch(ctx, batchID)
}

func (s *Store) PendingRows(ctx context.Context, batchID string) ([]billing.PendingRow, error) {
	rs, err := s.q.PendingRows(ctx, batchID)
	if err != nil {
		return nil, err
	}
	pending := make([]billing.PendingRow, len(rs))
	for i, r := range rs {
		pending[i] = billing.PendingRow{
			Row: row(dbsqlc.BatchRow{
				ID:                r.ID,
				BatchID:           r.BatchID,
				Idx:               r.Idx,
				RowReference:      r.RowReference,
				CustomerReference: r.CustomerReference,
				Amount:            r.Amount,
				State:             r.State,
				FailureReason:     r.FailureReason,
				OutcomeAt:         r.OutcomeAt,
			}),
			Linked: r.Linked,
			Customer: billing.Customer{
				Name:          deref(r.CustomerName),
				Email:         deref(r.CustomerEmail),
				BSB:           deref(r.CustomerBsb),
				AccountNumber: deref(r.CustomerAccountNumber),
			},
		}
	}
	return pending, nil
}

func (s *Store) MarkInProgress(ctx context.Context, rowIDs []string) error {
	if len(rowIDs) == 0 {
		return nil
	}
	return s.q.MarkInProgress(ctx, rowIDs)
}

func (s *Store) InProgressRows(ctx context.Context, batchID string) ([]string, error) {
	return s.q.InProgressRows(ctx, batchID)
}

func (s *Store) RecordOutcomes(ctx context.Context, outcomes []billing.RowOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	p := dbsqlc.RecordOutcomesParams{
		Ids:      make([]string, len(outcomes)),
		Failures: make([]string, len(outcomes)),
		Ats:      make([]int64, len(outcomes)),
	}
	for i, o := range outcomes {
		p.Ids[i], p.Failures[i], p.Ats[i] = o.RowID, string(o.Failure), billing.Millis(o.At)
	}
	return s.q.RecordOutcomes(ctx, p)
}

func (s *Store) CompleteBatch(ctx context.Context, batchID string, at time.Time) (bool, error) {
	if err := s.q.CompleteBatch(ctx, dbsqlc.CompleteBatchParams{ID: batchID, At: billing.Millis(at)}); err != nil {
		return false, err
	}
	r, err := s.q.GetBatchByID(ctx, batchID)
	if err != nil {
		return false, mapErr(err)
	}
	return r.State == string(billing.BatchCompleted), nil
}

func (s *Store) ExpireOverdueRows(ctx context.Context, now time.Time) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx) // a no-op once committed
	q := s.q.WithTx(tx)
	n, err := q.ExpireOverdueRows(ctx, billing.Millis(now))
	if err != nil {
		return 0, fmt.Errorf("expire rows: %w", err)
	}
	if err := q.CompleteOverdueBatches(ctx, billing.Millis(now)); err != nil {
		return 0, fmt.Errorf("complete batches: %w", err)
	}
	return int(n), tx.Commit(ctx)
}

func (s *Store) LinkedCustomers(ctx context.Context, siteID string, customerReferences []string) (map[string]bool, error) {
	linked, err := s.q.LinkedCustomers(ctx, dbsqlc.LinkedCustomersParams{SiteID: siteID, Refs: customerReferences})
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(linked))
	for _, ref := range linked {
		out[ref] = true
	}
	return out, nil
}

func (s *Store) ExpireBatch(ctx context.Context, batchID string, at time.Time) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx) // a no-op once committed
	q := s.q.WithTx(tx)
	n, err := q.ExpireBatchRows(ctx, dbsqlc.ExpireBatchRowsParams{At: billing.Millis(at), BatchID: batchID})
	if err != nil {
		return 0, fmt.Errorf("expire rows: %w", err)
	}
	if err := q.CompleteExpiredBatch(ctx, dbsqlc.CompleteExpiredBatchParams{At: billing.Millis(at), BatchID: batchID}); err != nil {
		return 0, fmt.Errorf("complete batch: %w", err)
	}
	return int(n), tx.Commit(ctx)
}

func (s *Store) PurgeBatches(ctx context.Context, now time.Time) (int, error) {
	n, err := s.q.PurgeBatches(ctx, billing.Millis(now))
	return int(n), err
}

func batch(r dbsqlc.Batch) billing.Batch {
	return billing.Batch{
		ID:          r.ID,
		SiteID:      r.SiteID,
		Reference:   r.Reference,
		Fingerprint: r.Fingerprint,
		State:       billing.BatchState(r.State),
		RowCount:    int(r.RowCount),
		TotalAmount: r.TotalAmount,
		SubmittedAt: billing.FromMillis(r.SubmittedAt),
		CompletedAt: fromNullMillis(r.CompletedAt),
		Deadline:    billing.FromMillis(r.DeadlineAt),
		RetainUntil: billing.FromMillis(r.RetainUntil),
	}
}

func row(r dbsqlc.BatchRow) billing.Row {
	return billing.Row{
		ID:                r.ID,
		BatchID:           r.BatchID,
		Index:             int(r.Idx),
		Reference:         r.RowReference,
		CustomerReference: r.CustomerReference,
		Amount:            r.Amount,
		State:             billing.RowState(r.State),
		FailureReason:     billing.FailureReason(deref(r.FailureReason)),
		OutcomeAt:         fromNullMillis(r.OutcomeAt),
	}
}
