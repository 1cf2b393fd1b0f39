package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/seal"
	"github.com/pyng/receivables/storage"
)

// KeyFileSuffix is added to the path of a sandbox's SQLite database to name its key file: the
// sandbox's key lives beside its database, pyng.db.key beside pyng.db.
const KeyFileSuffix = ".key"

// errNoKey is the refusal to start without a key ring, saying how to give one.
const errNoKey = "no encryption key: customers' bank details and the token signing keys are kept sealed, " +
	"with a key ring the operator gives in PYNG_ENCRYPTION_KEY (id:base64key[,id:base64key...]; make a key with " +
	"\"pyng admin keys generate\") or in a file named by PYNG_ENCRYPTION_KEY_FILE"

// ErrNoKey is the refusal to seal without a key ring.
var ErrNoKey = errors.New(errNoKey)

// Keyring returns the key ring the configuration gives: PYNG_ENCRYPTION_KEY, or the file
// PYNG_ENCRYPTION_KEY_FILE names. Without either, a sandbox on SQLite keeps its own key in the
// file beside its database (see KeyFileSuffix), which it creates on its first start (created is
// then its path); anything else is refused, a sandbox on PostgreSQL too, for its replicas must
// share the key.
func Keyring(cfg Config) (keys *seal.Keyring, created string, err error) {
	switch {
	case cfg.EncryptionKey != "":
		keys, err = seal.Parse(cfg.EncryptionKey)
		if err != nil {
			return nil, "", fmt.Errorf("PYNG_ENCRYPTION_KEY: %w", err)
		}
		return keys, "", nil
	case cfg.EncryptionKeyFile != "":
		keys, err = seal.ReadFile(cfg.EncryptionKeyFile)
		if err != nil {
			return nil, "", fmt.Errorf("PYNG_ENCRYPTION_KEY_FILE: %w", err)
		}
		return keys, "", nil
	}
	path, isSQLite := sandboxKeyFile(cfg.DatabaseURL)
	switch {
	case !isSQLite && cfg.Sandbox:
		return nil, "", errors.New(errNoKey + "; a sandbox on PostgreSQL needs one too, for its replicas must share it")
	case !isSQLite:
		return nil, "", ErrNoKey
	case !cfg.Sandbox:
		if _, err := os.Stat(path); err == nil {
			return nil, "", fmt.Errorf("%s; the key the sandbox made for this database is in %s: set PYNG_ENCRYPTION_KEY_FILE=%s", errNoKey, path, path)
		}
		return nil, "", errors.New(errNoKey + " (only the sandbox makes a key of its own)")
	}
	if keys, err := seal.ReadFile(path); !errors.Is(err, fs.ErrNotExist) {
		return keys, "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, "", fmt.Errorf("create the directory of %s: %w", path, err)
	}
	keys, err = seal.CreateFile(path, "sandbox-"+billing.RandomToken(5)[:6])
	if errors.Is(err, fs.ErrExist) { // another process starting at the same moment made it
		keys, err = seal.ReadFile(path)
		return keys, "", err
	}
	if err != nil {
		return nil, "", fmt.Errorf("create the sandbox's key file: %w", err)
	}
	return keys, path, nil
}

// KeyringIfAny is Keyring for commands that seal nothing unless asked: without a key ring given
// it reads the sandbox's key file if there is one, and otherwise returns no key ring (nil) rather
// than an error. It never creates a key.
func KeyringIfAny(cfg Config) (*seal.Keyring, error) {
	if cfg.EncryptionKey != "" || cfg.EncryptionKeyFile != "" {
		keys, _, err := Keyring(cfg)
		return keys, err
	}
	if path, ok := sandboxKeyFile(cfg.DatabaseURL); ok {
		if keys, err := seal.ReadFile(path); !errors.Is(err, fs.ErrNotExist) {
			return keys, err
		}
	}
	return nil, nil
}

// sandboxKeyFile is the path of the sandbox's key file of a SQLite database URL; ok is false for
// another engine.
func sandboxKeyFile(databaseURL string) (path string, ok bool) {
	lower := strings.ToLower(databaseURL)
	if strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://") {
		return "", false
	}
	dbPath, err := storage.SQLitePath(databaseURL)
	if err != nil {
		return "", false
	}
	return dbPath + KeyFileSuffix, true
}

// keyFileBanner tells the operator of the key file the sandbox made.
func keyFileBanner(path string) string {
	return fmt.Sprintf(`
Encryption key: this sandbox keeps customers' bank details and its token signing keys sealed
with a key it generated in %s (readable by its owner only).
Back it up with the database: without it they cannot be read.
`, path)
}

// Reseal seals again, with the current key of db's key ring, every sealed or plaintext value the
// server keeps: customers' details, signing keys, webhook endpoints' secrets, and those of the rails that keep some (the
// sandbox ledger's accounts; the BECS rail's debits, files and unmatched returned items), a batch
// of batchSize at a time (the rails' through rails, open on db). It returns how many rows of each
// table it sealed; run again, it finds nothing left to do.
func Reseal(ctx context.Context, db storage.Database, rails Rails, batchSize int) (map[string]int, error) {
	if db.Keyring() == nil {
		return nil, ErrNoKey
	}
	out := map[string]int{}
	var err error
	if out["customer_links"], err = db.ResealLinks(ctx, batchSize); err != nil {
		return out, fmt.Errorf("customer links: %w", err)
	}
	if out["signing_keys"], err = db.ResealSigningKeys(ctx); err != nil {
		return out, fmt.Errorf("signing keys: %w", err)
	}
	if out["webhook_endpoints"], err = db.ResealWebhookEndpoints(ctx); err != nil {
		return out, fmt.Errorf("webhook endpoints: %w", err)
	}
	for name, r := range rails.ByName() {
		if r, ok := r.(resealer); ok {
			table, n, err := r.Reseal(ctx, batchSize)
			out[table] += n
			if err != nil {
				return out, fmt.Errorf("rail %s: %w", name, err)
			}
		}
		if r, ok := r.(tablesResealer); ok {
			tables, err := r.ResealTables(ctx, batchSize)
			for table, n := range tables {
				out[table] += n
			}
			if err != nil {
				return out, fmt.Errorf("rail %s: %w", name, err)
			}
		}
	}
	return out, nil
}

// tablesResealer is a rail that keeps sealed values in several tables of its own (the BECS
// rail's debits, files and unmatched returned items).
type tablesResealer interface {
	ResealTables(ctx context.Context, batchSize int) (map[string]int, error)
}

// resealer is a rail that keeps sealed values in a table of its own.
type resealer interface {
	Reseal(ctx context.Context, batchSize int) (table string, n int, err error)
}
