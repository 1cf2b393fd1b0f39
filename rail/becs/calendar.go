package becs

import (
	"fmt"
	"strings"
	"time"
)

// Calendar is the days of the BECS rail: the time zone of its files' processing dates, and the
// holidays on which BECS processes no file, besides Saturdays and Sundays. The zero Calendar is
// UTC without holidays.
type Calendar struct {
	Location *time.Location
	Holidays Holidays
}

// Holidays are the dates (2006-01-02, in the calendar's zone) on which BECS processes no file:
// the national bank holidays, as the debit user's bank publishes them (PYNG_BECS_HOLIDAYS).
type Holidays map[string]bool

// ParseHolidays reads PYNG_BECS_HOLIDAYS: dates such as "2026-12-25,2026-12-28", or nothing.
func ParseHolidays(s string) (Holidays, error) {
	h := Holidays{}
	if strings.TrimSpace(s) == "" {
		return h, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		day := strings.TrimSpace(part)
		if _, err := time.Parse(time.DateOnly, day); err != nil {
			return nil, fmt.Errorf("%q is not a list of dates such as 2026-12-25,2026-12-28: %q is not a date (YYYY-MM-DD)", s, day)
		}
		if h[day] {
			return nil, fmt.Errorf("%q names %s twice", s, day)
		}
		h[day] = true
	}
	return h, nil
}

// processingDay is the day a file cut at t is to be processed: the day of t in the calendar's
// zone, or the first after it that is neither a Saturday, a Sunday nor a holiday, as BECS
// processes no file on those and a bank may refuse such a processing date. A holiday the
// calendar does not know is taken for a business day: the bank processes a file dated that day
// on its next business day.
func (c Calendar) processingDay(t time.Time) time.Time {
	t = c.in(t)
	for t.Weekday() == time.Saturday || t.Weekday() == time.Sunday || c.Holidays[t.Format(time.DateOnly)] {
		t = t.AddDate(0, 0, 1)
	}
	return t
}

// KnowsHolidaysAfter reports whether the calendar holds a holiday in the year after t: if not,
// its holidays were likely not brought up to date for the year.
func (c Calendar) KnowsHolidaysAfter(t time.Time) bool {
	t = c.in(t)
	from, to := t.Format(time.DateOnly), t.AddDate(1, 0, 0).Format(time.DateOnly)
	for day := range c.Holidays {
		if day > from && day <= to {
			return true
		}
	}
	return false
}

// in is t in the calendar's zone.
func (c Calendar) in(t time.Time) time.Time {
	if c.Location == nil {
		return t.UTC()
	}
	return t.In(c.Location)
}
