-- +goose Up
-- Of a debit sent in a file (the BECS rail), the file it went in, set when the row leaves pending;
-- of a succeeded debit the customer's bank gave back afterwards, when Pyng recorded the return,
-- the rail's reason for it (camelCase), and whether the same debit may be presented again.
ALTER TABLE batch_rows ADD COLUMN file_id TEXT;
ALTER TABLE batch_rows ADD COLUMN returned_at BIGINT;
ALTER TABLE batch_rows ADD COLUMN return_reason TEXT;
ALTER TABLE batch_rows ADD COLUMN return_retryable BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE batch_rows DROP COLUMN return_retryable;
ALTER TABLE batch_rows DROP COLUMN return_reason;
ALTER TABLE batch_rows DROP COLUMN returned_at;
ALTER TABLE batch_rows DROP COLUMN file_id;
