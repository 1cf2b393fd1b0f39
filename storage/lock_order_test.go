package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/storage"
)

// On PostgreSQL every statement that moves many rows of batches locks their batches first, in the
// order of their ids: two transactions moving some of the same rows (a step recording its outcomes
// while the deadline sweep expires the batch, say) then take turns, where locking the rows in the
// orders of their plans, each would wait for a row the other holds, and one would fail,
// deadlocked. Here another transaction holds the batch: the statement waits for it holding none of
// the batch's rows.
func TestStatementsThatMoveABatchsRowsLockTheBatchFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.PostgresDatabaseURL(t)
	db := dbtest.OpenURL(t, dbURL, storage.WithKeyring(dbtest.Keyring()))
	clock := clocktest.New()
	service, _ := apptest.ServiceOver(t, db, apptest.ServiceOptions{Clock: clock})
	site := apptest.NewSite(t, service, "Acme")
	apptest.LinkedCustomer(t, service, site, "C1")
	conn := connect(t, dbURL)

	cases := []struct {
		name    string
		overdue bool // the clock is moved past the batch's deadline first
		move    func(b billing.Batch, rows []string) error
	}{
		{"a step marking rows in progress", false, func(_ billing.Batch, rows []string) error {
			progress := make([]billing.RowProgress, len(rows))
			for i, id := range rows {
				progress[i] = billing.RowProgress{RowID: id}
			}
			return db.MarkInProgress(ctx, progress)
		}},
		{"a step recording outcomes", false, func(_ billing.Batch, rows []string) error {
			outcomes := make([]billing.RowOutcome, len(rows))
			for i, id := range rows {
				outcomes[i] = billing.RowOutcome{RowID: id, At: clock.Now()}
			}
			return db.RecordOutcomes(ctx, outcomes)
		}},
		{"a step after the batch's deadline", true, func(b billing.Batch, _ []string) error {
			_, _, err := service.ExecuteBatch(ctx, b.ID)
			return err
		}},
		{"the deadline sweep", true, func(billing.Batch, []string) error {
			_, err := service.ExpireOverdue(ctx)
			return err
		}},
	}
	for i, c := range cases { // one after the other: they move the one clock
		t.Run(c.name, func(t *testing.T) {
			rows := make([]billing.RowRequest, 8)
			for j := range rows {
				rows[j] = billing.RowRequest{Reference: fmt.Sprintf("R%d", j), CustomerReference: "C1", Amount: 100}
			}
			b := apptest.SubmitBatch(t, service, site, fmt.Sprintf("B%d", i), rows...)
			ids := queryIDs(t, conn, `SELECT id FROM batch_rows WHERE batch_id = $1`, b.ID)
			if c.overdue {
				clock.Advance(billing.RowDeadline + time.Minute)
			}
			holder, err := connect(t, dbURL).Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Rollback(ctx)
			if _, err := holder.Exec(ctx, `SELECT id FROM batches WHERE id = $1 FOR NO KEY UPDATE`, b.ID); err != nil {
				t.Fatal(err)
			}
			moved := make(chan error, 1)
			go func() { moved <- c.move(b, ids) }()
			awaitALockWait(t, conn)

			var free []string // the rows the statement has not locked
			if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				free = queryIDs(t, tx, `SELECT id FROM batch_rows WHERE batch_id = $1 FOR UPDATE SKIP LOCKED`, b.ID)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(free) != len(ids) {
				t.Errorf("waiting for its batch, the statement held %d of its %d rows; want none", len(ids)-len(free), len(ids))
			}
			if err := holder.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-moved; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// queryIDs returns the ids the query selects.
func queryIDs(t *testing.T, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, query string, args ...any) []string {
	t.Helper()
	rs, err := q.Query(context.Background(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rs, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// awaitALockWait waits until a session of the database waits for a lock.
func awaitALockWait(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var waiting int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
	}
	t.Fatal("no session waited for a lock within 10s")
}
