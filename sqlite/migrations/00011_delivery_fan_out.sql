-- +goose Up
-- An event's deliveries are made by the run that sends the endpoint's deliveries, not in the
-- event's transaction: sent_seq is the last of the site's events (events.seq) the endpoint has
-- been given a delivery of, or passed as not subscribed. An endpoint starts, and starts again
-- when enabled, at the latest event: the trigger sets it for every insert (an older binary's
-- too, after a rollback). The existing endpoints start at the latest event: the events before it
-- have their deliveries.
ALTER TABLE webhook_endpoints ADD COLUMN sent_seq BIGINT NOT NULL DEFAULT 0;
UPDATE webhook_endpoints SET sent_seq = (SELECT COALESCE(max(seq), 0) FROM events);
-- +goose StatementBegin
CREATE TRIGGER webhook_endpoints_sent AFTER INSERT ON webhook_endpoints
BEGIN
    UPDATE webhook_endpoints SET sent_seq = (SELECT COALESCE(max(seq), 0) FROM events) WHERE id = NEW.id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER webhook_endpoints_sent;
ALTER TABLE webhook_endpoints DROP COLUMN sent_seq;
