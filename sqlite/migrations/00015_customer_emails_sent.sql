-- +goose Up
-- The emails sent to customers, counted against the cap of emails to one address in any 24 hours
-- (PYNG_EMAILS_PER_ADDRESS_PER_DAY): a row an email, named by its job in the queue (id), so that
-- its attempts count once. address_key is the HMAC of the address (billing.MailboxKey) under a key
-- derived from the key ring (seal.Keyring.MAC), never the address: the table tells no one where
-- Pyng wrote. sent_at is when the email was counted; the hourly erasure job removes the rows 24
-- hours old, which count against no cap.
CREATE TABLE customer_emails_sent (
    id          TEXT   NOT NULL PRIMARY KEY,
    address_key BLOB   NOT NULL,
    sent_at     BIGINT NOT NULL
);

CREATE INDEX customer_emails_sent_address ON customer_emails_sent (address_key, sent_at);
CREATE INDEX customer_emails_sent_at ON customer_emails_sent (sent_at);

-- +goose Down
DROP TABLE customer_emails_sent;
