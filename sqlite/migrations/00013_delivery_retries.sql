-- +goose Up
-- retries counts the partner's retries of a delivery. A delivery run moves a delivery to where an
-- attempt leaves it only if its retries are still those the run read before the attempt: a retry
-- the API accepted while the attempt was in flight stands (pending, due at the retry, at the
-- start of its schedule), and the attempt is recorded beside it.
ALTER TABLE webhook_deliveries ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE webhook_deliveries DROP COLUMN retries;
