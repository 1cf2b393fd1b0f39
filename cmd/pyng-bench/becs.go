package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/becs/aba"
	"github.com/pyng/receivables/seal"
	"github.com/pyng/receivables/storage"
)

// The becs scenario's bounds: becsSites sites, each with becsBatchesPerSite batches of
// batchRows rows, cut into one file per site; the returns file returns every debit of one file.
const (
	becsSites          = 10
	becsBatchesPerSite = 10
	becsReturns        = becsBatchesPerSite * batchRows
	// becsReturnRuns is how many returns files of becsReturns items are imported, each of another
	// file's debits, each import followed by the baseline's UPDATE of as many rows: a single
	// import against a single UPDATE of a few tenths of a second gave ratios from 0.10 to 0.26 on
	// one build, as the machine's load came and went.
	becsReturnRuns = 3
)

// becs is scenario 7, the BECS rail's work, which the server does in its jobs and operator
// commands rather than behind the API: so it runs in the bench process, through the rail's and
// the billing service's own code, on a database of its own of the engine. (a) Cutting files:
// 100 batches of 1000 rows, of 10 sites, submitted and executed (their debits queued, not
// measured), then cut into 10 files of 10,000 debits, stored sealed with their checksums; rows
// per second of the cut, against the execute scenario's baseline (the set-based UPDATE of 1000
// rows to their outcomes, 50 times), in the same run. (b) Once every file is lodged, importing
// returns files of 10,000 items (every debit of one file; becsReturnRuns of them, of as many
// files): matched by lodgement reference, each row returned with its debit.returned event; rows
// per second over the imports against a set-based UPDATE that records 10,000 returns on the
// baseline's rows, run after each import.
func (b *bench) becs(ctx context.Context) ([]row, error) {
	db, cleanup, err := b.becsDatabase(ctx)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	defer db.Close()
	clock := billing.SystemClock{}
	service, rails, err := app.NewService(ctx, db, clock, app.ServiceSettings{Sandbox: true})
	if err != nil {
		return nil, err
	}
	r := rails.BECS
	loc, err := time.LoadLocation("Australia/Sydney")
	if err != nil {
		return nil, err
	}
	if err := queueBECSDebits(ctx, service, r); err != nil {
		return nil, fmt.Errorf("queue debits: %w", err)
	}

	// (a) The cut.
	var files []becs.File
	cut, err := as(ctx, roleClient, func(ctx context.Context) (measure, error) {
		var d time.Duration
		var err error
		d, err = timed(func() error {
			files, err = r.Cut(ctx, becs.Calendar{Location: loc})
			return err
		})
		return measure{ops: 1, elapsed: d, latencies: []time.Duration{d}}, err
	})
	if err != nil {
		return nil, fmt.Errorf("cut: %w", err)
	}
	cutRows := 0
	for _, f := range files {
		cutRows += f.Rows
	}
	if len(files) != becsSites || cutRows != becsSites*becsBatchesPerSite*batchRows {
		return nil, fmt.Errorf("the cut made %d files of %d debits; want %d of %d", len(files), cutRows, becsSites, becsSites*becsBatchesPerSite*batchRows)
	}
	base, err := as(ctx, roleBaseline, func(ctx context.Context) (measure, error) {
		return b.executeBatchesOnBaseline(ctx, func(i int) string { return fmt.Sprintf("BECS-X-%d", i) })
	})
	if err != nil {
		return nil, err
	}
	rows := []row{newRow(fmt.Sprintf("becs cut %d×%d", becsSites*becsBatchesPerSite, batchRows), "rows/s",
		float64(cutRows)/cut.elapsed.Seconds(), float64(base.ops*batchRows)/base.elapsed.Seconds(), cut, base,
		&target{AtLeast: true, Value: 0.25})}

	// (b) The import of a returns file of every debit of the first file, once all are lodged.
	for _, f := range files {
		if _, err := r.Lodge(ctx, f.ID); err != nil {
			return rows, err
		}
		keys, err := r.Keys(ctx, f.ID)
		if err != nil {
			return rows, err
		}
		if _, err := service.RecordRailOutcomes(ctx, rail.BECS, keys); err != nil {
			return rows, err
		}
	}
	var imported, baseImport measure
	for run := range becsReturnRuns {
		m, err := importReturns(ctx, r, service, clock, files[run].ID)
		if err != nil {
			return rows, fmt.Errorf("import returns: %w", err)
		}
		imported = imported.add(m)
		m, err = as(ctx, roleBaseline, func(ctx context.Context) (measure, error) { return b.returnsOnBaseline(ctx, run) })
		if err != nil {
			return rows, err
		}
		baseImport = baseImport.add(m)
	}
	returned := float64(becsReturnRuns * becsReturns)
	return append(rows, newRow(fmt.Sprintf("becs returns %d", becsReturns), "rows/s",
		returned/imported.elapsed.Seconds(), returned/baseImport.elapsed.Seconds(), imported, baseImport,
		&target{AtLeast: true, Value: 0.25})), nil
}

