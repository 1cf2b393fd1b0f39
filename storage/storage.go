// Package storage is the database of the server: Open opens the one a URL names, on whichever
// engine it names, as a Database. Every store operation is written once here (Store), over the
// driver.Driver each engine package implements (sqlite, postgres): the engines run statements,
// package storage decides which ones run, in which transaction, and what their outcomes mean.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/internal/redact"
	"github.com/pyng/receivables/postgres"
	"github.com/pyng/receivables/seal"
	"github.com/pyng/receivables/sqlite"
	"github.com/pyng/receivables/storage/driver"
)

// Database is an open billing.Store and billing.BatchStore on one engine, which also keeps the
// job queue.
type Database interface {
	billing.Store
	billing.BatchStore
	billing.EventStore
	// Conn is the database for components with tables of their own, such as the sandbox rail.
	Conn() Conn
	// Keyring is the key ring the database seals with (nil when opened without one).
	Keyring() *seal.Keyring
	// SigningKeys returns every signing key, the current first.
	SigningKeys(ctx context.Context) ([]billing.SigningKey, error)
	// RotateSigningKey makes candidate the current signing key, deleting the others if
	// retireOthers, and returns how many it deleted.
	RotateSigningKey(ctx context.Context, candidate billing.SigningKey, retireOthers bool) (retired int, err error)
	// ResealLinks, ResealSigningKeys and ResealWebhookEndpoints seal again with the current key
	// what is plaintext or sealed with another key, and return how many rows they sealed.
	ResealLinks(ctx context.Context, batchSize int) (int, error)
	ResealSigningKeys(ctx context.Context) (int, error)
	ResealWebhookEndpoints(ctx context.Context) (int, error)
	// JobsWaiting counts the jobs of the queue not yet done and returns when the oldest of them
	// was enqueued (zero when none): the backlog an operator watches.
	JobsWaiting(ctx context.Context, queue string) (int, time.Time, error)
	// Engine is "sqlite" or "postgres".
	Engine() string
	// NewJobClient returns a River client of the database's job queue, configured by cfg: the
	// server's workers, or an empty Config for a client that only inserts and lists jobs.
	NewJobClient(cfg *river.Config) (JobClient, error)
	Ping(ctx context.Context) error
	// Unreachable reports whether err is the database's being out of reach, rather than a failure
	// of what was asked: the API answers it 503, for the client to try again shortly.
	Unreachable(err error) bool
	Close() error
	// Migrations returns the migrations this process applied since it opened the database: the
	// engine's schema's and River's on Open, then those of components through Conn.Migrate.
	Migrations() []Migration
}

// Migration is one migration applied (see Database.Migrations).
type Migration = driver.Migration

// JobClient is a River client of a Database's job queue, whatever its engine.
type JobClient = driver.JobClient

// The engines Engine reports.
const (
	EngineSQLite   = "sqlite"
	EnginePostgres = "postgres"
)

// database is the Store with the engine's Conn.
type database struct {
	*Store
	conn Conn
}

func (d database) Conn() Conn { return d.conn }

func newDatabase(d driver.Driver, conn engineConn, keys *seal.Keyring) Database {
	return database{Store: NewStore(d, keys), conn: keyedConn{engineConn: conn, keys: keys}}
}

// Option is an option of Open.
type Option func(*options)

type options struct {
	keys      *seal.Keyring
	mustExist bool
}

// MustExist has Open open a database that exists only, with pyng's tables (migrating it if it is
// behind): a SQLite file that does not exist, or a PostgreSQL database (its schema of
// search_path) that holds none of pyng's migrations, is ErrNoDatabase, and nothing is made. An
// operator's command pointed at the wrong database is then told so, rather than given an empty
// one.
func MustExist() Option {
	return func(o *options) { o.mustExist = true }
}

// ErrNoDatabase is Open's error, with MustExist, for a database that does not exist.
var ErrNoDatabase = errors.New("no database")

// WithKeyring has the database seal what it keeps of customers' details and signing keys with
// keys, and give keys to the components of its Conn. Without it the database reads plaintext
// values only and stores no customer's details or signing key.
func WithKeyring(keys *seal.Keyring) Option {
	return func(o *options) { o.keys = keys }
}

var schemePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)

// keywordValue is the start of a PostgreSQL keyword/value connection string (host=db user=pyng
// ...), which has no scheme but is no file path either.
var keywordValue = regexp.MustCompile(`^\s*[A-Za-z_]+\s*=`)

// ErrKeywordValue is SQLitePath's refusal of a PostgreSQL keyword/value connection string, which
// would otherwise be a SQLite file named after it, its password too. It does not repeat the string.
var ErrKeywordValue = errors.New("storage: the database is given as keyword=value pairs (host=... user=...), " +
	"which pyng does not read: write it as a postgres:// URL (or a SQLite file as sqlite:PATH)")

// Open opens the database that url names and applies its pending migrations.
//
//   - postgres://… or postgresql://… is a PostgreSQL database; see postgres.Open for the
//     parameters it takes (pool_max_conns, search_path, …).
//   - sqlite:PATH is a SQLite database file: sqlite:///abs/path.db (or sqlite:/abs/path.db) is
//     absolute, sqlite:data/pyng.db is relative to the working directory. sqlite://host/… and
//     query parameters are refused.
//   - Anything without a scheme is a path to a SQLite file.
//
// For SQLite, the file's directory is created if missing.
func Open(ctx context.Context, url string, opts ...Option) (Database, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	scheme := strings.ToLower(strings.TrimSuffix(schemePattern.FindString(url), ":"))
	switch scheme {
	case "postgres", "postgresql":
		if o.mustExist {
			migrated, err := postgres.Migrated(ctx, url)
			if err != nil {
				return nil, err
			}
			if !migrated {
				return nil, fmt.Errorf("%w at %s: its schema (search_path) holds none of pyng's tables", ErrNoDatabase, redact.URL(url))
			}
		}
		s, err := postgres.Open(ctx, url)
		if err != nil {
			return nil, err
		}
		return newDatabase(s, s.Conn(), o.keys), nil
	case "sqlite", "":
		path, err := SQLitePath(url)
		if err != nil {
			return nil, err
		}
		if o.mustExist {
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				abs, _ := filepath.Abs(path)
				return nil, fmt.Errorf("%w at %s", ErrNoDatabase, abs)
			} else if err != nil {
				return nil, fmt.Errorf("storage: database %s: %w", path, err)
			}
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("storage: create directory of %s: %w", path, err)
		}
		if err := createPrivate(path); err != nil {
			return nil, fmt.Errorf("storage: create %s: %w", path, err)
		}
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, err
		}
		return newDatabase(s, s.Conn(), o.keys), nil
	default:
		return nil, fmt.Errorf("storage: unknown database scheme %q in %s (want postgres://, postgresql://, sqlite: or a file path)", scheme+":", redact.URL(url))
	}
}

// createPrivate creates the empty file at path, readable and writable by its owner only (0600),
// unless it exists: it holds customers' details. SQLite gives the -wal and -shm files it makes
// beside a database the database file's permissions.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// SQLitePath is the file path that a sqlite: URL, or a plain path, names.
func SQLitePath(url string) (string, error) {
	path := url
	if !schemePattern.MatchString(url) && keywordValue.MatchString(url) {
		return "", ErrKeywordValue
	}
	if schemePattern.MatchString(url) {
		scheme := strings.TrimSuffix(schemePattern.FindString(url), ":")
		if !strings.EqualFold(scheme, "sqlite") {
			return "", fmt.Errorf("storage: not a sqlite URL: %s", redact.URL(url))
		}
		path = url[len(scheme)+1:]
		if rest, ok := strings.CutPrefix(path, "//"); ok {
			// sqlite:///abs/path: an empty host, then an absolute path.
			if !strings.HasPrefix(rest, "/") {
				return "", fmt.Errorf("storage: sqlite URL %s has a host; write sqlite:///absolute/path or sqlite:relative/path", url)
			}
			path = rest
		}
	}
	if strings.ContainsRune(path, '?') {
		return "", fmt.Errorf("storage: sqlite URL %s: parameters are not supported", url)
	}
	if path == "" {
		return "", errors.New("storage: sqlite URL names no file")
	}
	return path, nil
}
