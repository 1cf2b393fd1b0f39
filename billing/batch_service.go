package billing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pyng/receivables/ddr"
	"github.com/pyng/receivables/rail"
)

// SubmitBatch accepts a batch for execution, idempotently on its reference: the same request again
// returns the stored batch with replayed true; a different request with a retained reference is a
// conflict. Customers are not checked here: a row whose customer is not linked when it executes,
// or did not authorise the site's debit user, fails with customerNotActive.
func (s *Service) SubmitBatch(ctx context.Context, site Site, req BatchRequest) (b Batch, replayed bool, err error) {
	if errs := ValidateBatch(req); len(errs) > 0 {
		return Batch{}, false, errs
	}
	collecting, err := s.checkCollecting(ctx, site)
	if err != nil {
		return s.replayOnly(ctx, site, req, err)
	}
	now := s.now()
	b = Batch{
		ID:          NewID("bat"),
		SiteID:      site.ID,
		Reference:   req.Reference,
		Fingerprint: req.Fingerprint(),
		State:       BatchAccepted,
		RowCount:    len(req.Rows),
		SubmittedAt: now,
		Deadline:    now.Add(RowDeadline),
		RetainUntil: now.Add(BatchRetention),
		Rail:        collecting, // "" in the sandbox: the site's rail, whichever
	}
	rows := make([]Row, len(req.Rows))
	ids := NewIDs("row", len(req.Rows))
	for i, r := range req.Rows {
		b.TotalAmount += r.Amount
		rows[i] = Row{
			ID:                ids[i],
			BatchID:           b.ID,
			Index:             i,
			Reference:         r.Reference,
			CustomerReference: r.CustomerReference,
			Amount:            r.Amount,
			State:             RowPending,
		}
	}
	stored, created, err := s.batches.CreateBatch(ctx, b, rows)
	for checks := 1; errors.Is(err, ErrStale); checks++ {
		// An operator moved the site off the rail checked (to the sandbox rail: no other is
		// collecting) while the batch was being stored: nothing was; check again. A site back on a
		// rail that collects takes the batch on it, as a submission after the moves would.
		if checks == railChecks {
			return Batch{}, false, Errorf(CodeUnavailable, "",
				"Pyng is moving this site between payment rails; nothing was stored. Submit the batch again shortly.")
		}
		again, refused := s.checkCollecting(ctx, site)
		if refused != nil {
			return s.replayOnly(ctx, site, req, refused)
		}
		b.Rail = again
		stored, created, err = s.batches.CreateBatch(ctx, b, rows)
	}
	if err != nil {
		return Batch{}, false, fmt.Errorf("create batch: %w", err)
	}
	if created {
		return stored, false, nil
	}
	return replay(stored, req.Reference, b.Fingerprint)
}

// replay answers a submission of reference, whose batch the stored batch is: the stored batch
// (replayed true) for the same request (its fingerprint), a conflict for a different one.
func replay(stored Batch, reference string, fingerprint []byte) (Batch, bool, error) {
	if string(stored.Fingerprint) != string(fingerprint) {
		return Batch{}, false, Errorf(CodeBatchReferenceConflict, "batchReference", fmt.Sprintf(
			"batchReference %s is already taken by a different batch, submitted at %s; use a new batchReference for a different batch.",
			reference, stored.SubmittedAt.Format(time.RFC3339)))
	}
	return stored, true, nil
}

// replayOnly answers a submission to a site that takes no new batch (refused): a batch accepted
// before the site stopped collecting is still replayed to a retry of its submission (or its
// reference still conflicts), so that a partner whose answer was lost is not told that nothing
// was stored, and submits its debits again under another reference once the site collects.
func (s *Service) replayOnly(ctx context.Context, site Site, req BatchRequest, refused error) (Batch, bool, error) {
	stored, err := s.batches.GetBatch(ctx, site.ID, req.Reference)
	if errors.Is(err, ErrNotFound) || (err == nil && !s.now().Before(stored.RetainUntil)) {
		return Batch{}, false, refused
	}
	if err != nil {
		return Batch{}, false, fmt.Errorf("get batch: %w", err)
	}
	return replay(stored, req.Reference, req.Fingerprint())
}

// Batch returns the site's batch with its summary and rows (only those in rowState unless empty).
func (s *Service) Batch(ctx context.Context, site Site, reference string, rowState RowState) (Batch, BatchSummary, []Row, error) {
	if rowState != "" && !rowState.Valid() {
		return Batch{}, nil, nil, invalidRowState()
	}
	if !ValidReference(reference) {
		return Batch{}, nil, nil, batchNotFound()
	}
	b, err := s.batches.GetBatch(ctx, site.ID, reference)
	if errors.Is(err, ErrNotFound) || (err == nil && !s.now().Before(b.RetainUntil)) {
		return Batch{}, nil, nil, batchNotFound()
	}
	if err != nil {
		return Batch{}, nil, nil, fmt.Errorf("get batch: %w", err)
	}
	summary, err := s.batches.BatchSummary(ctx, b.ID)
	if err != nil {
		return Batch{}, nil, nil, fmt.Errorf("batch summary: %w", err)
	}
	rows, err := s.batches.BatchRows(ctx, b.ID, rowState)
	if err != nil {
		return Batch{}, nil, nil, fmt.Errorf("batch rows: %w", err)
	}
	if err := s.markLinkedAgain(ctx, site, rows); err != nil {
		return Batch{}, nil, nil, err
	}
	return b, summary, rows, nil
}

