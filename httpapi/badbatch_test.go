package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/apptest/badbatch"
	"github.com/pyng/receivables/billing"
)

// maxBadBatchAnswer bounds the answer to any refused submission: small enough that refusing bad
// bodies costs the server little to write and the client little to read.
const maxBadBatchAnswer = 32 << 10

func TestHostileBatchBodiesGetSmallAnswers(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		for _, b := range badbatch.Bodies(1 << 20) {
			t.Run(b.Name, func(t *testing.T) {
				r := p.submit(t, b.JSON)
				wantStatus(t, r, http.StatusBadRequest)
				if len(r.Body) > maxBadBatchAnswer {
					t.Errorf("the answer to a body of %d bytes has %d bytes, want at most %d", len(b.JSON), len(r.Body), maxBadBatchAnswer)
				}
				var body errorBody
				r.JSON(t, &body)
				if len(body.Errors) > billing.MaxReportedProblems+1 {
					t.Errorf("%d problems reported, want at most %d and one saying how many more", len(body.Errors), billing.MaxReportedProblems)
				}
			})
		}
		if pg := p.mustListBatches(t, ""); len(pg.Data) != 0 {
			t.Errorf("batches = %v, want none", batchRefs(pg.Data))
		}
	}, apptest.Options{NoJobs: true})
}

func TestBatchProblemLimits(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		invalidRows := func(n int) []any {
			rows := manyRows(n)
			for i := range rows {
				rows[i].(map[string]any)["amount"] = 0
			}
			return rows
		}
		tests := []struct {
			name string
			body any
			want []string // code target: message, of each problem
		}{
			{
				name: "a batch of more than 1000 rows is refused for its size alone, its rows unread",
				body: map[string]any{"batchReference": "", "colour": "red", "rows": invalidRows(billing.MaxBatchRows + 1)},
				want: []string{
					"request:unknown-field colour: colour is not a field of this request.",
					"batch:invalid-field batchReference: batchReference must be 1–64 characters and contain only alphanumeric characters, hyphens, and underscores.",
					"batch:invalid-field rows: rows must hold 1 to 1000 debits; this batch has 1001.",
				},
			},
			{
				name: "the first 100 problems are listed, then how many more there were",
				body: map[string]any{"batchReference": "B-1", "rows": invalidRows(billing.MaxBatchRows)},
				want: append(problemLines(100, func(i int) string {
					return fmt.Sprintf("batch:invalid-field rows[%d].amount: %s", i, billing.AmountMessage)
				}), "batch:invalid-field : 900 more problems are not listed: only the first 100 problems of a batch are. "+
					"Correct these and submit the batch again to see the rest."),
			},
			{
				name: "one problem more than 100 is counted in the singular",
				body: map[string]any{"batchReference": "", "rows": invalidRows(billing.MaxBatchRows)[:100]},
				want: append(append([]string{
					"batch:invalid-field batchReference: batchReference must be 1–64 characters and contain only alphanumeric characters, hyphens, and underscores.",
				}, problemLines(99, func(i int) string {
					return fmt.Sprintf("batch:invalid-field rows[%d].amount: %s", i, billing.AmountMessage)
				})...), "batch:invalid-field : 1 more problem is not listed: only the first 100 problems of a batch are. "+
					"Correct these and submit the batch again to see the rest."),
			},
			{
				name: "a long unknown name is quoted cut, at a character",
				body: `{"batchReference":"B-1","rows":[{"rowReference":"R0","customerReference":"C0","amount":1,"` +
					strings.Repeat("x", 63) + `éééé":1}]}`,
				want: []string{"request:unknown-field rows[0]." + strings.Repeat("x", 63) + "…: rows[0]." + strings.Repeat("x", 63) +
					"… is not a field of this request."},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := p.submit(t, tt.body)
				wantStatus(t, r, http.StatusBadRequest)
				var body errorBody
				r.JSON(t, &body)
				var got []string
				for _, e := range body.Errors {
					got = append(got, strings.TrimPrefix(e.Code, codePrefix)+" "+e.Target+": "+e.DisplayMessage)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("errors =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
				}
			})
		}
	}, apptest.Options{NoJobs: true})
}

func problemLines(n int, line func(i int) string) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = line(i)
	}
	return lines
}
