// Package driver is the seam between package storage, which writes each store operation once,
// and the engine packages (sqlite, postgres), which each implement it, as River's riverdriver is
// for River. An Executor runs one statement a method, taking and returning billing types; it
// decides nothing. Which statements run, in which transaction, and what an outcome means for the
// caller (billing.ErrDuplicate, ErrNotFound, ErrStale) are package storage's.
//
// It is a package of its own because the engines implement it and package storage, which opens
// them, imports the engines.
package driver

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/ddr"
)

// Driver is one engine's open database.
type Driver interface {
	// Engine names the engine: "sqlite" or "postgres".
	Engine() string
	// Executor runs each statement on its own, outside any transaction.
	Executor() Executor
	// Begin starts a transaction. On PostgreSQL it is READ COMMITTED whatever the server's
	// default, so that a statement sees what transactions it waited for committed (CreateBatch
	// relies on it); on SQLite it takes the write lock at once (IMMEDIATE).
	Begin(ctx context.Context) (ExecutorTx, error)
	// NewJobClient returns a River client of the job queue kept in the database, configured by
	// cfg (an empty Config gives a client that only inserts and lists jobs).
	NewJobClient(cfg *river.Config) (JobClient, error)
	Ping(ctx context.Context) error
	// Unreachable reports whether err is the database's being out of reach (no connection could be
	// made, or one broke, or the server is stopping), rather than a failure of what was asked.
	Unreachable(err error) bool
	Close() error
	// Migrations returns the migrations applied since the database was opened: on opening, then
	// by its Conns.
	Migrations() []Migration
}

// JobClient is what the server and its tests use of a River client (river.Client[TTx] has these
// methods whatever the engine's transaction type TTx).
type JobClient interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	// StopAndCancel stops as Stop does, cancelling the context of each job still running.
	StopAndCancel(ctx context.Context) error
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
	// JobRetry makes a job that waits (scheduled, retryable, or ended) available to run at once.
	JobRetry(ctx context.Context, id int64) (*rivertype.JobRow, error)
}

// ExecutorTx is an Executor inside a transaction.
type ExecutorTx interface {
	Executor
	// InsertJob enqueues job in the transaction: it runs only if the transaction commits.
	InsertJob(ctx context.Context, job billing.Job) error
	// InsertJobs enqueues the jobs in one statement; a unique job (InsertOpts) is left out while
	// one like it waits or runs.
	InsertJobs(ctx context.Context, jobs []billing.Job) error
	Commit(ctx context.Context) error
	// Rollback undoes the transaction; after Commit it does nothing.
	Rollback(ctx context.Context) error
}

