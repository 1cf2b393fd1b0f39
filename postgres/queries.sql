-- name: CreateOrganisation :exec
INSERT INTO organisations (id, name, created_at) VALUES (sqlc.arg(id), sqlc.arg(name), sqlc.arg(created_at));

-- name: CountOrganisations :one
SELECT count(*) FROM organisations;

-- name: CreateSite :exec
INSERT INTO sites (id, organisation_id, name, currency, rail, created_at)
VALUES (sqlc.arg(id), sqlc.arg(organisation_id), sqlc.arg(name), sqlc.arg(currency), sqlc.arg(rail), sqlc.arg(created_at));

-- name: GetSite :one
SELECT * FROM sites WHERE id = sqlc.arg(id);

-- name: SetSiteRail :execrows
UPDATE sites SET rail = sqlc.arg(rail) WHERE id = sqlc.arg(id);

-- name: UpdateSiteDebitUser :execrows
UPDATE sites
SET debit_user_name = sqlc.arg(debit_user_name), debit_user_abn = sqlc.arg(debit_user_abn),
    debit_user_phone = sqlc.arg(debit_user_phone), debit_user_email = sqlc.arg(debit_user_email),
    debit_user_address = sqlc.arg(debit_user_address), time_zone = sqlc.arg(time_zone)
WHERE id = sqlc.arg(id);

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

-- name: ExpireInvitations :many
-- Only the pair's current link can be stored as invited: CreateLink expires or refuses the
-- current invitation before it adds another. Saying so lets the is_current index serve.
UPDATE customer_links SET state = 'expired'
WHERE site_id = sqlc.arg(site_id) AND customer_reference = sqlc.arg(customer_reference) AND is_current
  AND state = 'invited' AND expires_at <= sqlc.arg(at)
RETURNING *;

-- name: ClearCurrentLink :exec
UPDATE customer_links SET is_current = FALSE
WHERE site_id = sqlc.arg(site_id) AND customer_reference = sqlc.arg(customer_reference) AND is_current;

-- name: InsertLink :execrows
-- Inserts nothing (and says so) when the pair has a current or active link: CreateLink then
-- expires and clears it in the same transaction, which an error would have aborted on PostgreSQL.
INSERT INTO customer_links (id, site_id, customer_reference, state, is_current, created_at, expires_at, metadata)
VALUES (sqlc.arg(id), sqlc.arg(site_id), sqlc.arg(customer_reference), 'invited', TRUE, sqlc.arg(created_at), sqlc.arg(expires_at), sqlc.narg(metadata))
ON CONFLICT DO NOTHING;

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
    customer_bsb = CAST(sqlc.arg(customer_bsb) AS TEXT), customer_account_number = CAST(sqlc.arg(customer_account_number) AS TEXT),
    customer_account_name = CAST(sqlc.arg(customer_account_name) AS TEXT), customer_type = CAST(sqlc.arg(customer_type) AS TEXT),
    customer_business_name = CAST(sqlc.arg(customer_business_name) AS TEXT), customer_abn = CAST(sqlc.arg(customer_abn) AS TEXT),
    signup_browser_key = sqlc.narg(browser_key), agreed_terms = sqlc.narg(agreed_terms)
WHERE id = sqlc.arg(id) AND state = 'invited' AND expires_at > sqlc.arg(at)
RETURNING *;

-- name: SignedUpFrom :one
-- 0 or 1: whether the link was linked from the browser of browser_key (never for NULL).
SELECT count(*) FROM customer_links WHERE id = sqlc.arg(id) AND signup_browser_key = sqlc.arg(browser_key);

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
-- The batch takes its site's rail as the site's row stands now (not as a cache holds it); an
-- unknown site's batch is refused by the foreign key.
-- Returns no row when the site has a batch with the reference (waiting, if another transaction
-- is inserting it, for that transaction to end).
INSERT INTO batches (id, site_id, reference, fingerprint, state, row_count, total_amount,
                     submitted_at, completed_at, deadline_at, retain_until, rail)
