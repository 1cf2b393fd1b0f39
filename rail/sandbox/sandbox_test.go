package sandbox_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail/sandbox"
)

func TestOutcomeByMagicAmount(t *testing.T) {
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
		if got := sandbox.Outcome(tc.amount); got != tc.want {
			t.Errorf("Outcome(%d) = %q, want %q", tc.amount, got, tc.want)
		}
	}
}

func TestSubmitRecordsEachDebitOnceAndAnswersItsFirstOutcome(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := clocktest.At(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
			rail := &sandbox.Rail{Ledger: openLedger(t, engine), Clock: clock, SettlementDelay: time.Minute}
			customer := billing.Customer{BSB: "062000", AccountNumber: "12345678"}
			debits := []billing.Debit{{Key: "row_1", Amount: 100, Customer: customer}, {Key: "row_2", Amount: 4551, Customer: customer}}

			first, err := rail.Submit(ctx, debits)
			if err != nil {
				t.Fatal(err)
			}
			settlesAt := clock.Now().Add(time.Minute)
			want := []billing.DebitOutcome{{Key: "row_1", SettlesAt: settlesAt}, {Key: "row_2", SettlesAt: settlesAt}}
			if !reflect.DeepEqual(first, want) {
				t.Fatalf("first Submit = %+v, want unsettled until %v", first, settlesAt)
			}

			// A job run again after a crash submits the same rows later: nothing is debited again
			// and the first submission's outcomes stand.
			clock.Set(settlesAt)
			again, err := rail.Submit(ctx, append(debits, billing.Debit{Key: "row_3", Amount: 4552, Customer: customer}))
			if err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(again, func(a, b billing.DebitOutcome) int { return strings.Compare(a.Key, b.Key) })
			want = []billing.DebitOutcome{
				{Key: "row_1", Settled: true, SettledAt: settlesAt, SettlesAt: settlesAt},
				{Key: "row_2", Settled: true, Failure: billing.FailureInsufficientFunds, SettledAt: settlesAt, SettlesAt: settlesAt},
				{Key: "row_3", SettlesAt: settlesAt.Add(time.Minute)},
			}
			if !reflect.DeepEqual(again, want) {
				t.Fatalf("second Submit = %+v\nwant %+v", again, want)
			}
		})
	}
}
