package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/ddr"
	"github.com/pyng/receivables/seal"
	"github.com/pyng/receivables/storage/driver"
)

// Store is billing.Store and billing.BatchStore over one engine's driver: each operation's
// statements, its transaction and the meaning of its outcomes, written once for every engine.
// It seals what it keeps of customers' details and signing keys with its key ring (see
// package seal), and opens them as it reads.
type Store struct {
	d    driver.Driver
	keys *seal.Keyring
}

var (
	_ billing.Store      = (*Store)(nil)
	_ billing.BatchStore = (*Store)(nil)
)

// NewStore returns the store over d, sealing with keys. With no key ring (nil) it reads
// plaintext values but refuses to store a customer's details or a signing key.
func NewStore(d driver.Driver, keys *seal.Keyring) *Store { return &Store{d: d, keys: keys} }

// Keyring is the store's key ring.
func (s *Store) Keyring() *seal.Keyring { return s.keys }

// Engine names the engine: EngineSQLite or EnginePostgres.
func (s *Store) Engine() string { return s.d.Engine() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.d.Ping(ctx) }

// Unreachable reports whether err is the database's being out of reach (see driver.Driver).
func (s *Store) Unreachable(err error) bool { return s.d.Unreachable(err) }

// Close closes the database.
func (s *Store) Close() error { return s.d.Close() }

// Migrations returns the migrations applied since the database was opened (see
// driver.Driver.Migrations).
func (s *Store) Migrations() []driver.Migration { return s.d.Migrations() }

// NewJobClient returns a River client of the job queue kept in the database (see
// driver.Driver.NewJobClient).
func (s *Store) NewJobClient(cfg *river.Config) (JobClient, error) { return s.d.NewJobClient(cfg) }

// interpret turns the facts an executor reports into the errors the Service acts on: a unique
// violation is ErrDuplicate, a foreign key violation (a missing parent) or no row is ErrNotFound.
func interpret(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, driver.ErrUniqueViolation):
		return fmt.Errorf("%w: %w", billing.ErrDuplicate, err)
	case errors.Is(err, driver.ErrForeignKeyViolation), errors.Is(err, driver.ErrNoRows):
		return fmt.Errorf("%w: %w", billing.ErrNotFound, err)
	}
	return err
}

// result interprets the error of a method that returns a value.
func result[T any](v T, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, interpret(err)
	}
	return v, nil
}

// limit bounds a page size to what every engine takes.
func limit(n int) int { return min(max(n, 0), math.MaxInt32) }

func (s *Store) CreateOrganisation(ctx context.Context, o billing.Organisation) error {
	return interpret(s.d.Executor().CreateOrganisation(ctx, o))
}

func (s *Store) CountOrganisations(ctx context.Context) (int, error) {
	return s.d.Executor().CountOrganisations(ctx)
}

func (s *Store) CreateSite(ctx context.Context, site billing.Site) error {
	return interpret(s.d.Executor().CreateSite(ctx, site))
}

func (s *Store) GetSite(ctx context.Context, id string) (billing.Site, error) {
	return result(s.d.Executor().GetSite(ctx, id))
}

func (s *Store) SetSiteRail(ctx context.Context, id, rail string) error {
	found, err := s.d.Executor().SetSiteRail(ctx, id, rail)
	if err == nil && !found {
		return billing.ErrNotFound
	}
	return err
}

func (s *Store) UpdateSiteDebitUser(ctx context.Context, id string, d billing.DebitUser, timeZone string) error {
	found, err := s.d.Executor().UpdateSiteDebitUser(ctx, id, d, timeZone)
	if err == nil && !found {
		return billing.ErrNotFound
	}
	return err
}

func (s *Store) CreateClient(ctx context.Context, c billing.Client) error {
	return interpret(s.d.Executor().CreateClient(ctx, c))
}

func (s *Store) GetClient(ctx context.Context, id string) (billing.Client, error) {
	return result(s.d.Executor().GetClient(ctx, id))
}

func (s *Store) RevokeClient(ctx context.Context, id string, at time.Time) (billing.Client, error) {
	return result(s.d.Executor().RevokeClient(ctx, id, at))
}

