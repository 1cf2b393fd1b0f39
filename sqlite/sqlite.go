// Package sqlite is the billing.Store and billing.BatchStore on SQLite (modernc.org/sqlite, no
// cgo): one file, WAL journal, one connection. Its schema lives in migrations/ and is applied by
// goose on Open, followed by River's own migrations (the job queue lives in the same file); its
// queries live in queries.sql, compiled by sqlc into internal/dbsqlc.
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
	"github.com/pyng/receivables/jobs"
	"github.com/pyng/receivables/sqlite/internal/dbsqlc"
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a statement waits for another process's write lock before failing
// with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Store is the billing.Store on one SQLite database file.
type Store struct {
	db *sql.DB
	q  *dbsqlc.Queries
	// inserter enqueues jobs in the store's transactions (CreateBatch's execution job).
	inserter *river.Client[*sql.Tx]
}

var _ billing.Store = (*Store)(nil)

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
	inserter, err := jobs.NewInserter(riversqlite.New(db))
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

// DB is the underlying pool (one connection), for packages that share the database, such as
// River's SQLite driver.
func (s *Store) DB() *sql.DB { return s.db }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// mapErr turns the constraint violations the Service acts on into billing's sentinel errors.
func mapErr(err error) error {
	var e *msqlite.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", billing.ErrDuplicate, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: %w", billing.ErrNotFound, err)
		}
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %w", billing.ErrNotFound, err)
	}
	return err
}

func (s *Store) CreateOrganisation(ctx context.Context, o billing.Organisation) error {
	err := s.q.CreateOrganisation(ctx, dbsqlc.CreateOrganisationParams{
		ID:        o.ID,
		Name:      o.Name,
		CreatedAt: billing.Millis(o.CreatedAt),
	})
	return mapErr(err)
}

func (s *Store) CountOrganisations(ctx context.Context) (int, error) {
	n, err := s.q.CountOrganisations(ctx)
	return int(n), err
}

func (s *Store) CreateSite(ctx context.Context, site billing.Site) error {
	err := s.q.CreateSite(ctx, dbsqlc.CreateSiteParams{
		ID:             site.ID,
		OrganisationID: site.OrganisationID,
		Name:           site.Name,
		Currency:       site.Currency,
		CreatedAt:      billing.Millis(site.CreatedAt),
	})
	return mapErr(err)
}

func (s *Store) GetSite(ctx context.Context, id string) (billing.Site, error) {
	r, err := s.q.GetSite(ctx, id)
	if err != nil {
		return billing.Site{}, mapErr(err)
	}
	return billing.Site{
		ID:             r.ID,
		OrganisationID: r.OrganisationID,
		Name:           r.Name,
		Currency:       r.Currency,
		CreatedAt:      billing.FromMillis(r.CreatedAt),
	}, nil
}

func (s *Store) CreateClient(ctx context.Context, c billing.Client) error {
	err := s.q.CreateClient(ctx, dbsqlc.CreateClientParams{
		ID:             c.ID,
		OrganisationID: c.OrganisationID,
		SecretHash:     c.SecretHash,
		Scopes:         billing.FormatScopes(c.Scopes),
		CreatedAt:      billing.Millis(c.CreatedAt),
		RevokedAt:      nullMillis(c.RevokedAt),
	})
	return mapErr(err)
}

func (s *Store) GetClient(ctx context.Context, id string) (billing.Client, error) {
	r, err := s.q.GetClient(ctx, id)
	if err != nil {
		return billing.Client{}, mapErr(err)
	}
	return client(r), nil
}

func (s *Store) RevokeClient(ctx context.Context, id string, at time.Time) (billing.Client, error) {
	r, err := s.q.RevokeClient(ctx, dbsqlc.RevokeClientParams{ID: id, RevokedAt: billing.Millis(at)})
	if err != nil {
		return billing.Client{}, mapErr(err)
	}
	return client(r), nil
}

func client(r dbsqlc.ApiClient) billing.Client {
	return billing.Client{
		ID:             r.ID,
		OrganisationID: r.OrganisationID,
		SecretHash:     r.SecretHash,
		Scopes:         scopes(r.Scopes),
		CreatedAt:      billing.FromMillis(r.CreatedAt),
		RevokedAt:      fromNullMillis(r.RevokedAt),
	}
}

// scopes reads the stored scope list as written, keeping scopes this build does not know.
func scopes(s string) []billing.Scope {
	var out []billing.Scope
	for _, f := range strings.Fields(s) {
		out = append(out, billing.Scope(f))
	}
	return out
}

func (s *Store) EnsureSigningKey(ctx context.Context, candidate billing.SigningKey) (billing.SigningKey, error) {
	err := s.q.InsertSigningKey(ctx, dbsqlc.InsertSigningKeyParams{
		ID:        candidate.ID,
		Secret:    candidate.Secret,
		CreatedAt: billing.Millis(candidate.CreatedAt),
	})
	if err != nil {
		return billing.SigningKey{}, err
	}
	r, err := s.q.GetSigningKey(ctx)
	if err != nil {
		return billing.SigningKey{}, err
	}
	return billing.SigningKey{ID: r.ID, Secret: r.Secret, CreatedAt: billing.FromMillis(r.CreatedAt)}, nil
}

