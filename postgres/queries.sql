-- name: CreateOrganisation :exec
INSERT INTO organisations (id, name, created_at) VALUES (sqlc.arg(id), sqlc.arg(name), sqlc.arg(created_at));

-- name: CountOrganisations :one
SELECT count(*) FROM organisations;

-- name: CreateSite :exec
INSERT INTO sites (id, organisation_id, name, currency, rail, created_at)
VALUES (sqlc.arg(id), sqlc.arg(organisation_id), sqlc.arg(name), sqlc.arg(currency), sqlc.arg(rail), sqlc.arg(created_at));

-- name: GetSite :one
SELECT * FROM sites WHERE id = sqlc.arg(id);

-- name: CreateClient :exec
INSERT INTO api_clients (id, organisation_id, secret_hash, scopes, created_at, revoked_at)
VALUES (sqlc.arg(id), sqlc.arg(organisation_id), sqlc.arg(secret_hash), sqlc.arg(scopes), sqlc.arg(created_at), sqlc.narg(revoked_at));

-- name: GetClient :one
SELECT * FROM api_clients WHERE id = sqlc.arg(id);

-- name: RevokeClient :one
UPDATE api_clients SET revoked_at = coalesce(revoked_at, CAST(sqlc.arg(revoked_at) AS BIGINT))
WHERE id = sqlc.arg(id)
RETURNING *;

-- name: InsertSigningKey :exec
-- The first key, unless a key exists: of replicas starting together one inserts it and the others
-- conflict on seq 1 and do nothing; once keys were rotated and the first deleted, none comes back.
INSERT INTO signing_keys (id, seq, secret, created_at)
SELECT sqlc.arg(id), 1, sqlc.arg(secret), sqlc.arg(created_at)
WHERE NOT EXISTS (SELECT 1 FROM signing_keys)
ON CONFLICT DO NOTHING;

-- name: GetSigningKey :one
-- The current key.
SELECT id, secret, created_at FROM signing_keys ORDER BY seq DESC LIMIT 1;

-- name: ExpireInvitations :exec
-- Only the pair's current link can be stored as invited: CreateLink expires or refuses the
-- current invitation before it adds another. Saying so lets the is_current index serve.
UPDATE customer_links SET state = 'expired'
WHERE site_id = sqlc.arg(site_id) AND customer_reference = sqlc.arg(customer_reference) AND is_current
  AND state = 'invited' AND expires_at <= sqlc.arg(at);

-- name: ClearCurrentLink :exec
UPDATE customer_links SET is_current = FALSE
WHERE site_id = sqlc.arg(site_id) AND customer_reference = sqlc.arg(customer_reference) AND is_current;

-- name: InsertLink :exec
INSERT INTO customer_links (id, site_id, customer_reference, state, is_current, created_at, expires_at)
VALUES (sqlc.arg(id), sqlc.arg(site_id), sqlc.arg(customer_reference), 'invited', TRUE, sqlc.arg(created_at), sqlc.arg(expires_at));

-- name: GetCurrentLink :one
SELECT * FROM customer_links
WHERE site_id = sqlc.arg(site_id) AND customer_reference = sqlc.arg(customer_reference) AND is_current;

-- name: GetLink :one
SELECT * FROM customer_links WHERE id = sqlc.arg(id);

-- name: ListLinks :many
SELECT * FROM customer_links
WHERE site_id = sqlc.arg(site_id) AND is_current AND customer_reference > sqlc.arg(after)
ORDER BY customer_reference
LIMIT sqlc.arg(lim);

-- name: ListInvitedLinks :many
-- Invitations still open at now.
SELECT * FROM customer_links
WHERE site_id = sqlc.arg(site_id) AND is_current AND customer_reference > sqlc.arg(after)
  AND state = 'invited' AND expires_at > sqlc.arg(now)
ORDER BY customer_reference
LIMIT sqlc.arg(lim);

-- name: ListExpiredLinks :many
-- Invitations marked expired, and those still stored as invited that expired by now.
SELECT * FROM customer_links
WHERE site_id = sqlc.arg(site_id) AND is_current AND customer_reference > sqlc.arg(after)
  AND (state = 'expired' OR (state = 'invited' AND expires_at <= sqlc.arg(now)))
ORDER BY customer_reference
LIMIT sqlc.arg(lim);

-- name: ListLinksInState :many
-- For the states that time does not change: linked and revoked.
SELECT * FROM customer_links
WHERE site_id = sqlc.arg(site_id) AND is_current AND customer_reference > sqlc.arg(after)
  AND state = sqlc.arg(state)
ORDER BY customer_reference
LIMIT sqlc.arg(lim);

-- name: LinkCustomer :one
UPDATE customer_links
SET state = 'linked', linked_at = CAST(sqlc.arg(at) AS BIGINT),
    customer_name = CAST(sqlc.arg(customer_name) AS TEXT), customer_email = CAST(sqlc.arg(customer_email) AS TEXT),
    customer_bsb = CAST(sqlc.arg(customer_bsb) AS TEXT), customer_account_number = CAST(sqlc.arg(customer_account_number) AS TEXT)
