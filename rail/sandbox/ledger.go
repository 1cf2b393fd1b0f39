package sandbox

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"time"

	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/storage"
)

// Entry is one debit the sandbox rail accepted.
type Entry struct {
	Key           string // the idempotency key; unique in the ledger
	Amount        int64
	BSB           string
	AccountNumber string
	Failure       rail.Failure // empty for a debit that succeeds
	SubmittedAt   time.Time
	SettlesAt     time.Time
}

// Ledger is the sandbox rail's durable record of debits, in its own table of the server's
// database. It knows nothing of batches: an entry outlives the batch its debit came from.
type Ledger struct {
	conn storage.Conn
	sql  dialect
}

//go:embed migrations
var migrations embed.FS

// VersionTable is the goose version table of the ledger's migrations, apart from the engine's so
// that each applies its own.
const VersionTable = "sandbox_goose_version"

// OpenLedger applies the ledger's pending migrations to conn's database and returns the ledger.
func OpenLedger(ctx context.Context, conn storage.Conn) (*Ledger, error) {
	d, ok := dialects[conn.Dialect()]
	if !ok {
		return nil, fmt.Errorf("sandbox ledger: no SQL for dialect %q", conn.Dialect())
	}
	fsys, err := fs.Sub(migrations, "migrations/"+conn.Dialect())
	if err != nil {
		return nil, err
	}
	if err := conn.Migrate(ctx, fsys, VersionTable); err != nil {
		return nil, fmt.Errorf("sandbox ledger: migrate: %w", err)
	}
	return &Ledger{conn: conn, sql: d}, nil
}

// Record inserts the entries whose key is not in the ledger yet, in one statement, and returns
// how many it inserted; an entry whose key is there already is ignored, so submitting a debit
// twice records it once.
func (l *Ledger) Record(ctx context.Context, entries []Entry) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	args, err := l.sql.recordArgs(entries)
	if err != nil {
		return 0, err
	}
	n, err := l.conn.Exec(ctx, l.sql.record, args...)
	return int(n), err
}

// Entries returns the entries with the given keys, in no particular order; a key not in the
// ledger has none.
func (l *Ledger) Entries(ctx context.Context, keys []string) ([]Entry, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	arg, err := l.sql.keysArg(keys)
	if err != nil {
		return nil, err
	}
	var entries []Entry
	err = l.conn.Query(ctx, l.sql.entries, []any{arg}, func(row storage.Scanner) error {
		var (
			e                    Entry
			failure              string
			submitted, settlesAt int64
		)
		if err := row.Scan(&e.Key, &e.Amount, &e.BSB, &e.AccountNumber, &failure, &submitted, &settlesAt); err != nil {
			return err
		}
		e.Failure = rail.Failure(failure)
		e.SubmittedAt, e.SettlesAt = time.UnixMilli(submitted).UTC(), time.UnixMilli(settlesAt).UTC()
		entries = append(entries, e)
		return nil
	})
	return entries, err
}

// dialect is the ledger's SQL for one engine. Times are Unix milliseconds, as in the engines'
// tables; a NULL failure is a debit that succeeds.
type dialect struct {
	// record inserts the entries that recordArgs encodes, ignoring keys already recorded.
	record     string
	recordArgs func([]Entry) ([]any, error)
	// entries selects the key, amount, bsb, account number, failure ('' for none), submission and
	// settlement times of the keys that keysArg encodes.
	entries string
	keysArg func([]string) (any, error)
}

var dialects = map[string]dialect{
	storage.EngineSQLite: {
		// SQLite takes the entries as one JSON array, read with jsonb_each: its values are
		// binary JSON, which json_extract reads without parsing each entry's text again. WHERE
		// TRUE lets SQLite parse ON CONFLICT after a SELECT.
		record: `INSERT INTO sandbox_ledger (idempotency_key, amount, bsb, account_number, failure, submitted_at, settles_at)
SELECT json_extract(value, '$.key'), json_extract(value, '$.amount'), json_extract(value, '$.bsb'),
       json_extract(value, '$.account'), nullif(json_extract(value, '$.failure'), ''),
       json_extract(value, '$.submitted'), json_extract(value, '$.settles')
FROM jsonb_each(?) WHERE TRUE
ON CONFLICT (idempotency_key) DO NOTHING`,
		recordArgs: func(entries []Entry) ([]any, error) {
			type entryJSON struct {
				Key       string `json:"key"`
				Amount    int64  `json:"amount"`
				BSB       string `json:"bsb"`
				Account   string `json:"account"`
				Failure   string `json:"failure"`
				Submitted int64  `json:"submitted"`
				Settles   int64  `json:"settles"`
			}
			es := make([]entryJSON, len(entries))
			for i, e := range entries {
				es[i] = entryJSON{e.Key, e.Amount, e.BSB, e.AccountNumber, string(e.Failure), e.SubmittedAt.UnixMilli(), e.SettlesAt.UnixMilli()}
			}
			b, err := json.Marshal(es)
			return []any{string(b)}, err
		},
		entries: `SELECT idempotency_key, amount, bsb, account_number, coalesce(failure, ''), submitted_at, settles_at
FROM sandbox_ledger WHERE idempotency_key IN (SELECT value FROM json_each(?))`,
		keysArg: func(keys []string) (any, error) {
			b, err := json.Marshal(keys)
			return string(b), err
		},
	},
	storage.EnginePostgres: {
		// PostgreSQL takes one array per column, the i-th entry being the i-th of each.
		record: `INSERT INTO sandbox_ledger (idempotency_key, amount, bsb, account_number, failure, submitted_at, settles_at)
SELECT e.key, e.amount, e.bsb, e.account_number, nullif(e.failure, ''), e.submitted_at, e.settles_at
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])
  AS e (key, amount, bsb, account_number, failure, submitted_at, settles_at)
ON CONFLICT (idempotency_key) DO NOTHING`,
		recordArgs: func(entries []Entry) ([]any, error) {
			n := len(entries)
			keys, amounts, bsbs, accounts, failures := make([]string, n), make([]int64, n), make([]string, n), make([]string, n), make([]string, n)
			submitted, settles := make([]int64, n), make([]int64, n)
			for i, e := range entries {
				keys[i], amounts[i], bsbs[i], accounts[i], failures[i] = e.Key, e.Amount, e.BSB, e.AccountNumber, string(e.Failure)
				submitted[i], settles[i] = e.SubmittedAt.UnixMilli(), e.SettlesAt.UnixMilli()
			}
			return []any{keys, amounts, bsbs, accounts, failures, submitted, settles}, nil
		},
		entries: `SELECT idempotency_key, amount, bsb, account_number, coalesce(failure, ''), submitted_at, settles_at
FROM sandbox_ledger WHERE idempotency_key = ANY ($1::text[])`,
		keysArg: func(keys []string) (any, error) { return keys, nil },
	},
}
