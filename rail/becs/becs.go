// Package becs is the BECS direct-entry rail: the debits of each site on it are gathered into a
// direct-entry ("ABA") file at each cut-off, the file is stored in the database, whole and with
// its checksum, before it is delivered to the debit user's bank (to a directory an operator
// uploads from), and the debits succeed once the file is lodged. Its tables and migrations are
// its own (becs_goose_version), reached through storage.Conn; the file format is package aba.
package becs

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/rail/becs/aba"
	"github.com/pyng/receivables/seal"
	"github.com/pyng/receivables/storage"
)

// Clock tells the time; the server passes the service's clock so that tests can move it.
type Clock interface {
	Now() time.Time
}

// Rail is the BECS rail over the database of its Conn.
type Rail struct {
	conn  storage.Conn
	keys  *seal.Keyring
	clock Clock
	// Poll is how long a debit not yet settled waits before its batch asks again.
	Poll time.Duration
}

var _ rail.Rail = (*Rail)(nil)

// LodgeMargin is how long before the earliest deadline of its debits a file can last be lodged,
// and a debit last be cut into a file: the time the server has to record the debits succeeded
// before their rows would fail expired.
const LodgeMargin = 15 * time.Minute

// LodgeWindow is the least time a file is given to be lodged after it is cut: an upload by SFTP
// takes a minute, an operator lodging by hand more. A debit whose deadline leaves less (one
// that reached the rail late) goes in a file apart with the other such debits of its site, so
// that it does not shorten the others' file's time; and the server refuses cut-offs so far
// apart that a debit queued just after one would leave less (PYNG_BECS_CUTOFFS).
const LodgeWindow = time.Hour

// DefaultPoll is the Rail's Poll unless set.
const DefaultPoll = time.Minute

//go:embed migrations
var migrations embed.FS

// VersionTable is the goose version table of the rail's migrations.
const VersionTable = "becs_goose_version"

// ErrNotFound is the error of a file or debit user that does not exist.
var ErrNotFound = errors.New("not found")

// Open applies the rail's pending migrations to conn's database and returns the rail.
func Open(ctx context.Context, conn storage.Conn, clock Clock) (*Rail, error) {
	if conn.Dialect() != storage.EngineSQLite && conn.Dialect() != storage.EnginePostgres {
		return nil, fmt.Errorf("becs rail: no SQL for dialect %q", conn.Dialect())
	}
	fsys, err := fs.Sub(migrations, "migrations/"+conn.Dialect())
	if err != nil {
		return nil, err
	}
	if err := conn.Migrate(ctx, fsys, VersionTable); err != nil {
		return nil, fmt.Errorf("becs rail: migrate: %w", err)
	}
	return &Rail{conn: conn, keys: conn.Keyring(), clock: clock, Poll: DefaultPoll}, nil
}

// q is a statement written with $N placeholders, in the dialect of the rail's database.
func (r *Rail) q(query string) string {
	if r.conn.Dialect() == storage.EngineSQLite {
		return strings.ReplaceAll(query, "$", "?")
	}
	return query
}

// values is a table, v, of one column, value: the strings of a JSON array given as placeholder
// $n. A query joins it to the rows it names rather than testing each row IN it, so that SQLite
// walks the array and finds each row by its index, with no temporary index of the array to build
// first (a sixth less time for 10,000 values). A value given twice gives its row twice.
func (r *Rail) values(n int) string {
	if r.conn.Dialect() == storage.EngineSQLite {
		return fmt.Sprintf("json_each(?%d) AS v", n)
	}
	return fmt.Sprintf("jsonb_array_elements_text($%d::jsonb) AS v(value)", n)
}

// lockInKeyOrder ends a subquery of the debits a statement updates so that, on PostgreSQL, it
// locks them in the order of their keys before the statement updates any: a cut's claim and a
// withdrawal of some of the same debits, each locking in the order of its own plan (a scan of the
// table, the keys' array), would otherwise deadlock, one of them failing. SQLite's transactions
// take turns.
func (r *Rail) lockInKeyOrder() string {
	if r.conn.Dialect() == storage.EnginePostgres {
		return ` ORDER BY idempotency_key FOR UPDATE`
	}
	return ""
}