// CreateLink tries the common case first: a customer reference that has no current link (its
// first invitation), where expiring and clearing would change nothing, is one INSERT without a
// transaction, as a mint is one round trip. When the pair has a current link the INSERT violates
// the unique index of current links, and the transaction that expires and clears it runs.
func (s *Store) CreateLink(ctx context.Context, l billing.Link) (err error) {
	insert := dbsqlc.InsertLinkParams{
		ID:                l.ID,
		SiteID:            l.SiteID,
		CustomerReference: l.CustomerReference,
		CreatedAt:         billing.Millis(l.CreatedAt),
		ExpiresAt:         billing.Millis(l.ExpiresAt),
	}
	if err := mapErr(s.q.InsertLink(ctx, insert)); !errors.Is(err, billing.ErrDuplicate) {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	q := s.q.WithTx(tx)
	if err := q.ExpireInvitations(ctx, dbsqlc.ExpireInvitationsParams{
		SiteID:            l.SiteID,
		CustomerReference: l.CustomerReference,
		At:                billing.Millis(l.CreatedAt),
	}); err != nil {
		return fmt.Errorf("expire invitations: %w", err)
	}
	if err := q.ClearCurrentLink(ctx, dbsqlc.ClearCurrentLinkParams{
		SiteID:            l.SiteID,
		CustomerReference: l.CustomerReference,
	}); err != nil {
		return fmt.Errorf("clear current link: %w", err)
	}
	if err := q.InsertLink(ctx, insert); err != nil {
		return mapErr(err)
	}
	return tx.Commit()
}

func (s *Store) GetCurrentLink(ctx context.Context, siteID, customerReference string) (billing.Link, error) {
	r, err := s.q.GetCurrentLink(ctx, dbsqlc.GetCurrentLinkParams{SiteID: siteID, CustomerReference: customerReference})
	if err != nil {
		return billing.Link{}, mapErr(err)
	}
	return link(r), nil
}

func (s *Store) GetLink(ctx context.Context, id string) (billing.Link, error) {
	r, err := s.q.GetLink(ctx, id)
	if err != nil {
		return billing.Link{}, mapErr(err)
	}
	return link(r), nil
}

func (s *Store) ListLinks(ctx context.Context, siteID string, f billing.LinkFilter, now time.Time) ([]billing.Link, error) {
	var (
		rows []dbsqlc.CustomerLink
		err  error
		lim  = int64(max(f.Limit, 0))
	)
	switch f.State {
	case "":
		rows, err = s.q.ListLinks(ctx, dbsqlc.ListLinksParams{SiteID: siteID, After: f.After, Lim: lim})
	case billing.LinkInvited:
		rows, err = s.q.ListInvitedLinks(ctx, dbsqlc.ListInvitedLinksParams{SiteID: siteID, After: f.After, Now: billing.Millis(now), Lim: lim})
	case billing.LinkExpired:
		rows, err = s.q.ListExpiredLinks(ctx, dbsqlc.ListExpiredLinksParams{SiteID: siteID, After: f.After, Now: billing.Millis(now), Lim: lim})
	case billing.LinkLinked, billing.LinkRevoked:
		rows, err = s.q.ListLinksInState(ctx, dbsqlc.ListLinksInStateParams{SiteID: siteID, After: f.After, State: string(f.State), Lim: lim})
	default:
		return nil, fmt.Errorf("list links: unknown state %q", f.State)
	}
	if err != nil {
		return nil, err
	}
	links := make([]billing.Link, len(rows))
	for i, r := range rows {
		links[i] = link(r)
	}
	return links, nil
}

func (s *Store) LinkCustomer(ctx context.Context, id string, c billing.Customer, at time.Time) (billing.Link, error) {
	r, err := s.q.LinkCustomer(ctx, dbsqlc.LinkCustomerParams{
		ID:                    id,
		At:                    billing.Millis(at),
		CustomerName:          c.Name,
		CustomerEmail:         c.Email,
		CustomerBsb:           c.BSB,
		CustomerAccountNumber: c.AccountNumber,
	})
	if err != nil {
		return billing.Link{}, s.staleOrNotFound(ctx, id, err)
	}
	return link(r), nil
}

func (s *Store) RevokeLink(ctx context.Context, id string, by billing.RevokedBy, at time.Time) (billing.Link, error) {
	r, err := s.q.RevokeLink(ctx, dbsqlc.RevokeLinkParams{ID: id, At: billing.Millis(at), RevokedBy: string(by)})
	if err != nil {
		return billing.Link{}, s.staleOrNotFound(ctx, id, err)
	}
	return link(r), nil
}

// staleOrNotFound explains why a conditional update of link id failed: ErrStale when the link
// exists (its state had moved on), ErrNotFound when it does not.
func (s *Store) staleOrNotFound(ctx context.Context, id string, err error) error {
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if _, err := s.q.GetLink(ctx, id); err != nil {
		return mapErr(err)
	}
	return billing.ErrStale
}

func link(r dbsqlc.CustomerLink) billing.Link {
	return billing.Link{
		ID:                r.ID,
		SiteID:            r.SiteID,
		CustomerReference: r.CustomerReference,
		StoredState:       billing.LinkState(r.State),
		CreatedAt:         billing.FromMillis(r.CreatedAt),
		ExpiresAt:         billing.FromMillis(r.ExpiresAt),
		LinkedAt:          fromNullMillis(r.LinkedAt),
		RevokedAt:         fromNullMillis(r.RevokedAt),
		RevokedBy:         billing.RevokedBy(r.RevokedBy.String),
		Customer: billing.Customer{
			Name:          r.CustomerName.String,
			Email:         r.CustomerEmail.String,
			BSB:           r.CustomerBsb.String,
			AccountNumber: r.CustomerAccountNumber.String,
		},
	}
}

func nullMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: billing.Millis(t), Valid: true}
}

func fromNullMillis(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return billing.FromMillis(n.Int64)
}
