package httpapi_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/becs/aba"
)

// The bodies of the batch endpoints, decoded loosely: the validating client has checked them
// exactly.
type receipt struct {
	BatchReference string `json:"batchReference"`
	State          string `json:"state"`
	RowCount       int    `json:"rowCount"`
	TotalAmount    int64  `json:"totalAmount"`
	SubmittedAt    int64  `json:"submittedAt"`
}

type stateTotal struct {
	Count  int   `json:"count"`
	Amount int64 `json:"amount"`
}

type batchRow struct {
	RowReference      string `json:"rowReference"`
	CustomerReference string `json:"customerReference"`
	Amount            int64  `json:"amount"`
	State             string `json:"state"`
	FailureReason     string `json:"failureReason"`
	Retryable         *bool  `json:"retryable"`
	OutcomeAt         int64  `json:"outcomeAt"`
}

func (r batchRow) String() string {
	return fmt.Sprintf("{%s %s %d %s failureReason=%q retryable=%v outcomeAt=%d}",
		r.RowReference, r.CustomerReference, r.Amount, r.State, r.FailureReason, deref(r.Retryable), r.OutcomeAt)
}

type batch struct {
	BatchReference string                `json:"batchReference"`
	State          string                `json:"state"`
	RowCount       int                   `json:"rowCount"`
	TotalAmount    int64                 `json:"totalAmount"`
	SubmittedAt    int64                 `json:"submittedAt"`
	CompletedAt    int64                 `json:"completedAt"`
	Summary        map[string]stateTotal `json:"summary"`
	Rows           []batchRow            `json:"rows"`
}

type batchPage struct {
	Data       []batch `json:"data"`
	NextCursor string  `json:"nextCursor"`
}

// debit is a row of a submission; Amount is any JSON value, so that tests can send wrong ones.
type debit struct {
	RowReference      string `json:"rowReference"`
	CustomerReference string `json:"customerReference"`
	Amount            any    `json:"amount"`
}

func batchRequest(ref string, rows ...debit) map[string]any {
	return map[string]any{"batchReference": ref, "rows": rows}
}

func (p partner) submit(t testing.TB, body any) *apptest.Response {
	t.Helper()
	return p.do(t, http.MethodPost, "/batches", body)
}

// mustSubmit submits a new batch and returns its receipt.
func (p partner) mustSubmit(t testing.TB, body any) receipt {
	t.Helper()
	r := p.submit(t, body)
	wantStatus(t, r, http.StatusAccepted)
	if got := r.Header.Get("Idempotent-Replayed"); got != "" {
		t.Fatalf("Idempotent-Replayed = %q on a new batch", got)
	}
	return dataOf[receipt](t, r)
}

func (p partner) getBatch(t testing.TB, ref, query string, header ...string) *apptest.Response {
	t.Helper()
	return p.do(t, http.MethodGet, "/batches/"+ref+query, nil, header...)
}

func (p partner) mustGetBatch(t testing.TB, ref, query string) batch {
	t.Helper()
	r := p.getBatch(t, ref, query)
	wantStatus(t, r, http.StatusOK)
	return dataOf[batch](t, r)
}

func (p partner) listBatches(t testing.TB, query string) *apptest.Response {
	t.Helper()
	return p.do(t, http.MethodGet, "/batches"+query, nil)
}

func (p partner) mustListBatches(t testing.TB, query string) batchPage {
	t.Helper()
	r := p.listBatches(t, query)
	wantStatus(t, r, http.StatusOK)
	var pg batchPage
	r.JSON(t, &pg)
	return pg
}

// link invites each customer and signs it up in the sandbox.
func (p partner) link(t testing.TB, refs ...string) {
	t.Helper()
	for _, ref := range refs {
		p.mustInvite(t, ref)
		wantStatus(t, p.post(t, "/sandbox/customers/"+ref+"/signup"), http.StatusOK)
	}
}

