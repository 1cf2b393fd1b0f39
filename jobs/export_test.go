package jobs

import (
	"github.com/riverqueue/river"

	"github.com/pyng/receivables/billing"
)

// ExecuteBatchWorker gives the external tests the worker River runs.
func ExecuteBatchWorker(service *billing.Service) river.Worker[billing.ExecuteBatchJob] {
	return &executeBatchWorker{service: service}
}

// MaxRetryDelay is maxRetryDelay, for the external tests.
const MaxRetryDelay = maxRetryDelay
