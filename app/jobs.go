package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/jobs"
	"github.com/pyng/receivables/storage"
)

// StartJobs starts working the job queue kept in db with service, and returns the function that
// stops it (waiting for running jobs to finish or ctx to end).
func StartJobs(ctx context.Context, db storage.Database, service *billing.Service, logger *slog.Logger, cfg jobs.Config) (stop func(context.Context) error, err error) {
	client, err := db.NewJobClient(jobs.NewConfig(service, logger, cfg))
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		return nil, fmt.Errorf("jobs: start: %w", err)
	}
	return client.Stop, nil
}
