package httpapi

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/pyng/receivables/apptest/badbatch"
	"github.com/pyng/receivables/billing"
)

// The hot paths of the batch endpoints, for comparing a change with benchstat:
//
//	go test -run XXX -bench . -count 10 ./httpapi/ > old.txt   (then again after the change)
//	benchstat old.txt new.txt

// batchBody is a submission of n rows as a partner sends it.
func batchBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"batchReference": "BATCH-2024-06-01", "rows": [`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n  {\"rowReference\": \"INV-%06d\", \"customerReference\": \"CUST-%04d\", \"amount\": %d}", i, i%250, 1000+i)
	}
	b.WriteString("\n]}")
	return b.Bytes()
}

// BenchmarkDecodeBatch reads and validates a 1000-row submission as submitBatch does before it
// reaches the store: the body read and checked as one JSON object, then every member read with
// the problems of reading it and of the batch rules.
func BenchmarkDecodeBatch(b *testing.B) {
	body := batchBody(billing.MaxBatchRows)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/billing/sites/site_1/batches", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var raw jsontext.Value
		if err := decodeJSONUpTo(discard{}, r, &raw, bodyRequired, maxBatchBodyBytes); err != nil {
			b.Fatal(err)
		}
		req, problems, err := readBatchRequest(r.Context(), raw)
		if err != nil || len(problems) > 0 || len(req.Rows) != billing.MaxBatchRows {
			b.Fatalf("%d rows, problems %v", len(req.Rows), problems)
		}
	}
}

// completedBatch is a batch of n rows as the store returns it once executed: most succeeded, one
// in fifty failed.
func completedBatch(n int) (billing.Batch, billing.BatchSummary, []billing.Row) {
	at := time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)
	b := billing.Batch{ID: "bat_1", SiteID: "site_1", Reference: "BATCH-2024-06-01", State: billing.BatchCompleted,
		RowCount: n, SubmittedAt: at, CompletedAt: at.Add(time.Second)}
	summary := billing.BatchSummary{}
	rows := make([]billing.Row, n)
	for i := range rows {
		r := billing.Row{ID: fmt.Sprintf("row_%d", i), BatchID: b.ID, Index: i, Reference: fmt.Sprintf("INV-%06d", i),
			CustomerReference: fmt.Sprintf("CUST-%04d", i%250), Amount: int64(1000 + i), State: billing.RowSucceeded,
			OutcomeAt: at.Add(time.Second)}
		if i%50 == 0 {
			r.State, r.FailureReason = billing.RowFailed, billing.FailureInsufficientFunds
		}
		total := summary[r.State]
		total.Count++
		total.Amount += r.Amount
		summary[r.State] = total
		b.TotalAmount += r.Amount
		rows[i] = r
	}
	return b, summary, rows
}

// BenchmarkEncodeBatch writes a completed 1000-row batch as GET one batch answers it.
func BenchmarkEncodeBatch(b *testing.B) {
	batch, summary, rows := completedBatch(billing.MaxBatchRows)
	w := &countingWriter{header: http.Header{}}
	encode := func() {
		res := batchDetail(batch, summary, rows)
		res.body.TraceID = "0f8fad5b-d9cb-469f-a165-70867728950e"
		w.n = 0
		writeJSON(w, res.status, res.body)
	}
	encode()
	b.SetBytes(int64(w.n))
	b.ReportAllocs()
	for b.Loop() {
		encode()
	}
}

// discard is a ResponseWriter for code that only needs one to exist (http.MaxBytesReader).
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}

// countingWriter is a ResponseWriter that keeps only the size of what is written.
type countingWriter struct {
	header http.Header
	n      int
}

func (w *countingWriter) Header() http.Header { return w.header }
func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}
func (w *countingWriter) WriteHeader(int) {}

// BenchmarkDecodeBadBatch reads and answers each hostile body of up to 1 MiB as submitBatch does.
func BenchmarkDecodeBadBatch(b *testing.B) {
	for _, body := range badbatch.Bodies(maxBatchBodyBytes) {
		b.Run(strings.ReplaceAll(body.Name, " ", "_"), func(b *testing.B) {
			b.SetBytes(int64(len(body.JSON)))
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, "/billing/sites/site_1/batches", bytes.NewReader(body.JSON))
				r.Header.Set("Content-Type", "application/json")
				raw, err := decodeBatchBody(discard{}, r)
				if err != nil {
					b.Fatal(err)
				}
				_, problems, err := readBatchRequest(r.Context(), raw)
				if err != nil || len(problems) == 0 {
					b.Fatalf("problems %v, %v", problems, err)
				}
				writeJSON(discard{}, http.StatusBadRequest, problems)
			}
		})
	}
}
