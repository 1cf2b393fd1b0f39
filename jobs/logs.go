package jobs

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// repeatEvery is how often a message at WARN or above is logged while it repeats: during a
// database outage River's producer, and the look for due deliveries, say the same at every poll.
const repeatEvery = time.Minute

// quietRepeats is the log handler of what repeats at every poll (River's, and the look for due
// deliveries'): a WARN or ERROR message logged less than repeatEvery ago is counted, not logged
// again, and the next time it is logged it says how many times it was left out (repeated).
// Messages below WARN pass as they are, and so does a WARN or ERROR whose error is a canceled
// context, at INFO: the process stopping, which an alert on ERROR lines must not take for a fault.
type quietRepeats struct {
	slog.Handler
	state *repeats
}

type repeats struct {
	mu   sync.Mutex
	last map[string]time.Time // by message, when it was last logged
	left map[string]int       // by message, how many times it was left out since
}

func newQuietRepeats(h slog.Handler) quietRepeats {
	return quietRepeats{Handler: h, state: &repeats{last: map[string]time.Time{}, left: map[string]int{}}}
}

func (q quietRepeats) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && stopping(r) {
		if !q.Handler.Enabled(ctx, slog.LevelInfo) {
			return nil
		}
		r.Level = slog.LevelInfo
	}
	if r.Level < slog.LevelWarn {
		return q.Handler.Handle(ctx, r)
	}
	s := q.state
	s.mu.Lock()
	if last, ok := s.last[r.Message]; ok && r.Time.Sub(last) < repeatEvery {
		s.left[r.Message]++
		s.mu.Unlock()
		return nil
	}
	s.last[r.Message] = r.Time
	left := s.left[r.Message]
	delete(s.left, r.Message)
	s.mu.Unlock()
	if left > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", left))
	}
	return q.Handler.Handle(ctx, r)
}

func (q quietRepeats) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietRepeats{Handler: q.Handler.WithAttrs(attrs), state: q.state}
}

func (q quietRepeats) WithGroup(name string) slog.Handler {
	return quietRepeats{Handler: q.Handler.WithGroup(name), state: q.state}
}

// stopping reports whether the record's errors (River logs an error's text, under "error" or
// "err") are all a canceled context, and the record names no job: a line about a job (job_id)
// says what became of it, which the stop does not excuse (River's "Failed to make soft-stopped job
// available" carries the job's cancellation as its error, and leaves the job running until
// rescued).
func stopping(r slog.Record) bool {
	canceled, other := false, false
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "job_id":
			other = true
		case "error", "err":
			is := false
			switch v := a.Value.Resolve().Any().(type) {
			case error:
				is = errors.Is(v, context.Canceled)
			case string:
				is = strings.HasSuffix(v, context.Canceled.Error())
			}
			canceled, other = canceled || is, other || !is
		}
		return !other
	})
	return canceled && !other
}
