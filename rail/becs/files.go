package becs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/pyng/receivables/rail/becs/aba"
	"github.com/pyng/receivables/storage"
)

// FileState is where a file stands.
type FileState string

// The states of a file: cut (stored), delivered (to the outbox directory), lodged (with the
// bank, so its debits succeeded), or expired: not lodged, and too late to be (its debits failed
// expired, or are about to).
const (
	FileCut       FileState = "cut"
	FileDelivered FileState = "delivered"
	FileLodged    FileState = "lodged"
	FileExpired   FileState = "expired"
)

// File is a direct-entry file as the rail keeps it.
type File struct {
	ID       string
	SiteID   string
	CutAt    time.Time
	Rows     int
	Total    int64 // the sum of its debits, in cents
	Checksum string
	// EarliestDeadline is the earliest deadline of its debits: it can be lodged until
	// LodgeMargin before it.
	EarliestDeadline time.Time
	DeliveredAt      time.Time // zero until delivered
	LodgedAt         time.Time // zero until lodged
}

// State is the file's state at now.
func (f File) State(now time.Time) FileState {
	switch {
	case !f.LodgedAt.IsZero():
		return FileLodged
	case !now.Before(f.LodgeBy()):
		return FileExpired
	case !f.DeliveredAt.IsZero():
		return FileDelivered
	}
	return FileCut
}

// LodgeBy is when it is too late to lodge the file.
func (f File) LodgeBy() time.Time { return f.EarliestDeadline.Add(-LodgeMargin) }

// Name is the file's name in the outbox directory.
func (f File) Name() string { return f.ID + ".aba" }

// maxFileRows bounds the debits of one file, inside the format's six-digit count.
const maxFileRows = 500_000

// maxFileTotal bounds the sum of one file's debits, in cents: the most its totals' ten-digit
// amount fields hold, as does, self-balancing, its credit of that sum.
const maxFileTotal = 9_999_999_999

// Cut puts every queued debit of each site into new files of the site, stored whole with their
// checksums, and returns the files it cut: as many as keep each within maxFileRows debits and
// maxFileTotal cents. Each file is cut in one transaction that claims its debits, so a debit
// goes in exactly one file however many replicas cut at once, and a cut interrupted leaves
// nothing. A debit whose deadline is less than LodgeMargin away is left out: its file could not
// be lodged in time, so its row fails expired. loc is the debit user's time zone, in which the
// file's processing date is the day of the cut.
func (r *Rail) Cut(ctx context.Context, loc *time.Location) ([]File, error) {
	now := r.clock.Now()
	var sites []string
	err := r.conn.Query(ctx, r.q(`SELECT DISTINCT site_id FROM becs_debits WHERE file_id IS NULL AND deadline > $1 ORDER BY site_id`),
		[]any{now.Add(LodgeMargin).UnixMilli()}, func(row storage.Scanner) error {
			var s string
			sites = append(sites, s)
			return row.Scan(&sites[len(sites)-1])
		})
	if err != nil {
		return nil, fmt.Errorf("becs rail: sites to cut: %w", err)
	}
	var files []File
	var errs []error
	for _, site := range sites {
		for {
			f, cut, err := r.cutSite(ctx, site, now, loc)
			if err != nil {
				errs = append(errs, fmt.Errorf("becs rail: cut a file of site %s: %w", site, err))
			}
			if err != nil || !cut {
				break
			}
			files = append(files, f)
		}
	}
	return files, errors.Join(errs...)
}

// BeforeCutCommit, when set by a test, runs in a cut's transaction before it commits.
var BeforeCutCommit func()

// claimed is a debit a cut claimed, its account still sealed.
type claimed struct {
	key, ref, bsb, account, title string
	amount, deadline              int64
}