// Executor runs the statements of the stores, one a method. A method that returns one row
// returns an error that wraps ErrNoRows when no row matched; a write that breaks a constraint
// returns one that wraps ErrUniqueViolation or ErrForeignKeyViolation (see Mark).
type Executor interface {
	CreateOrganisation(ctx context.Context, o billing.Organisation) error
	CountOrganisations(ctx context.Context) (int, error)
	CreateSite(ctx context.Context, s billing.Site) error
	GetSite(ctx context.Context, id string) (billing.Site, error)
	// SetSiteRail sets the site's rail and reports whether the site exists.
	SetSiteRail(ctx context.Context, id, rail string) (bool, error)
	// UpdateSiteDebitUser sets the site's debit user and time zone and reports whether the site
	// exists.
	UpdateSiteDebitUser(ctx context.Context, id string, d billing.DebitUser, timeZone string) (bool, error)
	CreateClient(ctx context.Context, c billing.Client) error
	GetClient(ctx context.Context, id string) (billing.Client, error)
	// RevokeClient sets the client's RevokedAt unless it is set.
	RevokeClient(ctx context.Context, id string, at time.Time) (billing.Client, error)
	// InsertSigningKey stores k as the first key unless a signing key exists.
	InsertSigningKey(ctx context.Context, k billing.SigningKey) error
	// GetSigningKey returns the current key: the one added last.
	GetSigningKey(ctx context.Context) (billing.SigningKey, error)
	// AddSigningKey stores k as the current key; ErrUniqueViolation when another was added at the
	// same moment.
	AddSigningKey(ctx context.Context, k billing.SigningKey) error
	// SigningKeys returns every key, the current first.
	SigningKeys(ctx context.Context) ([]billing.SigningKey, error)
	// DeleteSigningKeysExcept deletes every key but the one with id, and returns how many.
	DeleteSigningKeysExcept(ctx context.Context, id string) (int, error)
	// UpdateSigningKeySecret writes the key's secret if it is still old, and reports whether it did.
	UpdateSigningKeySecret(ctx context.Context, id string, old, new []byte) (bool, error)

	// InsertLink inserts l as the invited, current link of its pair, and reports whether it did:
	// nothing is inserted when the pair has a current or an active link.
	InsertLink(ctx context.Context, l billing.Link) (bool, error)
	// ExpireInvitations marks the pair's current link expired if it is an invitation that
	// expired by at, and returns it so.
	ExpireInvitations(ctx context.Context, siteID, customerReference string, at time.Time) ([]billing.Link, error)
	// ClearCurrentLink makes the pair's current link no longer current.
	ClearCurrentLink(ctx context.Context, siteID, customerReference string) error
	GetCurrentLink(ctx context.Context, siteID, customerReference string) (billing.Link, error)
	GetLink(ctx context.Context, id string) (billing.Link, error)
	// ListLinks and the three below return a page of the site's current links (see LinkPage).
	ListLinks(ctx context.Context, p LinkPage) ([]billing.Link, error)
	// ListInvitedLinks: those stored as invited that have not expired at p.Now.
	ListInvitedLinks(ctx context.Context, p LinkPage) ([]billing.Link, error)
	// ListExpiredLinks: those stored as expired, or as invited and expired at p.Now.
	ListExpiredLinks(ctx context.Context, p LinkPage) ([]billing.Link, error)
	// ListLinksInState: those stored in p.State.
	ListLinksInState(ctx context.Context, p LinkPage) ([]billing.Link, error)
	// LinkCustomer moves the link to linked if it is invited and unexpired at `at`, keeping
	// browserKey (nil for none) as the browser it was linked from; ErrNoRows if not (or if there
	// is no such link).
	LinkCustomer(ctx context.Context, id string, c billing.Customer, terms ddr.Terms, browserKey []byte, at time.Time) (billing.Link, error)
	// SignedUpFrom reports whether the link was linked from browserKey (never for nil).
	SignedUpFrom(ctx context.Context, id string, browserKey []byte) (bool, error)
	// RevokeLink moves the link to revoked if it is invited and unexpired at `at`, or linked;
	// ErrNoRows if not (or if there is no such link).
	RevokeLink(ctx context.Context, id string, by billing.RevokedBy, at time.Time) (billing.Link, error)
	// LinkedCustomers returns those of refs that have a linked current link at the site, each with
	// the terms agreed with it.
	LinkedCustomers(ctx context.Context, siteID string, refs []string) ([]LinkedCustomerRecord, error)
	// LinkDetailsAfter returns up to limit of the links that hold a customer's details, as stored,
	// those whose id is after `after`, ordered by id.
	LinkDetailsAfter(ctx context.Context, after string, limit int) ([]LinkDetails, error)
	// UpdateLinkDetails writes next's details to its link if they are still old's (an empty field
	// is NULL), and reports whether it did.
	UpdateLinkDetails(ctx context.Context, old, next LinkDetails) (bool, error)
	// EraseBankDetails clears the customer's details of up to limit links revoked at or before
	// `before`, and returns how many.
	EraseBankDetails(ctx context.Context, before time.Time, limit int) (int, error)

	// LockEmailAddress holds the address at a site whose key is given for a claim against its
	// cap of emails in the transaction: no other claim for it counts until the transaction ends (on
	// PostgreSQL an advisory lock of the key; a transaction on SQLite holds the database's write
	// lock from its start).
	LockEmailAddress(ctx context.Context, key []byte) error
	// EmailCounted reports whether the email id is counted.
	EmailCounted(ctx context.Context, id string) (bool, error)
	// CountEmailsSent counts the emails to the address whose key is given counted after since.
	CountEmailsSent(ctx context.Context, key []byte, since time.Time) (int, error)
	// InsertEmailSent counts the email id to the address whose key is given, at `at`.
	InsertEmailSent(ctx context.Context, id string, key []byte, at time.Time) error
	// DeleteEmailSent uncounts the email id.
	DeleteEmailSent(ctx context.Context, id string) error
	// ForgetSentEmails deletes up to limit of the emails counted at or before `before`, and
	// returns how many.
	ForgetSentEmails(ctx context.Context, before time.Time, limit int) (int, error)

	// DeleteBranches empties the BSB directory; InsertBranch adds one branch to it.
	DeleteBranches(ctx context.Context) error
	InsertBranch(ctx context.Context, b billing.Branch) error
	// GetBranch returns the branch of the BSB; ErrNoRows if the directory has none.
	GetBranch(ctx context.Context, bsb string) (billing.Branch, error)
	// HasBranches reports whether the directory holds any branch.
	HasBranches(ctx context.Context) (bool, error)

	// DeleteBatchPastRetention deletes the site's batch with the reference if its RetainUntil is
	// at or before at.
	DeleteBatchPastRetention(ctx context.Context, siteID, reference string, at time.Time) error
	// InsertBatch inserts b and returns it as stored; ErrNoRows when the site has a batch with
	// the reference (on PostgreSQL, after waiting for a transaction inserting one to end).
	InsertBatch(ctx context.Context, b billing.Batch) (billing.Batch, error)
	// InsertBatchRows inserts the rows, pending, into the batch by the engine's bulk path.
	InsertBatchRows(ctx context.Context, batchID string, rows []billing.Row) error
	GetBatch(ctx context.Context, siteID, reference string) (billing.Batch, error)
	GetBatchByID(ctx context.Context, id string) (billing.Batch, error)
	// OverdueBatches are the batches not completed whose deadline is at or before now, oldest
	// deadline first.
	OverdueBatches(ctx context.Context, now time.Time) ([]billing.Batch, error)
	// BatchRows returns the batch's rows in submission order.
	BatchRows(ctx context.Context, batchID string) ([]billing.Row, error)
	// BatchRowsInState returns the batch's rows in state, in submission order.
	BatchRowsInState(ctx context.Context, batchID string, state billing.RowState) ([]billing.Row, error)
	// BatchSummary counts and sums the batch's rows per state.
	BatchSummary(ctx context.Context, batchID string) ([]StateTotal, error)
	// ListBatches returns up to limit of the site's batches, newest first.
	ListBatches(ctx context.Context, siteID string, limit int) ([]billing.Batch, error)
	// ListBatchesAfter returns up to limit of the site's batches after the one submitted at
	// afterSubmittedAt with id afterID, in the order of ListBatches.
	ListBatchesAfter(ctx context.Context, siteID string, afterSubmittedAt time.Time, afterID string, limit int) ([]billing.Batch, error)
	// StartBatch moves the batch to inProgress if it is accepted.
	StartBatch(ctx context.Context, batchID string) error
	// PendingRows returns the batch's pending rows with their customers' current links.
	PendingRows(ctx context.Context, batchID string) ([]billing.PendingRow, error)
	// MarkInProgress moves those of the rows that are pending to inProgress, each with its file
	// (none when empty).
	MarkInProgress(ctx context.Context, rows []billing.RowProgress) error
	// UnsentRowsOfCustomer returns the pending rows of the customer's batches at the site, started
	// or not, whose deadline is after now, each with its batch's rail and submission.
	UnsentRowsOfCustomer(ctx context.Context, siteID, customerReference string, now time.Time) ([]billing.RowOnRail, error)
	// InProgressRows returns the ids of the batch's inProgress rows, in submission order.
	InProgressRows(ctx context.Context, batchID string) ([]string, error)
	// RecordOutcomes moves those of the rows that are pending or inProgress to their outcome (and
	// sets the file of those whose outcome names one).
	RecordOutcomes(ctx context.Context, outcomes []billing.RowOutcome) error
	// ReturnRows records the returns of those of the rows that are succeeded and not returned,
	// and returns them as they now stand, in no particular order. Each row is named once.
	ReturnRows(ctx context.Context, returns []billing.RowReturn) ([]billing.Row, error)
	// RowsByID returns the rows with the ids that exist, in no particular order.
	RowsByID(ctx context.Context, ids []string) ([]billing.Row, error)
	// CompleteBatch marks the batch completed at `at` unless it is, or one of its rows is open,
	// and reports whether it did.
	CompleteBatch(ctx context.Context, batchID string, at time.Time) (bool, error)
	// ExpireOverdueRows fails as expired the open rows of uncompleted batches whose deadline is
	// at or before now, and returns how many.
	ExpireOverdueRows(ctx context.Context, now time.Time) (int, error)
	// CompleteOverdueBatches completes the uncompleted batches whose deadline is at or before now,
	// and returns their ids.
	CompleteOverdueBatches(ctx context.Context, now time.Time) ([]string, error)
	// ExpireBatchRows fails as expired the batch's open rows at `at`, and returns how many.
	ExpireBatchRows(ctx context.Context, batchID string, at time.Time) (int, error)
	// CompleteExpiredBatch completes the batch at `at` unless it is completed, and reports whether
	// it did.
	CompleteExpiredBatch(ctx context.Context, batchID string, at time.Time) (bool, error)
	// PurgeBatches deletes up to limit of the batches whose RetainUntil is at or before now, with
	// their rows, and returns how many.
	PurgeBatches(ctx context.Context, now time.Time, limit int) (int, error)

	// InsertInvitation inserts the invited link l and its event e at once, outside
	// any transaction, when the engine can do so atomically and the pair has no current link;
	// otherwise it writes nothing and reports false.
	InsertInvitation(ctx context.Context, l billing.Link, e billing.Event) (bool, error)
	// InsertEvents inserts the events, in their order, by the engine's bulk path.
	InsertEvents(ctx context.Context, events []billing.Event) error
	GetEvent(ctx context.Context, id string) (billing.Event, error)
	// EventPosition is where the site's event id stands in the order of its events, if it was
	// made after since (not past its retention).
	EventPosition(ctx context.Context, siteID, id string, since time.Time) (EventPosition, error)
	// ListEvents returns a page of the site's events, in their order (see EventPage). On
	// PostgreSQL it leaves out the events of transactions that may still be followed by one that
	// commits an event before them.
	ListEvents(ctx context.Context, p EventPage) ([]billing.Event, error)
	// PurgeEvents deletes up to limit of the events written at or before `before` (and their
	// deliveries), and returns how many. On SQLite the latest event is kept, whatever its age, so
	// that the seqs of those deleted are never given again (see the query).
	PurgeEvents(ctx context.Context, before time.Time, limit int) (int, error)
	// ExpireDueInvitations marks expired up to limit of the invitations that expired by now, and
	// returns them so.
	ExpireDueInvitations(ctx context.Context, now time.Time, limit int) ([]billing.Link, error)

	InsertWebhookEndpoint(ctx context.Context, e StoredEndpoint) error
	CountWebhookEndpoints(ctx context.Context, siteID string) (int, error)
	// LockSite holds the site for an addition to what it has, counted against a limit, in the
	// transaction: no other such addition is made until the transaction ends (on PostgreSQL its
	// row is locked; a transaction on SQLite holds the database's write lock from its start).
	// ErrNoRows when there is no such site.
	LockSite(ctx context.Context, id string) error
	// ListWebhookEndpoints returns the site's endpoints, oldest first.
	ListWebhookEndpoints(ctx context.Context, siteID string) ([]StoredEndpoint, error)
	GetWebhookEndpoint(ctx context.Context, id string) (StoredEndpoint, error)
	// LockWebhookEndpoint is GetWebhookEndpoint for a change of the endpoint in the transaction:
	// no other change of it is made until the transaction ends (on PostgreSQL its row is locked;
	// a transaction on SQLite holds the database's write lock from its start).
	LockWebhookEndpoint(ctx context.Context, id string) (StoredEndpoint, error)
	// UpdateWebhookEndpoint writes every field of e but its site and creation time, and reports
	// whether the endpoint exists.
	UpdateWebhookEndpoint(ctx context.Context, e StoredEndpoint) (bool, error)
	// DeleteWebhookEndpoint deletes the site's endpoint and its deliveries, and reports whether
	// there was one.
	DeleteWebhookEndpoint(ctx context.Context, siteID, id string) (bool, error)
	// EndpointToSend returns what the fan-out of the endpoint's deliveries reads of it.
	EndpointToSend(ctx context.Context, id string) (SendingEndpoint, error)
	// EventsToSend returns up to limit of the site's events after `after`, in their order (on
	// PostgreSQL, as ListEvents, only those no later commit can precede).
	EventsToSend(ctx context.Context, siteID string, after EventPosition, limit int) ([]EventToSend, error)
	// SetEndpointSent sets the position of the last event the endpoint was given a delivery of,
	// or passed, if its position is still read, the one the fan-out read, and reports whether
	// it did: enabling the endpoint again meanwhile moved it past the events of its time disabled.
	SetEndpointSent(ctx context.Context, id string, read, p EventPosition) (bool, error)
	// MarkEndpointSucceeded clears the endpoint's FailingSince.
	MarkEndpointSucceeded(ctx context.Context, id string) error
	// MarkEndpointFailing sets the endpoint's FailingSince to at unless it is set.
	MarkEndpointFailing(ctx context.Context, id string, at time.Time) error
	// DisableFailingEndpoint disables the endpoint, as failing, if it is enabled and has been
	// failing since cutoff or earlier, and reports whether it did.
	DisableFailingEndpoint(ctx context.Context, id string, cutoff time.Time) (bool, error)

	// InsertDeliveries inserts the deliveries, pending and due at their CreatedAt, but for one
	// the endpoint has of the event already.
	InsertDeliveries(ctx context.Context, ds []billing.Delivery) error
	GetDelivery(ctx context.Context, id string) (billing.Delivery, error)
	// ListDeliveries returns up to limit of the endpoint's deliveries, newest first.
	ListDeliveries(ctx context.Context, endpointID string, limit int) ([]billing.Delivery, error)
	// ListDeliveriesBefore returns up to limit of the endpoint's deliveries after the one made at
	// createdAt with id, in the order of ListDeliveries.
	ListDeliveriesBefore(ctx context.Context, endpointID string, createdAt time.Time, id string, limit int) ([]billing.Delivery, error)
	// RetryDelivery makes the delivery pending, due at now, with no tries, and counts the retry
	// (billing.Delivery.Retries); false when there is no such delivery, or it was retried
	// maxRetries times already.
	RetryDelivery(ctx context.Context, id string, now time.Time, maxRetries int) (bool, error)
	// JobsWaiting counts the jobs of the queue not yet done (available, pending, running,
	// retryable or scheduled) and returns when the oldest of them was enqueued (zero when none).
	JobsWaiting(ctx context.Context, queue string) (int, time.Time, error)
	// DueEndpoints returns the endpoints with pending deliveries due by now, and the enabled ones
	// with events after the last they were given deliveries of.
	DueEndpoints(ctx context.Context, now time.Time) ([]string, error)
	// LeaseEndpoint gives holder the endpoint's lease until until, unless another holder has it
	// past now, and reports whether holder has it.
	LeaseEndpoint(ctx context.Context, id, holder string, now, until time.Time) (bool, error)
	// ReleaseEndpoint ends holder's lease of the endpoint, if it has it.
	ReleaseEndpoint(ctx context.Context, id, holder string) error
	// DueDeliveries returns up to limit of the endpoint's pending deliveries due by now, after
	// `after` in the order they came due, with their events' bodies; on PostgreSQL only those whose
	// events ListEvents shows (of transactions no later commit can precede).
	DueDeliveries(ctx context.Context, endpointID string, now time.Time, after billing.DueDelivery, limit int) ([]billing.DueDelivery, error)
	// RecordDeliveryOutcomes adds each outcome's attempt to its delivery, numbered after the
	// others, and sets the delivery's state and next attempt and counts the try unless the
	// delivery was retried since the outcome's Retries were read (the retry stands); the outcome
	// of a delivery that is gone is left out. One statement for each table.
	RecordDeliveryOutcomes(ctx context.Context, outcomes []billing.DeliveryOutcome) error
	// DeliveryAttempts returns the attempts of the deliveries, each delivery's in order.
	DeliveryAttempts(ctx context.Context, deliveryIDs []string) ([]DeliveryAttempt, error)

	// The operator's listings (see Page) and the rotation of a client's secret.
	ListOrganisations(ctx context.Context, p Page) ([]billing.Organisation, error)
	GetOrganisation(ctx context.Context, id string) (billing.Organisation, error)
	// ListSites and ListClients list those of p.OrganisationID, or of every organisation when it
	// is empty.
	ListSites(ctx context.Context, p Page) ([]billing.Site, error)
	ListClients(ctx context.Context, p Page) ([]billing.Client, error)
	// SetClientSecret replaces the secret hash of the client unless it is revoked, and returns the
	// client; ErrNoRows when there is no client with id that is not revoked.
	SetClientSecret(ctx context.Context, id string, secretHash []byte) (billing.Client, error)
}