// awaitCompleted polls the batch until the job workers have completed it.
func (p partner) awaitCompleted(t testing.TB, ref string) batch {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b := p.mustGetBatch(t, ref, "")
		if b.State == "completed" {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch %s is still %s after 30s: %+v", ref, b.State, b.Summary)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// execute runs the batch's execution step directly, as the job would (for servers without jobs).
func (p partner) execute(t testing.TB, ref string) (done bool) {
	t.Helper()
	ctx := context.Background()
	b, err := p.s.Store.GetBatch(ctx, p.site, ref)
	if err != nil {
		t.Fatalf("get batch %s: %v", ref, err)
	}
	done, _, err = p.s.Service.ExecuteBatch(ctx, b.ID)
	if err != nil {
		t.Fatalf("execute batch %s: %v", ref, err)
	}
	return done
}

// refresh gives the partner a new token, after the clock moved past the old one's lifetime.
func (p *partner) refresh(t testing.TB) { p.token = p.s.Token(t, p.p) }

func rowRefs(rows []batchRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.RowReference
	}
	return out
}

func batchRefs(batches []batch) []string {
	out := make([]string, len(batches))
	for i, b := range batches {
		out[i] = b.BatchReference
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// validBatch is a valid submission of two rows, as a map that a test can spoil.
func validBatch() map[string]any {
	return map[string]any{
		"batchReference": "B-1",
		"rows": []any{
			map[string]any{"rowReference": "R0", "customerReference": "C0", "amount": 100},
			map[string]any{"rowReference": "R1", "customerReference": "C1", "amount": 200},
		},
	}
}

func row(b map[string]any, i int) map[string]any { return b["rows"].([]any)[i].(map[string]any) }

func manyRows(n int) []any {
	rows := make([]any, n)
	for i := range rows {
		rows[i] = map[string]any{"rowReference": fmt.Sprintf("R%d", i), "customerReference": "C", "amount": 100}
	}
	return rows
}

func TestSubmitBatchValidation(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		const invalid, unknown = "batch:invalid-field", "request:unknown-field"
		tests := []struct {
			name         string
			spoil        func(b map[string]any)
			code, target string
		}{
			{"a fractional amount is rejected", func(b map[string]any) { row(b, 1)["amount"] = 1.5 }, invalid, "rows[1].amount"},
			{"an integral amount written with a fraction is rejected", func(b map[string]any) { row(b, 1)["amount"] = json.RawMessage("100.0") }, invalid, "rows[1].amount"},
			{"an amount with an exponent is rejected", func(b map[string]any) { row(b, 1)["amount"] = json.RawMessage("1e2") }, invalid, "rows[1].amount"},
			{"an amount in a string is rejected", func(b map[string]any) { row(b, 1)["amount"] = "100" }, invalid, "rows[1].amount"},
			{"a boolean amount is rejected", func(b map[string]any) { row(b, 1)["amount"] = true }, invalid, "rows[1].amount"},
			{"a null amount is rejected", func(b map[string]any) { row(b, 1)["amount"] = nil }, invalid, "rows[1].amount"},
			{"a missing amount is rejected", func(b map[string]any) { delete(row(b, 1), "amount") }, invalid, "rows[1].amount"},
			{"a negative amount is rejected", func(b map[string]any) { row(b, 1)["amount"] = -100 }, invalid, "rows[1].amount"},
			{"a zero amount is rejected", func(b map[string]any) { row(b, 1)["amount"] = 0 }, invalid, "rows[1].amount"},
			{"an amount over the maximum is rejected", func(b map[string]any) { row(b, 1)["amount"] = billing.MaxAmount + 1 }, invalid, "rows[1].amount"},
			{"an amount beyond 64 bits is rejected", func(b map[string]any) { row(b, 1)["amount"] = json.RawMessage("99999999999999999999999") }, invalid, "rows[1].amount"},
			{"an empty batchReference is rejected", func(b map[string]any) { b["batchReference"] = "" }, invalid, "batchReference"},
			{"a batchReference of 65 characters is rejected", func(b map[string]any) { b["batchReference"] = strings.Repeat("b", 65) }, invalid, "batchReference"},
			{"a batchReference with a space is rejected", func(b map[string]any) { b["batchReference"] = "B 1" }, invalid, "batchReference"},
			{"a missing batchReference is rejected", func(b map[string]any) { delete(b, "batchReference") }, invalid, "batchReference"},
			{"a numeric batchReference is rejected", func(b map[string]any) { b["batchReference"] = 1 }, invalid, "batchReference"},
			{"missing rows are rejected", func(b map[string]any) { delete(b, "rows") }, invalid, "rows"},
			{"null rows are rejected", func(b map[string]any) { b["rows"] = nil }, invalid, "rows"},
			{"empty rows are rejected", func(b map[string]any) { b["rows"] = []any{} }, invalid, "rows"},
			{"1001 rows are rejected", func(b map[string]any) { b["rows"] = manyRows(billing.MaxBatchRows + 1) }, invalid, "rows"},
			{"rows that are an object are rejected", func(b map[string]any) { b["rows"] = map[string]any{} }, invalid, "rows"},
			{"rows that are a string are rejected", func(b map[string]any) { b["rows"] = "R0,C0,100" }, invalid, "rows"},
			{"a row that is not an object is rejected", func(b map[string]any) { b["rows"].([]any)[1] = 5 }, invalid, "rows[1]"},
			{"a duplicate rowReference is rejected on the later row", func(b map[string]any) { row(b, 1)["rowReference"] = "R0" }, invalid, "rows[1].rowReference"},
			{"an invalid rowReference is rejected", func(b map[string]any) { row(b, 0)["rowReference"] = "R/0" }, invalid, "rows[0].rowReference"},
			{"a missing rowReference is rejected", func(b map[string]any) { delete(row(b, 0), "rowReference") }, invalid, "rows[0].rowReference"},
			{"an invalid customerReference is rejected", func(b map[string]any) { row(b, 0)["customerReference"] = "ACME/001" }, invalid, "rows[0].customerReference"},
			{"a customerReference of 65 characters is rejected", func(b map[string]any) { row(b, 0)["customerReference"] = strings.Repeat("c", 65) }, invalid, "rows[0].customerReference"},
			{"a numeric customerReference is rejected", func(b map[string]any) { row(b, 0)["customerReference"] = 7 }, invalid, "rows[0].customerReference"},
			{"an unknown member of the batch is rejected by name", func(b map[string]any) { b["currency"] = "AUD" }, unknown, "currency"},
			{"an unknown member of a row is rejected by its path", func(b map[string]any) { row(b, 1)["colour"] = "red" }, unknown, "rows[1].colour"},
			{"member names are case-sensitive", func(b map[string]any) { row(b, 0)["Amount"] = 100 }, unknown, "rows[0].Amount"},
		}
		t.Run("each problem alone", func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					b := validBatch()
					tt.spoil(b)
					e := wantError(t, p.submit(t, b), http.StatusBadRequest, tt.code, tt.target)
					if strings.HasSuffix(tt.target, ".amount") && e.DisplayMessage != billing.AmountMessage {
						t.Errorf("message = %q, want %q", e.DisplayMessage, billing.AmountMessage)
					}
				})
			}
		})

		t.Run("every problem is reported at once", func(t *testing.T) {
			r := p.submit(t, `{"batchReference": "", "currency": "AUD", "rows": [
				{"rowReference": "R0", "customerReference": "C0", "amount": 1.5},
				{"rowReference": "R0", "customerReference": "C1", "amount": 0, "colour": "red"},
				7,
				{"rowReference": "R3", "customerReference": 5, "amount": "x"},
				{"rowReference": "R4", "customerReference": "C4", "amount": 400}]}`)
			wantStatus(t, r, http.StatusBadRequest)
			var body errorBody
			r.JSON(t, &body)
			var got []string
			for _, e := range body.Errors {
				got = append(got, strings.TrimPrefix(e.Code, codePrefix)+" "+e.Target)
			}
			want := []string{
				"request:unknown-field currency",
				"batch:invalid-field batchReference",
				"batch:invalid-field rows[0].amount",
				"request:unknown-field rows[1].colour",
				"batch:invalid-field rows[1].rowReference",
				"batch:invalid-field rows[1].amount",
				"batch:invalid-field rows[2]",
				"batch:invalid-field rows[3].customerReference",
				"batch:invalid-field rows[3].amount",
			}
			if !slices.Equal(got, want) {
				t.Errorf("errors =\n%s\nwant, the batch's first, then row by row,\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})

		// A member the request does not take, named twice in its object, is one problem: told
		// once, as a member named once is.
		t.Run("an unknown member named twice is reported once", func(t *testing.T) {
			r := p.submit(t, `{"batchReference": "B-1", "currency": "AUD", "currency": "NZD", "rows[0].x": 1, "rows[0].x": 2,
				"rows": [{"rowReference": "R0", "customerReference": "C0", "amount": 100, "colour": "red", "colour": "blue"}]}`)
			wantStatus(t, r, http.StatusBadRequest)
			var body errorBody
			r.JSON(t, &body)
			var got []string
			for _, e := range body.Errors {
				got = append(got, strings.TrimPrefix(e.Code, codePrefix)+" "+e.Target)
			}
			want := []string{"request:unknown-field currency", "request:unknown-field rows[0].x", "request:unknown-field rows[0].colour"}
			if !slices.Equal(got, want) {
				t.Errorf("errors =\n%s\nwant each once,\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})

		t.Run("the body rules of every endpoint apply", func(t *testing.T) {
			for _, tt := range []struct {
				name, contentType, body string
				status                  int
				code, target            string
			}{
				{"no Content-Type is 415", "-", `{"batchReference":"B-1"}`, 415, "request:unsupported-media-type", "Content-Type"},
				{"text/csv is 415", "text/csv", "rowReference,customerReference,amount\nR0,C0,100", 415, "request:unsupported-media-type", "Content-Type"},
				{"malformed JSON is 400", "", `{"batchReference":"B-1","rows":[`, 400, "request:malformed-json", ""},
				{"an array is 400", "", `[{"batchReference":"B-1"}]`, 400, "request:malformed-json", ""},
				{"a repeated member in a row is 400", "", `{"batchReference":"B-1","rows":[{"rowReference":"R0","customerReference":"C0","amount":1,"amount":2}]}`, 400, "request:malformed-json", ""},
				{"a repeated rowReference in a row is 400", "", `{"batchReference":"B-1","rows":[{"rowReference":"R0","customerReference":"C0","rowReference":"R1","amount":1}]}`, 400, "request:malformed-json", ""},
				{"a repeated member of the batch is 400", "", `{"batchReference":"B-1","rows":[{"rowReference":"R0","customerReference":"C0","amount":1}],"batchReference":"B-2"}`, 400, "request:malformed-json", ""},
				{"repeated rows of the batch are 400", "", `{"rows":[],"batchReference":"B-1","rows":[{"rowReference":"R0","customerReference":"C0","amount":1}]}`, 400, "request:malformed-json", ""},
				// A body with other problems is answered with them.
				{"a repeated member beside a missing one is its problem", "", `{"batchReference":"B-1","rows":[{"rowReference":"R0","amount":1,"amount":2}]}`, 400, "batch:invalid-field", "rows[0].customerReference"},
				{"a body over 1 MiB is 413", "", `{"batchReference":"` + strings.Repeat("b", 1<<20) + `"}`, 413, "request:body-too-large", ""},
			} {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					ct := cmp.Or(tt.contentType, "application/json")
					wantError(t, p.do(t, http.MethodPost, "/batches", tt.body, "Content-Type", ct), tt.status, tt.code, tt.target)
				})
			}
		})

		t.Run("nothing is stored for a refused submission", func(t *testing.T) {
			if pg := p.mustListBatches(t, ""); len(pg.Data) != 0 {
				t.Errorf("batches = %v, want none", batchRefs(pg.Data))
			}
			wantError(t, p.getBatch(t, "B-1", ""), http.StatusNotFound, "batch:not-found", "batchReference")
		})

		t.Run("the limits themselves are accepted", func(t *testing.T) {
			ref := strings.Repeat("B", 64)
			rows := manyRows(billing.MaxBatchRows)
			rows[0] = map[string]any{"rowReference": strings.Repeat("r", 64), "customerReference": strings.Repeat("c", 64), "amount": billing.MaxAmount}
			rc := p.mustSubmit(t, map[string]any{"batchReference": ref, "rows": rows})
			if rc.RowCount != billing.MaxBatchRows || rc.TotalAmount != billing.MaxAmount+100*(billing.MaxBatchRows-1) {
				t.Errorf("receipt = %+v", rc)
			}
		})

		t.Run("unknown and unlinked customers are not validation errors", func(t *testing.T) {
			p.mustInvite(t, "INVITED")
			p.mustSubmit(t, batchRequest("B-CUSTOMERS", debit{"R0", "NOBODY", 100}, debit{"R1", "INVITED", 100}))
		})
	})
}

func TestSubmitBatch(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		t.Run("202 with the receipt and the batch's Location", func(t *testing.T) {
			t.Parallel()
			p := newPartner(t, s)
			r := p.submit(t, batchRequest("B-1", debit{"R0", "C0", 100}, debit{"R1", "C1", 250}))
			wantStatus(t, r, http.StatusAccepted)
			rc := dataOf[receipt](t, r)
			want := receipt{BatchReference: "B-1", State: "accepted", RowCount: 2, TotalAmount: 350, SubmittedAt: s.Clock.Now().UnixMilli()}
			if rc != want {
				t.Errorf("receipt = %+v, want %+v", rc, want)
			}
			loc := r.Header.Get("Location")
			if want := "/billing/sites/" + p.site + "/batches/B-1"; loc != want {
				t.Errorf("Location = %q, want %q", loc, want)
			}
			got := s.Do(t, apptest.Request{Method: http.MethodGet, Path: loc, Token: p.token})
			wantStatus(t, got, http.StatusOK)
		})

		t.Run("the same body again replays the receipt with Idempotent-Replayed", func(t *testing.T) {
			t.Parallel()
			p := newPartner(t, s)
			body := batchRequest("B-1", debit{"R0", "C0", 100})
			first := p.mustSubmit(t, body)
			r := p.submit(t, body)
			wantStatus(t, r, http.StatusAccepted)
			if got := r.Header.Get("Idempotent-Replayed"); got != "true" {
				t.Errorf("Idempotent-Replayed = %q, want true", got)
			}
			if again := dataOf[receipt](t, r); again != first {
				t.Errorf("replayed receipt = %+v, want the original %+v", again, first)
			}
			if pg := p.mustListBatches(t, ""); len(pg.Data) != 1 {
				t.Errorf("batches = %v, want one", batchRefs(pg.Data))
			}
		})

		t.Run("whitespace and member order do not make a body different", func(t *testing.T) {
			t.Parallel()
			p := newPartner(t, s)
			first := p.mustSubmit(t, `{"batchReference":"B-1","rows":[{"rowReference":"R0","customerReference":"C0","amount":100}]}`)
			r := p.submit(t, "{\n  \"rows\": [ { \"amount\": 100, \"customerReference\": \"C0\",\n \"rowReference\": \"R0\" } ],\n  \"batchReference\": \"B-1\"\n}\n")
			wantStatus(t, r, http.StatusAccepted)
			if r.Header.Get("Idempotent-Replayed") != "true" || dataOf[receipt](t, r) != first {
				t.Errorf("answer = %s (Idempotent-Replayed %q), want a replay of %+v", r.Body, r.Header.Get("Idempotent-Replayed"), first)
			}
		})

		conflicts := []struct {
			name string
			rows []debit
		}{
			{"another amount", []debit{{"R0", "C0", 101}}},
			{"another customer", []debit{{"R0", "C9", 100}}},
			{"another rowReference", []debit{{"R9", "C0", 100}}},
			{"another row", []debit{{"R0", "C0", 100}, {"R1", "C0", 100}}},
		}
		for _, tt := range conflicts {
			t.Run("the reference with a different body is 409: "+tt.name, func(t *testing.T) {
				t.Parallel()
				p := newPartner(t, s)
				first := p.mustSubmit(t, batchRequest("B-1", debit{"R0", "C0", 100}))
				e := wantError(t, p.submit(t, batchRequest("B-1", tt.rows...)), http.StatusConflict, "batch:reference-conflict", "batchReference")
				if !strings.Contains(e.DisplayMessage, "already taken by a different batch") {
					t.Errorf("message %q does not say the reference is taken by a different batch", e.DisplayMessage)
				}
				if b := p.mustGetBatch(t, "B-1", ""); b.TotalAmount != first.TotalAmount || len(b.Rows) != 1 {
					t.Errorf("the batch changed: %+v", b)
				}
			})
		}

		t.Run("of ten concurrent identical submissions one creates the batch and nine replay it", func(t *testing.T) {
			t.Parallel()
			p := newPartner(t, s)
			body := batchRequest("B-RACE", debit{"R0", "C0", 100}, debit{"R1", "C1", 200})
			var wg sync.WaitGroup
			answers := make(chan *apptest.Response, 10)
			for range 10 {
				wg.Go(func() { answers <- p.submit(t, body) })
			}
			wg.Wait()
			close(answers)
			fresh, receipts := 0, map[receipt]bool{}
			for r := range answers {
				wantStatus(t, r, http.StatusAccepted)
				if r.Header.Get("Idempotent-Replayed") == "" {
					fresh++
				}
				receipts[dataOf[receipt](t, r)] = true
			}
			if fresh != 1 || len(receipts) != 1 {
				t.Errorf("%d answers without Idempotent-Replayed and %d distinct receipts, want 1 and 1", fresh, len(receipts))
			}
			if pg := p.mustListBatches(t, ""); len(pg.Data) != 1 {
				t.Errorf("batches = %v, want one", batchRefs(pg.Data))
			}
		})

		t.Run("the same reference on another site of the organisation is independent", func(t *testing.T) {
			t.Parallel()
			p := newPartner(t, s)
			site, err := s.Service.CreateSite(context.Background(), p.p.Organisation.ID, "Second site")
			if err != nil {
				t.Fatal(err)
			}
			other := partner{s: s, p: p.p, token: p.token, site: site.ID}
			p.mustSubmit(t, batchRequest("B-1", debit{"R0", "C0", 100}))
			other.mustSubmit(t, batchRequest("B-1", debit{"R0", "C0", 999}))
			if b := p.mustGetBatch(t, "B-1", ""); b.TotalAmount != 100 {
				t.Errorf("the first site's batch has total %d, want 100", b.TotalAmount)
			}
		})
	})
}

func TestBatchReferenceRetention(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		ctx := context.Background()
		p := mainPartner(t, s)
		p.link(t, "C0")
		old := p.mustSubmit(t, batchRequest("B-1", debit{"R0", "C0", 100}))
		p.awaitCompleted(t, "B-1")

		s.Clock.Advance(billing.BatchRetention - time.Millisecond)
		p.refresh(t)
		t.Run("just before 90 days the reference still conflicts and replays", func(t *testing.T) {
			wantError(t, p.submit(t, batchRequest("B-1", debit{"R0", "C0", 200})), http.StatusConflict, "batch:reference-conflict", "batchReference")
			r := p.submit(t, batchRequest("B-1", debit{"R0", "C0", 100}))
			wantStatus(t, r, http.StatusAccepted)
			if r.Header.Get("Idempotent-Replayed") != "true" || dataOf[receipt](t, r) != old {
				t.Errorf("answer %s, want a replay of %+v", r.Body, old)
			}
		})

		s.Clock.Advance(time.Millisecond)
		p.refresh(t)
		t.Run("after 90 days the batch is gone, before the hourly purge removes it too", func(t *testing.T) {
			wantError(t, p.getBatch(t, "B-1", ""), http.StatusNotFound, "batch:not-found", "batchReference")
			if pg := p.mustListBatches(t, ""); len(pg.Data) != 0 {
				t.Errorf("batches = %v, want none: the list holds what GET finds", batchRefs(pg.Data))
			}
		})
		if _, err := s.Service.PurgeBatches(ctx); err != nil {
			t.Fatal(err)
		}
		t.Run("after 90 days the batch is gone", func(t *testing.T) {
			wantError(t, p.getBatch(t, "B-1", ""), http.StatusNotFound, "batch:not-found", "batchReference")
			if pg := p.mustListBatches(t, ""); len(pg.Data) != 0 {
				t.Errorf("batches = %v, want none", batchRefs(pg.Data))
			}
		})
		t.Run("after 90 days the reference may be used for a new batch", func(t *testing.T) {
			fresh := p.mustSubmit(t, batchRequest("B-1", debit{"R0", "C0", 200}))
			if fresh.TotalAmount != 200 || fresh.SubmittedAt != s.Clock.Now().UnixMilli() {
				t.Errorf("receipt = %+v, want the new batch", fresh)
			}
		})
	})
}

