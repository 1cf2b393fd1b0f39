package billing

import (
	"context"
	"time"

	"github.com/pyng/receivables/ddr"
)

// PendingRow is a pending row with its customer's current link, as execution needs it.
type PendingRow struct {
	Row
	// Linked reports whether the row's customer has a linked link now; Customer is its details,
	// and Terms the terms the customer agreed to with it (zero when they were not kept: linked
	// before they were).
	Linked   bool
	Customer Customer
	Terms    ddr.Terms
}

// RowOnRail is a row with the rail of its batch and when the batch was submitted.
type RowOnRail struct {
	RowID, Rail      string
	BatchSubmittedAt time.Time
}

// RowOutcome is the terminal state a row reaches: failed with Failure, or succeeded when Failure
// is empty.
type RowOutcome struct {
	RowID   string
	Failure FailureReason
	At      time.Time
	FileID  string // the file the debit went in, on a rail that sends files
}

// RowProgress is a row that leaves pending, sent to its rail (in the file FileID, on a rail that
// sends files).
type RowProgress struct {
	RowID  string
	FileID string
}

// BatchStore persists batches and their rows. Like Store, it is implemented once over each
// engine's driver and checked by one behaviour suite. Writes that move rows are set-based: one
// statement for many rows.
type BatchStore interface {
	// CreateBatch stores b and its rows and enqueues the batch's ExecuteBatchJob, all in one
	// transaction, so that an accepted batch always runs. If the site has a batch with the same
	// reference whose RetainUntil is after b.SubmittedAt, nothing is written and that batch is
	// returned with created false (so of concurrent identical submissions one creates, the rest
	// read it); an older batch with the reference is deleted first. The batch is stored on its
	// site's rail as the site's row stands in that transaction; when b.Rail is set and that rail
	// is another, nothing is written and the error is ErrStale (an operator moved the site since
	// the caller read its rail).
	CreateBatch(ctx context.Context, b Batch, rows []Row) (stored Batch, created bool, err error)
	// GetBatch returns the retained batch of the site with the reference, or ErrNotFound.
	GetBatch(ctx context.Context, siteID, reference string) (Batch, error)
	GetBatchByID(ctx context.Context, id string) (Batch, error)
	// BatchRows returns the batch's rows in submission order, only those in state unless empty.
	BatchRows(ctx context.Context, batchID string, state RowState) ([]Row, error)
	// LinkedCustomers returns those of the customerReferences that have a linked current link at
	// the site now, each with the terms agreed with it (zero when they were not kept).
	LinkedCustomers(ctx context.Context, siteID string, customerReferences []string) (map[string]ddr.Terms, error)
	// BatchSummary counts and sums the batch's rows per state (states without rows left out).
	BatchSummary(ctx context.Context, batchID string) (BatchSummary, error)
	// ListBatches returns up to f.Limit batches of the site, newest first (SubmittedAt, then ID,
	// both descending), those after f's cursor.
	ListBatches(ctx context.Context, siteID string, f BatchFilter) ([]Batch, error)

	// StartBatch moves an accepted batch to inProgress; any other state is left as it is.
	StartBatch(ctx context.Context, batchID string) error
	// PendingRows returns the batch's pending rows with their customers' current links.
	PendingRows(ctx context.Context, batchID string) ([]PendingRow, error)
	// MarkInProgress moves the given pending rows to inProgress, with the files they went in.
	MarkInProgress(ctx context.Context, rows []RowProgress) error
	// UnsentRowsOfCustomer returns the pending rows of the customer's batches at the site, started
	// or not, each with its batch's rail and submission: those whose debits a rail may hold
	// unsent, or a step to come may send. A batch whose deadline is not after now is left out: its rows expire at the
	// deadline (ExpireOverdue).
	UnsentRowsOfCustomer(ctx context.Context, siteID, customerReference string, now time.Time) ([]RowOnRail, error)
	// InProgressRows returns the ids of the batch's inProgress rows.
	InProgressRows(ctx context.Context, batchID string) ([]string, error)
	// RecordOutcomes moves each row that is still pending or inProgress to its terminal state
	// (and records its file, when the outcome names one); a row already terminal keeps its
	// outcome.
	RecordOutcomes(ctx context.Context, outcomes []RowOutcome) error
	// CompleteBatch marks the batch completed at `at` if none of its rows is open, and reports
	// whether it is completed.
	CompleteBatch(ctx context.Context, batchID string, at time.Time) (bool, error)
	// OverdueBatches returns the batches not completed whose Deadline is at or before now, oldest
	// deadline first.
	OverdueBatches(ctx context.Context, now time.Time) ([]Batch, error)
	// ExpireOverdueRows fails with FailureExpired every open row of a batch whose Deadline is at
	// or before now, completes those batches, and returns how many rows it failed.
	ExpireOverdueRows(ctx context.Context, now time.Time) (int, error)
	// ExpireBatch fails with FailureExpired every open row of one batch at `at` (or at the
	// batch's Deadline, if that is earlier: every row is terminal within RowDeadline of
	// submission), completes the batch then, writes its batch.completed event at `at`, and
	// returns how many rows it failed.
	ExpireBatch(ctx context.Context, batchID string, at time.Time) (int, error)
	// ReturnRows records the returns of the rows that are succeeded and not returned yet, each
	// with its debit.returned event, in one transaction, and returns those rows as they now
	// stand, with their batches' references; the others are left as they are. In the same
	// transaction, for each row returned now whose return EndsAuthority, it revokes by the bank
	// its customer's current link if that is linked and was linked when the row's batch was
	// submitted (the link the debit was made under, not one the customer made since), with its
	// customer.revoked event, the WithdrawUnsentJob of the customer's debits and the customer's
	// revocation confirmation, and returns those links too.
	ReturnRows(ctx context.Context, returns []RowReturn) ([]ReturnedRow, []Link, error)
	// RowsByID returns the rows with the given ids that exist, in no particular order.
	RowsByID(ctx context.Context, ids []string) ([]Row, error)
	// PurgeBatches deletes the batches (and rows) whose RetainUntil is at or before now, and
	// returns how many.
	PurgeBatches(ctx context.Context, now time.Time) (int, error)
}

