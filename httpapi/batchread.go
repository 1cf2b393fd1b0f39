package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/pyng/receivables/billing"
)

// readBatchRequest reads a submission whose body is one well-formed JSON object without repeated
// members (decodeJSON has checked it). It reports every member of the wrong type and every member
// the request does not take together with the problems of the batch rules (billing.BatchCheck) in
// what could be read, in the order a partner reads them: the batch's own members, then row by
// row, the problems of reading a place before those of the rules, and a place reported as
// unreadable (an amount that is not an integer) not reported again by the rules (as missing).
// The rows of a body of more than billing.MaxBatchRows rows are not read at all: the batch is
// refused for its size.
//
// Bodies are hostile as often as mistaken, so the work is linear in the body: it is read in a
// few passes of the tokenizer; only the first billing.MaxReportedProblems problems are built and
// the rest counted; the names of unknown members are ordered by keeping the least few rather
// than sorting them all. The reading stops with ctx's error once ctx is done.
func readBatchRequest(ctx context.Context, body jsontext.Value) (billing.BatchRequest, billing.Errors, error) {
	br := &batchReader{ctx: ctx}
	req, err := br.read(body)
	if err != nil {
		return billing.BatchRequest{}, nil, err
	}
	if problems := br.problems.Errors(); len(problems) > 0 {
		return req, problems, nil
	}
	if br.repeated {
		// As every other body with a repeated name: malformed, said by the JSON reader.
		return billing.BatchRequest{}, nil, decodeError(body, json.Unmarshal(body, new(jsontext.Value)))
	}
	return req, nil, nil
}

// batchReader holds the problems of one body as they are found.
type batchReader struct {
	ctx      context.Context
	steps    int
	problems billing.BatchProblems
	name     []byte // the unquoted name of the member being read
	// repeated reports a member of the batch, or of a row, named twice in its object. The body
	// is read with repeated names allowed, because searching every object for them (the JSON
	// reader's hash table an object) cost more than the rest of refusing a body of 100,000
	// unknown names. A body with a problem is refused for it; one without holds no object but
	// the batch and its rows, nor a name but theirs, so that only these names need looking at.
	repeated bool
}

// ctxEvery is how many members or rows are read between two looks at the request's context.
const ctxEvery = 1024

// step counts a member or row read and, every ctxEvery of them, reports whether the client has
// gone away.
func (br *batchReader) step() error {
	br.steps++
	if br.steps%ctxEvery == 0 {
		return br.ctx.Err()
	}
	return nil
}

// batchMembers is what the batch's own members hold, read in one pass over the body.
type batchMembers struct {
	reference                     string
	referenceInvalid, rowsInvalid bool
	// rows is the raw array of rows, and rowCount its length, when rows is an array.
	rows     []byte
	rowCount int
	// unknown are the members the request does not take. Their targets are their names, which
	// order them among the rest by the row a name reads as (rows[3].x is among rows[3]'s
	// problems, as a target of that row; any other name is the batch's).
	unknown, rowLike leastMembers
	// covers are the places a row-like name reports exactly (rows[3], rows[3].amount): the
	// rules' problems there are not reported again.
	covers map[rowPlace]bool
}

// rowPlace is a row and one of its fields ("" for the whole row).
type rowPlace struct {
	row   int
	field string
}

const (
	fieldRowReference      = "rowReference"
	fieldCustomerReference = "customerReference"
	fieldAmount            = "amount"
)

// rowFields are the members of a row, in the order their problems are reported.
var rowFields = [...]string{fieldRowReference, fieldCustomerReference, fieldAmount}

