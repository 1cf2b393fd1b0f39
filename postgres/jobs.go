package postgres

import (
	"context"
	"time"
)

// jobsWaiting reads River's table of jobs (River writes it; sqlc does not know it).
const jobsWaiting = `SELECT count(*), coalesce((extract(epoch FROM min(created_at)) * 1000)::bigint, 0)
FROM river_job
WHERE queue = $1 AND state IN ('available', 'pending', 'running', 'retryable', 'scheduled')`

func (e executor) JobsWaiting(ctx context.Context, queue string) (int, time.Time, error) {
	var n int
	var oldest int64
	if err := e.db.QueryRow(ctx, jobsWaiting, queue).Scan(&n, &oldest); err != nil || n == 0 {
		return 0, time.Time{}, err
	}
	return n, time.UnixMilli(oldest), nil
}
