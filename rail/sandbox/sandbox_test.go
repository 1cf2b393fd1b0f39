package sandbox_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/rail/sandbox"
)

func TestOutcomeByMagicAmount(t *testing.T) {
	cases := []struct {
		amount int64
		want   rail.Failure
	}{
		{1, ""},
		{100, ""},
		{50, ""},
		{51, rail.FailureInsufficientFunds},
		{12351, rail.FailureInsufficientFunds},
		{52, rail.FailureAccountClosed},
		{999952, rail.FailureAccountClosed},
		{53, ""},
		{151, rail.FailureInsufficientFunds},
		{5100, ""},
	}
	for _, tc := range cases {
		if got := sandbox.Outcome(tc.amount); got != tc.want {
			t.Errorf("Outcome(%d) = %q, want %q", tc.amount, got, tc.want)
		}
	}
}

func TestSubmitRecordsEachDebitOnceAndAnswersItsFirstOutcome(t *testing.T) {
	onEachEngine(t, func(t *testing.T, sandboxRail *sandbox.Rail, clock *clocktest.Clock) {
		ctx := context.Background()
		account := rail.Account{BSB: "062000", Number: "12345678"}
		debits := []rail.Debit{{Key: "row_1", Amount: 100, Account: account}, {Key: "row_2", Amount: 4551, Account: account}}

		first, err := sandboxRail.Submit(ctx, debits)
		if err != nil {
			t.Fatal(err)
		}
		settlesAt := clock.Now().Add(time.Minute)
		want := []rail.Outcome{{Key: "row_1", SettlesAt: settlesAt}, {Key: "row_2", SettlesAt: settlesAt}}
		if !reflect.DeepEqual(first, want) {
			t.Fatalf("first Submit = %+v, want unsettled until %v", first, settlesAt)
		}

		// A job run again after a crash submits the same rows later: nothing is debited again
		// and the first submission's outcomes stand.
		clock.Set(settlesAt)
		again, err := sandboxRail.Submit(ctx, append(debits, rail.Debit{Key: "row_3", Amount: 4552, Account: account}))
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(again, func(a, b rail.Outcome) int { return strings.Compare(a.Key, b.Key) })
		want = []rail.Outcome{
			{Key: "row_1", Settled: true, SettledAt: settlesAt, SettlesAt: settlesAt},
			{Key: "row_2", Settled: true, Failure: rail.FailureInsufficientFunds, SettledAt: settlesAt, SettlesAt: settlesAt},
			{Key: "row_3", SettlesAt: settlesAt.Add(time.Minute)},
		}
		if !reflect.DeepEqual(again, want) {
			t.Fatalf("second Submit = %+v\nwant %+v", again, want)
		}
	})
}

// A debit that would settle within sandbox.DeadlineMargin of its row's deadline, or after it, is
// not taken: the row is told expired, and no rail may move money for it; it is answered queued
// until the deadline, so that its batch waits until then rather than asking again and again. One
// that settles before is taken.
func TestADebitThatWouldSettleAfterItsDeadlineIsNotTaken(t *testing.T) {
	onEachEngine(t, func(t *testing.T, sandboxRail *sandbox.Rail, clock *clocktest.Clock) {
		ctx := context.Background()
		ledger := sandboxRail.Ledger
		account := rail.Account{BSB: "062000", Number: "12345678"}
		last := clock.Now().Add(time.Minute + sandbox.DeadlineMargin) // the last deadline too early
		outcomes, err := sandboxRail.Submit(ctx, []rail.Debit{
			{Key: "row_late", Amount: 100, Account: account, Deadline: last},
			{Key: "row_in_time", Amount: 100, Account: account, Deadline: last.Add(time.Millisecond)},
		})
		late := rail.Outcome{Key: "row_late", Queued: true, SettlesAt: last}
		if err != nil || len(outcomes) != 2 || outcomes[0].Key != "row_in_time" || outcomes[1] != late {
			t.Fatalf("Submit = %+v, %v; want the debit in time taken, the late one answered queued until its deadline", outcomes, err)
		}
		entries, err := ledger.Entries(ctx, []string{"row_late", "row_in_time"})
		if err != nil || len(entries) != 1 || entries[0].Key != "row_in_time" {
			t.Errorf("the ledger holds %+v, %v; want the debit in time only", entries, err)
		}
	})
}

