-- +goose Up
-- The BECS rail's own tables. Times are Unix milliseconds (UTC). Sealed columns hold values
-- sealed with the database's key ring (package seal).

-- The debit user of each site on the rail: who the files are sent for.
CREATE TABLE becs_users (
    site_id        TEXT   NOT NULL PRIMARY KEY,
    user_id        TEXT   NOT NULL,
    user_name      TEXT   NOT NULL,
    institution    TEXT   NOT NULL,
    description    TEXT   NOT NULL,
    trace_bsb      TEXT   NOT NULL,
    trace_account  TEXT   NOT NULL,
    remitter       TEXT   NOT NULL,
    self_balancing BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- Every debit the rail accepted, keyed by the idempotency key (a row's id); not a foreign key
-- of the engine's batch_rows, which are purged. file_id is set once, when a cut puts the debit
-- in a file, in the transaction that stores the file.
CREATE TABLE becs_debits (
    idempotency_key     TEXT   NOT NULL PRIMARY KEY,
    site_id             TEXT   NOT NULL,
    lodgement_reference TEXT   NOT NULL UNIQUE,
    amount              BIGINT NOT NULL,
    bsb                 TEXT   NOT NULL, -- sealed
    account_number      TEXT   NOT NULL, -- sealed
    title               TEXT   NOT NULL, -- sealed
    submitted_at        BIGINT NOT NULL,
    deadline            BIGINT NOT NULL,
    file_id             TEXT
);
CREATE INDEX becs_debits_unfiled ON becs_debits (site_id) WHERE file_id IS NULL;
CREATE INDEX becs_debits_file ON becs_debits (file_id) WHERE file_id IS NOT NULL;

-- The files cut, each stored once, whole, with the SHA-256 of its bytes, before it is
-- delivered; content (sealed) is never changed.
CREATE TABLE becs_files (
    id                TEXT   NOT NULL PRIMARY KEY,
    site_id           TEXT   NOT NULL,
    cut_at            BIGINT NOT NULL,
    row_count         BIGINT NOT NULL,
    total             BIGINT NOT NULL,
    earliest_deadline BIGINT NOT NULL,
    checksum          TEXT   NOT NULL,
    content           TEXT   NOT NULL, -- sealed
    delivered_at      BIGINT,
    lodged_at         BIGINT
);
CREATE INDEX becs_files_site ON becs_files (site_id, cut_at);
CREATE INDEX becs_files_undelivered ON becs_files (cut_at) WHERE delivered_at IS NULL;

-- +goose Down
DROP TABLE becs_files;
DROP TABLE becs_debits;
DROP TABLE becs_users;
