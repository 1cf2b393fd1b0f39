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
WHERE site_id = sqlc.arg(site_id) AND reference = sqlc.arg(reference) AND retain_until <= sqlc.arg(at);

-- name: InsertBatch :one
-- The batch takes its site's rail as the site's row stands now (not as a cache holds it); an
-- unknown site's batch is refused by the foreign key.
-- Returns no row when the site has a batch with the reference.
INSERT INTO batches (id, site_id, reference, fingerprint, state, row_count, total_amount,
                     submitted_at, completed_at, deadline_at, retain_until, rail)
VALUES (sqlc.arg(id), sqlc.arg(site_id), sqlc.arg(reference), sqlc.arg(fingerprint), sqlc.arg(state),
        sqlc.arg(row_count), sqlc.arg(total_amount), sqlc.arg(submitted_at), sqlc.narg(completed_at),
        sqlc.arg(deadline_at), sqlc.arg(retain_until), coalesce((SELECT sites.rail FROM sites WHERE sites.id = sqlc.arg(site_id)), ''))
ON CONFLICT (site_id, reference) DO NOTHING
RETURNING *;

-- name: InsertBatchRows :exec
-- rows is a JSON array of {"id", "idx", "ref", "customer", "amount"}: one statement for the batch.
INSERT INTO batch_rows (id, batch_id, idx, row_reference, customer_reference, amount, state)
SELECT json_extract(r.value, '$.id'), sqlc.arg(batch_id), json_extract(r.value, '$.idx'),
       json_extract(r.value, '$.ref'), json_extract(r.value, '$.customer'),
       json_extract(r.value, '$.amount'), 'pending'
FROM jsonb_each(sqlc.arg(rows)) AS r;

-- name: GetBatch :one
SELECT * FROM batches WHERE site_id = sqlc.arg(site_id) AND reference = sqlc.arg(reference);

-- name: GetBatchByID :one
SELECT * FROM batches WHERE id = sqlc.arg(id);

-- name: BatchRows :many
SELECT * FROM batch_rows WHERE batch_id = sqlc.arg(batch_id) ORDER BY idx;

-- name: BatchRowsInState :many
SELECT * FROM batch_rows WHERE batch_id = sqlc.arg(batch_id) AND state = sqlc.arg(state) ORDER BY idx;

-- name: BatchSummary :many
SELECT state, count(*) AS row_count, CAST(sum(amount) AS BIGINT) AS amount
FROM batch_rows WHERE batch_id = sqlc.arg(batch_id)
GROUP BY state;

-- name: ListBatches :many
SELECT * FROM batches
WHERE site_id = sqlc.arg(site_id)
ORDER BY submitted_at DESC, id DESC
LIMIT sqlc.arg(lim);

-- name: ListBatchesAfter :many
-- The page after the batch (after_submitted_at, after_id) in the order of ListBatches.
SELECT * FROM batches
WHERE site_id = sqlc.arg(site_id)
  AND (submitted_at < sqlc.arg(after_submitted_at)
       OR (submitted_at = sqlc.arg(after_submitted_at) AND id < sqlc.arg(after_id)))
ORDER BY submitted_at DESC, id DESC
LIMIT sqlc.arg(lim);

-- name: StartBatch :exec
UPDATE batches SET state = 'inProgress' WHERE id = sqlc.arg(id) AND state = 'accepted';

-- name: PendingRows :many
-- The batch's pending rows with the current link of their customer at the batch's site, if any,
-- and the terms the customer agreed to with it.
SELECT sqlc.embed(r),
       CAST(coalesce(l.state = 'linked', FALSE) AS BOOLEAN) AS linked,
       l.customer_name, l.customer_email, l.customer_bsb, l.customer_account_number,
       l.customer_account_name, l.customer_type, l.customer_business_name, l.customer_abn, l.agreed_terms
FROM batch_rows AS r
JOIN batches AS b ON b.id = r.batch_id
LEFT JOIN customer_links AS l
       ON l.site_id = b.site_id AND l.customer_reference = r.customer_reference AND l.is_current
WHERE r.batch_id = sqlc.arg(batch_id) AND r.state = 'pending'
ORDER BY r.idx;

