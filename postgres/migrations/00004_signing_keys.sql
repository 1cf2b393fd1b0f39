-- +goose Up
-- Several signing keys: each has a sequence number, and the highest is the current key, which
-- signs; the others still verify the tokens they signed. The key of the singleton table becomes
-- key 1; dropping the singleton column drops its constraints.
ALTER TABLE signing_keys ADD COLUMN seq BIGINT;

UPDATE signing_keys SET seq = 1;

ALTER TABLE signing_keys ALTER COLUMN seq SET NOT NULL;

ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_seq_key UNIQUE (seq);

ALTER TABLE signing_keys DROP COLUMN singleton;

-- The links whose bank details are kept, by the time they were revoked: the erasure of the
-- details of revoked links reads only these.
CREATE INDEX IF NOT EXISTS customer_links_details_revoked ON customer_links (revoked_at) WHERE customer_bsb IS NOT NULL;

-- +goose Down
DROP INDEX customer_links_details_revoked;

-- Only the current key fits the singleton table: tokens signed with the others stop verifying.
DELETE FROM signing_keys WHERE seq < (SELECT max(seq) FROM signing_keys);

ALTER TABLE signing_keys ADD COLUMN singleton BOOLEAN NOT NULL DEFAULT TRUE UNIQUE CHECK (singleton);

ALTER TABLE signing_keys DROP COLUMN seq;
