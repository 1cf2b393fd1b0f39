-- +goose Up
-- withdrawn_at: the debit was withdrawn before the sandbox took it (its customer's authority
-- ended; its batch's deadline simulated). The entry records its key alone (no amount, no
-- account) so that no submission of it afterwards is taken: as on a rail that holds debits
-- before sending them, a withdrawn debit is never sent, and its row fails customerNotActive.
ALTER TABLE sandbox_ledger ADD COLUMN withdrawn_at BIGINT;

-- +goose Down
ALTER TABLE sandbox_ledger DROP COLUMN withdrawn_at;
