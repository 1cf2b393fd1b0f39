package becs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/pyng/receivables/rail/becs/aba"
	"github.com/pyng/receivables/storage"
)

// sealedRecord is the sealed column of an unmatched item's record.
const sealedRecord = "becs_unmatched_returns.record"

// Returns is a returns file the bank sent, read, with each item matched to the debit it returns.
type Returns struct {
	// Source is the SHA-256 of the file's bytes as the bank wrote them (aba.Canonical), hex.
	Source string
	Items  []ReturnedItem
}

// ReturnedItem is one item of a returns file.
type ReturnedItem struct {
	Line   int // its line in the file (the descriptive record is line 1)
	Return aba.Return
	// Key is the key (the row's id) of the debit the item returns, when it matches one: a debit
	// of the rail that went in a file, with the item's lodgement reference and amount.
	Key string
	// Problem says why the item matches no debit (Key is then empty), or, once the caller
	// found the debit's row could not be returned, why not.
	Problem string
	record  []byte
}

// ErrNotReturns is the error of a direct-entry file given where a returns file is expected.
var ErrNotReturns = errors.New("not a returns file")

// MatchReturns reads a returns file (type 2 records) and matches each of its items to the debit
// it returns, by lodgement reference. A file that does not read (aba.Errors, with each problem's
// line and column) or is not a returns file (ErrNotReturns) is an error, and nothing is matched.
// A file of no items, the "nil" returns file some banks send on a day without returns, is a
// returns file that matches nothing; a file of several blocks (aba.ReadBlocks), one for each user
// ID or day, gives the items of every block, in the file's order. It writes nothing.
func (r *Rail) MatchReturns(ctx context.Context, content []byte) (Returns, error) {
	blocks, err := aba.ReadBlocks(bytes.NewReader(content))
	if err != nil {
		return Returns{}, err
	}
	content = aba.Canonical(content)
	sum := sha256.Sum256(content)
	out := Returns{Source: hex.EncodeToString(sum[:])}
	lines := bytes.Split(content, crlf)
	line := 1 // of the block's descriptive record
	for _, f := range blocks {
		if len(f.Details) > 0 {
			return Returns{}, fmt.Errorf("%w: it holds %d detail records (type 1); a returns file holds returned items only",
				ErrNotReturns, len(f.Details))
		}
		for i, ret := range f.Returns {
			out.Items = append(out.Items, ReturnedItem{Line: line + 1 + i, Return: ret, record: lines[line+i]})
		}
		line += f.Records()
	}
	if err := r.match(ctx, out.Items); err != nil {
		return Returns{}, err
	}
	return out, nil
}

// match matches each item to the debit it returns: the debit of the item's lodgement reference
// (unique among every site's debits), put in a file, of the item's amount; it sets the item's Key,
// or its Problem.
func (r *Rail) match(ctx context.Context, items []ReturnedItem) error {
	refs := make([]string, len(items))
	for i, it := range items {
		refs[i] = it.Return.LodgementReference
	}
	type debit struct {
		key, file string
		amount    int64
	}
	debits := make(map[string]debit, len(refs))
	arg, err := jsonArg(refs)
	if err != nil {
		return err
	}
	err = r.conn.Query(ctx, r.q(`SELECT d.lodgement_reference, d.idempotency_key, coalesce(d.file_id, ''), d.amount
FROM `+r.values(1)+` JOIN becs_debits d ON d.lodgement_reference = v.value`), []any{arg}, func(row storage.Scanner) error {
		var ref string
		var d debit
		err := row.Scan(&ref, &d.key, &d.file, &d.amount)
		debits[ref] = d
		return err
	})
	if err != nil {
		return fmt.Errorf("becs rail: match returns: %w", err)
	}
	for i := range items {
		it := &items[i]
		d, ok := debits[it.Return.LodgementReference]
		switch {
		case !ok:
			it.Problem = "no debit of this rail has this lodgement reference"
		case d.file == "":
			it.Problem = "its debit was never put in a file"
		case d.amount != it.Return.Amount:
			it.Problem = fmt.Sprintf("its debit's amount is %d cents, the item's %d", d.amount, it.Return.Amount)
		default:
			it.Key = d.key
		}
	}
	return nil
}

