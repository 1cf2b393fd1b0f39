package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/pyng/receivables/apptest/badbatch"
	"github.com/pyng/receivables/billing"
)

// batchSeeds are bodies whose reading has a rule or a corner to keep: the fuzz target starts from
// them, and every run of the tests reads them.
var batchSeeds = []string{
	`{"batchReference":"B-1","rows":[{"rowReference":"R0","customerReference":"C0","amount":100},{"rowReference":"R1","customerReference":"C1","amount":200}]}`,
	`{"batchReference": "", "currency": "AUD", "rows": [
		{"rowReference": "R0", "customerReference": "C0", "amount": 1.5},
		{"rowReference": "R0", "customerReference": "C1", "amount": 0, "colour": "red"},
		7,
		{"rowReference": "R3", "customerReference": 5, "amount": "x"},
		{"rowReference": "R4", "customerReference": "C4", "amount": 400}]}`,
	`{}`,
	`{"rows":null,"batchReference":null}`,
	`{"rows":{},"batchReference":7}`,
	`{"rows":"R0,C0,100","batchReference":"B"}`,
	`{"rows":[],"batchReference":"B"}`,
	`{"rows":[null,true,"x",[],{}],"batchReference":"B"}`,
	`{"batch\u0052eference":"B\u002d1","rows":[{"row\u0052eference":"R\u0030","customerReference":"C","amount":1}]}`,
	`{"batchReference":"B","rows":[{"rowReference":"R","customerReference":"C","amount":-0},{"rowReference":"S","customerReference":"C","amount":1e2},{"rowReference":"T","customerReference":"C","amount":1.0},{"rowReference":"U","customerReference":"C","amount":99999999999999999999}]}`,
	`{"batchReference":"B","rows":[{"rowReference":"R","customerReference":"C","amount":1,"":0,"Amount":1,"z":1,"a":1}]}`,
	`{"":0,"rows":[{"rowReference":"R","customerReference":"C","amount":1}],"batchReference":"B"}`,
	// Unknown members of the batch named like a row's place are ordered, and hide the rules'
	// problems, as that place.
	`{"rows[0]":1,"rows":[{"rowReference":"R","customerReference":"C","amount":0}],"batchReference":"B"}`,
	`{"rows[1].amount":1,"rows[1].amount.x":1,"rows":[{"amount":"x"},{"amount":0}],"batchReference":"B"}`,
	`{"rows[-5].x":1,"rows[-1]":1,"rows[-0]":1,"batchReference":"","rows":[]}`,
	`{"rows[99999]":0,"rows[+1]":0,"rows[01]":0,"rows[1":0,"rows[x]":0,"rows[1]":0,"rows":[{},{}]}`,
	`{"rows[9223372036854775807]":0,"rows[-9223372036854775808]":0,"rows[99999999999999999999]":0}`,
	`{"batchReference":"B","rows":[{"rowReference":"R","customerReference":"C","amount":1,"` + strings.Repeat("é", 40) + `":0}]}`,
	`{"batchReference":"` + strings.Repeat("b", 65) + `","rows":[{"rowReference":"` + strings.Repeat("r", 64) + `","customerReference":"C","amount":1000000001}]}`,
	`{"batchReference":"B","rows":[` + strings.Repeat(`{"rowReference":"R","customerReference":"-","amount":0},`, 40) + `{}]}`,
	`{"batchReference":"B","rows":[{"rowReference":"R","customerReference":"C","amount":1,"x0":[{"y":0}]}],"n":[[[[{"o":{}}]]]]}`,
	// Repeated names: refused, with the body's problems when it has any.
	`{"batchReference":"B","rows":[{"rowReference":"R","customerReference":"C","amount":1,"amount":2}]}`,
	`{"batchReference":"B","rows":[{"rowReference":"R","customerReference":"C","amount":1}],"batch\u0052eference":"B"}`,
	`{"batchReference":"B","rows":[{"rowReference":"R","customerReference":"C","amount":1,"x":{"y":1,"y":2}}]}`,
	`{"batchReference":"B","rows":[{"rowReference":"R","amount":1,"amount":2}],"rows":[]}`,
}

// decodedBatchBody is data as submitBatch has it once decodeJSON has read it (repeated names
// allowed), and whether decodeJSON takes it as it takes every other body (no repeated name); ok
// is false when decodeJSON refuses it either way.
func decodedBatchBody(data []byte) (body jsontext.Value, unrepeated, ok bool) {
	request := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/billing/sites/site_1/batches", bytes.NewReader(data))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	body, err := decodeBatchBody(discard{}, request())
	if err != nil {
		return nil, false, false
	}
	var strict jsontext.Value
	return body, decodeJSONUpTo(discard{}, request(), &strict, bodyRequired, maxBatchBodyBytes) == nil, true
}

// Bounds of what a problem of a batch may quote.
const (
	maxProblemTarget  = len("rows[1000].") + billing.MaxQuoted + len("…")
	maxProblemMessage = 320
)

