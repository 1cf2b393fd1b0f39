-- +goose Up
-- The payment rail a batch's debits go to: its site's rail when the batch was accepted, kept for
-- the batch's life, so that moving a site to another rail never hands a debit that one rail has
-- taken (a BECS debit waiting for its cut-off) to a second rail as well. The batches accepted
-- before this migration keep their site's rail of now.
ALTER TABLE batches ADD COLUMN rail TEXT NOT NULL DEFAULT 'sandbox';
UPDATE batches SET rail = (SELECT sites.rail FROM sites WHERE sites.id = batches.site_id);

-- +goose Down
ALTER TABLE batches DROP COLUMN rail;
