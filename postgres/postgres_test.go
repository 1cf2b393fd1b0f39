package postgres_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/postgres"
)

func open(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestReplicasOpeningTogetherMigrateOnce(t *testing.T) {
	t.Parallel()
	u := dbtest.URL(t, "postgres")
	const n = 5
	type opened struct {
		store *postgres.Store
		err   error
	}
	results := make(chan opened, n)
	for range n {
		go func() {
			s, err := postgres.Open(context.Background(), u)
			results <- opened{s, err}
		}()
	}
	for range n {
		r := <-results
		if r.err != nil {
			t.Errorf("Open: %v", r.err)
			continue
		}
		r.store.Close()
	}
	s := open(t, u)
	var applied int
	if err := s.Pool().QueryRow(context.Background(),
		"SELECT count(*) FROM goose_db_version WHERE version_id > 0").Scan(&applied); err != nil {
		t.Fatalf("count applied migrations: %v", err)
	}
	if want := migrationCount(t); applied != want {
		t.Fatalf("%d migrations recorded, want %d (each once)", applied, want)
	}
	if err := s.Pool().QueryRow(context.Background(), "SELECT count(*) FROM river_migration").Scan(&applied); err != nil {
		t.Fatalf("count applied River migrations: %v", err)
	}
	m, err := rivermigrate.New(riverpgxv5.New(s.Pool()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(m.AllVersions()); applied != want {
		t.Fatalf("%d River migrations recorded, want %d (each once)", applied, want)
	}
}

func migrationCount(t *testing.T) int {
	t.Helper()
	entries, err := postgres.Migrations()
	if err != nil {
		t.Fatalf("migrations: %v", err)
	}
	return len(entries)
}

func TestTablesLiveInTheSearchPathSchema(t *testing.T) {
	t.Parallel()
	u := dbtest.URL(t, "postgres")
	s := open(t, u)
	rows, err := s.Pool().Query(context.Background(),
		"SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1")
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"api_clients", "batch_rows", "batches", "bsb_directory", "customer_emails_sent", "customer_links", "events", "goose_db_version", "organisations",
		"river_job", "river_leader", "river_migration", "river_notification", "river_queue",
		"sandbox_ledger", "signing_keys", "sites", "webhook_attempts", "webhook_deliveries", "webhook_endpoints",
	}
	if !slices.Equal(tables, want) {
		t.Fatalf("tables in the schema = %q, want %q", tables, want)
	}
	var schema string
	if err := s.Pool().QueryRow(context.Background(), "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, "search_path="+schema) {
		t.Fatalf("current_schema() = %q, not the schema of %s", schema, u)
	}
}

func TestPoolMaxConnsSizesThePool(t *testing.T) {
	t.Parallel()
	s := open(t, dbtest.URL(t, "postgres")+"&pool_max_conns=3")
	if got := s.Pool().Config().MaxConns; got != 3 {
		t.Fatalf("MaxConns = %d, want 3", got)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestOpenRefusesAMissingSchema(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(dbtest.URL(t, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", "no_such_schema_here")
	u.RawQuery = q.Encode()
	s, err := postgres.Open(context.Background(), u.String())
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded with a search_path naming no schema")
	}
	if !strings.Contains(err.Error(), "no schema of search_path exists") {
		t.Fatalf("error %q, want it to say the schema is missing", err)
	}
}

// A replica waits for another's migrations for as long as Open allows, even when its role's
// lock_timeout and statement_timeout are short, as a production role's are: they would have
// ended its wait for the migration lock after their time.
func TestOpenWaitsForTheMigrationLockPastTheRolesTimeouts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := dbtest.URL(t, "postgres")
	holder := open(t, u) // migrated: the next Open waits for the lock alone
	conn, err := holder.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var schema string
	if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", postgres.LockID(schema)); err != nil {
		t.Fatal(err)
	}
	const held = 1500 * time.Millisecond
	released := make(chan error, 1)
	go func() {
		time.Sleep(held)
		_, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", postgres.LockID(schema))
		released <- err
	}()
	start := time.Now()
	s, err := postgres.Open(ctx, u+"&lock_timeout=200ms&statement_timeout=200ms")
	if err != nil {
		t.Fatalf("Open with the role's timeouts of 200ms, the lock held %v: %v", held, err)
	}
	s.Close()
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < held-100*time.Millisecond {
		t.Errorf("Open returned after %v, before the lock was released", waited)
	}
}
