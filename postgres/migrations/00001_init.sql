-- +goose Up
CREATE TABLE organisations (
    id         TEXT   NOT NULL PRIMARY KEY,
    name       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE sites (
    id              TEXT   NOT NULL PRIMARY KEY,
    organisation_id TEXT   NOT NULL REFERENCES organisations (id),
    name            TEXT   NOT NULL,
    currency        TEXT   NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE INDEX sites_organisation_id ON sites (organisation_id);

CREATE TABLE api_clients (
    id              TEXT   NOT NULL PRIMARY KEY,
    organisation_id TEXT   NOT NULL REFERENCES organisations (id),
    secret_hash     BYTEA  NOT NULL,
    scopes          TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);

CREATE INDEX api_clients_organisation_id ON api_clients (organisation_id);

-- singleton is always true and unique, so the table holds at most one key.
CREATE TABLE signing_keys (
    id         TEXT    NOT NULL PRIMARY KEY,
    singleton  BOOLEAN NOT NULL DEFAULT TRUE UNIQUE CHECK (singleton),
    secret     BYTEA   NOT NULL,
    created_at BIGINT  NOT NULL
);

CREATE TABLE customer_links (
    id                      TEXT    NOT NULL PRIMARY KEY,
    site_id                 TEXT    NOT NULL REFERENCES sites (id),
    customer_reference      TEXT    COLLATE "C" NOT NULL,
    state                   TEXT    NOT NULL CHECK (state IN ('invited', 'linked', 'expired', 'revoked')),
    is_current              BOOLEAN NOT NULL,
    created_at              BIGINT  NOT NULL,
    expires_at              BIGINT  NOT NULL,
    linked_at               BIGINT,
    revoked_at              BIGINT,
    revoked_by              TEXT CHECK (revoked_by IN ('customer', 'partner')),
    customer_name           TEXT,
    customer_email          TEXT,
    customer_bsb            TEXT,
    customer_account_number TEXT
);

-- One active link (invited or linked) per (site, customerReference): the database rule that makes
-- concurrent invitations of one customer safe. An invitation past its expiry may still be stored
-- as invited; CreateLink marks it expired before inserting.
CREATE UNIQUE INDEX customer_links_active ON customer_links (site_id, customer_reference)
    WHERE state IN ('invited', 'linked');

-- One current link per pair; also serves ListLinks (site, ordered by customer_reference).
CREATE UNIQUE INDEX customer_links_current ON customer_links (site_id, customer_reference)
    WHERE is_current;

-- +goose Down
DROP TABLE customer_links;
DROP TABLE signing_keys;
DROP TABLE api_clients;
DROP TABLE sites;
DROP TABLE organisations;
