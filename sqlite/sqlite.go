// Package sqlite is package storage's driver on SQLite (modernc.org/sqlite, no cgo): one file,
// WAL journal, one connection. It runs the statements storage.Store orchestrates, one method of
// driver.Executor each, and keeps only what is SQLite's own: its queries (queries.sql, compiled
// by sqlc into internal/dbsqlc, and the few sqlc cannot parse, written in Go; each prepared once
// at Open, see prepared.go), its bulk path (a JSON array read with json_each), its error codes
// and its column types. Its schema lives in migrations/ and is applied by goose on Open, followed
// by River's own migrations (the job queue lives in the same file).
package sqlite

//go:generate go tool -modfile=../tools/go.mod sqlc generate -f sqlc.yaml

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/sqlite/internal/dbsqlc"
	"github.com/pyng/receivables/storage/driver"
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a statement waits for another process's write lock before failing
// with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Store is one SQLite database file: the driver.Driver of package storage on SQLite, and the
// sandbox rail's ledger.
type Store struct {
	db *sql.DB
	q  *dbsqlc.Queries // its statements prepared (see prepared.go)
	// prepared are the statements written in Go, prepared.
	prepared preparedStatements
	// inserter enqueues jobs in the store's transactions (CreateBatch's execution job).
	inserter *river.Client[*sql.Tx]
	// applied are the migrations Open applied, and then the Conn's (see Migrations).
	applied *driver.MigrationLog
}

var _ driver.Driver = (*Store)(nil)

// Open opens (creating if missing) the SQLite database file at path and applies the pending
// migrations, goose's then River's. The file's directory must exist. The pool holds a single connection, so writes in
// this process never contend for the file lock; every transaction begins IMMEDIATE, so one that
// writes never has to upgrade a read lock held by another process.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("sqlite: invalid database path %q", path)
	}
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	applied, err := migrate(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: migrate %s: %w", path, err)
	}
	// An insert-only client: the jobs enqueued in the store's transactions are worked by the
	// client NewJobClient gives the server.
	inserter, err := river.NewClient(riversqlite.New(db), &river.Config{})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: job inserter: %w", err)
	}
	q, err := dbsqlc.Prepare(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	prepared, err := prepare(ctx, db, handWritten)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return &Store{db: db, q: q, prepared: prepared, inserter: inserter, applied: driver.NewMigrationLog(applied)}, nil
}

// cacheKiB is the page cache of the connection. SQLite's default (2 MiB) is less than one
// batch's insert dirties, the random row ids spreading it over the whole id index: the
// transaction would spill pages to the WAL and read them back.
const cacheKiB = 16 << 10

// DSN is the modernc.org/sqlite data source name Open opens path with: immediate transactions, a
// WAL journal synced at each commit (synchronous FULL), foreign keys on, and statement journals
// and temporary tables in memory, which nothing needs to survive a crash, so a multi-row insert
// inside a transaction writes no temporary file. A commit is on disk before it returns: what
// follows it relies on it surviving a crash of the machine, not only of the process (a 202 for
// a batch; a BECS file marked delivered before it is renamed into the outbox or on the bank's
// server, which would otherwise be delivered again). NORMAL syncs the WAL only at checkpoints,
// and a power loss can roll back the commits since.
func DSN(path string) string {
	return path + "?_txlock=immediate" +
		fmt.Sprintf("&_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()) +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)" +
		"&_pragma=foreign_keys(1)" +
		"&_pragma=temp_store(MEMORY)" +
		fmt.Sprintf("&_pragma=cache_size(-%d)", cacheKiB)
}

// migrating serialises the migrations of this process's SQLite databases. goose reads which
// migrations are applied before it applies the others, so two openers of one file migrating at
// once (replicas in one process, as the tests start them) would both apply the same migration.
// Processes sharing a file are not served: run `pyng migrate` before starting a second.
var migrating sync.Mutex

// migrate applies the pending migrations and returns those it applied.
func migrate(ctx context.Context, db *sql.DB) ([]driver.Migration, error) {
	migrating.Lock()
	defer migrating.Unlock()
	// A file that holds tables but none of pyng's migrations is another application's database.
	var foreign int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
AND NOT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'goose_db_version')`).Scan(&foreign); err != nil {
		return nil, err
	}
	if foreign > 0 {
		return nil, fmt.Errorf("%w: the file holds %s and no pyng migrations; give pyng a database file of its own", driver.ErrForeignDatabase, driver.Tables(foreign))
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		return nil, err
	}
	// p.Close would close db, which the Store keeps.
	results, err := p.Up(ctx)
	if err != nil {
		return nil, err
	}
	m, err := rivermigrate.New(riversqlite.New(db), nil)
	if err != nil {
		return nil, fmt.Errorf("river: %w", err)
	}
	res, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return nil, fmt.Errorf("river: %w", err)
	}
	return append(driver.GooseMigrations(driver.MigrationsOfSchema, results), driver.RiverMigrations(res)...), nil
}

// Migrations returns the migrations applied since Open, Open's first and then those of the
// store's Conns.
func (s *Store) Migrations() []driver.Migration { return s.applied.List() }

// DB is the underlying pool (one connection), for the tests of this package.
func (s *Store) DB() *sql.DB { return s.db }

// Engine returns "sqlite".
func (s *Store) Engine() string { return "sqlite" }

// Executor runs each statement on its own.
func (s *Store) Executor() driver.Executor { return executor{q: s.q, db: s.db, prepared: s.prepared} }

// Begin starts a transaction; the connection's _txlock makes it BEGIN IMMEDIATE.
func (s *Store) Begin(ctx context.Context) (driver.ExecutorTx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return txExecutor{executor: executor{q: s.q.WithTx(tx), db: tx, tx: tx, prepared: s.prepared}, inserter: s.inserter}, nil
}

// NewJobClient returns a River client of the job queue in the database file.
func (s *Store) NewJobClient(cfg *river.Config) (driver.JobClient, error) {
	return river.NewClient(riversqlite.New(s.db), cfg)
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Unreachable is always false: an embedded database is reached through no connection that could
// fail or break.
func (s *Store) Unreachable(error) bool { return false }

// Close closes the database (and with its connection, the statements prepared on it).
func (s *Store) Close() error { return s.db.Close() }

// executor runs statements on the pool or in a transaction, tx (db is the one q runs on).
type executor struct {
	q        *dbsqlc.Queries
	db       dbsqlc.DBTX
	tx       *sql.Tx // nil on the pool
	prepared preparedStatements
}

type txExecutor struct {
	executor
	inserter *river.Client[*sql.Tx]
}

func (t txExecutor) InsertJob(ctx context.Context, job billing.Job) error {
	_, err := t.inserter.InsertTx(ctx, t.tx, job, driver.InsertOpts(job))
	return err
}

func (t txExecutor) InsertJobs(ctx context.Context, jobs []billing.Job) error {
	_, err := t.inserter.InsertManyTx(ctx, t.tx, driver.InsertManyParams(jobs))
	return err
}

func (t txExecutor) Commit(context.Context) error { return t.tx.Commit() }

func (t txExecutor) Rollback(context.Context) error {
	if err := t.tx.Rollback(); !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}

// mapErr marks the errors whose meaning package storage decides: constraint violations, and no
// row where one was expected.
func mapErr(err error) error {
	var e *msqlite.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return driver.Mark(driver.ErrUniqueViolation, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return driver.Mark(driver.ErrForeignKeyViolation, err)
		}
	}
	if errors.Is(err, sql.ErrNoRows) {
		return driver.Mark(driver.ErrNoRows, err)
	}
	return err
}
