package app

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/rail/becs"
)

// BECSBacklog gives the external tests the collector of the BECS files not lodged that the
// server registers with its metrics.
func BECSBacklog(r *becs.Rail, clock billing.Clock) prometheus.Collector {
	return newBECSBacklog(r, clock, slog.New(slog.DiscardHandler))
}
