-- +goose Up
-- The copies of a file that deliveries make. A delivery is staged (the whole file under a
-- temporary name no one lodges), marked delivered, then published (renamed to its name):
-- published_at says the rename is done. A file marked delivered and not published is published by
-- the next delivery run, never staged again, so a crash between the two cannot put a file twice to
-- a bank that takes files as they arrive. The files delivered before were published with their
-- delivery. removed_at says when the copies a destination keeps for Pyng (the outbox's) were
-- removed, once the file's content was erased.
ALTER TABLE becs_files ADD COLUMN published_at BIGINT;
ALTER TABLE becs_files ADD COLUMN removed_at BIGINT;
UPDATE becs_files SET published_at = delivered_at WHERE delivered_at IS NOT NULL;
CREATE INDEX becs_files_unpublished ON becs_files (delivered_at) WHERE published_at IS NULL AND delivered_at IS NOT NULL;

-- +goose Down
DROP INDEX becs_files_unpublished;
ALTER TABLE becs_files DROP COLUMN removed_at;
ALTER TABLE becs_files DROP COLUMN published_at;
