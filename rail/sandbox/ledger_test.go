package sandbox_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail/sandbox"
	"github.com/pyng/receivables/storage"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// openLedger opens the ledger on a fresh database of engine.
func openLedger(t *testing.T, engine string) *sandbox.Ledger {
	t.Helper()
	l, err := sandbox.OpenLedger(context.Background(), dbtest.Open(t, engine).Conn())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func entry(key string, amount int64) sandbox.Entry {
	return sandbox.Entry{
		Key: key, Amount: amount, BSB: "062000", AccountNumber: "12345678",
		Failure: sandbox.Outcome(amount), SubmittedAt: t0, SettlesAt: t0.Add(3 * time.Second),
	}
}

// record records entries in the ledger and checks how many were new.
func record(t *testing.T, l *sandbox.Ledger, want int, entries ...sandbox.Entry) {
	t.Helper()
	n, err := l.Record(context.Background(), entries)
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	if n != want {
		t.Fatalf("Record recorded %d, want %d", n, want)
	}
}

// entries returns the ledger's entries of keys, ordered by key.
func entries(t *testing.T, l *sandbox.Ledger, keys ...string) []sandbox.Entry {
	t.Helper()
	es, err := l.Entries(context.Background(), keys)
	if err != nil {
		t.Fatalf("Entries: %v", err)
	}
	slices.SortFunc(es, func(a, b sandbox.Entry) int { return strings.Compare(a.Key, b.Key) })
	return es
}

func wantEntries(t *testing.T, got, want []sandbox.Entry) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Entries = %+v\nwant %+v", got, want)
	}
}

func TestLedger(t *testing.T) {
	cases := []struct {
		rule string
		run  func(t *testing.T, l *sandbox.Ledger)
	}{
		{"entries round-trip", func(t *testing.T, l *sandbox.Ledger) {
			es := []sandbox.Entry{entry("k1", 100), entry("k2", 151), entry("k3", 252)}
			record(t, l, 3, es...)
			wantEntries(t, entries(t, l, "k1", "k2", "k3"), es)
		}},
		{"a batch's worth of entries is recorded at once", func(t *testing.T, l *sandbox.Ledger) {
			es := make([]sandbox.Entry, billing.MaxBatchRows)
			keys := make([]string, len(es))
			for i := range es {
				es[i] = entry(fmt.Sprintf("k%04d", i), int64(100+i))
				keys[i] = es[i].Key
			}
			record(t, l, len(es), es...)
			wantEntries(t, entries(t, l, keys...), es)
		}},
		{"a key recorded again keeps its first entry", func(t *testing.T, l *sandbox.Ledger) {
			first := entry("k1", 100)
			record(t, l, 1, first)
			again := entry("k1", 151)
			again.SubmittedAt = t0.Add(time.Hour)
			record(t, l, 1, again, entry("k2", 200))
			wantEntries(t, entries(t, l, "k1", "k2"), []sandbox.Entry{first, entry("k2", 200)})
		}},
		{"a key repeated in one call is recorded once", func(t *testing.T, l *sandbox.Ledger) {
			record(t, l, 1, entry("k1", 100), entry("k1", 100))
			wantEntries(t, entries(t, l, "k1"), []sandbox.Entry{entry("k1", 100)})
		}},
		{"only recorded keys are returned", func(t *testing.T, l *sandbox.Ledger) {
			record(t, l, 2, entry("k1", 100), entry("k2", 200))
			wantEntries(t, entries(t, l, "k2", "k-missing"), []sandbox.Entry{entry("k2", 200)})
			if got := entries(t, l); len(got) != 0 {
				t.Fatalf("Entries of no keys = %+v, want none", got)
			}
			record(t, l, 0)
		}},
	}
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		for _, tc := range cases {
			t.Run(tc.rule, func(t *testing.T) {
				t.Parallel()
				tc.run(t, openLedger(t, engine))
			})
		}
	})
}

