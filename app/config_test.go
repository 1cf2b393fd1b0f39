package app

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/jobs"
)

func load(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	values := RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Load(values)
}

func TestConfigDefaults(t *testing.T) {
	c, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Addr: "127.0.0.1:8080", DatabaseURL: "sqlite:pyng.db", PublicURL: "http://127.0.0.1:8080",
		InvitationTTL: 7 * 24 * time.Hour, Sandbox: true, AccessTokenTTL: time.Hour,
		ClientCacheTTL: 30 * time.Second, RateLimit: 100, LogFormat: "text", SettlementDelay: 3 * time.Second,
		Jobs: jobs.Config{Workers: 8, PollInterval: 200 * time.Millisecond, RescueAfter: 2 * time.Minute, SweepInterval: time.Minute},
	}
	if c != want {
		t.Errorf("defaults = %+v\nwant %+v", c, want)
	}
}

func TestConfigFromEnvironmentAndFlags(t *testing.T) {
	env := map[string]string{
		"PYNG_ADDR": "0.0.0.0:9000", "PYNG_DATABASE_URL": "postgres://db/pyng", "PYNG_INVITATION_TTL": "48h",
		"PYNG_SANDBOX": "false",
	}
	c, err := load(t, env, "-invitation-ttl", "1h")
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "0.0.0.0:9000" || c.DatabaseURL != "postgres://db/pyng" || c.Sandbox {
		t.Errorf("environment not applied: %+v", c)
	}
	if c.InvitationTTL != time.Hour {
		t.Errorf("the flag should win over the environment: %v", c.InvitationTTL)
	}
	if c.PublicURL != "http://localhost:9000" {
		t.Errorf("public URL of an unspecified host = %q, want http://localhost:9000", c.PublicURL)
	}
	c, err = load(t, map[string]string{"PYNG_PUBLIC_URL": "https://pay.example.com/"})
	if err != nil || c.PublicURL != "https://pay.example.com" {
		t.Errorf("public URL = %q, %v", c.PublicURL, err)
	}
}

func TestConfigRejectsBadValues(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"duration that is not one", []string{"-invitation-ttl", "a week"}, "-invitation-ttl"},
		{"zero invitation TTL", []string{"-invitation-ttl", "0s"}, "-invitation-ttl must be positive"},
		{"negative duration", []string{"-client-cache-ttl", "-1s"}, "-client-cache-ttl"},
		{"sandbox not a boolean", []string{"-sandbox", "maybe"}, "-sandbox"},
		{"address without port", []string{"-addr", "localhost"}, "-addr"},
		{"public URL without scheme", []string{"-public-url", "pay.example.com"}, "-public-url"},
		{"empty database URL", []string{"-database-url", ""}, "-database-url is required"},
		{"unknown log format", []string{"-log-format", "xml"}, "-log-format"},
		{"no job workers", []string{"-job-workers", "0"}, "-job-workers"},
		{"negative rate limit", []string{"-rate-limit", "-1"}, "-rate-limit"},
		{"rate limit not a number", []string{"-rate-limit", "lots"}, "-rate-limit"},
		{"job workers not a number", []string{"-job-workers", "many"}, "-job-workers"},
		{"rescue too soon", []string{"-job-rescue-after", "1s"}, "-job-rescue-after must be at least 2s"},
		{"settlement delay not a duration", []string{"-sandbox-settlement-delay", "soon"}, "-sandbox-settlement-delay"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, nil, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
