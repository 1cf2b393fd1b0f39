package billing

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/pyng/receivables/rail"
)

// BatchState is the state of a debit batch.
type BatchState string

// The batch states: accepted on submission, inProgress once execution starts, completed when every
// row is terminal.
const (
	BatchAccepted   BatchState = "accepted"
	BatchInProgress BatchState = "inProgress"
	BatchCompleted  BatchState = "completed"
)

// RowState is the state of one debit of a batch.
type RowState string

// The row states: pending → inProgress → succeeded or failed.
const (
	RowPending    RowState = "pending"
	RowInProgress RowState = "inProgress"
	RowSucceeded  RowState = "succeeded"
	RowFailed     RowState = "failed"
)

// RowStates lists every row state, in lifecycle order.
var RowStates = []RowState{RowPending, RowInProgress, RowSucceeded, RowFailed}

// Valid reports whether s is one of the row states.
func (s RowState) Valid() bool {
	switch s {
	case RowPending, RowInProgress, RowSucceeded, RowFailed:
		return true
	}
	return false
}

// ParseRowState reads the state a batch's rows are filtered by, as a partner wrote it.
func ParseRowState(s string) (RowState, error) {
	if state := RowState(s); state.Valid() {
		return state, nil
	}
	return "", invalidRowState()
}

// Terminal reports whether a row in state s will not change again.
func (s RowState) Terminal() bool { return s == RowSucceeded || s == RowFailed }

// FailureReason says why a row failed.
type FailureReason string

// The failure reasons.
const (
	// FailureCustomerNotActive: when the row executed, the customer was unknown or not linked,
	// or revoked before the rail sent the row's debit (which the rail then withdrew).
	FailureCustomerNotActive = FailureReason(rail.FailureWithdrawn)
	// FailureInsufficientFunds: the customer's bank declined for lack of funds; try again later.
	FailureInsufficientFunds = FailureReason(rail.FailureInsufficientFunds)
	// FailureAccountClosed: the customer's account is closed.
	FailureAccountClosed = FailureReason(rail.FailureAccountClosed)
	// FailureExpired: the row could not finish within RowDeadline of submission.
	FailureExpired = FailureReason(rail.FailureExpired)
)

// Batch limits and lifetimes.
const (
	MaxBatchRows = 1000
	// MaxAmount is the largest debit, in cents: AUD 10,000,000.00. It keeps a batch total far
	// inside int64 and catches unit mistakes (dollars sent as cents times 100).
	MaxAmount int64 = 1_000_000_000
	// RowDeadline is how long after submission every row must be terminal.
	RowDeadline = 24 * time.Hour
	// BatchRetention is how long a batchReference is kept (and the batch readable) after
	// submission; after it the batch is removed and the reference may be used again.
	BatchRetention = 90 * 24 * time.Hour
)

// BatchRequest is a batch as the partner submits it.
type BatchRequest struct {
	Reference string
	Rows      []RowRequest
}

// RowRequest is one debit as the partner submits it.
type RowRequest struct {
	Reference         string
	CustomerReference string
	Amount            int64
}

// Fingerprint identifies the request's content: two requests have the same fingerprint exactly
// when they are the same batch, whatever the whitespace or key order of the JSON they came in.
func (r BatchRequest) Fingerprint() []byte {
	buf := make([]byte, 0, 64+len(r.Rows)*48)
	field := func(s string) {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
		buf = append(buf, s...)
	}
	field(r.Reference)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(r.Rows)))
	for _, row := range r.Rows {
		field(row.Reference)
		field(row.CustomerReference)
		buf = binary.BigEndian.AppendUint64(buf, uint64(row.Amount))
	}
	sum := sha256.Sum256(buf)
	return sum[:]
}

// MaxReportedProblems bounds the problems a refused batch reports: the first ones in the order
// of the request, then one more that says how many more there were. It keeps the answer to the
// worst body small whatever the body holds.
const MaxReportedProblems = 100

// BatchProblems gathers the problems of a batch in the order they are reported, keeping the
// first MaxReportedProblems and counting the rest. A reader that finds many problems asks Full
// before building one, and counts it with Skip instead.
type BatchProblems struct {
	list Errors
	more int
}