VALUES (@id, @site_id, @reference, @fingerprint, @state, @row_count, @total_amount,
        @submitted_at, sqlc.narg(completed_at), @deadline_at, @retain_until,
        coalesce((SELECT sites.rail FROM sites WHERE sites.id = @site_id), ''))
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
-- The batch's pending rows with the current link of their customer at the batch's site, if any,
-- and the terms the customer agreed to with it.
SELECT sqlc.embed(r),
       coalesce(l.state = 'linked', FALSE)::boolean AS linked,
       l.customer_name, l.customer_email, l.customer_bsb, l.customer_account_number,
       l.customer_account_name, l.customer_type, l.customer_business_name, l.customer_abn, l.agreed_terms
FROM batch_rows AS r
JOIN batches AS b ON b.id = r.batch_id
LEFT JOIN customer_links AS l
       ON l.site_id = b.site_id AND l.customer_reference = r.customer_reference AND l.is_current
WHERE r.batch_id = @batch_id AND r.state = 'pending'
ORDER BY r.idx;

-- name: MarkInProgress :exec
-- Row ids[i] went in the file file_ids[i] (none when empty). The rows' batches are locked first,
-- in the order of their ids, as every statement that moves many rows locks them: two transactions
-- moving some of the same rows (two steps of one batch, or a step and the deadline sweep) then take
-- turns, where locking the rows in the orders of their plans, one would wait for a row the other
-- holds while the other waits for one it holds, and one would fail, deadlocked. (The count is a
-- subquery that PostgreSQL runs once, before the rows are read.)
UPDATE batch_rows AS r SET state = 'inProgress', file_id = coalesce(nullif(p.file_id, ''), r.file_id)
FROM (SELECT unnest(@ids::text[]) AS id, unnest(@file_ids::text[]) AS file_id) AS p
WHERE r.id = p.id AND r.state = 'pending'
  AND (SELECT count(*) FROM (SELECT b.id FROM batches AS b
                             WHERE b.id IN (SELECT l.batch_id FROM batch_rows AS l WHERE l.id = ANY(@ids::text[]))
                             ORDER BY b.id
                             FOR NO KEY UPDATE) AS held) >= 0;

-- name: LockReturns :exec
-- Makes the transactions that return rows take turns (until the transaction ends), before
-- ReturnRows updates them: two imports returning some of the same rows in other orders (the bank's
-- files overlap) would otherwise each lock some and wait for the other's, and deadlock, one of
-- them failing. One lock for every import, rather than each row locked in one order first, which
-- would write every row twice; imports are few.
SELECT pg_advisory_xact_lock(sqlc.arg(lock)::bigint);

-- name: ReturnRows :many
-- Row ids[i] was returned at ats[i] for reasons[i]; only succeeded rows not returned yet change,
-- and come back as they now stand.
UPDATE batch_rows AS r
SET returned_at = o.at, return_reason = o.reason, return_retryable = o.retryable
FROM (SELECT unnest(@ids::text[]) AS id, unnest(@reasons::text[]) AS reason,
             unnest(@retryables::boolean[]) AS retryable, unnest(@ats::bigint[]) AS at) AS o
WHERE r.id = o.id AND r.state = 'succeeded' AND r.returned_at IS NULL
RETURNING r.*;

-- name: RowsByID :many
SELECT * FROM batch_rows WHERE id = ANY (@ids::text[]);

-- name: UnsentRowsOfCustomer :many
-- The pending rows of the customer's batches at the site, each with its batch's rail: the debits a
-- rail may hold unsent, or be sent by a step to come (of a batch not started yet too, which the
-- customer linking again before its first step must not let collect under the new agreement). A
-- batch past its deadline is left out: its open rows expire at the deadline, whatever a
-- withdrawal after it would say. Each row comes with its batch's submission, which tells the
-- agreement it was made under.
SELECT r.id, b.rail, b.submitted_at
FROM batches AS b
JOIN batch_rows AS r ON r.batch_id = b.id AND r.state = 'pending'
WHERE b.site_id = @site_id AND b.state <> 'completed' AND r.customer_reference = @customer_reference
  AND b.deadline_at > CAST(@now AS BIGINT);

