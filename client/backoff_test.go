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

// However many retries came before (those the server timed with Retry-After do not wait
// backoff's), the wait stays within a minute: 250 ms shifted by 36 or more overflowed, and
// rand.N panicked on the negative wait.
func TestBackoffIsBoundedAfterAnyNumberOfAttempts(t *testing.T) {
	for _, attempt := range []int{8, 9, 36, 57, 64, 1000} {
		for range 100 {
			if d := backoff(attempt); d < 30*time.Second || d > time.Minute {
				t.Fatalf("backoff(%d) = %v, want from 30s to 1m", attempt, d)
			}
		}
	}
}
