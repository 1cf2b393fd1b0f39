package aba

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// encoder builds a file record by record, checking every field as it places it, so that what is
// checked and what is written cannot drift apart.
type encoder struct {
	out  []byte
	rec  []byte // the record being built
	line int
	typ  RecordType
	errs Errors
	// badItem is set when an item's code or amount is refused: the totals, made of them, are
	// then not checked, so that one fault is reported once.
	badItem bool
}

// encode gives f's bytes, or every problem of f.
func encode(f File) ([]byte, Errors) {
	e := &encoder{out: make([]byte, 0, f.Records()*(recordLen+2))}
	e.descriptive(f)
	switch {
	case len(f.Details) > 0 && len(f.Returns) > 0:
		e.errs = append(e.errs, &FieldError{Line: 2 + len(f.Details), Record: RecordReturn, Field: fRecord.name,
			Column: 1, Problem: "a file holds detail records or returned-item records, not both"})
	}
	for _, d := range f.Details {
		e.detail(d)
	}
	for _, r := range f.Returns {
		e.ret(r)
	}
	e.total(f.Totals())
	return e.out, e.errs
}

func (e *encoder) start(t RecordType) {
	e.line++
	e.typ = t
	e.rec = bytes.Repeat([]byte{' '}, recordLen)
	e.rec[0] = byte(t)
}

func (e *encoder) end() {
	e.out = append(e.out, e.rec...)
	e.out = append(e.out, crlf...)
}

func (e *encoder) fail(f field, at int, problem string) {
	e.errs = append(e.errs, &FieldError{Line: e.line, Record: e.typ, Field: f.name, Column: f.col + at, Problem: problem})
}

// put places s at the start of f; s is never longer than f.
func (e *encoder) put(f field, s string) { copy(e.rec[f.col-1:f.col-1+f.width], s) }

// putRight places s at the end of f.
func (e *encoder) putRight(f field, s string) { copy(e.rec[f.col-1+f.width-len(s):], s) }

func (e *encoder) text(f field, s string, required bool) {
	if at, p := checkText(s, f.width, required); p != "" {
		e.fail(f, at, p)
		return
	}
	e.put(f, s)
}

// number writes n right-justified and zero-filled, if it is in [lo, hi], and reports whether it
// is.
func (e *encoder) number(f field, n, lo, hi int64) bool {
	if n < lo || n > hi {
		e.fail(f, 0, fmt.Sprintf("is %d; it must be from %d to %d", n, lo, hi))
		return false
	}
	e.put(f, fmt.Sprintf("%0*d", f.width, n))
	return true
}

func (e *encoder) digits(f field, s string) {
	if at, p := checkDigits(s, f.width); p != "" {
		e.fail(f, at, p)
		return
	}
	e.put(f, s)
}

func (e *encoder) account(f field, s string) {
	if at, p := checkAccount(s); p != "" {
		if s != "" && len(s) <= f.width {
			at += f.width - len(s) // where the character falls in the right-justified field
		}
		e.fail(f, at, p)
		return
	}
	e.putRight(f, s)
}

func (e *encoder) bsb(f field, b BSB) {
	c, at, p := canonicalBSB(b)
	if p != "" {
		e.fail(f, at, p)
		return
	}
	e.put(f, string(c))
}

func (e *encoder) descriptive(f File) {
	e.start(RecordDescriptive)
	if f.FundsBSB != "" {
		e.bsb(fFundsBSB, f.FundsBSB)
	}
	if f.FundsAccount != "" {
		e.account(fFundsAccount, f.FundsAccount)
	}
	e.number(fReel, int64(f.ReelSequence), 1, 99)
	if at, p := checkInstitution(f.Institution); p != "" {
		e.fail(fInstitution, at, p)
	} else {
		e.put(fInstitution, f.Institution)
	}
	e.text(fUserName, f.UserName, true)
	e.digits(fUserID, f.UserID)
	e.text(fDescription, f.Description, true)
	if y := f.ProcessingDate.Year(); y < 2000 || y > 2099 {
		e.fail(fDate, 0, fmt.Sprintf("is %s; the format's two-digit year holds 2000 to 2099",
			f.ProcessingDate.Format(time.DateOnly)))
	} else {
		e.put(fDate, f.ProcessingDate.Format("020106"))
	}
	e.end()
}

// entry writes the fields a detail and a returned-item record share.
func (e *encoder) entry(en Entry) {
	e.bsb(fBSB, en.BSB)
	e.account(fAccount, en.Account)
	if !en.Code.Valid() {
		e.fail(fCode, 0, fmt.Sprintf("is %d; it must be 13 or 50 to 57", int(en.Code)))
		e.badItem = true
	} else {
		e.put(fCode, strconv.Itoa(int(en.Code)))
	}
	if !e.number(fAmount, en.Amount, 1, maxAmount) {
		e.badItem = true
	}
	e.text(fTitle, en.Title, true)
	e.text(fLodgement, en.LodgementReference, false)
	e.bsb(fTraceBSB, en.TraceBSB)
	e.account(fTraceAccount, en.TraceAccount)
	e.text(fRemitter, en.Remitter, true)
}

func (e *encoder) detail(d Detail) {
	e.start(RecordDetail)
	e.entry(d.Entry)
	if !d.Indicator.Valid() {
		e.fail(fIndicator, 0, fmt.Sprintf("is %q; it must be blank, N, T, W, X or Y", string(d.Indicator)))
	} else {
		e.put(fIndicator, string(d.Indicator))
	}
	e.number(fWithholding, d.WithholdingTax, 0, 99_999_999)
	e.end()
}

func (e *encoder) ret(r Return) {
	e.start(RecordReturn)
	e.entry(r.Entry)
	if !r.Reason.Valid() {
		e.fail(fReason, 0, fmt.Sprintf("is %d; it must be 1 to 9", int(r.Reason)))
	} else {
		e.put(fReason, strconv.Itoa(int(r.Reason)))
	}
	e.number(fOriginalDay, int64(r.OriginalDay), 1, 31)
	e.digits(fOriginalUser, r.OriginalUserID)
	e.end()
}

func (e *encoder) total(t Totals) {
	e.start(RecordTotal)
	e.put(fFiller, totalFiller)
	if !e.badItem {
		e.number(fNet, t.Net, 0, maxAmount)
		e.number(fCredit, t.Credit, 0, maxAmount)
		e.number(fDebit, t.Debit, 0, maxAmount)
	}
	e.number(fCount, int64(t.Count), 0, 999_999)
	e.end()
}
