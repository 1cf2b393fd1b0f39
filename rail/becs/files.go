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
	// PublishedAt is when it was published under its name (Destination), zero until then: to
	// the bank's server, lodged; to an outbox, for the operator to lodge.
	PublishedAt time.Time
	LodgedAt    time.Time // zero until lodged
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

const fileColumns = `id, site_id, cut_at, row_count, total, earliest_deadline, checksum, coalesce(delivered_at, 0), coalesce(published_at, 0), coalesce(lodged_at, 0)`

// scanFile scans the fileColumns of a row, and then those of extra.
func scanFile(row storage.Scanner, extra ...any) (File, error) {
	var f File
	var cut, earliest, delivered, published, lodged int64
	err := row.Scan(append([]any{&f.ID, &f.SiteID, &cut, &f.Rows, &f.Total, &earliest, &f.Checksum, &delivered, &published, &lodged}, extra...)...)
	f.CutAt, f.EarliestDeadline = time.UnixMilli(cut).UTC(), time.UnixMilli(earliest).UTC()
	f.DeliveredAt, f.PublishedAt, f.LodgedAt = millis(delivered), millis(published), millis(lodged)
	return f, err
}

// millis is the time of Unix milliseconds ms, or the zero time for 0 (a column's NULL).
func millis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
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
// as it arrives.
//
// A file lodged otherwise (through the bank's portal, then Lodge) is neither staged nor
// published: the bank would collect its debits twice. The mark is made only while the file is not
// lodged, and the publication reads the file again, holding it (publish) until its rename is
// recorded, and Lodge records nothing while it holds it: a file lodged before the publication
// took hold of it is not published (its staged copies removed); one whose publication came first
// is lodged by it (the bank's server), and Lodge refuses, on PostgreSQL once its record has waited
// for the hold (ErrLodgedMeanwhile), on SQLite at once, for the operator to run it again
// (ErrBeingPublished).
//
// A file that can no longer be lodged in time (within LodgeMargin of its debits' earliest
// deadline) is put nowhere, for no one to lodge, its rows failing expired: not staged if it was
// not (what a stage cut short left of it removed), not published if it was staged (its staged
// copy removed), and removed from dest if it was published there and not lodged by then (an
// outbox's file the operator did not lodge in time). Deliver returns those as expired, once each
// (the file is recorded removed), for the operator to be told.
//
// Of replicas delivering at once, one delivers each file: on PostgreSQL a delivery holds the
// file's row locked (FOR UPDATE SKIP LOCKED) from before the stage until the mark commits, and
// again from before the publication until it is recorded, and the others pass over it; in one
// process (SQLite's only) deliveries take turns, and none holds a transaction while it reaches
// dest (the process's one connection, the API's too, would wait for the bank's server, up to its
// timeout): a publication claims its file (publishing_at) with a statement, and records it with
// another, which clears the claim; a claim a crash left is taken over by the next run. A replica
// killed while delivering holds its file until PostgreSQL sees its connection close (at once for
// a killed process; for a host that vanished, within the 5 minutes a delivery may stay idle in
// its transaction): the next run delivers it.
func (r *Rail) Deliver(ctx context.Context, dest Destination) (delivered, expired []File, err error) {
	if r.conn.Dialect() != storage.EnginePostgres {
		delivering.Lock()
		defer delivering.Unlock()
	}
	delivered, expired, err = r.publishDelivered(ctx, dest)
	removed, rerr := r.removeUnlodged(ctx, dest)
	expired, err = append(expired, removed...), errors.Join(err, rerr)
	files, qerr := r.filesWhere(ctx, `delivered_at IS NULL AND lodged_at IS NULL AND removed_at IS NULL AND content <> '' ORDER BY cut_at, id`)
	if qerr != nil {
		return delivered, expired, errors.Join(err, fmt.Errorf("becs rail: files to deliver: %w", qerr))
	}
	for _, f := range files {
		var marked, late bool
		ferr := r.claim(ctx, f.ID, func(s storage.Statements) error {
			if !r.clock.Now().Before(f.LodgeBy()) {
				late = true // its rows fail expired: neither the bank nor the operator may see it
				return r.unstageExpired(ctx, s, dest, f)
			}
			var err error
			marked, err = r.stageAndMark(ctx, s, dest, &f)
			return err
		})
		switch {
		case late:
			expired = append(expired, f) // told even when its staged copy could not be removed: the next run tries again
		case ferr == nil && marked:
			var p publication
			switch f, p, ferr = r.publish(ctx, dest, f.ID); {
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

// claim runs fn for the file id if it is neither delivered, lodged nor removed, as this
// delivery's alone: on PostgreSQL in a transaction holding its row locked, fn's statements in it
// (a file another replica holds is passed over); on SQLite, whose deliveries take turns, with
// fn's statements on the database, since a transaction would hold the process's one connection
// through the upload.
func (r *Rail) claim(ctx context.Context, id string, fn func(s storage.Statements) error) error {
	const claimable = `delivered_at IS NULL AND lodged_at IS NULL AND removed_at IS NULL`
	if r.conn.Dialect() != storage.EnginePostgres {
		if _, found, err := r.hold(ctx, r.conn, id, claimable); err != nil || !found {
			return err // lodged, or put aside, since listed
		}
		return fn(r.conn)
	}
	return r.conn.InTx(ctx, func(tx storage.Statements) error {
		// Should this replica's host vanish mid-delivery, the server ends the session, and
		// releases the row, rather than wait for TCP to notice.
		if _, err := tx.Exec(ctx, `SET LOCAL idle_in_transaction_session_timeout = '5min'`); err != nil {
			return err
		}
		if _, found, err := r.hold(ctx, tx, id, claimable); err != nil || !found {
			return err // delivered, or being delivered, by another replica; or lodged, or put aside, since listed
		}
		return fn(tx)
	})
}

// hold reads the file id with s if it meets the condition; on PostgreSQL it locks its row (until
// s, a transaction, ends), and finds no file while another transaction holds it.
func (r *Rail) hold(ctx context.Context, s storage.Statements, id, condition string) (f File, found bool, err error) {
	lock := ""
	if r.conn.Dialect() == storage.EnginePostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	err = s.Query(ctx, r.q(`SELECT `+fileColumns+` FROM becs_files WHERE id = $1 AND `+condition+lock), []any{id},
		func(row storage.Scanner) error {
			found = true
			var err error
			f, err = scanFile(row)
			return err
		})
	return f, found, err
}

// unstageExpired removes from dest what a stage of the file f, too late to be delivered, left
// there (a delivery cut short before its mark: part of the file, or the whole, in plaintext), and
// records f removed with s, so that no later run looks for it again.
func (r *Rail) unstageExpired(ctx context.Context, s storage.Statements, dest Destination, f File) error {
	if _, err := dest.Unstage(ctx, f.Name()); err != nil {
		return fmt.Errorf("becs rail: remove the staged copy of file %s, too late to lodge, from %s: %w", f.ID, dest, err)
	}
	if _, err := s.Exec(ctx, r.q(`UPDATE becs_files SET removed_at = $2 WHERE id = $1 AND removed_at IS NULL`),
		f.ID, r.clock.Now().UnixMilli()); err != nil {
		return fmt.Errorf("becs rail: record file %s, too late to lodge, put nowhere: %w", f.ID, err)
	}
	return nil
}

// stageAndMark stages the file f to dest and marks it delivered with s, if it is not lodged; it
// reports whether it marked it. A file lodged while it was staged (only on SQLite, where nothing
// holds it: another process's Lodge) is not marked, and its staged copy is removed.
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
	n, err := s.Exec(ctx, r.q(`UPDATE becs_files SET delivered_at = $2
WHERE id = $1 AND delivered_at IS NULL AND lodged_at IS NULL AND removed_at IS NULL`), f.ID, now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("becs rail: mark file %s delivered: %w", f.ID, err)
	}
	if n == 1 {
		f.DeliveredAt = now
		return true, nil
	}
	if _, undelivered, err := r.hold(ctx, s, f.ID, `delivered_at IS NULL`); err != nil || !undelivered {
		return false, err // delivered by another: its staged copy is its to publish
	}
	if _, err := dest.Unstage(ctx, f.Name()); err != nil {
		return false, fmt.Errorf("becs rail: remove the staged copy of file %s, lodged while it was staged, from %s: %w", f.ID, dest, err)
	}
	return false, nil
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
		f, p, ferr := r.publish(ctx, dest, f.ID)
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

// removeUnlodged removes from dest the files published there and not lodged by their lodge-by
// time (an outbox's, which the operator did not lodge in time: its rows fail expired, and no one
// may lodge it now), records each removed, and returns those it removed, once each. A file the
// bank's server was given is lodged with it, or, given after its debits' deadline, the bank's.
func (r *Rail) removeUnlodged(ctx context.Context, dest Destination) ([]File, error) {
	now := r.clock.Now()
	files, err := r.filesWhere(ctx, `published_at IS NOT NULL AND lodged_at IS NULL AND removed_at IS NULL AND earliest_deadline <= $1
ORDER BY earliest_deadline, id`, now.Add(LodgeMargin).UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("becs rail: files too late to lodge: %w", err)
	}
	var removed []File
	var errs []error
	for _, f := range files {
		if err := dest.Remove(ctx, f.Name()); err != nil {
			errs = append(errs, fmt.Errorf("becs rail: remove file %s, not lodged and too late to be, from %s: %w", f.ID, dest, err))
			continue
		}
		n, err := r.conn.Exec(ctx, r.q(`UPDATE becs_files SET removed_at = $2 WHERE id = $1 AND removed_at IS NULL AND lodged_at IS NULL`),
			f.ID, now.UnixMilli())
		if err != nil {
			errs = append(errs, fmt.Errorf("becs rail: record file %s removed from %s: %w", f.ID, dest, err))
			continue
		}
		if n == 1 {
			removed = append(removed, f)
		}
	}
	return removed, errors.Join(errs...)
}

// publication is what publish did with a file.
type publication int

const (
	published       publication = iota
	tooLate                     // not lodged and past its lodge-by time: not published, its staged copy removed
	lodgedElsewhere             // lodged by the operator while staged: not published, its staged copy removed
	passedOver                  // left as it was: published or put aside by another run, held by another, or the publication failed
)

// publishable is the condition of a file whose delivery is to be published: delivered, and
// neither published nor put aside.
const publishable = `delivered_at IS NOT NULL AND published_at IS NULL AND removed_at IS NULL`

// publish publishes the delivered file id to dest and records it, lodged if dest lodges it, and
// returns the file as it left it. It holds the file from before it reads it again until the
// publication is recorded, so that Lodge comes either before the publication, which then sees
// the file lodged, or after its record: on PostgreSQL in a transaction holding its row locked
// (passed over if another holds it), whose record Lodge waits for; on SQLite, whose process has
// one connection, which a transaction would hold (the API's too) for as long as dest takes (the
// bank's server, up to its timeout), by a claim (publishClaimed), which Lodge refuses to record
// over (ErrBeingPublished). A file lodged otherwise (Lodge), or whose lodge-by time has passed,
// is published only if it was before (its staged copy gone: a run cut short between the rename
// and its record); else its staged copies are removed, and what dest published of it
// (Destinations publish in turn), for no one to lodge.
func (r *Rail) publish(ctx context.Context, dest Destination, id string) (File, publication, error) {
	if BeforePublish != nil {
		BeforePublish()
	}
	if r.conn.Dialect() != storage.EnginePostgres {
		return r.publishClaimed(ctx, dest, id)
	}
	var f File
	p := passedOver
	var after error // what the operator must be told of a publication recorded
	err := r.conn.InTx(ctx, func(tx storage.Statements) error {
		if _, err := tx.Exec(ctx, `SET LOCAL idle_in_transaction_session_timeout = '5min'`); err != nil {
			return err
		}
		held, found, err := r.hold(ctx, tx, id, publishable)
		if err != nil || !found {
			return err // published or put aside by another run, or held by another replica
		}
		now := r.clock.Now().Truncate(time.Millisecond)
		if p, after, err = r.publishAt(ctx, dest, held, now); err != nil {
			return err
		}
		var late error
		f, late, err = r.recordPublication(ctx, tx, dest, held, p, now)
		after = errors.Join(after, late)
		return err
	})
	if err != nil {
		return f, passedOver, err
	}
	return f, p, after
}

// publishClaimed is publish on SQLite, with no transaction open while dest is reached. A short
// statement claims the file (publishing_at) if it is to be published and not lodged; the file is
// read again and published, or put aside, at dest (publishAt), and a statement of its own records
// that and clears the claim. A claim set already is a delivery's cut short (a crash: the process's
// deliveries take turns), which this one takes over: with its staged copy gone, the file was
// renamed, and its publication is recorded. A claim not made (the file lodged since it was staged,
// by another process's Lodge) leaves the file to be put aside as one lodged. A publication that
// fails at dest releases its claim, so that Lodge can record the file lodged otherwise (through
// the bank's portal, during an outage of its server); should the rename have been done all the
// same, the next run finds it done and says so (publishAt). One whose record fails keeps it: the
// file is renamed, and the next run records it.
func (r *Rail) publishClaimed(ctx context.Context, dest Destination, id string) (File, publication, error) {
	n, err := r.conn.Exec(ctx, r.q(`UPDATE becs_files SET publishing_at = $2 WHERE id = $1 AND `+publishable+` AND lodged_at IS NULL`),
		id, r.clock.Now().UnixMilli())
	if err != nil {
		return File{}, passedOver, fmt.Errorf("becs rail: claim file %s for its publication: %w", id, err)
	}
	f, found, err := r.hold(ctx, r.conn, id, publishable)
	if err != nil || !found || n == 0 && f.LodgedAt.IsZero() {
		return f, passedOver, err // published or put aside since listed
	}
	now := r.clock.Now().Truncate(time.Millisecond)
	p, after, err := r.publishAt(ctx, dest, f, now)
	if err != nil {
		if n == 1 {
			// Not when the context ends (the server stopping): Lodge would refuse the file until
			// the next run.
			_, rerr := r.conn.Exec(context.WithoutCancel(ctx), r.q(`UPDATE becs_files SET publishing_at = NULL WHERE id = $1 AND published_at IS NULL`), id)
			if rerr != nil {
				err = errors.Join(err, fmt.Errorf("becs rail: release file %s, unpublished (Lodge refuses it until the next delivery run): %w", id, rerr))
			}
		}
		return f, passedOver, err
	}
	f, late, err := r.recordPublication(ctx, r.conn, dest, f, p, now)
	if err != nil {
		return f, passedOver, err
	}
	return f, p, errors.Join(after, late)
}

// publishAt publishes the file f, which this delivery holds (publish), to dest, or, lodged
// otherwise or too late to lodge, removes its staged copies, and what dest published of it, and
// says which it did (published, lodgedElsewhere or tooLate). after is what the operator must be
// told once the publication is recorded.
func (r *Rail) publishAt(ctx context.Context, dest Destination, f File, now time.Time) (_ publication, after, err error) {
	lodged := !f.LodgedAt.IsZero()
	if !lodged && now.Before(f.LodgeBy()) {
		if err := dest.Publish(ctx, f.Name()); err != nil {
			return passedOver, nil, fmt.Errorf("becs rail: publish file %s to %s (it is staged there; the next delivery publishes it): %w", f.ID, dest, err)
		}
		return published, nil, nil
	}
	staged, err := dest.Unstage(ctx, f.Name())
	if err != nil {
		return passedOver, nil, fmt.Errorf("becs rail: remove the staged copy of file %s from %s: %w", f.ID, dest, err)
	}
	if !staged { // renamed by a run cut short before its record
		if lodged && dest.Lodges() {
			after = fmt.Errorf("becs rail: file %s was put on %s by a delivery cut short before its record, and then recorded lodged "+
				"otherwise (at %s): if it was lodged through the bank's portal too, the bank has it twice: have the bank recall one",
				f.ID, dest, f.LodgedAt.Format(time.RFC3339))
		}
		return published, after, nil
	}
	p, why := tooLate, "too late to lodge"
	if lodged {
		p, why = lodgedElsewhere, "lodged otherwise"
	}
	// The file is put aside whether or not what dest published of it is removed: with its staged
	// copy gone, a later run would take it for renamed, and record it published (lodged, on the
	// bank's server) though the bank never had it.
	if err := dest.Remove(ctx, f.Name()); err != nil {
		after = fmt.Errorf("becs rail: file %s is put aside (%s), but what %s was given of it could not be removed: remove %s there by hand, "+
			"no one may lodge it: %w", f.ID, why, dest, f.Name(), err)
	}
	return p, after, nil
}

// recordPublication records with s what publishAt did with the file f at now, clearing any claim
// on it (publishing_at): published, and lodged if dest lodges it; or, put aside, removed. It
// returns the file as recorded, and, published after its debits' deadline, what the operator
// must be told.
func (r *Rail) recordPublication(ctx context.Context, s storage.Statements, dest Destination, f File, p publication, now time.Time) (_ File, late, err error) {
	if p != published {
		if _, err := s.Exec(ctx, r.q(`UPDATE becs_files SET removed_at = $2, publishing_at = NULL WHERE id = $1`), f.ID, now.UnixMilli()); err != nil {
			return f, nil, fmt.Errorf("becs rail: record file %s unpublished: %w", f.ID, err)
		}
		return f, nil, nil
	}
	mark := `UPDATE becs_files SET published_at = $2, publishing_at = NULL WHERE id = $1`
	if dest.Lodges() {
		// The file is with the bank: its debits will be debited, so it is lodged now, even within
		// the margin, as long as the debits' rows are not expired.
		mark = `UPDATE becs_files SET published_at = $2, publishing_at = NULL, lodged_at = coalesce(lodged_at, $2) WHERE id = $1 AND earliest_deadline > $2`
	}
	n, err := s.Exec(ctx, r.q(mark), f.ID, now.UnixMilli())
	if err != nil {
		return f, nil, fmt.Errorf("becs rail: mark file %s published: %w", f.ID, err)
	}
	if n == 0 {
		if _, err := s.Exec(ctx, r.q(`UPDATE becs_files SET published_at = $2, publishing_at = NULL WHERE id = $1`), f.ID, now.UnixMilli()); err != nil {
			return f, nil, fmt.Errorf("becs rail: mark file %s published: %w", f.ID, err)
		}
		late = fmt.Errorf("becs rail: file %s reached %s after the deadline of its debits, whose rows failed expired: "+
			"have the bank recall it", f.ID, dest)
	} else if dest.Lodges() && f.LodgedAt.IsZero() {
		f.LodgedAt = now
	}
	f.PublishedAt = now
	return f, late, nil
}

// BeforeDeliveredMark, when set by a test, runs after a file is staged and before it is marked
// delivered; BeforePublish, before a file marked delivered is published (before its publication
// holds it).
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

// ErrLodgedMeanwhile is the error of lodging a file that was lodged otherwise while Lodge ran:
// by its publication to the bank's server, whose hold on the file the record waited for (or which
// came between Lodge's reading the file and its record).
var ErrLodgedMeanwhile = errors.New("lodged meanwhile")

// ErrBeingPublished is the error of lodging a file while a delivery publishes it (on SQLite,
// whose publications hold no transaction, and which Lodge does not wait for): the rename may be
// under way, and the record is refused until it is recorded.
var ErrBeingPublished = errors.New("being published")

// staleClaim is how old a claim of a file for its publication (publishing_at) is when its
// delivery must have been cut short (a crash, the server stopped): longer than a publication
// lasts, which reaches the bank's server in two sessions at most, each within its timeout (a
// minute by default).
const staleClaim = 5 * time.Minute

// lodgeAttempts bounds how often Lodge records a file again when its record was refused for a
// claim that its publication released at once.
const lodgeAttempts = 3

// Lodge records that the file was lodged with the bank now, so that its debits succeed. Lodging
// a file lodged before changes nothing. It refuses (ErrTooLate) once it is less than
// LodgeMargin before the earliest deadline of the file's debits: their rows are about to fail
// expired, or have, and the partner must not be told a debit failed whose money moves.
//
// A publication of the file in progress (Deliver) either sees the file lodged and publishes
// nothing, or comes first; a publication to the bank's server that came first lodges the file,
// and Lodge refuses (ErrLodgedMeanwhile): the bank has the file from its server, and the operator,
// who lodged it otherwise too, must have the bank recall one. On PostgreSQL Lodge's record waits
// for the publication, which holds the file's row locked. On SQLite the publication holds the
// file by a claim (publishing_at), no lock, and Lodge refuses (ErrBeingPublished) while it is
// under way, for the command to be run again once it is recorded; a claim a delivery cut short
// left is taken over by the server's next delivery run, which finishes the publication.
func (r *Rail) Lodge(ctx context.Context, id string) (File, error) {
	f, err := r.File(ctx, id)
	if err != nil || !f.LodgedAt.IsZero() {
		return f, err
	}
	for attempt := 1; ; attempt++ {
		now := r.clock.Now().Truncate(time.Millisecond)
		n, err := r.conn.Exec(ctx, r.q(`UPDATE becs_files SET lodged_at = $2
WHERE id = $1 AND lodged_at IS NULL AND earliest_deadline > $3 AND (publishing_at IS NULL OR published_at IS NOT NULL)`),
			id, now.UnixMilli(), now.Add(LodgeMargin).UnixMilli())
		if err != nil {
			return f, fmt.Errorf("becs rail: lodge file %s: %w", id, err)
		}
		var publishing int64
		if f, err = r.fileWithClaim(ctx, id, &publishing); err != nil || n == 1 {
			return f, err
		}
		switch {
		case !f.LodgedAt.IsZero():
			return f, fmt.Errorf("%w: file %s was lodged at %s, while this record waited, by its delivery to the bank's server (or another record); "+
				"nothing was recorded. If it was also lodged otherwise (through the bank's portal), the bank has it twice: have the bank recall one",
				ErrLodgedMeanwhile, id, f.LodgedAt.Format(time.RFC3339))
		case publishing != 0 && f.PublishedAt.IsZero():
			return f, errBeingPublished(id, millis(publishing), now)
		case !f.EarliestDeadline.After(now.Add(LodgeMargin)):
			return f, fmt.Errorf("%w: file %s was cut at %s; the earliest deadline of its debits is %s, and a file must be lodged at least %s before it. "+
				"Its debits fail (or have failed) expired and the partner is told so: do not lodge this file with the bank; its debits can be submitted again in a new batch",
				ErrTooLate, id, f.CutAt.Format(time.RFC3339), f.EarliestDeadline.Format(time.RFC3339), LodgeMargin)
		case attempt == lodgeAttempts:
			return f, errBeingPublished(id, time.Time{}, now)
		}
		// Claimed at the record, and released since (its publication recorded, or failed).
	}
}

// fileWithClaim returns the file with the id, as File does, and sets publishing to its claim for
// its publication (Unix milliseconds, 0 for none).
func (r *Rail) fileWithClaim(ctx context.Context, id string, publishing *int64) (File, error) {
	var f File
	found := false
	err := r.conn.Query(ctx, r.q(`SELECT `+fileColumns+`, coalesce(publishing_at, 0) FROM becs_files WHERE id = $1`), []any{id},
		func(row storage.Scanner) error {
			found = true
			var err error
			f, err = scanFile(row, publishing)
			return err
		})
	if err == nil && !found {
		err = fmt.Errorf("file %s: %w", id, ErrNotFound)
	}
	return f, err
}

// errBeingPublished is Lodge's refusal of the file id, claimed for its publication since since
// (zero: claimed again and again), at now.
func errBeingPublished(id string, since, now time.Time) error {
	const twice = "If the delivery is to the bank's server, it lodges the file, and the command then shows it lodged: " +
		"if it was also lodged otherwise (through the bank's portal), the bank has it twice: have the bank recall one"
	if !since.IsZero() && now.Sub(since) >= staleClaim {
		return fmt.Errorf("%w: file %s was left being delivered (since %s) by a delivery run that did not finish (the server stopped during it); "+
			"nothing was recorded. The server's next delivery run (within a minute of the server running) finishes the delivery: "+
			"run the command again then. %s", ErrBeingPublished, id, since.Format(time.RFC3339), twice)
	}
	return fmt.Errorf("%w: file %s is being delivered right now (renamed on the bank's server or in the outbox); nothing was recorded: "+
		"run the command again in a minute. %s", ErrBeingPublished, id, twice)
}