WHERE id = sqlc.arg(id) AND state = 'invited' AND expires_at > sqlc.arg(at)
RETURNING *;

-- name: RevokeLink :one
UPDATE customer_links
SET state = 'revoked', revoked_at = CAST(sqlc.arg(at) AS BIGINT), revoked_by = CAST(sqlc.arg(revoked_by) AS TEXT)
WHERE id = sqlc.arg(id) AND ((state = 'invited' AND expires_at > sqlc.arg(at)) OR state = 'linked')
RETURNING *;

-- name: DeleteBatchPastRetention :exec
-- Frees a reference whose batch is past its retention, before CreateBatch inserts a new one.
DELETE FROM batches
WHERE site_id = @site_id AND reference = @reference AND retain_until <= @at;

-- name: InsertBatch :one
-- Returns no row when the site has a batch with the reference (waiting, if another transaction
-- is inserting it, for that transaction to end).
INSERT INTO batches (id, site_id, reference, fingerprint, state, row_count, total_amount,
                     submitted_at, completed_at, deadline_at, retain_until)
VALUES (@id, @site_id, @reference, @fingerprint, @state, @row_count, @total_amount,
        @submitted_at, sqlc.narg(completed_at), @deadline_at, @retain_until)
ON CONFLICT (site_id, reference) DO NOTHING
RETURNING *;

-- name: InsertBatchRows :copyfrom
INSERT INTO batch_rows (id, batch_id, idx, row_reference, customer_reference, amount, state)
VALUES (@id, @batch_id, @idx, @row_reference, @customer_reference, @amount, @state);

-- name: GetBatch :one
SELECT * FROM batches WHERE site_id = @site_id AND reference = @reference;

-- name: GetBatchByID :one
SELECT * FROM batches WHERE id = @id;

-- name: BatchRows :many
SELECT * FROM batch_rows WHERE batch_id = @batch_id ORDER BY idx;

-- name: BatchRowsInState :many
SELECT * FROM batch_rows WHERE batch_id = @batch_id AND state = @state ORDER BY idx;

-- name: BatchSummary :many
SELECT state, count(*) AS row_count, sum(amount)::bigint AS amount
FROM batch_rows WHERE batch_id = @batch_id
GROUP BY state;

-- name: ListBatches :many
SELECT * FROM batches
WHERE site_id = @site_id
ORDER BY submitted_at DESC, id DESC
LIMIT @lim;

-- name: ListBatchesAfter :many
-- The page after the batch (after_submitted_at, after_id) in the order of ListBatches.
SELECT * FROM batches
WHERE site_id = @site_id AND (submitted_at, id) < (@after_submitted_at::bigint, @after_id::text)
ORDER BY submitted_at DESC, id DESC
LIMIT @lim;

-- name: StartBatch :exec
UPDATE batches SET state = 'inProgress' WHERE id = @id AND state = 'accepted';

-- name: PendingRows :many
-- The batch's pending rows with the current link of their customer at the batch's site, if any.
SELECT sqlc.embed(r),
       coalesce(l.state = 'linked', FALSE)::boolean AS linked,
       l.customer_name, l.customer_email, l.customer_bsb, l.customer_account_number
FROM batch_rows AS r
JOIN batches AS b ON b.id = r.batch_id
LEFT JOIN customer_links AS l
       ON l.site_id = b.site_id AND l.customer_reference = r.customer_reference AND l.is_current
WHERE r.batch_id = @batch_id AND r.state = 'pending'
ORDER BY r.idx;

-- name: MarkInProgress :exec
UPDATE batch_rows SET state = 'inProgress'
WHERE state = 'pending' AND id = ANY (@ids::text[]);

-- name: InProgressRows :many
SELECT id FROM batch_rows WHERE batch_id = @batch_id AND state = 'inProgress' ORDER BY idx;

-- name: RecordOutcomes :exec
-- The i-th outcome is row ids[i]: failed with failures[i], or succeeded when it is empty, at
-- ats[i] (the arrays are zipped: unnest in a select list). Rows already terminal keep their
-- outcome.
UPDATE batch_rows AS r
SET state = CASE WHEN o.failure = '' THEN 'succeeded' ELSE 'failed' END,
    failure_reason = nullif(o.failure, ''),
    outcome_at = o.at
FROM (SELECT unnest(@ids::text[]) AS id, unnest(@failures::text[]) AS failure,
             unnest(@ats::bigint[]) AS at) AS o
WHERE r.id = o.id AND r.state IN ('pending', 'inProgress');

-- name: CompleteBatch :exec
UPDATE batches SET state = 'completed', completed_at = @at::bigint
WHERE batches.id = @id AND batches.state <> 'completed'
  AND NOT EXISTS (SELECT 1 FROM batch_rows AS r
                  WHERE r.batch_id = batches.id AND r.state IN ('pending', 'inProgress'));

-- name: ExpireOverdueRows :execrows
UPDATE batch_rows SET state = 'failed', failure_reason = 'expired', outcome_at = @now::bigint
WHERE state IN ('pending', 'inProgress')
  AND batch_id IN (SELECT id FROM batches WHERE deadline_at <= @now::bigint AND state <> 'completed');

