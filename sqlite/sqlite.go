// Package sqlite is package storage's driver on SQLite (modernc.org/sqlite, no cgo): one file,
// WAL journal, one connection. It runs the statements storage.Store orchestrates, one method of
// driver.Executor each, and keeps only what is SQLite's own: its queries (queries.sql, compiled
// by sqlc into internal/dbsqlc, and the few sqlc cannot parse, written in Go), its bulk path (a
// JSON array read with json_each), its error codes and its column types. Its schema lives in
// migrations/ and is applied by goose on Open, followed by River's own migrations (the job queue
// lives in the same file).
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
	q  *dbsqlc.Queries
	// inserter enqueues jobs in the store's transactions (CreateBatch's execution job).
	inserter *river.Client[*sql.Tx]
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
	dsn := path + "?_txlock=immediate" +
		fmt.Sprintf("&_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()) +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)" +
		"&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := migrate(ctx, db); err != nil {
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
	return &Store{db: db, q: dbsqlc.New(db), inserter: inserter}, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		return err
	}
	// p.Close would close db, which the Store keeps.
	if _, err := p.Up(ctx); err != nil {
		return err
	}
	m, err := rivermigrate.New(riversqlite.New(db), nil)
	if err != nil {
		return fmt.Errorf("river: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river: %w", err)
	}
	return nil
}

// DB is the underlying pool (one connection), for the tests of this package.
func (s *Store) DB() *sql.DB { return s.db }

// Engine returns "sqlite".
func (s *Store) Engine() string { return "sqlite" }

// Executor runs each statement on its own.
func (s *Store) Executor() driver.Executor { return executor{q: s.q, db: s.db} }

// Begin starts a transaction; the connection's _txlock makes it BEGIN IMMEDIATE.
func (s *Store) Begin(ctx context.Context) (driver.ExecutorTx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return txExecutor{executor: executor{q: s.q.WithTx(tx), db: tx}, tx: tx, inserter: s.inserter}, nil
}