-- name: InProgressRows :many
SELECT id FROM batch_rows WHERE batch_id = @batch_id AND state = 'inProgress' ORDER BY idx;

-- name: RecordOutcomes :exec
-- The i-th outcome is row ids[i]: failed with failures[i], or succeeded when it is empty, at
-- ats[i], in the file file_ids[i] when not empty (the arrays are zipped: unnest in a select
-- list). Rows already terminal keep their outcome. The rows' batches are locked first, as in
-- MarkInProgress.
UPDATE batch_rows AS r
SET state = CASE WHEN o.failure = '' THEN 'succeeded' ELSE 'failed' END,
    failure_reason = nullif(o.failure, ''),
    outcome_at = o.at,
    file_id = coalesce(nullif(o.file_id, ''), r.file_id)
FROM (SELECT unnest(@ids::text[]) AS id, unnest(@failures::text[]) AS failure,
             unnest(@ats::bigint[]) AS at, unnest(@file_ids::text[]) AS file_id) AS o
WHERE r.id = o.id AND r.state IN ('pending', 'inProgress')
  AND (SELECT count(*) FROM (SELECT b.id FROM batches AS b
                             WHERE b.id IN (SELECT l.batch_id FROM batch_rows AS l WHERE l.id = ANY(@ids::text[]))
                             ORDER BY b.id
                             FOR NO KEY UPDATE) AS held) >= 0;

-- name: CompleteBatch :execrows
UPDATE batches SET state = 'completed', completed_at = @at::bigint
WHERE batches.id = @id AND batches.state <> 'completed'
  AND NOT EXISTS (SELECT 1 FROM batch_rows AS r
                  WHERE r.batch_id = batches.id AND r.state IN ('pending', 'inProgress'));

-- name: ExpireOverdueRows :execrows
-- A row expires at its batch's deadline, whenever the sweep finds it. The batches are locked
-- first, as in MarkInProgress.
UPDATE batch_rows SET state = 'failed', failure_reason = 'expired', outcome_at = b.deadline_at
FROM batches AS b
WHERE batch_rows.batch_id = b.id AND batch_rows.state IN ('pending', 'inProgress')
  AND b.deadline_at <= @now::bigint AND b.state <> 'completed'
  AND (SELECT count(*) FROM (SELECT ob.id FROM batches AS ob
                             WHERE ob.deadline_at <= @now::bigint AND ob.state <> 'completed'
                             ORDER BY ob.id
                             FOR NO KEY UPDATE) AS held) >= 0;

-- name: OverdueBatches :many
-- The batches past their deadline, not completed: what the rails of those started settled is
-- recorded before their open rows expire.
SELECT * FROM batches WHERE deadline_at <= @now::bigint AND state <> 'completed' ORDER BY deadline_at, id;

-- name: CompleteOverdueBatches :many
UPDATE batches SET state = 'completed', completed_at = deadline_at
WHERE deadline_at <= @now::bigint AND state <> 'completed'
RETURNING id;

-- name: ExpireBatchRows :execrows
-- At the batch's deadline at the latest: a step after it expires the rows at the deadline. The
-- batch is locked first, as in MarkInProgress.
UPDATE batch_rows SET state = 'failed', failure_reason = 'expired',
  outcome_at = LEAST(@at::bigint, (SELECT b.deadline_at FROM batches AS b WHERE b.id = @batch_id))
WHERE batch_id = @batch_id AND state IN ('pending', 'inProgress')
  AND (SELECT count(*) FROM (SELECT b.id FROM batches AS b WHERE b.id = @batch_id FOR NO KEY UPDATE) AS held) >= 0;

-- name: CompleteExpiredBatch :execrows
UPDATE batches SET state = 'completed', completed_at = LEAST(@at::bigint, deadline_at)
WHERE id = @batch_id AND state <> 'completed';

