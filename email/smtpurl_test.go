package email_test

import (
	"strings"
	"testing"

	"github.com/pyng/receivables/email"
)

// A tls parameter other than required, or a parameter SMTP does not know, is refused rather than
// taken as no parameter: ?tls=requried (or TLS=required) would otherwise leave the server to send
// the password in the clear to whoever strips STARTTLS from the connection, unseen.
func TestAnSMTPURLsUnknownTLSParameterIsRefused(t *testing.T) {
	for _, u := range []string{"smtp://pyng:s3cret@mail.example?tls=requried", "smtp://pyng:s3cret@mail.example?tls=true",
		"smtp://pyng:s3cret@mail.example?TLS=required", "smtp://mail.example?tls=required&starttls=no", "smtp://mail.example?tls=",
		"smtp://pyng:s3cret@mail.example?tls=required;", "smtp://pyng:s3cret@mail.example?tls=re%ZZquired"} {
		_, err := email.SMTP(u)
		if err == nil {
			t.Errorf("SMTP(%q) accepted; want it refused", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("SMTP(%q): the error holds the password: %v", u, err)
		}
	}
	for _, u := range []string{"smtp://mail.example", "smtp://pyng:s3cret@mail.example:2525?tls=required", "smtps://mail.example"} {
		if _, err := email.SMTP(u); err != nil {
			t.Errorf("SMTP(%q) = %v; want it accepted", u, err)
		}
	}
}