func TestBatchExecution(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		p.link(t, "LINKED")
		p.mustInvite(t, "INVITED")
		rc := p.mustSubmit(t, batchRequest("B-1",
			debit{"R-OK", "LINKED", 10000},
			debit{"R-NSF", "LINKED", 1051},
			debit{"R-CLOSED", "LINKED", 1052},
			debit{"R-UNKNOWN", "NOBODY", 500},
			debit{"R-INVITED", "INVITED", 700},
		))
		b := p.awaitCompleted(t, "B-1")
		now := s.Clock.Now().UnixMilli()

		t.Run("every row reaches its outcome", func(t *testing.T) {
			want := []batchRow{
				{"R-OK", "LINKED", 10000, "succeeded", "", nil, now},
				{"R-NSF", "LINKED", 1051, "failed", "insufficientFunds", ptr(true), now},
				{"R-CLOSED", "LINKED", 1052, "failed", "accountClosed", ptr(false), now},
				{"R-UNKNOWN", "NOBODY", 500, "failed", "customerNotActive", ptr(false), now},
				{"R-INVITED", "INVITED", 700, "failed", "customerNotActive", ptr(false), now},
			}
			if len(b.Rows) != len(want) {
				t.Fatalf("rows = %+v", b.Rows)
			}
			for i, got := range b.Rows {
				w := want[i]
				if got.RowReference != w.RowReference || got.CustomerReference != w.CustomerReference || got.Amount != w.Amount ||
					got.State != w.State || got.FailureReason != w.FailureReason || !equalPtr(got.Retryable, w.Retryable) || got.OutcomeAt != w.OutcomeAt {
					t.Errorf("rows[%d] = %v, want %v", i, got, w)
				}
			}
		})

		t.Run("the completed batch has its summary and completedAt", func(t *testing.T) {
			wantSummary := map[string]stateTotal{
				"pending": {}, "inProgress": {}, "succeeded": {1, 10000}, "failed": {4, 1051 + 1052 + 500 + 700},
			}
			if fmt.Sprint(b.Summary) != fmt.Sprint(wantSummary) {
				t.Errorf("summary = %v, want %v", b.Summary, wantSummary)
			}
			if b.CompletedAt != now || b.SubmittedAt != rc.SubmittedAt || b.RowCount != 5 || b.TotalAmount != rc.TotalAmount {
				t.Errorf("batch = %+v, want completedAt %d and the receipt's figures %+v", b, now, rc)
			}
		})

		t.Run("a replay after completion answers the receipt of acceptance", func(t *testing.T) {
			r := p.submit(t, batchRequest("B-1",
				debit{"R-OK", "LINKED", 10000}, debit{"R-NSF", "LINKED", 1051}, debit{"R-CLOSED", "LINKED", 1052},
				debit{"R-UNKNOWN", "NOBODY", 500}, debit{"R-INVITED", "INVITED", 700}))
			wantStatus(t, r, http.StatusAccepted)
			if got := dataOf[receipt](t, r); got != rc || r.Header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("replay = %+v, want %+v with Idempotent-Replayed", got, rc)
			}
		})

		t.Run("rowState selects the rows in a state, the summary still counts all", func(t *testing.T) {
			for state, want := range map[string][]string{
				"failed":     {"R-NSF", "R-CLOSED", "R-UNKNOWN", "R-INVITED"},
				"succeeded":  {"R-OK"},
				"pending":    {},
				"inProgress": {},
			} {
				got := p.mustGetBatch(t, "B-1", "?rowState="+state)
				if !slices.Equal(rowRefs(got.Rows), want) || fmt.Sprint(got.Summary) != fmt.Sprint(b.Summary) {
					t.Errorf("rowState=%s gives rows %v and summary %v, want %v and %v", state, rowRefs(got.Rows), got.Summary, want, b.Summary)
				}
			}
			for _, query := range []string{"?rowState=done", "?rowState=Failed", "?rowState=", "?rowState=failed&rowState=succeeded"} {
				wantError(t, p.getBatch(t, "B-1", query), http.StatusBadRequest, "request:invalid-field", "rowState")
			}
		})

		t.Run("text/csv gives the rows as CSV, the same as the JSON", func(t *testing.T) {
			r := p.getBatch(t, "B-1", "", "Accept", "text/csv")
			wantStatus(t, r, http.StatusOK)
			if ct := r.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if cd := r.Header.Get("Content-Disposition"); cd != `attachment; filename="B-1.csv"` {
				t.Errorf("Content-Disposition = %q", cd)
			}
			if !uuidV4.MatchString(r.Header.Get("Pyng-Trace-Id")) {
				t.Errorf("Pyng-Trace-Id = %q", r.Header.Get("Pyng-Trace-Id"))
			}
			records, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
			if err != nil {
				t.Fatalf("CSV: %v\n%s", err, r.Body)
			}
			want := [][]string{{"rowReference", "customerReference", "amount", "state", "failureReason", "retryable", "outcomeAt",
				"fileId", "returnedAt", "returnReason"}}
			for _, row := range b.Rows {
				retryable := ""
				if row.Retryable != nil {
					retryable = strconv.FormatBool(*row.Retryable)
				}
				// The sandbox's rows go in no file and are never returned: the BECS columns are empty.
				want = append(want, []string{row.RowReference, row.CustomerReference, strconv.FormatInt(row.Amount, 10),
					row.State, row.FailureReason, retryable, strconv.FormatInt(row.OutcomeAt, 10), "", "", ""})
			}
			if fmt.Sprint(records) != fmt.Sprint(want) {
				t.Errorf("CSV =\n%v\nwant\n%v", records, want)
			}
			filtered := p.getBatch(t, "B-1", "?rowState=succeeded", "Accept", "text/csv")
			if lines := strings.Split(strings.TrimSpace(string(filtered.Body)), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "R-OK,") {
				t.Errorf("CSV of rowState=succeeded =\n%s", filtered.Body)
			}
		})

		t.Run("the Accept header chooses between JSON and CSV", func(t *testing.T) {
			for accept, want := range map[string]string{
				"-":                                 "application/json;charset=UTF-8",
				"application/json":                  "application/json;charset=UTF-8",
				"*/*":                               "application/json;charset=UTF-8",
				"application/*":                     "application/json;charset=UTF-8",
				"text/csv;q=0.5, application/json":  "application/json;charset=UTF-8",
				"text/csv, application/json":        "application/json;charset=UTF-8",
				"text/csv, application/json;q=0.9":  "text/csv; charset=utf-8",
				"text/*":                            "text/csv; charset=utf-8",
				"text/html, text/csv;q=0.1":         "text/csv; charset=utf-8",
				"application/json;q=0, text/csv":    "text/csv; charset=utf-8",
				"TEXT/CSV":                          "text/csv; charset=utf-8",
				"text/csv; charset=utf-8, */*;q=.5": "text/csv; charset=utf-8",
			} {
				r := p.getBatch(t, "B-1", "", "Accept", accept)
				wantStatus(t, r, http.StatusOK)
				if got := r.Header.Get("Content-Type"); got != want {
					t.Errorf("Accept %q gives %q, want %q", accept, got, want)
				}
				if got := r.Header.Get("Vary"); got != "Accept" {
					t.Errorf("Accept %q: Vary = %q, want Accept", accept, got)
				}
			}
			for _, accept := range []string{"text/html", "application/xml, text/plain", "application/json;q=0, text/csv;q=0"} {
				wantError(t, p.getBatch(t, "B-1", "", "Accept", accept), http.StatusNotAcceptable, "request:not-acceptable", "Accept")
			}
		})
	})
}

