-- +goose Up
-- The terms of the Direct Debit Request Service Agreement the customer agreed to at signup
-- (ddr.Terms as JSON): whom the customer authorised to debit the account, its user ID and how to
-- reach it, as they stood then. They are the site's, not the customer's details, and are kept
-- when those are erased. NULL for a link not linked, or linked before this migration (its site's
-- current terms stand in).
ALTER TABLE customer_links ADD COLUMN agreed_terms TEXT;

-- +goose Down
ALTER TABLE customer_links DROP COLUMN agreed_terms;