-- name: RowsByID :many
-- ids is a JSON array of row ids.
SELECT * FROM batch_rows WHERE id IN (SELECT value FROM json_each(sqlc.arg(ids)));

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
WHERE b.site_id = sqlc.arg(site_id) AND b.state <> 'completed' AND r.customer_reference = sqlc.arg(customer_reference)
  AND b.deadline_at > CAST(sqlc.arg(now) AS BIGINT);

-- name: InProgressRows :many
SELECT id FROM batch_rows WHERE batch_id = sqlc.arg(batch_id) AND state = 'inProgress' ORDER BY idx;

-- name: CompleteBatch :execrows
UPDATE batches SET state = 'completed', completed_at = CAST(sqlc.arg(at) AS BIGINT)
WHERE batches.id = sqlc.arg(id) AND batches.state <> 'completed'
  AND NOT EXISTS (SELECT 1 FROM batch_rows AS r
                  WHERE r.batch_id = batches.id AND r.state IN ('pending', 'inProgress'));

-- name: ExpireOverdueRows :execrows
-- A row expires at its batch's deadline, whenever the sweep finds it.
UPDATE batch_rows SET state = 'failed', failure_reason = 'expired',
  outcome_at = (SELECT b.deadline_at FROM batches AS b WHERE b.id = batch_rows.batch_id)
WHERE batch_rows.state IN ('pending', 'inProgress')
  AND batch_rows.batch_id IN (SELECT o.id FROM batches AS o WHERE o.deadline_at <= sqlc.arg(now) AND o.state <> 'completed');

-- name: OverdueBatches :many
-- The batches past their deadline, not completed: what the rails of those started settled is
-- recorded before their open rows expire.
SELECT * FROM batches WHERE deadline_at <= sqlc.arg(now) AND state <> 'completed' ORDER BY deadline_at, id;

-- name: CompleteOverdueBatches :many
UPDATE batches SET state = 'completed', completed_at = deadline_at
WHERE deadline_at <= sqlc.arg(now) AND state <> 'completed'
RETURNING id;

-- name: ExpireBatchRows :execrows
-- At the batch's deadline at the latest: a step after it expires the rows at the deadline.
UPDATE batch_rows SET state = 'failed', failure_reason = 'expired',
  outcome_at = min(CAST(sqlc.arg(at) AS BIGINT), (SELECT b.deadline_at FROM batches AS b WHERE b.id = sqlc.arg(batch_id)))
WHERE batch_rows.batch_id = sqlc.arg(batch_id) AND batch_rows.state IN ('pending', 'inProgress');

-- name: CompleteExpiredBatch :execrows
UPDATE batches SET state = 'completed', completed_at = min(CAST(sqlc.arg(at) AS BIGINT), deadline_at)
WHERE id = sqlc.arg(batch_id) AND state <> 'completed';

-- name: LinkedCustomers :many
-- With the terms each customer agreed to with the link (NULL before they were kept).
-- refs is a JSON array of customerReferences.
SELECT customer_reference, agreed_terms FROM customer_links
WHERE site_id = sqlc.arg(site_id) AND is_current AND state = 'linked'
  AND customer_reference IN (SELECT value FROM json_each(sqlc.arg(refs)));

-- name: PurgeBatches :execrows
-- Up to lim of the batches past their retention, with their rows (Store.inChunks).
DELETE FROM batches WHERE id IN (SELECT b.id FROM batches AS b WHERE b.retain_until <= sqlc.arg(now)
                                 ORDER BY b.retain_until LIMIT sqlc.arg(lim));

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
SET customer_name = nullif(CAST(sqlc.arg(name) AS TEXT), ''), customer_email = nullif(CAST(sqlc.arg(email) AS TEXT), ''),
    customer_bsb = nullif(CAST(sqlc.arg(bsb) AS TEXT), ''), customer_account_number = nullif(CAST(sqlc.arg(account_number) AS TEXT), ''),
    customer_account_name = nullif(CAST(sqlc.arg(account_name) AS TEXT), ''), customer_type = nullif(CAST(sqlc.arg(type) AS TEXT), ''),
    customer_business_name = nullif(CAST(sqlc.arg(business_name) AS TEXT), ''), customer_abn = nullif(CAST(sqlc.arg(abn) AS TEXT), '')
