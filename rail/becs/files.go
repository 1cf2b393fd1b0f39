package becs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"
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

	// claim is the claim a delivery holds on it (publishing_at), Unix milliseconds, 0 for none;
	// beingPublished whether it is a claim for its publication (beingPublished).
	claim          int64
	beingPublished bool
	// stagedTo names the destination it was staged to, "" for none (or a file delivered before it
	// was recorded).
	stagedTo string
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
func (f File) Name() string { return f.ID + fileNameSuffix }

// fileIDPrefix begins a file's id (newID).
const fileIDPrefix = "file"

// fileNameSuffix ends a file's Name.
const fileNameSuffix = ".aba"

// fileIDOfName is the id of the file whose Name name is, if it is one.
func fileIDOfName(name string) (string, bool) {
	id, ok := strings.CutSuffix(name, fileNameSuffix)
	return id, ok && strings.HasPrefix(id, fileIDPrefix+"_")
}

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
// be lodged in time, so its row fails expired. The debits whose deadline leaves less than
// LodgeWindow to lodge their file go in files apart from the others', which they would otherwise
// make expire with them. A file's processing date is the day of its cut in cal, or the business
// day after (Calendar.processingDay).
func (r *Rail) Cut(ctx context.Context, cal Calendar) ([]File, error) {
	now := r.clock.Now()
	var sites []string
	err := r.conn.Query(ctx, r.q(`SELECT DISTINCT site_id FROM becs_debits WHERE file_id IS NULL AND withdrawn_at IS NULL AND deadline > $1 ORDER BY site_id`),
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
	urgent := now.Add(LodgeMargin + LodgeWindow).UnixMilli() // deadlines up to it leave less than LodgeWindow
	for _, site := range sites {
		for _, deadlines := range []deadlineRange{{after: now.Add(LodgeMargin).UnixMilli(), upTo: urgent}, {after: urgent, upTo: math.MaxInt64}} {
			for {
				f, cut, err := r.cutSite(ctx, site, now, deadlines, cal)
				if err != nil {
					errs = append(errs, fmt.Errorf("becs rail: cut a file of site %s: %w", site, err))
				}
				if err != nil || !cut {
					break
				}
				files = append(files, f)
			}
		}
	}
	return files, errors.Join(errs...)
}

// CutOverdue reports whether a debit that a cut would take was queued before a cut-off of
// schedule that has passed: that cut-off went without its cut (the server was down or being
// deployed at it, or its cut failed), and a cut is due now.
func (r *Rail) CutOverdue(ctx context.Context, schedule Schedule) (bool, error) {
	now := r.clock.Now()
	var oldest *int64
	err := r.conn.Query(ctx, r.q(`SELECT min(submitted_at) FROM becs_debits AS d WHERE file_id IS NULL AND withdrawn_at IS NULL AND deadline > $1
  AND `+authorisedBy("(SELECT u.user_id FROM becs_users AS u WHERE u.site_id = d.site_id)")),
		[]any{now.Add(LodgeMargin).UnixMilli()}, func(row storage.Scanner) error { return row.Scan(&oldest) })
	if err != nil || oldest == nil {
		return false, err
	}
	return !schedule.Next(time.UnixMilli(*oldest)).After(now), nil
}

// authorisedBy is the condition that a debit of becs_debits was authorised under the debit user ID
// userID (an SQL expression): its customer's Direct Debit Request names that ID, or the debit was
// queued before the ID was kept with it (user_id NULL).
func authorisedBy(userID string) string {
	return "(user_id IS NULL OR user_id = " + userID + ")"
}

// BeforeCutCommit, when set by a test, runs in a cut's transaction before it commits.
var BeforeCutCommit func()

// claimed is a debit a cut claimed, its account still sealed.
type claimed struct {
	key, ref, bsb, account, title string
	amount, deadline              int64
}

// deadlineRange is the debits a file is cut of, by deadline (Unix milliseconds): after after, up
// to upTo.
type deadlineRange struct{ after, upTo int64 }

func (r *Rail) cutSite(ctx context.Context, site string, now time.Time, deadlines deadlineRange, cal Calendar) (f File, cut bool, err error) {
	f = File{ID: newID(fileIDPrefix), SiteID: site, CutAt: now.Truncate(time.Millisecond)}
	err = r.conn.InTx(ctx, func(tx storage.Statements) error {
		u, err := user(ctx, tx, r.q, site)
		if err != nil {
			return err
		}
		var debits []claimed
		// The first debits by key that fit in one file. A debit another cut claimed meanwhile, or
		// withdrawn meanwhile, is left out (the outer conditions are read again of a row changed
		// since the statement's snapshot; the subquery's are not), which only makes the file
		// smaller.
		// The rows are locked in the order of their keys (lockInKeyOrder), as Withdraw locks its:
		// PostgreSQL's UPDATE locks them in the order it scans the table, and a withdrawal of some
		// of them at once, locking in another, deadlocked with the cut, which failed.
		// Only the debits whose customers authorised the debit user ID the file goes under are
		// taken (authorisedBy): the others, queued before an operator changed the ID, wait for
		// their withdrawal (set-rail's, or their batch's next step).
		err = tx.Query(ctx, r.q(`UPDATE becs_debits SET file_id = $1
WHERE idempotency_key IN (SELECT idempotency_key FROM becs_debits WHERE idempotency_key IN (SELECT idempotency_key FROM (
                            SELECT idempotency_key, sum(amount) OVER (ORDER BY idempotency_key) AS running_total
                            FROM becs_debits WHERE site_id = $2 AND file_id IS NULL AND withdrawn_at IS NULL AND deadline > $3 AND deadline <= $6
                              AND `+authorisedBy("$7")+`
                            ORDER BY idempotency_key LIMIT $4) AS first
                          WHERE running_total <= $5)`+r.lockInKeyOrder()+`)
  AND file_id IS NULL AND withdrawn_at IS NULL
RETURNING idempotency_key, lodgement_reference, bsb, account_number, title, amount, deadline`),
			[]any{f.ID, site, deadlines.after, maxFileRows, maxFileTotal, deadlines.upTo, u.UserID}, func(row storage.Scanner) error {
				var d claimed
				err := row.Scan(&d.key, &d.ref, &d.bsb, &d.account, &d.title, &d.amount, &d.deadline)
				debits = append(debits, d)
				return err
			})
		if err != nil || len(debits) == 0 {
			return err
		}
		content, err := r.build(&f, u, cal, debits)
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
func (r *Rail) build(f *File, u aba.DebitUser, cal Calendar, debits []claimed) ([]byte, error) {
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
	file, err := aba.NewDebitFile(u, cal.processingDay(f.CutAt), items)
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

const fileColumns = `id, site_id, cut_at, row_count, total, earliest_deadline, checksum, coalesce(delivered_at, 0), coalesce(published_at, 0), coalesce(lodged_at, 0),
coalesce(publishing_at, 0), CASE WHEN ` + beingPublished + ` THEN 1 ELSE 0 END, coalesce(staged_to, '')`

// scanFile scans the fileColumns of a row.
func scanFile(row storage.Scanner) (File, error) {
	var f File
	var cut, earliest, delivered, published, lodged, beingPublished int64
	err := row.Scan(&f.ID, &f.SiteID, &cut, &f.Rows, &f.Total, &earliest, &f.Checksum, &delivered, &published, &lodged, &f.claim, &beingPublished, &f.stagedTo)
	f.CutAt, f.EarliestDeadline = time.UnixMilli(cut).UTC(), time.UnixMilli(earliest).UTC()
	f.DeliveredAt, f.PublishedAt, f.LodgedAt = millis(delivered), millis(published), millis(lodged)
	f.beingPublished = beingPublished == 1
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
	f, found, err := r.fileIf(ctx, id, `TRUE`)
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
// short after it is published by a later run (first of all), never staged again: so the
// destination never holds a file twice, nor part of one, even where the bank takes each file away
// as it arrives.
//
// A file lodged otherwise (through the bank's portal, then Lodge) is neither staged nor
// published: the bank would collect its debits twice. The mark is made only while the file is not
// lodged, and the publication claims the file (publishing_at) before it reads it again, until its
// rename is recorded, and Lodge records nothing over that claim (ErrBeingPublished): a file
// lodged before the publication claimed it is not published (its staged copies removed); one
// whose publication came first is lodged by it (the bank's server). A file lodged while a
// delivery cut short before its mark had it staged and claimed has its staged copies removed by a
// later run, once that claim is stale (removeLeftovers).
//
// A file that can no longer be lodged in time (within LodgeMargin of its debits' earliest
// deadline) is put nowhere, for no one to lodge, its rows failing expired: not staged if it was
// not (what a stage cut short left of it removed), not published if it was staged (its staged
// copy removed), and removed from dest if it was published there and not lodged by then (an
// outbox's file the operator did not lodge in time). Deliver returns those as expired, once each
// (the file is recorded removed before anything of it is removed from dest), for the operator to
// be told. A copy whose removal failed is removed by a later run.
//
// No delivery holds a transaction while it reaches dest (on SQLite the process's one connection
// serves the API too; on PostgreSQL an open transaction would hold back every site's events,
// listed up to the oldest transaction running, for as long as the bank's server takes). A
// delivery claims its file (publishing_at) with a statement of its own for its stage and mark,
// and again for its publication and record, each of which clears the claim. Of replicas
// delivering at once (PostgreSQL), one delivers each file: the others pass over a file claimed,
// until its claim is older than a delivery lasts (staleClaim: the delivery was cut short, its
// replica killed or its host gone), when one of them takes it over. In one process (SQLite's
// only) deliveries take turns, so a claim found is a crashed run's, taken over at once.
func (r *Rail) Deliver(ctx context.Context, dest Destination) (delivered, expired []File, err error) {
	if r.conn.Dialect() != storage.EnginePostgres {
		delivering.Lock()
		defer delivering.Unlock()
	}
	err = r.removeLeftovers(ctx, dest)
	var perr error
	delivered, expired, perr = r.publishDelivered(ctx, dest)
	removed, rerr := r.removeUnlodged(ctx, dest)
	expired, err = append(expired, removed...), errors.Join(err, perr, rerr)
	files, qerr := r.filesWhere(ctx, `delivered_at IS NULL AND lodged_at IS NULL AND removed_at IS NULL AND content <> '' ORDER BY cut_at, id`)
	if qerr != nil {
		return delivered, expired, errors.Join(err, fmt.Errorf("becs rail: files to deliver: %w", qerr))
	}
	for _, f := range files {
		claim, claimed, ferr := r.claim(ctx, f.ID, claimable)
		if ferr != nil || !claimed {
			err = errors.Join(err, ferr)
			continue // delivered, or being delivered, by another replica; or lodged, or put aside, since listed
		}
		if !r.clock.Now().Before(f.LodgeBy()) {
			// Its rows fail expired: neither the bank nor the operator may see it.
			recorded, ferr := r.unstageExpired(ctx, dest, f, claim)
			if recorded {
				expired = append(expired, f) // told even when its staged copy could not be removed: a later run removes it
			}
			err = errors.Join(err, ferr)
			continue
		}
		marked, ferr := r.stageAndMark(ctx, dest, &f, claim)
		if ferr == nil && marked {
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
	return delivered, expired, errors.Join(err, r.setAsideLodged(ctx, dest))
}

// setAsideLodged has dest set aside its copies of the files published there and lodged since
// (Destination.SetAside): an outbox's copy of a lodged file goes to lodged/, out of the way of
// the files still to upload, so that no one uploads it to the bank a second time.
func (r *Rail) setAsideLodged(ctx context.Context, dest Destination) error {
	files, err := r.filesWhere(ctx, `lodged_at IS NOT NULL AND published_at IS NOT NULL AND removed_at IS NULL ORDER BY cut_at, id`)
	if err != nil {
		return fmt.Errorf("becs rail: files lodged: %w", err)
	}
	var errs []error
	for _, f := range files {
		if err := dest.SetAside(ctx, f.Name()); err != nil {
			errs = append(errs, fmt.Errorf("becs rail: set aside lodged file %s: %w", f.ID, err))
		}
	}
	return errors.Join(errs...)
}

// delivering makes the deliveries of one process take turns where the database serves one
// process (SQLite).
var delivering sync.Mutex

// claimable is the condition of a file to be staged: neither delivered, lodged nor removed.
const claimable = `delivered_at IS NULL AND lodged_at IS NULL AND removed_at IS NULL`

// claim claims the file id for this delivery (publishing_at), with a statement of its own, if
// it meets the condition, is not lodged, and is claimed by no other delivery: on PostgreSQL,
// whose replicas deliver at once, a claim is taken over only once it is stale (staleClaim); on
// SQLite, whose deliveries take turns, a claim found is a crashed run's, taken over at once. It
// returns the claim, which the statements that end it check.
func (r *Rail) claim(ctx context.Context, id, condition string) (claim int64, claimed bool, err error) {
	claim = r.clock.Now().UnixMilli()
	n, err := r.conn.Exec(ctx, r.q(`UPDATE becs_files SET publishing_at = $2
WHERE id = $1 AND `+condition+` AND lodged_at IS NULL AND (publishing_at IS NULL OR publishing_at < $3)`), id, claim, r.staleBefore())
	if err != nil {
		return claim, false, fmt.Errorf("becs rail: claim file %s for its delivery: %w", id, err)
	}
	return claim, n == 1, nil
}

// staleBefore is the time (Unix milliseconds) before which a claim found was made by a delivery
// cut short, for another to take over: on PostgreSQL, whose replicas deliver at once, once it is
// stale (staleClaim); on SQLite, whose deliveries take turns, whenever.
func (r *Rail) staleBefore() int64 {
	if r.conn.Dialect() != storage.EnginePostgres {
		return math.MaxInt64
	}
	return r.clock.Now().Add(-staleClaim).UnixMilli()
}

// release ends this delivery's claim on the file id, if it still holds it.
func (r *Rail) release(ctx context.Context, id string, claim int64) error {
	// Not when the context ends (the server stopping): the file would stay claimed until stale.
	if _, err := r.conn.Exec(context.WithoutCancel(ctx), r.q(`UPDATE becs_files SET publishing_at = NULL WHERE id = $1 AND publishing_at = $2`), id, claim); err != nil {
		return fmt.Errorf("becs rail: release file %s (it stays claimed until a later delivery run takes it over): %w", id, err)
	}
	return nil
}

// releaseHeld joins to err the release of the file's claim, when this delivery holds one
// (claimed): a file lodged otherwise is published without.
func (r *Rail) releaseHeld(ctx context.Context, id string, claimed bool, claim int64, err error) error {
	if !claimed {
		return err
	}
	return errors.Join(err, r.release(ctx, id, claim))
}

// fileIf reads the file id if it meets the condition.
func (r *Rail) fileIf(ctx context.Context, id, condition string) (File, bool, error) {
	files, err := r.filesWhere(ctx, `id = $1 AND (`+condition+`)`, id)
	if err != nil || len(files) == 0 {
		return File{}, false, err
	}
	return files[0], true, nil
}

// unstageExpired records the file f, claimed by this delivery and too late to be delivered,
// removed, and then removes from dest what a stage of it left there (a delivery cut short before
// its mark: part of the file, or the whole, in plaintext). It reports whether it recorded the
// file removed, which it does once. The claim is kept until the staged copy is removed: a file
// removed and still claimed has a copy left at dest, which a later run removes (removeLeftovers).
func (r *Rail) unstageExpired(ctx context.Context, dest Destination, f File, claim int64) (recorded bool, err error) {
	n, err := r.conn.Exec(ctx, r.q(`UPDATE becs_files SET removed_at = $2 WHERE id = $1 AND removed_at IS NULL AND publishing_at = $3`),
		f.ID, r.clock.Now().UnixMilli(), claim)
	if err != nil {
		return false, errors.Join(fmt.Errorf("becs rail: record file %s, too late to lodge, put nowhere: %w", f.ID, err), r.release(ctx, f.ID, claim))
	}
	if n == 0 {
		return false, nil // taken over by another delivery
	}
	if _, err := dest.Unstage(ctx, f.Name()); err != nil {
		return true, fmt.Errorf("becs rail: remove the staged copy of file %s, too late to lodge, from %s (a later delivery run tries again): %w", f.ID, dest, err)
	}
	return true, r.release(ctx, f.ID, claim)
}

// removeLeftovers removes from dest the copies left of files no delivery selects any more, each
// with every customer's bank details in plaintext, and then releases their claims: the copies of
// the files put aside whose removal failed (or was cut short), recorded removed and still
// claimed; and the staged copies of the files lodged otherwise (Lodge) while a delivery cut short
// before its mark had them staged, lodged, not delivered and still claimed by it, once the claim
// is stale (staleBefore; a delivery running removes its own, stageAndMark).
func (r *Rail) removeLeftovers(ctx context.Context, dest Destination) error {
	unstage := func(ctx context.Context, name string) error {
		_, err := dest.Unstage(ctx, name)
		return err
	}
	var errs []error
	for _, left := range []struct {
		of, condition string
		args          []any
		remove        func(ctx context.Context, name string) error
		why           string // it is not to stay at dest
	}{
		{"put aside", `removed_at IS NOT NULL AND publishing_at IS NOT NULL`, nil, dest.Remove, "no one may lodge it"},
		{"lodged otherwise while a delivery cut short had it staged", `lodged_at IS NOT NULL AND delivered_at IS NULL AND removed_at IS NULL
AND publishing_at < $1`, []any{r.staleBefore()}, unstage, "the bank has it already"},
	} {
		files, err := r.filesWhere(ctx, left.condition+` ORDER BY id`, left.args...)
		if err != nil {
			errs = append(errs, fmt.Errorf("becs rail: files %s whose copies are left: %w", left.of, err))
			continue
		}
		for _, f := range files {
			if err := left.remove(ctx, f.Name()); err != nil {
				errs = append(errs, fmt.Errorf("becs rail: remove the copies left of file %s, %s, from %s (remove those of %s there by hand, %s): %w",
					f.ID, left.of, dest, f.Name(), left.why, err))
				continue
			}
			errs = append(errs, r.release(ctx, f.ID, f.claim))
		}
	}
	return errors.Join(errs...)
}

// stageAndMark stages the file f, claimed by this delivery, to dest and marks it delivered, if
// it is not lodged, which ends the claim; it reports whether it marked it. A file lodged while it
// was staged (Lodge records a file being staged: it is not marked) is not marked, and its staged
// copy is removed.
func (r *Rail) stageAndMark(ctx context.Context, dest Destination, f *File, claim int64) (bool, error) {
	content, err := r.Content(ctx, f.ID)
	if err == nil {
		if err = dest.Stage(ctx, f.Name(), content); err != nil {
			err = fmt.Errorf("becs rail: deliver file %s to %s: %w", f.ID, dest, err)
		}
	}
	if err != nil {
		return false, errors.Join(err, r.release(ctx, f.ID, claim))
	}
	if BeforeDeliveredMark != nil {
		BeforeDeliveredMark()
	}
	now := r.clock.Now().Truncate(time.Millisecond)
	n, err := r.conn.Exec(ctx, r.q(`UPDATE becs_files SET delivered_at = $2, publishing_at = NULL, staged_to = $4
WHERE id = $1 AND `+claimable+` AND publishing_at = $3`), f.ID, now.UnixMilli(), claim, dest.String())
	if err != nil {
		return false, errors.Join(fmt.Errorf("becs rail: mark file %s delivered: %w", f.ID, err), r.release(ctx, f.ID, claim))
	}
	if n == 1 {
		f.DeliveredAt, f.stagedTo = now, dest.String()
		return true, nil
	}
	if _, lodged, err := r.fileIf(ctx, f.ID, `delivered_at IS NULL AND removed_at IS NULL AND lodged_at IS NOT NULL`); err != nil || !lodged {
		return false, err // delivered by another delivery, which took the claim over: its staged copy is its to publish
	}
	if _, err := dest.Unstage(ctx, f.Name()); err != nil {
		return false, errors.Join(fmt.Errorf("becs rail: remove the staged copy of file %s, lodged while it was staged, from %s: %w", f.ID, dest, err),
			r.release(ctx, f.ID, claim))
	}
	return false, r.release(ctx, f.ID, claim)
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
// bank's server was given is lodged with it, or, given too close to its debits' deadline, the
// bank's, to recall (its publication said so): a file published to a destination that lodges
// what it is given is not removed. Which destination that is, is the file's own (publishedTo),
// not dest as it stands: a file published to the outbox before the bank's server was added to it
// is removed from the outbox all the same.
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
		to, found := publishedTo(dest, f)
		if !found || to.Lodges() {
			continue // the bank's; or published to a destination dest no longer holds, beyond reach
		}
		if err := to.Remove(ctx, f.Name()); err != nil {
			errs = append(errs, fmt.Errorf("becs rail: remove file %s, not lodged and too late to be, from %s: %w", f.ID, to, err))
			continue
		}
		n, err := r.conn.Exec(ctx, r.q(`UPDATE becs_files SET removed_at = $2 WHERE id = $1 AND removed_at IS NULL AND lodged_at IS NULL`),
			f.ID, now.UnixMilli())
		if err != nil {
			errs = append(errs, fmt.Errorf("becs rail: record file %s removed from %s: %w", f.ID, to, err))
			continue
		}
		if n == 1 {
			removed = append(removed, f)
		}
	}
	return removed, errors.Join(errs...)
}

// publishedTo is the destination of dest that the file f was staged to, and so published to:
// dest itself, or one of its Destinations (an outbox the bank's server was added to since). A
// file staged before its destination was recorded (stagedTo "") is taken for dest's, as it was
// published. It reports false for a destination dest does not hold.
func publishedTo(dest Destination, f File) (Destination, bool) {
	if f.stagedTo == "" || f.stagedTo == dest.String() {
		return dest, true
	}
	if ds, ok := dest.(Destinations); ok {
		for _, d := range ds {
			if d.String() == f.stagedTo {
				return d, true
			}
		}
	}
	return nil, false
}

// publication is what publish did with a file.
type publication int

const (
	published       publication = iota
	tooLate                     // not lodged and past its lodge-by time: not published, its staged copy removed
	lodgedElsewhere             // lodged by the operator while staged: not published, its staged copy removed
	passedOver                  // left as it was: published or put aside by another run, claimed by another, or the publication failed
)

// publishable is the condition of a file whose delivery is to be published: delivered, and
// neither published nor put aside.
const publishable = `delivered_at IS NOT NULL AND published_at IS NULL AND removed_at IS NULL`

// publish publishes the delivered file id to dest and records it, lodged if dest lodges it, and
// returns the file as it left it. It claims the file (claim: passed over if another delivery
// holds a claim not yet stale) before it reads it again, until the publication is recorded, so
// that Lodge comes either before the claim, and the publication sees the file lodged, or after
// the record: Lodge refuses to record over the claim (ErrBeingPublished). A claim set already,
// and taken over, is a delivery's cut short: with its staged copy gone, the file was renamed, and
// its publication is recorded.
//
// A file lodged otherwise (Lodge), or whose lodge-by time has passed, is published only if it
// was before (no staged copy left: a run cut short between the rename and its record); else it
// is recorded put aside first, and then its staged copies are removed, and what dest published of
// it (Destinations publish in turn), for no one to lodge: once recorded, no later run takes the
// absence of a staged copy for a rename. A publication that fails at dest releases its claim, so
// that Lodge can record the file lodged otherwise (through the bank's portal, during an outage
// of its server); should the rename have been done all the same, the next run finds it done and
// says so. One whose record fails keeps it: the file is renamed, and a later run records it.
func (r *Rail) publish(ctx context.Context, dest Destination, id string) (File, publication, error) {
	if BeforePublish != nil {
		BeforePublish()
	}
	claim, claimed, err := r.claim(ctx, id, publishable)
	if err != nil {
		return File{}, passedOver, err
	}
	f, found, err := r.fileIf(ctx, id, publishable)
	if err != nil || !found || !claimed && f.LodgedAt.IsZero() {
		return f, passedOver, err // published or put aside since listed, or claimed by another delivery
	}
	now := r.clock.Now().Truncate(time.Millisecond)
	lodged := !f.LodgedAt.IsZero()
	if f.stagedTo != "" && f.stagedTo != dest.String() {
		return r.stagedElsewhere(ctx, dest, f, claimed, claim, now)
	}
	if !lodged && now.Before(f.LodgeBy()) {
		if err := dest.Publish(ctx, f.Name()); err != nil {
			err = fmt.Errorf("becs rail: publish file %s to %s (it is staged there; the next delivery publishes it): %w", f.ID, dest, err)
			return f, passedOver, errors.Join(err, r.release(ctx, id, claim))
		}
		return r.recordPublication(ctx, dest, f, nil)
	}
	staged, err := dest.Staged(ctx, f.Name())
	if err != nil {
		err = fmt.Errorf("becs rail: look for the staged copy of file %s at %s: %w", f.ID, dest, err)
		return f, passedOver, r.releaseHeld(ctx, id, claimed, claim, err)
	}
	if !staged { // renamed by a run cut short before its record
		var after error
		if lodged && dest.Lodges() {
			after = fmt.Errorf("becs rail: file %s was put on %s by a delivery cut short before its record, and then recorded lodged "+
				"otherwise (at %s): if it was lodged through the bank's portal too, the bank has it twice: have the bank recall one",
				f.ID, dest, f.LodgedAt.Format(time.RFC3339))
		}
		return r.recordPublication(ctx, dest, f, after)
	}
	p, why := tooLate, "too late to lodge"
	if lodged {
		p, why = lodgedElsewhere, "lodged otherwise"
	}
	// Recorded put aside before anything is removed from dest, and claimed until it is: a run
	// that found the staged copy gone would otherwise take the file for renamed, and record it
	// published (lodged, on the bank's server) though the bank never had it.
	n, err := r.conn.Exec(ctx, r.q(`UPDATE becs_files SET removed_at = $2, publishing_at = $3 WHERE id = $1 AND `+publishable),
		f.ID, now.UnixMilli(), claim)
	if err != nil {
		err = fmt.Errorf("becs rail: record file %s unpublished (%s): %w", f.ID, why, err)
		return f, passedOver, r.releaseHeld(ctx, id, claimed, claim, err)
	}
	if n == 0 {
		return f, passedOver, nil // put aside by another delivery
	}
	_, uerr := dest.Unstage(ctx, f.Name())
	if uerr == nil {
		uerr = dest.Remove(ctx, f.Name())
	}
	if uerr != nil {
		return f, p, fmt.Errorf("becs rail: file %s is put aside (%s), but what %s was given of it could not be removed (a later delivery run tries again; "+
			"else remove %s there by hand), no one may lodge it: %w", f.ID, why, dest, f.Name(), uerr)
	}
	return f, p, r.release(ctx, id, claim)
}

// stagedElsewhere leaves the file f, staged to another destination than dest (the server's
// delivery settings changed since, or a replica's differ), unpublished: dest was never given it,
// so the absence of its staged copy there is no rename, and a publication to dest would record the
// file lodged (dest the bank's server) though the bank never had it. Until its lodge-by time it
// is left delivered, its claim released, for a delivery to its own destination to finish, or
// for the operator to lodge it by hand; after it, or once lodged otherwise, it is recorded put
// aside (its rows failing expired, unless lodged), and the operator is told to remove what its
// destination holds of it.
func (r *Rail) stagedElsewhere(ctx context.Context, dest Destination, f File, claimed bool, claim int64, now time.Time) (File, publication, error) {
	lodged := !f.LodgedAt.IsZero()
	if !lodged && now.Before(f.LodgeBy()) {
		err := fmt.Errorf("becs rail: file %s was staged to %s, not to %s (the delivery's settings changed): it is not published there. "+
			"Deliver to %s again to finish its delivery, or lodge it by hand (pyng admin becs files get, then files lodged) before %s",
			f.ID, f.stagedTo, dest, f.stagedTo, f.LodgeBy().Format(time.RFC3339))
		return f, passedOver, r.releaseHeld(ctx, f.ID, claimed, claim, err)
	}
	n, err := r.conn.Exec(ctx, r.q(`UPDATE becs_files SET removed_at = $2, publishing_at = NULL WHERE id = $1 AND `+publishable),
		f.ID, now.UnixMilli())
	if err != nil || n == 0 {
		return f, passedOver, r.releaseHeld(ctx, f.ID, claimed, claim, err) // put aside by another delivery, unless err
	}
	if lodged {
		return f, lodgedElsewhere, fmt.Errorf("becs rail: file %s, lodged otherwise, was staged to %s, not to %s: remove %s from %s, no one may lodge it",
			f.ID, f.stagedTo, dest, stagedName(f.Name()), f.stagedTo)
	}
	return f, tooLate, fmt.Errorf("becs rail: file %s, staged to %s, not to %s, is too late to lodge and put aside, its rows failing expired: "+
		"remove %s and %s from %s; if %s is there and was lodged, have the bank recall it",
		f.ID, f.stagedTo, dest, stagedName(f.Name()), f.Name(), f.stagedTo, f.Name())
}

// recordPublication records the publication of the file f to dest now, lodged if dest lodges
// it, and ends its claim. It returns the file as recorded, and what the operator must be told:
// after, and, published too close to its debits' deadline to be recorded lodged (within
// publishedLodgedMargin of it, or after it), that the bank must recall it. A publication recorded
// by another delivery meanwhile (which took a stale claim over) is passed over, so that one
// delivery reports each file.
func (r *Rail) recordPublication(ctx context.Context, dest Destination, f File, after error) (File, publication, error) {
	// The time of the record, not of the publication's start: the rename or the look for a staged
	// copy before it takes a round trip to dest, during which the debits' deadline may pass and
	// their rows expire; a file recorded lodged before it would then never be reported for recall.
	now := r.clock.Now().Truncate(time.Millisecond)
	const unrecorded = ` WHERE id = $1 AND published_at IS NULL AND removed_at IS NULL`
	mark, args := `UPDATE becs_files SET published_at = $2, publishing_at = NULL`+unrecorded, []any{f.ID, now.UnixMilli()}
	if dest.Lodges() {
		// The file is with the bank: its debits will be debited, so it is lodged now, even within
		// LodgeMargin, as long as the record is sure to commit before the debits' rows expire.
		mark = `UPDATE becs_files SET published_at = $2, publishing_at = NULL, lodged_at = coalesce(lodged_at, $2)` + unrecorded + ` AND earliest_deadline > $3`
		args = append(args, now.Add(publishedLodgedMargin).UnixMilli())
	}
	n, err := r.conn.Exec(ctx, r.q(mark), args...)
	if err != nil {
		return f, passedOver, fmt.Errorf("becs rail: mark file %s published: %w", f.ID, err)
	}
	if n == 0 && dest.Lodges() {
		if n, err = r.conn.Exec(ctx, r.q(`UPDATE becs_files SET published_at = $2, publishing_at = NULL`+unrecorded), f.ID, now.UnixMilli()); err != nil {
			return f, passedOver, fmt.Errorf("becs rail: mark file %s published: %w", f.ID, err)
		}
		// A file lodged otherwise keeps its rows succeeded: the bank is to collect it (once), not
		// to recall it.
		if n == 1 && f.LodgedAt.IsZero() {
			after = errors.Join(after, fmt.Errorf("becs rail: file %s reached %s less than %s before the deadline of its debits (%s), or after it, "+
				"too late to be recorded lodged: its rows fail expired: have the bank recall it",
				f.ID, dest, publishedLodgedMargin, f.EarliestDeadline.Format(time.RFC3339)))
		}
	} else if n == 1 && dest.Lodges() && f.LodgedAt.IsZero() {
		f.LodgedAt = now
	}
	if n == 0 {
		return f, passedOver, nil // recorded by another delivery
	}
	f.PublishedAt = now
	return f, published, after
}

// publishedLodgedMargin is how long before its debits' earliest deadline a file found published
// on the bank's server is last recorded lodged. The record's time is read before its statement
// runs, and nothing orders that statement against a batch's deadline step (on any replica), which
// asks the rail what it settled and then expires the rows still open: a file recorded lodged a
// moment before the deadline by a statement that commits a moment after it would be lodged, its
// rows expired, and no one told to recall it. The margin is far longer than the statement lasts
// and replicas' clocks differ, so a file recorded lodged is lodged before any deadline step can
// ask. Only a publication finished by a later run can be recorded so late (a delivery publishes
// nothing past LodgeBy, and its rename lasts at most MaxSFTPTimeout); within the margin the file
// is recorded published, not lodged, and the operator told to have the bank recall it, as for a
// file found published after the deadline.
const publishedLodgedMargin = time.Minute

// BeforeDeliveredMark, when set by a test, runs after a file is staged and before it is marked
// delivered; BeforePublish, before a file marked delivered is published (before its publication
// holds it).
var BeforeDeliveredMark, BeforePublish func()

// writeSynced writes content to the file name, replacing any, and syncs it.
func writeSynced(name string, content []byte) error {
	return writeFileSynced(name, os.O_TRUNC, content)
}

// writeFileSynced writes content to the file name, opened write-only and created if missing with
// the extra flag (O_TRUNC to replace one, O_EXCL to refuse one: fs.ErrExist), and syncs it.
func writeFileSynced(name string, flag int, content []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|flag, 0o600)
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
// by its publication to the bank's server (or another record), which came between Lodge's reading
// the file and its record.
var ErrLodgedMeanwhile = errors.New("lodged meanwhile")

// ErrBeingPublished is the error of lodging a file while a delivery publishes it (its claim,
// publishing_at, set: publications hold no transaction, which Lodge could wait for): the rename
// may be under way, or done by a delivery cut short, and the record is refused until the
// publication is recorded.
var ErrBeingPublished = errors.New("being published")

// staleClaim is how old a claim of a file (publishing_at) is when its delivery must have been
// cut short (a crash, the server stopped, the host gone): longer than a stage or a publication
// lasts, which reaches the bank's server in two sessions at most, each within its timeout
// (SFTPConfig.Timeout, at most MaxSFTPTimeout), so that a replica taking a claim over never
// overlaps a delivery still running.
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
// and Lodge then finds it lodged (ErrLodgedMeanwhile if it came between Lodge's reading and its
// record): the bank has the file from its server, and the operator, who lodged it otherwise too,
// must have the bank recall one. The publication holds the file by a claim (publishing_at), no
// lock, on both engines, and Lodge refuses (ErrBeingPublished) while it is under way, for the
// command to be run again once it is recorded; a claim a delivery cut short left is taken over by
// a later delivery run (on PostgreSQL once it is stale, staleClaim), which finishes the
// publication.
func (r *Rail) Lodge(ctx context.Context, id string) (File, error) {
	f, err := r.File(ctx, id)
	if err != nil || !f.LodgedAt.IsZero() {
		return f, err
	}
	for attempt := 1; ; attempt++ {
		now := r.clock.Now().Truncate(time.Millisecond)
		n, err := r.conn.Exec(ctx, r.q(`UPDATE becs_files SET lodged_at = $2
WHERE id = $1 AND lodged_at IS NULL AND earliest_deadline > $3 AND NOT (`+beingPublished+`)`),
			id, now.UnixMilli(), now.Add(LodgeMargin).UnixMilli())
		if err != nil {
			return f, fmt.Errorf("becs rail: lodge file %s: %w", id, err)
		}
		if f, err = r.File(ctx, id); err != nil || n == 1 {
			return f, err
		}
		switch {
		case !f.LodgedAt.IsZero():
			return f, fmt.Errorf("%w: file %s was lodged at %s, while this record waited, by its delivery to the bank's server (or another record); "+
				"nothing was recorded. If it was also lodged otherwise (through the bank's portal), the bank has it twice: have the bank recall one",
				ErrLodgedMeanwhile, id, f.LodgedAt.Format(time.RFC3339))
		case f.beingPublished:
			return f, errBeingPublished(id, millis(f.claim), now)
		case !f.EarliestDeadline.After(now.Add(LodgeMargin)):
			return f, fmt.Errorf("%w: file %s was cut at %s; the earliest deadline of its debits is %s, and a file must be lodged at least %s before it. "+
				"Its debits fail (or have failed) expired and the partner is told so, and may submit them again: do not lodge this file with the bank; "+
				"if you uploaded it already, have the bank recall it now, or its customers may be debited twice",
				ErrTooLate, id, f.CutAt.Format(time.RFC3339), f.EarliestDeadline.Format(time.RFC3339), LodgeMargin)
		case attempt == lodgeAttempts:
			return f, errBeingPublished(id, time.Time{}, now)
		}
		// Claimed at the record, and released since (its publication recorded, or failed).
	}
}

// beingPublished is the condition of a file claimed for its publication: delivered, and neither
// published nor put aside. (A claim of a file not delivered is its stage's, which Lodge may record
// over: the mark is then not made.)
const beingPublished = `publishing_at IS NOT NULL AND ` + publishable

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
