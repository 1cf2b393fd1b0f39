-- +goose Up
-- Events: every change of state a partner sees, written in the transaction of the change (an
-- outbox). seq orders a site's events; SQLite takes one writer at a time, so seq order is commit
-- order and a reader paging by seq misses nothing. seq is the rowid: a new one is above every one
-- kept, for the purge removes the oldest (so AUTOINCREMENT and its extra write are not needed). body is the event's JSON, kept as the exact
-- bytes that the events list returns and every webhook delivery signs.
CREATE TABLE events (
    seq        INTEGER NOT NULL PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    site_id    TEXT    NOT NULL REFERENCES sites (id),
    type       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    body       TEXT    NOT NULL
);

CREATE INDEX events_site_seq ON events (site_id, seq);
CREATE INDEX events_site_type_seq ON events (site_id, type, seq);
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
    delivery_id  TEXT    NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    n            INTEGER NOT NULL,
    attempted_at BIGINT  NOT NULL,
    status       INTEGER NOT NULL,
    error        TEXT    NOT NULL,
    duration_ms  BIGINT  NOT NULL,
    PRIMARY KEY (delivery_id, n)
);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
DROP INDEX customer_links_invited_expiry;
DROP TABLE events;
