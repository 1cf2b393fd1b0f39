// Package aba writes, reads and validates BECS direct-entry files, the "ABA" or "Cemtex" files
// Australian banks take for bulk debits and credits, and the returns files they send back for
// the items they could not pay. It is a pure package (no database, no network), as moov-io/ach is
// for NACHA files, so that the format has one implementation a rail and its tests share, checked
// on its own against the format and an independent implementation.
//
// A file is lines of 120 characters, each ended by CRLF (LF alone is read too): one descriptive
// record (type 0), then detail records (type 1) in a direct-entry file or returned-item records
// (type 2) in a returns file, then one file total record (type 7). A file may hold no items: the
// "nil" returns file some banks send on a day without returns (NewDebitFile makes no direct-entry
// file of no debits). A returns file may also hold several such blocks, one after the other
// (ReadBlocks).
// Numbers are right-justified and zero-filled, text is left-justified and blank-filled, and every
// text field holds only the BECS character set (ValidText). A File holds what varies; the fixed
// parts and the totals of the type 7 record are computed, never set, so that a written file always
// balances.
//
// Read and Write are inverses: Read(Write(f)) gives f back (with BSBs in their NNN-NNN form and
// the processing date at midnight UTC), and whatever Read accepts, Write writes again byte for
// byte, but for its line endings (CRLF, also after the last record if the file read had none).
package aba

import (
	"io"
	"time"
)

// File is a direct-entry file (Details) or a returns file (Returns); never both.
type File struct {
	// FundsBSB and FundsAccount are the user's funds account, which some institutions' files
	// carry in the descriptive record (columns 2-8 and 9-17; ANZ documents both as optional):
	// each blank ("") unless given, as in the files NewDebitFile makes, and read from a file that
	// carries them.
	FundsBSB     BSB
	FundsAccount string
	// ReelSequence numbers the files of one user sent together, from 1 (columns 19-20).
	ReelSequence int
	// Institution is the mnemonic of the user's financial institution: three capital letters such
	// as "CBA", "WBC", "NAB" or "ANZ" (columns 21-23).
	Institution string
	// UserName is the name of the user supplying the file, as the institution approved it
	// (columns 31-56, at most MaxUserName characters; not blank).
	UserName string
	// UserID is the six-digit user identification number APCA allocated to the user, leading
	// zeros included (columns 57-62).
	UserID string
	// Description of the entries, such as "PAYROLL" or "DEBITS" (columns 63-74, at most
	// MaxDescription characters; not blank).
	Description string
	// ProcessingDate is the day the items are to be processed (columns 75-80, DDMMYY). Only its
	// date, in its own location, is written; Read gives midnight UTC. Years 2000 to 2099.
	ProcessingDate time.Time

	Details []Detail // the items of a direct-entry file
	Returns []Return // the items of a returns file
}

// Records is how many records (lines) the file is written in: its descriptive record, its items
// and its file total record.
func (f File) Records() int { return len(f.Details) + len(f.Returns) + 2 }

// BSB is a bank-state-branch number. A File's BSBs may hold six digits ("062000") or the format's
// form ("062-000"); the file always carries the latter, which is what Read gives.
type BSB string

// Entry is what a detail record and a returned-item record share: the item, its account and
// the trace account that a return of it goes to.
type Entry struct {
	BSB     BSB    // of the account debited or credited (columns 2-8)
	Account string // account number: digits, hyphens and inner blanks, at most 9 (columns 9-17)
	Code    TransactionCode
	Amount  int64  // in cents, 1 to 9,999,999,999 (columns 21-30)
	Title   string // title of the account (columns 31-62, at most MaxTitle; not blank)
	// LodgementReference is shown on the account holder's statement (columns 63-80, at most
	// MaxLodgementReference; may be blank).
	LodgementReference string
	// TraceBSB and TraceAccount are, in a detail record, the user's account to which a returned
	// item goes back (columns 81-87 and 88-96); see Return for a returned item's.
	TraceBSB     BSB
	TraceAccount string
	// Remitter is the name of the originator shown on the statement (columns 97-112, at most
	// MaxRemitter; not blank).
	Remitter string
}

// Detail is a detail record (type 1): one debit or credit of a direct-entry file.
type Detail struct {
	Entry
	Indicator Indicator // column 18
	// WithholdingTax is the tax withheld from a W, X or Y item, in cents, 0 to 99,999,999
	// (columns 113-120).
	WithholdingTax int64
}

