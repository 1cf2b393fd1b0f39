package httpapi

import (
	"cmp"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/pyng/receivables/billing"
)

// maxBatchBodyBytes bounds the body of a batch submission: 1000 rows of 64-character references
// take about 200 KiB, so this leaves room for any formatting.
const maxBatchBodyBytes = 1 << 20

// batchJSON is a batch as it stands, without its rows (an item of the list), or as it was
// accepted (the receipt).
type batchJSON struct {
	BatchReference string             `json:"batchReference"`
	State          billing.BatchState `json:"state"`
	RowCount       int                `json:"rowCount"`
	TotalAmount    int64              `json:"totalAmount"`
	SubmittedAt    int64              `json:"submittedAt"`
	CompletedAt    int64              `json:"completedAt,omitzero"`
}

// batchDetailJSON is a batch with its summary and rows (GET one).
type batchDetailJSON struct {
	batchJSON
	Summary summaryJSON `json:"summary"`
	Rows    []rowJSON   `json:"rows"`
}

// summaryJSON has every row state, with zeros for a state no row is in.
type summaryJSON struct {
	Pending    totalJSON `json:"pending"`
	InProgress totalJSON `json:"inProgress"`
	Succeeded  totalJSON `json:"succeeded"`
	Failed     totalJSON `json:"failed"`
}

type totalJSON struct {
	Count  int   `json:"count"`
	Amount int64 `json:"amount"`
}

// rowJSON is one row and its outcome: failureReason and retryable when failed, outcomeAt when
// succeeded or failed.
type rowJSON struct {
	RowReference      string                `json:"rowReference"`
	CustomerReference string                `json:"customerReference"`
	Amount            int64                 `json:"amount"`
	State             billing.RowState      `json:"state"`
	FailureReason     billing.FailureReason `json:"failureReason,omitempty"`
	Retryable         *bool                 `json:"retryable,omitempty"`
	OutcomeAt         int64                 `json:"outcomeAt,omitzero"`
}

func batchOf(b billing.Batch) batchJSON {
	j := batchJSON{
		BatchReference: b.Reference,
		State:          b.State,
		RowCount:       b.RowCount,
		TotalAmount:    b.TotalAmount,
		SubmittedAt:    billing.Millis(b.SubmittedAt),
	}
	if !b.CompletedAt.IsZero() {
		j.CompletedAt = billing.Millis(b.CompletedAt)
	}
	return j
}

func summaryOf(s billing.BatchSummary) summaryJSON {
	total := func(state billing.RowState) totalJSON {
		return totalJSON{Count: s[state].Count, Amount: s[state].Amount}
	}
	return summaryJSON{
		Pending:    total(billing.RowPending),
		InProgress: total(billing.RowInProgress),
		Succeeded:  total(billing.RowSucceeded),
		Failed:     total(billing.RowFailed),
	}
}

func rowOf(r billing.Row) rowJSON {
	j := rowJSON{
		RowReference:      r.Reference,
		CustomerReference: r.CustomerReference,
		Amount:            r.Amount,
		State:             r.State,
	}
	if r.State == billing.RowFailed {
		retryable := r.Retryable()
		j.FailureReason, j.Retryable = r.FailureReason, &retryable
	}
	if r.State.Terminal() {
		j.OutcomeAt = billing.Millis(r.OutcomeAt)
	}
	return j
}

// batchPath is the URL of a batch, the Location of its receipt.
func batchPath(siteID, reference string) string {
	return "/billing/sites/" + url.PathEscape(siteID) + "/batches/" + url.PathEscape(reference)
}

// submitBatch is POST /billing/sites/{siteId}/batches: 202 with the receipt, for a new batch and
// (with Idempotent-Replayed: true) for the same batch submitted again.
func (a *server) submitBatch(w http.ResponseWriter, r *http.Request) (atSite, error) {
	var body jsontext.Value
	if err := decodeJSONUpTo(w, r, &body, bodyRequired, maxBatchBodyBytes); err != nil {
		return nil, err
	}
	return func(site billing.Site) (result, error) {
		req, problems := parseBatchRequest(body)
		if len(problems) > 0 {
			return result{}, mergeProblems(problems, billing.ValidateBatch(req))
		}
		b, replayed, err := a.cfg.Service.SubmitBatch(r.Context(), site, req)
		if err != nil {
			return result{}, err
		}
		w.Header().Set("Location", batchPath(site.ID, b.Reference))
		if replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		// The receipt of acceptance, the same on every replay: GET gives the batch as it stands.
		receipt := batchOf(b)
		receipt.State, receipt.CompletedAt = billing.BatchAccepted, 0
		return result{status: http.StatusAccepted, body: dataEnvelope{Data: receipt}}, nil
	}, nil
}

