package aba_test

import (
	"strings"
	"testing"

	"github.com/pyng/receivables/rail/becs/aba"
)

func TestReturnReasons(t *testing.T) {
	for _, tc := range []struct {
		reason        aba.ReturnReason
		code          int
		name          string
		retryable     bool
		endsAuthority bool
	}{
		{aba.ReturnInvalidBSB, 1, "invalidBsb", false, true},
		{aba.ReturnPaymentStopped, 2, "paymentStopped", false, false},
		{aba.ReturnAccountClosed, 3, "accountClosed", false, true},
		{aba.ReturnCustomerDeceased, 4, "customerDeceased", false, true},
		{aba.ReturnInvalidAccount, 5, "invalidAccount", false, true},
		{aba.ReturnReferToCustomer, 6, "referToCustomer", true, false},
		{aba.ReturnDeleted, 7, "deleted", false, false},
		{aba.ReturnInvalidUserID, 8, "invalidUserId", false, false},
		{aba.ReturnTechnicallyInvalid, 9, "technicallyInvalid", false, false},
	} {
		if int(tc.reason) != tc.code || tc.reason.Name() != tc.name || tc.reason.Retryable() != tc.retryable || !tc.reason.Valid() {
			t.Errorf("%s: code %d, Name %q, Retryable %v, Valid %v; want %d, %q, %v, true",
				tc.reason, int(tc.reason), tc.reason.Name(), tc.reason.Retryable(), tc.reason.Valid(), tc.code, tc.name, tc.retryable)
		}
		// The reasons that end the customer's authority revoke the link with the return.
		if tc.reason.EndsAuthority() != tc.endsAuthority {
			t.Errorf("%s: EndsAuthority %v, want %v", tc.reason, tc.reason.EndsAuthority(), tc.endsAuthority)
		}
	}
	if got := aba.ReturnReferToCustomer.String(); got != "6 refer to customer" {
		t.Errorf("String() = %q", got)
	}
	if all := aba.ReturnReasons(); len(all) != 9 {
		t.Errorf("ReturnReasons() has %d reasons, want 9", len(all))
	}
	for _, r := range []aba.ReturnReason{0, 10, -1} {
		if r.Valid() || r.Name() != "" || r.Retryable() || r.EndsAuthority() {
			t.Errorf("reason %d: Valid %v, Name %q, Retryable %v; want false, \"\", false", int(r), r.Valid(), r.Name(), r.Retryable())
		}
	}
}

func TestTransactionCodes(t *testing.T) {
	for code := range 100 {
		c := aba.TransactionCode(code)
		wantValid := code == 13 || (code >= 50 && code <= 57)
		if c.Valid() != wantValid || c.IsDebit() != (code == 13) {
			t.Errorf("code %d: Valid %v, IsDebit %v", code, c.Valid(), c.IsDebit())
		}
	}
}

func TestValidText(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"", true},
		{"Smith. John & Co (Aust) Pty Ltd", true},
		{"+-@$!%&()*./#=:;?,'[]_^ azAZ09", true},
		{"abc123 é", false}, // the gem's own examples (validations_spec.rb)
		{"abc123 ~", false},
		{`say "hi"`, false},
		{`back\slash`, false},
		{"tab\there", false},
		{"line\r\nbreak", false},
		{"<>{}|`", false},
	} {
		if got := aba.ValidText(tc.s); got != tc.want {
			t.Errorf("ValidText(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
	// Every printable ASCII character not listed is outside the set.
	allowed := "+-@$!%&()*./#=:;?,'[]_^ "
	for c := byte(0); c < 128; c++ {
		alnum := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if want := alnum || strings.IndexByte(allowed, c) >= 0; aba.ValidText(string([]byte{c})) != want {
			t.Errorf("ValidText(%q) = %v, want %v", c, !want, want)
		}
	}
}

func TestParseBSB(t *testing.T) {
	for in, want := range map[string]aba.BSB{"062000": "062-000", "062-000": "062-000"} {
		if got, err := aba.ParseBSB(in); err != nil || got != want {
			t.Errorf("ParseBSB(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "62000", "0620000", "062 000", "06-2000", "abc-def", "062-0001"} {
		if got, err := aba.ParseBSB(in); err == nil {
			t.Errorf("ParseBSB(%q) = %q, want an error", in, got)
		}
	}
}
