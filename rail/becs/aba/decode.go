package aba

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxProblems bounds the problems Read reports, so that a large file of garbage costs a bounded
// amount of memory to refuse.
const maxProblems = 1000

// decoder reads a file record by record, collecting every problem.
type decoder struct {
	rec  []byte // the record being read, without its line ending
	line int
	typ  RecordType
	errs Errors
}

func (d *decoder) fail(f field, at int, problem string) {
	d.errs = append(d.errs, &FieldError{Line: d.line, Record: d.typ, Field: f.name, Column: f.col + at, Problem: problem})
}

// failCut reports a problem of where the file ends, which a file cut short has (ErrIncomplete).
func (d *decoder) failCut(f field, at int, problem string) {
	d.fail(f, at, problem)
	d.errs[len(d.errs)-1].cutShort = true
}

func (d *decoder) raw(f field) string { return string(d.rec[f.col-1 : f.col-1+f.width]) }

// What editors and transfers from Windows add to a file, which carries nothing, is no problem: a
// UTF-8 byte order mark before the first record, a DOS end-of-file mark (Ctrl-Z) last, and blank
// lines after the file total record: a returns file opened and saved by an operator, or sent
// from Windows, reads as the bank wrote it.
var (
	byteOrderMark = []byte("\ufeff")
	endOfFileMark = []byte{0x1a}
)

// withoutMarks is b without a byte order mark before it and an end-of-file mark after it.
func withoutMarks(b []byte) []byte {
	return bytes.TrimSuffix(bytes.TrimPrefix(b, byteOrderMark), endOfFileMark)
}

// fillerFrom is the column from which a descriptive or file total record is blank filler to its
// end: what an editor that trims trailing blanks, or the system that wrote the file, may leave
// out (NAB's sample direct-entry file has both records 80 characters long). Such a record reads
// as if its blanks were there, but for the last, unended, of a file whose descriptive or file
// total records have theirs: the file ends within them (ErrIncomplete).
const fillerFrom = 81

// lacksFiller reports whether rec is a descriptive or file total record that ends within its
// trailing filler: whole but for blanks left out. One that ends with the CR of its CRLF, the LF
// missing, is not: the file ends between them, as one still being written does.
func lacksFiller(rec []byte) bool {
	return len(rec) >= fillerFrom-1 && len(rec) < recordLen && rec[len(rec)-1] != '\r' &&
		(RecordType(rec[0]) == RecordDescriptive || RecordType(rec[0]) == RecordTotal)
}

// withFiller is rec with the blanks lacksFiller says it lacks.
func withFiller(rec []byte) []byte {
	return append(rec[:len(rec):len(rec)], bytes.Repeat([]byte{' '}, recordLen-len(rec))...)
}

// Canonical is a file that Read reads as the bank wrote it, and as Write writes it: without what
// Read lets pass (the marks and the blank lines after its last record), every record ended with
// a CRLF, the last whether or not it had one (an editor may add it, a transfer in text mode may
// leave LF alone), and its descriptive and file total records with their trailing blanks whether
// or not they had them (an editor may trim them). A returns file is known by the checksum of it,
// so that the file saved by an editor or moved in text mode is the same file, its unmatched items
// kept once.
func Canonical(b []byte) []byte {
	b = bytes.TrimRight(withoutMarks(b), "\r\n")
	out := make([]byte, 0, len(b)+2)
	for rec := range bytes.SplitSeq(b, lf) {
		rec = bytes.TrimSuffix(rec, cr)
		if lacksFiller(rec) {
			rec = withFiller(rec)
		}
		out = append(append(out, rec...), crlf...)
	}
	return out
}

// block is a block of a file being read: a descriptive record, its items and the file total
// record that closes it, with what that record must agree with.
type block struct {
	f       File
	count   int    // records of type 1 and 2
	sums    Totals // of the items read whole
	partial bool   // some item's code or amount could not be read (its problem reported)
	closed  bool   // its file total record was read
}

