-- +goose Up
-- A link may be revoked by the bank: a return of a debit made under it for a reason that ends the
-- customer's authority (the account closed or not found, the customer deceased) revokes it.
-- SQLite cannot change a column's CHECK: the table is made anew with the same columns, in the
-- same order, and its indexes (no other table refers to it).
CREATE TABLE customer_links_new (
    id                      TEXT    NOT NULL PRIMARY KEY,
    site_id                 TEXT    NOT NULL REFERENCES sites (id),
    customer_reference      TEXT    NOT NULL COLLATE BINARY,
    state                   TEXT    NOT NULL CHECK (state IN ('invited', 'linked', 'expired', 'revoked')),
    is_current              BOOLEAN NOT NULL,
    created_at              BIGINT  NOT NULL,
    expires_at              BIGINT  NOT NULL,
    linked_at               BIGINT,
    revoked_at              BIGINT,
    revoked_by              TEXT CHECK (revoked_by IN ('customer', 'partner', 'bank')),
    customer_name           TEXT,
    customer_email          TEXT,
    customer_bsb            TEXT,
    customer_account_number TEXT,
    metadata                TEXT,
    customer_account_name   TEXT,
    customer_type           TEXT,
    customer_business_name  TEXT,
    customer_abn            TEXT,
    signup_browser_key      BLOB,
    agreed_terms            TEXT
);
INSERT INTO customer_links_new (id, site_id, customer_reference, state, is_current, created_at, expires_at, linked_at, revoked_at, revoked_by, customer_name, customer_email, customer_bsb, customer_account_number, metadata, customer_account_name, customer_type, customer_business_name, customer_abn, signup_browser_key, agreed_terms)
SELECT id, site_id, customer_reference, state, is_current, created_at, expires_at, linked_at, revoked_at, revoked_by, customer_name, customer_email, customer_bsb, customer_account_number, metadata, customer_account_name, customer_type, customer_business_name, customer_abn, signup_browser_key, agreed_terms FROM customer_links;
DROP TABLE customer_links;
ALTER TABLE customer_links_new RENAME TO customer_links;
CREATE UNIQUE INDEX customer_links_active ON customer_links (site_id, customer_reference)
    WHERE state IN ('invited', 'linked');
CREATE UNIQUE INDEX customer_links_current ON customer_links (site_id, customer_reference)
    WHERE is_current;
CREATE INDEX customer_links_details_revoked ON customer_links (revoked_at) WHERE customer_bsb IS NOT NULL;
CREATE INDEX customer_links_invited_expiry ON customer_links (expires_at) WHERE state = 'invited';

-- +goose Down
-- The older schema knows no bank: a link the bank revoked reads as revoked by the site.
CREATE TABLE customer_links_new (
    id                      TEXT    NOT NULL PRIMARY KEY,
    site_id                 TEXT    NOT NULL REFERENCES sites (id),
    customer_reference      TEXT    NOT NULL COLLATE BINARY,
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
    customer_account_number TEXT,
    metadata                TEXT,
    customer_account_name   TEXT,
    customer_type           TEXT,
    customer_business_name  TEXT,
    customer_abn            TEXT,
    signup_browser_key      BLOB,
    agreed_terms            TEXT
);
INSERT INTO customer_links_new (id, site_id, customer_reference, state, is_current, created_at, expires_at, linked_at, revoked_at, revoked_by, customer_name, customer_email, customer_bsb, customer_account_number, metadata, customer_account_name, customer_type, customer_business_name, customer_abn, signup_browser_key, agreed_terms)
SELECT id, site_id, customer_reference, state, is_current, created_at, expires_at, linked_at, revoked_at, CASE revoked_by WHEN 'bank' THEN 'partner' ELSE revoked_by END, customer_name, customer_email, customer_bsb, customer_account_number, metadata, customer_account_name, customer_type, customer_business_name, customer_abn, signup_browser_key, agreed_terms FROM customer_links;
DROP TABLE customer_links;
ALTER TABLE customer_links_new RENAME TO customer_links;
CREATE UNIQUE INDEX customer_links_active ON customer_links (site_id, customer_reference)
    WHERE state IN ('invited', 'linked');
CREATE UNIQUE INDEX customer_links_current ON customer_links (site_id, customer_reference)
    WHERE is_current;
CREATE INDEX customer_links_details_revoked ON customer_links (revoked_at) WHERE customer_bsb IS NOT NULL;
CREATE INDEX customer_links_invited_expiry ON customer_links (expires_at) WHERE state = 'invited';
