package billing_test

import (
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
)

func TestManagementLinkValidityIsWrittenForPeople(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		ttl  time.Duration
		want string
	}{
		{name: "the default, whole days", ttl: 30 * 24 * time.Hour, want: "30 days"},
		{name: "one day", ttl: 24 * time.Hour, want: "1 day"},
		{name: "hours", ttl: 12 * time.Hour, want: "12 hours"},
		{name: "one hour", ttl: time.Hour, want: "1 hour"},
		{name: "one minute", ttl: time.Minute, want: "1 minute"},
		{name: "seconds", ttl: 45 * time.Second, want: "45 seconds"},
		{name: "two units are joined with and", ttl: 36 * time.Hour, want: "1 day and 12 hours"},
		{name: "three units are listed", ttl: 24*time.Hour + 2*time.Hour + 5*time.Minute, want: "1 day, 2 hours and 5 minutes"},
		{name: "minutes and seconds under an hour", ttl: 90 * time.Second, want: "1 minute and 30 seconds"},
		{name: "from an hour on, to the minute", ttl: 2*time.Hour + 29*time.Second, want: "2 hours"},
		{name: "under a second is a second", ttl: time.Millisecond, want: "1 second"},
		{name: "a link that does not expire", ttl: 0, want: ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := billing.ManagementLinkValidity(tt.ttl); got != tt.want {
				t.Errorf("ManagementLinkValidity(%v) = %q, want %q", tt.ttl, got, tt.want)
			}
		})
	}
}
