package becs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/storage"
)

var _ rail.AccountEraser = (*Rail)(nil)

// ErrErased is the error of reading a file whose content was erased (see EraseAccounts).
var ErrErased = errors.New("its content was erased")

// eraseBatch is how many debits one statement of EraseAccounts erases, so that no statement
// holds many rows' locks for long.
const eraseBatch = 1000

// EraseAccounts erases the rail's copies of the bank details of debits submitted at or before
// `before` (the server's erasure of bank details, PYNG_BANK_DETAILS_RETENTION after the debits):
//
//   - each debit's BSB, account number and title of account; the debit keeps its key, lodgement
//     reference, amount, times and file, so returns still match it and its outcome stands. A
//     debit still queued, whose deadline has not passed, is left whole: it may yet be cut;
//   - the content of each file cut at or before `before` (every debit in it was submitted
//     before its cut) once it is lodged or too late to be, never while the bank may still be
//     given it (a file in the outbox waits for the operator to upload it): the file keeps its id, site,
//     times, rows, total and checksum, the record of what was debited, against which a copy the
//     operator or the bank keeps can be checked; its bytes can no longer be read (ErrErased);
//   - the record (the bank's line, with the account) of each unmatched returned item imported
//     at or before `before`; the item keeps its reference, amount, reason and problem.
//
// It returns how many debits, files and items it erased.
func (r *Rail) EraseAccounts(ctx context.Context, before time.Time) (rail.Erased, error) {
	now := r.clock.Now().UnixMilli()
	var erased rail.Erased
	for {
		n, err := r.conn.Exec(ctx, r.q(`UPDATE becs_debits SET bsb = '', account_number = '', title = ''
WHERE idempotency_key IN (SELECT idempotency_key FROM becs_debits
                          WHERE submitted_at <= $1 AND bsb <> '' AND (file_id IS NOT NULL OR deadline <= $2) LIMIT $3)`),
			before.UnixMilli(), now, eraseBatch)
		erased.Debits += int(n)
		if err != nil {
			return erased, fmt.Errorf("becs rail: erase the accounts of debits: %w", err)
		}
		if n < eraseBatch {
			break
		}
	}
	n, err := r.conn.Exec(ctx, r.q(`UPDATE becs_files SET content = ''
WHERE cut_at <= $1 AND content <> '' AND (lodged_at IS NOT NULL OR earliest_deadline <= $2)`), before.UnixMilli(), now)
	erased.Files = int(n)
	if err != nil {
		return erased, fmt.Errorf("becs rail: erase the content of files: %w", err)
	}
	n, err = r.conn.Exec(ctx, r.q(`UPDATE becs_unmatched_returns SET record = '' WHERE imported_at <= $1 AND record <> ''`),
		before.UnixMilli())
	erased.Returns = int(n)
	if err != nil {
		return erased, fmt.Errorf("becs rail: erase the records of unmatched returned items: %w", err)
	}
	return erased, nil
}

// RemoveErasedCopies has dest remove the copies it keeps of the files whose content was erased
// (EraseAccounts), the outbox's, once each, and returns how many files' copies it removed.
func (r *Rail) RemoveErasedCopies(ctx context.Context, dest Destination) (int, error) {
	files, err := r.filesWhere(ctx, `content = '' AND removed_at IS NULL ORDER BY cut_at, id`)
	if err != nil {
		return 0, fmt.Errorf("becs rail: files erased: %w", err)
	}
	for i, f := range files {
		if err := dest.Remove(ctx, f.Name()); err != nil {
			return i, fmt.Errorf("becs rail: remove the copies of erased file %s from %s: %w", f.ID, dest, err)
		}
		if _, err := r.conn.Exec(ctx, r.q(`UPDATE becs_files SET removed_at = $2 WHERE id = $1`), f.ID, r.clock.Now().UnixMilli()); err != nil {
			return i, fmt.Errorf("becs rail: record the copies of file %s removed: %w", f.ID, err)
		}
	}
	return len(files), nil
}

// sealedTable is a table of the rail's that holds sealed columns.
type sealedTable struct {
	name string
	// key is the expression that identifies a row, in an order a page is read in.
	key     string
	columns []string // each the additional data of its values: name.column
	// page bounds how many rows a page holds, whatever the caller asks (a file's content is
	// large).
	page int
}

var sealedTables = []sealedTable{
	{name: "becs_debits", key: "idempotency_key", columns: []string{"bsb", "account_number", "title"}},
	{name: "becs_files", key: "id", columns: []string{"content"}, page: 16},
	{name: "becs_unmatched_returns", key: "source || '/' || line", columns: []string{"record"}},
}