func (br *batchReader) read(body jsontext.Value) (billing.BatchRequest, error) {
	top, err := br.readBatchMembers(body)
	if err != nil {
		return billing.BatchRequest{}, err
	}
	req := billing.BatchRequest{Reference: top.reference}
	p := &br.problems
	rowLike := top.rowLike.sorted()
	next := 0 // the first row-like member not reported yet
	reportRowLike := func(below int, all bool) {
		for ; next < len(rowLike) && (all || rowLike[next].index < below); next++ {
			p.Add(unknownMember("", rowLike[next].name))
		}
	}

	// The batch's own problems (at row -1), after any row-like name of a row before it
	// (rows[-5].x).
	reportRowLike(-1, false)
	if top.referenceInvalid {
		p.Add(invalidMember("batchReference", "batchReference must be a string."))
	}
	for _, m := range top.unknown.sorted() {
		p.Add(unknownMember("", m.name))
	}
	p.Skip(top.unknown.total - top.unknown.kept())
	if top.rowsInvalid {
		p.Add(invalidMember("rows", fmt.Sprintf("rows must be an array of 1 to %d debits.", billing.MaxBatchRows)))
	}
	var check billing.BatchCheck
	for _, e := range check.Batch(top.reference, top.rowCount) {
		if (e.Target == "batchReference" && top.referenceInvalid) || (e.Target == "rows" && top.rowsInvalid) {
			continue
		}
		p.Add(e)
	}

	if top.rows != nil && top.rowCount <= billing.MaxBatchRows {
		rows, err := br.readRows(top.rows, top.rowCount)
		if err != nil {
			return billing.BatchRequest{}, err
		}
		req.Rows = make([]billing.RowRequest, len(rows))
		for i, row := range rows {
			req.Rows[i] = row.RowRequest
			reportRowLike(i+1, false)
			if err := br.reportRow(i, row, top.rows); err != nil {
				return billing.BatchRequest{}, err
			}
			for _, e := range check.Row(i, row.RowRequest) {
				field := e.Target[strings.LastIndexByte(e.Target, '.')+1:]
				if !row.notObject && !row.invalid[field] && !top.covers[rowPlace{i, ""}] && !top.covers[rowPlace{i, field}] {
					p.Add(e)
				}
			}
		}
	}
	reportRowLike(0, true)
	p.Skip(top.rowLike.total - top.rowLike.kept())
	return req, br.ctx.Err()
}

// readBatchMembers reads the batch's own members, counting the rows without reading them.
func (br *batchReader) readBatchMembers(body jsontext.Value) (batchMembers, error) {
	top := batchMembers{unknown: leastMembers{k: billing.MaxReportedProblems}, rowLike: leastMembers{k: billing.MaxReportedProblems}}
	dec := jsontext.NewDecoder(bytes.NewBuffer(body), jsontext.AllowDuplicateNames(true))
	if _, err := dec.ReadToken(); err != nil {
		return top, fmt.Errorf("read batch body: %w", err)
	}
	var sawReference, sawRows bool
	for dec.PeekKind() != '}' {
		if err := br.step(); err != nil {
			return top, err
		}
		name, err := br.readName(dec)
		if err != nil {
			return top, err
		}
		switch string(name) {
		case "batchReference":
			br.repeated = br.repeated || sawReference
			sawReference = true
			v, err := dec.ReadValue()
			if err != nil {
				return top, fmt.Errorf("read batch body: %w", err)
			}
			top.reference, top.referenceInvalid = stringMember(v)
		case "rows":
			br.repeated = br.repeated || sawRows
			sawRows = true
			switch dec.PeekKind() {
			case 'n':
			case '[':
				top.rows, top.rowCount, err = br.countRows(dec, body)
				if err != nil {
					return top, err
				}
				continue
			default:
				top.rowsInvalid = true
			}
			if err := dec.SkipValue(); err != nil {
				return top, fmt.Errorf("read batch body: %w", err)
			}
		default:
			if err := dec.SkipValue(); err != nil {
				return top, fmt.Errorf("read batch body: %w", err)
			}
			index := -1
			if bytes.HasPrefix(name, []byte("rows[")) {
				index = rowIndex(string(name))
			}
			if index == -1 {
				top.unknown.offer(0, name)
				continue
			}
			top.rowLike.offer(index, name)
			if field, ok := rowPlaceOf(name, index); ok && index >= 0 && index < billing.MaxBatchRows {
				if top.covers == nil {
					top.covers = map[rowPlace]bool{}
				}
				top.covers[rowPlace{index, field}] = true
			}
		}
	}
	return top, nil
}

// countRows skips the array of rows dec is at, counting its elements, and returns it raw.
func (br *batchReader) countRows(dec *jsontext.Decoder, body []byte) ([]byte, int, error) {
	if _, err := dec.ReadToken(); err != nil {
		return nil, 0, fmt.Errorf("read batch rows: %w", err)
	}
	open := dec.InputOffset() - 1
	n := 0
	for dec.PeekKind() != ']' {
		if err := br.step(); err != nil {
			return nil, 0, err
		}
		if err := dec.SkipValue(); err != nil {
			return nil, 0, fmt.Errorf("read batch rows: %w", err)
		}
		n++
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, 0, fmt.Errorf("read batch rows: %w", err)
	}
	return body[open:dec.InputOffset()], n, nil
}

// rowRead is a row as read: the request it makes, and what of it could not be read.
type rowRead struct {
	billing.RowRequest
	notObject bool
	invalid   map[string]bool // the fields of the wrong type
	unknown   int             // how many members the request does not take
	start     int             // the row's object in the array of rows, when it is one
	end       int
}

