package storage

import (
	"context"
	"io/fs"

	"github.com/pyng/receivables/seal"
)

// Conn is the database as seen by a component that keeps tables of its own beside the engine's
// (the sandbox rail's ledger): it writes its SQL for each dialect and migrates its tables with
// its own goose version table, without knowing the engine's packages.
type Conn interface {
	// Dialect is EngineSQLite or EnginePostgres: the SQL the caller writes, with ? or ?N
	// placeholders on SQLite and $N on PostgreSQL.
	Dialect() string
	// Exec runs one statement and returns how many rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs one query and calls scan for each row, stopping at the first error. scan must
	// not use the Conn: on SQLite the query holds the only connection until it returns.
	Query(ctx context.Context, query string, args []any, scan func(Scanner) error) error
	// Migrate applies the pending goose migrations of fsys (SQL files at its root, for this
	// dialect) and records them in versionTable, a table of the caller's apart from the engine's.
	// On PostgreSQL, replicas migrating together take turns, as for the engine's migrations.
	Migrate(ctx context.Context, fsys fs.FS, versionTable string) error
	// InTx runs fn in a transaction, which it commits if fn returns nil and rolls back
	// otherwise. fn runs its statements on tx only (on SQLite the transaction holds the only
	// connection); on PostgreSQL the transaction is READ COMMITTED.
	InTx(ctx context.Context, fn func(tx Statements) error) error
	// Keyring is the database's key ring, with which a component seals what it keeps of
	// customers' details (nil when the database was opened without one; see WithKeyring).
	Keyring() *seal.Keyring
}

// engineConn is Conn as the engines implement it; the database adds its key ring.
type engineConn interface {
	Dialect() string
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args []any, scan func(Scanner) error) error
	Migrate(ctx context.Context, fsys fs.FS, versionTable string) error
	InTx(ctx context.Context, fn func(tx Statements) error) error
}

// Statements runs statements, as Conn does: in a transaction of InTx. It is an alias of an
// unnamed interface, as Scanner is, so that the engines implement it.
type Statements = interface {
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args []any, scan func(Scanner) error) error
}

type keyedConn struct {
	engineConn
	keys *seal.Keyring
}

func (c keyedConn) Keyring() *seal.Keyring { return c.keys }

// Scanner reads the current row into dest, as database/sql and pgx do. It is an alias of an
// unnamed interface so that the engines, which cannot import storage, implement Conn's Query.
type Scanner = interface {
	Scan(dest ...any) error
}
