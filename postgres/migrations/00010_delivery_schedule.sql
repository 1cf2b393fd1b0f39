-- +goose Up
-- A delivery is its own schedule: tries counts the attempts since it was made or a partner
-- retried it (the place in the retry schedule), next_attempt_at is when a pending delivery is due.
-- An endpoint's due deliveries, found through webhook_deliveries_due, are sent in rounds by one
-- run at a time (jobs.deliverWebhooksWorker), the one holding the endpoint's lease: lease_holder
-- until lease_until, when a run that died lets go.
ALTER TABLE webhook_deliveries ADD COLUMN tries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhook_deliveries ADD COLUMN next_attempt_at BIGINT;
UPDATE webhook_deliveries SET next_attempt_at = created_at WHERE state = 'pending';
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_attempt_at, id) WHERE state = 'pending';
ALTER TABLE webhook_endpoints ADD COLUMN lease_holder TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN lease_until BIGINT;

-- +goose Down
ALTER TABLE webhook_endpoints DROP COLUMN lease_until;
ALTER TABLE webhook_endpoints DROP COLUMN lease_holder;
DROP INDEX webhook_deliveries_due;
ALTER TABLE webhook_deliveries DROP COLUMN next_attempt_at;
ALTER TABLE webhook_deliveries DROP COLUMN tries;
