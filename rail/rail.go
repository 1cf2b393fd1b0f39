// Package rail is the contract between billing and the payment networks ("rails") that move the
// money: a Rail takes debits and reports their outcomes. The contract uses none of billing's types,
// so billing imports it, each rail is a package of its own (rail/sandbox) written against it, and
// billing routes each site's debits to the rail the site names.
package rail

import (
	"context"
	"time"
)

// Account is the bank account a debit is drawn from.
type Account struct {
	Name string // the account holder, as the customer gave it
	// Title is the title of the account as the bank knows it, as the customer gave it; empty for
	// a customer who signed up before it was asked (a rail that needs one uses Name).
	Title  string
	BSB    string // six digits, no separator
	Number string // digits only
}

// Debit is one instruction to a rail: take Amount (minor units of Currency) from Account.
type Debit struct {
	// Key is the idempotency key (the row's id): submitting a key again never debits again.
	Key      string
	Amount   int64
	Currency string
	Account  Account
	// Site is the site the debit is taken for; a rail that sends files sends one per site.
	Site string
	// Deadline is when the debit's row fails expired unless it has settled: a rail must not move
	// the money after it.
	Deadline time.Time
	// UserID is the debit user ID the customer's Direct Debit Request names, on a rail whose
	// debit user has one (BECS): the rail sends the debit under that ID only, whatever the ID
	// is by then.
	UserID string
}

// Failure says why a settled debit failed, as a camelCase reason the API shows partners.
type Failure string

// The failures a rail reports.
const (
	// FailureInsufficientFunds: the bank declined for lack of funds; the debit may succeed later.
	FailureInsufficientFunds Failure = "insufficientFunds"
	// FailureAccountClosed: the account is closed.
	FailureAccountClosed Failure = "accountClosed"
	// FailureWithdrawn: the debit was withdrawn before the rail sent it (Withdrawer), as its
	// customer's authority ended; the API's customerNotActive.
	FailureWithdrawn Failure = "customerNotActive"
	// FailureExpired: the debit's deadline passed before the rail took it (the sandbox's deadline
	// simulated); the API's expired.
	FailureExpired Failure = "expired"
)

// Outcome is what a rail says of a submitted debit.
type Outcome struct {
	Key     string
	Settled bool
	// Failure is empty when a settled debit succeeded.
	Failure   Failure
	SettledAt time.Time // when Settled
	SettlesAt time.Time // when not yet Settled, when the rail expects to settle it
	// Queued reports, of a debit not Settled, that the rail holds it without having sent it yet
	// (a file rail before its cut-off): its row stays pending until it is sent.
	Queued bool
	// FileID is the file the debit went in, for a rail that sends files; empty before.
	FileID string
}

// Rail is the adapter to one payment network.
type Rail interface {
	// Submit sends the debits and returns their outcomes as they stand (a rail that settles at
	// once answers them settled). It is idempotent per Debit.Key: a key submitted before is not
	// debited again, whatever the amount, and its first outcome is returned, so a retried or re-run
	// job never debits twice.
	Submit(ctx context.Context, debits []Debit) ([]Outcome, error)
	// Outcomes reports the debits with the given keys; keys never submitted are left out.
	Outcomes(ctx context.Context, keys []string) ([]Outcome, error)
}

// Withdrawer is a Rail that holds debits queued before sending them (BECS, until its cut-off), or
// one that records the keys it must never take (the sandbox, which sends a debit as it takes it).
// A debit whose customer revoked its authority must not be sent: the service withdraws it.
type Withdrawer interface {
	// Withdraw withdraws the debits with the given keys that the rail holds but has not sent, and
	// reports every one it holds as it stands: a debit withdrawn (now or before) settled with
	// FailureWithdrawn, one sent as before, for a debit sent can no longer be stopped. A key never
	// submitted is withdrawn too (reported so): its row fails, and a submission of it that comes
	// afterwards (another execution of its batch, which read the customer linked) must not send
	// it. A withdrawn debit is never sent: submitted again (its customer linked anew), it stays
	// withdrawn, so that a row whose authority ended fails rather than being collected under the
	// next one.
	Withdraw(ctx context.Context, keys []string) ([]Outcome, error)
}

// AccountEraser is a Rail that keeps copies of the accounts it was given, such as a ledger of
// debits. The server erases customers' bank details some time after their links end; it has such
// a rail erase its copies of the accounts of debits submitted as long ago. A debit is submitted
// while its customer is linked, so before the link ends: a copy is never kept longer than the
// link's.
type AccountEraser interface {
	// EraseAccounts erases the accounts of the debits submitted at or before `before`, keeping
	// what the rail answers of them, and returns what it erased.
	EraseAccounts(ctx context.Context, before time.Time) (Erased, error)
}

// Erased counts what a rail's EraseAccounts erased: the accounts of Debits, and the Files and
// returned items (Returns) that held accounts, for a rail that keeps them.
type Erased struct {
	Debits, Files, Returns int
}

// Add is the sum of e and o.
func (e Erased) Add(o Erased) Erased {
	return Erased{Debits: e.Debits + o.Debits, Files: e.Files + o.Files, Returns: e.Returns + o.Returns}
}

// The names of the rails, as a site names its own (Site.Rail).
const (
	// Sandbox is the sandbox rail, which debits nobody.
	Sandbox = "sandbox"
	// BECS is the Australian direct-entry rail: debits sent in files to the debit user's bank.
	BECS = "becs"
)