// EnsureSigningKey inserts the candidate, sealed, unless a key exists, then reads the current
// key.
func (s *Store) EnsureSigningKey(ctx context.Context, candidate billing.SigningKey) (billing.SigningKey, error) {
	e := s.d.Executor()
	sealed, err := s.sealKey(candidate)
	if err != nil {
		return billing.SigningKey{}, err
	}
	if err := e.InsertSigningKey(ctx, sealed); err != nil {
		return billing.SigningKey{}, err
	}
	k, err := e.GetSigningKey(ctx)
	if err != nil {
		return billing.SigningKey{}, err
	}
	return s.openKey(k)
}

// CreateLink inserts the link and its customer.invited event in one transaction. The common case,
// a customer reference with no current link (its first invitation), is one INSERT that inserts;
// when the pair has a current link it inserts nothing, and the invitation it may hold that
// expired is marked so (with its customer.expired event, unless the sweep wrote it) and cleared
// before the INSERT is tried again. Nothing inserted then means the pair's link is still active.
//
// On PostgreSQL the first invitation is written with its event by one statement outside a
// transaction (InsertInvitation): one round trip where the transaction takes five or more. Its
// deliveries are made later, from the events list, by FanOutDeliveries.
func (s *Store) CreateLink(ctx context.Context, l billing.Link) error {
	invited, err := billing.LinkEvent(billing.EventCustomerInvited, l, l.CreatedAt)
	if err != nil {
		return err
	}
	inserted, err := s.d.Executor().InsertInvitation(ctx, l, invited)
	if err != nil || inserted {
		return interpret(err)
	}
	return s.inTx(ctx, func(tx driver.ExecutorTx) error {
		inserted, err := tx.InsertLink(ctx, l)
		if err != nil {
			return interpret(err)
		}
		if !inserted {
			expired, err := tx.ExpireInvitations(ctx, l.SiteID, l.CustomerReference, l.CreatedAt)
			if err != nil {
				return fmt.Errorf("expire invitations: %w", err)
			}
			if err := s.recordLinks(ctx, tx, billing.EventCustomerExpired, expired, l.CreatedAt); err != nil {
				return err
			}
			if err := tx.ClearCurrentLink(ctx, l.SiteID, l.CustomerReference); err != nil {
				return fmt.Errorf("clear current link: %w", err)
			}
			if inserted, err = tx.InsertLink(ctx, l); err != nil {
				return interpret(err)
			}
			if !inserted {
				return billing.ErrDuplicate
			}
		}
		return s.record(ctx, tx, invited)
	})
}

func (s *Store) GetCurrentLink(ctx context.Context, siteID, customerReference string) (billing.Link, error) {
	return s.openLink(result(s.d.Executor().GetCurrentLink(ctx, siteID, customerReference)))
}

func (s *Store) GetLink(ctx context.Context, id string) (billing.Link, error) {
	return s.openLink(result(s.d.Executor().GetLink(ctx, id)))
}

// ListLinks picks the listing that filters by f.State in SQL, so that a page is full whatever
// the state. The customers' details are left sealed and dropped, never opened: the partner's
// list has no use for them, and a value that would not open (sealed under a key since removed
// from the key ring) fails the one link's reads, not every page of the site's list.
func (s *Store) ListLinks(ctx context.Context, siteID string, f billing.LinkFilter, now time.Time) ([]billing.Link, error) {
	links, err := s.listLinks(ctx, siteID, f, now)
	if err != nil {
		return nil, err
	}
	for i := range links {
		links[i].Customer = billing.Customer{}
	}
	return links, nil
}

func (s *Store) listLinks(ctx context.Context, siteID string, f billing.LinkFilter, now time.Time) ([]billing.Link, error) {
	e := s.d.Executor()
	p := driver.LinkPage{SiteID: siteID, After: f.After, Limit: limit(f.Limit), Now: now, State: f.State}
	switch f.State {
	case "":
		return e.ListLinks(ctx, p)
	case billing.LinkInvited:
		return e.ListInvitedLinks(ctx, p)
	case billing.LinkExpired:
		return e.ListExpiredLinks(ctx, p)
	case billing.LinkLinked, billing.LinkRevoked:
		return e.ListLinksInState(ctx, p)
	}
	return nil, fmt.Errorf("list links: unknown state %q", f.State)
}