func jsonArg(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// The sealed columns, each the additional data of its values (see seal.Keyring.Seal).
const (
	sealedBSB     = "becs_debits.bsb"
	sealedAccount = "becs_debits.account_number"
	sealedTitle   = "becs_debits.title"
	sealedContent = "becs_files.content"
)

// idEncoding spells the rail's own identifiers (files'), as billing spells its.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func newID(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return prefix + "_" + idEncoding.EncodeToString(b)
}

// LodgementReference is the reference a debit carries in its file, shown on the customer's
// statement and given back in a returns file: "PY" and the last 16 characters of the key, unique
// among the rail's debits (the table holds it unique). The last, not the first: a row's id
// starts with the millisecond it was made, which the rows of one batch share, so its first 16
// characters hold only 32 random bits, and of a few thousand batches of 1000 rows two debits
// would share a reference (the second failing to queue, its batch with it); the last 16 hold 78.
func LodgementReference(key string) string {
	_, id, _ := strings.Cut(key, "_")
	id = strings.ToUpper(id)
	return "PY" + id[max(len(id)-(aba.MaxLodgementReference-2), 0):]
}

// AccountTitle is the title of account a debit carries: the account's name as the customer gave
// it, or, for a customer who signed up before it was asked, the account holder's name.
func AccountTitle(a rail.Account) string {
	if strings.TrimSpace(a.Title) != "" {
		return Title(a.Title)
	}
	return Title(a.Name)
}

// Title is the title of account a debit carries: the account holder's name in the BECS character
// set, blanks collapsed, at most aba.MaxTitle characters. A letter with an accent is written
// without it (José is JOSE, not JOS), a letter of its own as the letters it stands for (ß as ss,
// Œ as OE), a phone's apostrophe or dash as ' or -; any other character becomes a blank.
func Title(name string) string {
	var b strings.Builder
	for _, c := range norm.NFD.String(titleLetters.Replace(name)) {
		switch {
		case unicode.Is(unicode.Mn, c): // the accent of the letter before it
		case c < 128 && aba.ValidText(string(c)):
			b.WriteRune(c)
		default:
			b.WriteByte(' ')
		}
	}
	t := strings.Join(strings.Fields(b.String()), " ")
	if len(t) > aba.MaxTitle {
		t = strings.TrimSpace(t[:aba.MaxTitle])
	}
	if t == "" {
		t = "ACCOUNT HOLDER"
	}
	return t
}

// titleLetters spells in the BECS character set the letters no accent taken off makes ASCII, and
// the apostrophes and dashes a phone's keyboard types.
var titleLetters = strings.NewReplacer(
	"ß", "ss", "Æ", "AE", "æ", "ae", "Œ", "OE", "œ", "oe", "Ø", "O", "ø", "o", "Đ", "D", "đ", "d",
	"Ł", "L", "ł", "l", "Þ", "TH", "þ", "th", "ı", "i",
	"\u2018", "'", "\u2019", "'", "\u02bc", "'", "\u2010", "-", "\u2011", "-", "\u2012", "-", "\u2013", "-", "\u2014", "-")

// debitJSON is a debit as Submit inserts it.
type debitJSON struct {
	Key       string `json:"key"`
	Site      string `json:"site"`
	Ref       string `json:"ref"`
	Amount    int64  `json:"amount"`
	BSB       string `json:"bsb"`
	Account   string `json:"account"`
	Title     string `json:"title"`
	Submitted int64  `json:"submitted"`
	UserID    string `json:"userId"`
	Deadline  int64  `json:"deadline"`
}