// batchRequestJSON and rowRequestJSON are the body of a submission with every member kept raw,
// so that every problem of the body is found, not only the first as decoding into typed fields
// would.
type batchRequestJSON struct {
	BatchReference jsontext.Value            `json:"batchReference"`
	Rows           jsontext.Value            `json:"rows"`
	Unknown        map[string]jsontext.Value `json:",unknown"`
}

type rowRequestJSON struct {
	RowReference      jsontext.Value            `json:"rowReference"`
	CustomerReference jsontext.Value            `json:"customerReference"`
	Amount            jsontext.Value            `json:"amount"`
	Unknown           map[string]jsontext.Value `json:",unknown"`
}

// batchParser collects the problems of a submission's body while reading it.
type batchParser struct {
	problems billing.Errors
}

func (p *batchParser) invalid(target, message string) {
	p.problems = append(p.problems, billing.Errorf(billing.CodeBatchInvalidField, target, message))
}

// unknown reports the members of an object (at prefix) that the request does not take.
func (p *batchParser) unknown(prefix string, members map[string]jsontext.Value) {
	for _, name := range slices.Sorted(maps.Keys(members)) {
		target := name
		if prefix != "" {
			target = prefix + "." + name
		}
		p.problems = append(p.problems, billing.Errorf(billing.CodeUnknownField, target, target+" is not a field of this request."))
	}
}

