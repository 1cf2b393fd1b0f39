-- +goose Up
-- publishing_at is when a delivery on SQLite claimed the file for its publication (the rename of
-- its staged copy): set by a statement of its own before the rename, cleared by the record of the
-- publication (or when the rename failed), so that no transaction, which would hold the
-- process's one connection, is open while the destination (the bank's SFTP server) is reached.
-- While it is set and published_at is not, the rename may be under way, and a file is not
-- recorded lodged otherwise (Lodge refuses). A claim a delivery cut short left (a crash) is taken
-- over by the next delivery run, which finishes the publication. On PostgreSQL a publication
-- holds the file's row locked instead and never sets it.
ALTER TABLE becs_files ADD COLUMN publishing_at BIGINT;

-- +goose Down
ALTER TABLE becs_files DROP COLUMN publishing_at;
