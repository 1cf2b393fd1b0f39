// Package postgres is package storage's driver on PostgreSQL (pgx v5). It runs the statements
// storage.Store orchestrates, one method of driver.Executor each, and keeps only what is
// PostgreSQL's own: its queries (queries.sql, compiled by sqlc into internal/dbsqlc), its bulk
// path (COPY), its error codes and its column types. Its schema lives in migrations/ and is
// applied by goose on Open, followed by River's own migrations (the job queue lives in the same
// schema), both under one advisory lock.
package postgres

//go:generate go tool -modfile=../tools/go.mod sqlc generate -f sqlc.yaml
//go:generate go run ../internal/executorgen ../sqlite/executor.go executor.go

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/postgres/internal/dbsqlc"
	"github.com/pyng/receivables/storage/driver"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is one PostgreSQL database (a schema of it, per search_path): the driver.Driver of
// package storage on PostgreSQL, and the sandbox rail's ledger.
type Store struct {
	pool *pgxpool.Pool
	q    *dbsqlc.Queries
	// inserter enqueues jobs in the store's transactions (CreateBatch's execution job).
	inserter *river.Client[pgx.Tx]
	// applied are the migrations Open applied, and then the Conn's (see Migrations).
	applied *driver.MigrationLog
}

var _ driver.Driver = (*Store)(nil)

// Open connects to the database at url and applies the pending migrations, goose's then River's.
//
// url is a libpq connection URL (postgres://user:pass@host:port/db?param=value) or keyword/value
// string. Besides the libpq parameters (sslmode, ...) it accepts pgxpool's: pool_max_conns sets
// the size of the pool (default: the greater of 4 and the number of CPUs), and pool_min_conns,
// pool_max_conn_lifetime, pool_max_conn_idle_time and pool_health_check_period tune it. Any other
// parameter, such as search_path, is a run-time setting of every connection: with search_path the
// tables, goose's version table and River's tables live in the first schema of that path, which
// must exist.
//
// Several replicas may call Open at once: migrations run under a session-level advisory lock,
// one per schema, so one replica migrates while the others wait.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	applied, err := migrate(ctx, cfg.ConnConfig, pool)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	// An insert-only client: the jobs enqueued in the store's transactions are worked by the
	// client NewJobClient gives the server.
	inserter, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: job inserter: %w", err)
	}
	return &Store{pool: pool, q: dbsqlc.New(pool), inserter: inserter, applied: driver.NewMigrationLog(applied)}, nil
}

// holdsMigrations is true when the schema of search_path holds goose's table of pyng's migrations.
const holdsMigrations = `EXISTS (SELECT 1 FROM information_schema.tables
    WHERE table_schema = current_schema() AND table_name = 'goose_db_version')`

