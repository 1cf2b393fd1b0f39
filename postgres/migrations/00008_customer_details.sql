-- +goose Up
-- What a customer tells Pyng at signup beyond name, email and account: the title of the account
-- as the bank knows it (it goes into a direct-entry file), whether the customer is an individual
-- or a business, and a business's name and ABN. Sealed at rest like the other details, and erased
-- with them.
ALTER TABLE customer_links ADD COLUMN customer_account_name TEXT;
ALTER TABLE customer_links ADD COLUMN customer_type TEXT;
ALTER TABLE customer_links ADD COLUMN customer_business_name TEXT;
ALTER TABLE customer_links ADD COLUMN customer_abn TEXT;

-- APCA's BSB directory, as the operator last imported it (pyng admin bsb import): an import
-- replaces the whole table. Empty until then, and then the signup form checks a BSB against it.
CREATE TABLE bsb_directory (
    bsb         TEXT NOT NULL PRIMARY KEY,
    mnemonic    TEXT NOT NULL,
    branch      TEXT NOT NULL,
    address     TEXT NOT NULL,
    suburb      TEXT NOT NULL,
    state       TEXT NOT NULL,
    postcode    TEXT NOT NULL,
    payments    TEXT NOT NULL
);

-- +goose Down
DROP TABLE bsb_directory;
ALTER TABLE customer_links DROP COLUMN customer_abn;
ALTER TABLE customer_links DROP COLUMN customer_business_name;
ALTER TABLE customer_links DROP COLUMN customer_type;
ALTER TABLE customer_links DROP COLUMN customer_account_name;
