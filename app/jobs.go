package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/jobs"
	"github.com/pyng/receivables/storage"
)

// StartJobs starts working the job queue kept in db with service, and returns the function that
// stops it (waiting for running jobs to finish or ctx to end).
func StartJobs(ctx context.Context, db storage.Database, service *billing.Service, logger *slog.Logger, cfg jobs.Config) (stop func(context.Context) error, err error) {
	switch d := db.(type) {
	case storage.SQLite:
		return startJobs(ctx, riversqlite.New(d.DB()), service, logger, cfg)
	case storage.Postgres:
		return startJobs(ctx, riverpgxv5.New(d.Pool()), service, logger, cfg)
	}
	return nil, fmt.Errorf("jobs: no queue driver for engine %s", db.Engine())
}

func startJobs[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], service *billing.Service, logger *slog.Logger, cfg jobs.Config) (func(context.Context) error, error) {
	client, err := jobs.NewClient(driver, service, logger, cfg)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		return nil, fmt.Errorf("jobs: start: %w", err)
	}
	return client.Stop, nil
}
