package client

import (
	"testing"
	"time"
)

// The wait before a retry the server did not time doubles at each attempt and is spread over its
// upper half, so that clients stopped together by an outage do not retry in step.
func TestBackoffDoublesAndSpreadsItsWaits(t *testing.T) {
	for attempt, most := range []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := backoff(attempt)
			if d < most/2 || d > most {
				t.Fatalf("backoff(%d) = %v, want from %v to %v", attempt, d, most/2, most)
			}
			seen[d] = true
		}
		if len(seen) < 100 {
			t.Errorf("backoff(%d) gave %d different waits in 200; want them spread", attempt, len(seen))
		}
	}
}
