package sandbox

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/seal"
	"github.com/pyng/receivables/storage"
)

// Entry is one debit the sandbox rail accepted.
type Entry struct {
	Key    string // the idempotency key; unique in the ledger
	Amount int64
	// BSB and AccountNumber are the account debited, stored sealed with the database's key ring;
	// both empty once erased (see EraseAccounts).
	BSB           string
	AccountNumber string
	Failure       rail.Failure // empty for a debit that succeeds
	SubmittedAt   time.Time
	SettlesAt     time.Time
	// WithdrawnAt is when the debit was withdrawn before the sandbox took it (Ledger.Withdraw);
	// zero for one taken. A withdrawn entry debits nothing: its amount is 0, its account empty.
	WithdrawnAt time.Time
	// WithdrawnAs is the failure a withdrawn debit answers.
	WithdrawnAs rail.Failure
}

// Ledger is the sandbox rail's durable record of debits, in its own table of the server's
// database. It knows nothing of batches: an entry outlives the batch its debit came from. It
// seals the account of each debit with the key ring of the database's Conn.
type Ledger struct {
	conn storage.Conn
	keys *seal.Keyring
	sql  dialect
}

// account is a debit's BSB and account number, sealed or not.
type account struct{ bsb, number string }

// eachAccountOnce returns a function that applies fn (sealing or opening) to both fields of an
// account, computing each distinct account once.
func eachAccountOnce(fn func(aad, value string) (string, error)) func(account) (account, error) {
	done := map[account]account{}
	return func(a account) (account, error) {
		if c, ok := done[a]; ok {
			return c, nil
		}
		bsb, errBSB := fn(sealedBSB, a.bsb)
		number, errNumber := fn(sealedAccountNumber, a.number)
		if err := errors.Join(errBSB, errNumber); err != nil {
			return account{}, err
		}
		done[a] = account{bsb, number}
		return done[a], nil
	}
}

// The sealed columns, each the additional data of its values (see seal.Keyring.Seal).
const (
	sealedBSB           = "sandbox_ledger.bsb"
	sealedAccountNumber = "sandbox_ledger.account_number"
)

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
	return &Ledger{conn: conn, keys: conn.Keyring(), sql: d}, nil
}

// Record inserts the entries whose key is not in the ledger yet, in one statement, and returns
// how many it inserted; an entry whose key is there already is ignored, so submitting a debit
// twice records it once.
func (l *Ledger) Record(ctx context.Context, entries []Entry) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	// Debits of one submission share few accounts: each is sealed once per call (its debits then
	// share a ciphertext, telling no more than their rows' customer does).
	seal := eachAccountOnce(l.keys.SealString)
	sealed := make([]Entry, len(entries))
	for i, e := range entries {
		a, err := seal(account{e.BSB, e.AccountNumber})
		if err != nil {
			return 0, fmt.Errorf("seal the account of %s: %w", e.Key, err)
		}
		e.BSB, e.AccountNumber = a.bsb, a.number
		sealed[i] = e
	}
	args, err := l.sql.recordArgs(sealed)
	if err != nil {
		return 0, err
	}
	n, err := l.conn.Exec(ctx, l.sql.record, args...)
	return int(n), err
}

// Withdraw records withdrawn, at `at`, the keys not in the ledger yet, each answering as (see
// Entry.WithdrawnAs), and returns how many it recorded: no submission of them afterwards is taken
// (Record ignores them). A key recorded already, taken or withdrawn, is left as it is.
func (l *Ledger) Withdraw(ctx context.Context, keys []string, at time.Time, as rail.Failure) (int, error) {
	return l.execOnKeys(ctx, l.sql.withdraw, keys, at.UnixMilli(), string(as))
}

// SettleBy moves the settlement of the taken debits with the given keys that settle after `at`
// to `at`, and returns how many it moved.
func (l *Ledger) SettleBy(ctx context.Context, keys []string, at time.Time) (int, error) {
	return l.execOnKeys(ctx, l.sql.settleBy, keys, at.UnixMilli())
}

// execOnKeys runs statement with the keys (as keysArg encodes them) and then args, and returns
// how many entries it wrote; none without keys.
func (l *Ledger) execOnKeys(ctx context.Context, statement string, keys []string, args ...any) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	arg, err := l.sql.keysArg(keys)
	if err != nil {
		return 0, err
	}
	n, err := l.conn.Exec(ctx, statement, append([]any{arg}, args...)...)
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
	open := eachAccountOnce(l.keys.OpenString) // the debits of one submission share their sealed accounts
	err = l.conn.Query(ctx, l.sql.entries, []any{arg}, func(row storage.Scanner) error {
		var (
			e                               Entry
			failure, withdrawnAs            string
			submitted, settlesAt, withdrawn int64
		)
		if err := row.Scan(&e.Key, &e.Amount, &e.BSB, &e.AccountNumber, &failure, &submitted, &settlesAt, &withdrawn, &withdrawnAs); err != nil {
			return err
		}
		plain, err := open(account{e.BSB, e.AccountNumber})
		if err != nil {
			return fmt.Errorf("the account of %s: %w", e.Key, err)
		}
		e.BSB, e.AccountNumber = plain.bsb, plain.number
		e.Failure = rail.Failure(failure)
		e.SubmittedAt, e.SettlesAt = time.UnixMilli(submitted).UTC(), time.UnixMilli(settlesAt).UTC()
		if withdrawn != 0 {
			e.WithdrawnAt, e.WithdrawnAs = time.UnixMilli(withdrawn).UTC(), rail.Failure(withdrawnAs)
		}
		entries = append(entries, e)
		return nil
	})
	return entries, err
}

