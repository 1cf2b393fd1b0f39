package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite" // the SQLite driver the server uses

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/sqlite"
	"github.com/pyng/receivables/storage"
)

// baseline does each scenario's database work directly, through the server's driver for the
// engine, on a database of its own with the server's schema: the machine's limit for that work.
type baseline interface {
	// mint inserts one invited link, as one statement.
	mint(ctx context.Context, customerReference string) error
	// accept decodes a batch body and inserts the batch and its rows in one transaction by the
	// engine's bulk path, and returns the ids of the rows it inserted.
	accept(ctx context.Context, body []byte) (batchID string, rowIDs []string, err error)
	// recordOutcomes moves the rows to their outcomes with one set-based UPDATE.
	recordOutcomes(ctx context.Context, outcomes []outcome) error
	// readRows selects a batch's rows and returns how many it read.
	readRows(ctx context.Context, batchID string) (int, error)
	close()
}

// outcome is one row's terminal state for recordOutcomes; an empty failure is a success.
type outcome struct {
	ID      string `json:"id"`
	Failure string `json:"failure"`
	At      int64  `json:"at"`
}

// batchBody is a submission decoded plainly, as the baseline's decoding step.
type batchBody struct {
	BatchReference string `json:"batchReference"`
	Rows           []struct {
		RowReference      string `json:"rowReference"`
		CustomerReference string `json:"customerReference"`
		Amount            int64  `json:"amount"`
	} `json:"rows"`
}

// storedRow is a batch row as the read baseline scans it.
type storedRow struct {
	ID, BatchID, Reference, Customer, State string
	Index                                   int64
	Amount                                  int64
	Failure                                 *string
	OutcomeAt                               *int64
}

// newBatch decodes body and prepares the batch's and rows' values, as the server does before it
// writes them.
func newBatch(body []byte) (batchBody, string, []string, error) {
	var b batchBody
	if err := jsonv2.Unmarshal(body, &b); err != nil {
		return batchBody{}, "", nil, fmt.Errorf("decode: %w", err)
	}
	ids := make([]string, len(b.Rows))
	for i := range ids {
		ids[i] = billing.NewID("row")
	}
	return b, billing.NewID("bat"), ids, nil
}

func (b batchBody) total() int64 {
	var t int64
	for _, r := range b.Rows {
		t += r.Amount
	}
	return t
}

// migrate gives a baseline database the server's schema, by the server's own migrations.
func migrate(ctx context.Context, url string) error {
	db, err := storage.Open(ctx, url)
	if err != nil {
		return fmt.Errorf("migrate baseline database: %w", err)
	}
	return db.Close()
}

// pgBaseline is the baseline on PostgreSQL, through pgx with a pool the size of the server's.
type pgBaseline struct {
	pool   *pgxpool.Pool
	siteID string
}

func openPGBaseline(ctx context.Context, url string) (*pgBaseline, error) {
	if err := migrate(ctx, url); err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	b := &pgBaseline{pool: pool, siteID: billing.NewID("site")}
	org, now := billing.NewID("org"), time.Now().UnixMilli()
	if _, err := pool.Exec(ctx, insertOrganisationPG, org, now); err != nil {
		pool.Close()
		return nil, err
	}
	if _, err := pool.Exec(ctx, insertSitePG, b.siteID, org, now); err != nil {
		pool.Close()
		return nil, err
	}
	return b, nil
}

func (b *pgBaseline) close() { b.pool.Close() }

func (b *pgBaseline) mint(ctx context.Context, ref string) error {
	now := time.Now()
	_, err := b.pool.Exec(ctx, insertLinkPG, billing.NewID("lnk"), b.siteID, ref, now.UnixMilli(), now.Add(168*time.Hour).UnixMilli())
	return err
}

var batchRowColumns = []string{"id", "batch_id", "idx", "row_reference", "customer_reference", "amount", "state"}

func (b *pgBaseline) accept(ctx context.Context, body []byte) (string, []string, error) {
	req, batchID, ids, err := newBatch(body)
	if err != nil {
		return "", nil, err
	}
	now := time.Now()
	err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, insertBatchPG, batchID, b.siteID, req.BatchReference, len(req.Rows), req.total(),
			now.UnixMilli(), now.Add(billing.RowDeadline).UnixMilli(), now.Add(billing.BatchRetention).UnixMilli()); err != nil {
			return err
		}
		i := 0
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"batch_rows"}, batchRowColumns, pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(req.Rows) {
				return nil, nil
			}
			r := req.Rows[i]
			values := []any{ids[i], batchID, int32(i), r.RowReference, r.CustomerReference, r.Amount, "pending"}
			i++
			return values, nil
		}))
		return err
	})
	return batchID, ids, err
}

