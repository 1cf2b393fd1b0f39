-- +goose Up
-- The payment rail a site's debits go to, by name; the sites made before rails had names are on
-- the sandbox.
ALTER TABLE sites ADD COLUMN rail TEXT NOT NULL DEFAULT 'sandbox';

-- +goose Down
ALTER TABLE sites DROP COLUMN rail;