func (r *Rail) cutSite(ctx context.Context, site string, now time.Time, loc *time.Location) (f File, cut bool, err error) {
	f = File{ID: newID("file"), SiteID: site, CutAt: now.Truncate(time.Millisecond)}
	err = r.conn.InTx(ctx, func(tx storage.Statements) error {
		u, err := user(ctx, tx, r.q, site)
		if err != nil {
			return err
		}
		var debits []claimed
		// The first debits by key that fit in one file. A debit another cut claimed meanwhile is
		// left out, which only makes the file smaller.
		err = tx.Query(ctx, r.q(`UPDATE becs_debits SET file_id = $1
WHERE idempotency_key IN (SELECT idempotency_key FROM (
                            SELECT idempotency_key, sum(amount) OVER (ORDER BY idempotency_key) AS running_total
                            FROM becs_debits WHERE site_id = $2 AND file_id IS NULL AND deadline > $3
                            ORDER BY idempotency_key LIMIT $4) AS first
                          WHERE running_total <= $5)
  AND file_id IS NULL
RETURNING idempotency_key, lodgement_reference, bsb, account_number, title, amount, deadline`),
			[]any{f.ID, site, now.Add(LodgeMargin).UnixMilli(), maxFileRows, maxFileTotal}, func(row storage.Scanner) error {
				var d claimed
				err := row.Scan(&d.key, &d.ref, &d.bsb, &d.account, &d.title, &d.amount, &d.deadline)
				debits = append(debits, d)
				return err
			})
		if err != nil || len(debits) == 0 {
			return err
		}
		content, err := r.build(&f, u, loc, debits)
		if err != nil {
			return err
		}
		sealed, err := r.keys.SealString(sealedContent, string(content))
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, r.q(`INSERT INTO becs_files (id, site_id, cut_at, row_count, total, earliest_deadline, checksum, content)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`), f.ID, site, f.CutAt.UnixMilli(), f.Rows, f.Total, f.EarliestDeadline.UnixMilli(), f.Checksum, sealed); err != nil {
			return err
		}
		if BeforeCutCommit != nil {
			BeforeCutCommit()
		}
		cut = true
		return nil
	})
	return f, cut && err == nil, err
}

// build makes the file of the claimed debits, in the order of their lodgement references, and
// sets f's rows, total, earliest deadline and checksum.
func (r *Rail) build(f *File, u aba.DebitUser, loc *time.Location, debits []claimed) ([]byte, error) {
	slices.SortFunc(debits, func(a, b claimed) int {
		if a.ref < b.ref {
			return -1
		}
		return 1
	})
	opened := map[string]string{}
	open := func(aad, v string) (string, error) {
		if p, ok := opened[aad+"\x00"+v]; ok {
			return p, nil
		}
		p, err := r.keys.OpenString(aad, v)
		opened[aad+"\x00"+v] = p
		return p, err
	}
	items := make([]aba.Debit, len(debits))
	earliest := debits[0].deadline
	for i, d := range debits {
		bsb, err1 := open(sealedBSB, d.bsb)
		account, err2 := open(sealedAccount, d.account)
		title, err3 := open(sealedTitle, d.title)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("the account of %s: %w", d.key, err)
		}
		items[i] = aba.Debit{BSB: aba.BSB(bsb), Account: account, Title: title, Amount: d.amount, LodgementReference: d.ref}
		f.Total += d.amount
		earliest = min(earliest, d.deadline)
	}
	file, err := aba.NewDebitFile(u, f.CutAt.In(loc), items)
	if err != nil {
		return nil, err
	}
	content, err := file.MarshalText()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(content)
	f.Rows, f.Checksum, f.EarliestDeadline = len(debits), hex.EncodeToString(sum[:]), time.UnixMilli(earliest).UTC()
	return content, nil
}

const fileColumns = `id, site_id, cut_at, row_count, total, earliest_deadline, checksum, coalesce(delivered_at, 0), coalesce(lodged_at, 0)`

func scanFile(row storage.Scanner) (File, error) {
	var f File
	var cut, earliest, delivered, lodged int64
	err := row.Scan(&f.ID, &f.SiteID, &cut, &f.Rows, &f.Total, &earliest, &f.Checksum, &delivered, &lodged)
	f.CutAt, f.EarliestDeadline = time.UnixMilli(cut).UTC(), time.UnixMilli(earliest).UTC()
	if delivered != 0 {
		f.DeliveredAt = time.UnixMilli(delivered).UTC()
	}
	if lodged != 0 {
		f.LodgedAt = time.UnixMilli(lodged).UTC()
	}
	return f, err
}

// Files returns the site's files, oldest first.
func (r *Rail) Files(ctx context.Context, siteID string) ([]File, error) {
	return r.filesWhere(ctx, `site_id = $1 ORDER BY cut_at, id`, siteID)
}

// Unlodged returns the files not lodged that still may be (their lodge-by time is ahead), the
// earliest lodge-by first: what the bank has yet to be given, cut but not delivered, or delivered
// to the outbox for the operator to upload.
func (r *Rail) Unlodged(ctx context.Context) ([]File, error) {
	return r.filesWhere(ctx, `lodged_at IS NULL AND earliest_deadline > $1 ORDER BY earliest_deadline, id`,
		r.clock.Now().Add(LodgeMargin).UnixMilli())
}

