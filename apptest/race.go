//go:build race

package apptest

import "time"

// jobsPollInterval is testJobs' PollInterval under the race detector. The detector checks each
// pointer conversion of modernc.org/sqlite's translated C (checkptr), which makes parsing a
// statement some 40 times as dear, and River parses its fetch at each poll of each queue: polled
// every 20 ms, the queues of one SQLite test server took a core, and the client's tests 350 s
// under the detector (176 s at this interval).
const jobsPollInterval = 250 * time.Millisecond
