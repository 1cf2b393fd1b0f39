package becs

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Schedule is when files are cut: at local times of day in a time zone (Cutoffs), or every
// Interval (for testing).
type Schedule struct {
	Cutoffs  []time.Duration // since local midnight, ascending
	Interval time.Duration
	Location *time.Location
}

// ParseSchedule reads PYNG_BECS_CUTOFFS: local times such as "09:00,15:00", or a Go duration such
// as "10m", in the time zone loc.
func ParseSchedule(s string, loc *time.Location) (Schedule, error) {
	if d, err := time.ParseDuration(strings.TrimSpace(s)); err == nil {
		if d < time.Second {
			return Schedule{}, fmt.Errorf("%q: an interval must be at least 1s", s)
		}
		return Schedule{Interval: d, Location: loc}, nil
	}
	sch := Schedule{Location: loc}
	for part := range strings.SplitSeq(s, ",") {
		t, err := time.Parse("15:04", strings.TrimSpace(part))
		if err != nil {
			return Schedule{}, fmt.Errorf("%q is not a list of local times such as 09:00,15:00, nor an interval such as 10m", s)
		}
		at := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
		if slices.Contains(sch.Cutoffs, at) {
			return Schedule{}, fmt.Errorf("%q names %s twice", s, part)
		}
		sch.Cutoffs = append(sch.Cutoffs, at)
	}
	slices.Sort(sch.Cutoffs)
	return sch, nil
}

// Next is the first cut-off after t. The earliest of a day's, not the first of the list after t:
// a cut-off in the hour the clocks skip falls an hour later (02:30 is 03:30 on the day daylight
// saving starts), after a later one of the list (03:00).
func (s Schedule) Next(t time.Time) time.Time {
	if s.Interval > 0 {
		return t.Add(s.Interval)
	}
	local := t.In(s.Location)
	for day := 0; day < 3; day++ {
		y, m, d := local.Date()
		var next time.Time
		for _, at := range s.Cutoffs {
			h, min := int(at/time.Hour), int(at%time.Hour/time.Minute)
			if c := time.Date(y, m, d+day, h, min, 0, 0, s.Location); c.After(t) && (next.IsZero() || c.Before(next)) {
				next = c
			}
		}
		if !next.IsZero() {
			return next
		}
	}
	return t.Add(24 * time.Hour) // unreachable with at least one cut-off
}

// LongestGap is the longest time from one cut-off to the next over the year from `from`, in real
// time: the interval, or between local times, the longest gap of a day's (the last cut-off of a
// day to the first of the next included), an hour longer across the night the clocks go back.
// A debit queued just after a cut-off waits that long for its file.
func (s Schedule) LongestGap(from time.Time) time.Duration {
	if s.Interval > 0 {
		return s.Interval
	}
	var longest time.Duration
	for t, end := s.Next(from), from.AddDate(1, 0, 0); t.Before(end); {
		next := s.Next(t)
		longest, t = max(longest, next.Sub(t)), next
	}
	return longest
}
