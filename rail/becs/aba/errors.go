package aba

import (
	"errors"
	"fmt"
	"strings"
)

// RecordType is the digit in column 1 of a record, which says what the record holds.
type RecordType byte

// The record types of a direct-entry or returns file.
const (
	RecordDescriptive RecordType = '0' // the file's header: who sends it, for which day
	RecordDetail      RecordType = '1' // one debit or credit
	RecordReturn      RecordType = '2' // one returned (dishonoured) item, with the reason
	RecordTotal       RecordType = '7' // the file's totals and count of records
)

// String names the record type as the format's documentation does, so an error reads like the
// specification a bank's support would quote.
func (t RecordType) String() string {
	switch t {
	case RecordDescriptive:
		return "descriptive record (type 0)"
	case RecordDetail:
		return "detail record (type 1)"
	case RecordReturn:
		return "returned-item record (type 2)"
	case RecordTotal:
		return "file total record (type 7)"
	}
	return fmt.Sprintf("record of type %q", byte(t))
}

// FieldError is one problem of a file: where it is (the line, the record's type, the field and
// the 1-based column) and what is wrong. It names the column of the very character at fault where
// there is one (a character outside the BECS set, a digit expected), otherwise the first column
// of the field, so that whoever fixes the file can go straight to it.
//
// Write reports problems of a File at the line and column its record would have in the file.
type FieldError struct {
	Line    int        // 1-based line of the file
	Record  RecordType // the type of the record on that line (the byte in column 1)
	Field   string     // the field, named as in the format's documentation
	Column  int        // 1-based column of the problem
	Problem string
	// cutShort marks a problem of where the file ends, one that a file cut short has: the file
	// is empty, ends without its file total record, or ends within its last record.
	cutShort bool
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("line %d, %s, column %d (%s): %s", e.Line, e.Record, e.Column, e.Field, e.Problem)
}

// Errors is every problem found in a file, in the order of the file. Read, Write and
// File.Validate return one (never empty) rather than the first problem alone, so that a file is
// fixed in one go; errors.As finds each *FieldError through Unwrap.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// ErrIncomplete is what Read's error is (errors.Is) when the file ends early and reads well up to
// its end, as a file still being written does: every problem is of where it ends, before its file
// total record's end (the file is empty, holds no file total record, or its last record lacks
// characters, or the LF of its CRLF; the fields of a record cut short are not read). A file total
// record last without its trailing blanks (columns 81-120) lacks characters when the file's
// descriptive or file total records have theirs: an editor trims every record's, an upload cuts
// the last. A file that ends whole at the end of a block (with or without the CRLF after it) is
// not ErrIncomplete: a reader cannot tell it from the first blocks of a longer file, which only
// the time it is left unchanged can. The problems are the Errors, as for any file; a file with
// any other problem is not ErrIncomplete.
var ErrIncomplete = errors.New("the file is incomplete: it ends before its file total record does")

// Is reports whether target is ErrIncomplete and every problem is of a file cut short.
func (es Errors) Is(target error) bool {
	if target != ErrIncomplete || len(es) == 0 {
		return false
	}
	for _, e := range es {
		if !e.cutShort {
			return false
		}
	}
	return true
}

// Unwrap gives the problems to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// orNil returns es as an error, or a nil error (not a typed nil) when there is no problem.
func (es Errors) orNil() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
