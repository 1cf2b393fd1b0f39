//go:build !race

package apptest

import "time"

// jobsPollInterval is testJobs' PollInterval: often, so that tests wait little for their batches.
const jobsPollInterval = 20 * time.Millisecond
