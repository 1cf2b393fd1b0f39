package jobs

import (
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/webhook/deliver"
)

// ExecuteBatchWorker gives the external tests the worker River runs.
func ExecuteBatchWorker(service *billing.Service) river.Worker[billing.ExecuteBatchJob] {
	return &executeBatchWorker{service: service}
}

// RunTaskWorker gives the external tests the worker River runs for the tasks.
func RunTaskWorker(tasks ...Task) river.Worker[RunTask] {
	byName := map[string]Task{}
	for _, t := range tasks {
		byName[t.Name] = t
	}
	return &runTaskWorker{tasks: byName}
}

// MaxRetryDelay is maxRetryDelay, for the external tests.
const MaxRetryDelay = maxRetryDelay

// EraseBankDetailsWorker gives the external tests the worker River runs, logging to logger.
func EraseBankDetailsWorker(service *billing.Service, retention time.Duration, logger *slog.Logger) river.Worker[EraseBankDetails] {
	return &eraseBankDetailsWorker{service: service, logger: logger, retention: retention}
}

// DeliverWebhooksWorker gives the external tests the worker River runs, sending with client, at
// most requests at once, holding the endpoint for lease (and running for half of it).
func DeliverWebhooksWorker(service *billing.Service, client *deliver.Client, schedule []time.Duration, lease time.Duration, requests int) river.Worker[billing.DeliverWebhooksJob] {
	return newDeliverWebhooksWorker(service, client, schedule, lease, requests)
}

// EndpointRequests is endpointRequests, for the external tests.
const EndpointRequests = endpointRequests

// QuietRepeats gives the tests the log handler River is given.
func QuietRepeats(h slog.Handler) slog.Handler { return newQuietRepeats(h) }

// ShareRequests makes w take its requests from the process-wide bound of with, as the runs of
// two endpoints in one process do, each worker keeping its own lease.
func ShareRequests(w, with river.Worker[billing.DeliverWebhooksJob]) {
	w.(*deliverWebhooksWorker).requests = with.(*deliverWebhooksWorker).requests
	w.(*deliverWebhooksWorker).failing = with.(*deliverWebhooksWorker).failing
}