-- name: LinkedCustomers :many
-- With the terms each customer agreed to with the link (NULL before they were kept).
SELECT customer_reference, agreed_terms FROM customer_links
WHERE site_id = @site_id AND is_current AND state = 'linked'
  AND customer_reference = ANY(@refs::text[]);

-- name: PurgeBatches :execrows
-- Up to lim of the batches past their retention, with their rows (Store.inChunks).
DELETE FROM batches WHERE id IN (SELECT b.id FROM batches AS b WHERE b.retain_until <= @now
                                 ORDER BY b.retain_until LIMIT @lim);

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
SELECT id, customer_name, customer_email, customer_bsb, customer_account_number,
       customer_account_name, customer_type, customer_business_name, customer_abn
FROM customer_links
WHERE id > sqlc.arg(after) AND customer_bsb IS NOT NULL
ORDER BY id
LIMIT sqlc.arg(lim);

-- name: UpdateLinkDetails :execrows
-- Writes the details only if they are still the old ones (NULL reads as ''), so that a concurrent
-- change, such as their erasure, is not undone.
UPDATE customer_links
SET customer_name = nullif(CAST(sqlc.arg(name) AS text), ''), customer_email = nullif(CAST(sqlc.arg(email) AS text), ''),
    customer_bsb = nullif(CAST(sqlc.arg(bsb) AS text), ''), customer_account_number = nullif(CAST(sqlc.arg(account_number) AS text), ''),
    customer_account_name = nullif(CAST(sqlc.arg(account_name) AS text), ''), customer_type = nullif(CAST(sqlc.arg(type) AS text), ''),
    customer_business_name = nullif(CAST(sqlc.arg(business_name) AS text), ''), customer_abn = nullif(CAST(sqlc.arg(abn) AS text), '')
WHERE id = sqlc.arg(id)
  AND coalesce(customer_name, '') = CAST(sqlc.arg(old_name) AS text) AND coalesce(customer_email, '') = CAST(sqlc.arg(old_email) AS text)
  AND coalesce(customer_bsb, '') = CAST(sqlc.arg(old_bsb) AS text) AND coalesce(customer_account_number, '') = CAST(sqlc.arg(old_account_number) AS text)
  AND coalesce(customer_account_name, '') = CAST(sqlc.arg(old_account_name) AS text) AND coalesce(customer_type, '') = CAST(sqlc.arg(old_type) AS text)
  AND coalesce(customer_business_name, '') = CAST(sqlc.arg(old_business_name) AS text) AND coalesce(customer_abn, '') = CAST(sqlc.arg(old_abn) AS text);

-- name: EraseBankDetails :execrows
-- Up to lim of the links revoked at or before `before` that still hold a customer's details lose
-- them; the link keeps its state and times.
UPDATE customer_links
SET customer_name = NULL, customer_email = NULL, customer_bsb = NULL, customer_account_number = NULL,
    customer_account_name = NULL, customer_type = NULL, customer_business_name = NULL, customer_abn = NULL
WHERE id IN (SELECT l.id FROM customer_links AS l
             WHERE l.customer_bsb IS NOT NULL AND l.state = 'revoked' AND l.revoked_at <= CAST(sqlc.arg(before) AS BIGINT)
             LIMIT sqlc.arg(lim));

-- Events and webhooks.

-- name: InsertEvents :exec
-- One statement for them all, in their order: the arrays are read in step, and seq follows them.
INSERT INTO events (id, site_id, type, created_at, body)
SELECT unnest(@ids::text[]), unnest(@site_ids::text[]), unnest(@types::text[]), unnest(@created_ats::bigint[]),
       unnest(@bodies::text[]);

-- name: GetEvent :one
SELECT id, site_id, type, created_at, body FROM events WHERE id = @id;

-- name: EventPosition :one
-- An event past its retention is no position, whether or not the purge has reached it.
SELECT CAST(txid AS TEXT) AS txid, seq FROM events WHERE site_id = @site_id AND id = @id AND created_at > @since;