func (s *Store) LinkCustomer(ctx context.Context, id string, c billing.Customer, terms ddr.Terms, browser string, at time.Time) (billing.Link, error) {
	sealed, err := s.sealCustomer(c)
	if err != nil {
		return billing.Link{}, err
	}
	key, err := s.browserKey(id, browser)
	if err != nil {
		return billing.Link{}, err
	}
	return s.moveLink(ctx, id, billing.EventCustomerLinked, at, func(tx driver.ExecutorTx) (billing.Link, error) {
		return tx.LinkCustomer(ctx, id, sealed, terms, key, at)
	})
}

func (s *Store) SignedUpFrom(ctx context.Context, id, browser string) (bool, error) {
	key, err := s.browserKey(id, browser)
	if err != nil {
		return false, err
	}
	return s.d.Executor().SignedUpFrom(ctx, id, key)
}

// signupBrowserKey is the purpose of the keyed digests of customer_links.signup_browser_key (see
// seal.Keyring.MAC): its table and column.
const signupBrowserKey = "customer_links.signup_browser_key"

// browserKey is how customer_links names the browser a link was linked from: the HMAC of the
// link's id and the browser's secret under a key derived from the key ring's current key, which
// tells whoever reads the table without the key nothing of the secret; nil for no browser ("").
// After a key rotation a browser is no longer matched: its confirmation sent again is told the
// link was used.
func (s *Store) browserKey(linkID, browser string) ([]byte, error) {
	if browser == "" {
		return nil, nil
	}
	// A link's id holds no NUL: the pair is one string only one way.
	key, err := s.keys.MAC(signupBrowserKey, []byte(linkID+"\x00"+browser))
	if err != nil {
		return nil, fmt.Errorf("the key of a signup's browser: %w", err)
	}
	return key, nil
}

func (s *Store) RevokeLink(ctx context.Context, id string, by billing.RevokedBy, at time.Time) (billing.Link, error) {
	return s.moveLink(ctx, id, billing.EventCustomerRevoked, at, func(tx driver.ExecutorTx) (billing.Link, error) {
		return tx.RevokeLink(ctx, id, by, at)
	})
}

// moveLink runs move, a conditional update of link id, and writes the event of the link it moved
// in the same transaction.
func (s *Store) moveLink(ctx context.Context, id string, t billing.EventType, at time.Time, move func(driver.ExecutorTx) (billing.Link, error)) (billing.Link, error) {
	var moved billing.Link
	err := s.inTx(ctx, func(tx driver.ExecutorTx) error {
		var err error
		if moved, err = move(tx); err != nil {
			return err
		}
		return s.linkMoved(ctx, tx, t, moved, at)
	})
	if err != nil {
		return billing.Link{}, s.staleOrNotFound(ctx, id, err)
	}
	return s.openLink(moved, nil)
}

// linkMoved writes, in tx, what a change t of link l at `at` comes with: its event and its jobs
// (linkJobs), these in one statement.
func (s *Store) linkMoved(ctx context.Context, tx driver.ExecutorTx, t billing.EventType, l billing.Link, at time.Time) error {
	if err := s.recordLinks(ctx, tx, t, []billing.Link{l}, at); err != nil {
		return err
	}
	if jobs := linkJobs(t, l); len(jobs) > 0 {
		if err := tx.InsertJobs(ctx, jobs); err != nil {
			return fmt.Errorf("enqueue the jobs of the link's change: %w", err)
		}
	}
	return nil
}

// linkJobs are the jobs that the change t of link l calls for: the email to the customer (the
// signup confirmation on linking, the revocation confirmation on revoking a link the customer
// signed up with: an invitation revoked unused has no one to write to) and, on revoking, the
// withdrawal of the customer's unsent debits, which a rail failing once the revocation is recorded
// then cannot lose.
func linkJobs(t billing.EventType, l billing.Link) []billing.Job {
	switch t {
	case billing.EventCustomerLinked:
		return []billing.Job{billing.SendEmailJob{LinkID: l.ID, Email: billing.EmailSignupConfirmation}}
	case billing.EventCustomerRevoked:
		jobs := []billing.Job{billing.WithdrawUnsentJob{LinkID: l.ID}}
		if !l.LinkedAt.IsZero() && l.Customer.Email != "" {
			jobs = append(jobs, billing.SendEmailJob{LinkID: l.ID, Email: billing.EmailRevocationConfirmation})
		}
		return jobs
	}
	return nil
}