// ResealTables seals again, with the current key of the ring, every sealed value of the rail's
// tables that is sealed with another key (or stored in plaintext), a page of size rows at a time,
// each page written in one statement; it returns how many rows of each table it sealed. A value
// that changed between the read and the write (erased, or sealed by another rotation) is left as
// it is, so two rotations at once seal each value once.
func (r *Rail) ResealTables(ctx context.Context, size int) (map[string]int, error) {
	if size < 1 {
		return nil, fmt.Errorf("becs rail: reseal: page size %d", size)
	}
	out := map[string]int{}
	for _, t := range sealedTables {
		n, err := r.reseal(ctx, t, size)
		out[t.name] = n
		if err != nil {
			return out, fmt.Errorf("becs rail: reseal %s: %w", t.name, err)
		}
	}
	return out, nil
}

func (r *Rail) reseal(ctx context.Context, t sealedTable, size int) (int, error) {
	if t.page > 0 {
		size = min(size, t.page)
	}
	cols := strings.Join(t.columns, ", ")
	read := r.q(fmt.Sprintf(`SELECT %[1]s AS k, %[2]s FROM %[3]s WHERE %[1]s > $1 AND %[4]s <> '' ORDER BY k LIMIT $2`,
		t.key, cols, t.name, t.columns[0]))
	// The page as one JSON array of objects: k, and for each column c, o_c (as read) and n_c
	// (sealed again).
	var set, where []string
	if r.conn.Dialect() == storage.EngineSQLite {
		for _, c := range t.columns {
			set = append(set, fmt.Sprintf("%s = v.value ->> 'n_%s'", c, c))
			where = append(where, fmt.Sprintf("%s.%s = v.value ->> 'o_%s'", t.name, c, c))
		}
		where = append(where, fmt.Sprintf("%s = v.value ->> 'k'", qualify(t.name, t.key)))
	} else {
		types := []string{"k text"}
		for _, c := range t.columns {
			set = append(set, fmt.Sprintf("%s = v.n_%s", c, c))
			where = append(where, fmt.Sprintf("%s.%s = v.o_%s", t.name, c, c))
			types = append(types, fmt.Sprintf("o_%s text, n_%s text", c, c))
		}
		where = append(where, fmt.Sprintf("%s = v.k", qualify(t.name, t.key)))
		write := fmt.Sprintf(`UPDATE %s SET %s FROM jsonb_to_recordset($1::jsonb) AS v (%s) WHERE %s`,
			t.name, strings.Join(set, ", "), strings.Join(types, ", "), strings.Join(where, " AND "))
		return r.resealPages(ctx, t, read, write, size)
	}
	write := fmt.Sprintf(`UPDATE %s SET %s FROM json_each(?1) AS v WHERE %s`,
		t.name, strings.Join(set, ", "), strings.Join(where, " AND "))
	return r.resealPages(ctx, t, read, write, size)
}

// qualify prefixes the columns of a key expression with the table's name, so that they do not
// name the columns of the page (json_each has an id).
func qualify(table, key string) string {
	if key == "idempotency_key" || key == "id" {
		return table + "." + key
	}
	return strings.NewReplacer("source", table+".source", "line", table+".line").Replace(key)
}

func (r *Rail) resealPages(ctx context.Context, t sealedTable, read, write string, size int) (int, error) {
	total, after := 0, ""
	for {
		var page []map[string]string
		err := r.conn.Query(ctx, read, []any{after, size}, func(row storage.Scanner) error {
			values := make([]string, 1+len(t.columns))
			dest := make([]any, len(values))
			for i := range values {
				dest[i] = &values[i]
			}
			if err := row.Scan(dest...); err != nil {
				return err
			}
			m := map[string]string{"k": values[0]}
			for i, c := range t.columns {
				m["o_"+c] = values[1+i]
			}
			page = append(page, m)
			return nil
		})
		if err != nil {
			return total, err
		}
		var stale []map[string]string
		for _, m := range page {
			isStale := false
			for _, c := range t.columns {
				isStale = isStale || r.keys.Stale(m["o_"+c])
			}
			if !isStale {
				continue
			}
			for _, c := range t.columns {
				v := m["o_"+c]
				if v != "" {
					if v, err = r.keys.Reseal(t.name+"."+c, v); err != nil {
						return total, fmt.Errorf("row %s: %w", m["k"], err)
					}
				}
				m["n_"+c] = v
			}
			stale = append(stale, m)
		}
		if len(stale) > 0 {
			arg, err := jsonArg(stale)
			if err != nil {
				return total, err
			}
			n, err := r.conn.Exec(ctx, write, arg)
			total += int(n)
			if err != nil {
				return total, err
			}
		}
		if len(page) < size {
			return total, nil
		}
		after = page[len(page)-1]["k"]
	}
}