// importReturns imports a returns file of every debit of the lodged file, and measures the import.
func importReturns(ctx context.Context, r *becs.Rail, service *billing.Service, clock billing.Clock, fileID string) (measure, error) {
	content, err := r.Content(ctx, fileID)
	if err != nil {
		return measure{}, err
	}
	keys, err := r.Keys(ctx, fileID)
	if err != nil {
		return measure{}, err
	}
	reasons := make(map[string]aba.ReturnReason, len(keys))
	for i, k := range keys {
		reasons[becs.LodgementReference(k)] = []aba.ReturnReason{aba.ReturnAccountClosed, aba.ReturnPaymentStopped, aba.ReturnReferToCustomer}[i%3]
	}
	returns, err := becs.ReturnsOf(content, reasons, time.Now())
	if err != nil {
		return measure{}, err
	}
	return as(ctx, roleClient, func(ctx context.Context) (measure, error) {
		var report app.BECSReturnsReport
		d, err := timed(func() error {
			var err error
			report, err = app.ImportBECSReturns(ctx, r, service, clock, returns)
			return err
		})
		if err == nil && (report.Items != becsReturns || report.Returned != becsReturns) {
			err = fmt.Errorf("the import returned %d rows of %d items; want %d", report.Returned, report.Items, becsReturns)
		}
		return measure{ops: 1, elapsed: d, latencies: []time.Duration{d}}, err
	})
}

// becsDatabase is a fresh database of the bench's engine for the becs scenario, with a key ring,
// and what removes it.
func (b *bench) becsDatabase(ctx context.Context) (storage.Database, func(), error) {
	ring, err := seal.Parse(benchKeyRing())
	if err != nil {
		return nil, nil, err
	}
	if b.engine == "sqlite" {
		dir, err := os.MkdirTemp("", "pyng-bench-becs-")
		if err != nil {
			return nil, nil, err
		}
		db, err := storage.Open(ctx, "sqlite:"+filepath.Join(dir, "becs.db"), storage.WithKeyring(ring))
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, err
		}
		return db, func() { os.RemoveAll(dir) }, nil
	}
	schema := "pyngbench_becs_" + strings.ToLower(billing.RandomToken(5))
	exec := func(ctx context.Context, statement string) error {
		conn, err := pgx.Connect(ctx, b.opts.postgresURL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, statement)
		return err
	}
	if err := exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return nil, nil, err
	}
	cleanup := func() {
		if err := exec(context.WithoutCancel(ctx), "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "drop schema %s: %v\n", schema, err)
		}
	}
	url, err := withSearchPath(b.opts.postgresURL, schema)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	db, err := storage.Open(ctx, url, storage.WithKeyring(ring))
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return db, cleanup, nil
}