func equalPtr[T comparable](a, b *T) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestBatchExecutionSteps(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		ctx := context.Background()
		p := mainPartner(t, s)
		p.link(t, "A", "B")

		t.Run("a customer revoked after submission fails customerNotActive", func(t *testing.T) {
			p.mustSubmit(t, batchRequest("B-REVOKED", debit{"R0", "B", 100}))
			wantStatus(t, p.post(t, "/customers/B/revoke"), http.StatusOK)
			if !p.execute(t, "B-REVOKED") {
				t.Error("the batch did not complete: its one row needs no settlement")
			}
			b := p.mustGetBatch(t, "B-REVOKED", "")
			if r := b.Rows[0]; r.State != "failed" || r.FailureReason != "customerNotActive" || !equalPtr(r.Retryable, ptr(false)) {
				t.Errorf("row = %+v, want failed customerNotActive, not retryable", r)
			}
			if b.State != "completed" {
				t.Errorf("batch is %s, want completed", b.State)
			}
			p.link(t, "B")
			if r := p.mustGetBatch(t, "B-REVOKED", "").Rows[0]; r.FailureReason != "customerNotActive" || !equalPtr(r.Retryable, ptr(true)) {
				t.Errorf("once the customer links again, row = %+v, want customerNotActive and retryable", r)
			}
		})

		t.Run("rows are inProgress until the rail settles them", func(t *testing.T) {
			rc := p.mustSubmit(t, batchRequest("B-SLOW", debit{"R0", "A", 10000}, debit{"R1", "A", 2051}))
			b := p.mustGetBatch(t, "B-SLOW", "")
			if b.State != "accepted" || b.Summary["pending"] != (stateTotal{2, 12051}) {
				t.Errorf("before execution: %s %v, want accepted with 2 pending rows", b.State, b.Summary)
			}
			if p.execute(t, "B-SLOW") {
				t.Fatal("the batch completed before its debits settled")
			}
			b = p.mustGetBatch(t, "B-SLOW", "")
			if b.State != "inProgress" || b.Summary["inProgress"] != (stateTotal{2, 12051}) || b.CompletedAt != 0 {
				t.Errorf("after one step: %+v, want inProgress with 2 rows inProgress", b)
			}
			for _, r := range b.Rows {
				if r.State != "inProgress" || r.OutcomeAt != 0 || r.FailureReason != "" || r.Retryable != nil {
					t.Errorf("row = %+v, want inProgress without outcome", r)
				}
			}
			s.Clock.Advance(time.Hour - time.Millisecond)
			if p.execute(t, "B-SLOW") {
				t.Fatal("the batch completed before the settlement delay")
			}
			s.Clock.Advance(time.Millisecond)
			if !p.execute(t, "B-SLOW") {
				t.Fatal("the batch did not complete once its debits settled")
			}
			p.refresh(t)
			b = p.mustGetBatch(t, "B-SLOW", "")
			settled := rc.SubmittedAt + time.Hour.Milliseconds()
			if b.State != "completed" || b.CompletedAt != s.Clock.Now().UnixMilli() ||
				b.Summary["succeeded"] != (stateTotal{1, 10000}) || b.Summary["failed"] != (stateTotal{1, 2051}) {
				t.Errorf("after settlement: %+v", b)
			}
			for _, r := range b.Rows {
				if r.OutcomeAt != settled {
					t.Errorf("row %s outcomeAt = %d, want the settlement time %d", r.RowReference, r.OutcomeAt, settled)
				}
			}
		})

		t.Run("every open row fails expired at the 24-hour deadline, but for those the rail settled", func(t *testing.T) {
			p.mustSubmit(t, batchRequest("B-STARTED", debit{"R0", "A", 100}, debit{"R1", "NOBODY", 200}))
			p.execute(t, "B-STARTED") // R0 inProgress, R1 failed customerNotActive
			// No step runs again before the deadline, though the sandbox settles R0 an hour after
			// it was sent: what expires the batch asks the rail first, and R0 succeeds.
			p.mustSubmit(t, batchRequest("B-WAITING", debit{"R0", "A", 300}, debit{"R1", "A", 400}))
			s.Clock.Advance(billing.RowDeadline - time.Millisecond)
			if n, err := s.Service.ExpireOverdue(ctx); err != nil || n != 0 {
				t.Fatalf("before the deadline ExpireOverdue = %d, %v; want 0 rows", n, err)
			}
			s.Clock.Advance(time.Millisecond)
			deadline := s.Clock.Now().UnixMilli()
			if n, err := s.Service.ExpireOverdue(ctx); err != nil || n != 2 {
				t.Fatalf("at the deadline ExpireOverdue = %d, %v; want 2 rows (B-WAITING's)", n, err)
			}
			p.refresh(t)
			started := p.mustGetBatch(t, "B-STARTED", "")
			waiting := p.mustGetBatch(t, "B-WAITING", "")
			for _, b := range []batch{started, waiting} {
				if b.State != "completed" || b.CompletedAt != deadline {
					t.Errorf("batch %s is %s (completedAt %d), want completed at the deadline %d", b.BatchReference, b.State, b.CompletedAt, deadline)
				}
			}
			for _, r := range waiting.Rows {
				if r.State != "failed" || r.FailureReason != "expired" || !equalPtr(r.Retryable, ptr(true)) || r.OutcomeAt != deadline {
					t.Errorf("row = %+v, want failed expired, retryable, at %d", r, deadline)
				}
			}
			if r := started.Rows[0]; r.State != "succeeded" || r.OutcomeAt >= deadline {
				t.Errorf("row = %+v, want succeeded when the sandbox settled it, before the deadline %d", r, deadline)
			}
			if r := started.Rows[1]; r.FailureReason != "customerNotActive" {
				t.Errorf("a row already failed changed: %+v", r)
			}
			if !p.execute(t, "B-WAITING") {
				t.Error("executing an expired batch did not report it done")
			}
			if b := p.mustGetBatch(t, "B-WAITING", ""); fmt.Sprint(b.Rows) != fmt.Sprint(waiting.Rows) {
				t.Errorf("executing after expiry changed the rows: %+v", b.Rows)
			}
		})

		t.Run("the sandbox deadline simulator fails the open rows of one batch at once", func(t *testing.T) {
			p.refresh(t)
			p.mustSubmit(t, batchRequest("B-SIMULATED", debit{"R0", "A", 500}, debit{"R1", "NOBODY", 600}, debit{"R2", "A", 700}))
			p.mustSubmit(t, batchRequest("B-UNTOUCHED", debit{"R0", "A", 800}))
			p.execute(t, "B-SIMULATED") // R0 and R2 inProgress, settling in an hour; R1 failed customerNotActive
			r := p.post(t, "/sandbox/batches/B-SIMULATED/deadline")
			wantStatus(t, r, http.StatusOK)
			var got struct{ Data batch }
			r.JSON(t, &got)
			now := s.Clock.Now().UnixMilli()
			// The debits the sandbox took settle now, as they would have by the real deadline: told
			// their outcome, never expired.
			if got.Data.State != "completed" || got.Data.CompletedAt != now || got.Data.Summary["succeeded"] != (stateTotal{2, 1200}) {
				t.Errorf("batch = %+v, want completed now with the debits taken succeeded", got.Data)
			}
			for _, r := range []batchRow{got.Data.Rows[0], got.Data.Rows[2]} {
				if r.State != "succeeded" || r.OutcomeAt != now {
					t.Errorf("row = %+v, want succeeded now", r)
				}
			}
			if r := got.Data.Rows[1]; r.FailureReason != "customerNotActive" {
				t.Errorf("a row already failed changed: %+v", r)
			}
			// Those it did not take expire.
			p.mustSubmit(t, batchRequest("B-NOT-STARTED", debit{"R0", "A", 900}, debit{"R1", "A", 1000}))
			notStarted := dataOf[batch](t, p.post(t, "/sandbox/batches/B-NOT-STARTED/deadline"))
			if notStarted.State != "completed" || notStarted.Summary["failed"] != (stateTotal{2, 1900}) {
				t.Errorf("batch = %+v, want completed now with every row failed", notStarted)
			}
			for _, r := range notStarted.Rows {
				if r.FailureReason != "expired" || !equalPtr(r.Retryable, ptr(true)) || r.OutcomeAt != now {
					t.Errorf("row = %+v, want failed expired, retryable, now", r)
				}
			}
			if b := p.mustGetBatch(t, "B-UNTOUCHED", ""); b.State != "accepted" {
				t.Errorf("another batch is %s, want it untouched (accepted)", b.State)
			}
			again := p.post(t, "/sandbox/batches/B-SIMULATED/deadline")
			wantStatus(t, again, http.StatusOK)
			if string(again.Body[:bytes.Index(again.Body, []byte(`"traceId"`))]) != string(r.Body[:bytes.Index(r.Body, []byte(`"traceId"`))]) {
				t.Errorf("simulating the deadline of a completed batch changed it:\n%s\n%s", r.Body, again.Body)
			}
			wantError(t, p.post(t, "/sandbox/batches/B-MISSING/deadline"), http.StatusNotFound, "batch:not-found", "batchReference")
			other := newPartner(t, s)
			wantError(t, other.post(t, "/sandbox/batches/B-UNTOUCHED/deadline"), http.StatusNotFound, "batch:not-found", "batchReference")
		})

		t.Run("the sandbox deadline simulator records what the sandbox settled before expiring", func(t *testing.T) {
			// As at the real deadline (settleBeforeExpiring): a debit the sandbox settled is told
			// its outcome, never expired, or a partner would retry a row its customer paid.
			p.refresh(t)
			p.mustSubmit(t, batchRequest("B-SETTLED", debit{"R0", "A", 500}, debit{"R1", "A", 1051}))
			p.execute(t, "B-SETTLED") // both inProgress, settling in an hour
			s.Clock.Advance(2 * time.Hour)
			p.refresh(t)
			r := p.post(t, "/sandbox/batches/B-SETTLED/deadline")
			wantStatus(t, r, http.StatusOK)
			got := dataOf[batch](t, r)
			if got.State != "completed" || got.Summary["succeeded"] != (stateTotal{1, 500}) || got.Summary["failed"] != (stateTotal{1, 1051}) {
				t.Errorf("batch = %+v, want R0 succeeded and R1 failed insufficientFunds", got)
			}
			if r := got.Rows[0]; r.State != "succeeded" {
				t.Errorf("row = %v, want succeeded: the sandbox settled its debit", r)
			}
			if r := got.Rows[1]; r.FailureReason != "insufficientFunds" || !equalPtr(r.Retryable, ptr(true)) {
				t.Errorf("row = %v, want failed insufficientFunds, retryable", r)
			}
		})
	}, apptest.Options{NoJobs: true, SettlementDelay: time.Hour})
}

