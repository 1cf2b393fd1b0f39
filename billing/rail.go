package billing

import (
	"context"
	"time"
)

// Debit is one instruction to the payment network: take Amount from the customer's account.
type Debit struct {
	// Key is the idempotency key (the row's id): submitting a key again never debits again.
	Key      string
	Amount   int64
	Currency string
	Customer Customer
}

// DebitOutcome is what the network says of a submitted debit.
type DebitOutcome struct {
	Key     string
	Settled bool
	// Failure is empty when a settled debit succeeded.
	Failure   FailureReason
	SettledAt time.Time // when Settled
	SettlesAt time.Time // when not yet Settled, when the network expects to settle it
}

// RailSandbox is the name of the sandbox rail, the rail of every site so far.
const RailSandbox = "sandbox"

// Rail is the adapter to a payment network. A Service holds its rails by name, and each site
// names the rail its debits go to.
type Rail interface {
	// Submit sends the debits and returns their outcomes as they stand (a network that settles at
	// once answers them settled). It is idempotent per Debit.Key: a key submitted before is not
	// debited again, whatever the amount, and its first outcome is returned, so a retried or re-run
	// job never debits twice.
	Submit(ctx context.Context, debits []Debit) ([]DebitOutcome, error)
	// Outcomes reports the debits with the given keys; keys never submitted are left out.
	Outcomes(ctx context.Context, keys []string) ([]DebitOutcome, error)
}
