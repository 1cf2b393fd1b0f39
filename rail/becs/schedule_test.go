package becs_test

import (
	"testing"
	"time"

	"github.com/pyng/receivables/rail/becs"
)

// On the day daylight saving starts in Sydney (4 October 2026, 02:00 AEST becomes 03:00 AEDT), a
// cut-off in the skipped hour (02:30) falls an hour later in real time (03:30 AEDT), after a
// later cut-off of the list (03:00): Next is the earliest of the day's cut-offs after t, not the
// first in the list's order, so the 03:00 cut-off is kept.
func TestNextIsTheEarliestCutoffOnTheDayTheClocksGoForward(t *testing.T) {
	s, err := becs.ParseSchedule("02:30,03:00", sydney)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 10, 4, 1, 0, 0, 0, sydney)
	want := time.Date(2026, 10, 4, 3, 0, 0, 0, sydney)
	if got := s.Next(from); !got.Equal(want) {
		t.Errorf("Next(%v) = %v, want %v", from, got, want)
	}
	// And the 02:30 cut-off, at 03:30 AEDT, still follows it once.
	if got, want := s.Next(want), time.Date(2026, 10, 4, 3, 30, 0, 0, sydney); !got.Equal(want) {
		t.Errorf("Next(03:00) = %v, want %v", got, want)
	}
}