// str reads a string member; absent or null reads "", which validation reports.
func (p *batchParser) str(target string, v jsontext.Value) string {
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
func (p *batchParser) amount(target string, v jsontext.Value) int64 {
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

// parseBatchRequest reads a submission whose body is a JSON object, reporting every member of the
// wrong type and every unknown member.
func parseBatchRequest(body jsontext.Value) (billing.BatchRequest, billing.Errors) {
	var p batchParser
	var raw batchRequestJSON
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
		var row rowRequestJSON
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

// mergeProblems reports the problems found while reading a body with those validation finds in
// what could be read, leaving out the validation problems of a place already reported (an amount
// of the wrong type also reads as a missing amount), in the order of the rows.
func mergeProblems(read, validation billing.Errors) billing.Errors {
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

// rowIndex is the row a target names (rows[17].amount is 17), or -1 for a member of the batch.
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

// getBatch is GET /billing/sites/{siteId}/batches/{batchReference}: the batch with its summary and
// rows as JSON, or its rows as CSV when the client prefers text/csv.
func (a *server) getBatch(w http.ResponseWriter, r *http.Request) (atSite, error) {
	asCSV, err := prefersCSV(r.Header.Values("Accept"))
	if err != nil {
		return nil, err
	}
	return func(site billing.Site) (result, error) {
		var rowState billing.RowState
		if query := r.URL.Query(); query.Has("rowState") {
			state, err := billing.ParseRowState(single(query["rowState"])) // a repeated rowState is never valid
			if err != nil {
				return result{}, err
			}
			rowState = state
		}
		b, summary, rows, err := a.cfg.Service.Batch(r.Context(), site, r.PathValue("batchReference"), rowState)
		if err != nil {
			return result{}, err
		}
		w.Header().Set("Vary", "Accept")
		if asCSV {
			return result{writeFunc: func(w http.ResponseWriter) { writeRowsCSV(w, b.Reference, rows) }}, nil
		}
		return batchDetail(b, summary, rows), nil
	}, nil
}

// batchDetail answers with a batch, its summary and its rows.
func batchDetail(b billing.Batch, summary billing.BatchSummary, rows []billing.Row) result {
	detail := batchDetailJSON{batchJSON: batchOf(b), Summary: summaryOf(summary), Rows: make([]rowJSON, len(rows))}
	for i, row := range rows {
		detail.Rows[i] = rowOf(row)
	}
	return result{status: http.StatusOK, body: dataEnvelope{Data: detail}}
}

// simulateDeadline is the sandbox's POST .../sandbox/batches/{batchReference}/deadline: the batch
// as if its 24-hour deadline had passed, every open row failed as expired.
func (a *server) simulateDeadline(w http.ResponseWriter, r *http.Request) (atSite, error) {
	var empty struct{}
	if err := decodeJSON(w, r, &empty, bodyOptional); err != nil {
		return nil, err
	}
	return func(site billing.Site) (result, error) {
		b, summary, rows, err := a.cfg.Service.SimulateDeadline(r.Context(), site, r.PathValue("batchReference"))
		if err != nil {
			return result{}, err
		}
		return batchDetail(b, summary, rows), nil
	}, nil
}

// csvHeader is the first line of a batch's CSV.
var csvHeader = []string{"rowReference", "customerReference", "amount", "state", "failureReason", "retryable", "outcomeAt"}

// writeRowsCSV answers with rows as CSV (RFC 4180), one line per row after the header line, with
// the JSON's values: amounts in cents, times in Unix milliseconds, and empty cells where the JSON
// omits a field.
func writeRowsCSV(w http.ResponseWriter, reference string, rows []billing.Row) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+reference+`.csv"`)
	w.WriteHeader(http.StatusOK)
	out := csv.NewWriter(w)
	_ = out.Write(csvHeader)
	for _, row := range rows {
		j := rowOf(row)
		var retryable, outcomeAt string
		if j.Retryable != nil {
			retryable = strconv.FormatBool(*j.Retryable)
		}
		if j.OutcomeAt != 0 {
			outcomeAt = strconv.FormatInt(j.OutcomeAt, 10)
		}
		_ = out.Write([]string{spreadsheetSafe(j.RowReference), spreadsheetSafe(j.CustomerReference), strconv.FormatInt(j.Amount, 10),
			string(j.State), string(j.FailureReason), retryable, outcomeAt})
	}
	out.Flush() // a write error is the client going away; nothing is left to tell it
}

// spreadsheetSafe keeps a spreadsheet from reading a reference as a formula: references may start
// with a hyphen, which spreadsheets take as a minus sign, so such a cell is written with a leading
// apostrophe (the usual text marker; OWASP's advice for CSV injection).
func spreadsheetSafe(reference string) string {
	if strings.HasPrefix(reference, "-") {
		return "'" + reference
	}
	return reference
}

// prefersCSV reads the Accept header (RFC 9110 §12.5.1) of GET one batch, which has two
// representations: application/json, chosen when there is no Accept header or on a tie, and
// text/csv. A client that accepts neither gets 406.
func prefersCSV(accept []string) (bool, error) {
	ranges := strings.Join(accept, ",")
	if strings.TrimSpace(ranges) == "" {
		return false, nil
	}
	qJSON, qCSV := acceptQuality(ranges, "application", "json"), acceptQuality(ranges, "text", "csv")
	if qJSON == 0 && qCSV == 0 {
		return false, billing.Errorf(billing.CodeNotAcceptable, "Accept",
			"This endpoint answers application/json or text/csv; send an Accept header that allows one of them.")
	}
	return qCSV > qJSON, nil
}

// acceptQuality is the weight an Accept header gives to the media type typ/sub: the q of its most
// specific matching range (type/sub, then type/*, then */*), 0 when none matches.
func acceptQuality(ranges, typ, sub string) float64 {
	best, q := 0, 0.0
	for _, r := range strings.Split(ranges, ",") {
		params := strings.Split(r, ";")
		rt, rs, _ := strings.Cut(strings.ToLower(strings.TrimSpace(params[0])), "/")
		specificity := 0
		switch {
		case rt == typ && rs == sub:
			specificity = 3
		case rt == typ && rs == "*":
			specificity = 2
		case rt == "*" && rs == "*":
			specificity = 1
		}
		if specificity <= best {
			continue
		}
		weight := 1.0
		for _, p := range params[1:] {
			name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(name), "q") {
				w, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
				if err != nil || w < 0 || w > 1 {
					w = 0
				}
				weight = w
			}
		}
		best, q = specificity, weight
	}
	return q
}

// listBatches is GET /billing/sites/{siteId}/batches: the site's batches, newest first, paged by
// an opaque cursor.
func (a *server) listBatches(w http.ResponseWriter, r *http.Request) (atSite, error) {
	return func(site billing.Site) (result, error) {
		query := r.URL.Query()
		var f billing.BatchFilter
		if query.Has("cursor") {
			var ok bool
			if f, ok = decodeBatchCursor(single(query["cursor"])); !ok {
				return result{}, invalidCursor()
			}
		}
		var err error
		if f.Limit, err = pageSize(query); err != nil {
			return result{}, err
		}
		batches, next, err := a.cfg.Service.ListBatches(r.Context(), site, f)
		if err != nil {
			return result{}, err
		}
		data := make([]batchJSON, len(batches))
		for i, b := range batches {
			data[i] = batchOf(b)
		}
		body := dataEnvelope{Data: data}
		if next != nil {
			body.NextCursor = encodeBatchCursor(*next)
		}
		return result{status: http.StatusOK, body: body}, nil
	}, nil
}

// A batch cursor is the submittedAt (Unix ms) and id of the last batch of the page, as
// "<ms>.<id>", base64url-encoded: opaque to partners so that it may change.
func encodeBatchCursor(f billing.BatchFilter) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d.%s", billing.Millis(f.AfterSubmittedAt), f.AfterID))
}

func decodeBatchCursor(cursor string) (billing.BatchFilter, bool) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return billing.BatchFilter{}, false
	}
	ms, id, _ := strings.Cut(string(b), ".")
	at, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || at < 0 || !billing.ValidReference(id) {
		return billing.BatchFilter{}, false
	}
	return billing.BatchFilter{AfterSubmittedAt: billing.FromMillis(at), AfterID: id}, true
}