// EventPosition is where an event stands in the order of its site's events; the zero position
// is before the first. Tx is the writing transaction's id on PostgreSQL ("0" or "" on SQLite,
// which orders by Seq alone).
type EventPosition struct {
	Tx  string
	Seq int64
}

// EventPage selects up to Limit of a site's events after After and created after Since, only
// of Type unless empty.
type EventPage struct {
	SiteID string
	After  EventPosition
	Type   billing.EventType
	Limit  int
	Since  time.Time
	// Hidden are the types left out when Type is empty.
	Hidden []billing.EventType
}

// StoredEndpoint is a webhook endpoint as stored: its secrets sealed (Endpoint's are zero).
type StoredEndpoint struct {
	Endpoint       billing.WebhookEndpoint
	Secret         string
	PreviousSecret string // empty for NULL
}

// SendingEndpoint is what the fan-out of an endpoint's deliveries reads of it: its site, whether
// it is enabled, what it subscribes to, and the last of the site's events it was given a delivery
// of, or passed.
type SendingEndpoint struct {
	SiteID     string
	Enabled    bool
	EventTypes []billing.EventType
	Sent       EventPosition
}

// EventToSend is an event as the fan-out reads it: where it stands, and what a delivery of it
// takes.
type EventToSend struct {
	Position  EventPosition
	ID        string
	Type      billing.EventType
	CreatedAt time.Time
}

