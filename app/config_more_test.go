package app

import (
	"strings"
	"testing"
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

// An https URL whose scheme is written in capitals is an https URL, outside the sandbox too.
func TestAnUppercaseHTTPSPublicURLIsHTTPS(t *testing.T) {
	c, err := load(t, map[string]string{"PYNG_SANDBOX": "false", "PYNG_PUBLIC_URL": "HTTPS://pay.example.com"})
	if err != nil {
		t.Errorf("Load(HTTPS://pay.example.com) = %v; want it accepted (or refused by the setting's own check, not told to use https)", err)
	}
	_ = c
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
