package client

import "time"

// Timestamp is an instant on the wire: a Unix timestamp in milliseconds, UTC. Zero means absent.
type Timestamp int64

// Time is the instant as a time.Time in UTC; the zero time when t is zero.
func (t Timestamp) Time() time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(t)).UTC()
}

// LinkState is the state of a customer link.
type LinkState string

// The states of a customer link.
const (
	LinkInvited LinkState = "invited"
	LinkLinked  LinkState = "linked"
	LinkExpired LinkState = "expired"
	LinkRevoked LinkState = "revoked"
)

// Invitation is a new invitation: the customer's signup link and when it expires.
type Invitation struct {
	CustomerReference string `json:"customerReference"`
	// SignupURL is the URL to deliver to the customer.
	SignupURL string    `json:"signupUrl"`
	ExpiresAt Timestamp `json:"expiresAt"`
	State     LinkState `json:"state"`
}

// Link is a customer's link. LinkedAt is set once the customer signed up, RevokedAt and RevokedBy
// once revoked, SignupURL only while invited.
type Link struct {
	CustomerReference string    `json:"customerReference"`
	State             LinkState `json:"state"`
	CreatedAt         Timestamp `json:"createdAt"`
	ExpiresAt         Timestamp `json:"expiresAt"`
	LinkedAt          Timestamp `json:"linkedAt,omitempty"`
	RevokedAt         Timestamp `json:"revokedAt,omitempty"`
	// RevokedBy is "customer" or "partner".
	RevokedBy string `json:"revokedBy,omitempty"`
	SignupURL string `json:"signupUrl,omitempty"`
}

// BatchState is the state of a batch.
type BatchState string

// The states of a batch.
const (
	BatchAccepted   BatchState = "accepted"
	BatchInProgress BatchState = "inProgress"
	BatchCompleted  BatchState = "completed"
)

// RowState is the state of a row of a batch.
type RowState string

// The states of a row.
const (
	RowPending    RowState = "pending"
	RowInProgress RowState = "inProgress"
	RowSucceeded  RowState = "succeeded"
	RowFailed     RowState = "failed"
)

// FailureReason says why a row failed.
type FailureReason string

// The reasons a row fails.
const (
	FailureCustomerNotActive FailureReason = "customerNotActive"
	FailureInsufficientFunds FailureReason = "insufficientFunds"
	FailureAccountClosed     FailureReason = "accountClosed"
	FailureExpired           FailureReason = "expired"
)

// BatchRequest is a batch submission: 1 to 1000 debits.
type BatchRequest struct {
	// BatchReference is the partner's identifier of the batch, unique within the site for 90
	// days; the submission is idempotent on it.
	BatchReference string       `json:"batchReference"`
	Rows           []RowRequest `json:"rows"`
}

// RowRequest is one debit of a submission. Amount is in cents.
type RowRequest struct {
	RowReference      string `json:"rowReference"`
	CustomerReference string `json:"customerReference"`
	Amount            int64  `json:"amount"`
}

// BatchReceipt is the receipt of a submission.
type BatchReceipt struct {
	BatchReference string     `json:"batchReference"`
	State          BatchState `json:"state"`
	RowCount       int        `json:"rowCount"`
	TotalAmount    int64      `json:"totalAmount"`
	SubmittedAt    Timestamp  `json:"submittedAt"`
	// Replayed says that the answer replays the receipt of an earlier identical submission
	// (Idempotent-Replayed: true).
	Replayed bool `json:"-"`
}

// Batch is a batch as it stands, without its rows, as lists give it.
type Batch struct {
	BatchReference string     `json:"batchReference"`
	State          BatchState `json:"state"`
	RowCount       int        `json:"rowCount"`
	TotalAmount    int64      `json:"totalAmount"`
	SubmittedAt    Timestamp  `json:"submittedAt"`
	CompletedAt    Timestamp  `json:"completedAt,omitempty"`
}

// BatchDetail is a batch with the totals of its rows in each state and its rows.
type BatchDetail struct {
	Batch
	Summary BatchSummary `json:"summary"`
	Rows    []Row        `json:"rows"`
}

// BatchSummary is the number and amount of a batch's rows in each state.
type BatchSummary struct {
	Pending    StateTotal `json:"pending"`
	InProgress StateTotal `json:"inProgress"`
	Succeeded  StateTotal `json:"succeeded"`
	Failed     StateTotal `json:"failed"`
}

// StateTotal is a number of rows and the sum of their amounts, in cents.
type StateTotal struct {
	Count  int   `json:"count"`
	Amount int64 `json:"amount"`
}

// Row is one debit of a batch and its outcome. FailureReason and Retryable are meaningful only
// when the row failed; OutcomeAt is set once it succeeded or failed.
type Row struct {
	RowReference      string        `json:"rowReference"`
	CustomerReference string        `json:"customerReference"`
	Amount            int64         `json:"amount"`
	State             RowState      `json:"state"`
	FailureReason     FailureReason `json:"failureReason,omitempty"`
	Retryable         bool          `json:"retryable,omitempty"`
	OutcomeAt         Timestamp     `json:"outcomeAt,omitempty"`
}