// EnqueueEmail enqueues job in a transaction of its own.
func (s *Store) EnqueueEmail(ctx context.Context, job billing.SendEmailJob) error {
	return s.inTx(ctx, func(tx driver.ExecutorTx) error { return tx.InsertJob(ctx, job) })
}

// staleOrNotFound explains why a conditional update of link id matched no row: ErrStale when the
// link exists (its state had moved on), ErrNotFound when it does not.
func (s *Store) staleOrNotFound(ctx context.Context, id string, err error) error {
	if !errors.Is(err, driver.ErrNoRows) {
		return err
	}
	if _, err := s.d.Executor().GetLink(ctx, id); err != nil {
		return interpret(err)
	}
	return billing.ErrStale
}

// CreateBatch inserts the batch, its rows and its execution job in one transaction. When the
// insert finds the reference held, it frees the reference if its batch is past retention and
// inserts again; when the reference is still held it reads the batch holding it and writes
// nothing. (A new reference, the common case, so costs no delete.) On PostgreSQL the transaction
// is READ COMMITTED: when a concurrent transaction is inserting the same (site, reference), the
// insert waits for it to end and then does nothing, and the next statement's fresh snapshot sees
// the batch it committed.
func (s *Store) CreateBatch(ctx context.Context, b billing.Batch, rows []billing.Row) (stored billing.Batch, created bool, err error) {
	tx, err := s.d.Begin(ctx)
	if err != nil {
		return billing.Batch{}, false, err
	}
	defer tx.Rollback(ctx) // a no-op once committed; undoes nothing when the batch existed
	stored, err = tx.InsertBatch(ctx, b)
	if errors.Is(err, driver.ErrNoRows) {
		if err := tx.DeleteBatchPastRetention(ctx, b.SiteID, b.Reference, b.SubmittedAt); err != nil {
			return billing.Batch{}, false, fmt.Errorf("delete batch past retention: %w", err)
		}
		stored, err = tx.InsertBatch(ctx, b)
	}
	if errors.Is(err, driver.ErrNoRows) {
		existing, err := tx.GetBatch(ctx, b.SiteID, b.Reference)
		if err != nil {
			return billing.Batch{}, false, fmt.Errorf("get the batch holding the reference: %w", interpret(err))
		}
		return existing, false, nil
	}
	if err != nil {
		return billing.Batch{}, false, fmt.Errorf("insert batch: %w", interpret(err))
	}
	if b.Rail != "" && stored.Rail != b.Rail {
		return billing.Batch{}, false, fmt.Errorf("site %s moved from the %s rail to the %s rail: %w", b.SiteID, b.Rail, stored.Rail, billing.ErrStale)
	}
	if err := tx.InsertBatchRows(ctx, b.ID, rows); err != nil {
		return billing.Batch{}, false, fmt.Errorf("insert batch rows: %w", interpret(err))
	}
	if err := tx.InsertJob(ctx, billing.ExecuteBatchJob{BatchID: b.ID}); err != nil {
		return billing.Batch{}, false, fmt.Errorf("enqueue batch execution: %w", err)
	}
	accepted := billing.BatchSummary{billing.RowPending: {Count: b.RowCount, Amount: b.TotalAmount}}
	if err := s.recordBatch(ctx, tx, billing.EventBatchAccepted, stored, accepted, b.SubmittedAt); err != nil {
		return billing.Batch{}, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return billing.Batch{}, false, err
	}
	return stored, true, nil
}

func (s *Store) GetBatch(ctx context.Context, siteID, reference string) (billing.Batch, error) {
	return result(s.d.Executor().GetBatch(ctx, siteID, reference))
}

func (s *Store) GetBatchByID(ctx context.Context, id string) (billing.Batch, error) {
	return result(s.d.Executor().GetBatchByID(ctx, id))
}

func (s *Store) OverdueBatches(ctx context.Context, now time.Time) ([]billing.Batch, error) {
	return s.d.Executor().OverdueBatches(ctx, now)
}

func (s *Store) BatchRows(ctx context.Context, batchID string, state billing.RowState) ([]billing.Row, error) {
	if state == "" {
		return s.d.Executor().BatchRows(ctx, batchID)
	}
	return s.d.Executor().BatchRowsInState(ctx, batchID, state)
}