// readRows reads the rows of an array of n rows.
func (br *batchReader) readRows(raw []byte, n int) ([]rowRead, error) {
	rows := make([]rowRead, n)
	dec := jsontext.NewDecoder(bytes.NewBuffer(raw), jsontext.AllowDuplicateNames(true))
	if _, err := dec.ReadToken(); err != nil {
		return nil, fmt.Errorf("read batch rows: %w", err)
	}
	for i := range rows {
		row := &rows[i]
		if err := br.step(); err != nil {
			return nil, err
		}
		if dec.PeekKind() != '{' {
			row.notObject = true
			if err := dec.SkipValue(); err != nil {
				return nil, fmt.Errorf("read batch rows: %w", err)
			}
			continue
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, fmt.Errorf("read batch rows: %w", err)
		}
		row.start = int(dec.InputOffset() - 1)
		var seen [len(rowFields)]bool
		for dec.PeekKind() != '}' {
			if err := br.step(); err != nil {
				return nil, err
			}
			name, err := br.readName(dec)
			if err != nil {
				return nil, err
			}
			i, known := rowField(name)
			if !known {
				row.unknown++
				if err := dec.SkipValue(); err != nil {
					return nil, fmt.Errorf("read batch rows: %w", err)
				}
				continue
			}
			field := rowFields[i]
			br.repeated = br.repeated || seen[i]
			seen[i] = true
			v, err := dec.ReadValue()
			if err != nil {
				return nil, fmt.Errorf("read batch rows: %w", err)
			}
			var invalid bool
			switch field {
			case fieldRowReference:
				row.Reference, invalid = stringMember(v)
			case fieldCustomerReference:
				row.CustomerReference, invalid = stringMember(v)
			case fieldAmount:
				row.Amount, invalid = amountMember(v)
			}
			if invalid {
				if row.invalid == nil {
					row.invalid = map[string]bool{}
				}
				row.invalid[field] = true
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, fmt.Errorf("read batch rows: %w", err)
		}
		row.end = int(dec.InputOffset())
	}
	return rows, nil
}

// reportRow reports the problems of reading row i: not an object, or its members of the wrong
// type, then its unknown members by name, read again from the array of rows raw only while
// there is room to list them.
func (br *batchReader) reportRow(i int, row rowRead, raw []byte) error {
	p := &br.problems
	at := func() string { return "rows[" + strconv.Itoa(i) + "]" }
	if row.notObject {
		if p.Full() {
			p.Skip(1)
		} else {
			p.Add(invalidMember(at(), at()+" must be an object with rowReference, customerReference and amount."))
		}
		return nil
	}
	for _, field := range rowFields {
		switch {
		case !row.invalid[field]:
		case p.Full():
			p.Skip(1)
		case field == fieldAmount:
			p.Add(invalidMember(at()+".amount", billing.AmountMessage))
		default:
			target := at() + "." + field
			p.Add(invalidMember(target, target+" must be a string."))
		}
	}
	if row.unknown == 0 {
		return nil
	}
	if p.Full() {
		p.Skip(row.unknown)
		return nil
	}
	names := leastMembers{k: billing.MaxReportedProblems - p.Len()}
	dec := jsontext.NewDecoder(bytes.NewBuffer(raw[row.start:row.end]), jsontext.AllowDuplicateNames(true))
	if _, err := dec.ReadToken(); err != nil {
		return fmt.Errorf("read batch rows: %w", err)
	}
	for dec.PeekKind() != '}' {
		if err := br.step(); err != nil {
			return err
		}
		name, err := br.readName(dec)
		if err != nil {
			return err
		}
		if _, known := rowField(name); !known {
			names.offer(0, name)
		}
		if err := dec.SkipValue(); err != nil {
			return fmt.Errorf("read batch rows: %w", err)
		}
	}
	for _, m := range names.sorted() {
		p.Add(unknownMember(at()+".", m.name))
	}
	p.Skip(names.total - names.kept())
	return nil
}

// readName reads the name of the next member, unquoted, into br.name.
func (br *batchReader) readName(dec *jsontext.Decoder) ([]byte, error) {
	raw, err := dec.ReadValue()
	if err != nil {
		return nil, fmt.Errorf("read batch body: %w", err)
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], nil
	}
	br.name, err = jsontext.AppendUnquote(br.name[:0], raw)
	if err != nil {
		return nil, fmt.Errorf("read batch body: %w", err)
	}
	return br.name, nil
}