-- name: ListEvents :many
-- Only events whose transaction is below the events horizon (migrations 00005 and 00014), and
-- not of the hidden types (those the caller may not read).
SELECT id, site_id, type, created_at, body FROM events
WHERE site_id = @site_id AND (txid, seq) > (CAST(sqlc.arg(after_txid) AS TEXT)::xid8, CAST(sqlc.arg(after_seq) AS BIGINT))
  AND txid < (SELECT events_horizon()) AND created_at > @since AND NOT (type = ANY(@hidden::text[]))
ORDER BY txid, seq
LIMIT @lim;

-- name: ListEventsOfType :many
SELECT id, site_id, type, created_at, body FROM events
WHERE site_id = @site_id AND type = @type AND (txid, seq) > (CAST(sqlc.arg(after_txid) AS TEXT)::xid8, CAST(sqlc.arg(after_seq) AS BIGINT))
  AND txid < (SELECT events_horizon()) AND created_at > @since
ORDER BY txid, seq
LIMIT @lim;

-- name: PurgeEvents :execrows
-- Up to lim of the events written at or before `before`, with their deliveries (Store.inChunks).
DELETE FROM events WHERE seq IN (SELECT o.seq FROM events AS o WHERE o.created_at <= @before
                                 ORDER BY o.created_at LIMIT @lim);

-- name: ExpireDueInvitations :many
-- The invitations past their expiry, up to lim of them, marked expired. The links are locked as
-- they are picked, skipping those another transaction holds (a replica running the same sweep, an
-- invitation again of the same customer): a sweep never waits, so two never deadlock, and what it
-- skipped the other expires or the next sweep finds.
UPDATE customer_links SET state = 'expired'
WHERE state = 'invited' AND id IN (SELECT c.id FROM customer_links AS c
                                   WHERE c.state = 'invited' AND c.expires_at <= @now
                                   ORDER BY c.expires_at LIMIT @lim
                                   FOR UPDATE SKIP LOCKED)
RETURNING *;

-- name: InsertWebhookEndpoint :exec
-- The endpoint is sent the events of the transactions after its own (sent_txid's default; see
-- migration 00011).
INSERT INTO webhook_endpoints (id, site_id, url, event_types, state, secret, created_at)
VALUES (@id, @site_id, @url, @event_types, @state, @secret, @created_at);

-- name: CountWebhookEndpoints :one
SELECT count(*) FROM webhook_endpoints WHERE site_id = @site_id;

