-- +goose Up
-- user_id is the debit user ID the customer's Direct Debit Request names (rail.Debit.UserID): a
-- cut takes a debit only into a file of that user ID, so that a change of the site's ID (set-rail)
-- never sends a debit queued before it under the new one, which its customer did not authorise,
-- whatever runs first, the cut-off or set-rail's withdrawal of those debits. NULL for the debits
-- queued before this column: they are taken as before.
ALTER TABLE becs_debits ADD COLUMN user_id TEXT;

-- +goose Down
ALTER TABLE becs_debits DROP COLUMN user_id;