// markLinkedAgain sets CustomerLinkedNow on the rows that failed customerNotActive whose customer
// has linked since, under a Direct Debit Request that lets a batch submitted now debit them
// (debitable, on the site's rail as it stands), which makes them retryable.
func (s *Service) markLinkedAgain(ctx context.Context, site Site, rows []Row) error {
	var refs []string
	for _, r := range rows {
		if r.FailureReason == FailureCustomerNotActive {
			refs = append(refs, r.CustomerReference)
		}
	}
	linked, err := s.linkedNow(ctx, site.ID, refs)
	if err != nil || len(linked) == 0 {
		return err
	}
	current, err := s.store.GetSite(ctx, site.ID) // the cached site's rail may be stale
	if err != nil {
		return fmt.Errorf("get site: %w", err)
	}
	may, err := s.debitable(ctx, site.ID, current.Rail)
	if err != nil {
		return err
	}
	for i, r := range rows {
		terms, ok := linked[r.CustomerReference]
		rows[i].CustomerLinkedNow = r.FailureReason == FailureCustomerNotActive && ok && may(terms)
	}
	return nil
}

// SimulateDeadline fails every open row of the batch with expired, as if its 24-hour deadline had
// passed now (sandbox only; the transport decides whether the sandbox is on), so a partner can
// test the expired path without waiting a day. As at the real deadline, a debit the sandbox took
// is told its outcome, never expired: it settles now (at the real deadline it would have settled
// already). The debits it did not take are expired there first, so that a step of the batch
// running meanwhile cannot have it take one of a row told expired (the step is told expired). A
// completed batch is left as it is. A batch of another rail than the sandbox's is refused: its
// debits may be in a file the bank collects, and money must never move for a row told expired.
func (s *Service) SimulateDeadline(ctx context.Context, site Site, reference string) (Batch, BatchSummary, []Row, error) {
	b, _, rows, err := s.Batch(ctx, site, reference, "")
	if err != nil {
		return Batch{}, nil, nil, err
	}
	simulator, ok := s.rails[b.Rail].(deadlineSimulator)
	if b.Rail != rail.Sandbox || !ok {
		return Batch{}, nil, nil, Errorf(CodeBatchNotOnSandboxRail, "batchReference",
			"The batch is on the "+b.Rail+" rail, which moves money: only the sandbox rail's batches can have their deadline simulated.")
	}
	if open := openRows(rows); len(open) > 0 {
		answers, err := simulator.SimulateDeadline(ctx, open)
		if err != nil {
			return Batch{}, nil, nil, fmt.Errorf("simulate the deadline on the rail: %w", err)
		}
		// A debit withdrawn before (its customer's revocation, its row not told yet) expires as
		// those the simulation expired.
		told := slices.DeleteFunc(answers, func(o rail.Outcome) bool { return o.Failure == rail.FailureWithdrawn })
		if settled, _, _ := split(told); len(settled) > 0 {
			if err := s.batches.RecordOutcomes(ctx, settled); err != nil {
				return Batch{}, nil, nil, fmt.Errorf("record outcomes: %w", err)
			}
		}
	}
	if _, err := s.batches.ExpireBatch(ctx, b.ID, s.now()); err != nil {
		return Batch{}, nil, nil, fmt.Errorf("expire batch: %w", err)
	}
	return s.Batch(ctx, site, reference, "")
}

// openRows are the ids of the rows not terminal yet.
func openRows(rows []Row) []string {
	var open []string
	for _, r := range rows {
		if !r.State.Terminal() {
			open = append(open, r.ID)
		}
	}
	return open
}

// deadlineSimulator is a rail whose batches' deadline a partner may simulate: the sandbox's.
type deadlineSimulator interface {
	// SimulateDeadline answers for the debits with the given keys as if their deadline had passed
	// now: those it took settled, the others expired (settled rail.FailureExpired), never to be
	// taken afterwards.
	SimulateDeadline(ctx context.Context, keys []string) ([]rail.Outcome, error)
}