// Full reports whether a further problem would only be counted.
func (p *BatchProblems) Full() bool { return len(p.list) >= MaxReportedProblems }

// Add reports problems, in order.
func (p *BatchProblems) Add(errs ...*Error) {
	for _, e := range errs {
		if p.Full() {
			p.more++
			continue
		}
		p.list = append(p.list, e)
	}
}

// Skip counts n problems that come next in order without building them: the caller has seen
// that p is Full.
func (p *BatchProblems) Skip(n int) { p.more += n }

// Len is how many problems have been reported, listed or counted.
func (p *BatchProblems) Len() int { return len(p.list) + p.more }

// Errors is the problems as they are answered: those listed, then, when some were only counted,
// one more saying how many.
func (p *BatchProblems) Errors() Errors {
	if p.more == 0 {
		return p.list
	}
	more := fmt.Sprintf("%d more problems are", p.more)
	if p.more == 1 {
		more = "1 more problem is"
	}
	return append(p.list, Errorf(CodeBatchInvalidField, "", fmt.Sprintf(
		"%s not listed: only the first %d problems of a batch are. Correct these and submit the batch again to see the rest.",
		more, MaxReportedProblems)))
}

// ValidateBatch reports the problems of r, each with its target (rows[17].amount), in the order
// of the request: at most MaxReportedProblems, then one saying how many more there were. The rows
// of a batch of more than MaxBatchRows rows are not checked one by one: the batch is refused for
// its size.
func ValidateBatch(r BatchRequest) Errors {
	var c BatchCheck
	var p BatchProblems
	p.Add(c.Batch(r.Reference, len(r.Rows))...)
	if len(r.Rows) <= MaxBatchRows {
		for i, row := range r.Rows {
			p.Add(c.Row(i, row)...)
		}
	}
	return p.Errors()
}

// BatchCheck applies the rules of a batch a member at a time, in the order of the request (Batch,
// then Row for each row in turn), so that a reader of the request can put the problems it finds
// itself among the rules' without holding every problem at once. The zero value is ready to use.
type BatchCheck struct {
	first map[string]int // the row that first used each rowReference
}

// Batch reports the problems of the batch's own members, for a batch of rows rows.
func (c *BatchCheck) Batch(reference string, rows int) Errors {
	var errs Errors
	if !ValidReference(reference) {
		errs = append(errs, Errorf(CodeBatchInvalidField, "batchReference", referenceMessage("batchReference")))
	}
	switch {
	case rows == 0:
		errs = append(errs, Errorf(CodeBatchInvalidField, "rows", fmt.Sprintf("rows must hold 1 to %d debits.", MaxBatchRows)))
	case rows > MaxBatchRows:
		errs = append(errs, Errorf(CodeBatchInvalidField, "rows", fmt.Sprintf("rows must hold 1 to %d debits; this batch has %d.", MaxBatchRows, rows)))
	}
	return errs
}

// Row reports the problems of row i; the rows before it must have been checked, in order.
func (c *BatchCheck) Row(i int, row RowRequest) Errors {
	var errs Errors
	add := func(field, msg string) {
		errs = append(errs, Errorf(CodeBatchInvalidField, "rows["+strconv.Itoa(i)+"]."+field, msg))
	}
	if !ValidReference(row.Reference) {
		add("rowReference", referenceMessage("rowReference"))
	} else if j, seen := c.first[row.Reference]; seen {
		add("rowReference", fmt.Sprintf("rowReference %s is already used by rows[%d]; each rowReference must be unique within the batch.", row.Reference, j))
	} else {
		if c.first == nil {
			c.first = map[string]int{}
		}
		c.first[row.Reference] = i
	}
	if !ValidReference(row.CustomerReference) {
		add("customerReference", referenceMessage("customerReference"))
	}
	if row.Amount < 1 || row.Amount > MaxAmount {
		add("amount", AmountMessage)
	}
	return errs
}

// AmountMessage explains the amount rule; the transport uses it too for amounts that are not
// JSON integers.
var AmountMessage = fmt.Sprintf("amount must be an integer number of cents from 1 to %d.", MaxAmount)