// A key withdrawn before the sandbox took it is recorded so, debiting nothing: a submission of it
// afterwards is answered withdrawn (customerNotActive) and not taken. A debit taken before its
// withdrawal is reported as taken, settling at its time: the sandbox sends a debit as it takes it.
// The deadline simulated settles a taken debit at once, and expires a key not taken.
func TestAWithdrawnDebitIsNeverTaken(t *testing.T) {
	onEachEngine(t, func(t *testing.T, sandboxRail *sandbox.Rail, clock *clocktest.Clock) {
		ctx := context.Background()
		ledger := sandboxRail.Ledger
		debit := func(key string) rail.Debit {
			return rail.Debit{Key: key, Amount: 100, Account: rail.Account{BSB: "062000", Number: "12345678"}, Deadline: clock.Now().Add(24 * time.Hour)}
		}
		now := clock.Now()
		withdrawn := rail.Outcome{Key: "row_withdrawn", Settled: true, Failure: rail.FailureWithdrawn, SettledAt: now, SettlesAt: now}
		taken := rail.Outcome{Key: "row_taken", SettlesAt: now.Add(time.Minute)}
		if got, err := sandboxRail.Submit(ctx, []rail.Debit{debit("row_taken")}); err != nil || !reflect.DeepEqual(got, []rail.Outcome{taken}) {
			t.Fatalf("Submit = %+v, %v; want %+v", got, err, taken)
		}
		got, err := sandboxRail.Withdraw(ctx, []string{"row_withdrawn", "row_taken"})
		slices.SortFunc(got, func(a, b rail.Outcome) int { return strings.Compare(b.Key, a.Key) })
		if err != nil || !reflect.DeepEqual(got, []rail.Outcome{withdrawn, taken}) {
			t.Errorf("Withdraw = %+v, %v; want %+v and %+v", got, err, withdrawn, taken)
		}
		clock.Advance(time.Second)
		if got, err := sandboxRail.Submit(ctx, []rail.Debit{debit("row_withdrawn")}); err != nil || !reflect.DeepEqual(got, []rail.Outcome{withdrawn}) {
			t.Errorf("Submit of the withdrawn key = %+v, %v; want %+v", got, err, withdrawn)
		}
		entries, err := ledger.Entries(ctx, []string{"row_withdrawn"})
		if err != nil || len(entries) != 1 || entries[0].Amount != 0 || entries[0].BSB != "" || entries[0].WithdrawnAt != now {
			t.Errorf("the ledger holds %+v, %v; want the key withdrawn, with no amount nor account", entries, err)
		}

		got, err = sandboxRail.SimulateDeadline(ctx, []string{"row_taken", "row_not_taken"})
		slices.SortFunc(got, func(a, b rail.Outcome) int { return strings.Compare(a.Key, b.Key) })
		settledNow := rail.Outcome{Key: "row_taken", Settled: true, SettledAt: clock.Now(), SettlesAt: clock.Now()}
		notTaken := rail.Outcome{Key: "row_not_taken", Settled: true, Failure: rail.FailureExpired, SettledAt: clock.Now(), SettlesAt: clock.Now()}
		if err != nil || !reflect.DeepEqual(got, []rail.Outcome{notTaken, settledNow}) {
			t.Errorf("SimulateDeadline = %+v, %v; want %+v and %+v", got, err, notTaken, settledNow)
		}
	})
}

// onEachEngine runs test on each engine, in parallel, with a sandbox rail of a fresh ledger whose
// debits settle a minute after they are taken, and its clock.
func onEachEngine(t *testing.T, test func(t *testing.T, sandboxRail *sandbox.Rail, clock *clocktest.Clock)) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			clock := clocktest.At(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
			test(t, &sandbox.Rail{Ledger: openLedger(t, engine), Clock: clock, SettlementDelay: time.Minute}, clock)
		})
	}
}
