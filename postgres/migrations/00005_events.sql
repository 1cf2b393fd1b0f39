-- +goose Up
-- Events: every change of state a partner sees, written in the transaction of the change (an
-- outbox). body is the event's JSON, kept as the exact bytes (text, not jsonb) that the events
-- list returns and every webhook delivery signs.
--
-- The order of a site's events is (txid, seq): txid is the writing transaction's id. Transactions
-- commit in any order, so a reader that paged by seq alone could pass an event whose transaction
-- had not committed yet and never see it. The events list shows only events whose transaction id
-- is below the oldest transaction still running (pg_snapshot_xmin), and every event written later
-- has a transaction id at or above it: a reader paging by (txid, seq) misses nothing.
CREATE TABLE events (
    seq        BIGSERIAL PRIMARY KEY,
    txid       xid8   NOT NULL DEFAULT pg_current_xact_id(),
    id         TEXT   NOT NULL UNIQUE,
    site_id    TEXT   NOT NULL REFERENCES sites (id),
    type       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    body       TEXT   NOT NULL
);

CREATE INDEX events_site_order ON events (site_id, txid, seq);
CREATE INDEX events_site_type_order ON events (site_id, type, txid, seq);
CREATE INDEX events_created_at ON events (created_at);

-- The sweep that writes customer.expired finds the invitations past their expiry here.
CREATE INDEX customer_links_invited_expiry ON customer_links (expires_at) WHERE state = 'invited';

-- A partner's webhook endpoints. event_types is a space-separated list ('*': every type);
-- secret and previous_secret are sealed (see package seal).
CREATE TABLE webhook_endpoints (
    id                    TEXT   NOT NULL PRIMARY KEY,
    site_id               TEXT   NOT NULL REFERENCES sites (id),
    url                   TEXT   NOT NULL,
    event_types           TEXT   NOT NULL,
    state                 TEXT   NOT NULL CHECK (state IN ('enabled', 'disabled')),
    disabled_reason       TEXT CHECK (disabled_reason IN ('partner', 'failing')),
    secret                TEXT   NOT NULL,
    previous_secret       TEXT,
    previous_secret_until BIGINT,
    created_at            BIGINT NOT NULL,
    failing_since         BIGINT
);

CREATE INDEX webhook_endpoints_site ON webhook_endpoints (site_id, created_at, id);

-- The sending of one event to one endpoint; removed with the event (after its retention) or the
-- endpoint.
CREATE TABLE webhook_deliveries (
    id          TEXT   NOT NULL PRIMARY KEY,
    endpoint_id TEXT   NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id    TEXT   NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    event_type  TEXT   NOT NULL,
    state       TEXT   NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
    created_at  BIGINT NOT NULL,
    UNIQUE (endpoint_id, event_id)
);

CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

CREATE TABLE webhook_attempts (
    delivery_id  TEXT   NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    n            INTEGER NOT NULL,
    attempted_at BIGINT NOT NULL,
    status       INTEGER NOT NULL,
    error        TEXT   NOT NULL,
    duration_ms  BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, n)
);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
DROP INDEX customer_links_invited_expiry;
DROP TABLE events;