// ReturnedRow is a row with the reference of its batch.
type ReturnedRow struct {
	Row
	BatchReference string
	SiteID         string
}

// Job is a job of the server's queue: its Kind names it in the queue, and its fields, encoded as
// JSON, are its arguments. It is the method set of River's JobArgs, so that the domain can name
// the jobs its stores enqueue without knowing the queue.
type Job interface {
	Kind() string
}

// ExecuteBatchJob executes one batch, step by step until it is completed. CreateBatch enqueues it
// in the batch's transaction; package jobs works it.
type ExecuteBatchJob struct {
	BatchID string `json:"batchId"`
}

// Kind is the job's name in the queue.
func (ExecuteBatchJob) Kind() string { return "execute_batch" }

// MaxAttempts is how many times the job may fail before the queue gives it up. Snoozing while the
// rail settles does not use attempts; attempts are spent only by errors (a database or rail
// outage), and the 24-hour deadline bounds the batch whatever happens.
func (ExecuteBatchJob) MaxAttempts() int { return 1000 }

// WithdrawUnsentJob has the rails withdraw the unsent debits of the customer of a revoked link
// (Service.WithdrawUnsent). The store enqueues it in the transaction that revokes the link
// (Store.RevokeLink, and BatchStore.ReturnRows for the bank), so that a rail that fails the
// withdrawal that follows the revocation is asked again until it answers, before a cut-off sends
// the debits of a customer whose authority ended; package jobs works it.
type WithdrawUnsentJob struct {
	LinkID string `json:"linkId"`
}

// Kind is the job's name in the queue.
func (WithdrawUnsentJob) Kind() string { return "withdraw_unsent" }

// WithdrawalQueue is the queue of the withdrawals: a queue of their own, with workers of their
// own, so that a backlog of batch executions in the default queue never holds up a withdrawal
// that must come before the next cut-off.
const WithdrawalQueue = "withdrawals"

// Queue is the job's queue.
func (WithdrawUnsentJob) Queue() string { return WithdrawalQueue }

// MaxAttempts lets the job be retried, a minute apart at most, for longer than RowDeadline: the
// debits it withdraws are those of batches before their deadline (UnsentRowsOfCustomer), and once
// the deadline has passed it has nothing left to do.
func (WithdrawUnsentJob) MaxAttempts() int { return 2000 }
