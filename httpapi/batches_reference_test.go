package httpapi

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/pyng/receivables/billing"
)

// referenceProblems is how a submission's body was read before readBatchRequest: every member
// decoded, every problem built, the rules' problems merged with the reading's by comparing each
// with each, and every row checked however many there were. It takes time quadratic in the body,
// and is kept as the oracle that readBatchRequest answers every body of at most
// billing.MaxBatchRows rows as it did (the answer capped, and long names cut).
func referenceProblems(body jsontext.Value) (billing.BatchRequest, billing.Errors) {
	req, read := referenceParse(body)
	return req, referenceMerge(read, referenceValidate(req))
}

// refBatchJSON and refRowJSON are the body of a submission with every member kept raw,
// so that every problem of the body is found, not only the first as decoding into typed fields
// would.
type refBatchJSON struct {
	BatchReference jsontext.Value            `json:"batchReference"`
	Rows           jsontext.Value            `json:"rows"`
	Unknown        map[string]jsontext.Value `json:",unknown"`
}

type refRowJSON struct {
	RowReference      jsontext.Value            `json:"rowReference"`
	CustomerReference jsontext.Value            `json:"customerReference"`
	Amount            jsontext.Value            `json:"amount"`
	Unknown           map[string]jsontext.Value `json:",unknown"`
}

// refParser collects the problems of a submission's body while reading it.
type refParser struct {
	problems billing.Errors
}

func (p *refParser) invalid(target, message string) {
	p.problems = append(p.problems, billing.Errorf(billing.CodeBatchInvalidField, target, message))
}

// unknown reports the members of an object (at prefix) that the request does not take.
func (p *refParser) unknown(prefix string, members map[string]jsontext.Value) {
	for _, name := range slices.Sorted(maps.Keys(members)) {
		target := name
		if prefix != "" {
			target = prefix + "." + name
		}
		p.problems = append(p.problems, billing.Errorf(billing.CodeUnknownField, target, target+" is not a field of this request."))
	}
}

// str reads a string member; absent or null reads "", which validation reports.
func (p *refParser) str(target string, v jsontext.Value) string {
	var s string
	switch v.Kind() {
	case 0, 'n':
		return ""
	case '"':
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	p.invalid(target, target+" must be a string.")
	return ""
}

// amount reads an amount: a JSON integer, without fraction or exponent, within int64; absent or
// null reads 0, which validation reports.
func (p *refParser) amount(target string, v jsontext.Value) int64 {
	switch v.Kind() {
	case 0, 'n':
		return 0
	case '0':
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return n
		}
	}
	p.invalid(target, billing.AmountMessage)
	return 0
}

// referenceParse reads a submission whose body is a JSON object, reporting every member of the
// wrong type and every unknown member.
func referenceParse(body jsontext.Value) (billing.BatchRequest, billing.Errors) {
	var p refParser
	var raw refBatchJSON
	if err := json.Unmarshal(body, &raw); err != nil {
		// decodeJSON has checked that body is one well-formed object, which always decodes here.
		p.invalid("", "The request body must be a JSON object.")
		return billing.BatchRequest{}, p.problems
	}
	req := billing.BatchRequest{Reference: p.str("batchReference", raw.BatchReference)}
	p.unknown("", raw.Unknown)
	var rows []jsontext.Value
	switch raw.Rows.Kind() {
	case 0, 'n':
	case '[':
		_ = json.Unmarshal(raw.Rows, &rows) // an array always decodes into []jsontext.Value
	default:
		p.invalid("rows", fmt.Sprintf("rows must be an array of 1 to %d debits.", billing.MaxBatchRows))
	}
	req.Rows = make([]billing.RowRequest, len(rows))
	for i, v := range rows {
		at := fmt.Sprintf("rows[%d]", i)
		var row refRowJSON
		if v.Kind() != '{' || json.Unmarshal(v, &row) != nil {
			p.invalid(at, at+" must be an object with rowReference, customerReference and amount.")
			continue
		}
		req.Rows[i] = billing.RowRequest{
			Reference:         p.str(at+".rowReference", row.RowReference),
			CustomerReference: p.str(at+".customerReference", row.CustomerReference),
			Amount:            p.amount(at+".amount", row.Amount),
		}
		p.unknown(at, row.Unknown)
	}
	return req, p.problems
}

// referenceMerge reports the problems found while reading a body with those validation finds in
// what could be read, leaving out the validation problems of a place already reported (an amount
// of the wrong type also reads as a missing amount), in the order of the rows.
func referenceMerge(read, validation billing.Errors) billing.Errors {
	reported := func(target string) bool {
		return slices.ContainsFunc(read, func(e *billing.Error) bool {
			return target == e.Target || strings.HasPrefix(target, e.Target+".") || strings.HasPrefix(target, e.Target+"[")
		})
	}
	all := slices.Clone(read)
	for _, e := range validation {
		if !reported(e.Target) {
			all = append(all, e)
		}
	}
	slices.SortStableFunc(all, func(a, b *billing.Error) int { return cmp.Compare(rowIndex(a.Target), rowIndex(b.Target)) })
	return all
}

// referenceValidate is the batch rules as they were: every row checked, every problem reported.
func referenceValidate(r billing.BatchRequest) billing.Errors {
	var errs billing.Errors
	add := func(target, msg string) {
		errs = append(errs, billing.Errorf(billing.CodeBatchInvalidField, target, msg))
	}
	if !billing.ValidReference(r.Reference) {
		add("batchReference", refReferenceMessage("batchReference"))
	}
	switch {
	case len(r.Rows) == 0:
		add("rows", fmt.Sprintf("rows must hold 1 to %d debits.", billing.MaxBatchRows))
	case len(r.Rows) > billing.MaxBatchRows:
		add("rows", fmt.Sprintf("rows must hold 1 to %d debits; this batch has %d.", billing.MaxBatchRows, len(r.Rows)))
	}
	first := map[string]int{}
	for i, row := range r.Rows {
		at := func(field string) string { return fmt.Sprintf("rows[%d].%s", i, field) }
		if !billing.ValidReference(row.Reference) {
			add(at("rowReference"), refReferenceMessage("rowReference"))
		} else if j, seen := first[row.Reference]; seen {
			add(at("rowReference"), fmt.Sprintf("rowReference %s is already used by rows[%d]; each rowReference must be unique within the batch.", row.Reference, j))
		} else {
			first[row.Reference] = i
		}
		if !billing.ValidReference(row.CustomerReference) {
			add(at("customerReference"), refReferenceMessage("customerReference"))
		}
		if row.Amount < 1 || row.Amount > billing.MaxAmount {
			add(at("amount"), billing.AmountMessage)
		}
	}
	return errs
}

func refReferenceMessage(field string) string {
	return field + " must be 1–64 characters and contain only alphanumeric characters, hyphens, and underscores."
}