-- name: LockSite :one
-- The site, read to add to what it holds in this transaction (a webhook endpoint, within the
-- site's limit), its row locked until the transaction ends: another such addition waits, then
-- counts what this one added. NO KEY UPDATE neither waits for nor holds up the writes that
-- reference the site (their foreign key checks take KEY SHARE) or read it.
SELECT id FROM sites WHERE id = @id
FOR NO KEY UPDATE;

-- name: ListWebhookEndpoints :many
SELECT id, site_id, url, event_types, state, disabled_reason, secret, previous_secret, previous_secret_until, created_at, failing_since, lease_holder, lease_until
FROM webhook_endpoints WHERE site_id = @site_id ORDER BY created_at, id;

-- name: GetWebhookEndpoint :one
SELECT id, site_id, url, event_types, state, disabled_reason, secret, previous_secret, previous_secret_until, created_at, failing_since, lease_holder, lease_until
FROM webhook_endpoints WHERE id = @id;

-- name: LockWebhookEndpoint :one
-- The endpoint, read to be changed in this transaction (UpdateWebhookEndpoint), its row locked
-- until the transaction ends: a change of it made meanwhile (another update, a rotation of its
-- secret, the delivery run disabling it) waits, and one made before is read.
SELECT id, site_id, url, event_types, state, disabled_reason, secret, previous_secret, previous_secret_until, created_at, failing_since, lease_holder, lease_until
FROM webhook_endpoints WHERE id = @id
FOR UPDATE;

-- name: EndpointToSend :one
-- What the fan-out of the endpoint's deliveries reads of it.
SELECT site_id, state, event_types, CAST(sent_txid AS TEXT) AS sent_txid, sent_seq FROM webhook_endpoints WHERE id = @id;

-- name: UpdateWebhookEndpoint :execrows
UPDATE webhook_endpoints
SET url = @url, event_types = @event_types, state = @state,
    disabled_reason = sqlc.narg(disabled_reason), secret = @secret,
    previous_secret = sqlc.narg(previous_secret), previous_secret_until = sqlc.narg(previous_secret_until),
    failing_since = sqlc.narg(failing_since),
    -- An endpoint enabled again is not sent the events of the time it was disabled.
    sent_txid = CASE WHEN state = 'disabled' AND @state = 'enabled' THEN pg_current_xact_id() ELSE sent_txid END,
    sent_seq = CASE WHEN state = 'disabled' AND @state = 'enabled' THEN 0 ELSE sent_seq END
WHERE id = @id;

-- name: DeleteWebhookEndpoint :execrows
DELETE FROM webhook_endpoints WHERE site_id = @site_id AND id = @id;

-- name: MarkEndpointSucceeded :exec
UPDATE webhook_endpoints SET failing_since = NULL WHERE id = @id AND failing_since IS NOT NULL;

-- name: MarkEndpointFailing :exec
UPDATE webhook_endpoints SET failing_since = @at::bigint WHERE id = @id AND failing_since IS NULL;

-- name: DisableFailingEndpoint :execrows
-- Disables the endpoint if it is enabled and has failed since cutoff or earlier.
UPDATE webhook_endpoints SET state = 'disabled', disabled_reason = 'failing'
WHERE id = @id AND state = 'enabled' AND failing_since <= @cutoff::bigint;

-- name: InsertDeliveries :exec
-- Pending deliveries, due at their events' times, as arrays of their columns; a delivery the
-- endpoint has of the event is kept.
INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, state, created_at, next_attempt_at)
SELECT d.id, d.endpoint_id, d.event_id, d.event_type, 'pending', d.created_at, d.created_at
FROM (SELECT unnest(@ids::text[]) AS id, unnest(@endpoint_ids::text[]) AS endpoint_id, unnest(@event_ids::text[]) AS event_id,
             unnest(@event_types::text[]) AS event_type, unnest(@created_ats::bigint[]) AS created_at) AS d
ON CONFLICT DO NOTHING;

-- name: EventsToSend :many
-- Up to lim of the site's events after the position, in their order: those an endpoint is next
-- given deliveries of (FanOutDeliveries); only of transactions no later commit can precede, as the
-- events list.
SELECT CAST(txid AS TEXT) AS txid, seq, id, type, created_at FROM events
WHERE site_id = @site_id AND (txid, seq) > (CAST(sqlc.arg(after_txid) AS TEXT)::xid8, CAST(sqlc.arg(after_seq) AS BIGINT))
  AND txid < (SELECT events_horizon())
ORDER BY txid, seq
LIMIT @lim;

-- name: SetEndpointSent :execrows
-- Moves the endpoint's position on from the one the fan-out read, unless it moved meanwhile (the
-- endpoint was enabled again, and starts after the events of its time disabled): 0 then.
UPDATE webhook_endpoints SET sent_txid = CAST(sqlc.arg(sent_txid) AS TEXT)::xid8, sent_seq = @sent_seq
WHERE id = @id AND sent_txid = CAST(sqlc.arg(read_txid) AS TEXT)::xid8 AND sent_seq = @read_seq;

-- name: GetDelivery :one
SELECT * FROM webhook_deliveries WHERE id = @id;

-- name: ListDeliveries :many
SELECT * FROM webhook_deliveries WHERE endpoint_id = @endpoint_id
ORDER BY created_at DESC, id DESC
LIMIT @lim;