// DeliveryAttempt is an attempt of the delivery DeliveryID.
type DeliveryAttempt struct {
	DeliveryID string
	Attempt    billing.DeliveryAttempt
}

// LinkPage selects a page of a site's current links, ordered by customer reference: up to Limit
// of those after After. Now and State are for the listings that take them.
type LinkPage struct {
	SiteID string
	After  string
	Limit  int
	Now    time.Time
	State  billing.LinkState
}

// LinkDetails are the customer's details of a link as stored: sealed, or plaintext written before
// sealing existed; empty for NULL.
type LinkDetails struct {
	LinkID   string
	Customer billing.Customer
}

// StateTotal is how many rows of a batch are in State, and their amount.
type StateTotal struct {
	State  billing.RowState
	Count  int
	Amount int64
}

// The facts an Executor reports by wrapping them in its errors (see Mark).
var (
	ErrNoRows              = errors.New("no rows")
	ErrUniqueViolation     = errors.New("unique violation")
	ErrForeignKeyViolation = errors.New("foreign key violation")
)

// Mark returns err marked with fact (one of the errors above): errors.Is(result, fact) holds,
// and the message is err's own.
func Mark(fact, err error) error { return marked{fact: fact, err: err} }

type marked struct{ fact, err error }

func (m marked) Error() string   { return m.err.Error() }
func (m marked) Unwrap() []error { return []error{m.fact, m.err} }

