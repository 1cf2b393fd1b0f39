-- +goose Up
-- withdrawn_at is when Withdraw took the debit back before any cut claimed it (its customer
-- revoked their authority). A withdrawn debit stays recorded, so that a submission of its key
-- again (its batch's next step, after the customer linked again) finds it withdrawn rather than
-- queueing it anew: no cut takes it, Outcomes reports it failed, and its account is erased when
-- it is withdrawn.
ALTER TABLE becs_debits ADD COLUMN withdrawn_at BIGINT;
DROP INDEX becs_debits_unfiled;
CREATE INDEX becs_debits_unfiled ON becs_debits (site_id) WHERE file_id IS NULL AND withdrawn_at IS NULL;

-- +goose Down
-- The version before knows no withdrawn debit: it would take one, its account erased, into its
-- next cut (which then fails, and every cut of its site until the debit's deadline). Its
-- Withdraw deleted the debit: so does the Down.
DELETE FROM becs_debits WHERE withdrawn_at IS NOT NULL;
DROP INDEX becs_debits_unfiled;
CREATE INDEX becs_debits_unfiled ON becs_debits (site_id) WHERE file_id IS NULL;
ALTER TABLE becs_debits DROP COLUMN withdrawn_at;
