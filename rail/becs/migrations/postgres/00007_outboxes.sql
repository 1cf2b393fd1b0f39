-- +goose Up
-- becs_outboxes records, per outbox directory (PYNG_BECS_OUTBOX, its path cleaned), the marker
-- the first server to use it wrote into it (.pyng-outbox). Any replica may deliver a file, set a
-- lodged one's copy aside or remove one too late to lodge, so every replica must have the same
-- directory: one whose directory at that path holds no marker, or another, has one of its own
-- (another host's disk) and refuses to start (becs.Rail.CheckOutbox).
CREATE TABLE becs_outboxes (
    dir    TEXT PRIMARY KEY,
    marker TEXT NOT NULL
);

-- +goose Down
DROP TABLE becs_outboxes;