// queueBECSDebits puts becsSites sites on the BECS rail, each with ten linked customers, and
// submits and executes becsBatchesPerSite batches of batchRows rows of each: their debits wait in
// the rail for the cut.
func queueBECSDebits(ctx context.Context, service *billing.Service, r *becs.Rail) error {
	user := aba.DebitUser{UserID: "123456", UserName: "BENCH PTY LTD", Institution: "CBA", Description: "RECEIVABLES",
		TraceBSB: "062-000", TraceAccount: "87654321", Remitter: "BENCH"}
	for s := range becsSites {
		org, err := service.CreateOrganisation(ctx, fmt.Sprintf("BECS bench %d", s))
		if err != nil {
			return err
		}
		site, err := service.CreateSite(ctx, org.ID, fmt.Sprintf("BECS bench %d", s))
		if err != nil {
			return err
		}
		if _, err := r.SetUser(ctx, site.ID, user); err != nil {
			return err
		}
		legalName, email := "Bench Pty Ltd", "accounts@bench.example"
		if _, err := service.UpdateSite(ctx, site.ID, billing.SiteUpdate{LegalName: &legalName, Email: &email}); err != nil {
			return err
		}
		if site, err = service.SetSiteRail(ctx, site.ID, rail.BECS); err != nil {
			return err
		}
		customers := make([]string, 10)
		for c := range customers {
			customers[c] = fmt.Sprintf("C%02d", c)
			if _, err := service.Invite(ctx, site, customers[c]); err != nil {
				return err
			}
			if _, err := service.SimulateSignup(ctx, site, customers[c]); err != nil {
				return err
			}
		}
		for i := range becsBatchesPerSite {
			rows := make([]billing.RowRequest, batchRows)
			for j := range rows {
				rows[j] = billing.RowRequest{Reference: fmt.Sprintf("R%d", j), CustomerReference: customers[j%len(customers)], Amount: int64(1000 + j)}
			}
			batch, _, err := service.SubmitBatch(ctx, site, billing.BatchRequest{Reference: fmt.Sprintf("B%d", i), Rows: rows})
			if err != nil {
				return err
			}
			if _, _, err := service.ExecuteBatch(ctx, batch.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// The returns baseline's statements: one set-based UPDATE that records the returns of succeeded
// rows, zipping the rows' ids and reasons, as the store's ReturnRows records them.
const (
	returnRowsPG = `UPDATE batch_rows AS r SET returned_at = $3, return_reason = o.reason, return_retryable = FALSE
FROM (SELECT unnest($1::text[]) AS id, unnest($2::text[]) AS reason) AS o
WHERE r.id = o.id AND r.state = 'succeeded' AND r.returned_at IS NULL`
	returnRowsSQLite = `UPDATE batch_rows SET returned_at = ?2, return_reason = json_extract(o.value, '$.reason'), return_retryable = FALSE
FROM jsonb_each(?1) AS o
WHERE batch_rows.id = json_extract(o.value, '$.id') AND batch_rows.state = 'succeeded' AND batch_rows.returned_at IS NULL`
)

// returnsOnBaseline inserts becsReturns rows on the baseline database and moves them to succeeded
// (not measured), then records the return of every one with one UPDATE in a transaction.
func (b *bench) returnsOnBaseline(ctx context.Context, run int) (measure, error) {
	type item struct {
		ID     string `json:"id"`
		Reason string `json:"reason"`
	}
	var items []item
	for i := range becsBatchesPerSite {
		_, ids, err := b.base.accept(ctx, batchJSON(fmt.Sprintf("BECS-R-%d-%d", run, i), batchRows, b.customers))
		if err != nil {
			return measure{}, err
		}
		outcomes := make([]outcome, len(ids))
		for j, id := range ids {
			outcomes[j] = outcome{ID: id, At: time.Now().UnixMilli()}
			items = append(items, item{ID: id, Reason: []string{"accountClosed", "paymentStopped", "referToCustomer"}[j%3]})
		}
		if err := b.base.recordOutcomes(ctx, outcomes); err != nil {
			return measure{}, err
		}
	}
	at := time.Now().UnixMilli()
	var n int64
	d, err := timed(func() error {
		switch base := b.base.(type) {
		case *pgBaseline:
			ids, reasons := make([]string, len(items)), make([]string, len(items))
			for i, it := range items {
				ids[i], reasons[i] = it.ID, it.Reason
			}
			return pgx.BeginFunc(ctx, base.pool, func(tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, returnRowsPG, ids, reasons, at)
				n = tag.RowsAffected()
				return err
			})
		case *sqliteBaseline:
			js, err := json.Marshal(items)
			if err != nil {
				return err
			}
			return sqliteTx(ctx, base.db, func(tx *sql.Tx) error {
				res, err := tx.ExecContext(ctx, returnRowsSQLite, string(js), at)
				if err == nil {
					n, err = res.RowsAffected()
				}
				return err
			})
		}
		return errors.New("no baseline")
	})
	if err == nil && n != becsReturns {
		err = fmt.Errorf("the baseline returned %d rows, want %d", n, becsReturns)
	}
	return measure{ops: 1, elapsed: d, latencies: []time.Duration{d}}, err
}
