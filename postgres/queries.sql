-- name: CreateOrganisation :exec
INSERT INTO organisations (id, name, created_at) VALUES (sqlc.arg(id), sqlc.arg(name), sqlc.arg(created_at));

-- name: CountOrganisations :one
SELECT count(*) FROM organisations;

-- name: CreateSite :exec
INSERT INTO sites (id, organisation_id, name, currency, created_at)
VALUES (sqlc.arg(id), sqlc.arg(organisation_id), sqlc.arg(name), sqlc.arg(currency), sqlc.arg(created_at));

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
INSERT INTO signing_keys (id, secret, created_at) VALUES (sqlc.arg(id), sqlc.arg(secret), sqlc.arg(created_at))
ON CONFLICT DO NOTHING;

-- name: GetSigningKey :one
SELECT id, secret, created_at FROM signing_keys WHERE singleton;

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
