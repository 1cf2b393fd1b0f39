-- +goose Up
-- The entries that still hold an account, by submission: EraseAccounts reads only these.
CREATE INDEX sandbox_ledger_accounts ON sandbox_ledger (submitted_at) WHERE bsb <> '';

-- +goose Down
DROP INDEX sandbox_ledger_accounts;
