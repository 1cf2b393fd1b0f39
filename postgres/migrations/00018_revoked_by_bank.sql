-- +goose Up
-- A link may be revoked by the bank: a return of a debit made under it for a reason that ends the
-- customer's authority (the account closed or not found, the customer deceased) revokes it.
ALTER TABLE customer_links DROP CONSTRAINT customer_links_revoked_by_check;
ALTER TABLE customer_links ADD CONSTRAINT customer_links_revoked_by_check
    CHECK (revoked_by IN ('customer', 'partner', 'bank'));

-- +goose Down
-- The older schema knows no bank: a link the bank revoked reads as revoked by the site.
UPDATE customer_links SET revoked_by = 'partner' WHERE revoked_by = 'bank';
ALTER TABLE customer_links DROP CONSTRAINT customer_links_revoked_by_check;
ALTER TABLE customer_links ADD CONSTRAINT customer_links_revoked_by_check
    CHECK (revoked_by IN ('customer', 'partner'));