WHERE id = sqlc.arg(id)
  AND coalesce(customer_name, '') = CAST(sqlc.arg(old_name) AS TEXT) AND coalesce(customer_email, '') = CAST(sqlc.arg(old_email) AS TEXT)
  AND coalesce(customer_bsb, '') = CAST(sqlc.arg(old_bsb) AS TEXT) AND coalesce(customer_account_number, '') = CAST(sqlc.arg(old_account_number) AS TEXT)
  AND coalesce(customer_account_name, '') = CAST(sqlc.arg(old_account_name) AS TEXT) AND coalesce(customer_type, '') = CAST(sqlc.arg(old_type) AS TEXT)
  AND coalesce(customer_business_name, '') = CAST(sqlc.arg(old_business_name) AS TEXT) AND coalesce(customer_abn, '') = CAST(sqlc.arg(old_abn) AS TEXT);

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

-- name: GetEvent :one
SELECT id, site_id, type, created_at, body FROM events WHERE id = sqlc.arg(id);

-- name: EventPosition :one
-- An event past its retention is no position, whether or not the purge has reached it (the purge
-- keeps the latest event).
SELECT seq FROM events WHERE site_id = sqlc.arg(site_id) AND id = sqlc.arg(id) AND created_at > sqlc.arg(since);

-- name: ListEvents :many
-- hidden is a JSON array of the types left out (those the caller may not read).
SELECT id, site_id, type, created_at, body FROM events
WHERE site_id = sqlc.arg(site_id) AND seq > sqlc.arg(after_seq) AND created_at > sqlc.arg(since)
  AND type NOT IN (SELECT value FROM json_each(sqlc.arg(hidden)))
ORDER BY seq
LIMIT sqlc.arg(lim);

-- name: ListEventsOfType :many
SELECT id, site_id, type, created_at, body FROM events
WHERE site_id = sqlc.arg(site_id) AND type = sqlc.arg(type) AND seq > sqlc.arg(after_seq) AND created_at > sqlc.arg(since)
ORDER BY seq
LIMIT sqlc.arg(lim);

-- name: PurgeEvents :execrows
-- The latest event (the largest seq) is kept, past its retention too (the list leaves it out by
-- created_at): seq is the rowid, which SQLite gives a new row as the largest kept plus one, so
-- were every event removed the next ones would take the seqs of those removed, at or below the
-- endpoints' sent_seq, and never be sent.
-- Up to lim of them at a time (Store.inChunks).
DELETE FROM events WHERE seq IN (SELECT o.seq FROM events AS o
                                 WHERE o.created_at <= sqlc.arg(before) AND o.seq < (SELECT max(ev.seq) FROM events AS ev)
                                 ORDER BY o.created_at LIMIT sqlc.arg(lim));

-- name: ExpireDueInvitations :many
-- The invitations past their expiry, up to lim of them, marked expired. On PostgreSQL a replica
-- running the same sweep waits for the other's update, then finds the link no longer invited.
UPDATE customer_links SET state = 'expired'
WHERE state = 'invited' AND id IN (SELECT id FROM customer_links AS c
                                   WHERE c.state = 'invited' AND c.expires_at <= sqlc.arg(now)
                                   ORDER BY c.expires_at LIMIT sqlc.arg(lim))
RETURNING *;

-- name: InsertWebhookEndpoint :exec
-- The endpoint is sent the events after the latest (a trigger sets sent_seq; see migration 00011).
INSERT INTO webhook_endpoints (id, site_id, url, event_types, state, secret, created_at)
VALUES (sqlc.arg(id), sqlc.arg(site_id), sqlc.arg(url), sqlc.arg(event_types), sqlc.arg(state), sqlc.arg(secret), sqlc.arg(created_at));

-- name: CountWebhookEndpoints :one
SELECT count(*) FROM webhook_endpoints WHERE site_id = sqlc.arg(site_id);

