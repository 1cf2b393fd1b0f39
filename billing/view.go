package billing

import "time"

// The resources as a partner sees them, in the API's JSON conventions (camelCase names, times in
// Unix milliseconds, fields that do not apply omitted). They are the domain's, not the transport's,
// because what a partner may see of a customer is a rule of the domain (the customer's identity
// and payment agreement are never shown), and because an event carries the same objects that the
// API answers with.

// LinkView is a customer link as the partner sees it. The customer's details are not part of it.
type LinkView struct {
	CustomerReference string    `json:"customerReference"`
	State             LinkState `json:"state"`
	CreatedAt         int64     `json:"createdAt"`
	ExpiresAt         int64     `json:"expiresAt"`
	LinkedAt          int64     `json:"linkedAt,omitzero"`
	RevokedAt         int64     `json:"revokedAt,omitzero"`
	RevokedBy         RevokedBy `json:"revokedBy,omitempty"`
	// Metadata is the partner's own, as given with the invitation.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// ViewLink presents l as it stands at now: an invitation past its expiry reads expired.
func ViewLink(l Link, now time.Time) LinkView {
	v := LinkView{
		CustomerReference: l.CustomerReference,
		State:             l.StateAt(now),
		CreatedAt:         Millis(l.CreatedAt),
		ExpiresAt:         Millis(l.ExpiresAt),
		RevokedBy:         l.RevokedBy,
		Metadata:          l.Metadata,
	}
	if !l.LinkedAt.IsZero() {
		v.LinkedAt = Millis(l.LinkedAt)
	}
	if !l.RevokedAt.IsZero() {
		v.RevokedAt = Millis(l.RevokedAt)
	}
	return v
}

// BatchView is a batch as it stands, without its rows (an item of the list), or as it was
// accepted (the receipt).
type BatchView struct {
	BatchReference string     `json:"batchReference"`
	State          BatchState `json:"state"`
	RowCount       int        `json:"rowCount"`
	TotalAmount    int64      `json:"totalAmount"`
	SubmittedAt    int64      `json:"submittedAt"`
	CompletedAt    int64      `json:"completedAt,omitzero"`
}

// ViewBatch presents b.
func ViewBatch(b Batch) BatchView {
	v := BatchView{
		BatchReference: b.Reference,
		State:          b.State,
		RowCount:       b.RowCount,
		TotalAmount:    b.TotalAmount,
		SubmittedAt:    Millis(b.SubmittedAt),
	}
	if !b.CompletedAt.IsZero() {
		v.CompletedAt = Millis(b.CompletedAt)
	}
	return v
}

// SummaryView has every row state, with zeros for a state no row is in.
type SummaryView struct {
	Pending    TotalView `json:"pending"`
	InProgress TotalView `json:"inProgress"`
	Succeeded  TotalView `json:"succeeded"`
	Failed     TotalView `json:"failed"`
}

// TotalView is how many rows are in a state, and their amount.
type TotalView struct {
	Count  int   `json:"count"`
	Amount int64 `json:"amount"`
}

// ViewSummary presents s.
func ViewSummary(s BatchSummary) SummaryView {
	total := func(state RowState) TotalView { return TotalView{Count: s[state].Count, Amount: s[state].Amount} }
	return SummaryView{
		Pending:    total(RowPending),
		InProgress: total(RowInProgress),
		Succeeded:  total(RowSucceeded),
		Failed:     total(RowFailed),
	}
}

// BatchSummaryView is a batch with the summary of its rows: GET of a batch without the rows, and
// the data of the batch events.
type BatchSummaryView struct {
	BatchView
	Summary SummaryView `json:"summary"`
}

// RowView is one row of a batch and its outcome, as GET of the batch shows it: failureReason and
// retryable when failed; outcomeAt when succeeded or failed; fileId once its debit went in a file
// (on a rail that sends files); returnedAt, returnReason and retryable when a succeeded debit was
// returned by the customer's bank.
type RowView struct {
	RowReference      string        `json:"rowReference"`
	CustomerReference string        `json:"customerReference"`
	Amount            int64         `json:"amount"`
	State             RowState      `json:"state"`
	FailureReason     FailureReason `json:"failureReason,omitempty"`
	Retryable         *bool         `json:"retryable,omitempty"`
	OutcomeAt         int64         `json:"outcomeAt,omitzero"`
	FileID            string        `json:"fileId,omitempty"`
	ReturnedAt        int64         `json:"returnedAt,omitzero"`
	ReturnReason      ReturnReason  `json:"returnReason,omitempty"`
}

// ViewRow presents r.
func ViewRow(r Row) RowView {
	v := RowView{
		RowReference:      r.Reference,
		CustomerReference: r.CustomerReference,
		Amount:            r.Amount,
		State:             r.State,
		FileID:            r.FileID,
	}
	if r.State == RowFailed || r.Returned() {
		retryable := r.Retryable()
		v.Retryable = &retryable
	}
	if r.State == RowFailed {
		v.FailureReason = r.FailureReason
	}
	if r.State.Terminal() {
		v.OutcomeAt = Millis(r.OutcomeAt)
	}
	if r.Returned() {
		v.ReturnedAt, v.ReturnReason = Millis(r.ReturnedAt), r.ReturnReason
	}
	return v
}

// BatchRowView is a row with its batch's reference: the data of the row events.
type BatchRowView struct {
	BatchReference string `json:"batchReference"`
	RowView
}
