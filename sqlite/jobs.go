package sqlite

import (
	"context"
	"time"
)

// jobsWaiting reads River's table of jobs (River writes it; sqlc does not know it). River keeps
// its times as text that SQLite's date functions read.
const jobsWaiting = `SELECT count(*), CAST(coalesce(unixepoch(min(created_at), 'subsec'), 0) * 1000 AS INTEGER)
FROM river_job
WHERE queue = ? AND state IN ('available', 'pending', 'running', 'retryable', 'scheduled')`

func (e executor) JobsWaiting(ctx context.Context, queue string) (int, time.Time, error) {
	rows, err := e.query(ctx, jobsWaiting, queue)
	if err != nil {
		return 0, time.Time{}, err
	}
	defer rows.Close()
	var n int
	var oldest int64
	if rows.Next() {
		if err := rows.Scan(&n, &oldest); err != nil {
			return 0, time.Time{}, err
		}
	}
	if err := rows.Err(); err != nil || n == 0 {
		return 0, time.Time{}, err
	}
	return n, time.UnixMilli(oldest), nil
}
