-- +goose Up
-- An event's deliveries are made by the run that sends the endpoint's deliveries, not in the
-- event's transaction: (sent_txid, sent_seq) is the position (see 00005) of the last of the
-- site's events the endpoint has been given a delivery of, or passed as not subscribed. An
-- endpoint starts, and starts again when enabled, after the events of the transactions before
-- its own: the default, for every insert (an older replica's too, while both run). The existing
-- endpoints start here: the events before have their deliveries, and an event of a transaction
-- still running that has one already is not given another (a delivery is unique per endpoint and
-- event).
ALTER TABLE webhook_endpoints ADD COLUMN sent_txid xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE webhook_endpoints ADD COLUMN sent_seq BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE webhook_endpoints DROP COLUMN sent_seq;
ALTER TABLE webhook_endpoints DROP COLUMN sent_txid;