// parse reads a whole file of one or more blocks; see ReadBlocks.
func parse(b []byte) ([]File, error) {
	b = withoutMarks(b)
	var (
		d      decoder
		blocks []File
		cur    = &block{}
		items  RecordType // RecordDetail or RecordReturn, once one is seen
		filled bool       // a descriptive or file total record was read with its trailing blanks
	)
	for len(b) > 0 {
		if cur.closed && len(bytes.TrimLeft(b, "\r\n")) == 0 {
			break // blank lines after the end
		}
		if len(d.errs) >= maxProblems {
			d.fail(fRecord, 0, fmt.Sprintf("more than %d problems; the rest of the file was not read", maxProblems))
			return nil, d.errs
		}
		var line []byte
		unended := false
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = bytes.TrimSuffix(b[:i], cr), b[i+1:] // a record ends with CRLF, or LF alone
		} else {
			line, b, unended = b, nil, true // the last record may lack its CRLF
		}
		d.line++
		d.rec = line
		if len(line) == 0 {
			d.typ = 0
			d.fail(fRecord, 0, "is empty; a record is 120 characters")
			continue
		}
		d.typ = RecordType(line[0])
		// A record without its trailing blanks reads as with them, but for the last when the
		// file's records had theirs: the file ends within them, as one still being written does.
		if lacksFiller(line) && !(unended && filled) {
			d.rec = withFiller(line)
		}
		filled = filled || len(line) == recordLen && (d.typ == RecordDescriptive || d.typ == RecordTotal)
		whole := len(d.rec) == recordLen
		if !whole {
			fail := d.fail
			// Unended, shorter than a record or a record and its CR: the file ends within it.
			if unended && (len(line) < recordLen || len(line) == recordLen+1 && line[recordLen] == '\r') {
				fail = d.failCut
			}
			fail(field{"record length", min(len(line), recordLen) + 1, 0}, 0,
				fmt.Sprintf("is %d characters; a record is %d", len(line), recordLen))
		}
		if d.line == 1 && d.typ != RecordDescriptive {
			d.fail(fRecordType, 0, "a file starts with a descriptive record (type 0)")
		}
		switch d.typ {
		case RecordDescriptive:
			switch {
			case d.line == 1:
			case cur.closed:
				cur = &block{}
			default:
				d.fail(fRecordType, 0, "a descriptive record may only be the first record, or follow a file total record")
				continue
			}
			if whole {
				d.descriptive(&cur.f)
			}
		case RecordDetail, RecordReturn:
			if cur.closed {
				d.fail(fRecordType, 0, "follows a file total record, which ends its block; items follow a descriptive record")
				break
			}
			cur.count++
			if items == 0 {
				items = d.typ
			} else if items != d.typ {
				d.fail(fRecordType, 0, "a file holds detail records or returned-item records, not both")
			}
			if !whole {
				cur.partial = true
				break
			}
			cur.item(&d)
		case RecordTotal:
			if cur.closed {
				d.fail(fRecordType, 0, "a second file total record")
				break
			}
			cur.closed = true
			if whole {
				cur.check(&d, d.total())
			}
			blocks = append(blocks, cur.f)
		default:
			d.fail(fRecordType, 0, fmt.Sprintf("%q is not a record type; a record is of type 0, 1, 2 or 7", line[:1]))
		}
	}

	switch {
	case d.line == 0:
		d.errs = append(d.errs, &FieldError{Line: 1, Record: RecordDescriptive, Field: fRecord.name, Column: 1,
			Problem: "the file is empty", cutShort: true})
	case !cur.closed:
		d.errs = append(d.errs, &FieldError{Line: d.line + 1, Record: RecordTotal, Field: fRecord.name, Column: 1,
			Problem: "is missing: the file ends without its file total record", cutShort: true})
	}
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	return blocks, nil
}

