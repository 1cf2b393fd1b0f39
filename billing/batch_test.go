package billing_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/pyng/receivables/billing"
)

func validBatch(n int) billing.BatchRequest {
	r := billing.BatchRequest{Reference: "BATCH-1"}
	for i := range n {
		r.Rows = append(r.Rows, billing.RowRequest{Reference: fmt.Sprintf("R%d", i), CustomerReference: "C1", Amount: 100})
	}
	return r
}

func TestValidateBatch(t *testing.T) {
	cases := []struct {
		name    string
		change  func(r *billing.BatchRequest)
		targets []string
	}{
		{"a valid batch has no problem", func(*billing.BatchRequest) {}, nil},
		{"1000 rows are allowed", func(r *billing.BatchRequest) { *r = validBatch(1000) }, nil},
		{"the largest amount is allowed", func(r *billing.BatchRequest) { r.Rows[0].Amount = billing.MaxAmount }, nil},
		{"empty batchReference", func(r *billing.BatchRequest) { r.Reference = "" }, []string{"batchReference"}},
		{"batchReference of 65 characters", func(r *billing.BatchRequest) { r.Reference = strings.Repeat("a", 65) }, []string{"batchReference"}},
		{"batchReference with a space", func(r *billing.BatchRequest) { r.Reference = "a b" }, []string{"batchReference"}},
		{"no rows", func(r *billing.BatchRequest) { r.Rows = nil }, []string{"rows"}},
		{"1001 rows", func(r *billing.BatchRequest) { *r = validBatch(1001) }, []string{"rows"}},
		{"duplicate rowReference names the later row", func(r *billing.BatchRequest) { r.Rows[2].Reference = "R0" }, []string{"rows[2].rowReference"}},
		{"invalid rowReference", func(r *billing.BatchRequest) { r.Rows[1].Reference = "R/1" }, []string{"rows[1].rowReference"}},
		{"invalid customerReference", func(r *billing.BatchRequest) { r.Rows[1].CustomerReference = "" }, []string{"rows[1].customerReference"}},
		{"zero amount", func(r *billing.BatchRequest) { r.Rows[0].Amount = 0 }, []string{"rows[0].amount"}},
		{"negative amount", func(r *billing.BatchRequest) { r.Rows[0].Amount = -5 }, []string{"rows[0].amount"}},
		{"amount beyond the maximum", func(r *billing.BatchRequest) { r.Rows[0].Amount = billing.MaxAmount + 1 }, []string{"rows[0].amount"}},
		{"every problem is reported at once", func(r *billing.BatchRequest) {
			r.Reference = ""
			r.Rows[0].Amount = 0
			r.Rows[1].CustomerReference = "é"
			r.Rows[2].Reference = "R1"
		}, []string{"batchReference", "rows[0].amount", "rows[1].customerReference", "rows[2].rowReference"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := validBatch(3)
			tc.change(&r)
			var got []string
			for _, e := range billing.ValidateBatch(r) {
				if e.Code != billing.CodeBatchInvalidField || e.Message == "" {
					t.Errorf("problem %+v: want code %s and a message", e, billing.CodeBatchInvalidField)
				}
				got = append(got, e.Target)
			}
			if strings.Join(got, ",") != strings.Join(tc.targets, ",") {
				t.Errorf("targets = %v, want %v", got, tc.targets)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	a := validBatch(3)
	same := validBatch(3)
	if !bytes.Equal(a.Fingerprint(), same.Fingerprint()) {
		t.Error("equal requests must have equal fingerprints")
	}
	changes := map[string]func(r *billing.BatchRequest){
		"amount":            func(r *billing.BatchRequest) { r.Rows[1].Amount++ },
		"customerReference": func(r *billing.BatchRequest) { r.Rows[1].CustomerReference = "C2" },
		"rowReference":      func(r *billing.BatchRequest) { r.Rows[1].Reference = "X" },
		"row order":         func(r *billing.BatchRequest) { r.Rows[0], r.Rows[1] = r.Rows[1], r.Rows[0] },
		"a row less":        func(r *billing.BatchRequest) { r.Rows = r.Rows[:2] },
		"batchReference":    func(r *billing.BatchRequest) { r.Reference = "BATCH-2" },
		// Fields are length-prefixed, so moving characters between fields changes the fingerprint.
		"boundary between fields": func(r *billing.BatchRequest) {
			r.Rows[0].Reference, r.Rows[0].CustomerReference = "R0C", "1"
		},
	}
	for name, change := range changes {
		b := validBatch(3)
		change(&b)
		if bytes.Equal(a.Fingerprint(), b.Fingerprint()) {
			t.Errorf("changing the %s must change the fingerprint", name)
		}
	}
}

func TestRetryable(t *testing.T) {
	want := map[billing.FailureReason]bool{
		billing.FailureInsufficientFunds: true,
		billing.FailureExpired:           true,
		billing.FailureAccountClosed:     false,
		billing.FailureCustomerNotActive: false,
	}
	for reason, retryable := range want {
		row := billing.Row{State: billing.RowFailed, FailureReason: reason}
		if row.Retryable() != retryable {
			t.Errorf("%s: retryable = %v, want %v", reason, row.Retryable(), retryable)
		}
	}
	linkedAgain := billing.Row{State: billing.RowFailed, FailureReason: billing.FailureCustomerNotActive, CustomerLinkedNow: true}
	if !linkedAgain.Retryable() {
		t.Error("a customerNotActive row whose customer has linked since is retryable")
	}
	closedButLinked := billing.Row{State: billing.RowFailed, FailureReason: billing.FailureAccountClosed, CustomerLinkedNow: true}
	if closedButLinked.Retryable() {
		t.Error("an accountClosed row is not retryable, linked or not")
	}
	if (billing.Row{State: billing.RowSucceeded}).Retryable() {
		t.Error("a succeeded row is not retryable")
	}
}

func TestValidateBatchReportsTheFirstProblemsAndHowManyMore(t *testing.T) {
	invalidAmounts := func(n int) billing.BatchRequest {
		r := validBatch(n)
		for i := range r.Rows {
			r.Rows[i].Amount = 0
		}
		return r
	}
	more := func(n string) string {
		return n + " not listed: only the first 100 problems of a batch are. Correct these and submit the batch again to see the rest."
	}
	cases := []struct {
		name  string
		r     billing.BatchRequest
		count int    // problems listed, the last one saying how many more when there are
		last  string // the last problem's message
	}{
		{"100 problems are all listed", invalidAmounts(100), 100, billing.AmountMessage},
		{"of 101 problems, 100 are listed and one more counted", invalidAmounts(101), 101, more("1 more problem is")},
		{"of 1000 problems, 100 are listed and 900 more counted", invalidAmounts(1000), 101, more("900 more problems are")},
		{"the rows of a batch of too many are not checked one by one", func() billing.BatchRequest {
			r := invalidAmounts(5000)
			r.Reference = ""
			return r
		}(), 2, "rows must hold 1 to 1000 debits; this batch has 5000."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := billing.ValidateBatch(tc.r)
			if len(errs) != tc.count || errs[len(errs)-1].Message != tc.last {
				t.Fatalf("%d problems, the last %+v; want %d, the last saying %q", len(errs), errs[len(errs)-1], tc.count, tc.last)
			}
			for _, e := range errs {
				if e.Code != billing.CodeBatchInvalidField {
					t.Errorf("problem %+v: want code %s", e, billing.CodeBatchInvalidField)
				}
			}
			if tc.count > billing.MaxReportedProblems && errs[len(errs)-1].Target != "" {
				t.Errorf("the count of the problems not listed has target %q, want none", errs[len(errs)-1].Target)
			}
		})
	}
}