// TestLedgerKeepsTheDebitsOfPurgedBatches runs a batch through the service with the sandbox rail,
// purges it, and finds every debit still in the ledger: the ledger is the rail's record, not the
// engine's, and no purge of batches reaches it.
func TestLedgerKeepsTheDebitsOfPurgedBatches(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		clock := clocktest.At(t0)
		service, db := apptest.NewService(t, engine, apptest.ServiceOptions{Clock: clock})
		ledger := apptest.SandboxLedger(t, db)
		site := apptest.NewSite(t, service, "Acme")
		apptest.LinkedCustomer(t, service, site, "C1")
		batch := apptest.SubmitBatch(t, service, site, "B1",
			billing.RowRequest{Reference: "R1", CustomerReference: "C1", Amount: 100},
			billing.RowRequest{Reference: "R2", CustomerReference: "C1", Amount: 151})
		if done, _, err := service.ExecuteBatch(ctx, batch.ID); err != nil || !done {
			t.Fatalf("ExecuteBatch = done %v, %v; want done", done, err)
		}
		_, _, rows, err := service.Batch(ctx, site, "B1", "")
		if err != nil {
			t.Fatal(err)
		}
		keys := make([]string, len(rows))
		for i, r := range rows {
			keys[i] = r.ID
		}
		debited := entries(t, ledger, keys...)
		if len(debited) != len(rows) {
			t.Fatalf("the ledger holds %d debits of the batch, want %d", len(debited), len(rows))
		}

		clock.Set(batch.RetainUntil)
		if n, err := service.PurgeBatches(ctx); err != nil || n != 1 {
			t.Fatalf("PurgeBatches = %d, %v; want the batch purged", n, err)
		}
		if _, err := db.GetBatchByID(ctx, batch.ID); err == nil {
			t.Fatal("the batch is still there after its purge")
		}
		wantEntries(t, entries(t, ledger, keys...), debited)
	})
}

// queryInt runs a query of one integer.
func queryInt(t *testing.T, conn storage.Conn, query string) int {
	t.Helper()
	var n int
	err := conn.Query(context.Background(), query, nil, func(row storage.Scanner) error { return row.Scan(&n) })
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestOpenLedgerMigratesItsOwnTable(t *testing.T) {
	ctx := context.Background()
	const insertEntry = `INSERT INTO sandbox_ledger (idempotency_key, amount, bsb, account_number, failure, submitted_at, settles_at)
		VALUES ('k1', 151, '062000', '12345678', 'insufficientFunds', 1795428000000, 1795428003000)`
	want := []sandbox.Entry{entry("k1", 151)}
	if got := want[0].SubmittedAt.UnixMilli(); got != 1795428000000 {
		t.Fatalf("t0 is %d ms, not the time of insertEntry", got)
	}
	cases := []struct {
		rule   string
		before string // a statement run on the engine's database before OpenLedger
		record bool   // whether the test records the entry, or before did
	}{
		// Databases the engines migrated hold the table of the engines' migration 00002, perhaps
		// with debits of a release that kept the ledger there.
		{"the table of an engine database is adopted with its debits", insertEntry, false},
		{"a database without the table gets it", `DROP TABLE sandbox_ledger`, true},
	}
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		for _, tc := range cases {
			t.Run(tc.rule, func(t *testing.T) {
				t.Parallel()
				conn := dbtest.Open(t, engine).Conn()
				const engineVersions = `SELECT count(*) FROM goose_db_version`
				engineBefore := queryInt(t, conn, engineVersions)
				if _, err := conn.Exec(ctx, tc.before); err != nil {
					t.Fatalf("%s: %v", tc.before, err)
				}
				for open := range 2 {
					l, err := sandbox.OpenLedger(ctx, conn)
					if err != nil {
						t.Fatalf("OpenLedger #%d: %v", open+1, err)
					}
					if open == 0 && tc.record {
						record(t, l, 1, want...)
					}
					wantEntries(t, entries(t, l, "k1"), want)
				}
				const versions = `SELECT count(*) FROM ` + sandbox.VersionTable + ` WHERE version_id > 0 AND is_applied`
				files, err := filepath.Glob(filepath.Join("migrations", engine, "*.sql"))
				if err != nil || len(files) == 0 {
					t.Fatalf("the ledger's %s migrations: %v, %v", engine, files, err)
				}
				if n := queryInt(t, conn, versions); n != len(files) {
					t.Errorf("%s recorded %d migrations, want each of its %d once", sandbox.VersionTable, n, len(files))
				}
				if n := queryInt(t, conn, engineVersions); n != engineBefore {
					t.Errorf("the engine's goose_db_version went from %d rows to %d", engineBefore, n)
				}
			})
		}
	})
}
