package aba

import (
	"time"
)

// DebitUser is the user a debit file is sent for: who takes the money, under which APCA user ID,
// and the account it lands in (the trace account, where returned items also go back).
type DebitUser struct {
	UserID      string // six digits, leading zeros included
	UserName    string // as the user's institution approved it, at most MaxUserName
	Institution string // the user's institution's mnemonic, such as "CBA"
	Description string // of the entries, such as "DEBITS", at most MaxDescription
	// TraceBSB (six digits or NNN-NNN) and TraceAccount are the user's own account.
	TraceBSB     BSB
	TraceAccount string
	Remitter     string // shown on the customers' statements, at most MaxRemitter
	// SelfBalancing adds a credit of the debits' sum to the trace account, for an institution
	// that wants each file to balance to zero on its own.
	SelfBalancing bool
}

// Debit is one debit of a debit file.
type Debit struct {
	BSB                BSB    // six digits or NNN-NNN
	Account            string // account number
	Title              string // title of the account, at most MaxTitle
	Amount             int64  // in cents
	LodgementReference string // shown on the customer's statement, at most MaxLodgementReference
}

// NewDebitFile builds the direct-entry file of debits (code 13) that user sends for processing
// on the given day, as reel 1. With SelfBalancing, a last record credits the sum of the debits
// (code 50) to the user's trace account, titled with the user's name and referenced with the
// description, so the net total is zero. It returns the file and every problem of it (Errors):
// a file it returns without error is one Write accepts.
func NewDebitFile(user DebitUser, processing time.Time, debits []Debit) (File, error) {
	f := File{
		ReelSequence:   1,
		Institution:    user.Institution,
		UserName:       user.UserName,
		UserID:         user.UserID,
		Description:    user.Description,
		ProcessingDate: processing,
		Details:        make([]Detail, 0, len(debits)+1),
	}
	trace := normalBSB(user.TraceBSB)
	var sum int64
	for _, d := range debits {
		f.Details = append(f.Details, Detail{Entry: Entry{
			BSB:                normalBSB(d.BSB),
			Account:            d.Account,
			Code:               CodeDebit,
			Amount:             d.Amount,
			Title:              d.Title,
			LodgementReference: d.LodgementReference,
			TraceBSB:           trace,
			TraceAccount:       user.TraceAccount,
			Remitter:           user.Remitter,
		}})
		sum += d.Amount
	}
	if user.SelfBalancing && len(debits) > 0 {
		f.Details = append(f.Details, Detail{Entry: Entry{
			BSB:                trace,
			Account:            user.TraceAccount,
			Code:               CodeCredit,
			Amount:             sum,
			Title:              user.UserName,
			LodgementReference: user.Description,
			TraceBSB:           trace,
			TraceAccount:       user.TraceAccount,
			Remitter:           user.Remitter,
		}})
	}
	_, errs := encode(f)
	if len(debits) == 0 {
		// A file of no items reads (a nil returns file), but one of no debits is nothing to lodge.
		errs = append(Errors{&FieldError{Line: 2, Record: RecordDetail, Field: fRecord.name, Column: 1,
			Problem: "is missing: a direct-entry file needs at least one debit"}}, errs...)
	}
	return f, errs.orNil()
}

// normalBSB is b in its NNN-NNN form, or b itself when it is not a BSB (Validate reports it).
func normalBSB(b BSB) BSB {
	if c, _, p := canonicalBSB(b); p == "" {
		return c
	}
	return b
}