// eraseBatch is how many entries one statement of EraseAccounts erases, so that no statement
// holds many rows' locks for long.
const eraseBatch = 1000

// EraseAccounts erases the account (BSB and account number) of every entry submitted at or
// before `before`, a batch at a time, and returns how many entries it erased. The entry keeps its
// amount, outcome and times: the rail still answers for the debit.
func (l *Ledger) EraseAccounts(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		n, err := l.conn.Exec(ctx, l.sql.erase, before.UnixMilli(), eraseBatch)
		total += int(n)
		if err != nil || n < eraseBatch {
			return total, err
		}
	}
}

// Reseal seals again, with the current key of the ring, the account of every entry that holds
// one in plaintext or sealed with another key, a page of size entries at a time, each page in
// one statement; it returns how many entries it sealed. An entry whose account changed between
// the read and the write (erased) is left as it is.
func (l *Ledger) Reseal(ctx context.Context, size int) (int, error) {
	if size < 1 {
		return 0, fmt.Errorf("sandbox ledger: reseal: page size %d", size)
	}
	total, after := 0, ""
	for {
		var page []resealed
		err := l.conn.Query(ctx, l.sql.accountsAfter, []any{after, size}, func(row storage.Scanner) error {
			var r resealed
			if err := row.Scan(&r.Key, &r.OldBSB, &r.OldAccount); err != nil {
				return err
			}
			page = append(page, r)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("sandbox ledger: read accounts after %q: %w", after, err)
		}
		if beforeResealWrite != nil {
			beforeResealWrite()
		}
		var stale []resealed
		for _, r := range page {
			if !l.keys.Stale(r.OldBSB) && !l.keys.Stale(r.OldAccount) {
				continue
			}
			var errBSB, errNumber error
			r.NewBSB, errBSB = l.keys.Reseal(sealedBSB, r.OldBSB)
			r.NewAccount, errNumber = l.keys.Reseal(sealedAccountNumber, r.OldAccount)
			if err := errors.Join(errBSB, errNumber); err != nil {
				return total, fmt.Errorf("sandbox ledger: the account of %s: %w", r.Key, err)
			}
			stale = append(stale, r)
		}
		if len(stale) > 0 {
			args, err := l.sql.resealArgs(stale)
			if err != nil {
				return total, err
			}
			n, err := l.conn.Exec(ctx, l.sql.reseal, args...)
			total += int(n)
			if err != nil {
				return total, fmt.Errorf("sandbox ledger: reseal: %w", err)
			}
		}
		if len(page) < size {
			return total, nil
		}
		after = page[len(page)-1].Key
	}
}

// beforeResealWrite, when set by a test, runs between the read of a page and its write.
var beforeResealWrite func()

// resealed is an entry's account as read, and as sealed again.
type resealed struct {
	Key        string `json:"key"`
	OldBSB     string `json:"oldBsb"`
	OldAccount string `json:"oldAccount"`
	NewBSB     string `json:"bsb"`
	NewAccount string `json:"account"`
}

// dialect is the ledger's SQL for one engine. Times are Unix milliseconds, as in the engines'
// tables; a NULL failure is a debit that succeeds.
type dialect struct {
	// record inserts the entries that recordArgs encodes, ignoring keys already recorded.
	record     string
	recordArgs func([]Entry) ([]any, error)
	// entries selects the key, amount, bsb, account number, failure ('' for none), submission,
	// settlement and withdrawal (0 for none) times, and the failure a withdrawn key answers ('' for
	// none), of the keys that keysArg encodes.
	entries string
	keysArg func([]string) (any, error)
	// withdraw records withdrawn at $2, answering $3, the keys, encoded by keysArg, that are not
	// recorded.
	withdraw string
	// settleBy sets the settlement time of the taken debits of the keys that settle after $2 to $2.
	settleBy string
	// erase blanks the account of up to $2 entries submitted at or before $1 that hold one.
	erase string
	// accountsAfter selects the key, bsb and account number of up to $2 entries holding an
	// account whose key is after $1, by key.
	accountsAfter string
	// reseal writes each entry's new account where its account is still the old one.
	reseal     string
	resealArgs func([]resealed) ([]any, error)
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
		entries: `SELECT idempotency_key, amount, bsb, account_number, coalesce(failure, ''), submitted_at, settles_at, coalesce(withdrawn_at, 0),
       coalesce(withdrawn_as, '')
FROM sandbox_ledger WHERE idempotency_key IN (SELECT value FROM json_each(?))`,
		withdraw: `INSERT INTO sandbox_ledger (idempotency_key, amount, bsb, account_number, failure, submitted_at, settles_at, withdrawn_at, withdrawn_as)
SELECT value, 0, '', '', NULL, ?2, ?2, ?2, ?3 FROM json_each(?1) WHERE TRUE
ON CONFLICT (idempotency_key) DO NOTHING`,
		settleBy: `UPDATE sandbox_ledger SET settles_at = ?2
WHERE idempotency_key IN (SELECT value FROM json_each(?1)) AND withdrawn_at IS NULL AND settles_at > ?2`,
		keysArg: func(keys []string) (any, error) {
			b, err := json.Marshal(keys)
			return string(b), err
		},
		erase: `UPDATE sandbox_ledger SET bsb = '', account_number = ''
WHERE idempotency_key IN (SELECT idempotency_key FROM sandbox_ledger WHERE bsb <> '' AND submitted_at <= ?1 LIMIT ?2)`,
		accountsAfter: `SELECT idempotency_key, bsb, account_number FROM sandbox_ledger
WHERE idempotency_key > ?1 AND bsb <> '' ORDER BY idempotency_key LIMIT ?2`,
		reseal: `UPDATE sandbox_ledger AS l SET bsb = json_extract(v.value, '$.bsb'), account_number = json_extract(v.value, '$.account')
FROM jsonb_each(?) AS v
WHERE l.idempotency_key = json_extract(v.value, '$.key')
  AND l.bsb = json_extract(v.value, '$.oldBsb') AND l.account_number = json_extract(v.value, '$.oldAccount')`,
		resealArgs: func(rs []resealed) ([]any, error) {
			b, err := json.Marshal(rs)
			return []any{string(b)}, err
		},
	},
	storage.EnginePostgres: {
		// PostgreSQL takes one array per column, the i-th entry being the i-th of each.
		record: `INSERT INTO sandbox_ledger (idempotency_key, amount, bsb, account_number, failure, submitted_at, settles_at)
SELECT e.key, e.amount, e.bsb, e.account_number, nullif(e.failure, ''), e.submitted_at, e.settles_at
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])
  AS e (key, amount, bsb, account_number, failure, submitted_at, settles_at)
ORDER BY e.key
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
		entries: `SELECT idempotency_key, amount, bsb, account_number, coalesce(failure, ''), submitted_at, settles_at, coalesce(withdrawn_at, 0),
       coalesce(withdrawn_as, '')
FROM sandbox_ledger WHERE idempotency_key = ANY ($1::text[])`,
		// In the order of the keys, as record inserts: two inserting some of the same keys in
		// other orders would each wait for the other's, and one would fail, deadlocked.
		withdraw: `INSERT INTO sandbox_ledger (idempotency_key, amount, bsb, account_number, failure, submitted_at, settles_at, withdrawn_at, withdrawn_as)
SELECT k, 0, '', '', NULL, $2, $2, $2, $3 FROM unnest($1::text[]) AS k ORDER BY k
ON CONFLICT (idempotency_key) DO NOTHING`,
		settleBy: `UPDATE sandbox_ledger SET settles_at = $2
WHERE idempotency_key = ANY ($1::text[]) AND withdrawn_at IS NULL AND settles_at > $2`,
		keysArg: func(keys []string) (any, error) { return keys, nil },
		erase: `UPDATE sandbox_ledger SET bsb = '', account_number = ''
WHERE idempotency_key IN (SELECT idempotency_key FROM sandbox_ledger WHERE bsb <> '' AND submitted_at <= $1 LIMIT $2)`,
		accountsAfter: `SELECT idempotency_key, bsb, account_number FROM sandbox_ledger
WHERE idempotency_key > $1 AND bsb <> '' ORDER BY idempotency_key LIMIT $2`,
		reseal: `UPDATE sandbox_ledger AS l SET bsb = v.bsb, account_number = v.account_number
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS v (key, old_bsb, old_account_number, bsb, account_number)
WHERE l.idempotency_key = v.key AND l.bsb = v.old_bsb AND l.account_number = v.old_account_number`,
		resealArgs: func(rs []resealed) ([]any, error) {
			n := len(rs)
			keys, oldBSBs, oldAccounts, bsbs, accounts := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			for i, r := range rs {
				keys[i], oldBSBs[i], oldAccounts[i], bsbs[i], accounts[i] = r.Key, r.OldBSB, r.OldAccount, r.NewBSB, r.NewAccount
			}
			return []any{keys, oldBSBs, oldAccounts, bsbs, accounts}, nil
		},
	},
}