// Migrated reports whether the database url names holds pyng's migrations (in its schema of
// search_path), without changing it: false for an empty database, or another application's.
func Migrated(ctx context.Context, url string) (bool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return false, fmt.Errorf("postgres: parse url: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return false, fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var migrated bool
	err = conn.QueryRow(ctx, `SELECT `+holdsMigrations).Scan(&migrated)
	return migrated, err
}

// lockWait is how long Open waits for another replica's migrations.
const lockWait = 5 * time.Minute

// migrate applies goose's migrations, through a database/sql connection pool that lives only as
// long as the migration, then River's, through pool (River's migrations and its queries name no
// schema: they use search_path). A connection of its own holds the advisory lock meanwhile.
func migrate(ctx context.Context, cc *pgx.ConnConfig, pool *pgxpool.Pool) ([]driver.Migration, error) {
	db := stdlib.OpenDB(*cc)
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	var schema *string
	if err := conn.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return nil, err
	}
	if schema == nil {
		return nil, errors.New("no schema of search_path exists")
	}
	id := lockID(*schema)
	// The wait for the lock is lockWait's, whatever the role's lock_timeout and statement_timeout
	// (which a production role sets short, and which would end it after seconds): they are
	// lifted on this connection alone, which holds the lock and runs no migration.
	for _, lift := range []string{"SET lock_timeout = 0", "SET statement_timeout = 0"} {
		if _, err := conn.ExecContext(ctx, lift); err != nil {
			return nil, err
		}
	}
	lockCtx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	if _, err := conn.ExecContext(lockCtx, "SELECT pg_advisory_lock($1)", id); err != nil {
		return nil, fmt.Errorf("wait for the migration lock of schema %s: %w", *schema, err)
	}
	defer func() {
		// Closing the connection would release the lock too; unlocking first lets the next
		// replica go without waiting for the pool to close it.
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", id)
	}()

	// A schema that holds tables but none of pyng's migrations is another application's: pyng
	// would add its tables beside them (or fail half-way on a name they share).
	var foreign int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables
WHERE table_schema = current_schema() AND NOT `+holdsMigrations).Scan(&foreign); err != nil {
		return nil, err
	}
	if foreign > 0 {
		return nil, fmt.Errorf("%w: schema %s holds %s and no pyng migrations; give pyng a database or a schema (search_path) of its own",
			driver.ErrForeignDatabase, *schema, driver.Tables(foreign))
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys)
	if err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, err
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
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

// lockID is the advisory lock that serialises migrations of one schema. Schemas migrate
// independently, so tests that isolate themselves by schema do not wait for one another.
func lockID(schema string) int64 {
	return advisoryKey("pyng/receivables migrations of schema " + schema)
}

// advisoryKey is the key of the advisory lock named name, in the one-key form: a hash of the name,
// so that the locks of different names do not meet.
func advisoryKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// Pool is the underlying connection pool, for the tests of this package.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Engine returns "postgres".
func (s *Store) Engine() string { return "postgres" }

// Executor runs each statement on its own, on a connection of the pool.
func (s *Store) Executor() driver.Executor { return executor{q: s.q, db: s.pool} }

// Begin starts a READ COMMITTED transaction (see driver.Driver.Begin).
func (s *Store) Begin(ctx context.Context) (driver.ExecutorTx, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, err
	}
	return txExecutor{executor: executor{q: s.q.WithTx(tx), db: tx}, tx: tx, inserter: s.inserter}, nil
}

// NewJobClient returns a River client of the job queue in the database's schema.
func (s *Store) NewJobClient(cfg *river.Config) (driver.JobClient, error) {
	return river.NewClient(riverpgxv5.New(s.pool), cfg)
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Unreachable reports whether err is the database's being out of reach: no connection could be
// made, one broke (an EOF or a network error where an answer was due), or the server is shutting
// down, starting or failing over (SQLSTATE class 08, and 57P01 to 57P03). A statement's own
// failure, a constraint's or a timeout's, is not.
func (s *Store) Unreachable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var connect *pgconn.ConnectError
	var network *net.OpError
	return errors.As(err, &connect) || errors.As(err, &network) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// Close closes every connection of the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// executor runs statements on the pool or in a transaction (db).
type executor struct {
	q  *dbsqlc.Queries
	db dbsqlc.DBTX
}

type txExecutor struct {
	executor
	tx       pgx.Tx
	inserter *river.Client[pgx.Tx]
}

func (t txExecutor) InsertJob(ctx context.Context, job billing.Job) error {
	_, err := t.inserter.InsertTx(ctx, t.tx, job, driver.InsertOpts(job))
	return err
}

func (t txExecutor) InsertJobs(ctx context.Context, jobs []billing.Job) error {
	_, err := t.inserter.InsertManyTx(ctx, t.tx, driver.InsertManyParams(jobs))
	return err
}

func (t txExecutor) Commit(ctx context.Context) error { return t.tx.Commit(ctx) }

func (t txExecutor) Rollback(ctx context.Context) error {
	if err := t.tx.Rollback(ctx); !errors.Is(err, pgx.ErrTxClosed) {
		return err
	}
	return nil
}

// mapErr marks the errors whose meaning package storage decides: constraint violations, and no
// row where one was expected.
func mapErr(err error) error {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		switch e.Code {
		case "23505": // unique_violation
			return driver.Mark(driver.ErrUniqueViolation, err)
		case "23503": // foreign_key_violation
			return driver.Mark(driver.ErrForeignKeyViolation, err)
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return driver.Mark(driver.ErrNoRows, err)
	}
	return err
}