// stringMember reads a string member; absent or null reads "", which the rules report.
func stringMember(v jsontext.Value) (s string, invalid bool) {
	switch v.Kind() {
	case 0, 'n':
		return "", false
	case '"':
		if bytes.IndexByte(v, '\\') < 0 {
			return string(v[1 : len(v)-1]), false
		}
		if b, err := jsontext.AppendUnquote(nil, v); err == nil {
			return string(b), false
		}
	}
	return "", true
}

// amountMember reads an amount: a JSON integer, without fraction or exponent, within int64;
// absent or null reads 0, which the rules report.
func amountMember(v jsontext.Value) (n int64, invalid bool) {
	switch v.Kind() {
	case 0, 'n':
		return 0, false
	case '0':
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return n, false
		}
	}
	return 0, true
}

func invalidMember(target, message string) *billing.Error {
	return billing.Errorf(billing.CodeBatchInvalidField, target, message)
}

// unknownMember is the problem of a member the request does not take, named under prefix.
func unknownMember(prefix, name string) *billing.Error {
	target := prefix + billing.Quoted(name)
	return billing.Errorf(billing.CodeUnknownField, target, target+" is not a field of this request.")
}

// rowIndex is the row a target names (rows[17].amount is 17), or -1 for a member of the batch.
// The name of an unknown member of the batch is a target too, so this reads any name as the
// place it looks like.
func rowIndex(target string) int {
	rest, ok := strings.CutPrefix(target, "rows[")
	if !ok {
		return -1
	}
	n, _, _ := strings.Cut(rest, "]")
	i, err := strconv.Atoi(n)
	if err != nil {
		return -1
	}
	return i
}

// rowPlaceOf reports whether name, the name of row index, is exactly the target the rules give a
// row (rows[3]) or one of its fields (rows[3].amount), and which field.
func rowPlaceOf(name []byte, index int) (string, bool) {
	row := "rows[" + strconv.Itoa(index) + "]"
	rest, ok := bytes.CutPrefix(name, []byte(row))
	switch {
	case !ok:
		return "", false
	case len(rest) == 0:
		return "", true
	}
	if field, ok := bytes.CutPrefix(rest, []byte(".")); ok {
		if i, known := rowField(field); known {
			return rowFields[i], true
		}
	}
	return "", false
}

// rowField reports whether name is a member of a row, and which: its index in rowFields.
func rowField(name []byte) (int, bool) {
	for i, f := range rowFields {
		if string(name) == f {
			return i, true
		}
	}
	return -1, false
}

// leastMembers keeps, of the member names offered, the k least by (index, name), and counts them
// all: listing the first few of many in order without sorting them all. A name repeated in its
// object (the body is read with repeated names allowed) is kept as often as it is offered, and
// listed once (sorted); the count of the problems not listed counts it each time. No set of the
// names kept is held beside the heap: a body of many names would pay for it at every offer.
type leastMembers struct {
	k     int
	total int
	heap  []indexedName // a max-heap: the greatest kept first
}

type indexedName struct {
	index int
	name  string
}

func compareIndexedNames(a, b indexedName) int {
	if c := cmp.Compare(a.index, b.index); c != 0 {
		return c
	}
	return strings.Compare(a.name, b.name)
}

func (l *leastMembers) kept() int { return len(l.heap) }

// offer counts a member, and keeps its name if it is among the k least so far.
func (l *leastMembers) offer(index int, name []byte) {
	l.total++
	switch {
	case l.k <= 0:
	case len(l.heap) < l.k:
		l.heap = append(l.heap, indexedName{index, string(name)})
		for c := len(l.heap) - 1; c > 0; {
			parent := (c - 1) / 2
			if compareIndexedNames(l.heap[parent], l.heap[c]) >= 0 {
				break
			}
			l.heap[parent], l.heap[c] = l.heap[c], l.heap[parent]
			c = parent
		}
	case index < l.heap[0].index || (index == l.heap[0].index && string(name) < l.heap[0].name):
		l.heap[0] = indexedName{index, string(name)}
		for c := 0; ; {
			greatest := c
			for _, child := range [2]int{2*c + 1, 2*c + 2} {
				if child < len(l.heap) && compareIndexedNames(l.heap[child], l.heap[greatest]) > 0 {
					greatest = child
				}
			}
			if greatest == c {
				break
			}
			l.heap[c], l.heap[greatest] = l.heap[greatest], l.heap[c]
			c = greatest
		}
	}
}

// sorted is the names kept, least first.
func (l *leastMembers) sorted() []indexedName {
	s := slices.Clone(l.heap)
	slices.SortFunc(s, compareIndexedNames)
	// A name repeated in its object (the body is read with repeated names allowed) is one
	// problem, listed once.
	return slices.Compact(s)
}