func (s *Store) LinkedCustomers(ctx context.Context, siteID string, customerReferences []string) (map[string]ddr.Terms, error) {
	linked, err := s.d.Executor().LinkedCustomers(ctx, siteID, customerReferences)
	if err != nil {
		return nil, err
	}
	out := make(map[string]ddr.Terms, len(linked))
	for _, l := range linked {
		out[l.CustomerReference] = l.Terms()
	}
	return out, nil
}

func (s *Store) BatchSummary(ctx context.Context, batchID string) (billing.BatchSummary, error) {
	totals, err := s.d.Executor().BatchSummary(ctx, batchID)
	if err != nil {
		return nil, err
	}
	summary := billing.BatchSummary{}
	for _, t := range totals {
		summary[t.State] = billing.StateTotal{Count: t.Count, Amount: t.Amount}
	}
	return summary, nil
}

func (s *Store) ListBatches(ctx context.Context, siteID string, f billing.BatchFilter) ([]billing.Batch, error) {
	if f.AfterID == "" && f.AfterSubmittedAt.IsZero() {
		return s.d.Executor().ListBatches(ctx, siteID, limit(f.Limit))
	}
	return s.d.Executor().ListBatchesAfter(ctx, siteID, f.AfterSubmittedAt, f.AfterID, limit(f.Limit))
}

func (s *Store) StartBatch(ctx context.Context, batchID string) error {
	return s.d.Executor().StartBatch(ctx, batchID)
}

func (s *Store) PendingRows(ctx context.Context, batchID string) ([]billing.PendingRow, error) {
	rows, err := s.d.Executor().PendingRows(ctx, batchID)
	if err != nil {
		return nil, err
	}
	// A batch's rows share few customers: each customer's details are opened once, not per row.
	opened := map[billing.Customer]billing.Customer{}
	for i := range rows {
		sealed := rows[i].Customer
		c, ok := opened[sealed]
		if !ok {
			if c, err = s.openCustomer(sealed); err != nil {
				return nil, fmt.Errorf("row %s: %w", rows[i].ID, err)
			}
			opened[sealed] = c
		}
		rows[i].Customer = c
	}
	return rows, nil
}

func (s *Store) MarkInProgress(ctx context.Context, rows []billing.RowProgress) error {
	if len(rows) == 0 {
		return nil
	}
	return s.d.Executor().MarkInProgress(ctx, rows)
}

func (s *Store) UnsentRowsOfCustomer(ctx context.Context, siteID, customerReference string, now time.Time) ([]billing.RowOnRail, error) {
	return s.d.Executor().UnsentRowsOfCustomer(ctx, siteID, customerReference, now)
}

func (s *Store) InProgressRows(ctx context.Context, batchID string) ([]string, error) {
	return s.d.Executor().InProgressRows(ctx, batchID)
}

func (s *Store) RecordOutcomes(ctx context.Context, outcomes []billing.RowOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	return s.d.Executor().RecordOutcomes(ctx, outcomes)
}