// ListBatches lists the site's batches, newest first. next is the filter of the following page,
// nil on the last page.
func (s *Service) ListBatches(ctx context.Context, site Site, f BatchFilter) (batches []Batch, next *BatchFilter, err error) {
	if !validPageSize(f.Limit) {
		return nil, nil, invalidPageSize()
	}
	page := f
	page.Limit = f.Limit + 1
	batches, err = s.batches.ListBatches(ctx, site.ID, page)
	if err != nil {
		return nil, nil, fmt.Errorf("list batches: %w", err)
	}
	// A batch past its retention is gone, as GET of it answers, before the hourly purge removes
	// it. RetainUntil follows SubmittedAt, so the retained are the newest: the first batch past
	// it ends the list.
	now := s.now()
	if gone := slices.IndexFunc(batches, func(b Batch) bool { return !now.Before(b.RetainUntil) }); gone >= 0 {
		batches = batches[:gone]
	}
	if len(batches) > f.Limit {
		batches = batches[:f.Limit]
		last := batches[len(batches)-1]
		next = &BatchFilter{AfterSubmittedAt: last.SubmittedAt, AfterID: last.ID, Limit: f.Limit}
	}
	return batches, next, nil
}

// minSettleWait keeps a batch waiting on its rail from being polled in a tight loop.
const minSettleWait = 50 * time.Millisecond

// ExecuteBatch advances a batch as far as it can go now: it fails the rows whose customer is not
// linked or did not authorise the site's debit user, submits the others to the site's rail, and
// records the outcomes it has settled. It reports whether the batch is completed, or else how
// long to wait before calling again. Every step is safe to repeat after a crash: the rail is
// idempotent per row and rows only move forward.
func (s *Service) ExecuteBatch(ctx context.Context, batchID string) (done bool, wait time.Duration, err error) {
	b, err := s.batches.GetBatchByID(ctx, batchID)
	if errors.Is(err, ErrNotFound) {
		return true, 0, nil // purged after retention: nothing left to do
	}
	if err != nil {
		return false, 0, fmt.Errorf("get batch: %w", err)
	}
	if b.State == BatchCompleted {
		return true, 0, nil
	}
	now := s.now()
	if !now.Before(b.Deadline) {
		if err := s.settleBeforeExpiring(ctx, b); err != nil {
			return false, 0, err
		}
		// Its open rows expire at the deadline (the step comes a moment after it; the store dates
		// them no later), and its batch.completed event now.
		_, err := s.batches.ExpireBatch(ctx, b.ID, now)
		return err == nil, 0, err
	}
	site, siteRail, err := s.railOf(ctx, b)
	if err != nil {
		return false, 0, err
	}
	// Rows move to inProgress only once the batch has started, so a batch still accepted has none
	// waiting on the rail from an earlier step.
	startedBefore := b.State != BatchAccepted
	if err := s.batches.StartBatch(ctx, b.ID); err != nil {
		return false, 0, fmt.Errorf("start batch: %w", err)
	}
	next, err := s.submitPending(ctx, b, site, siteRail, now)
	if err != nil {
		return false, 0, err
	}
	if startedBefore {
		if next, err = s.recordSettled(ctx, b, siteRail, next); err != nil {
			return false, 0, err
		}
	}
	completed, err := s.batches.CompleteBatch(ctx, b.ID, s.now())
	if err != nil || completed {
		return completed, 0, err
	}
	// Not later than the deadline, at which the next step expires the rows still open rather
	// than leaving them to the minute's sweep.
	if next.IsZero() || b.Deadline.Before(next) {
		next = b.Deadline
	}
	wait = max(next.Sub(s.now()), minSettleWait)
	return false, wait, nil
}

// railOf returns the batch's site and the rail the batch was accepted on: a site that an operator
// moves to another rail (SetSiteRail) keeps its earlier batches on the rail that may have taken
// their debits already. A batch naming a rail this service has not registered is a fault of the
// server's set-up, which no retry mends until it is fixed.
func (s *Service) railOf(ctx context.Context, b Batch) (Site, rail.Rail, error) {
	site, err := s.store.GetSite(ctx, b.SiteID)
	if err != nil {
		return Site{}, nil, fmt.Errorf("get site: %w", err)
	}
	batchRail, err := s.batchRail(b)
	return site, batchRail, err
}

// checkCollecting refuses a batch (or an invitation), outside the sandbox, to a site on the
// sandbox rail: its rows would succeed without any money moving. The site's rail is read afresh
// (the site cache keeps the rail it was read with), as an operator may have moved it since; it
// is returned, for the batch to be stored only if the site is still on it (CreateBatch). In the
// sandbox every rail collects, and it returns "".
func (s *Service) checkCollecting(ctx context.Context, site Site) (string, error) {
	if s.sandbox {
		return "", nil
	}
	current, err := s.store.GetSite(ctx, site.ID)
	if err != nil {
		return "", fmt.Errorf("get site: %w", err)
	}
	if !s.collects(current) {
		return "", Errorf(CodeSiteNotCollecting, "siteId", "This site does not collect debits: Pyng has not put it on a payment rail, or has taken it off one. "+
			"Ask Pyng to set it up; nothing was stored.")
	}
	return current.Rail, nil
}

// collects reports whether site, read fresh, collects debits: every site does in the sandbox,
// and outside it a site on a rail other than the sandbox's, which moves no money.
func (s *Service) collects(site Site) bool { return s.sandbox || site.Rail != rail.Sandbox }

// railChecks is how many times SubmitBatch checks the site's rail and tries to store the batch on
// it while an operator keeps moving the site between rails, before it answers CodeUnavailable.
const railChecks = 3