// Submit records the debits not recorded yet, each to be put in its site's next file, and
// returns their outcomes as they stand: a debit submitted again keeps its first record. Two
// submissions of a debit at once (two executions of its batch) record it once: on PostgreSQL the
// later one meets the earlier's lodgement reference, made from the same key, as often as its key,
// so any conflict is taken for the debit recorded; one that was another debit's is an error.
func (r *Rail) Submit(ctx context.Context, debits []rail.Debit) ([]rail.Outcome, error) {
	if len(debits) == 0 {
		return nil, nil
	}
	now := r.clock.Now().UnixMilli()
	sealed := map[string]string{} // the debits of a submission share few accounts: seal each once
	sealOnce := func(aad, v string) (string, error) {
		if s, ok := sealed[aad+"\x00"+v]; ok {
			return s, nil
		}
		s, err := r.keys.SealString(aad, v)
		sealed[aad+"\x00"+v] = s
		return s, err
	}
	records := make([]debitJSON, len(debits))
	keys := make([]string, len(debits))
	for i, d := range debits {
		if d.Currency != "AUD" {
			return nil, fmt.Errorf("becs rail: debit %s is in %s; BECS debits only AUD", d.Key, d.Currency)
		}
		if d.Site == "" {
			return nil, fmt.Errorf("becs rail: debit %s names no site", d.Key)
		}
		bsb, err1 := sealOnce(sealedBSB, d.Account.BSB)
		account, err2 := sealOnce(sealedAccount, d.Account.Number)
		title, err3 := sealOnce(sealedTitle, AccountTitle(d.Account))
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("becs rail: seal the account of %s: %w", d.Key, err)
		}
		records[i] = debitJSON{Key: d.Key, Site: d.Site, Ref: LodgementReference(d.Key), Amount: d.Amount,
			BSB: bsb, Account: account, Title: title, Submitted: now, Deadline: d.Deadline.UnixMilli(), UserID: d.UserID}
		keys[i] = d.Key
	}
	arg, err := jsonArg(records)
	if err != nil {
		return nil, err
	}
	// On PostgreSQL in the order of the keys, as Withdraw records the keys it does not hold: an
	// insert that meets a key another has inserted waits for it, and two inserting some of the same
	// keys in other orders would deadlock, one of them failing. SQLite's transactions take turns.
	insert := `INSERT INTO becs_debits (idempotency_key, site_id, lodgement_reference, amount, bsb, account_number, title, submitted_at, deadline, user_id)
SELECT e.key, e.site, e.ref, e.amount, e.bsb, e.account, e.title, e.submitted, e.deadline, nullif(e."userId", '')
FROM jsonb_to_recordset($1::jsonb) AS e (key text, site text, ref text, amount bigint, bsb text, account text, title text, submitted bigint, deadline bigint, "userId" text)
ORDER BY e.key
ON CONFLICT DO NOTHING`
	if r.conn.Dialect() == storage.EngineSQLite {
		insert = `INSERT INTO becs_debits (idempotency_key, site_id, lodgement_reference, amount, bsb, account_number, title, submitted_at, deadline, user_id)
SELECT value ->> 'key', value ->> 'site', value ->> 'ref', value ->> 'amount', value ->> 'bsb', value ->> 'account',
       value ->> 'title', value ->> 'submitted', value ->> 'deadline', nullif(value ->> 'userId', '')
FROM json_each(?1) WHERE TRUE
ON CONFLICT DO NOTHING`
	}
	if _, err := r.conn.Exec(ctx, insert, arg); err != nil {
		return nil, fmt.Errorf("becs rail: record debits: %w", err)
	}
	outcomes, err := r.Outcomes(ctx, keys)
	if err == nil && len(outcomes) < len(keys) {
		err = fmt.Errorf("becs rail: %d of %d debits were not recorded: each one's lodgement reference is another debit's", len(keys)-len(outcomes), len(keys))
	}
	return outcomes, err
}

