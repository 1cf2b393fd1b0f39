package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/jobs"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/storage"
)

// StartJobs starts working the job queue kept in db with service, and the periodic tasks, and
// returns the function that stops it (waiting for running jobs to finish or ctx to end).
func StartJobs(ctx context.Context, db storage.Database, service *billing.Service, logger *slog.Logger, cfg jobs.Config, tasks ...jobs.Task) (stop func(context.Context) error, err error) {
	client, err := db.NewJobClient(jobs.NewConfig(service, logger, cfg, tasks...))
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		return nil, fmt.Errorf("jobs: start: %w", err)
	}
	return client.Stop, nil
}

// BECSTasks are the BECS rail's periodic tasks: the cut-off, on the schedule of the settings,
// which cuts a file of each site's queued debits and delivers it, and the delivery, every minute,
// which delivers the files a failed delivery left (and lodges none: lodging is the operator's).
func BECSTasks(ctx context.Context, db storage.Database, clock billing.Clock, cfg Config, logger *slog.Logger) ([]jobs.Task, error) {
	loc, err := time.LoadLocation(cfg.BECSTimezone)
	if err != nil {
		return nil, err
	}
	schedule, err := becs.ParseSchedule(cfg.BECSCutoffs, loc)
	if err != nil {
		return nil, err
	}
	r, err := becs.Open(ctx, db.Conn(), clock)
	if err != nil {
		return nil, err
	}
	deliver := func(ctx context.Context) error {
		if cfg.BECSOutbox == "" {
			return nil
		}
		files, err := r.Deliver(ctx, cfg.BECSOutbox)
		for _, f := range files {
			logger.Info("BECS file delivered to the outbox; lodge it with the bank, then run pyng admin becs files lodged",
				"file", f.ID, "site", f.SiteID, "rows", f.Rows, "total", f.Total, "dir", cfg.BECSOutbox)
		}
		return err
	}
	cut := func(ctx context.Context) error {
		files, err := r.Cut(ctx, loc)
		for _, f := range files {
			logger.Info("BECS file cut", "file", f.ID, "site", f.SiteID, "rows", f.Rows, "total", f.Total, "checksum", f.Checksum)
		}
		return errors.Join(err, deliver(ctx))
	}
	return []jobs.Task{
		{Name: "becs_cut", Next: schedule.Next, Run: cut},
		{Name: "becs_deliver", Next: func(t time.Time) time.Time { return t.Add(time.Minute) }, Run: deliver},
	}, nil
}
