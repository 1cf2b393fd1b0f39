-- +goose Up
-- The partner's own metadata of an invitation: a JSON object of string values, or NULL for none.
ALTER TABLE customer_links ADD COLUMN metadata TEXT;

-- The debiting business of a site, as its Direct Debit Request service agreement names it (set by
-- an operator; empty until then), and the site's time zone.
ALTER TABLE sites ADD COLUMN debit_user_name TEXT NOT NULL DEFAULT '';
ALTER TABLE sites ADD COLUMN debit_user_abn TEXT NOT NULL DEFAULT '';
ALTER TABLE sites ADD COLUMN debit_user_phone TEXT NOT NULL DEFAULT '';
ALTER TABLE sites ADD COLUMN debit_user_email TEXT NOT NULL DEFAULT '';
ALTER TABLE sites ADD COLUMN debit_user_address TEXT NOT NULL DEFAULT '';
ALTER TABLE sites ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'Australia/Sydney';

-- +goose Down
ALTER TABLE sites DROP COLUMN time_zone;
ALTER TABLE sites DROP COLUMN debit_user_address;
ALTER TABLE sites DROP COLUMN debit_user_email;
ALTER TABLE sites DROP COLUMN debit_user_phone;
ALTER TABLE sites DROP COLUMN debit_user_abn;
ALTER TABLE sites DROP COLUMN debit_user_name;
ALTER TABLE customer_links DROP COLUMN metadata;