func (b *pgBaseline) recordOutcomes(ctx context.Context, outcomes []outcome) error {
	ids, failures, ats := make([]string, len(outcomes)), make([]string, len(outcomes)), make([]int64, len(outcomes))
	for i, o := range outcomes {
		ids[i], failures[i], ats[i] = o.ID, o.Failure, o.At
	}
	return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, recordOutcomesPG, ids, failures, ats)
		return err
	})
}

func (b *pgBaseline) readRows(ctx context.Context, batchID string) (int, error) {
	rows, err := b.pool.Query(ctx, batchRowsPG, batchID)
	if err != nil {
		return 0, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storedRow, error) {
		var r storedRow
		err := row.Scan(&r.ID, &r.BatchID, &r.Index, &r.Reference, &r.Customer, &r.Amount, &r.State, &r.Failure, &r.OutcomeAt)
		return r, err
	})
	return len(out), err
}

// sqliteBaseline is the baseline on SQLite, through modernc.org/sqlite with sqlite.Open's DSN
// (sqlite.DSN: WAL, synchronous FULL, busy_timeout, immediate transactions, foreign keys, the
// page cache and in-memory temporary storage) and one connection.
type sqliteBaseline struct {
	db     *sql.DB
	siteID string
}

func openSQLiteBaseline(ctx context.Context, path string) (*sqliteBaseline, error) {
	if err := migrate(ctx, "sqlite:"+path); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", sqlite.DSN(path))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	b := &sqliteBaseline{db: db, siteID: billing.NewID("site")}
	org, now := billing.NewID("org"), time.Now().UnixMilli()
	_, err = db.ExecContext(ctx, insertOrganisationSQLite, org, now)
	if err == nil {
		_, err = db.ExecContext(ctx, insertSiteSQLite, b.siteID, org, now)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return b, nil
}

func (b *sqliteBaseline) close() { b.db.Close() }

func (b *sqliteBaseline) mint(ctx context.Context, ref string) error {
	now := time.Now()
	_, err := b.db.ExecContext(ctx, insertLinkSQLite, billing.NewID("lnk"), b.siteID, ref, now.UnixMilli(), now.Add(168*time.Hour).UnixMilli())
	return err
}

// sqliteRow is a row in the JSON array of insertBatchRowsSQLite.
type sqliteRow struct {
	ID       string `json:"id"`
	Idx      int    `json:"idx"`
	Ref      string `json:"ref"`
	Customer string `json:"customer"`
	Amount   int64  `json:"amount"`
}

func (b *sqliteBaseline) accept(ctx context.Context, body []byte) (string, []string, error) {
	req, batchID, ids, err := newBatch(body)
	if err != nil {
		return "", nil, err
	}
	rows := make([]sqliteRow, len(req.Rows))
	for i, r := range req.Rows {
		rows[i] = sqliteRow{ID: ids[i], Idx: i, Ref: r.RowReference, Customer: r.CustomerReference, Amount: r.Amount}
	}
	rowsJSON, err := json.Marshal(rows)
	if err != nil {
		return "", nil, err
	}
	now := time.Now()
	err = sqliteTx(ctx, b.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, insertBatchSQLite, batchID, b.siteID, req.BatchReference, len(req.Rows), req.total(),
			now.UnixMilli(), now.Add(billing.RowDeadline).UnixMilli(), now.Add(billing.BatchRetention).UnixMilli()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, insertBatchRowsSQLite, batchID, string(rowsJSON))
		return err
	})
	return batchID, ids, err
}

func (b *sqliteBaseline) recordOutcomes(ctx context.Context, outcomes []outcome) error {
	js, err := json.Marshal(outcomes)
	if err != nil {
		return err
	}
	return sqliteTx(ctx, b.db, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, recordOutcomesSQLite, string(js))
		return err
	})
}

func (b *sqliteBaseline) readRows(ctx context.Context, batchID string) (int, error) {
	rows, err := b.db.QueryContext(ctx, batchRowsSQLite, batchID)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var out []storedRow
	for rows.Next() {
		var r storedRow
		if err := rows.Scan(&r.ID, &r.BatchID, &r.Index, &r.Reference, &r.Customer, &r.Amount, &r.State, &r.Failure, &r.OutcomeAt); err != nil {
			return 0, err
		}
		out = append(out, r)
	}
	return len(out), rows.Err()
}

func sqliteTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}
