package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// opFunc is one operation of a load: the i-th overall, run by worker w. It returns how long the
// measured part took (an operation may prepare its input before it starts the clock).
type opFunc func(ctx context.Context, w, i int) (time.Duration, error)

// measure is what a load did.
type measure struct {
	ops, errors int
	elapsed     time.Duration
	latencies   []time.Duration // sorted
	firstError  error
}

// rate is operations per second.
func (m measure) rate() float64 {
	if m.elapsed <= 0 {
		return 0
	}
	return float64(m.ops) / m.elapsed.Seconds()
}

// add is the measure of m's operations and then o's, one after the other.
func (m measure) add(o measure) measure {
	m.ops, m.errors, m.elapsed = m.ops+o.ops, m.errors+o.errors, m.elapsed+o.elapsed
	m.latencies = append(slices.Clone(m.latencies), o.latencies...)
	slices.Sort(m.latencies)
	if m.firstError == nil {
		m.firstError = o.firstError
	}
	return m
}

// percentile is the p-th percentile of the latencies (nearest rank), 0 when there are none.
func (m measure) percentile(p float64) time.Duration {
	return percentile(m.latencies, p)
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// load runs op from concurrency workers, starting operations until d has passed or maxOps have
// started, and waits for those started. Failed operations count as errors, not in the rate or
// the latencies.
func load(ctx context.Context, concurrency int, d time.Duration, maxOps int, op opFunc) measure {
	var (
		next     atomic.Int64
		mu       sync.Mutex
		m        measure
		wg       sync.WaitGroup
		start    = time.Now()
		deadline = start.Add(d)
	)
	for w := range concurrency {
		wg.Go(func() {
			var lat []time.Duration
			var errs int
			var firstErr error
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1)) - 1
				if i >= maxOps {
					break
				}
				took, err := op(ctx, w, i)
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lat = append(lat, took)
			}
			mu.Lock()
			m.latencies = append(m.latencies, lat...)
			m.errors += errs
			if m.firstError == nil {
				m.firstError = firstErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	m.elapsed = time.Since(start)
	m.ops = len(m.latencies)
	slices.Sort(m.latencies)
	return m
}

// timed runs fn and returns how long it took.
func timed(fn func() error) (time.Duration, error) {
	start := time.Now()
	err := fn()
	return time.Since(start), err
}
