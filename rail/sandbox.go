// Package rail holds the payment network adapters. The sandbox rail is the only one for now: it
// debits nobody, keeps a durable ledger of what it was asked to debit, and decides outcomes from
// magic amounts so partners can test every path.
package rail

import (
	"context"
	"fmt"
	"time"

	"github.com/pyng/receivables/billing"
)

// LedgerEntry is one debit the sandbox rail accepted.
type LedgerEntry struct {
	Key           string // the idempotency key; unique in the ledger
	Amount        int64
	BSB           string
	AccountNumber string
	Failure       billing.FailureReason // empty for a debit that succeeds
	SubmittedAt   time.Time
	SettlesAt     time.Time
}

// Ledger is the sandbox rail's durable record, kept in the server's database.
type Ledger interface {
	// RecordDebits inserts the entries whose key is not in the ledger yet, and returns how many it
	// inserted; an entry whose key is there already is ignored, so submitting a debit twice
	// records it once.
	RecordDebits(ctx context.Context, entries []LedgerEntry) (int, error)
	// LedgerEntries returns the entries with the given keys.
	LedgerEntries(ctx context.Context, keys []string) ([]LedgerEntry, error)
}

// DefaultSettlementDelay is how long a sandbox debit takes to settle unless configured, long
// enough to watch rows in inProgress.
const DefaultSettlementDelay = 3 * time.Second

// Sandbox is the sandbox rail.
type Sandbox struct {
	Ledger          Ledger
	Clock           billing.Clock
	SettlementDelay time.Duration
}

var _ billing.Rail = (*Sandbox)(nil)

// Outcome is the sandbox's decision for an amount in cents: an amount ending in 51 cents fails
// with insufficientFunds, one ending in 52 cents with accountClosed, and every other succeeds.
func Outcome(amount int64) billing.FailureReason {
	switch amount % 100 {
	case 51:
		return billing.FailureInsufficientFunds
	case 52:
		return billing.FailureAccountClosed
	}
	return ""
}

// Submit records the debits in the ledger, each once, and returns their outcomes as recorded.
func (s *Sandbox) Submit(ctx context.Context, debits []billing.Debit) ([]billing.DebitOutcome, error) {
	now := s.Clock.Now()
	entries := make([]LedgerEntry, len(debits))
	keys := make([]string, len(debits))
	for i, d := range debits {
		entries[i] = LedgerEntry{
			Key:           d.Key,
			Amount:        d.Amount,
			BSB:           d.Customer.BSB,
			AccountNumber: d.Customer.AccountNumber,
			Failure:       Outcome(d.Amount),
			SubmittedAt:   now,
			SettlesAt:     now.Add(s.SettlementDelay),
		}
		keys[i] = d.Key
	}
	recorded, err := s.Ledger.RecordDebits(ctx, entries)
	if err != nil {
		return nil, fmt.Errorf("sandbox ledger: %w", err)
	}
	if recorded < len(entries) {
		// Some were submitted before (a job run again after a crash): their first record stands.
		return s.Outcomes(ctx, keys)
	}
	return s.outcomes(entries), nil
}

// Outcomes reports each recorded debit, settled once its settlement time has come.
func (s *Sandbox) Outcomes(ctx context.Context, keys []string) ([]billing.DebitOutcome, error) {
	entries, err := s.Ledger.LedgerEntries(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("sandbox ledger: %w", err)
	}
	return s.outcomes(entries), nil
}

func (s *Sandbox) outcomes(entries []LedgerEntry) []billing.DebitOutcome {
	now := s.Clock.Now()
	outcomes := make([]billing.DebitOutcome, len(entries))
	for i, e := range entries {
		o := billing.DebitOutcome{Key: e.Key, SettlesAt: e.SettlesAt}
		if !now.Before(e.SettlesAt) {
			o.Settled, o.Failure, o.SettledAt = true, e.Failure, e.SettlesAt
		}
		outcomes[i] = o
	}
	return outcomes
}
