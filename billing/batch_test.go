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