// errRailNotRegistered is batchRail's error for a batch naming a rail the service lacks.
var errRailNotRegistered = errors.New("payment rail not registered")

// batchRail is the rail the batch was accepted on.
func (s *Service) batchRail(b Batch) (rail.Rail, error) {
	r, ok := s.rails[b.Rail]
	if !ok {
		return nil, fmt.Errorf("batch %s of site %s names the payment rail %q, which is not registered with the service (registered: %s): %w",
			b.ID, b.SiteID, b.Rail, strings.Join(slices.Sorted(maps.Keys(s.rails)), ", "), errRailNotRegistered)
	}
	return r, nil
}

// submitPending fails the pending rows whose customer is not linked, or did not authorise the
// site's debit user (dropUnauthorised), unless the rail has sent their debits (see withdraw); it
// sends the rest to the site's rail in the site's currency, records the outcomes the rail settled
// at once and marks the others inProgress. It returns when the first unsettled debit expects to
// settle (zero if none).
func (s *Service) submitPending(ctx context.Context, b Batch, site Site, siteRail rail.Rail, now time.Time) (time.Time, error) {
	pending, err := s.batches.PendingRows(ctx, b.ID)
	if err != nil {
		return time.Time{}, fmt.Errorf("pending rows: %w", err)
	}
	size := s.executeChunk
	if size <= 0 {
		size = max(len(pending), 1)
	}
	var next time.Time
	first := true
	for chunk := range slices.Chunk(pending, size) {
		if !first {
			// A customer who revoked since the rows were read is not debited by a later chunk.
			if err := s.dropRevoked(ctx, site, chunk); err != nil {
				return time.Time{}, err
			}
		}
		first = false
		if err := s.dropUnauthorised(ctx, b, site, chunk); err != nil {
			return time.Time{}, err
		}
		n, err := s.submitRows(ctx, b, site, siteRail, now, chunk)
		if err != nil {
			return time.Time{}, err
		}
		if !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	return next, nil
}

// withdrawUnsent has the rails withdraw the debits they hold unsent (a BECS debit waiting for its
// cut-off) of the customer of the link, which is being revoked or was revoked, and those of the
// batches not started yet (recorded withdrawn before they are submitted): a revocation stops at
// once every debit not yet sent, rather than at its batch's next step, which a cut-off or the
// customer linking again could come before (a batch submitted under the agreement ended is not
// collected under the next). A debit withdrawn stays so (rail.Withdrawer): submitted again by a
// step that read the customer linked, or after the customer linked anew, it fails
// customerNotActive rather than being sent. Once the customer has linked anew (a
// WithdrawUnsentJob retried for that long), the debits of the batches submitted since are the new
// agreement's, and are left to it.
//
// The customer's and the partner's revocations run it before they are recorded (revoke), so that
// a rail that fails leaves the link as it was, for the revocation to be asked again; every
// revocation runs it once recorded (withdrawRevoked), and in the WithdrawUnsentJob its record
// enqueued, until the rail answers (WithdrawUnsent).
func (s *Service) withdrawUnsent(ctx context.Context, l Link) error {
	byRail, err := s.unsentByRail(ctx, l)
	if err != nil {
		return err
	}
	return s.withdrawFrom(ctx, byRail)
}

// unsentByRail are the keys of the unsent debits of the customer of the link (withdrawUnsent's),
// by the rail of their batch.
func (s *Service) unsentByRail(ctx context.Context, l Link) (map[string][]string, error) {
	rows, err := s.batches.UnsentRowsOfCustomer(ctx, l.SiteID, l.CustomerReference, s.now())
	if err != nil {
		return nil, fmt.Errorf("unsent rows of the customer: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	current, err := s.store.GetCurrentLink(ctx, l.SiteID, l.CustomerReference)
	if err != nil {
		return nil, fmt.Errorf("the customer's current link: %w", err)
	}
	if current.ID != l.ID && current.StoredState == LinkLinked {
		rows = slices.DeleteFunc(rows, func(r RowOnRail) bool { return !r.BatchSubmittedAt.Before(current.LinkedAt) })
	}
	byRail := map[string][]string{}
	for _, r := range rows {
		byRail[r.Rail] = append(byRail[r.Rail], r.RowID)
	}
	return byRail, nil
}

// withdrawFrom has each rail that withdraws (rail.Withdrawer) withdraw the debits with its keys.
func (s *Service) withdrawFrom(ctx context.Context, byRail map[string][]string) error {
	for name, keys := range byRail {
		if w, ok := s.rails[name].(rail.Withdrawer); ok {
			if _, err := w.Withdraw(ctx, keys); err != nil {
				return fmt.Errorf("withdraw the customer's debits from the %s rail: %w", name, err)
			}
		}
	}
	return nil
}

// withdrawRevoked has the rails withdraw, once the revocations of the links are recorded, the
// unsent debits of their customers: after a customer's or a partner's revocation, a debit that a
// step of a batch queued between the withdrawal before the record and the record (it read the
// customer linked, and submitted the debit for the first time); after the bank's, every one.
// Every step reads the customers revoked now (one that queues a debit after this withdrawal reads
// it revoked once the rail answers, and withdraws it itself). This is the withdrawal at once; a
// rail that fails it leaves the debits to the WithdrawUnsentJob each record enqueued, which the
// queue retries within a minute until the rail answers. It is not the request's to cancel: a
// client gone once the revocation is recorded would leave the debits to the job alone.
func (s *Service) withdrawRevoked(ctx context.Context, links []Link) {
	ctx = context.WithoutCancel(ctx)
	for _, l := range links {
		_ = s.withdrawUnsent(ctx, l) // a failure is the job's to retry
	}
}

// withdrawBeforeReturns has the rails withdraw, before the returns are recorded, the unsent
// debits of the customers whose links they will revoke (those of the succeeded rows not yet
// returned whose return EndsAuthority, by Link.MadeDebitsOf), as a customer's revocation does
// before it is recorded (revoke). Once recorded, the withdrawal that follows (withdrawRevoked)
// may fail and leave the debits to its job, and a cut-off before the job would send them to an
// account closed or a deceased customer's. A rail that fails here fails the whole call, which
// then records nothing and can be made again.
func (s *Service) withdrawBeforeReturns(ctx context.Context, returns []RowReturn) error {
	var ids []string
	for _, r := range FirstReturns(returns) { // the returns the store records
		if r.EndsAuthority {
			ids = append(ids, r.RowID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := s.batches.RowsByID(ctx, ids)
	if err != nil {
		return fmt.Errorf("rows by id: %w", err)
	}
	batches := map[string]Batch{}
	links := map[[2]string]*Link{} // each customer's current link, read once (nil: none)
	withdrawn := map[string]bool{} // by link
	for _, r := range rows {
		if r.State != RowSucceeded || r.Returned() {
			continue
		}
		b, ok := batches[r.BatchID]
		if !ok {
			if b, err = s.batches.GetBatchByID(ctx, r.BatchID); err != nil {
				return fmt.Errorf("the batch of a returned row: %w", err)
			}
			batches[r.BatchID] = b
		}
		customer := [2]string{b.SiteID, r.CustomerReference}
		l, read := links[customer]
		if !read {
			current, err := s.store.GetCurrentLink(ctx, b.SiteID, r.CustomerReference)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("the link of a returned row: %w", err)
			}
			if err == nil {
				l = &current
			}
			links[customer] = l
		}
		if l == nil || withdrawn[l.ID] || !l.MadeDebitsOf(b.SubmittedAt) {
			continue
		}
		if err := s.withdrawUnsent(ctx, *l); err != nil {
			return err
		}
		withdrawn[l.ID] = true
	}
	return nil
}

// WithdrawUnsent has the rails withdraw the unsent debits of the customer of the revoked link
// with the given id (withdrawUnsent): the work of its WithdrawUnsentJob, retried while it fails.
func (s *Service) WithdrawUnsent(ctx context.Context, linkID string) error {
	l, err := s.store.GetLink(ctx, linkID)
	if err != nil {
		return fmt.Errorf("get link: %w", err)
	}
	return s.withdrawUnsent(ctx, l)
}

// linkedNow returns those of the customer references that have a linked link at the site now,
// each with the terms agreed with it, asking the store once, for each reference once; for none,
// it asks nothing.
func (s *Service) linkedNow(ctx context.Context, siteID string, refs []string) (map[string]ddr.Terms, error) {
	refs = slices.Compact(slices.Sorted(slices.Values(refs)))
	if len(refs) == 0 {
		return map[string]ddr.Terms{}, nil
	}
	linked, err := s.batches.LinkedCustomers(ctx, siteID, refs)
	if err != nil {
		return nil, fmt.Errorf("linked customers: %w", err)
	}
	return linked, nil
}

// dropRevoked marks the rows whose customer is no longer linked at the site as unlinked.
func (s *Service) dropRevoked(ctx context.Context, site Site, rows []PendingRow) error {
	var refs []string
	for _, p := range rows {
		if p.Linked {
			refs = append(refs, p.CustomerReference)
		}
	}
	linked, err := s.linkedNow(ctx, site.ID, refs)
	if err != nil {
		return err
	}
	for i := range rows {
		_, still := linked[rows[i].CustomerReference]
		rows[i].Linked = rows[i].Linked && still
	}
	return nil
}

// dropUnauthorised marks as unlinked the rows whose customer's Direct Debit Request does not
// name the site's debit user ID (authorises; StopDebitsNotAuthorised counts these customers): a
// debit of theirs would reach the bank under a debit user they never authorised, so their rows
// fail customerNotActive until they sign up again, and a debit of theirs that the rail holds
// queued from an earlier step is withdrawn. The ID is read for each chunk, just before it is
// submitted, as an operator may change it while the batch executes; a queued debit is submitted
// again at each step, and so checked against the ID as it stands then.
func (s *Service) dropUnauthorised(ctx context.Context, b Batch, site Site, rows []PendingRow) error {
	may, err := s.debitable(ctx, site.ID, b.Rail)
	if err != nil {
		return err
	}
	for i := range rows {
		rows[i].Linked = rows[i].Linked && may(rows[i].Terms)
	}
	return nil
}

// debitable returns whether a customer who agreed to the given terms may be debited at the site
// on the named rail now: on the sandbox rail, which moves no money, any; on another, those whose
// terms name the site's debit user ID as it stands (authorises).
func (s *Service) debitable(ctx context.Context, siteID, railName string) (func(agreed ddr.Terms) bool, error) {
	if railName == rail.Sandbox {
		return func(ddr.Terms) bool { return true }, nil
	}
	userID, err := s.debitUser(ctx, siteID)
	if err != nil {
		return nil, err
	}
	return func(agreed ddr.Terms) bool { return authorises(agreed, userID) }, nil
}

// submitRows is submitPending's step for some of the batch's pending rows (Config.ExecuteChunk).
func (s *Service) submitRows(ctx context.Context, b Batch, site Site, siteRail rail.Rail, now time.Time, pending []PendingRow) (time.Time, error) {
	var outcomes []RowOutcome
	var debits []rail.Debit
	var unlinked []string
	for _, p := range pending {
		if !p.Linked {
			unlinked = append(unlinked, p.ID)
			continue
		}
		debits = append(debits, rail.Debit{Key: p.ID, Amount: p.Amount, Currency: site.Currency, Site: site.ID, Deadline: b.Deadline,
			Account: rail.Account{Name: p.Customer.Name, Title: p.Customer.AccountName, BSB: p.Customer.BSB, Number: p.Customer.AccountNumber},
			UserID:  p.Terms.UserID})
	}
	var answers []rail.Outcome
	if len(debits) > 0 {
		submitted, err := siteRail.Submit(ctx, debits)
		if err != nil {
			return time.Time{}, fmt.Errorf("submit debits: %w", err)
		}
		// A revocation while the debits were being submitted found none of them to withdraw: those
		// the rail holds queued of a customer no longer linked are withdrawn with the others.
		var revoked []string
		if answers, revoked, err = s.queuedOfRevoked(ctx, site, pending, submitted); err != nil {
			return time.Time{}, err
		}
		unlinked = append(unlinked, revoked...)
	}
	if len(unlinked) > 0 {
		held, err := withdraw(ctx, siteRail, unlinked)
		if err != nil {
			return time.Time{}, fmt.Errorf("withdraw debits: %w", err)
		}
		answers = append(answers, held...)
		isHeld := make(map[string]bool, len(held))
		for _, o := range held {
			isHeld[o.Key] = true
		}
		for _, id := range unlinked {
			if !isHeld[id] {
				outcomes = append(outcomes, RowOutcome{RowID: id, Failure: FailureCustomerNotActive, At: now})
			}
		}
	}
	settled, waiting, next := split(answers)
	outcomes = append(outcomes, settled...)
	if len(outcomes) > 0 {
		if err := s.batches.RecordOutcomes(ctx, outcomes); err != nil {
			return time.Time{}, fmt.Errorf("record outcomes: %w", err)
		}
	}
	if len(waiting) > 0 {
		if err := s.batches.MarkInProgress(ctx, waiting); err != nil {
			return time.Time{}, fmt.Errorf("mark rows in progress: %w", err)
		}
	}
	return next, nil
}

// queuedOfRevoked splits the rail's answers to a submission of the pending rows' debits into
// those that stand and the keys of the debits it holds queued whose customer is no longer linked.
func (s *Service) queuedOfRevoked(ctx context.Context, site Site, pending []PendingRow, answers []rail.Outcome) (stand []rail.Outcome, revoked []string, err error) {
	customerOf := make(map[string]string, len(pending))
	for _, p := range pending {
		customerOf[p.ID] = p.CustomerReference
	}
	var refs []string
	for _, o := range answers {
		if o.Queued {
			refs = append(refs, customerOf[o.Key])
		}
	}
	linked, err := s.linkedNow(ctx, site.ID, refs)
	if err != nil {
		return nil, nil, err
	}
	for _, o := range answers {
		if _, still := linked[customerOf[o.Key]]; o.Queued && !still {
			revoked = append(revoked, o.Key)
			continue
		}
		stand = append(stand, o)
	}
	return stand, revoked, nil
}

// withdraw stops what the rail holds unsent of the debits of rows whose customer is no longer
// linked, and returns the rail's answers for the debits it sent all the same: before the
// revocation, with the step that sent them cut short before recording it (a crash), or lodged in
// a file before this step. A row whose debit the rail holds follows the rail, for money moved is
// never told failed; the others fail customerNotActive.
func withdraw(ctx context.Context, r rail.Rail, keys []string) ([]rail.Outcome, error) {
	if w, ok := r.(rail.Withdrawer); ok {
		return w.Withdraw(ctx, keys)
	}
	return r.Outcomes(ctx, keys) // a rail that sends at once holds nothing unsent
}

// split sorts the rail's outcomes into the rows they settle and the rows still waiting, with the
// time the first of those expects to settle. A debit the rail holds queued, not sent yet, is
// neither: its row stays pending, and is submitted again (idempotently) at the time it gives.
func split(outcomes []rail.Outcome) (settled []RowOutcome, waiting []RowProgress, next time.Time) {
	for _, o := range outcomes {
		if o.Settled {
			settled = append(settled, RowOutcome{RowID: o.Key, Failure: FailureReason(o.Failure), At: o.SettledAt, FileID: o.FileID})
			continue
		}
		if !o.Queued {
			waiting = append(waiting, RowProgress{RowID: o.Key, FileID: o.FileID})
		}
		if next.IsZero() || o.SettlesAt.Before(next) {
			next = o.SettlesAt
		}
	}
	return settled, waiting, next
}

// recordSettled records the outcomes the rail has settled of the batch's inProgress rows, and
// returns when the next unsettled debit expects to settle: the earlier of next and those still
// waiting (zero if none is).
func (s *Service) recordSettled(ctx context.Context, b Batch, siteRail rail.Rail, next time.Time) (time.Time, error) {
	ids, err := s.batches.InProgressRows(ctx, b.ID)
	if err != nil || len(ids) == 0 {
		return next, err
	}
	_, waitingNext, err := s.recordRailOutcomes(ctx, siteRail, ids)
	if err != nil {
		return time.Time{}, err
	}
	if next.IsZero() || (!waitingNext.IsZero() && waitingNext.Before(next)) {
		next = waitingNext
	}
	return next, nil
}

// RecordRailOutcomes records the outcomes the named rail has settled of the debits with the given
// keys (rows' ids), at once rather than at their batches' next step: a rail's operator command
// that settles debits (a BECS file lodged) calls it, and the batches those rows end are completed.
// It returns how many it recorded; rows already terminal keep their outcome.
func (s *Service) RecordRailOutcomes(ctx context.Context, railName string, keys []string) (int, error) {
	r, ok := s.rails[railName]
	if !ok {
		return 0, fmt.Errorf("no payment rail %q is registered", railName)
	}
	n, _, err := s.recordRailOutcomes(ctx, r, keys)
	if err != nil || n == 0 {
		return n, err
	}
	// A batch whose last open rows these were is completed now, with its batch.completed event,
	// not at its next step up to a poll later: a batch is inProgress only while a row is open.
	// The rows are read a chunk at a time, as a file holds up to 500,000.
	var batchIDs []string
	seen := map[string]bool{}
	for chunk := range slices.Chunk(keys, 10_000) {
		rows, err := s.batches.RowsByID(ctx, chunk)
		if err != nil {
			return n, fmt.Errorf("rows of the outcomes: %w", err)
		}
		for _, row := range rows {
			if !seen[row.BatchID] {
				seen[row.BatchID] = true
				batchIDs = append(batchIDs, row.BatchID)
			}
		}
	}
	for _, id := range batchIDs {
		if _, err := s.batches.CompleteBatch(ctx, id, s.now()); err != nil {
			return n, fmt.Errorf("complete batch: %w", err)
		}
	}
	return n, nil
}

// recordRailOutcomes asks r for the outcomes of the debits with the given keys and records those
// it has settled; it returns how many, and when the next unsettled one expects to settle (zero if
// none is waiting).
func (s *Service) recordRailOutcomes(ctx context.Context, r rail.Rail, keys []string) (int, time.Time, error) {
	outcomes, err := r.Outcomes(ctx, keys)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("debit outcomes: %w", err)
	}
	settled, _, next := split(outcomes)
	if len(settled) > 0 {
		if err := s.batches.RecordOutcomes(ctx, settled); err != nil {
			return 0, time.Time{}, fmt.Errorf("record outcomes: %w", err)
		}
	}
	return len(settled), next, nil
}

// ReturnReport is what ReturnRows did with each return.
type ReturnReport struct {
	// Returned are the rows returned now, as they stand.
	Returned []ReturnedRow
	// AlreadyReturned are the ids of the rows returned before: a return recorded again changes
	// nothing.
	AlreadyReturned []string
	// Unmatched says, of each return that matches no succeeded row (by its row's id), why.
	Unmatched map[string]string
	// Revoked are the links the returns revoked, as they now stand: those of the customers whose
	// authority a return ended (RowReturn.EndsAuthority).
	Revoked []Link
}

// ReturnRows records the returns of succeeded debits that the customer's bank gave back (a rail's
// operator command or job that reads the bank's returns calls it): each row keeps its state,
// succeeded, and gains its return, with a debit.returned event, in one transaction. A row
// returned before is left as it is; a return whose row does not exist (purged after its
// retention) or did not succeed is reported in Unmatched, and changes nothing. A return that
// ends the customer's authority (RowReturn.EndsAuthority) revokes, in that transaction, the link
// the debit was made under if it is still linked, as the customer's own revocation would (by the
// bank, with its customer.revoked event), and the rails then withdraw the customer's debits not
// yet sent (withdrawRevoked, or the job the revocation enqueued if a rail fails): no further
// debit goes to an account closed or to a deceased customer's. Those debits are withdrawn before
// the returns are recorded too (withdrawBeforeReturns).
func (s *Service) ReturnRows(ctx context.Context, returns []RowReturn) (ReturnReport, error) {
	report := ReturnReport{Unmatched: map[string]string{}}
	if len(returns) == 0 {
		return report, nil
	}
	if err := s.withdrawBeforeReturns(ctx, returns); err != nil {
		return ReturnReport{}, err
	}
	returned, revoked, err := s.batches.ReturnRows(ctx, returns)
	if err != nil {
		return ReturnReport{}, fmt.Errorf("return rows: %w", err)
	}
	report.Returned, report.Revoked = returned, revoked
	s.withdrawRevoked(ctx, revoked)
	done := map[string]bool{}
	for _, r := range returned {
		done[r.ID] = true
	}
	var rest []string // each row once, however many of the returns name it
	for _, r := range returns {
		if !done[r.RowID] {
			rest = append(rest, r.RowID)
			done[r.RowID] = true
		}
	}
	if len(rest) == 0 {
		return report, nil
	}
	rows, err := s.batches.RowsByID(ctx, rest)
	if err != nil {
		return ReturnReport{}, fmt.Errorf("rows by id: %w", err)
	}
	found := map[string]Row{}
	for _, r := range rows {
		found[r.ID] = r
	}
	for _, id := range rest {
		r, ok := found[id]
		switch {
		case !ok:
			report.Unmatched[id] = "no such row: it was never submitted here, or its batch was removed after its retention"
		case r.Returned():
			report.AlreadyReturned = append(report.AlreadyReturned, id)
		default:
			report.Unmatched[id] = fmt.Sprintf("the row is %s, not succeeded", r.State)
		}
	}
	return report, nil
}

// settleGrace is how long past its deadline a started batch whose rail cannot be asked what it
// settled (an error, not a rail the service lacks) is left open, for a later sweep to ask again.
const settleGrace = 15 * time.Minute

// ExpireOverdue fails every row still open at its batch's deadline (the periodic job), once what
// the rails settled of them is recorded. Whatever the rail does later, a partner sees every row
// terminal within RowDeadline of submission. A batch whose rail cannot be asked is left open (its
// error returned) until settleGrace past its deadline, as the batch's own step leaves it: the
// rail may have settled a debit that no step recorded (a BECS file lodged, the command's record
// failing, the batch's job backing off), and it would be told expired. Past the grace, or with a
// rail the service lacks, it is expired all the same: the deadline holds. While one is left open
// the others are expired one by one, those not started too (their jobs may be held up as well).
func (s *Service) ExpireOverdue(ctx context.Context) (int, error) {
	now := s.now()
	overdue, err := s.batches.OverdueBatches(ctx, now)
	if err != nil {
		return 0, fmt.Errorf("overdue batches: %w", err)
	}
	var errs []error
	var settled []Batch
	held := false
	for _, b := range overdue {
		err := s.settleBeforeExpiring(ctx, b)
		if err != nil {
			errs = append(errs, fmt.Errorf("batch %s: %w", b.ID, err))
		}
		if err != nil && !errors.Is(err, errRailNotRegistered) && now.Before(b.Deadline.Add(settleGrace)) {
			held = true
			continue
		}
		settled = append(settled, b)
	}
	if !held {
		n, err := s.batches.ExpireOverdueRows(ctx, now)
		return n, errors.Join(append(errs, err)...)
	}
	expired := 0
	for _, b := range settled {
		n, err := s.batches.ExpireBatch(ctx, b.ID, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("expire batch %s: %w", b.ID, err))
		}
		expired += n
	}
	return expired, errors.Join(errs...)
}

// settleBeforeExpiring records what the batch's rail settled of its open rows, before they
// expire: a debit the rail has sent (a BECS file lodged) must be told succeeded, never expired,
// even when no step recorded it before the deadline (the batch's job failing and backing off, say).
// A rail that has a row's debit settles it before the deadline or never (a BECS file is not
// lodged within LodgeMargin of it), so asking once at the deadline is enough.
func (s *Service) settleBeforeExpiring(ctx context.Context, b Batch) error {
	if b.State == BatchAccepted {
		return nil // not started: no row of it has reached the rail
	}
	batchRail, err := s.batchRail(b)
	if err != nil {
		return err
	}
	rows, err := s.batches.BatchRows(ctx, b.ID, "")
	if err != nil {
		return fmt.Errorf("batch rows: %w", err)
	}
	open := openRows(rows)
	if len(open) == 0 {
		return nil
	}
	_, _, err = s.recordRailOutcomes(ctx, batchRail, open)
	return err
}

// PurgeBatches removes the batches past their retention, freeing their references (the periodic
// job). The rail's ledger keeps its own record of every debit.
func (s *Service) PurgeBatches(ctx context.Context) (int, error) {
	return s.batches.PurgeBatches(ctx, s.now())
}
