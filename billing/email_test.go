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

// The cap of emails counts a mailbox: the spellings of an address that reach it are one key, and
// what is not a subaddress or Gmail's dots is kept.
func TestMailboxKeyNamesTheMailbox(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ address, want string }{
		{" Jane@Example.com ", "jane@example.com"},
		{"jane+signup@example.com", "jane@example.com"},
		{"jane+a+b@example.com", "jane@example.com"},
		{"+jane@example.com", "+jane@example.com"}, // a local part that is all tag is kept
		{"jane.doe@example.com", "jane.doe@example.com"},
		{"Jane.Doe+x@GMail.com", "janedoe@gmail.com"},
		{"jane.doe@googlemail.com", "janedoe@gmail.com"},
		{"not an address", "not an address"},
	} {
		if got := billing.MailboxKey(tt.address); got != tt.want {
			t.Errorf("MailboxKey(%q) = %q, want %q", tt.address, got, tt.want)
		}
	}
}
