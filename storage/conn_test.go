package storage_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/storage"
)

// queryInts runs a query of one integer column.
func queryInts(t *testing.T, conn storage.Conn, query string, args ...any) []int {
	t.Helper()
	var got []int
	err := conn.Query(context.Background(), query, args, func(row storage.Scanner) error {
		var n int
		err := row.Scan(&n)
		got = append(got, n)
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return got
}

func TestConnRunsTheCallersSQL(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		db := dbtest.Open(t, engine)
		conn := db.Conn()
		if conn.Dialect() != db.Engine() {
			t.Fatalf("Dialect() = %q, want the engine %q", conn.Dialect(), db.Engine())
		}
		insert, greater := `INSERT INTO conn_test (n) VALUES (?), (?), (?)`, `SELECT n FROM conn_test WHERE n > ? ORDER BY n`
		if engine == storage.EnginePostgres {
			insert, greater = `INSERT INTO conn_test (n) VALUES ($1), ($2), ($3)`, `SELECT n FROM conn_test WHERE n > $1 ORDER BY n`
		}
		for _, s := range []struct {
			query string
			args  []any
			want  int64
		}{
			{`CREATE TABLE conn_test (n INTEGER NOT NULL)`, nil, 0},
			{insert, []any{3, 1, 2}, 3},
			{`UPDATE conn_test SET n = n + 10 WHERE n < 3`, nil, 2},
		} {
			n, err := conn.Exec(ctx, s.query, s.args...)
			if err != nil || n != s.want {
				t.Fatalf("Exec(%s) = %d, %v; want %d rows affected", s.query, n, err, s.want)
			}
		}
		if got := queryInts(t, conn, greater, 3); !slices.Equal(got, []int{11, 12}) {
			t.Fatalf("Query = %v, want [11 12], a call of scan per row", got)
		}

		stop := errors.New("stop")
		calls := 0
		err := conn.Query(ctx, `SELECT n FROM conn_test`, nil, func(storage.Scanner) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("Query with a failing scan = %v after %d calls, want its error after 1", err, calls)
		}
	})
}

// migrations is a component's own migrations: a table, created once.
var migrations = fstest.MapFS{"00001_widgets.sql": {Data: []byte(`-- +goose Up
CREATE TABLE widgets (id INTEGER NOT NULL PRIMARY KEY);
-- +goose Down
DROP TABLE widgets;
`)}}

func TestConnMigrateRecordsInItsOwnVersionTable(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		conn := dbtest.Open(t, engine).Conn()
		engineVersions := queryInts(t, conn, `SELECT version_id FROM goose_db_version ORDER BY id`)
		for run := range 2 {
			if err := conn.Migrate(ctx, migrations, "widgets_version"); err != nil {
				t.Fatalf("Migrate #%d: %v", run+1, err)
			}
		}
		if got := queryInts(t, conn, `SELECT version_id FROM widgets_version WHERE version_id > 0`); !slices.Equal(got, []int{1}) {
			t.Fatalf("widgets_version holds versions %v, want [1]", got)
		}
		if got := queryInts(t, conn, `SELECT count(*) FROM widgets`); !slices.Equal(got, []int{0}) {
			t.Fatalf("count of widgets = %v, want the table, empty", got)
		}
		if got := queryInts(t, conn, `SELECT version_id FROM goose_db_version ORDER BY id`); !slices.Equal(got, engineVersions) {
			t.Fatalf("the engine's goose_db_version went from %v to %v", engineVersions, got)
		}
	})
}

// TestConnMigrateOfReplicasTogetherAppliesEachMigrationOnce migrates one PostgreSQL schema from
// several pools at once, as replicas starting together do, with a migration slow enough that they
// would all apply it without a lock.
func TestConnMigrateOfReplicasTogetherAppliesEachMigrationOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t, storage.EnginePostgres)
	slow := fstest.MapFS{"00001_slow.sql": {Data: []byte("-- +goose Up\nSELECT pg_sleep(0.5);\nCREATE TABLE slow (id INTEGER);\n")}}
	const replicas = 4
	conns := make([]storage.Conn, replicas)
	for i := range conns {
		db, err := storage.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		conns[i] = db.Conn()
	}
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i, conn := range conns {
		wg.Go(func() { errs[i] = conn.Migrate(ctx, slow, "slow_version") })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Migrate: %v", i, err)
		}
	}
	if got := queryInts(t, conns[0], `SELECT version_id FROM slow_version WHERE version_id > 0`); !slices.Equal(got, []int{1}) {
		t.Fatalf("slow_version holds versions %v, want [1]", got)
	}
}