-- name: LockSite :one
-- The site, read to add to what it holds in this transaction (a webhook endpoint, within the
-- site's limit): a transaction on SQLite begins IMMEDIATE, so that it holds the database's write
-- lock already.
SELECT id FROM sites WHERE id = sqlc.arg(id);

-- name: ListWebhookEndpoints :many
SELECT id, site_id, url, event_types, state, disabled_reason, secret, previous_secret, previous_secret_until, created_at, failing_since, lease_holder, lease_until
FROM webhook_endpoints WHERE site_id = sqlc.arg(site_id) ORDER BY created_at, id;

-- name: GetWebhookEndpoint :one
SELECT id, site_id, url, event_types, state, disabled_reason, secret, previous_secret, previous_secret_until, created_at, failing_since, lease_holder, lease_until
FROM webhook_endpoints WHERE id = sqlc.arg(id);

-- name: LockWebhookEndpoint :one
-- The endpoint, read to be changed in this transaction (UpdateWebhookEndpoint): a transaction on
-- SQLite begins IMMEDIATE, so that it holds the database's write lock already.
SELECT id, site_id, url, event_types, state, disabled_reason, secret, previous_secret, previous_secret_until, created_at, failing_since, lease_holder, lease_until
FROM webhook_endpoints WHERE id = sqlc.arg(id);

-- name: EndpointToSend :one
-- What the fan-out of the endpoint's deliveries reads of it.
SELECT site_id, state, event_types, sent_seq FROM webhook_endpoints WHERE id = sqlc.arg(id);

-- name: UpdateWebhookEndpoint :execrows
UPDATE webhook_endpoints
SET url = sqlc.arg(url), event_types = sqlc.arg(event_types), state = sqlc.arg(state),
    disabled_reason = sqlc.narg(disabled_reason), secret = sqlc.arg(secret),
    previous_secret = sqlc.narg(previous_secret), previous_secret_until = sqlc.narg(previous_secret_until),
    failing_since = sqlc.narg(failing_since),
    -- An endpoint enabled again is not sent the events of the time it was disabled.
    sent_seq = CASE WHEN state = 'disabled' AND sqlc.arg(state) = 'enabled' THEN (SELECT COALESCE(max(ev.seq), 0) FROM events AS ev) ELSE sent_seq END
WHERE webhook_endpoints.id = sqlc.arg(id);

-- name: DeleteWebhookEndpoint :execrows
DELETE FROM webhook_endpoints WHERE site_id = sqlc.arg(site_id) AND id = sqlc.arg(id);

-- name: MarkEndpointSucceeded :exec
UPDATE webhook_endpoints SET failing_since = NULL WHERE id = sqlc.arg(id) AND failing_since IS NOT NULL;

-- name: MarkEndpointFailing :exec
UPDATE webhook_endpoints SET failing_since = CAST(sqlc.arg(at) AS BIGINT) WHERE id = sqlc.arg(id) AND failing_since IS NULL;

-- name: DisableFailingEndpoint :execrows
-- Disables the endpoint if it is enabled and has failed since cutoff or earlier.
UPDATE webhook_endpoints SET state = 'disabled', disabled_reason = 'failing'
WHERE id = sqlc.arg(id) AND state = 'enabled' AND failing_since <= CAST(sqlc.arg(cutoff) AS BIGINT);

-- name: InsertDeliveries :exec
-- Pending deliveries, due at their events' times, given as a JSON array of {"id", "endpoint",
-- "event", "type", "at"}; a delivery the endpoint has of the event is kept.
INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, state, created_at, next_attempt_at)
SELECT d.value ->> '$.id', d.value ->> '$.endpoint', d.value ->> '$.event', d.value ->> '$.type', 'pending', d.value ->> '$.at', d.value ->> '$.at'
FROM jsonb_each(sqlc.arg(deliveries)) AS d
WHERE true
ON CONFLICT DO NOTHING;

-- name: EventsToSend :many
-- Up to lim of the site's events after after_seq, in their order: those an endpoint is next given
-- deliveries of (FanOutDeliveries).
SELECT seq, id, type, created_at FROM events
WHERE site_id = sqlc.arg(site_id) AND seq > sqlc.arg(after_seq)
ORDER BY seq
LIMIT sqlc.arg(lim);

