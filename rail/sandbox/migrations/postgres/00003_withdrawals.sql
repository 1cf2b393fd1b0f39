-- +goose Up
-- withdrawn_at: the debit was withdrawn before the sandbox took it. The entry records its key
-- alone (no amount, no account) so that no submission of it afterwards is taken: as on a rail
-- that holds debits before sending them, a withdrawn debit is never sent. withdrawn_as is the
-- failure it answers: customerNotActive (its customer's authority ended) or expired (its batch's
-- deadline simulated).
ALTER TABLE sandbox_ledger ADD COLUMN withdrawn_at BIGINT;
ALTER TABLE sandbox_ledger ADD COLUMN withdrawn_as TEXT CHECK (withdrawn_as IN ('customerNotActive', 'expired'));

-- +goose Down
ALTER TABLE sandbox_ledger DROP COLUMN withdrawn_as;
ALTER TABLE sandbox_ledger DROP COLUMN withdrawn_at;
