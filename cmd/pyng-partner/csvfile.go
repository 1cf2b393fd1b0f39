package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/pyng/receivables/client"
)

// The rules of a batch the API checks, checked again here so that every problem of a file is
// reported with its line before anything is sent (the API's document states them).
const (
	maxRows   = 1000
	maxAmount = 1_000_000_000 // cents: 10,000,000.00
)

// reference is the form of a batchReference, rowReference and customerReference.
var reference = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

const referenceRule = "1 to 64 of A-Z, a-z, 0-9, hyphen and underscore"

// unquoted is a reference as a file the API wrote (batches show --csv) has it: one that starts
// with a hyphen is written there with a leading ' so that a spreadsheet does not read it as a
// formula; the ' is not the reference's (a reference holds no ').
func unquoted(ref string) string {
	if strings.HasPrefix(ref, "'-") {
		return ref[1:]
	}
	return ref
}

var (
	dollarsAndCents = regexp.MustCompile(`^[0-9]+\.[0-9]{2}$`)
	wholeCents      = regexp.MustCompile(`^[0-9]+$`)
)

// inputError is an input the command refused before sending anything: a problem a line.
type inputError struct {
	problems []string
	summary  string
}

func (e inputError) Error() string {
	return strings.Join(append(append([]string(nil), e.problems...), e.summary), "\n")
}

// readRows reads the rows of a batch from a CSV file of rowReference,customerReference,amount,
// with an optional header line of those three names (and of more columns after them, ignored but
// for a row's outcome, see collected). Amounts are dollars and cents (120.00), or whole cents
// (12000) when cents is set. It reports every problem of the file, each with its line, in an
// inputError.
func readRows(r io.Reader, name string, cents bool) ([]client.RowRequest, error) {
	// A spreadsheet's export may begin with a byte order mark: it goes before the CSV reader sees
	// the first field, which may be quoted.
	br := bufio.NewReader(r)
	if bom, err := br.Peek(3); err == nil && string(bom) == "\ufeff" {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	var (
		rows     []client.RowRequest
		problems []string
		lineOf   = map[string]int{}
		width    = 3 // the fields of a row: rowReference,customerReference,amount, and those a header adds
		// The columns of a row's outcome that a header of batches show --csv names (-1: none).
		stateColumn, returnedColumn = -1, -1
	)
	problem := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
	}
	for first := true; ; first = false {
		record, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var parseErr *csv.ParseError
		if errors.As(err, &parseErr) {
			problem(parseErr.Line, "%v", parseErr.Err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		for i := range record {
			record[i] = strings.TrimSpace(record[i])
		}
		if first {
			// A header may name more columns after the three, which are ignored: batches show
			// --csv writes a batch's rows with their outcomes, for its file to be submitted again.
			if len(record) >= 3 && strings.EqualFold(record[0], "rowReference") &&
				strings.EqualFold(record[1], "customerReference") && strings.EqualFold(record[2], "amount") {
				width = len(record)
				for i, name := range record[3:] {
					switch {
					case strings.EqualFold(name, "state"):
						stateColumn = 3 + i
					case strings.EqualFold(name, "returnedAt"):
						returnedColumn = 3 + i
					}
				}
				continue
			}
		}
		if len(record) != width {
			if width == 3 {
				problem(line, "%d fields; a row is rowReference,customerReference,amount", len(record))
			} else {
				problem(line, "%d fields; the header has %d", len(record), width)
			}
			continue
		}
		rowRef, customer, amountText := unquoted(record[0]), unquoted(record[1]), record[2]
		ok := true
		if !reference.MatchString(rowRef) {
			problem(line, "rowReference %q must be %s", rowRef, referenceRule)
			ok = false
		} else if prev, dup := lineOf[rowRef]; dup {
			problem(line, "rowReference %q is also on line %d; each row of a batch has its own", rowRef, prev)
			ok = false
		} else {
			lineOf[rowRef] = line
		}
		if !reference.MatchString(customer) {
			problem(line, "customerReference %q must be %s", customer, referenceRule)
			ok = false
		}
		amount, err := parseAmount(amountText, cents)
		if err != nil {
			problem(line, "%v", err)
			ok = false
		}
		if why := collected(record, stateColumn, returnedColumn); why != "" {
			problem(line, "rowReference %q %s in the batch this file was written from: submitted again under another reference, "+
				"it would debit its customer a second time; delete the line (submit only the rows that failed, or were returned)", rowRef, why)
			ok = false
		}
		if ok {
			rows = append(rows, client.RowRequest{RowReference: rowRef, CustomerReference: customer, Amount: amount})
		}
	}
	if len(problems) == 0 && len(rows) == 0 {
		problems = append(problems, fmt.Sprintf("%s: no rows; a batch has 1 to %d", name, maxRows))
	}
	if n := len(rows); n > maxRows {
		problems = append(problems, fmt.Sprintf("%s: %d rows; a batch has at most %d", name, n, maxRows))
	}
	if len(problems) > 0 {
		s := "s"
		if len(problems) == 1 {
			s = ""
		}
		return nil, inputError{problems: problems, summary: fmt.Sprintf("%s: %d problem%s; nothing was sent.", name, len(problems), s)}
	}
	return rows, nil
}

// collected says why a row of a file that batches show --csv wrote (its outcome in the columns
// state and returnedAt, -1 when the header names none) may have been collected: it succeeded and
// was not returned, or is still open and may yet be. It is "" for a row that failed or was
// returned, and for a row of a file without the outcome's columns.
func collected(record []string, state, returned int) string {
	if state < 0 {
		return ""
	}
	// Read in any letter case, as a spreadsheet may have changed it: a row that reads as collected
	// is refused, whatever its spelling.
	is := func(s client.RowState) bool { return strings.EqualFold(strings.TrimSpace(record[state]), string(s)) }
	switch {
	case is(client.RowSucceeded):
		if returned >= 0 && strings.TrimSpace(record[returned]) != "" {
			return ""
		}
		return "succeeded"
	case is(client.RowPending), is(client.RowInProgress):
		return "is still " + record[state]
	}
	return ""
}

// parseAmount reads an amount, in dollars and cents or in whole cents, as cents.
func parseAmount(text string, cents bool) (int64, error) {
	digits := text
	switch {
	case cents && wholeCents.MatchString(text):
	case cents:
		return 0, fmt.Errorf("amount %q must be whole cents such as 12000 (--cents)", text)
	case dollarsAndCents.MatchString(text):
		digits = strings.Replace(text, ".", "", 1)
	case wholeCents.MatchString(text):
		// A spreadsheet writes 120.00 as 120 unless its column is formatted 0.00, so such an amount
		// is as likely dollars as cents: the message says what --cents would make of it, a
		// hundredth of what a file of whole dollars meant.
		asCents := "as cents"
		if v, err := strconv.ParseInt(text, 10, 64); err == nil {
			asCents = "as " + dollars(v)
		}
		return 0, fmt.Errorf("amount %q has no cents: write %s.00 if it is %s dollars (a spreadsheet drops the .00 unless the column is formatted 0.00); "+
			"--cents reads every amount of the file as cents, this one %s", text, text, text, asCents)
	default:
		return 0, fmt.Errorf("amount %q must be dollars and cents such as 120.00", text)
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || v < 1 || v > maxAmount {
		if cents {
			return 0, fmt.Errorf("amount %q must be from 1 to %d cents", text, maxAmount)
		}
		return 0, fmt.Errorf("amount %q must be from 0.01 to %s", text, dollars(maxAmount))
	}
	return v, nil
}