-- name: ListDeliveriesBefore :many
SELECT * FROM webhook_deliveries
WHERE endpoint_id = @endpoint_id
  AND (created_at < @created_at OR (created_at = @created_at AND id < @id))
ORDER BY created_at DESC, id DESC
LIMIT @lim;

-- name: RetryDelivery :execrows
-- A retry counts (retries), up to max_retries: an attempt in flight when it is made leaves the
-- delivery as the retry left it (see UpdateDeliveries).
UPDATE webhook_deliveries SET state = 'pending', tries = 0, retries = retries + 1, next_attempt_at = @now::bigint
WHERE id = @id AND retries < @max_retries;

-- name: DueEndpoints :many
-- The endpoints with deliveries due, or enabled with events to be given deliveries of: a look
-- into webhook_deliveries_due and events_site_order per endpoint, for the endpoints are few (at
-- most 16 a site) where the deliveries and events may be many.
SELECT e.id FROM webhook_endpoints AS e
WHERE (EXISTS (SELECT 1 FROM webhook_deliveries AS d
               WHERE d.endpoint_id = e.id AND d.state = 'pending' AND d.next_attempt_at <= @now::bigint)
    OR (e.state = 'enabled' AND EXISTS (SELECT 1 FROM events AS ev
                                        WHERE ev.site_id = e.site_id AND (ev.txid, ev.seq) > (e.sent_txid, e.sent_seq)
                                          AND ev.txid < (SELECT events_horizon()))))
  -- not while a run holds it: that run sends what comes due (see LeaseEndpoint)
  AND (e.lease_until IS NULL OR e.lease_until <= @now::bigint);

-- name: LeaseEndpoint :execrows
-- Gives the holder the endpoint's lease until until, unless another holds it past now; 1 when it
-- has it.
UPDATE webhook_endpoints SET lease_holder = @holder, lease_until = @until::bigint
WHERE id = @id AND (lease_until IS NULL OR lease_until <= @now::bigint OR lease_holder = @holder);

-- name: ReleaseEndpoint :exec
UPDATE webhook_endpoints SET lease_holder = NULL, lease_until = NULL
WHERE id = @id AND lease_holder = @holder;

-- name: DueDeliveries :many
-- Up to lim of the endpoint's deliveries due by now, after the one due at after_at with after_id
-- in the order they came due, with their events' bodies; only of events the events list shows
-- (as EventsToSend): a delivery made in its event's transaction (the sandbox's webhook.test) waits
-- until no later commit can precede its event, so that a partner passing its eventId as `after`
-- skips no event.
SELECT d.id, d.endpoint_id, d.event_id, d.event_type, d.state, d.created_at, d.tries, d.next_attempt_at, d.retries, ev.body
FROM webhook_deliveries AS d
JOIN events AS ev ON ev.id = d.event_id
WHERE d.endpoint_id = @endpoint_id AND d.state = 'pending' AND d.next_attempt_at <= @now::bigint
  AND ev.txid < (SELECT events_horizon())
  AND (d.next_attempt_at > @after_at::bigint OR (d.next_attempt_at = @after_at::bigint AND d.id > @after_id))
ORDER BY d.next_attempt_at, d.id
LIMIT @lim;

-- name: InsertAttempts :exec
-- The attempts of a round of deliveries, as arrays of their columns, each numbered after its
-- delivery's others; an attempt of a delivery that is gone is left out.
INSERT INTO webhook_attempts (delivery_id, n, attempted_at, status, error, duration_ms)
SELECT a.delivery_id,
       COALESCE((SELECT max(w.n) FROM webhook_attempts AS w WHERE w.delivery_id = a.delivery_id), 0) + 1,
       a.attempted_at, a.status, a.error, a.duration_ms
FROM (SELECT unnest(@delivery_ids::text[]) AS delivery_id, unnest(@attempted_ats::bigint[]) AS attempted_at,
             unnest(@statuses::integer[]) AS status, unnest(@errors::text[]) AS error,
             unnest(@durations_ms::bigint[]) AS duration_ms) AS a