// InsertOpts are the River insert options a job asks for (nil for the queue's defaults).
func InsertOpts(job billing.Job) *river.InsertOpts {
	var opts river.InsertOpts
	if j, ok := job.(interface{ MaxAttempts() int }); ok {
		opts.MaxAttempts = j.MaxAttempts()
	}
	if j, ok := job.(interface{ Queue() string }); ok {
		opts.Queue = j.Queue()
	}
	if j, ok := job.(interface{ Unique() bool }); ok && j.Unique() {
		// One job of the kind and arguments while it waits or runs; an ended or retryable one
		// does not count.
		opts.UniqueOpts = river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{rivertype.JobStateAvailable,
			rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateScheduled}}
	}
	return &opts
}

// InsertManyParams are the jobs with their insert options, for River's InsertMany.
func InsertManyParams(jobs []billing.Job) []river.InsertManyParams {
	params := make([]river.InsertManyParams, len(jobs))
	for i, job := range jobs {
		params[i] = river.InsertManyParams{Args: job, InsertOpts: InsertOpts(job)}
	}
	return params
}

// One adapts fn, which maps one row a query returned, to the query's results: fn(r), or the
// query's error marked by mark.
func One[R, T any](mark func(error) error, fn func(R) T) func(R, error) (T, error) {
	return func(r R, err error) (T, error) {
		if err != nil {
			var zero T
			return zero, mark(err)
		}
		return fn(r), nil
	}
}

