package app

import (
	"strings"
	"testing"
	"time"
)

// A public URL refused for holding userinfo is not repeated with its password in the error (the
// server's stderr, a deployment's logs), as email.SMTP's is not.
func TestAPublicURLErrorHidesItsPassword(t *testing.T) {
	_, err := load(t, map[string]string{"PYNG_SANDBOX": "false", "PYNG_PUBLIC_URL": "https://admin:s3cr3t-pw@pay.example.com"})
	if err == nil {
		t.Fatal("accepted")
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Errorf("the error holds the URL's password:\n%v", err)
	}
}

// An https URL whose scheme is written in capitals is an https URL, outside the sandbox too, and
// is kept in its lower-case form, which the cookies' Secure and __Host- prefix and HSTS are
// decided by.
func TestAnUppercaseHTTPSPublicURLIsHTTPS(t *testing.T) {
	c, err := load(t, map[string]string{"PYNG_SANDBOX": "false", "PYNG_PUBLIC_URL": "HTTPS://Pay.Example.com:8443/"})
	if err != nil || c.PublicURL != "https://pay.example.com:8443" {
		t.Errorf("Load(HTTPS://Pay.Example.com:8443/) = %q, %v; want https://pay.example.com:8443", c.PublicURL, err)
	}
}

// A public URL with a path is refused: the pages link to their paths at the root of the host, so
// behind a proxy that strips a path the customer could neither sign up nor revoke.
func TestAPublicURLWithAPathIsRefused(t *testing.T) {
	_, err := load(t, map[string]string{"PYNG_SANDBOX": "false", "PYNG_PUBLIC_URL": "https://pay.example.com/pyng/"})
	if err == nil || !strings.Contains(err.Error(), "has a path") {
		t.Errorf("Load(https://pay.example.com/pyng/) = %v; want refused for its path", err)
	}
}

// The variables pyng-partner and the README's webhook receiver are configured by (README: export
// PYNG_URL ... PYNG_CLIENT_ID ...) are no misspelling: the server does not warn of them.
func TestUnknownEnvironmentLeavesTheOtherProgramsVariables(t *testing.T) {
	got := UnknownEnvironment([]string{"PYNG_URL=http://127.0.0.1:8080", "PYNG_SITE=site_1", "PYNG_CLIENT_ID=cli_1",
		"PYNG_CLIENT_SECRET=sec_1", "PYNG_WEBHOOK_SECRET=whsec_1", "PYNG_SMTP_ULR=smtp://x"})
	if len(got) != 1 {
		t.Errorf("UnknownEnvironment = %v; want only PYNG_SMTP_ULR", got)
	}
}

// An SFTP server's URL refused is not repeated with a password in the error, as the SMTP URL's
// and the public URL's are not.
func TestAnSFTPURLErrorHidesItsPassword(t *testing.T) {
	for _, u := range []string{"ftp://pyng:s3cr3t-pw@bank.example/in", "sftp://pyng:s3cr3t-pw@/in"} {
		_, err := load(t, map[string]string{"PYNG_BECS_SFTP_URL": u})
		if err == nil || !strings.Contains(err.Error(), "-becs-sftp-url") {
			t.Fatalf("Load(%s) = %v; want it refused", u, err)
		}
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("the error holds the URL's password:\n%v", err)
		}
	}
}

// A retention in days too long for a duration is refused, not wrapped around: 213504d is 25
// minutes past 2^64 nanoseconds, and erased bank details 25 minutes after each revocation; and
// -400000d wraps around to 27 days.
func TestABankDetailsRetentionBeyondADurationIsRefused(t *testing.T) {
	for _, v := range []string{"213504d", "300000d", "2147483647d", "-400000d"} {
		c, err := load(t, nil, "-bank-details-retention", v)
		if err == nil {
			t.Errorf("-bank-details-retention %s = %v; want it refused", v, c.Jobs.BankDetailsRetention)
		}
	}
	if c, err := load(t, nil, "-bank-details-retention", "106751d"); err != nil || c.Jobs.BankDetailsRetention != 106751*24*time.Hour {
		t.Errorf("-bank-details-retention 106751d = %v, %v; want it taken", c.Jobs.BankDetailsRetention, err)
	}
}

// A PostgreSQL keyword/value connection string (libpq's, which pgx takes too) has no scheme, so it
// was taken for a SQLite file path: pyng serve made a file named after it, password and all, and,
// the sandbox setting defaulting to true with the embedded SQLite, served a sandbox on it.
func TestAKeywordValueConnectionStringIsRefused(t *testing.T) {
	_, err := load(t, map[string]string{"PYNG_DATABASE_URL": "host=db.internal user=pyng password=s3cr3t-pw dbname=pyng"})
	if err == nil || !strings.Contains(err.Error(), "-database-url") {
		t.Fatalf("Load = %v; want the database URL refused", err)
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Errorf("the error holds the password:\n%v", err)
	}
}

// A metrics listener apart from the API's (another port, another loopback address, or any free
// port for both), and an SMTP URL whose path is the root alone, are taken.
func TestDistinctListenersAndAnSMTPURLOfNoPathAreTaken(t *testing.T) {
	for _, args := range [][]string{
		{"-addr", "127.0.0.1:9000", "-metrics-addr", "127.0.0.1:9090"},
		{"-addr", "127.0.0.1:9000", "-metrics-addr", "127.0.0.2:9000"},
		{"-addr", "127.0.0.1:0", "-metrics-addr", "127.0.0.1:0"},
		{"-smtp-url", "smtp://pyng:s3cr3t@mail.example.com:25/"},
		{"-smtp-url", "smtps://mail.example.com"},
	} {
		if _, err := load(t, nil, args...); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}
