// Package clocktest provides the clock tests move by hand, so that expiry, deadlines, retention
// and rate limits are tested without sleeping.
package clocktest

import (
	"sync"
	"testing"
	"time"
)

// Clock is a billing.Clock that moves only when the test says so. It is safe for concurrent use,
// as a server under test reads it from its handlers and job workers while the test moves it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock at the current wall time, in UTC and to the millisecond, the precision of
// the wire and of storage, so that the times a test computes from it are the times it reads back.
func New() *Clock {
	return At(time.Now().UTC().Truncate(time.Millisecond))
}

// At returns a clock at t.
func At(t time.Time) *Clock {
	return &Clock{now: t}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t, forward or back.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Run moves the clock with the wall clock until the returned function is called (at the latest
// when the test ends): for a test whose server must see time pass on its own, as retries come due.
func (c *Clock) Run(t testing.TB) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				c.Advance(now.Sub(last))
				last = now
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			<-stopped
		})
	}
	t.Cleanup(stop)
	return stop
}