// filesWhere returns the files the condition (and order) selects.
func (r *Rail) filesWhere(ctx context.Context, condition string, args ...any) ([]File, error) {
	var files []File
	err := r.conn.Query(ctx, r.q(`SELECT `+fileColumns+` FROM becs_files WHERE `+condition), args,
		func(row storage.Scanner) error {
			f, err := scanFile(row)
			files = append(files, f)
			return err
		})
	return files, err
}

// File returns the file with the id, or ErrNotFound.
func (r *Rail) File(ctx context.Context, id string) (File, error) {
	var f File
	found := false
	err := r.conn.Query(ctx, r.q(`SELECT `+fileColumns+` FROM becs_files WHERE id = $1`), []any{id}, func(row storage.Scanner) error {
		found = true
		var err error
		f, err = scanFile(row)
		return err
	})
	if err == nil && !found {
		err = fmt.Errorf("file %s: %w", id, ErrNotFound)
	}
	return f, err
}

// Content returns the file's exact bytes, checked against its checksum.
func (r *Rail) Content(ctx context.Context, id string) ([]byte, error) {
	var sealed, checksum string
	found := false
	err := r.conn.Query(ctx, r.q(`SELECT content, checksum FROM becs_files WHERE id = $1`), []any{id}, func(row storage.Scanner) error {
		found = true
		return row.Scan(&sealed, &checksum)
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("file %s: %w", id, ErrNotFound)
	}
	if sealed == "" {
		return nil, fmt.Errorf("file %s: %w (its bank details were erased; its checksum is %s)", id, ErrErased, checksum)
	}
	content, err := r.keys.OpenString(sealedContent, sealed)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", id, err)
	}
	if sum := sha256.Sum256([]byte(content)); hex.EncodeToString(sum[:]) != checksum {
		return nil, fmt.Errorf("file %s: its bytes do not match its checksum %s", id, checksum)
	}
	return []byte(content), nil
}

// Keys returns the keys (rows' ids) of the debits in the file.
func (r *Rail) Keys(ctx context.Context, fileID string) ([]string, error) {
	var keys []string
	err := r.conn.Query(ctx, r.q(`SELECT idempotency_key FROM becs_debits WHERE file_id = $1 ORDER BY lodgement_reference`), []any{fileID},
		func(row storage.Scanner) error {
			var k string
			err := row.Scan(&k)
			keys = append(keys, k)
			return err
		})
	return keys, err
}

