package email

import (
	"strings"
	"testing"
)

// withoutAddress replaces every occurrence of the address, whatever its case, also where
// lower-casing changes the byte length of characters ('İ', 'Ⱥ', invalid UTF-8) in the address
// (mail.ParseAddress accepts UTF-8 local parts) or before it. Cutting the text at the offsets
// found in its lower-cased copy left part of the address in the error River keeps, or panicked.
func TestWithoutAddressReplacesTheAddressInAnyCase(t *testing.T) {
	for _, c := range []struct{ text, address string }{
		{"550 5.1.1 <İlker@example.com> rejected; again <İlker@example.com>", "İlker@example.com"},
		{"550 5.1.1 İİİİİİİİ <user@example.com> rejected", "user@example.com"},
		{"550 5.1.1 \xff\xff\xff\xff <user@example.com> rejected", "user@example.com"},
		{"550 5.1.1 mailbox unavailable: ȺNNA@example.com", "ȺNNA@example.com"},
	} {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("withoutAddress(%q) panicked: %v", c.text, p)
				}
			}()
			got := withoutAddress(c.text, c.address)
			local := strings.ToLower(c.address[:strings.IndexByte(c.address, '@')])
			if strings.Contains(strings.ToLower(got), "example.com") || strings.Contains(strings.ToLower(got), local) ||
				strings.Count(got, "(the customer's address)") != strings.Count(strings.ToLower(c.text), strings.ToLower(c.address)) {
				t.Errorf("withoutAddress(%q) = %q: the address is not cleanly replaced", c.text, got)
			}
		}()
	}
}
