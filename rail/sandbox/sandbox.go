// Package sandbox is the sandbox payment rail: it debits nobody, keeps a durable ledger of what it
// was asked to debit, and decides outcomes from magic amounts so partners can test every path. Its
// ledger lives in the server's database, in tables and migrations of its own.
package sandbox

import (
	"context"
	"fmt"
	"time"

	"github.com/pyng/receivables/rail"
)

// Clock tells the time; the server passes the service's clock so that tests can move it.
type Clock interface {
	Now() time.Time
}

// Rail is the sandbox rail.
type Rail struct {
	Ledger          *Ledger
	Clock           Clock
	SettlementDelay time.Duration
}

var (
	_ rail.Rail          = (*Rail)(nil)
	_ rail.Withdrawer    = (*Rail)(nil)
	_ rail.AccountEraser = (*Rail)(nil)
)

// Outcome is the sandbox's decision for an amount in cents: an amount ending in 51 cents fails
// with insufficientFunds, one ending in 52 cents with accountClosed, and every other succeeds.
func Outcome(amount int64) rail.Failure {
	switch amount % 100 {
	case 51:
		return rail.FailureInsufficientFunds
	case 52:
		return rail.FailureAccountClosed
	}
	return ""
}

// DeadlineMargin is how long before its row's deadline a debit must settle for the sandbox to take
// it: what expires the row at the deadline asks the sandbox first, and a debit taken by a
// submission that read the clock this long before could be recorded after that question (a
// stalled step), its row told expired while the ledger shows it debited.
const DeadlineMargin = time.Minute

// Submit records the debits in the ledger, each once, and returns their outcomes as recorded. A
// debit that would settle after DeadlineMargin before its row's deadline is not taken, as a real
// rail must not move money for a row the partner is told expired: it is answered queued until its
// deadline, when its row expires.
func (r *Rail) Submit(ctx context.Context, debits []rail.Debit) ([]rail.Outcome, error) {
	now := r.Clock.Now()
	var taken []rail.Debit
	var refused []rail.Outcome
	for _, d := range debits {
		if !d.Deadline.IsZero() && !now.Add(r.SettlementDelay+DeadlineMargin).Before(d.Deadline) {
			refused = append(refused, rail.Outcome{Key: d.Key, Queued: true, SettlesAt: d.Deadline})
			continue
		}
		taken = append(taken, d)
	}
	if len(taken) == 0 {
		return refused, nil
	}
	debits = taken
	entries := make([]Entry, len(debits))
	keys := make([]string, len(debits))
	for i, d := range debits {
		entries[i] = Entry{
			Key:           d.Key,
			Amount:        d.Amount,
			BSB:           d.Account.BSB,
			AccountNumber: d.Account.Number,
			Failure:       Outcome(d.Amount),
			SubmittedAt:   now,
			SettlesAt:     now.Add(r.SettlementDelay),
		}
		keys[i] = d.Key
	}
	recorded, err := r.Ledger.Record(ctx, entries)
	if err != nil {
		return nil, fmt.Errorf("sandbox ledger: %w", err)
	}
	if recorded < len(entries) {
		// Some were submitted before (a job run again after a crash): their first record stands.
		outcomes, err := r.Outcomes(ctx, keys)
		return append(outcomes, refused...), err
	}
	return append(r.outcomes(entries), refused...), nil
}

// Outcomes reports each recorded debit, settled once its settlement time has come.
func (r *Rail) Outcomes(ctx context.Context, keys []string) ([]rail.Outcome, error) {
	entries, err := r.Ledger.Entries(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("sandbox ledger: %w", err)
	}
	return r.outcomes(entries), nil
}

func (r *Rail) outcomes(entries []Entry) []rail.Outcome {
	now := r.Clock.Now()
	outcomes := make([]rail.Outcome, len(entries))
	for i, e := range entries {
		o := rail.Outcome{Key: e.Key, SettlesAt: e.SettlesAt}
		if !e.WithdrawnAt.IsZero() {
			o.Settled, o.Failure, o.SettledAt = true, e.WithdrawnAs, e.WithdrawnAt
		} else if !now.Before(e.SettlesAt) {
			o.Settled, o.Failure, o.SettledAt = true, e.Failure, e.SettlesAt
		}
		outcomes[i] = o
	}
	return outcomes
}

// Withdraw records withdrawn the keys the sandbox has not taken, so that it takes no submission of
// them afterwards (one by a step of their batch that read the customer linked before the
// revocation, or one after the customer linked anew), and reports every key as it stands: one
// withdrawn settled with rail.FailureWithdrawn (rail.FailureExpired once its deadline was
// simulated), one taken as before. The sandbox sends a debit as
// it takes it, so it withdraws nothing it took: that settles at its time.
func (r *Rail) Withdraw(ctx context.Context, keys []string) ([]rail.Outcome, error) {
	if _, err := r.Ledger.Withdraw(ctx, keys, r.Clock.Now(), rail.FailureWithdrawn); err != nil {
		return nil, fmt.Errorf("sandbox ledger: %w", err)
	}
	return r.Outcomes(ctx, keys)
}

// SimulateDeadline answers for the debits with the given keys as if their deadline had passed
// now: those never taken expired (withdrawn as rail.FailureExpired: none is taken afterwards, and
// a step of their batch submitting one meanwhile is told it expired), those taken settled now if
// they settle later, as they would have by the deadline.
func (r *Rail) SimulateDeadline(ctx context.Context, keys []string) ([]rail.Outcome, error) {
	now := r.Clock.Now()
	if _, err := r.Ledger.Withdraw(ctx, keys, now, rail.FailureExpired); err != nil {
		return nil, fmt.Errorf("sandbox ledger: %w", err)
	}
	if _, err := r.Ledger.SettleBy(ctx, keys, now); err != nil {
		return nil, fmt.Errorf("sandbox ledger: %w", err)
	}
	return r.Outcomes(ctx, keys)
}

// EraseAccounts erases the accounts of the ledger's entries submitted at or before `before`.
func (r *Rail) EraseAccounts(ctx context.Context, before time.Time) (rail.Erased, error) {
	n, err := r.Ledger.EraseAccounts(ctx, before)
	if err != nil {
		return rail.Erased{Debits: n}, fmt.Errorf("sandbox ledger: %w", err)
	}
	return rail.Erased{Debits: n}, nil
}

// Reseal seals the ledger's accounts again with the current key of the database's key ring, and
// returns the table and how many entries it sealed.
func (r *Rail) Reseal(ctx context.Context, size int) (table string, n int, err error) {
	n, err = r.Ledger.Reseal(ctx, size)
	return "sandbox_ledger", n, err
}