// Deliver delivers every file neither delivered nor lodged to dest, and returns the files it
// delivered. A delivery stages the whole file to dest under a temporary name, marks it delivered,
// then publishes it under its name (Destination) and records that; when dest lodges what it is
// given (the bank's SFTP server), the file is lodged with its publication, so its debits succeed.
// A delivery cut short before its mark is done again whole, which the bank never saw; one cut
// short after it is published by the next run (first of all), never staged again: so the
// destination never holds a file twice, nor part of one, even where the bank takes each file away
// as it arrives. A file lodged otherwise (through the bank's portal, then Lodge) is not delivered:
// the bank would collect its debits twice. A file that could no longer be lodged in time (within
// LodgeMargin of its debits' earliest deadline) is put nowhere, for no one to lodge, its staged
// copy, if any, removed: its rows fail expired. Deliver returns those as expired, for the operator
// to be told.
//
// Of replicas delivering at once, one delivers each file: on PostgreSQL a delivery holds the
// file's row locked (FOR UPDATE SKIP LOCKED) from before the stage until the mark commits, and the
// others pass over it; in one process (SQLite's only) deliveries take turns. A replica killed
// while delivering holds its file until PostgreSQL sees its connection close (at once for a killed
// process; for a host that vanished, within the 5 minutes a delivery may stay idle in its
// transaction): the next run delivers it.
func (r *Rail) Deliver(ctx context.Context, dest Destination) (delivered, expired []File, err error) {
	if r.conn.Dialect() != storage.EnginePostgres {
		delivering.Lock()
		defer delivering.Unlock()
	}
	delivered, expired, err = r.publishDelivered(ctx, dest)
	files, qerr := r.filesWhere(ctx, `delivered_at IS NULL AND lodged_at IS NULL AND content <> '' ORDER BY cut_at, id`)
	if qerr != nil {
		return delivered, expired, errors.Join(err, fmt.Errorf("becs rail: files to deliver: %w", qerr))
	}
	for _, f := range files {
		if !r.clock.Now().Before(f.LodgeBy()) {
			expired = append(expired, f) // its rows fail expired: neither the bank nor the operator may see it
			continue
		}
		var marked bool
		var ferr error
		if r.conn.Dialect() == storage.EnginePostgres {
			ferr = r.conn.InTx(ctx, func(tx storage.Statements) error {
				// Should this replica's host vanish mid-delivery, the server ends the session, and
				// releases the row, rather than wait for TCP to notice.
				if _, err := tx.Exec(ctx, `SET LOCAL idle_in_transaction_session_timeout = '5min'`); err != nil {
					return err
				}
				claimed := false
				err := tx.Query(ctx, `SELECT id FROM becs_files WHERE id = $1 AND delivered_at IS NULL AND lodged_at IS NULL FOR UPDATE SKIP LOCKED`, []any{f.ID},
					func(row storage.Scanner) error {
						claimed = true
						var id string
						return row.Scan(&id)
					})
				if err != nil || !claimed {
					return err // delivered, or being delivered, by another replica; or lodged since listed
				}
				marked, err = r.stageAndMark(ctx, tx, dest, &f)
				return err
			})
		} else {
			var again File
			if again, ferr = r.File(ctx, f.ID); ferr == nil && again.DeliveredAt.IsZero() && again.LodgedAt.IsZero() {
				marked, ferr = r.stageAndMark(ctx, r.conn, dest, &f)
			}
		}
		if ferr == nil && marked {
			var p publication
			switch p, ferr = r.publish(ctx, dest, &f); {
			case p == tooLate:
				expired = append(expired, f)
			case p == published && ferr == nil:
				delivered = append(delivered, f)
			}
		}
		err = errors.Join(err, ferr) // the other files are delivered all the same
	}
	return delivered, expired, err
}

// delivering makes the deliveries of one process take turns where the database has no row locks
// (SQLite, which one process serves).
var delivering sync.Mutex

// stageAndMark stages the file f to dest and marks it delivered with s; it reports whether it
// marked it.
func (r *Rail) stageAndMark(ctx context.Context, s storage.Statements, dest Destination, f *File) (bool, error) {
	content, err := r.Content(ctx, f.ID)
	if err != nil {
		return false, err
	}
	if err := dest.Stage(ctx, f.Name(), content); err != nil {
		return false, fmt.Errorf("becs rail: deliver file %s to %s: %w", f.ID, dest, err)
	}
	if BeforeDeliveredMark != nil {
		BeforeDeliveredMark()
	}
	now := r.clock.Now().Truncate(time.Millisecond)
	n, err := s.Exec(ctx, r.q(`UPDATE becs_files SET delivered_at = $2 WHERE id = $1 AND delivered_at IS NULL`), f.ID, now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("becs rail: mark file %s delivered: %w", f.ID, err)
	}
	f.DeliveredAt = now
	return n == 1, nil
}

// publishDelivered publishes the files marked delivered that no run published (a crash, or a
// failure of the destination, cut short the delivery between its mark and its publication), and
// returns those it published and those too late to be.
func (r *Rail) publishDelivered(ctx context.Context, dest Destination) (done, expired []File, err error) {
	files, err := r.filesWhere(ctx, `published_at IS NULL AND delivered_at IS NOT NULL AND removed_at IS NULL ORDER BY delivered_at, id`)
	if err != nil {
		return nil, nil, fmt.Errorf("becs rail: files to publish: %w", err)
	}
	for _, f := range files {
		p, ferr := r.publish(ctx, dest, &f)
		switch {
		case p == tooLate:
			expired = append(expired, f)
		case p == published && ferr == nil:
			done = append(done, f)
		}
		err = errors.Join(err, ferr) // one file that cannot be published holds up no other
	}
	return done, expired, err
}

// publication is what publish did with a file.
type publication int

const (
	published       publication = iota
	tooLate                     // not lodged and past its lodge-by time: not published, its staged copy removed
	lodgedElsewhere             // lodged by the operator while staged: not published, its staged copy removed
)

