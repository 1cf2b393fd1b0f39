// Package dbtest gives tests a fresh, empty, migrated database on each engine. Every package that
// touches storage runs its tests on both engines:
//
//	for _, engine := range dbtest.Engines() {
//		t.Run(engine, func(t *testing.T) {
//			db := dbtest.Open(t, engine)
//			...
//		})
//	}
//
// PostgreSQL is required: when it cannot be reached the test fails, never skips, so that no run
// passes without the PostgreSQL half. The server is found at $PYNG_TEST_POSTGRES_URL, by default
// DefaultPostgresURL; each test gets a schema of its own there, dropped when the test ends, in a
// database of the test binary's own (see testDatabase).
package dbtest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/seal"
	"github.com/pyng/receivables/storage"
)

// DefaultPostgresURL is the test server when PYNG_TEST_POSTGRES_URL is not set.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// PostgresURLEnv names the environment variable that overrides DefaultPostgresURL.
const PostgresURLEnv = "PYNG_TEST_POSTGRES_URL"

const startHint = "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start" +
	" (or point " + PostgresURLEnv + " at a server)"

// Engines lists the engines every storage test runs on.
func Engines() []string { return []string{storage.EngineSQLite, storage.EnginePostgres} }

// URL returns the URL of a fresh, empty database for this test: a file in t.TempDir() for SQLite
// (already migrated: a copy of an empty database migrated once per test binary), a new schema
// (set as search_path) for PostgreSQL, dropped at the end of the test.
func URL(t testing.TB, engine string) string {
	t.Helper()
	switch engine {
	case storage.EngineSQLite:
		return sqliteURL(t)
	case storage.EnginePostgres:
		return postgresURL(t)
	default:
		t.Fatalf("dbtest: unknown engine %q (want one of %v)", engine, Engines())
		return ""
	}
}

// KeyRing is the key ring the tests' databases seal with, as PYNG_ENCRYPTION_KEY gives it.
const KeyRing = "test:dGVzdCBrZXkgb2YgdGhlIHB5bmcgdGVzdHMsIDMyIGI="

// Keyring is KeyRing parsed.
func Keyring() *seal.Keyring {
	k, err := seal.Parse(KeyRing)
	if err != nil {
		panic(err)
	}
	return k
}

// KeyRingOf is a key ring of keys with the given ids, the first current, each key derived from its
// id: the same ids give the same keys, so that tests can seal with one ring and open with another.
func KeyRingOf(ids ...string) string {
	entries := make([]string, len(ids))
	for i, id := range ids {
		entries[i] = id + ":" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat(id, seal.KeySize))[:seal.KeySize])
	}
	return strings.Join(entries, ",")
}

// KeyringOf is KeyRingOf the ids, parsed.
func KeyringOf(t testing.TB, ids ...string) *seal.Keyring {
	t.Helper()
	k, err := seal.Parse(KeyRingOf(ids...))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Open opens a fresh database on engine (see URL), sealing with Keyring, closed when the test
// ends.
func Open(t testing.TB, engine string) storage.Database {
	t.Helper()
	return OpenURL(t, URL(t, engine), storage.WithKeyring(Keyring()))
}

// OpenURL opens the database at url with opts, closed when the test ends.
func OpenURL(t testing.TB, url string, opts ...storage.Option) storage.Database {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := storage.Open(ctx, url, opts...)
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", url, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("dbtest: close %s: %v", url, err)
		}
	})
	return db
}

// sqliteTemplate is an empty SQLite database with every migration applied, made once per test
// binary. Copying it is far cheaper than migrating each test's file: River's migrations rebuild
// tables, and modernc's SQLite is slow under the race detector.
var sqliteTemplate struct {
	once  sync.Once
	bytes []byte
	err   error
}

func sqliteURL(t testing.TB) string {
	t.Helper()
	sqliteTemplate.once.Do(func() {
		sqliteTemplate.bytes, sqliteTemplate.err = migratedSQLite()
	})
	if sqliteTemplate.err != nil {
		t.Fatalf("dbtest: migrated SQLite template: %v", sqliteTemplate.err)
	}
	path := filepath.Join(t.TempDir(), "pyng.db")
	if err := os.WriteFile(path, sqliteTemplate.bytes, 0o600); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return "sqlite://" + path
}

