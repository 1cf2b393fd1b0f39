package app

import (
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/storage"
)

// BECSBacklog gives the external tests the collector of the BECS files not lodged that the
// server registers with its metrics.
func BECSBacklog(r *becs.Rail, clock billing.Clock) prometheus.Collector {
	return newBECSBacklog(r, clock, slog.New(slog.DiscardHandler))
}

// JobBacklog gives the external tests the collector of the queues' backlogs that the server
// registers with its metrics.
func JobBacklog(db storage.Database) prometheus.Collector {
	return newJobBacklog(db, slog.New(slog.DiscardHandler))
}

// SetShutdownGrace sets how long in-flight requests may take after a stop signal, until the test
// ends. The test must not be parallel.
func SetShutdownGrace(t *testing.T, d time.Duration) {
	before := shutdownGrace
	shutdownGrace = d
	t.Cleanup(func() { shutdownGrace = before })
}