// Batch is a submitted batch of debits.
type Batch struct {
	ID          string
	SiteID      string
	Reference   string
	Fingerprint []byte
	State       BatchState
	RowCount    int
	TotalAmount int64
	SubmittedAt time.Time
	CompletedAt time.Time // zero until completed
	// Deadline is when every row must be terminal (SubmittedAt + RowDeadline).
	Deadline time.Time
	// RetainUntil is when the batch is removed and its reference freed (SubmittedAt + BatchRetention).
	RetainUntil time.Time
	// Rail is the payment rail the batch's debits go to: its site's when the batch was accepted
	// (set by the store from the site's row), kept when the site moves to another.
	Rail string
}

// Row is one debit of a batch and its outcome.
type Row struct {
	ID                string // also the rail's idempotency key
	BatchID           string
	Index             int // position in the submitted rows
	Reference         string
	CustomerReference string
	Amount            int64
	State             RowState
	FailureReason     FailureReason // set when failed
	OutcomeAt         time.Time     // when it became succeeded or failed
	// FileID is the file the debit went in, on a rail that sends files; empty before (and on
	// other rails).
	FileID string
	// ReturnedAt is when a succeeded debit was recorded returned by the customer's bank (zero
	// unless it was); ReturnReason is the rail's reason, ReturnRetryable whether the same debit
	// may be presented again.
	ReturnedAt      time.Time
	ReturnReason    ReturnReason
	ReturnRetryable bool
	// CustomerLinkedNow reports, for a row read back, whether its customer is linked at the time
	// of reading (set by Service.Batch for rows that failed customerNotActive).
	CustomerLinkedNow bool
}

// Retryable reports whether a failed or returned row may succeed if submitted again in a later
// batch: insufficient funds and expiry are transient; a closed account is not; an inactive
// customer is not, until the customer links again; a return is as its rail says.
func (r Row) Retryable() bool {
	if r.Returned() {
		return r.ReturnRetryable
	}
	if r.State != RowFailed {
		return false
	}
	switch r.FailureReason {
	case FailureInsufficientFunds, FailureExpired:
		return true
	case FailureCustomerNotActive:
		return r.CustomerLinkedNow
	}
	return false
}

// Returned reports whether the row succeeded and was then returned by the customer's bank.
func (r Row) Returned() bool { return r.State == RowSucceeded && !r.ReturnedAt.IsZero() }

// ReturnReason says why the customer's bank returned a debit that had succeeded, as a camelCase
// word the rail gives (on the BECS rail, the return reason codes: invalidBsb, paymentStopped,
// accountClosed, customerDeceased, invalidAccount, referToCustomer, ...).
type ReturnReason string

// RowReturn is a succeeded debit returned by the customer's bank, as a rail reports it.
type RowReturn struct {
	RowID     string
	Reason    ReturnReason
	Retryable bool
	// EndsAuthority says the reason means the customer's authority can no longer be used (the
	// account closed or not found, the customer deceased), as the rail decides: the customer's
	// link the debit was made under, if it is still linked, is revoked by the bank with the
	// return.
	EndsAuthority bool
	At            time.Time
}

// FirstReturns is the first return of each row the returns name, in their order: what
// BatchStore.ReturnRows records. A return recorded twice in one call is recorded once, as when
// the second call comes later (an UPDATE ... FROM of both would take either, unpredictably).
func FirstReturns(returns []RowReturn) []RowReturn {
	seen := make(map[string]bool, len(returns))
	return slices.DeleteFunc(slices.Clone(returns), func(r RowReturn) bool {
		if seen[r.RowID] {
			return true
		}
		seen[r.RowID] = true
		return false
	})
}

// StateTotal is the number and amount of a batch's rows in one state.
type StateTotal struct {
	Count  int
	Amount int64
}

// BatchSummary totals a batch's rows per state.
type BatchSummary map[RowState]StateTotal

// BatchFilter pages a site's batches, newest first.
type BatchFilter struct {
	// After is the batch that ended the previous page (its SubmittedAt and ID); zero for the first.
	AfterSubmittedAt time.Time
	AfterID          string
	Limit            int
}