// Many is One for a query that returns many rows.
func Many[R, T any](mark func(error) error, fn func(R) T) func([]R, error) ([]T, error) {
	return func(rs []R, err error) ([]T, error) {
		if err != nil {
			return nil, mark(err)
		}
		out := make([]T, len(rs))
		for i, r := range rs {
			out[i] = fn(r)
		}
		return out, nil
	}
}

// Migration is one migration applied on opening a database or by a component's Conn: of the
// engine's schema (component "schema"), of River's job queue ("river"), or of a component's own
// tables (its goose version table, such as "sandbox_goose_version").
type Migration struct {
	Component string
	Version   int64
	Name      string
}

// The components of the migrations an engine applies on Open.
const (
	MigrationsOfSchema = "schema"
	MigrationsOfRiver  = "river"
)

// ErrForeignDatabase is the error of opening a database (or PostgreSQL schema) that holds
// another application's tables and none of pyng's migrations.
var ErrForeignDatabase = errors.New("the database is another application's")

// Tables counts tables in words, for ErrForeignDatabase's messages: "1 table", "3 tables".
func Tables(n int) string {
	if n == 1 {
		return "1 table"
	}
	return fmt.Sprintf("%d tables", n)
}

// GooseMigrations are the migrations goose's Up reports, of component.
func GooseMigrations(component string, results []*goose.MigrationResult) []Migration {
	out := make([]Migration, 0, len(results))
	for _, r := range results {
		if r == nil || r.Source == nil {
			continue
		}
		out = append(out, Migration{Component: component, Version: r.Source.Version, Name: path.Base(r.Source.Path)})
	}
	return out
}

