-- +goose Up
-- The items of imported returns files that matched no debit that could be returned: kept, never
-- dropped, for an operator to look into. An item is keyed by the SHA-256 of the returns file it
-- came in and its line there, so that importing a file again adds nothing. record (sealed) is the
-- item's line as the bank sent it, the customer's bank details included.
CREATE TABLE becs_unmatched_returns (
    source              TEXT   NOT NULL,
    line                BIGINT NOT NULL,
    lodgement_reference TEXT   NOT NULL,
    amount              BIGINT NOT NULL,
    reason              BIGINT NOT NULL,
    problem             TEXT   NOT NULL,
    record              TEXT   NOT NULL, -- sealed
    imported_at         BIGINT NOT NULL,
    PRIMARY KEY (source, line)
);

-- +goose Down
DROP TABLE becs_unmatched_returns;