// Withdraw marks the debits with the given keys that no file holds yet withdrawn, so that no cut
// sends them, erases their accounts, and reports every one as it stands (rail.Withdrawer): those
// withdrawn failed. A cut claims its debits in its own transaction, so a debit is either
// withdrawn or in a file, never both. A withdrawn debit stays recorded: Submit of its key again
// leaves it withdrawn. A key not submitted yet is recorded withdrawn (with no account), before
// the others are withdrawn: its row fails customerNotActive on this answer, and another execution
// of its batch that read the customer linked and submits it afterwards, then stops (a crash, an
// error) before it withdraws it itself, must not leave it queued for the cut-off. A debit past
// its deadline, which no cut takes, is left as it is: its row expires at the deadline, as every
// row open then does, rather than failing at the withdrawal, after it. A withdrawn debit's
// deadline becomes its withdrawal's time, so that the rail's version before withdrawn_at (a
// replica of it during a rolling upgrade, or run again by a rollback), which cuts every debit of
// no file whose deadline is ahead, cuts none withdrawn.
func (r *Rail) Withdraw(ctx context.Context, keys []string) ([]rail.Outcome, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	arg, err := jsonArg(keys)
	if err != nil {
		return nil, err
	}
	type withdrawal struct {
		Key string `json:"key"`
		Ref string `json:"ref"`
	}
	unsent := make([]withdrawal, len(keys))
	for i, k := range keys {
		unsent[i] = withdrawal{Key: k, Ref: LodgementReference(k)}
	}
	unsentArg, err := jsonArg(unsent)
	if err != nil {
		return nil, err
	}
	now := r.clock.Now().UnixMilli()
	record := `INSERT INTO becs_debits (idempotency_key, site_id, lodgement_reference, amount, bsb, account_number, title, submitted_at, deadline, withdrawn_at)
SELECT e.key, '', e.ref, 0, '', '', '', $2, $2, $2 FROM jsonb_to_recordset($1::jsonb) AS e (key text, ref text)
WHERE NOT EXISTS (SELECT 1 FROM becs_debits d WHERE d.idempotency_key = e.key)
ORDER BY e.key
ON CONFLICT DO NOTHING`
	if r.conn.Dialect() == storage.EngineSQLite {
		record = `INSERT INTO becs_debits (idempotency_key, site_id, lodgement_reference, amount, bsb, account_number, title, submitted_at, deadline, withdrawn_at)
SELECT value ->> 'key', '', value ->> 'ref', 0, '', '', '', ?2, ?2, ?2 FROM json_each(?1)
WHERE NOT EXISTS (SELECT 1 FROM becs_debits d WHERE d.idempotency_key = value ->> 'key')
ON CONFLICT DO NOTHING`
	}
	// Only the keys not recorded are inserted: on PostgreSQL an insert that meets a recorded debit
	// waits for a transaction that changed it, and a withdrawal must not wait for the debits it
	// leaves. They are inserted in the order of their keys, as Submit inserts its debits.
	if _, err := r.conn.Exec(ctx, record, unsentArg, now); err != nil {
		return nil, fmt.Errorf("becs rail: record the debits not submitted withdrawn: %w", err)
	}
	if _, err := r.conn.Exec(ctx, r.q(`UPDATE becs_debits SET withdrawn_at = $2, deadline = $2, bsb = '', account_number = '', title = ''
WHERE file_id IS NULL AND withdrawn_at IS NULL AND deadline > $2
  AND idempotency_key IN (SELECT idempotency_key FROM becs_debits WHERE file_id IS NULL AND withdrawn_at IS NULL AND deadline > $2
                          AND idempotency_key IN (SELECT v.value FROM `+r.values(1)+`)`+r.lockInKeyOrder()+`)`),
		arg, now); err != nil {
		return nil, fmt.Errorf("becs rail: withdraw debits: %w", err)
	}
	return r.Outcomes(ctx, keys)
}

