-- +goose Up
-- The browser that confirmed a link's signup: the HMAC of the link's id and a secret only that
-- browser holds (the pages' CSRF token) under a key derived from the key ring (seal.Keyring.MAC),
-- never the secret. A confirmation sent again from that browser shortly after (a double click
-- whose first answer the browser abandoned) is answered as the first was; NULL for a link not
-- linked from a browser (the sandbox's simulated signup, or one linked before this migration).
ALTER TABLE customer_links ADD COLUMN signup_browser_key BYTEA;

-- +goose Down
ALTER TABLE customer_links DROP COLUMN signup_browser_key;