-- name: SetEndpointSent :execrows
-- Moves the endpoint's position on from the one the fan-out read, unless it moved meanwhile (the
-- endpoint was enabled again, and starts after the events of its time disabled): 0 then.
UPDATE webhook_endpoints SET sent_seq = sqlc.arg(sent_seq) WHERE id = sqlc.arg(id) AND sent_seq = sqlc.arg(read_seq);

-- name: GetDelivery :one
SELECT * FROM webhook_deliveries WHERE id = sqlc.arg(id);

-- name: ListDeliveries :many
SELECT * FROM webhook_deliveries WHERE endpoint_id = sqlc.arg(endpoint_id)
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(lim);

-- name: ListDeliveriesBefore :many
SELECT * FROM webhook_deliveries
WHERE endpoint_id = sqlc.arg(endpoint_id)
  AND (created_at < sqlc.arg(created_at) OR (created_at = sqlc.arg(created_at) AND id < sqlc.arg(id)))
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(lim);

-- name: RetryDelivery :execrows
-- A retry counts (retries), up to max_retries: an attempt in flight when it is made leaves the
-- delivery as the retry left it (see RecordDeliveryOutcomes).
UPDATE webhook_deliveries SET state = 'pending', tries = 0, retries = retries + 1, next_attempt_at = CAST(sqlc.arg(now) AS BIGINT)
WHERE id = sqlc.arg(id) AND retries < sqlc.arg(max_retries);

-- name: DueEndpoints :many
-- The endpoints with deliveries due, or enabled with events to be given deliveries of: a look
-- into webhook_deliveries_due and events_site_seq per endpoint, for the endpoints are few (at
-- most 16 a site) where the deliveries and events may be many.
SELECT e.id FROM webhook_endpoints AS e
WHERE (EXISTS (SELECT 1 FROM webhook_deliveries AS d
               WHERE d.endpoint_id = e.id AND d.state = 'pending' AND d.next_attempt_at <= CAST(sqlc.arg(now) AS BIGINT))
    OR (e.state = 'enabled' AND EXISTS (SELECT 1 FROM events AS ev WHERE ev.site_id = e.site_id AND ev.seq > e.sent_seq)))
  -- not while a run holds it: that run sends what comes due (see LeaseEndpoint)
  AND (e.lease_until IS NULL OR e.lease_until <= CAST(sqlc.arg(now) AS BIGINT));

-- name: LeaseEndpoint :execrows
-- Gives the holder the endpoint's lease until until, unless another holds it past now; 1 when it
-- has it.
UPDATE webhook_endpoints SET lease_holder = sqlc.arg(holder), lease_until = CAST(sqlc.arg(until) AS BIGINT)
WHERE id = sqlc.arg(id) AND (lease_until IS NULL OR lease_until <= CAST(sqlc.arg(now) AS BIGINT) OR lease_holder = sqlc.arg(holder));

-- name: ReleaseEndpoint :exec
UPDATE webhook_endpoints SET lease_holder = NULL, lease_until = NULL
WHERE id = sqlc.arg(id) AND lease_holder = sqlc.arg(holder);

-- name: DueDeliveries :many
-- Up to lim of the endpoint's deliveries due by now, after the one due at after_at with after_id
-- in the order they came due, with their events' bodies. (The events list shows an event once it
-- is committed: the one writer commits in seq order, so none can precede it later.)
SELECT d.id, d.endpoint_id, d.event_id, d.event_type, d.state, d.created_at, d.tries, d.next_attempt_at, d.retries, ev.body
FROM webhook_deliveries AS d
JOIN events AS ev ON ev.id = d.event_id
WHERE d.endpoint_id = sqlc.arg(endpoint_id) AND d.state = 'pending' AND d.next_attempt_at <= CAST(sqlc.arg(now) AS BIGINT)
  AND (d.next_attempt_at > CAST(sqlc.arg(after_at) AS BIGINT) OR (d.next_attempt_at = CAST(sqlc.arg(after_at) AS BIGINT) AND d.id > sqlc.arg(after_id)))
ORDER BY d.next_attempt_at, d.id
LIMIT sqlc.arg(lim);

