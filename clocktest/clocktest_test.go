package clocktest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
)

var _ billing.Clock = (*clocktest.Clock)(nil)

func TestClockMovesOnlyWhenTold(t *testing.T) {
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	c := clocktest.At(start)
	steps := []struct {
		name string
		move func()
		want time.Time
	}{
		{"it starts where it was set", func() {}, start},
		{"it stands still between moves", func() {}, start},
		{"Advance moves it forward", func() { c.Advance(90 * time.Second) }, start.Add(90 * time.Second)},
		{"Set moves it back", func() { c.Set(start.Add(-time.Hour)) }, start.Add(-time.Hour)},
	}
	for _, s := range steps {
		s.move()
		if got := c.Now(); !got.Equal(s.want) {
			t.Fatalf("%s: Now() = %v, want %v", s.name, got, s.want)
		}
	}
}

func TestNewStartsAtTheWallTimeInUTCToTheMillisecond(t *testing.T) {
	before := time.Now().Add(-time.Millisecond)
	got := clocktest.New().Now()
	if got.Location() != time.UTC || got.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("Now() = %v, want UTC to the millisecond", got)
	}
	if got.Before(before) || got.After(time.Now()) {
		t.Errorf("Now() = %v, want the wall time", got)
	}
}

func TestAdvanceIsSafeForConcurrentUse(t *testing.T) {
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	c := clocktest.At(start)
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			c.Advance(time.Millisecond)
			_ = c.Now()
		})
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(100*time.Millisecond); !got.Equal(want) {
		t.Errorf("after 100 concurrent advances of 1ms, Now() = %v, want %v", got, want)
	}
}
