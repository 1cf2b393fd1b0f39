package main

// The baselines' SQL: the database work of each scenario done directly, without the server. The
// tables are the server's own (the baseline schema or file is migrated by storage.Open), so the
// statements meet the same columns, constraints and indexes as the server's. One constant per
// statement and engine; SQLite takes ? placeholders, PostgreSQL $n.
const (
	// insertOrganisationPG and the others set up the organisation and site that links and
	// batches refer to.
	insertOrganisationPG     = `INSERT INTO organisations (id, name, created_at) VALUES ($1, 'Baseline', $2)`
	insertOrganisationSQLite = `INSERT INTO organisations (id, name, created_at) VALUES (?, 'Baseline', ?)`
	insertSitePG             = `INSERT INTO sites (id, organisation_id, name, currency, created_at) VALUES ($1, $2, 'Baseline', 'AUD', $3)`
	insertSiteSQLite         = `INSERT INTO sites (id, organisation_id, name, currency, created_at) VALUES (?, ?, 'Baseline', 'AUD', ?)`

	// insertLinkPG is scenario 1's baseline: one invited link, one statement, autocommit.
	insertLinkPG = `INSERT INTO customer_links (id, site_id, customer_reference, state, is_current, created_at, expires_at)
VALUES ($1, $2, $3, 'invited', TRUE, $4, $5)`
	insertLinkSQLite = `INSERT INTO customer_links (id, site_id, customer_reference, state, is_current, created_at, expires_at)
VALUES (?, ?, ?, 'invited', TRUE, ?, ?)`

	// insertBatchPG is the parent row the batch's rows refer to (a foreign key), written in the
	// rows' transaction.
	insertBatchPG = `INSERT INTO batches (id, site_id, reference, fingerprint, state, row_count, total_amount,
                     submitted_at, deadline_at, retain_until)
VALUES ($1, $2, $3, '\x00', 'accepted', $4, $5, $6, $7, $8)`
	insertBatchSQLite = `INSERT INTO batches (id, site_id, reference, fingerprint, state, row_count, total_amount,
                     submitted_at, deadline_at, retain_until)
VALUES (?, ?, ?, x'00', 'accepted', ?, ?, ?, ?, ?)`
	// insertBatchRowsSQLite is SQLite's bulk path, the store's: the rows as one JSON array read
	// with jsonb_each. (PostgreSQL's is COPY, which takes no SQL.)
	insertBatchRowsSQLite = `INSERT INTO batch_rows (id, batch_id, idx, row_reference, customer_reference, amount, state)
SELECT json_extract(r.value, '$.id'), ?, json_extract(r.value, '$.idx'),
       json_extract(r.value, '$.ref'), json_extract(r.value, '$.customer'),
       json_extract(r.value, '$.amount'), 'pending'
FROM jsonb_each(?) AS r`

	// recordOutcomesPG is scenario 3's baseline: 1000 rows moved to their outcome by one
	// set-based UPDATE, zipping arrays of ids, failures and times.
	recordOutcomesPG = `UPDATE batch_rows AS r
SET state = CASE WHEN o.failure = '' THEN 'succeeded' ELSE 'failed' END,
    failure_reason = nullif(o.failure, ''),
    outcome_at = o.at
FROM (SELECT unnest($1::text[]) AS id, unnest($2::text[]) AS failure, unnest($3::bigint[]) AS at) AS o
WHERE r.id = o.id AND r.state IN ('pending', 'inProgress')`
	// recordOutcomesSQLite is the same with a JSON array of {"id", "failure", "at"}, read with
	// jsonb_each as the store does.
	recordOutcomesSQLite = `UPDATE batch_rows
SET state = CASE WHEN json_extract(o.value, '$.failure') = '' THEN 'succeeded' ELSE 'failed' END,
    failure_reason = nullif(json_extract(o.value, '$.failure'), ''),
    outcome_at = json_extract(o.value, '$.at')
FROM jsonb_each(?) AS o
WHERE batch_rows.id = json_extract(o.value, '$.id') AND batch_rows.state IN ('pending', 'inProgress')`

	// batchRowsPG is scenario 4's baseline: a batch's rows in submission order.
	batchRowsPG = `SELECT id, batch_id, idx, row_reference, customer_reference, amount, state, failure_reason, outcome_at
FROM batch_rows WHERE batch_id = $1 ORDER BY idx`
	batchRowsSQLite = `SELECT id, batch_id, idx, row_reference, customer_reference, amount, state, failure_reason, outcome_at
FROM batch_rows WHERE batch_id = ? ORDER BY idx`
)