func TestBatchOfAnotherSiteOrOrganisationLooksMissing(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		site, err := s.Service.CreateSite(context.Background(), s.Organisation.ID, "Second site")
		if err != nil {
			t.Fatal(err)
		}
		sibling := partner{s: s, p: p.p, token: p.token, site: site.ID}
		sibling.mustSubmit(t, batchRequest("B-SIBLING", debit{"R0", "C0", 100}))
		other := newPartner(t, s)
		other.mustSubmit(t, batchRequest("B-OTHER", debit{"R0", "C0", 100}))

		missing := wantError(t, p.getBatch(t, "B-MISSING", ""), http.StatusNotFound, "batch:not-found", "batchReference")
		for name, r := range map[string]*apptest.Response{
			"a batch of another site of the organisation": p.getBatch(t, "B-SIBLING", ""),
			"a batch of another organisation":             p.getBatch(t, "B-OTHER", ""),
			"an invalid batchReference":                   p.getBatch(t, "B%20SPACE", ""),
			"a missing batch as CSV":                      p.getBatch(t, "B-MISSING", "", "Accept", "text/csv"),
		} {
			if e := wantError(t, r, http.StatusNotFound, "batch:not-found", "batchReference"); e != missing {
				t.Errorf("%s answers %+v, a missing batch %+v", name, e, missing)
			}
		}
		theirs := partner{s: s, token: p.token, site: other.site}
		wantError(t, theirs.getBatch(t, "B-OTHER", ""), http.StatusNotFound, "site:not-found", "siteId")
		if pg := p.mustListBatches(t, ""); len(pg.Data) != 0 {
			t.Errorf("the site lists %v, want none of the other sites' batches", batchRefs(pg.Data))
		}
	})
}