// FuzzReadBatchRequest checks readBatchRequest against the straightforward quadratic reading it
// replaced (referenceProblems), on every body of at most 1000 rows without a repeated name: the
// same problems in the same order, capped; a long name quoted cut. A body with a repeated name is
// never accepted. Its answer is bounded whatever the body, and a body it
// accepts makes a request that the rules accept and that reads back the same when written again.
func FuzzReadBatchRequest(f *testing.F) {
	for _, seed := range batchSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		body, unrepeated, ok := decodedBatchBody(data)
		if !ok {
			return
		}
		req, got, err := readBatchRequest(context.Background(), body)
		if !unrepeated {
			var malformed *billing.Error
			if len(got) == 0 && (!errors.As(err, &malformed) || malformed.Code != billing.CodeMalformedJSON) {
				t.Fatalf("a body with a repeated name read %+v, %v, %v; want its problems or malformed JSON", req, got, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if len(got) > billing.MaxReportedProblems+1 {
			t.Fatalf("%d problems, want at most %d", len(got), billing.MaxReportedProblems+1)
		}
		for _, e := range got {
			if statusOf[e.Code] != http.StatusBadRequest || e.Message == "" ||
				len(e.Target) > maxProblemTarget || len(e.Message) > maxProblemMessage {
				t.Fatalf("problem %+v: want a 400 with a message, a target of at most %d bytes and a message of at most %d",
					e, maxProblemTarget, maxProblemMessage)
			}
		}

		refReq, ref := referenceProblems(body)
		if len(refReq.Rows) <= billing.MaxBatchRows {
			var want billing.BatchProblems
			want.Add(ref...)
			if cut := quotesLongName(ref); cut {
				if codes(got) != codes(want.Errors()) {
					t.Fatalf("codes =\n%s\nwant\n%s", codes(got), codes(want.Errors()))
				}
			} else if lines(got) != lines(want.Errors()) {
				t.Fatalf("problems =\n%s\nwant, as read before,\n%s", lines(got), lines(want.Errors()))
			}
		}

		if len(got) > 0 {
			return
		}
		if errs := billing.ValidateBatch(req); len(errs) > 0 {
			t.Fatalf("accepted a request the rules refuse: %v", errs)
		}
		again, problems, err := readBatchRequest(context.Background(), encodeBatch(t, req))
		if err != nil || len(problems) > 0 || !reflect.DeepEqual(again, req) {
			t.Fatalf("the request written again reads %+v, %v, %v; want %+v", again, problems, err, req)
		}
	})
}

// quotesLongName reports whether a problem names a member whose name is long enough to be cut.
func quotesLongName(errs billing.Errors) bool {
	for _, e := range errs {
		if e.Code == billing.CodeUnknownField && len(e.Target) > billing.MaxQuoted {
			return true
		}
	}
	return false
}

func lines(errs billing.Errors) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "%s %q: %s\n", strings.TrimPrefix(string(e.Code), "urn:pyng:platform:billing:error:"), e.Target, e.Message)
	}
	return b.String()
}

func codes(errs billing.Errors) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString(string(e.Code) + "\n")
	}
	return b.String()
}

// encodeBatch writes a request as a partner would send it.
func encodeBatch(t *testing.T, req billing.BatchRequest) jsontext.Value {
	type row struct {
		RowReference      string `json:"rowReference"`
		CustomerReference string `json:"customerReference"`
		Amount            int64  `json:"amount"`
	}
	body := struct {
		BatchReference string `json:"batchReference"`
		Rows           []row  `json:"rows"`
	}{BatchReference: req.Reference}
	for _, r := range req.Rows {
		body.Rows = append(body.Rows, row{r.Reference, r.CustomerReference, r.Amount})
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadBatchRequestStopsWhenTheClientGoesAway(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, b := range badbatch.Bodies(maxBatchBodyBytes) {
		body, _, ok := decodedBatchBody(b.JSON)
		if !ok {
			t.Fatalf("%s: decodeJSON refuses it", b.Name)
		}
		if _, problems, err := readBatchRequest(ctx, body); !errors.Is(err, context.Canceled) || problems != nil {
			t.Errorf("%s: read with the client gone gives %d problems and %v, want none and context.Canceled", b.Name, len(problems), err)
		}
	}
}

// recordingWriter records whether anything was written.
type recordingWriter struct {
	header http.Header
	wrote  bool
}

func (w *recordingWriter) Header() http.Header         { return w.header }
func (w *recordingWriter) Write(p []byte) (int, error) { w.wrote = true; return len(p), nil }
func (w *recordingWriter) WriteHeader(int)             { w.wrote = true }

func TestARequestWhoseClientWentAwayIsAnsweredNothing(t *testing.T) {
	a := New(Config{}).a
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		err    error
		answer bool
	}{
		{"the client went away", ctx, fmt.Errorf("read batch: %w", context.Canceled), false},
		{"the client went away during a database call", ctx, fmt.Errorf("get site: %w", ctx.Err()), false},
		{"a failure while the client is there is answered", context.Background(), errors.New("disk full"), true},
		{"a problem while the client is there is answered", context.Background(), billing.Errorf(billing.CodeInvalidField, "limit", "x"), true},
		{"a failure of another cause once the client went away is answered", ctx, errors.New("disk full"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &recordingWriter{header: http.Header{}}
			r := httptest.NewRequest(http.MethodPost, "/billing/sites/site_1/batches", nil).WithContext(tt.ctx)
			a.writeError(w, r, tt.err)
			if w.wrote != tt.answer {
				t.Errorf("answered = %v, want %v", w.wrote, tt.answer)
			}
		})
	}
}
