-- +goose Up
-- staged_to names the destination a delivery staged the file to (Destination.String), set with
-- its mark: a publication finds the staged copy, or takes its absence for a rename, only there.
-- A file staged to an outbox, then published by a server configured with the bank's SFTP server
-- instead (or as well), whose staged copy is not there, was recorded lodged though the bank never
-- had it. The files delivered before have none, and are published as they were.
ALTER TABLE becs_files ADD COLUMN staged_to TEXT;

-- +goose Down
ALTER TABLE becs_files DROP COLUMN staged_to;
