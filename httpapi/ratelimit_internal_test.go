package httpapi

import (
	"fmt"
	"testing"
	"time"

	"github.com/pyng/receivables/clocktest"
)

// TestFullBucketsAreForgotten checks that the buckets of keys a caller makes up (a client id per
// request) do not pile up: once they have filled again they are dropped, and a bucket still
// drawing down is kept.
func TestFullBucketsAreForgotten(t *testing.T) {
	clock := clocktest.New()
	b := newTokenLimits(2, clock)
	for i := range 1000 {
		b.take(fmt.Sprintf("client cli_%d", i))
	}
	clock.Advance(time.Minute - time.Second)
	b.take("client busy")
	b.take("client busy")
	clock.Advance(time.Second) // a minute since the made-up keys, a second since the busy one
	b.take("client new")
	if _, kept := b.keys["client busy"]; len(b.keys) != 2 || !kept {
		t.Errorf("%d buckets kept, want 2: the busy one and the new one", len(b.keys))
	}
	if delay := b.take("client busy"); delay == 0 {
		t.Error("the busy client may go on at once: its bucket was forgotten before it filled")
	}
}

func TestAddressKey(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.7:5123":                 "addr 192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443":     "addr 2001:db8:1:2::",
		"[2001:db8:1:2:ffff::1]:443":     "addr 2001:db8:1:2::",
		"[::ffff:192.0.2.7]:80":          "addr 192.0.2.7",
		"not an address":                 "addr not an address",
		"[2001:db8:1:3:3:4:5:6]:443":     "addr 2001:db8:1:3::",
		"[2001:db8:1:2:3:4:5:6%eth0]:80": "addr 2001:db8:1:2:3:4:5:6%eth0",
	} {
		if got := addressKey(remote); got != want {
			t.Errorf("addressKey(%q) = %q, want %q", remote, got, want)
		}
	}
}
