package sqlite

import (
	"context"
	"database/sql"
	"io/fs"

	"github.com/pressly/goose/v3"

	"github.com/pyng/receivables/storage/driver"
)

// Conn runs hand-written SQL and migrations on the store's database for components that keep
// tables of their own in it; it is storage.Conn on SQLite.
type Conn struct {
	statements
	db      *sql.DB
	applied *driver.MigrationLog
}

// Conn returns the Conn on the store's database.
func (s *Store) Conn() *Conn {
	return &Conn{statements: statements{s.db}, db: s.db, applied: s.applied}
}

// Dialect returns "sqlite".
func (*Conn) Dialect() string { return "sqlite" }

// Migrate applies the pending goose migrations of fsys, recorded in versionTable, one opener of
// the process at a time, as the store's own migrations (see migrating).
func (c *Conn) Migrate(ctx context.Context, fsys fs.FS, versionTable string) error {
	migrating.Lock()
	defer migrating.Unlock()
	p, err := goose.NewProvider(goose.DialectSQLite3, c.db, fsys, goose.WithTableName(versionTable))
	if err != nil {
		return err
	}
	// p.Close would close db, which the Store keeps.
	results, err := p.Up(ctx)
	c.applied.Add(driver.GooseMigrations(versionTable, results))
	return err
}

// InTx runs fn in a transaction (BEGIN IMMEDIATE), committed when fn returns nil.
func (c *Conn) InTx(ctx context.Context, fn func(tx interface {
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args []any, scan func(interface{ Scan(dest ...any) error }) error) error
}) error) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op once committed
	if err := fn(statements{tx}); err != nil {
		return err
	}
	return tx.Commit()
}

// statements runs the Conn's statements, on the database or in a transaction of InTx.
type statements struct {
	on interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	}
}

// Exec runs one statement and returns how many rows it affected.
func (s statements) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.on.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Query runs one query and calls scan for each row, stopping at the first error.
func (s statements) Query(ctx context.Context, query string, args []any, scan func(interface{ Scan(dest ...any) error }) error) error {
	rows, err := s.on.QueryContext(ctx, query, args...)
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