func TestListBatches(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		t.Run("an empty site lists nothing", func(t *testing.T) {
			r := p.listBatches(t, "")
			wantStatus(t, r, http.StatusOK)
			if string(r.Body[:10]) != `{"data":[]` {
				t.Errorf("body = %s, want data to be an empty array", r.Body)
			}
		})
		var want []string
		for i := range 5 {
			ref := fmt.Sprintf("B%d", i)
			p.mustSubmit(t, batchRequest(ref, debit{"R0", "C0", int64(100 + i)}))
			want = slices.Insert(want, 0, ref)
			s.Clock.Advance(time.Millisecond)
		}

		t.Run("batches are listed newest first, without rows", func(t *testing.T) {
			pg := p.mustListBatches(t, "")
			if !slices.Equal(batchRefs(pg.Data), want) || pg.NextCursor != "" {
				t.Errorf("list = %v (next %q), want %v", batchRefs(pg.Data), pg.NextCursor, want)
			}
			if b := pg.Data[0]; b.State != "accepted" || b.RowCount != 1 || b.TotalAmount != 104 || b.Rows != nil || b.Summary != nil {
				t.Errorf("newest = %+v", b)
			}
		})

		t.Run("paging with limit 2 through 5 batches, submitting more between pages, skips and repeats none", func(t *testing.T) {
			var seen []string
			cursor := ""
			for page := 1; ; page++ {
				query := "?limit=2"
				if cursor != "" {
					query += "&cursor=" + cursor
				}
				pg := p.mustListBatches(t, query)
				if len(pg.Data) > 2 {
					t.Fatalf("page %d has %d batches, limit 2", page, len(pg.Data))
				}
				seen = append(seen, batchRefs(pg.Data)...)
				p.mustSubmit(t, batchRequest(fmt.Sprintf("NEW%d", page), debit{"R0", "C0", 100}))
				if pg.NextCursor == "" {
					break
				}
				cursor = pg.NextCursor
			}
			if !slices.Equal(seen, want) {
				t.Errorf("pages gave %v, want %v", seen, want)
			}
		})

		t.Run("limit defaults to 50", func(t *testing.T) {
			for i := range 50 {
				p.mustSubmit(t, batchRequest(fmt.Sprintf("MORE%d", i), debit{"R0", "C0", 100}))
			}
			if pg := p.mustListBatches(t, ""); len(pg.Data) != 50 || pg.NextCursor == "" {
				t.Errorf("the first page has %d batches (next %q), want 50 and a nextCursor", len(pg.Data), pg.NextCursor)
			}
		})

		for _, tt := range []struct{ query, target string }{
			{"?limit=0", "limit"},
			{"?limit=101", "limit"},
			{"?limit=ten", "limit"},
			{"?limit=1&limit=2", "limit"},
			{"?cursor=!!!", "cursor"},
			{"?cursor=" + cursorOf("B0"), "cursor"},
			{"?cursor=" + cursorOf("x.bat_1"), "cursor"},
			{"?cursor=" + cursorOf("1.a b"), "cursor"},
			{"?cursor=", "cursor"},
		} {
			t.Run("invalid "+tt.target+" is 400 invalid-field: "+tt.query, func(t *testing.T) {
				wantError(t, p.listBatches(t, tt.query), http.StatusBadRequest, "request:invalid-field", tt.target)
			})
		}
		t.Run("an invalid cursor for a missing site is the site's 404", func(t *testing.T) {
			missing := partner{s: s, token: p.token, site: "site_doesnotexist"}
			wantError(t, missing.listBatches(t, "?cursor=!!!"), http.StatusNotFound, "site:not-found", "siteId")
		})
	}, apptest.Options{NoJobs: true})
}