var crlf = []byte("\r\n")

// UnmatchedReturn is an item of a returns file kept because it matched no debit that could be
// returned.
type UnmatchedReturn struct {
	Source             string // the SHA-256 of the file it came in
	Line               int
	LodgementReference string
	Amount             int64
	Reason             aba.ReturnReason
	Problem            string
	ImportedAt         time.Time
}

// KeepUnmatched keeps the items of the returns file that have a Problem, each once however many
// times the file is imported, and forgets those kept from an earlier import, of this file or
// another (the bank's files may overlap), that an item without one now matches, by lodgement
// reference and amount (their debit's row has since been returned); it returns how many it added.
func (r *Rail) KeepUnmatched(ctx context.Context, source string, items []ReturnedItem) (int, error) {
	now := r.clock.Now().UnixMilli()
	added := 0
	err := r.conn.InTx(ctx, func(tx storage.Statements) error {
		added = 0
		if err := r.forgetMatched(ctx, tx, items); err != nil {
			return err
		}
		for _, it := range items {
			if it.Problem == "" {
				continue
			}
			record, err := r.keys.SealString(sealedRecord, string(it.record))
			if err != nil {
				return err
			}
			n, err := tx.Exec(ctx, r.q(`INSERT INTO becs_unmatched_returns (source, line, lodgement_reference, amount, reason, problem, record, imported_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source, line) DO NOTHING`),
				source, it.Line, it.Return.LodgementReference, it.Return.Amount, int(it.Return.Reason), it.Problem, record, now)
			if err != nil {
				return fmt.Errorf("becs rail: keep an unmatched return: %w", err)
			}
			added += int(n)
		}
		return nil
	})
	return added, err
}

