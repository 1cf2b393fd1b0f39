package postgres

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/pyng/receivables/storage/driver"
)

// Conn runs hand-written SQL and migrations on the store's database for components that keep
// tables of their own in it; it is storage.Conn on PostgreSQL.
type Conn struct {
	statements
	pool    *pgxpool.Pool
	applied *driver.MigrationLog
}

// Conn returns the Conn on the store's pool.
func (s *Store) Conn() *Conn {
	return &Conn{statements: statements{s.pool}, pool: s.pool, applied: s.applied}
}

// Dialect returns "postgres".
func (*Conn) Dialect() string { return "postgres" }

// Migrate applies the pending goose migrations of fsys, recorded in versionTable of the first
// schema of search_path, through a database/sql connection that lives only as long as the
// migration. It holds the advisory lock of the store's own migrations of that schema meanwhile,
// so replicas starting together apply each migration once.
func (c *Conn) Migrate(ctx context.Context, fsys fs.FS, versionTable string) error {
	db := stdlib.OpenDB(*c.pool.Config().ConnConfig)
	defer db.Close()
	var schema *string
	if err := db.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return err
	}
	if schema == nil {
		return errors.New("no schema of search_path exists")
	}
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(lockID(*schema)),
		lock.WithLockTimeout(1, uint64(lockWait/time.Second)), // polls each second
	)
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithTableName(versionTable), goose.WithSessionLocker(locker))
	if err != nil {
		return err
	}
	results, err := p.Up(ctx)
	c.applied.Add(driver.GooseMigrations(versionTable, results))
	return err
}

// InTx runs fn in a READ COMMITTED transaction, committed when fn returns nil.
func (c *Conn) InTx(ctx context.Context, fn func(tx interface {
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args []any, scan func(interface{ Scan(dest ...any) error }) error) error
}) error) error {
	tx, err := c.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // a no-op once committed
	if err := fn(statements{tx}); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// statements runs the Conn's statements, on the pool or in a transaction of InTx.
type statements struct {
	on interface {
		Exec(ctx context.Context, query string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, query string, args ...any) (pgx.Rows, error)
	}
}

// Exec runs one statement and returns how many rows it affected.
func (s statements) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := s.on.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// Query runs one query and calls scan for each row, stopping at the first error.
func (s statements) Query(ctx context.Context, query string, args []any, scan func(interface{ Scan(dest ...any) error }) error) error {
	rows, err := s.on.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
