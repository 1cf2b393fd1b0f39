-- +goose Up
-- Times are Unix milliseconds (UTC), as in 00001.
CREATE TABLE batches (
    id           TEXT    NOT NULL PRIMARY KEY,
    site_id      TEXT    NOT NULL REFERENCES sites (id),
    reference    TEXT    COLLATE "C" NOT NULL,
    fingerprint  BYTEA   NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('accepted', 'inProgress', 'completed')),
    row_count    INTEGER NOT NULL,
    total_amount BIGINT  NOT NULL,
    submitted_at BIGINT  NOT NULL,
    completed_at BIGINT,
    deadline_at  BIGINT  NOT NULL,
    retain_until BIGINT  NOT NULL,
    CHECK ((state = 'completed') = (completed_at IS NOT NULL)),
    -- One retained batch per (site, batchReference): the rule that makes concurrent identical
    -- submissions create one batch. CreateBatch deletes a batch past its retention first.
    UNIQUE (site_id, reference)
);

-- ListBatches: a site's batches, newest first.
CREATE INDEX batches_site_submitted ON batches (site_id, submitted_at DESC, id DESC);

-- ExpireOverdueRows: the open batches by deadline.
CREATE INDEX batches_open_deadline ON batches (deadline_at) WHERE state <> 'completed';

-- PurgeBatches.
CREATE INDEX batches_retain_until ON batches (retain_until);

CREATE TABLE batch_rows (
    id                 TEXT    NOT NULL PRIMARY KEY,
    batch_id           TEXT    NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    idx                INTEGER NOT NULL,
    row_reference      TEXT    COLLATE "C" NOT NULL,
    customer_reference TEXT    COLLATE "C" NOT NULL,
    amount             BIGINT  NOT NULL,
    state              TEXT    NOT NULL CHECK (state IN ('pending', 'inProgress', 'succeeded', 'failed')),
    failure_reason     TEXT CHECK (failure_reason IN ('customerNotActive', 'insufficientFunds', 'accountClosed', 'expired')),
    outcome_at         BIGINT,
    CHECK ((state = 'failed') = (failure_reason IS NOT NULL)),
    CHECK ((state IN ('succeeded', 'failed')) = (outcome_at IS NOT NULL)),
    UNIQUE (batch_id, idx),
    UNIQUE (batch_id, row_reference)
);

-- A batch's rows in one state (pending, inProgress, the rowState filter, open rows).
CREATE INDEX batch_rows_batch_state ON batch_rows (batch_id, state);

-- The sandbox rail's own record of the debits it accepted, keyed by the idempotency key (a row's
-- id). Deliberately not a foreign key of batch_rows: it outlives purged batches.
CREATE TABLE sandbox_ledger (
    idempotency_key TEXT   NOT NULL PRIMARY KEY,
    amount          BIGINT NOT NULL,
    bsb             TEXT   NOT NULL,
    account_number  TEXT   NOT NULL,
    failure         TEXT CHECK (failure IN ('insufficientFunds', 'accountClosed')),
    submitted_at    BIGINT NOT NULL,
    settles_at      BIGINT NOT NULL
);

-- +goose Down
DROP TABLE sandbox_ledger;
DROP TABLE batch_rows;
DROP TABLE batches;
