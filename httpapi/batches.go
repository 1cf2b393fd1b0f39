package httpapi

import (
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/pyng/receivables/billing"
)

// maxBatchBodyBytes bounds the body of a batch submission: 1000 rows of 64-character references
// take about 200 KiB, so this leaves room for any formatting.
const maxBatchBodyBytes = 1 << 20

// batchDetailJSON is a batch with its summary and rows (GET one).
type batchDetailJSON struct {
	billing.BatchSummaryView
	Rows []rowJSON `json:"rows"`
}

// rowJSON is one row and its outcome.
type rowJSON = billing.RowView

func rowOf(r billing.Row) rowJSON { return billing.ViewRow(r) }

// batchPath is the URL of a batch, the Location of its receipt.
func batchPath(siteID, reference string) string {
	return "/billing/sites/" + url.PathEscape(siteID) + "/batches/" + url.PathEscape(reference)
}

// decodeBatchBody reads a batch submission's body as decodeJSON reads any other, but for repeated
// member names, which readBatchRequest looks for at less cost (see batchReader.repeated).
func decodeBatchBody(w http.ResponseWriter, r *http.Request) (jsontext.Value, error) {
	var body jsontext.Value
	err := decodeJSONUpTo(w, r, &body, bodyRequired, maxBatchBodyBytes, jsontext.AllowDuplicateNames(true))
	return body, err
}

// submitBatch is POST /billing/sites/{siteId}/batches: 202 with the receipt, for a new batch and
// (with Idempotent-Replayed: true) for the same batch submitted again.
func (a *server) submitBatch(w http.ResponseWriter, r *http.Request) (atSite, error) {
	body, err := decodeBatchBody(w, r)
	if err != nil {
		return nil, err
	}
	return func(site billing.Site) (result, error) {
		req, problems, err := readBatchRequest(r.Context(), body)
		if err != nil {
			return result{}, err
		}
		if len(problems) > 0 {
			return result{}, problems
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
		receipt := billing.ViewBatch(b)
		receipt.State, receipt.CompletedAt = billing.BatchAccepted, 0
		return result{status: http.StatusAccepted, body: dataEnvelope{Data: receipt}}, nil
	}, nil
}

// getBatch is GET /billing/sites/{siteId}/batches/{batchReference}: the batch with its summary and
// rows as JSON, or its rows as CSV when the client prefers text/csv.
func (a *server) getBatch(w http.ResponseWriter, r *http.Request) (atSite, error) {
	asCSV, err := prefersCSV(r.Header.Values("Accept"))
	if err != nil {
		return nil, err
	}
	return func(site billing.Site) (result, error) {
		rowState, err := rowStateOf(r.URL.Query())
		if err != nil {
			return result{}, err
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

// rowStateOf reads the query of GET one batch: ?rowState=, or "" for every row.
func rowStateOf(query url.Values) (billing.RowState, error) {
	if !query.Has("rowState") {
		return "", nil
	}
	return billing.ParseRowState(query.Get("rowState"))
}

// batchDetail answers with a batch, its summary and its rows.
func batchDetail(b billing.Batch, summary billing.BatchSummary, rows []billing.Row) result {
	detail := batchDetailJSON{BatchSummaryView: billing.BatchSummaryView{BatchView: billing.ViewBatch(b), Summary: billing.ViewSummary(summary)}, Rows: make([]rowJSON, len(rows))}
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
// The BECS rail's columns come last, so that a sheet that reads the first seven by position still
// reads them.
var csvHeader = []string{"rowReference", "customerReference", "amount", "state", "failureReason", "retryable", "outcomeAt",
	"fileId", "returnedAt", "returnReason"}

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
		var retryable string
		if j.Retryable != nil {
			retryable = strconv.FormatBool(*j.Retryable)
		}
		_ = out.Write([]string{spreadsheetSafe(j.RowReference), spreadsheetSafe(j.CustomerReference), strconv.FormatInt(j.Amount, 10),
			string(j.State), string(j.FailureReason), retryable, csvMillis(j.OutcomeAt), j.FileID, csvMillis(j.ReturnedAt), string(j.ReturnReason)})
	}
	out.Flush() // a write error is the client going away; nothing is left to tell it
}

// csvMillis is a time of the JSON (Unix milliseconds) as a cell: empty where the JSON omits it.
func csvMillis(ms int64) string {
	if ms == 0 {
		return ""
	}
	return strconv.FormatInt(ms, 10)
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
		f, err := batchFilterOf(r.URL.Query())
		if err != nil {
			return result{}, err
		}
		batches, next, err := a.cfg.Service.ListBatches(r.Context(), site, f)
		if err != nil {
			return result{}, err
		}
		data := make([]billing.BatchView, len(batches))
		for i, b := range batches {
			data[i] = billing.ViewBatch(b)
		}
		body := dataEnvelope{Data: data}
		if next != nil {
			body.NextCursor = encodeBatchCursor(*next)
		}
		return result{status: http.StatusOK, body: body}, nil
	}, nil
}

// batchFilterOf reads the query of a list of batches: ?cursor=, then ?limit=.
func batchFilterOf(query url.Values) (billing.BatchFilter, error) {
	var f billing.BatchFilter
	if query.Has("cursor") {
		var ok bool
		if f, ok = decodeBatchCursor(query.Get("cursor")); !ok {
			return billing.BatchFilter{}, invalidCursor()
		}
	}
	var err error
	if f.Limit, err = pageSize(query); err != nil {
		return billing.BatchFilter{}, err
	}
	return f, nil
}

// A batch cursor is the submittedAt (Unix ms) and id of the last batch of the page, as
// "<ms>.<id>", base64url-encoded: opaque to partners so that it may change.
func encodeBatchCursor(f billing.BatchFilter) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d.%s", billing.Millis(f.AfterSubmittedAt), f.AfterID))
}

// decodeBatchCursor reads a cursor as encodeBatchCursor writes it, and no other way (as
// decodeCursor).
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
	f := billing.BatchFilter{AfterSubmittedAt: billing.FromMillis(at), AfterID: id}
	if encodeBatchCursor(f) != cursor {
		return billing.BatchFilter{}, false
	}
	return f, true
}
