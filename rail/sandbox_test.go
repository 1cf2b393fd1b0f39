package rail_test

import (
	"testing"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/rail"
)

func TestSandboxOutcomeByMagicAmount(t *testing.T) {
	cases := []struct {
		amount int64
		want   billing.FailureReason
	}{
		{1, ""},
		{100, ""},
		{50, ""},
		{51, billing.FailureInsufficientFunds},
		{12351, billing.FailureInsufficientFunds},
		{52, billing.FailureAccountClosed},
		{999952, billing.FailureAccountClosed},
		{53, ""},
		{151, billing.FailureInsufficientFunds},
		{5100, ""},
	}
	for _, tc := range cases {
		if got := rail.Outcome(tc.amount); got != tc.want {
			t.Errorf("Outcome(%d) = %q, want %q", tc.amount, got, tc.want)
		}
	}
}