// Return is a returned-item record (type 2) of a returns file: the original item, with why it was
// returned and where it came from. The bank writes it as the item going back, its two accounts
// swapped: BSB and Account (columns 2-17) are the account the original item's trace named, the
// debit user's own, and TraceBSB and TraceAccount (columns 81-96) the account the item was drawn
// on, the customer's (as NAB's returns files and the zeptofs/aba gem's specs have them). The
// rail matches an item by its lodgement reference and amount, not by these.
type Return struct {
	Entry
	Reason         ReturnReason // column 18
	OriginalDay    int          // the day of the month the item was first processed, 1 to 31 (columns 113-114)
	OriginalUserID string       // the six-digit user ID of the file the item came in (columns 115-120)
}

// Totals is what the file total record (type 7) says of a file's items.
type Totals struct {
	Net    int64 // |Credit - Debit|, unsigned as the format has it
	Credit int64 // sum of the amounts of every item whose code is not CodeDebit
	Debit  int64 // sum of the amounts of the CodeDebit items
	Count  int   // number of items
}

// Totals computes the file total record of f.
func (f File) Totals() Totals {
	var t Totals
	add := func(e Entry) {
		if e.Code.IsDebit() {
			t.Debit += e.Amount
		} else {
			t.Credit += e.Amount
		}
		t.Count++
	}
	for _, d := range f.Details {
		add(d.Entry)
	}
	for _, r := range f.Returns {
		add(r.Entry)
	}
	t.Net = t.Credit - t.Debit
	if t.Net < 0 {
		t.Net = -t.Net
	}
	return t
}

// Validate checks every field of f as Write would, and returns every problem (Errors) at the line
// and column its record would have in the file, or nil.
func (f File) Validate() error {
	_, errs := encode(f)
	return errs.orNil()
}

// MarshalText is the file's bytes, exactly as Write writes them.
func (f File) MarshalText() ([]byte, error) {
	b, errs := encode(f)
	if len(errs) > 0 {
		return nil, errs
	}
	return b, nil
}

// UnmarshalText reads a file as Read does.
func (f *File) UnmarshalText(b []byte) error {
	got, err := parseOne(b)
	if err != nil {
		return err
	}
	*f = got
	return nil
}

// Write writes f to w: every record of 120 characters followed by CRLF, the type 7 record
// computed from the items. It writes nothing when f has a problem, and returns every problem
// (Errors).
func Write(w io.Writer, f File) error {
	b, err := f.MarshalText()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// Read reads a direct-entry file or a returns file of one block. It checks the structure (one
// descriptive record first, then items of one type, then one file total record, each of 120
// characters ended by CRLF or LF alone; the last may lack its CRLF, and a byte order mark before
// the first, blank lines after the last and a DOS end-of-file mark are let pass), every field and
// the totals, and returns every problem it finds (Errors; it stops reading after a thousand) rather
// than the first. A File is returned only when there is none. The problems of a file that is cut
// short and reads well up to its end, as one still being written does, are also ErrIncomplete
// (errors.Is). Read reads r to its end: wrap it in an io.LimitReader to bound what it takes. A file
// of several blocks is a problem for Read, at its second descriptive record; ReadBlocks reads it.
func Read(r io.Reader) (File, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return File{}, err
	}
	return parseOne(b)
}

// ReadBlocks reads a file of one or more blocks, each a File of its own: a descriptive record, its
// items and the file total record that balances them, the next block's descriptive record
// following that file total record. Some banks send returns files so, a block for each user ID
// or day of processing the returns concern. Every block is checked as Read checks a file, and the
// items of every block are of one type. Writing each block (MarshalText) and joining them gives
// the file back as Canonical has it.
func ReadBlocks(r io.Reader) ([]File, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return parse(b)
}

// parseOne reads a whole file of one block; see Read.
func parseOne(b []byte) (File, error) {
	blocks, err := parse(b)
	if err != nil {
		return File{}, err
	}
	if len(blocks) > 1 {
		return File{}, Errors{{Line: blocks[0].Records() + 1, Record: RecordDescriptive,
			Field: fRecordType.name, Column: 1, Problem: "opens a second block; a file of several blocks is read by ReadBlocks"}}
	}
	return blocks[0], nil
}

// crlf ends every record written. A record read may end with LF alone (lf), as a transfer in
// text mode to a Unix host leaves it.
var (
	crlf   = []byte("\r\n")
	cr, lf = crlf[:1], crlf[1:]
)

// recordLen is the length of every record, without its CRLF.
const recordLen = 120
