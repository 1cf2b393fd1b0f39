-- +goose Up
-- The sandbox rail's own record of the debits it accepted, keyed by the idempotency key (a batch
-- row's id). Deliberately not a foreign key of the engine's batch_rows: it outlives purged
-- batches. Times are Unix milliseconds (UTC).
--
-- The engines' migration 00002_batches created this same table when the ledger was part of their
-- schema. Applied migrations never change, so 00002 still creates it, though no engine code uses
-- it any more; hence IF NOT EXISTS: this migration adopts the table, debits and all, where 00002
-- made it, and creates it where it is missing.
CREATE TABLE IF NOT EXISTS sandbox_ledger (
    idempotency_key TEXT   NOT NULL PRIMARY KEY,
    amount          BIGINT NOT NULL,
    bsb             TEXT   NOT NULL,
    account_number  TEXT   NOT NULL,
    failure         TEXT CHECK (failure IN ('insufficientFunds', 'accountClosed')),
    submitted_at    BIGINT NOT NULL,
    settles_at      BIGINT NOT NULL
);

-- +goose Down
-- Nothing: the table may be the engines' 00002's, whose own Down drops it, and dropping it here
-- would lose the record of debits.