// item reads the detail or returned-item record d holds into the block.
func (k *block) item(d *decoder) {
	var e Entry
	if d.typ == RecordDetail {
		dt := d.detail()
		k.f.Details, e = append(k.f.Details, dt), dt.Entry
	} else {
		r := d.ret()
		k.f.Returns, e = append(k.f.Returns, r), r.Entry
	}
	switch {
	case e.Code == 0 || e.Amount == 0:
		k.partial = true // already reported
	case e.Code.IsDebit():
		k.sums.Debit += e.Amount
	default:
		k.sums.Credit += e.Amount
	}
}

// check checks what the block's file total record, the record d holds, says (read; nil when a
// number of it could not be read) against the block's items.
func (k *block) check(d *decoder, read *Totals) {
	if read == nil {
		return
	}
	if read.Count != k.count {
		d.fail(fCount, 0, fmt.Sprintf("is %d; the block has %d detail or returned-item records", read.Count, k.count))
	}
	if k.partial {
		return
	}
	sums := k.sums
	sums.Net = sums.Credit - sums.Debit
	if sums.Net < 0 {
		sums.Net = -sums.Net
	}
	for _, c := range []struct {
		f          field
		read, want int64
		of         string
	}{
		{fNet, read.Net, sums.Net, "the difference of the credit and debit totals of the records"},
		{fCredit, read.Credit, sums.Credit, "the total of the records' credits"},
		{fDebit, read.Debit, sums.Debit, "the total of the records' debits"},
	} {
		if c.read != c.want {
			d.fail(c.f, 0, fmt.Sprintf("is %d; %s is %d", c.read, c.of, c.want))
		}
	}
}

// blank checks that a filler field is all blanks.
func (d *decoder) blank(f field) {
	raw := d.raw(f)
	if i := strings.IndexFunc(raw, func(r rune) bool { return r != ' ' }); i >= 0 {
		d.fail(f, i, fmt.Sprintf("must be blank; it holds %q", raw[i:i+1]))
	}
}

// text reads a left-justified, blank-filled text field.
func (d *decoder) text(f field, required bool) string {
	v := strings.TrimRight(d.raw(f), " ")
	if at, p := checkText(v, f.width, required); p != "" {
		d.fail(f, at, p)
	}
	return v
}

// number reads a right-justified, zero-filled number in [lo, hi]; ok is false (and the problem
// reported) otherwise.
func (d *decoder) number(f field, lo, hi int64) (n int64, ok bool) {
	raw := d.raw(f)
	if at, p := checkDigits(raw, f.width); p != "" {
		d.fail(f, at, p+"; the field is zero-filled")
		return 0, false
	}
	n, _ = strconv.ParseInt(raw, 10, 64) // at most 10 digits: it fits
	if n < lo || n > hi {
		d.fail(f, 0, fmt.Sprintf("is %s; it must be from %d to %d", raw, lo, hi))
		return 0, false
	}
	return n, true
}

// digits reads a field of digits kept as text (a user ID).
func (d *decoder) digits(f field) string {
	raw := d.raw(f)
	if at, p := checkDigits(raw, f.width); p != "" {
		d.fail(f, at, p)
	}
	return raw
}

// account reads a right-justified, blank-filled account number.
func (d *decoder) account(f field) string {
	v := strings.TrimLeft(d.raw(f), " ")
	if at, p := checkAccount(v); p != "" {
		if v != "" {
			at += f.width - len(v) // where the character falls in the right-justified field
		}
		d.fail(f, at, p)
	}
	return v
}

// bsb reads a BSB, which the file carries as NNN-NNN.
func (d *decoder) bsb(f field) BSB {
	raw := d.raw(f)
	b, at, p := canonicalBSB(BSB(raw))
	if p != "" {
		d.fail(f, at, p)
	}
	return b
}

