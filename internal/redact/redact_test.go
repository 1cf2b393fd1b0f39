package redact_test

import (
	"testing"

	"github.com/pyng/receivables/internal/redact"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                                "",
		"smtp://pyng:s3cret@mail.example": "smtp://pyng:xxxxx@mail.example",
		"postgres://app:pw@db:5432/pyng":  "postgres://app:xxxxx@db:5432/pyng",
		"sftp://pyng@bank.example:22/in":  "sftp://pyng@bank.example:22/in",
		"sqlite:pyng.db":                  "sqlite:pyng.db",
		"postgres://app@db/pyng?password=s3cret&sslmode=verify-full": "postgres://app@db/pyng?password=xxxxx&sslmode=verify-full",
		"mysql://root:s3cret@db%zz/":                                 "(an unreadable URL)",
		"smtp://pyng:s3cret@mail.example/":                           "smtp://pyng:xxxxx@mail.example/",
	} {
		if got := redact.URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}