// RiverMigrations are the migrations River's Migrate reports.
func RiverMigrations(res *rivermigrate.MigrateResult) []Migration {
	if res == nil {
		return nil
	}
	out := make([]Migration, 0, len(res.Versions))
	for _, v := range res.Versions {
		out = append(out, Migration{Component: MigrationsOfRiver, Version: int64(v.Version), Name: v.Name})
	}
	return out
}

// MigrationLog is the list of migrations a database applied since it was opened; its methods are
// safe for concurrent use.
type MigrationLog struct {
	mu   sync.Mutex
	list []Migration
}

// NewMigrationLog returns a log holding applied.
func NewMigrationLog(applied []Migration) *MigrationLog {
	return &MigrationLog{list: slices.Clone(applied)}
}

// Add appends applied to the log.
func (l *MigrationLog) Add(applied []Migration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, applied...)
}

// List returns the migrations in the order they were applied.
func (l *MigrationLog) List() []Migration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.list)
}

// Page selects a page of an operator's listing, ordered by creation time and id: up to Limit
// of those after the one created at AfterCreatedAt with AfterID (the zero Page's cursor is before
// the first), of OrganisationID if set.
type Page struct {
	OrganisationID string
	AfterCreatedAt time.Time
	AfterID        string
	Limit          int
}

// AfterMillis is the page's cursor time in the stored milliseconds: -1, before every row, for
// the zero time.
func (p Page) AfterMillis() int64 {
	if p.AfterCreatedAt.IsZero() {
		return -1
	}
	return billing.Millis(p.AfterCreatedAt)
}