func (d *decoder) descriptive(f *File) {
	if strings.Trim(d.raw(fFundsBSB), " ") != "" {
		f.FundsBSB = d.bsb(fFundsBSB)
	}
	if strings.Trim(d.raw(fFundsAccount), " ") != "" {
		f.FundsAccount = d.account(fFundsAccount)
	}
	d.blank(fBlank0a)
	reel, _ := d.number(fReel, 1, 99)
	f.ReelSequence = int(reel)
	f.Institution = d.raw(fInstitution)
	if at, p := checkInstitution(f.Institution); p != "" {
		d.fail(fInstitution, at, p)
	}
	d.blank(fBlank0b)
	f.UserName = d.text(fUserName, true)
	f.UserID = d.digits(fUserID)
	f.Description = d.text(fDescription, true)
	raw := d.raw(fDate)
	if at, p := checkDigits(raw, 6); p != "" {
		d.fail(fDate, at, p+"; the date is DDMMYY")
	} else {
		day, _ := strconv.Atoi(raw[0:2])
		month, _ := strconv.Atoi(raw[2:4])
		year, _ := strconv.Atoi(raw[4:6])
		t := time.Date(2000+year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
		if t.Day() != day || int(t.Month()) != month {
			d.fail(fDate, 0, fmt.Sprintf("is %s, which is not a date (DDMMYY)", raw))
		}
		f.ProcessingDate = t
	}
	d.blank(fBlankTrailer)
}

func (d *decoder) entry() Entry {
	var e Entry
	e.BSB = d.bsb(fBSB)
	e.Account = d.account(fAccount)
	if code, ok := d.number(fCode, 0, 99); ok {
		if c := TransactionCode(code); c.Valid() {
			e.Code = c
		} else {
			d.fail(fCode, 0, fmt.Sprintf("is %02d; it must be 13 or 50 to 57", code))
		}
	}
	e.Amount, _ = d.number(fAmount, 1, maxAmount)
	e.Title = d.text(fTitle, true)
	e.LodgementReference = d.text(fLodgement, false)
	e.TraceBSB = d.bsb(fTraceBSB)
	e.TraceAccount = d.account(fTraceAccount)
	e.Remitter = d.text(fRemitter, true)
	return e
}

func (d *decoder) detail() Detail {
	dt := Detail{Entry: d.entry()}
	switch ind := d.raw(fIndicator); {
	case ind == " ":
	case Indicator(ind).Valid():
		dt.Indicator = Indicator(ind)
	default:
		d.fail(fIndicator, 0, fmt.Sprintf("is %q; it must be blank, N, T, W, X or Y", ind))
	}
	dt.WithholdingTax, _ = d.number(fWithholding, 0, 99_999_999)
	return dt
}

func (d *decoder) ret() Return {
	r := Return{Entry: d.entry()}
	if reason, ok := d.number(fReason, 1, 9); ok {
		r.Reason = ReturnReason(reason)
	}
	day, _ := d.number(fOriginalDay, 1, 31)
	r.OriginalDay = int(day)
	r.OriginalUserID = d.digits(fOriginalUser)
	return r
}

// total reads the type 7 record; nil when a number of it cannot be read (the problem reported).
func (d *decoder) total() *Totals {
	if raw := d.raw(fFiller); raw != totalFiller {
		i := 0
		for raw[i] == totalFiller[i] {
			i++
		}
		d.fail(fFiller, i, fmt.Sprintf("is %q; it must be %s", raw, totalFiller))
	}
	d.blank(fBlank7a)
	net, ok1 := d.number(fNet, 0, maxAmount)
	credit, ok2 := d.number(fCredit, 0, maxAmount)
	debit, ok3 := d.number(fDebit, 0, maxAmount)
	d.blank(fBlank7b)
	count, ok4 := d.number(fCount, 0, 999_999)
	d.blank(fBlankTrailer)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil
	}
	return &Totals{Net: net, Credit: credit, Debit: debit, Count: int(count)}
}