func TestThousandRowBatch(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		customers := make([]string, 10)
		for i := range customers {
			customers[i] = fmt.Sprintf("C%d", i)
		}
		p.link(t, customers...)
		rows := make([]debit, billing.MaxBatchRows)
		want := map[string]stateTotal{"pending": {}, "inProgress": {}}
		var total int64
		for i := range rows {
			amount := int64(1000 + i) // amounts ending in 51 and 52 cents: 10 of each
			rows[i] = debit{fmt.Sprintf("R%04d", i), customers[i%len(customers)], amount}
			total += amount
			state := "succeeded"
			if amount%100 == 51 || amount%100 == 52 {
				state = "failed"
			}
			st := want[state]
			st.Count++
			st.Amount += amount
			want[state] = st
		}
		rc := p.mustSubmit(t, batchRequest("B-1000", rows...))
		if rc.RowCount != 1000 || rc.TotalAmount != total {
			t.Errorf("receipt = %+v, want 1000 rows totalling %d", rc, total)
		}
		b := p.awaitCompleted(t, "B-1000")
		if fmt.Sprint(b.Summary) != fmt.Sprint(want) || want["failed"].Count != 20 {
			t.Errorf("summary = %v, want %v", b.Summary, want)
		}
		if len(b.Rows) != 1000 {
			t.Fatalf("%d rows, want 1000", len(b.Rows))
		}
		for i, r := range b.Rows {
			if r.RowReference != rows[i].RowReference || (r.State != "succeeded" && r.State != "failed") || r.OutcomeAt == 0 {
				t.Fatalf("rows[%d] = %+v, want %s terminal", i, r, rows[i].RowReference)
			}
		}
	})
}

