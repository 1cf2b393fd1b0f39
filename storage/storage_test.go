package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/postgres"
	"github.com/pyng/receivables/sqlite"
	"github.com/pyng/receivables/storage"
	"github.com/pyng/receivables/storetest"
)

func TestStore(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) billing.Store { return dbtest.Open(t, engine) })
		})
	}
}

func TestBatchStore(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			storetest.RunBatches(t, func(t *testing.T) storetest.Batches {
				db := dbtest.Open(t, engine)
				return storetest.Batches{Store: db, ExecuteBatchJobsFunc: executeBatchJobs(t, db)}
			})
		})
	}
}

// executeBatchJobs counts the execute_batch jobs of a batch in River's table, read directly.
func executeBatchJobs(t *testing.T, db storage.Database) func(ctx context.Context, batchID string) (int, error) {
	t.Helper()
	return func(ctx context.Context, batchID string) (n int, err error) {
		switch db := db.(type) {
		case storage.SQLite:
			err = db.DB().QueryRowContext(ctx, `SELECT count(*) FROM river_job
				WHERE kind = 'execute_batch' AND json_extract(args, '$.batchId') = ?`, batchID).Scan(&n)
		case storage.Postgres:
			err = db.Pool().QueryRow(ctx, `SELECT count(*) FROM river_job
				WHERE kind = 'execute_batch' AND args->>'batchId' = $1`, batchID).Scan(&n)
		default:
			t.Fatalf("unknown database %T", db)
		}
		return n, err
	}
}

func TestOpenDispatchesOnTheURL(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, tc := range []struct {
		name   string
		url    string
		engine string
		file   string // the SQLite file Open must create, relative to dir
	}{
		{name: "sqlite:/// is an absolute path", url: "sqlite://" + filepath.Join(dir, "abs.db"), engine: "sqlite", file: "abs.db"},
		{name: "sqlite:/ is an absolute path", url: "sqlite:" + filepath.Join(dir, "abs2.db"), engine: "sqlite", file: "abs2.db"},
		{name: "sqlite: without slashes is relative", url: "sqlite:rel.db", engine: "sqlite", file: "rel.db"},
		{name: "a plain path is a SQLite file", url: "plain.db", engine: "sqlite", file: "plain.db"},
		{name: "a missing directory is created", url: "sqlite:new/dir/pyng.db", engine: "sqlite", file: "new/dir/pyng.db"},
		{name: "the scheme is case-insensitive", url: "SQLite:upper.db", engine: "sqlite", file: "upper.db"},
		{name: "postgres:// is PostgreSQL", url: dbtest.URL(t, "postgres"), engine: "postgres"},
		{name: "postgresql:// is PostgreSQL", url: "postgresql" + strings.TrimPrefix(dbtest.URL(t, "postgres"), "postgres"), engine: "postgres"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := storage.Open(context.Background(), tc.url)
			if err != nil {
				t.Fatalf("Open(%q): %v", tc.url, err)
			}
			defer db.Close()
			if got := db.Engine(); got != tc.engine {
				t.Fatalf("Engine() = %q, want %q", got, tc.engine)
			}
			if err := db.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			if n, err := db.CountOrganisations(context.Background()); err != nil || n != 0 {
				t.Fatalf("CountOrganisations = %d, %v; want 0 on a migrated, empty database", n, err)
			}
			if tc.file != "" {
				if _, err := os.Stat(filepath.Join(dir, tc.file)); err != nil {
					t.Fatalf("database file: %v", err)
				}
			}
		})
	}
}

func TestOpenRefusesBadURLs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		url  string
		want string // in the error
	}{
		{name: "an unknown scheme is refused", url: "mysql://root@localhost/pyng", want: `unknown database scheme "mysql:"`},
		{name: "a password is not shown", url: "mysql://root:hunter2@localhost/pyng", want: "unknown database scheme"},
		{name: "a sqlite URL with a host is refused", url: "sqlite://host/pyng.db", want: "has a host"},
		{name: "sqlite parameters are refused", url: "sqlite:pyng.db?mode=ro", want: "parameters are not supported"},
		{name: "an empty sqlite path is refused", url: "sqlite:", want: "names no file"},
		{name: "an empty URL is refused", url: "", want: "names no file"},
		{name: "a malformed postgres URL is refused", url: "postgres://%zz", want: "postgres"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, err := storage.Open(context.Background(), tc.url)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tc.url)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open(%q) error %q, want it to contain %q", tc.url, err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
}

func TestOpenGivesEachEnginesHandle(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			switch db := dbtest.Open(t, engine).(type) {
			case storage.SQLite:
				if db.DB() == nil {
					t.Fatal("SQLite.DB() is nil")
				}
			case storage.Postgres:
				if db.Pool() == nil {
					t.Fatal("Postgres.Pool() is nil")
				}
			default:
				t.Fatalf("Open returned %T", db)
			}
		})
	}
	var (
		_ storage.Database = storage.SQLite{Store: (*sqlite.Store)(nil)}
		_ storage.Database = storage.Postgres{Store: (*postgres.Store)(nil)}
	)
}
