// Package postgres is the billing.Store and billing.BatchStore on PostgreSQL (pgx v5). Its schema
// lives in migrations/ and is applied by goose on Open, followed by River's own migrations (the
// job queue lives in the same schema), both under one advisory lock; its queries live in
// queries.sql, compiled by sqlc into internal/dbsqlc.
package postgres

//go:generate go tool -modfile=../tools/go.mod sqlc generate -f sqlc.yaml

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
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
	"github.com/pyng/receivables/jobs"
	"github.com/pyng/receivables/postgres/internal/dbsqlc"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the billing.Store on a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
	q    *dbsqlc.Queries
	// inserter enqueues jobs in the store's transactions (CreateBatch's execution job).
	inserter *river.Client[pgx.Tx]
}

var _ billing.Store = (*Store)(nil)

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
	if err := migrate(ctx, cfg.ConnConfig, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	inserter, err := jobs.NewInserter(riverpgxv5.New(pool))
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: job inserter: %w", err)
	}
	return &Store{pool: pool, q: dbsqlc.New(pool), inserter: inserter}, nil
}

// lockWait is how long Open waits for another replica's migrations.
const lockWait = 5 * time.Minute

// migrate applies goose's migrations, through a database/sql connection pool that lives only as
// long as the migration, then River's, through pool (River's migrations and its queries name no
// schema: they use search_path). A connection of its own holds the advisory lock meanwhile.
func migrate(ctx context.Context, cc *pgx.ConnConfig, pool *pgxpool.Pool) error {
	db := stdlib.OpenDB(*cc)
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()

	var schema *string
	if err := conn.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return err
	}
	if schema == nil {
		return errors.New("no schema of search_path exists")
	}
	id := lockID(*schema)
	lockCtx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	if _, err := conn.ExecContext(lockCtx, "SELECT pg_advisory_lock($1)", id); err != nil {
		return fmt.Errorf("wait for the migration lock of schema %s: %w", *schema, err)
	}
	defer func() {
		// Closing the connection would release the lock too; unlocking first lets the next
		// replica go without waiting for the pool to close it.
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", id)
	}()

	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return err
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("river: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river: %w", err)
	}
	return nil
}

// lockID is the advisory lock that serialises migrations of one schema. Schemas migrate
// independently, so tests that isolate themselves by schema do not wait for one another.
func lockID(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("pyng/receivables migrations of schema " + schema))
	return int64(h.Sum64())
}

// Pool is the underlying connection pool, for packages that share the database, such as River.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Close closes every connection of the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// mapErr turns the constraint violations the Service acts on into billing's sentinel errors.
func mapErr(err error) error {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		switch e.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %w", billing.ErrDuplicate, err)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%w: %w", billing.ErrNotFound, err)
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
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
func (s *Store) CreateLink(ctx context.Context, l billing.Link) error {
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
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // a no-op once committed
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
	return tx.Commit(ctx)
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
		lim  = int32(min(max(f.Limit, 0), 1<<31-1))
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
	if !errors.Is(err, pgx.ErrNoRows) {
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
		RevokedBy:         billing.RevokedBy(deref(r.RevokedBy)),
		Customer: billing.Customer{
			Name:          deref(r.CustomerName),
			Email:         deref(r.CustomerEmail),
			BSB:           deref(r.CustomerBsb),
			AccountNumber: deref(r.CustomerAccountNumber),
		},
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func nullMillis(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := billing.Millis(t)
	return &ms
}

func fromNullMillis(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return billing.FromMillis(*n)
}