// Outside the sandbox, a site still on the sandbox rail collects nothing: its batches are refused
// (409 site:not-collecting) and nothing is stored, rather than accepted and told to have
// succeeded. Once Pyng puts the site on a rail that moves money, they are accepted; moved back,
// refused again, whatever the site cache holds, but a batch accepted before is still replayed to
// a retry of its submission: its partner, whose answer may have been lost, must not read that
// nothing was stored and submit the debits again under another reference.
// Outside the sandbox a site on the sandbox rail takes no invitation either, as it takes no batch:
// its customers would agree to a Direct Debit Request that names no user ID. Nothing is stored;
// once the site is on the BECS rail, the invitation is minted.
func TestOutsideTheSandboxASiteOnTheSandboxRailTakesNoInvitation(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		wantError(t, p.invite(t, "ACME-001"), http.StatusConflict, "site:not-collecting", "siteId")
		wantError(t, p.get(t, "ACME-001"), http.StatusNotFound, "customer-link:not-found", "customerReference")
		putOnBECS(t, s, p.site)
		if inv := p.mustInvite(t, "ACME-001"); inv.SignupURL == "" {
			t.Errorf("the invitation on the BECS rail = %+v, want a signupUrl", inv)
		}
	}, apptest.Options{NoSandbox: true})
}

func TestOutsideTheSandboxASiteOnTheSandboxRailTakesNoBatch(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		ctx := context.Background()
		p := newPartner(t, s)
		wantError(t, p.submit(t, batchRequest("B1", debit{"R1", "C1", 100})), http.StatusConflict, "site:not-collecting", "siteId")
		wantError(t, p.do(t, http.MethodGet, "/batches/B1", nil), http.StatusNotFound, "batch:not-found", "batchReference")

		putOnBECS(t, s, p.site)
		wantStatus(t, p.submit(t, batchRequest("B1", debit{"R1", "C1", 100})), http.StatusAccepted)

		if _, err := s.Service.SetSiteRail(ctx, p.site, rail.Sandbox); err != nil {
			t.Fatal(err)
		}
		// Its message does not say the site is not set up "yet": it was, and was taken off the rail.
		if e := wantError(t, p.submit(t, batchRequest("B2", debit{"R1", "C1", 100})), http.StatusConflict, "site:not-collecting", "siteId"); strings.Contains(e.DisplayMessage, "yet") {
			t.Errorf("a site taken off its rail is told %q", e.DisplayMessage)
		}

		again := p.submit(t, batchRequest("B1", debit{"R1", "C1", 100}))
		wantStatus(t, again, http.StatusAccepted)
		if got := again.Header.Get("Idempotent-Replayed"); got != "true" {
			t.Errorf("the accepted batch submitted again: Idempotent-Replayed = %q, want true", got)
		}
		wantError(t, p.submit(t, batchRequest("B1", debit{"R1", "C1", 200})), http.StatusConflict, "batch:reference-conflict", "batchReference")
	}, apptest.Options{NoSandbox: true})
}

// A customer who linked under the site's sandbox terms, which name no BECS user ID, is not debited
// once an operator puts the site on the BECS rail: the row fails customerNotActive rather than
// reaching the bank under a debit user the customer never authorised, and turns retryable only
// once the customer signs up again, while the row of a customer who signed up under the BECS terms
// goes in a file. A debit queued for the cut-off is withdrawn,
// its row failing so, by the batch's next step after the operator changes the site's user ID.
func TestABECSDebitIsMadeOnlyUnderADirectDebitRequestNamingTheSitesUserID(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		ctx := context.Background()
		p := newPartner(t, s)
		p.link(t, "ON-SANDBOX")
		r := putOnBECS(t, s, p.site)
		p.link(t, "UNDER-123456")
		// The job workers may execute the batches too: an execution is safe to repeat.
		execute := func(ref string) {
			t.Helper()
			b, _, _, err := s.Service.Batch(ctx, p.p.Site, ref, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Service.ExecuteBatch(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
		}
		p.mustSubmit(t, batchRequest("B1", debit{"R1", "ON-SANDBOX", 100}, debit{"R2", "UNDER-123456", 200}))
		execute("B1")
		files, err := r.Cut(ctx, becs.Calendar{})
		if err != nil || len(files) != 1 || files[0].Rows != 1 || files[0].Total != 200 {
			t.Fatalf("Cut = %+v, %v; want one file of R2's debit alone", files, err)
		}
		execute("B1")
		answer := p.getBatch(t, "B1", "")
		wantStatus(t, answer, http.StatusOK)
		type rowInFile struct {
			batchRow
			FileID string `json:"fileId"`
		}
		rows := dataOf[struct{ Rows []rowInFile }](t, answer).Rows
		if rows[0].State != "failed" || rows[0].FailureReason != "customerNotActive" || rows[0].FileID != "" {
			t.Errorf("R1, of a customer linked under the sandbox's terms, is %v in file %q; want failed customerNotActive", rows[0].batchRow, rows[0].FileID)
		}
		if rows[1].State != "inProgress" || rows[1].FileID != files[0].ID {
			t.Errorf("R2, of a customer who signed up under the BECS terms, is %v in file %q; want inProgress in %s", rows[1].batchRow, rows[1].FileID, files[0].ID)
		}
		// R1 is retryable once its customer signs up again, not before: linked as they are, a
		// batch would fail it the same way.
		if rows[0].Retryable == nil || *rows[0].Retryable {
			t.Errorf("R1 is %v; want not retryable while its customer has not signed up under the BECS terms", rows[0].batchRow)
		}
		wantStatus(t, p.post(t, "/sandbox/customers/ON-SANDBOX/customer-revocation"), http.StatusOK)
		p.link(t, "ON-SANDBOX")
		if row := p.mustGetBatch(t, "B1", "").Rows[0]; row.Retryable == nil || !*row.Retryable {
			t.Errorf("R1 once its customer signed up again is %v; want retryable", row)
		}

		p.mustSubmit(t, batchRequest("B2", debit{"R1", "UNDER-123456", 300}))
		execute("B2") // queued for the cut-off
		setDebitUser(t, r, p.site, "654321")
		execute("B2")
		if row := p.mustGetBatch(t, "B2", "").Rows[0]; row.State != "failed" || row.FailureReason != "customerNotActive" {
			t.Errorf("a debit queued under user ID 123456, the site's now 654321: its row is %v; want failed customerNotActive", row)
		}
		if files, err := r.Cut(ctx, becs.Calendar{}); err != nil || len(files) != 0 {
			t.Errorf("Cut after the user ID changed = %+v, %v; want no file", files, err)
		}
	})
}

// putOnBECS puts the site on the BECS rail, with a debit user's details, and returns the rail.
func putOnBECS(t *testing.T, s *apptest.Server, siteID string) *becs.Rail {
	t.Helper()
	r, err := becs.Open(context.Background(), s.Store.Conn(), s.Clock)
	if err != nil {
		t.Fatal(err)
	}
	setDebitUser(t, r, siteID, "123456")
	apptest.OnRail(t, s.Service, siteID, rail.BECS)
	return r
}

// setDebitUser sets the site's BECS debit user, of user ID userID, as set-rail does.
func setDebitUser(t *testing.T, r *becs.Rail, siteID, userID string) {
	t.Helper()
	if _, err := r.SetUser(context.Background(), siteID, aba.DebitUser{UserID: userID, UserName: "ACME", Institution: "CBA",
		Description: "DEBITS", TraceBSB: "062000", TraceAccount: "1234567", Remitter: "ACME"}); err != nil {
		t.Fatal(err)
	}
}