// publish publishes the delivered file f to dest and records it, lodged if dest lodges it. A file
// lodged otherwise since it was staged (Lodge), or whose lodge-by time has passed, is published
// only if it was before (its staged copy gone: a crash came between the rename and its record);
// else its staged copy is removed, for no one to lodge.
func (r *Rail) publish(ctx context.Context, dest Destination, f *File) (publication, error) {
	if BeforePublish != nil {
		BeforePublish()
	}
	now := r.clock.Now().Truncate(time.Millisecond)
	if held := !f.LodgedAt.IsZero(); held || !now.Before(f.LodgeBy()) {
		staged, err := dest.Unstage(ctx, f.Name())
		if err != nil {
			return published, fmt.Errorf("becs rail: remove the staged copy of file %s from %s: %w", f.ID, dest, err)
		}
		if staged {
			_, err := r.conn.Exec(ctx, r.q(`UPDATE becs_files SET removed_at = $2 WHERE id = $1`), f.ID, now.UnixMilli())
			if err != nil {
				err = fmt.Errorf("becs rail: record file %s unpublished: %w", f.ID, err)
			}
			if held {
				return lodgedElsewhere, err
			}
			return tooLate, err
		}
	} else if err := dest.Publish(ctx, f.Name()); err != nil {
		return published, fmt.Errorf("becs rail: publish file %s to %s (it is staged there; the next delivery publishes it): %w", f.ID, dest, err)
	}
	mark := `UPDATE becs_files SET published_at = $2 WHERE id = $1`
	if dest.Lodges() {
		// The file is with the bank: its debits will be debited, so it is lodged now, even within
		// the margin, as long as the debits' rows are not expired.
		mark = `UPDATE becs_files SET published_at = $2, lodged_at = coalesce(lodged_at, $2) WHERE id = $1 AND earliest_deadline > $2`
	}
	n, err := r.conn.Exec(ctx, r.q(mark), f.ID, now.UnixMilli())
	if err != nil {
		return published, fmt.Errorf("becs rail: mark file %s published: %w", f.ID, err)
	}
	if n == 0 {
		_, err := r.conn.Exec(ctx, r.q(`UPDATE becs_files SET published_at = $2 WHERE id = $1`), f.ID, now.UnixMilli())
		return published, errors.Join(err, fmt.Errorf("becs rail: file %s reached %s after the deadline of its debits, whose rows failed expired: "+
			"have the bank recall it", f.ID, dest))
	}
	if dest.Lodges() && f.LodgedAt.IsZero() {
		f.LodgedAt = now
	}
	return published, nil
}

// BeforeDeliveredMark, when set by a test, runs after a file is staged and before it is marked
// delivered; BeforePublish, before a file marked delivered is published.
var BeforeDeliveredMark, BeforePublish func()

// writeSynced writes content to the file name, replacing any, and syncs it.
func writeSynced(name string, content []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir syncs a directory, so that a rename in it survives a crash of the machine.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// sameContent reports whether the file name exists holding content.
func sameContent(name string, content []byte) (bool, error) {
	got, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil && bytes.Equal(got, content), err
}

// ErrTooLate is the error of lodging a file after it could be.
var ErrTooLate = errors.New("too late to lodge")

// Lodge records that the file was lodged with the bank now, so that its debits succeed. Lodging
// a file lodged before changes nothing. It refuses (ErrTooLate) once it is less than
// LodgeMargin before the earliest deadline of the file's debits: their rows are about to fail
// expired, or have, and the partner must not be told a debit failed whose money moves.
func (r *Rail) Lodge(ctx context.Context, id string) (File, error) {
	f, err := r.File(ctx, id)
	if err != nil || !f.LodgedAt.IsZero() {
		return f, err
	}
	now := r.clock.Now().Truncate(time.Millisecond)
	n, err := r.conn.Exec(ctx, r.q(`UPDATE becs_files SET lodged_at = $2 WHERE id = $1 AND lodged_at IS NULL AND earliest_deadline > $3`),
		id, now.UnixMilli(), now.Add(LodgeMargin).UnixMilli())
	if err != nil {
		return f, fmt.Errorf("becs rail: lodge file %s: %w", id, err)
	}
	if f, err = r.File(ctx, id); err != nil || n == 1 || !f.LodgedAt.IsZero() {
		return f, err
	}
	return f, fmt.Errorf("%w: file %s was cut at %s; the earliest deadline of its debits is %s, and a file must be lodged at least %s before it. "+
		"Its debits fail (or have failed) expired and the partner is told so: do not lodge this file with the bank; its debits can be submitted again in a new batch",
		ErrTooLate, id, f.CutAt.Format(time.RFC3339), f.EarliestDeadline.Format(time.RFC3339), LodgeMargin)
}
