-- +goose Up
-- The events horizon: the events list, the fan-out of deliveries and the due deliveries show the
-- events of transactions below it (see 00005). It is the oldest transaction still running in the
-- statement's snapshot, leaving out those that the server's activity shows running in another
-- database of the cluster, which write no event here: a write transaction left open in another
-- database (an operator's session, another application's job) no longer holds every site's events
-- back. Every role sees the database and transaction id of every session (only their queries are
-- hidden). A running transaction that the activity does not show in another database counts, as
-- before (one that ended since the snapshot was taken: its events may be invisible to the
-- statement), so the horizon is never above what the statement can see. backend_xid is a 32-bit
-- xid, which the cast of the snapshot's xid8 gives: two transactions running at once never share
-- it. The queries read the horizon once a statement, as a scalar subquery (it costs about 18 µs).
-- +goose StatementBegin
CREATE FUNCTION events_horizon() RETURNS xid8 LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT running FROM pg_snapshot_xip(pg_current_snapshot()) AS running
         WHERE NOT EXISTS (SELECT 1 FROM pg_stat_get_activity(NULL) AS a
                           WHERE a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database())
                             AND a.backend_xid = running::xid)
         ORDER BY running LIMIT 1),
        pg_snapshot_xmax(pg_current_snapshot()))
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION events_horizon();