// ReturnRows records the returns and, for each row returned, its debit.returned event with the
// row as it now stands and its batch's reference, and revokes the links the returns that end the
// customer's authority were made under (with what a revocation comes with: linkMoved), in one
// transaction.
func (s *Store) ReturnRows(ctx context.Context, returns []billing.RowReturn) ([]billing.ReturnedRow, []billing.Link, error) {
	if len(returns) == 0 {
		return nil, nil, nil
	}
	returns = billing.FirstReturns(returns)
	endsAuthority := map[string]bool{}
	for _, r := range returns {
		endsAuthority[r.RowID] = r.EndsAuthority
	}
	var out []billing.ReturnedRow
	var revoked []billing.Link
	err := s.inTx(ctx, func(tx driver.ExecutorTx) error {
		revoked = nil
		rows, err := tx.ReturnRows(ctx, returns)
		if err != nil {
			return fmt.Errorf("return rows: %w", err)
		}
		// The events in a stable order: a batch's rows in the order of the batch.
		slices.SortFunc(rows, func(a, b billing.Row) int {
			return cmp.Or(strings.Compare(a.BatchID, b.BatchID), cmp.Compare(a.Index, b.Index))
		})
		batches := map[string]billing.Batch{}
		out = make([]billing.ReturnedRow, 0, len(rows))
		events := make([]billing.Event, 0, len(rows))
		for _, r := range rows {
			b, ok := batches[r.BatchID]
			if !ok {
				if b, err = tx.GetBatchByID(ctx, r.BatchID); err != nil {
					return fmt.Errorf("the batch of a returned row: %w", interpret(err))
				}
				batches[r.BatchID] = b
			}
			returned := billing.ReturnedRow{Row: r, BatchReference: b.Reference, SiteID: b.SiteID}
			e, err := billing.RowEvent(billing.EventDebitReturned, returned, r.ReturnedAt)
			if err != nil {
				return err
			}
			out, events = append(out, returned), append(events, e)
		}
		if err := s.record(ctx, tx, events...); err != nil {
			return err
		}
		current := map[[2]string]*billing.Link{} // each customer's current link, read once (nil: none)
		for _, r := range out {
			if !endsAuthority[r.ID] {
				continue
			}
			key := [2]string{r.SiteID, r.CustomerReference}
			l, read := current[key]
			if !read {
				got, err := tx.GetCurrentLink(ctx, r.SiteID, r.CustomerReference)
				if err != nil && !errors.Is(err, driver.ErrNoRows) {
					return fmt.Errorf("the link of a returned row: %w", err)
				}
				if err == nil {
					l = &got
				}
				current[key] = l
			}
			if l == nil {
				continue
			}
			ended, ok, err := s.revokeByBank(ctx, tx, *l, r.ReturnedAt, batches[r.BatchID].SubmittedAt)
			if err != nil {
				return err
			}
			if ok {
				revoked, current[key] = append(revoked, ended), &ended
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for i, l := range revoked {
		if revoked[i], err = s.openLink(l, nil); err != nil {
			return nil, nil, err
		}
	}
	return out, revoked, nil
}

// revokeByBank revokes by the bank at `at`, in tx, l, the current link of a returned row's
// customer, if it is linked and was linked when the row's batch was submitted (at submittedAt),
// with its customer.revoked event and the customer's email, and reports whether it did. A link
// made after the batch, the customer having revoked and linked again (perhaps with another
// account), is not the one the debit was made under, and is left; so is a link no longer linked
// (a second row of the customer returned in the same call finds it revoked already).
func (s *Store) revokeByBank(ctx context.Context, tx driver.ExecutorTx, l billing.Link, at, submittedAt time.Time) (billing.Link, bool, error) {
	if !l.MadeDebitsOf(submittedAt) {
		return billing.Link{}, false, nil
	}
	revoked, err := tx.RevokeLink(ctx, l.ID, billing.RevokedByBank, at)
	if errors.Is(err, driver.ErrNoRows) {
		return billing.Link{}, false, nil // revoked since it was read (PostgreSQL reads committed)
	}
	if err != nil {
		return billing.Link{}, false, fmt.Errorf("revoke the link of a returned row: %w", err)
	}
	if err := s.linkMoved(ctx, tx, billing.EventCustomerRevoked, revoked, at); err != nil {
		return billing.Link{}, false, err
	}
	return revoked, true, nil
}

func (s *Store) RowsByID(ctx context.Context, ids []string) ([]billing.Row, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return s.d.Executor().RowsByID(ctx, ids)
}

// CompleteBatch completes the batch if none of its rows is open, with its batch.completed event,
// then reads whether it is completed (by this call or an earlier one).
func (s *Store) CompleteBatch(ctx context.Context, batchID string, at time.Time) (bool, error) {
	err := s.inTx(ctx, func(tx driver.ExecutorTx) error {
		completed, err := tx.CompleteBatch(ctx, batchID, at)
		if err != nil || !completed {
			return err
		}
		return s.recordCompleted(ctx, tx, []string{batchID}, at)
	})
	if err != nil {
		return false, err
	}
	b, err := s.d.Executor().GetBatchByID(ctx, batchID)
	if err != nil {
		return false, interpret(err)
	}
	return b.State == billing.BatchCompleted, nil
}

// ExpireOverdueRows fails the overdue rows and completes their batches in one transaction, so
// that no batch is left completed with open rows or overdue with none.
func (s *Store) ExpireOverdueRows(ctx context.Context, now time.Time) (int, error) {
	return s.expire(ctx, now, func(tx driver.ExecutorTx) (int, error) { return tx.ExpireOverdueRows(ctx, now) },
		func(tx driver.ExecutorTx) ([]string, error) { return tx.CompleteOverdueBatches(ctx, now) })
}

// ExpireBatch is ExpireOverdueRows for one batch, whatever its deadline.
func (s *Store) ExpireBatch(ctx context.Context, batchID string, at time.Time) (int, error) {
	return s.expire(ctx, at, func(tx driver.ExecutorTx) (int, error) { return tx.ExpireBatchRows(ctx, batchID, at) },
		func(tx driver.ExecutorTx) ([]string, error) {
			completed, err := tx.CompleteExpiredBatch(ctx, batchID, at)
			if err != nil || !completed {
				return nil, err
			}
			return []string{batchID}, nil
		})
}

// expire runs expireRows then complete in one transaction, with the batch.completed event of each
// batch complete completed, and returns how many rows expired.
func (s *Store) expire(ctx context.Context, at time.Time, expireRows func(driver.ExecutorTx) (int, error), complete func(driver.ExecutorTx) ([]string, error)) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx driver.ExecutorTx) error {
		var err error
		if n, err = expireRows(tx); err != nil {
			return fmt.Errorf("expire rows: %w", err)
		}
		completed, err := complete(tx)
		if err != nil {
			return fmt.Errorf("complete batches: %w", err)
		}
		return s.recordCompleted(ctx, tx, completed, at)
	})
	return n, err
}

func (s *Store) PurgeBatches(ctx context.Context, now time.Time) (int, error) {
	return inChunks(purgeChunks.batches, func(limit int) (int, error) { return s.d.Executor().PurgeBatches(ctx, now, limit) })
}

// purgeChunks are how many rows each purge deletes in one statement, its own transaction: a
// backlog (the purge stopped for a while, or a large business) goes in statements that each end
// well within the job's timeout and keep what they deleted, where one statement might never end
// in time, rolled back at each try. A batch goes with its rows (up to 1000), an event with its
// deliveries.
var purgeChunks = struct{ batches, events, emails int }{batches: 10, events: 1000, emails: 1000}

// inChunks runs purge, which deletes up to chunk rows, until it deletes none or fails, and returns
// how many it deleted in all. Not until it deletes fewer than a chunk: two purges at once (a job
// and its rescued copy) pick some of the same rows, and the one that waited for the other deletes
// fewer, with rows left due.
func inChunks(chunk int, purge func(limit int) (int, error)) (int, error) {
	total := 0
	for {
		n, err := purge(chunk)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// The operator's listings and the rotation of a client's secret (billing.OperatorStore).

func page(p billing.OperatorPage) driver.Page {
	return driver.Page{OrganisationID: p.OrganisationID, AfterCreatedAt: p.AfterCreatedAt, AfterID: p.AfterID, Limit: limit(p.Limit)}
}

func (s *Store) ListOrganisations(ctx context.Context, p billing.OperatorPage) ([]billing.Organisation, error) {
	return s.d.Executor().ListOrganisations(ctx, page(p))
}

func (s *Store) GetOrganisation(ctx context.Context, id string) (billing.Organisation, error) {
	return result(s.d.Executor().GetOrganisation(ctx, id))
}

func (s *Store) ListSites(ctx context.Context, p billing.OperatorPage) ([]billing.Site, error) {
	return s.d.Executor().ListSites(ctx, page(p))
}

func (s *Store) ListClients(ctx context.Context, p billing.OperatorPage) ([]billing.Client, error) {
	return s.d.Executor().ListClients(ctx, page(p))
}

// SetClientSecret updates the client unless it is revoked; when nothing was updated, it reads
// the client to tell a missing one (ErrNotFound) from a revoked one (ErrStale).
func (s *Store) SetClientSecret(ctx context.Context, id string, secretHash []byte) (billing.Client, error) {
	e := s.d.Executor()
	c, err := e.SetClientSecret(ctx, id, secretHash)
	if !errors.Is(err, driver.ErrNoRows) {
		return result(c, err)
	}
	if _, err := e.GetClient(ctx, id); err != nil {
		return billing.Client{}, interpret(err)
	}
	return billing.Client{}, fmt.Errorf("%w: client %s is revoked", billing.ErrStale, id)
}

func (s *Store) JobsWaiting(ctx context.Context, queue string) (int, time.Time, error) {
	return s.d.Executor().JobsWaiting(ctx, queue)
}
