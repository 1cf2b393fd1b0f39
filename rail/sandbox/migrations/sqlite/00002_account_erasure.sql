-- +goose Up
-- The entries that still hold an account, by submission: EraseAccounts reads only these. IF NOT
-- EXISTS: on SQLite, processes starting together may each apply it.
CREATE INDEX IF NOT EXISTS sandbox_ledger_accounts ON sandbox_ledger (submitted_at) WHERE bsb <> '';

-- +goose Down
DROP INDEX sandbox_ledger_accounts;
