-- +goose Up
-- publishing_at is when a delivery claimed the file: for its stage and mark (cleared by the mark),
-- then for its publication (the rename of its staged copy, cleared by its record, or when the
-- rename failed), each set by a statement of its own, so that no transaction is open while the
-- destination (the bank's SFTP server) is reached: on SQLite it would hold the process's one
-- connection, on PostgreSQL every site's events (listed up to the oldest transaction running).
-- While it is set on a file delivered and neither published nor removed, the rename may be under
-- way, and the file is not recorded lodged otherwise (Lodge refuses). A claim a delivery cut short
-- left (a crash) is taken over by a later delivery run, on PostgreSQL, whose replicas deliver at
-- once, only once it is stale (older than a delivery lasts), and that run finishes the delivery.
-- Set on a file removed (put aside), it says copies of it may be left at the destination, which
-- a later delivery run removes before clearing it.
ALTER TABLE becs_files ADD COLUMN publishing_at BIGINT;

-- +goose Down
ALTER TABLE becs_files DROP COLUMN publishing_at;