JOIN webhook_deliveries AS d ON d.id = a.delivery_id;

-- name: UpdateDeliveries :exec
-- Each delivery's state after its attempt (next_attempt_ats: 0 when it is no longer pending),
-- unless it was retried since the run read it (its retries are not those read): the retry stands.
UPDATE webhook_deliveries AS d
SET state = o.state, tries = d.tries + 1, next_attempt_at = nullif(o.next_attempt_at, 0)
FROM (SELECT unnest(@ids::text[]) AS id, unnest(@states::text[]) AS state,
             unnest(@next_attempt_ats::bigint[]) AS next_attempt_at, unnest(@retries::bigint[]) AS retries) AS o
WHERE d.id = o.id AND d.retries = o.retries;

-- name: DeliveryAttempts :many
SELECT * FROM webhook_attempts
WHERE delivery_id = ANY(@ids::text[])
ORDER BY delivery_id, n;

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

-- The BSB directory (pyng admin bsb import replaces it whole, in one transaction).

-- name: DeleteBranches :exec
DELETE FROM bsb_directory;

-- name: InsertBranch :exec
INSERT INTO bsb_directory (bsb, mnemonic, branch, address, suburb, state, postcode, payments)
VALUES (@bsb, @mnemonic, @branch, @address, @suburb, @state, @postcode, @payments);

-- name: GetBranch :one
SELECT * FROM bsb_directory WHERE bsb = @bsb;

-- name: CountBranches :one
-- 0 or 1: whether the directory holds any branch.
SELECT count(*) FROM (SELECT 1 FROM bsb_directory LIMIT 1) AS any_branch;

-- name: InsertInvitation :one
-- An invitation and its customer.invited event in one statement, so in one round trip and
-- atomically. Returns 0, having written nothing, when the pair has a current or active link.
WITH link AS (
    INSERT INTO customer_links (id, site_id, customer_reference, state, is_current, created_at, expires_at, metadata)
    VALUES (@id::text, @site_id::text, @customer_reference::text, 'invited', TRUE, @created_at::bigint, @expires_at::bigint,
            sqlc.narg(metadata)::text)
    ON CONFLICT DO NOTHING
    RETURNING id
), event AS (
    INSERT INTO events (id, site_id, type, created_at, body)
    SELECT @event_id::text, @site_id::text, @event_type::text, @event_created_at::bigint, @event_body::text FROM link
    RETURNING id
)
SELECT count(*) FROM event;

-- The emails sent to customers, counted against the cap of emails to one address (ClaimEmail).

-- name: LockEmailAddress :exec
-- Holds the address (by its key's first 32 bits; another address that shares them only waits
-- the while) until the transaction ends: a claim for it waits here for another to commit, then
-- counts what it added (READ COMMITTED: the count's snapshot is taken after the wait). An
-- advisory lock of the two-key form, whose keys share no space with the one-key form's (goose's
-- lock of the migrations), class naming the emails' cap.
SELECT pg_advisory_xact_lock(@class::int, @key::int);

-- name: EmailCounted :one
-- 0 or 1: whether the email is counted already (an earlier attempt of its job claimed it).
SELECT count(*) FROM customer_emails_sent WHERE id = @id;

-- name: CountEmailsSent :one
-- The emails to the address counted after since; the address is held (LockEmailAddress).
SELECT count(*) FROM customer_emails_sent WHERE address_key = @address_key AND sent_at > @since;

-- name: InsertEmailSent :exec
INSERT INTO customer_emails_sent (id, address_key, sent_at) VALUES (@id, @address_key, @sent_at);

-- name: DeleteEmailSent :exec
DELETE FROM customer_emails_sent WHERE id = @id;

-- name: ForgetSentEmails :execrows
-- Up to lim of the emails counted at or before `before` (Store.inChunks).
DELETE FROM customer_emails_sent WHERE id IN (SELECT o.id FROM customer_emails_sent AS o WHERE o.sent_at <= @before
                                              ORDER BY o.sent_at LIMIT @lim);