-- name: DeliveryAttempts :many
-- ids is a JSON array of delivery ids.
SELECT * FROM webhook_attempts
WHERE delivery_id IN (SELECT value FROM json_each(sqlc.arg(ids)))
ORDER BY delivery_id, n;

-- The operator's listings and the rotation of a client's secret (pyng admin). A listing is paged
-- by (created_at, id), starting after (-1, ''); an empty organisation_id lists every organisation's.

-- name: ListOrganisations :many
SELECT * FROM organisations
WHERE created_at > sqlc.arg(after_created_at) OR (created_at = sqlc.arg(after_created_at) AND id > sqlc.arg(after_id))
ORDER BY created_at, id
LIMIT sqlc.arg(lim);

-- name: GetOrganisation :one
SELECT * FROM organisations WHERE id = sqlc.arg(id);

-- name: ListSites :many
SELECT * FROM sites
WHERE (CAST(sqlc.arg(organisation_id) AS TEXT) = '' OR organisation_id = sqlc.arg(organisation_id))
  AND (created_at > sqlc.arg(after_created_at) OR (created_at = sqlc.arg(after_created_at) AND id > sqlc.arg(after_id)))
ORDER BY created_at, id
LIMIT sqlc.arg(lim);

-- name: ListClients :many
SELECT * FROM api_clients
WHERE (CAST(sqlc.arg(organisation_id) AS TEXT) = '' OR organisation_id = sqlc.arg(organisation_id))
  AND (created_at > sqlc.arg(after_created_at) OR (created_at = sqlc.arg(after_created_at) AND id > sqlc.arg(after_id)))
ORDER BY created_at, id
LIMIT sqlc.arg(lim);

-- name: SetClientSecret :one
-- Replaces the secret of a client that is not revoked; no row when there is no such client.
UPDATE api_clients SET secret_hash = sqlc.arg(secret_hash)
WHERE id = sqlc.arg(id) AND revoked_at IS NULL
RETURNING *;

-- The BSB directory (pyng admin bsb import replaces it whole, in one transaction).

-- name: DeleteBranches :exec
DELETE FROM bsb_directory;

-- name: InsertBranch :exec
INSERT INTO bsb_directory (bsb, mnemonic, branch, address, suburb, state, postcode, payments)
VALUES (sqlc.arg(bsb), sqlc.arg(mnemonic), sqlc.arg(branch), sqlc.arg(address), sqlc.arg(suburb), sqlc.arg(state),
        sqlc.arg(postcode), sqlc.arg(payments));

-- name: GetBranch :one
SELECT * FROM bsb_directory WHERE bsb = sqlc.arg(bsb);

-- name: CountBranches :one
-- 0 or 1: whether the directory holds any branch.
SELECT count(*) FROM (SELECT 1 FROM bsb_directory LIMIT 1) AS any_branch;

-- The emails sent to customers, counted against the cap of emails to one address (ClaimEmail).

-- name: EmailCounted :one
-- 0 or 1: whether the email is counted already (an earlier attempt of its job claimed it).
SELECT count(*) FROM customer_emails_sent WHERE id = sqlc.arg(id);

-- name: CountEmailsSent :one
-- The emails to the address counted after since. A transaction on SQLite begins IMMEDIATE: it
-- holds the database's write lock, and no other claim counts between this count and the insert.
SELECT count(*) FROM customer_emails_sent WHERE address_key = sqlc.arg(address_key) AND sent_at > sqlc.arg(since);

-- name: InsertEmailSent :exec
INSERT INTO customer_emails_sent (id, address_key, sent_at) VALUES (sqlc.arg(id), sqlc.arg(address_key), sqlc.arg(sent_at));

-- name: DeleteEmailSent :exec
DELETE FROM customer_emails_sent WHERE id = sqlc.arg(id);

-- name: ForgetSentEmails :execrows
-- Up to lim of the emails counted at or before `before` (Store.inChunks).
DELETE FROM customer_emails_sent WHERE id IN (SELECT o.id FROM customer_emails_sent AS o WHERE o.sent_at <= sqlc.arg(before)
                                              ORDER BY o.sent_at LIMIT sqlc.arg(lim));