// MatchKept matches again the items kept unmatched that name a debit of a file recorded lodged:
// an item imported before its debit's row succeeded (the file lodged at the bank and not yet
// recorded lodged, the bank's returns file imported first) matches its debit as an item of a file
// imported now would. It returns them by the returns file they came in (their Source), in the
// order they were imported, each item with its Key or its Problem, as MatchReturns does; the
// caller records the returns of those matched, then forgets them (ForgetMatched). It writes
// nothing. An item whose debit's deadline is more than KeptMatchWindow past is left out: its row
// succeeded by then or never will (a file is lodged before its rows' deadlines, and their
// outcomes are recorded by the deadline's sweep at the latest), so an item that still matches
// nothing (another amount, say) stays kept, for the operator, without being looked at again.
func (r *Rail) MatchKept(ctx context.Context) ([]Returns, error) {
	var out []Returns
	since := r.clock.Now().Add(-KeptMatchWindow).UnixMilli()
	err := r.conn.Query(ctx, r.q(`SELECT u.source, u.line, u.lodgement_reference, u.amount, u.reason FROM becs_unmatched_returns u
WHERE EXISTS (SELECT 1 FROM becs_debits d JOIN becs_files f ON f.id = d.file_id
              WHERE d.lodgement_reference = u.lodgement_reference AND f.lodged_at IS NOT NULL AND d.deadline > $1)
ORDER BY u.imported_at, u.source, u.line`), []any{since}, func(row storage.Scanner) error {
		var source string
		var line, reason int64
		var ret aba.Return
		if err := row.Scan(&source, &line, &ret.LodgementReference, &ret.Amount, &reason); err != nil {
			return err
		}
		ret.Reason = aba.ReturnReason(reason)
		if len(out) == 0 || out[len(out)-1].Source != source {
			out = append(out, Returns{Source: source})
		}
		last := &out[len(out)-1]
		last.Items = append(last.Items, ReturnedItem{Line: int(line), Return: ret})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("becs rail: the unmatched returns kept: %w", err)
	}
	for _, returns := range out {
		if err := r.match(ctx, returns.Items); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// KeptMatchWindow is how long after its debit's deadline a kept item is matched again (MatchKept):
// a day, well past the deadline's sweep and its grace for a rail that cannot be asked.
const KeptMatchWindow = 24 * time.Hour

// ForgetMatched forgets the items kept unmatched, of any returns file, that the items without a
// Problem match by lodgement reference and amount (their debit's row is returned), keeping the
// others as they are.
func (r *Rail) ForgetMatched(ctx context.Context, items []ReturnedItem) error {
	return r.forgetMatched(ctx, r.conn, items)
}

// forgetMatched is ForgetMatched in tx. A kept item of another file than the items' is forgotten
// too: the bank's files may overlap, and a lodgement reference is one debit's.
func (r *Rail) forgetMatched(ctx context.Context, tx storage.Statements, items []ReturnedItem) error {
	type returned struct {
		Ref    string `json:"ref"`
		Amount int64  `json:"amount"`
	}
	var matched []returned
	for _, it := range items {
		if it.Problem == "" {
			matched = append(matched, returned{Ref: it.Return.LodgementReference, Amount: it.Return.Amount})
		}
	}
	if len(matched) == 0 {
		return nil
	}
	arg, err := jsonArg(matched)
	if err != nil {
		return err
	}
	forget := `DELETE FROM becs_unmatched_returns AS u USING jsonb_to_recordset($1::jsonb) AS m (ref text, amount bigint)
WHERE u.lodgement_reference = m.ref AND u.amount = m.amount`
	if r.conn.Dialect() == storage.EngineSQLite {
		forget = `DELETE FROM becs_unmatched_returns
WHERE (lodgement_reference, amount) IN (SELECT value ->> '$.ref', value ->> '$.amount' FROM json_each(?1))`
	}
	if _, err := tx.Exec(ctx, forget, arg); err != nil {
		return fmt.Errorf("becs rail: forget returns matched since: %w", err)
	}
	return nil
}

// Unmatched returns the unmatched items kept, in the order they were imported.
func (r *Rail) Unmatched(ctx context.Context) ([]UnmatchedReturn, error) {
	var out []UnmatchedReturn
	err := r.conn.Query(ctx, `SELECT source, line, lodgement_reference, amount, reason, problem, imported_at FROM becs_unmatched_returns
ORDER BY imported_at, source, line`, nil, func(row storage.Scanner) error {
		var u UnmatchedReturn
		var line, reason, at int64
		err := row.Scan(&u.Source, &line, &u.LodgementReference, &u.Amount, &reason, &u.Problem, &at)
		u.Line, u.Reason, u.ImportedAt = int(line), aba.ReturnReason(reason), time.UnixMilli(at).UTC()
		out = append(out, u)
		return err
	})
	return out, err
}

// ReturnsOf makes the returns file the debit user's bank would send back for some debits of a
// direct-entry file (content, as the rail cut it): each debit whose lodgement reference is a key
// of reasons, returned for its reason, processed on day at. It is for tests, the benchmark and
// an operator's drills: a real returns file comes from the bank.
func ReturnsOf(content []byte, reasons map[string]aba.ReturnReason, at time.Time) ([]byte, error) {
	f, err := aba.Read(bytes.NewReader(content))
	if err != nil {
		return nil, err
	}
	out := aba.File{ReelSequence: 1, Institution: f.Institution, UserName: f.UserName, UserID: f.UserID,
		Description: "RETURNS", ProcessingDate: at}
	for _, d := range f.Details {
		reason, ok := reasons[d.LodgementReference]
		if !ok || !d.Code.IsDebit() {
			continue
		}
		back := d.Entry // going back: to the trace account, from the account debited (aba.Return)
		back.BSB, back.Account, back.TraceBSB, back.TraceAccount = d.TraceBSB, d.TraceAccount, d.BSB, d.Account
		out.Returns = append(out.Returns, aba.Return{Entry: back, Reason: reason,
			OriginalDay: f.ProcessingDate.Day(), OriginalUserID: f.UserID})
	}
	return out.MarshalText()
}