-- name: CompleteOverdueBatches :exec
UPDATE batches SET state = 'completed', completed_at = @now::bigint
WHERE deadline_at <= @now::bigint AND state <> 'completed';

-- name: ExpireBatchRows :execrows
UPDATE batch_rows SET state = 'failed', failure_reason = 'expired', outcome_at = @at::bigint
WHERE batch_id = @batch_id AND state IN ('pending', 'inProgress');

-- name: CompleteExpiredBatch :exec
UPDATE batches SET state = 'completed', completed_at = @at::bigint
WHERE id = @batch_id AND state <> 'completed';

-- name: LinkedCustomers :many
SELECT customer_reference FROM customer_links
WHERE site_id = @site_id AND is_current AND state = 'linked'
  AND customer_reference = ANY(@refs::text[]);

-- name: PurgeBatches :execrows
DELETE FROM batches WHERE retain_until <= @now;

-- name: AddSigningKey :exec
-- The new current key; two added at once conflict on seq.
INSERT INTO signing_keys (id, seq, secret, created_at)
SELECT sqlc.arg(id), coalesce(max(seq), 0) + 1, sqlc.arg(secret), sqlc.arg(created_at) FROM signing_keys;

-- name: ListSigningKeys :many
-- Every key, the current first.
SELECT id, secret, created_at FROM signing_keys ORDER BY seq DESC;

-- name: DeleteSigningKeysExcept :execrows
DELETE FROM signing_keys WHERE id <> sqlc.arg(id);

-- name: UpdateSigningKeySecret :execrows
-- Writes the secret only if it is still old_secret, so that a concurrent change is not undone.
UPDATE signing_keys SET secret = sqlc.arg(new_secret) WHERE id = sqlc.arg(id) AND secret = sqlc.arg(old_secret);

-- name: LinkDetailsAfter :many
-- A page, by id, of the links that hold a customer's details.
SELECT id, customer_name, customer_email, customer_bsb, customer_account_number FROM customer_links
WHERE id > sqlc.arg(after) AND customer_bsb IS NOT NULL
ORDER BY id
LIMIT sqlc.arg(lim);

-- name: UpdateLinkDetails :execrows
-- Writes the details only if they are still the old ones (NULL reads as ''), so that a concurrent
-- change, such as their erasure, is not undone.
UPDATE customer_links
SET customer_name = nullif(CAST(sqlc.arg(name) AS text), ''), customer_email = nullif(CAST(sqlc.arg(email) AS text), ''),
    customer_bsb = nullif(CAST(sqlc.arg(bsb) AS text), ''), customer_account_number = nullif(CAST(sqlc.arg(account_number) AS text), '')
WHERE id = sqlc.arg(id)
  AND coalesce(customer_name, '') = CAST(sqlc.arg(old_name) AS text) AND coalesce(customer_email, '') = CAST(sqlc.arg(old_email) AS text)
  AND coalesce(customer_bsb, '') = CAST(sqlc.arg(old_bsb) AS text) AND coalesce(customer_account_number, '') = CAST(sqlc.arg(old_account_number) AS text);

-- name: EraseBankDetails :execrows
-- Up to lim of the links revoked at or before `before` that still hold a customer's details lose
-- them; the link keeps its state and times.
UPDATE customer_links
SET customer_name = NULL, customer_email = NULL, customer_bsb = NULL, customer_account_number = NULL
WHERE id IN (SELECT l.id FROM customer_links AS l
             WHERE l.customer_bsb IS NOT NULL AND l.state = 'revoked' AND l.revoked_at <= CAST(sqlc.arg(before) AS BIGINT)
             LIMIT sqlc.arg(lim));

-- The operator's listings and the rotation of a client's secret (pyng admin). A listing is paged
-- by (created_at, id), starting after (-1, ''); an empty organisation_id lists every organisation's.

-- name: ListOrganisations :many
SELECT * FROM organisations
WHERE (created_at, id) > (@after_created_at::bigint, @after_id::text)
ORDER BY created_at, id
LIMIT @lim;

-- name: GetOrganisation :one
SELECT * FROM organisations WHERE id = @id;

-- name: ListSites :many
SELECT * FROM sites
WHERE (@organisation_id::text = '' OR organisation_id = @organisation_id::text)
  AND (created_at, id) > (@after_created_at::bigint, @after_id::text)
ORDER BY created_at, id
LIMIT @lim;

-- name: ListClients :many
SELECT * FROM api_clients
WHERE (@organisation_id::text = '' OR organisation_id = @organisation_id::text)
  AND (created_at, id) > (@after_created_at::bigint, @after_id::text)
ORDER BY created_at, id
LIMIT @lim;

-- name: SetClientSecret :one
-- Replaces the secret of a client that is not revoked; no row when there is no such client.
UPDATE api_clients SET secret_hash = @secret_hash
WHERE id = @id AND revoked_at IS NULL
RETURNING *;