// NewJobClient returns a River client of the job queue in the database file.
func (s *Store) NewJobClient(cfg *river.Config) (driver.JobClient, error) {
	return river.NewClient(riversqlite.New(s.db), cfg)
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// executor runs statements on the pool or in a transaction (db is the one q runs on).
type executor struct {
	q  *dbsqlc.Queries
	db dbsqlc.DBTX
}

type txExecutor struct {
	executor
	tx       *sql.Tx
	inserter *river.Client[*sql.Tx]
}

func (t txExecutor) InsertJob(ctx context.Context, job billing.Job) error {
	_, err := t.inserter.InsertTx(ctx, t.tx, job, driver.InsertOpts(job))
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

// one and many map the rows of a query to billing types, marking its error.
func one[R, T any](fn func(R) T) func(R, error) (T, error)      { return driver.One(mapErr, fn) }
func many[R, T any](fn func(R) T) func([]R, error) ([]T, error) { return driver.Many(mapErr, fn) }

func (e executor) CreateOrganisation(ctx context.Context, o billing.Organisation) error {
	return mapErr(e.q.CreateOrganisation(ctx, dbsqlc.CreateOrganisationParams{ID: o.ID, Name: o.Name, CreatedAt: billing.Millis(o.CreatedAt)}))
}

func (e executor) CountOrganisations(ctx context.Context) (int, error) {
	n, err := e.q.CountOrganisations(ctx)
	return int(n), err
}

func (e executor) CreateSite(ctx context.Context, s billing.Site) error {
	return mapErr(e.q.CreateSite(ctx, dbsqlc.CreateSiteParams{
		ID:             s.ID,
		OrganisationID: s.OrganisationID,
		Name:           s.Name,
		Currency:       s.Currency,
		Rail:           s.Rail,
		CreatedAt:      billing.Millis(s.CreatedAt),
	}))
}

func (e executor) GetSite(ctx context.Context, id string) (billing.Site, error) {
	return one(site)(e.q.GetSite(ctx, id))
}

func (e executor) CreateClient(ctx context.Context, c billing.Client) error {
	return mapErr(e.q.CreateClient(ctx, dbsqlc.CreateClientParams{
		ID:             c.ID,
		OrganisationID: c.OrganisationID,
		SecretHash:     c.SecretHash,
		Scopes:         billing.FormatScopes(c.Scopes),
		CreatedAt:      billing.Millis(c.CreatedAt),
		RevokedAt:      driver.NullMillis(c.RevokedAt),
	}))
}

func (e executor) GetClient(ctx context.Context, id string) (billing.Client, error) {
	return one(client)(e.q.GetClient(ctx, id))
}

func (e executor) RevokeClient(ctx context.Context, id string, at time.Time) (billing.Client, error) {
	return one(client)(e.q.RevokeClient(ctx, dbsqlc.RevokeClientParams{ID: id, RevokedAt: billing.Millis(at)}))
}

func (e executor) InsertSigningKey(ctx context.Context, k billing.SigningKey) error {
	return mapErr(e.q.InsertSigningKey(ctx, dbsqlc.InsertSigningKeyParams{ID: k.ID, Secret: k.Secret, CreatedAt: billing.Millis(k.CreatedAt)}))
}

func (e executor) GetSigningKey(ctx context.Context) (billing.SigningKey, error) {
	return one(signingKey)(e.q.GetSigningKey(ctx))
}

func (e executor) InsertLink(ctx context.Context, l billing.Link) error {
	return mapErr(e.q.InsertLink(ctx, dbsqlc.InsertLinkParams{ID: l.ID, SiteID: l.SiteID, CustomerReference: l.CustomerReference,
		CreatedAt: billing.Millis(l.CreatedAt), ExpiresAt: billing.Millis(l.ExpiresAt)}))
}

func (e executor) ExpireInvitations(ctx context.Context, siteID, customerReference string, at time.Time) error {
	return e.q.ExpireInvitations(ctx, dbsqlc.ExpireInvitationsParams{SiteID: siteID, CustomerReference: customerReference, At: billing.Millis(at)})
}

func (e executor) ClearCurrentLink(ctx context.Context, siteID, customerReference string) error {
	return e.q.ClearCurrentLink(ctx, dbsqlc.ClearCurrentLinkParams{SiteID: siteID, CustomerReference: customerReference})
}

func (e executor) GetCurrentLink(ctx context.Context, siteID, customerReference string) (billing.Link, error) {
	return one(link)(e.q.GetCurrentLink(ctx, dbsqlc.GetCurrentLinkParams{SiteID: siteID, CustomerReference: customerReference}))
}

func (e executor) GetLink(ctx context.Context, id string) (billing.Link, error) {
	return one(link)(e.q.GetLink(ctx, id))
}

func (e executor) ListLinks(ctx context.Context, p driver.LinkPage) ([]billing.Link, error) {
	return many(link)(e.q.ListLinks(ctx, dbsqlc.ListLinksParams{SiteID: p.SiteID, After: p.After, Lim: int64(p.Limit)}))
}

func (e executor) ListInvitedLinks(ctx context.Context, p driver.LinkPage) ([]billing.Link, error) {
	return many(link)(e.q.ListInvitedLinks(ctx, dbsqlc.ListInvitedLinksParams{SiteID: p.SiteID, After: p.After, Now: billing.Millis(p.Now), Lim: int64(p.Limit)}))
}

func (e executor) ListExpiredLinks(ctx context.Context, p driver.LinkPage) ([]billing.Link, error) {
	return many(link)(e.q.ListExpiredLinks(ctx, dbsqlc.ListExpiredLinksParams{SiteID: p.SiteID, After: p.After, Now: billing.Millis(p.Now), Lim: int64(p.Limit)}))
}

func (e executor) ListLinksInState(ctx context.Context, p driver.LinkPage) ([]billing.Link, error) {
	return many(link)(e.q.ListLinksInState(ctx, dbsqlc.ListLinksInStateParams{SiteID: p.SiteID, After: p.After, State: string(p.State), Lim: int64(p.Limit)}))
}

func (e executor) LinkCustomer(ctx context.Context, id string, c billing.Customer, at time.Time) (billing.Link, error) {
	return one(link)(e.q.LinkCustomer(ctx, dbsqlc.LinkCustomerParams{ID: id, At: billing.Millis(at),
		CustomerName: c.Name, CustomerEmail: c.Email, CustomerBsb: c.BSB, CustomerAccountNumber: c.AccountNumber}))
}

func (e executor) RevokeLink(ctx context.Context, id string, by billing.RevokedBy, at time.Time) (billing.Link, error) {
	return one(link)(e.q.RevokeLink(ctx, dbsqlc.RevokeLinkParams{ID: id, At: billing.Millis(at), RevokedBy: string(by)}))
}