// migratedSQLite returns the bytes of a new, migrated SQLite database file. Closing the database
// checkpoints its write-ahead log into the file, so the file alone holds it.
func migratedSQLite() ([]byte, error) {
	dir, err := os.MkdirTemp("", "pyng-dbtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "pyng.db")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := storage.Open(ctx, "sqlite://"+path)
	if err != nil {
		return nil, err
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		return nil, fmt.Errorf("%s-wal is left after closing", path)
	}
	return os.ReadFile(path)
}

// admin is the connection to the server every test of this binary shares, to create and drop
// databases.
var admin struct {
	once sync.Once
	url  *url.URL
	pool *pgxpool.Pool
	err  error
}

func adminPool() (*pgxpool.Pool, *url.URL, error) {
	admin.once.Do(func() {
		raw := os.Getenv(PostgresURLEnv)
		if raw == "" {
			raw = DefaultPostgresURL
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			admin.err = fmt.Errorf("%s=%q is not a postgres:// URL", PostgresURLEnv, raw)
			return
		}
		cfg, err := pgxpool.ParseConfig(raw)
		if err != nil {
			admin.err = fmt.Errorf("parse %s: %w", PostgresURLEnv, err)
			return
		}
		cfg.MaxConns = 4
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err == nil {
			err = pool.Ping(ctx)
		}
		if err != nil {
			if pool != nil {
				pool.Close()
			}
			admin.err = fmt.Errorf("PostgreSQL at %s is unreachable: %w; %s", u.Redacted(), err, startHint)
			return
		}
		admin.url, admin.pool = u, pool
	})
	return admin.pool, admin.url, admin.err
}

func postgresURL(t testing.TB) string {
	t.Helper()
	pool, base, err := testDatabasePool()
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	schema := "test_" + billing.RandomToken(10)
	ident := pgx.Identifier{schema}.Sanitize()
	created(t, pool, "CREATE SCHEMA "+ident, "DROP SCHEMA "+ident+" CASCADE")
	u := *base
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// testDatabase is the PostgreSQL database of this test binary, where its tests' schemas are made:
// a database per binary rather than the server's postgres database for all, so that the packages
// go test runs at once do not hold back each other's events horizon (the events list shows an
// event once every transaction of its database that began before it has ended: postgres migration
// 00014), as one package's long transaction (a BECS cut of 10,000 debits) did another's event
// tests. There is no end of the binary to drop it at: each binary drops, as it starts, the
// databases left by binaries of this machine that have ended (their names carry their process
// id).
var testDatabase struct {
	once sync.Once
	url  *url.URL
	pool *pgxpool.Pool
	err  error
}

// testDatabasePrefix begins the name of each binary's database, followed by its process id.
const testDatabasePrefix = "pyngtest_"

func testDatabasePool() (*pgxpool.Pool, *url.URL, error) {
	testDatabase.once.Do(func() {
		pool, base, err := adminPool()
		if err != nil {
			testDatabase.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		dropEndedBinariesDatabases(ctx, pool, base)
		name := fmt.Sprintf("%s%d_%s", testDatabasePrefix, os.Getpid(), billing.RandomToken(6))
		if _, err := pool.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			testDatabase.err = fmt.Errorf("create this test binary's database: %w", err)
			return
		}
		u := *base
		u.Path = "/" + name
		cfg, err := pgxpool.ParseConfig(u.String())
		if err != nil {
			testDatabase.err = err
			return
		}
		cfg.MaxConns = 4
		cfg.MinConns = 1 // in use as long as the binary runs: see dropEndedBinariesDatabases
		if testDatabase.pool, err = pgxpool.NewWithConfig(ctx, cfg); err == nil {
			err = testDatabase.pool.Ping(ctx)
		}
		if err != nil {
			testDatabase.err = fmt.Errorf("connect to this test binary's database: %w", err)
			return
		}
		testDatabase.url = &u
	})
	return testDatabase.pool, testDatabase.url, testDatabase.err
}

// dropEndedBinariesDatabases drops the databases of test binaries that have ended, when the
// server is on this machine (their process ids are this machine's) and no one is connected to
// them: a server at localhost may be another machine's through a tunnel, or shared by containers
// each with process ids of its own, where a binary still running has an id this machine does not
// run. Each binary keeps a connection to its database open (testDatabasePool), and a database
// still in use is not dropped (no FORCE).
func dropEndedBinariesDatabases(ctx context.Context, pool *pgxpool.Pool, base *url.URL) {
	if host := base.Hostname(); host != "127.0.0.1" && host != "localhost" && host != "::1" {
		return
	}
	rows, err := pool.Query(ctx, `SELECT datname FROM pg_database AS d WHERE starts_with(datname, $1)
AND NOT EXISTS (SELECT FROM pg_stat_activity AS a WHERE a.datid = d.oid)`, testDatabasePrefix)
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, name := range names {
		pid, _, _ := strings.Cut(strings.TrimPrefix(name, testDatabasePrefix), "_")
		if n, err := strconv.Atoi(pid); err == nil && !running(n) {
			_, _ = pool.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize())
		}
	}
}

// running reports whether a process of this machine has the id pid.
func running(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// PostgresDatabaseURL creates a PostgreSQL database of its own on the test server, dropped when
// the test ends, and returns its URL: for a test whose database must hold no other test's
// transactions (the other tests' schemas share this binary's database: see testDatabase). Named
// as the binary's own is, one left by a binary killed before the test's end is dropped as the
// binary's own is.
func PostgresDatabaseURL(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("%s%d_%s", testDatabasePrefix, os.Getpid(), billing.RandomToken(10))
	ident := pgx.Identifier{name}.Sanitize()
	u := createdOnServer(t, "CREATE DATABASE "+ident, "DROP DATABASE "+ident+" WITH (FORCE)")
	u.Path = "/" + name
	return u.String()
}

// createdOnServer runs create on the test server, and drop when the test ends, and returns a
// copy of the server's URL.
func createdOnServer(t testing.TB, create, drop string) url.URL {
	t.Helper()
	pool, base, err := adminPool()
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	created(t, pool, create, drop)
	return *base
}

// created runs create through pool, and drop when the test ends.
func created(t testing.TB, pool *pgxpool.Pool, create, drop string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := pool.Exec(ctx, create); err != nil {
		t.Fatalf("dbtest: %s: %v", create, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, drop); err != nil {
			t.Errorf("dbtest: %s: %v", drop, err)
		}
	})
}

// OnEachEngine runs test as a parallel subtest of t on each engine, named after it.
func OnEachEngine(t *testing.T, test func(t *testing.T, engine string)) {
	t.Helper()
	for _, engine := range Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			test(t, engine)
		})
	}
}