// Outcomes reports each recorded debit: queued until a cut puts it in a file, then waiting for
// the file to be lodged, then succeeded when it was lodged; or failed FailureWithdrawn once
// withdrawn.
func (r *Rail) Outcomes(ctx context.Context, keys []string) ([]rail.Outcome, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	arg, err := jsonArg(keys)
	if err != nil {
		return nil, err
	}
	now := r.clock.Now()
	next := now.Add(r.Poll)
	var outcomes []rail.Outcome
	err = r.conn.Query(ctx, r.q(`SELECT d.idempotency_key, coalesce(d.file_id, ''), coalesce(f.lodged_at, 0), coalesce(d.withdrawn_at, 0)
FROM `+r.values(1)+` JOIN becs_debits d ON d.idempotency_key = v.value
LEFT JOIN becs_files f ON f.id = d.file_id`), []any{arg}, func(row storage.Scanner) error {
		var o rail.Outcome
		var lodged, withdrawn int64
		if err := row.Scan(&o.Key, &o.FileID, &lodged, &withdrawn); err != nil {
			return err
		}
		switch {
		case withdrawn != 0:
			o.Settled, o.Failure, o.SettledAt = true, rail.FailureWithdrawn, time.UnixMilli(withdrawn).UTC()
		case o.FileID == "":
			o.Queued, o.SettlesAt = true, next
		case lodged == 0:
			o.SettlesAt = next
		default:
			o.Settled, o.SettledAt = true, time.UnixMilli(lodged).UTC()
		}
		outcomes = append(outcomes, o)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("becs rail: outcomes: %w", err)
	}
	return outcomes, nil
}

// SetUser puts the site's debit user in place (or replaces it), after checking that a file of
// a debit can be made for it; its errors are aba.Errors naming the fields at fault.
func (r *Rail) SetUser(ctx context.Context, siteID string, u aba.DebitUser) (aba.DebitUser, error) {
	bsb, err := aba.ParseBSB(string(u.TraceBSB))
	if err != nil {
		return aba.DebitUser{}, err
	}
	u.TraceBSB = bsb
	sample := []aba.Debit{{BSB: "062-000", Account: "12345678", Title: "CHECK", Amount: 1, LodgementReference: "CHECK"}}
	if _, err := aba.NewDebitFile(u, r.clock.Now(), sample); err != nil {
		return aba.DebitUser{}, err
	}
	balancing := 0
	if u.SelfBalancing {
		balancing = 1
	}
	_, err = r.conn.Exec(ctx, r.q(`INSERT INTO becs_users (site_id, user_id, user_name, institution, description, trace_bsb, trace_account, remitter, self_balancing, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (site_id) DO UPDATE SET user_id = excluded.user_id, user_name = excluded.user_name, institution = excluded.institution,
  description = excluded.description, trace_bsb = excluded.trace_bsb, trace_account = excluded.trace_account,
  remitter = excluded.remitter, self_balancing = excluded.self_balancing, updated_at = excluded.updated_at`),
		siteID, u.UserID, u.UserName, u.Institution, u.Description, string(u.TraceBSB), u.TraceAccount, u.Remitter, balancing, r.clock.Now().UnixMilli())
	if err != nil {
		return aba.DebitUser{}, fmt.Errorf("becs rail: set the debit user of %s: %w", siteID, err)
	}
	return u, nil
}

// User returns the site's debit user, or ErrNotFound.
func (r *Rail) User(ctx context.Context, siteID string) (aba.DebitUser, error) {
	return user(ctx, r.conn, r.q, siteID)
}

func user(ctx context.Context, s storage.Statements, q func(string) string, siteID string) (aba.DebitUser, error) {
	var u aba.DebitUser
	found := false
	err := s.Query(ctx, q(`SELECT user_id, user_name, institution, description, trace_bsb, trace_account, remitter, self_balancing
FROM becs_users WHERE site_id = $1`), []any{siteID}, func(row storage.Scanner) error {
		var bsb string
		var balancing int64
		found = true
		err := row.Scan(&u.UserID, &u.UserName, &u.Institution, &u.Description, &bsb, &u.TraceAccount, &u.Remitter, &balancing)
		u.TraceBSB, u.SelfBalancing = aba.BSB(bsb), balancing != 0
		return err
	})
	if err == nil && !found {
		err = fmt.Errorf("the debit user of site %s: %w", siteID, ErrNotFound)
	}
	return u, err
}
