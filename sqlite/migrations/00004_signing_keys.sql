-- +goose Up
-- Several signing keys: each has a sequence number, and the highest is the current key, which
-- signs; the others still verify the tokens they signed. The key of the singleton table becomes
-- key 1. SQLite cannot drop the singleton column's constraints, so the table is rebuilt.
CREATE TABLE signing_keys_new (
    id         TEXT   NOT NULL PRIMARY KEY,
    seq        BIGINT NOT NULL UNIQUE,
    secret     BLOB   NOT NULL,
    created_at BIGINT NOT NULL
);

INSERT INTO signing_keys_new (id, seq, secret, created_at) SELECT id, 1, secret, created_at FROM signing_keys;

DROP TABLE signing_keys;

ALTER TABLE signing_keys_new RENAME TO signing_keys;

-- The links whose bank details are kept, by the time they were revoked: the erasure of the
-- details of revoked links reads only these.
CREATE INDEX IF NOT EXISTS customer_links_details_revoked ON customer_links (revoked_at) WHERE customer_bsb IS NOT NULL;

-- +goose Down
DROP INDEX customer_links_details_revoked;

CREATE TABLE signing_keys_old (
    id         TEXT    NOT NULL PRIMARY KEY,
    singleton  BOOLEAN NOT NULL DEFAULT TRUE UNIQUE CHECK (singleton),
    secret     BLOB    NOT NULL,
    created_at BIGINT  NOT NULL
);

-- Only the current key fits the singleton table: tokens signed with the others stop verifying.
INSERT INTO signing_keys_old (id, secret, created_at)
SELECT id, secret, created_at FROM signing_keys ORDER BY seq DESC LIMIT 1;

DROP TABLE signing_keys;

ALTER TABLE signing_keys_old RENAME TO signing_keys;
