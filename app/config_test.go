package app

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
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
		Addr: "127.0.0.1:8080", DatabaseURL: "sqlite:pyng.db", PublicURL: "http://127.0.0.1:8080", EmailsPerAddressPerDay: 10,
		InvitationTTL: 7 * 24 * time.Hour, Sandbox: true, WebhookPrivateDestinations: "auto", AccessTokenTTL: time.Hour,
		ClientCacheTTL: 30 * time.Second, RateLimit: 100, TokenRateLimit: 60, LogFormat: "text", MaxConnections: 1000, SettlementDelay: 3 * time.Second,
		Jobs: jobs.Config{Workers: min(8, 2*runtime.GOMAXPROCS(0)), PollInterval: 200 * time.Millisecond, RescueAfter: 2 * time.Minute, SweepInterval: time.Minute,
			BankDetailsRetention: 90 * 24 * time.Hour, WebhookWorkers: 16, EmailWorkers: 4, RetrySchedule: jobs.DefaultRetrySchedule, AllowPrivateWebhooks: true},
		SigningKeyReload: time.Minute,
		BECSCutoffs:      "09:00,15:00", BECSTimezone: "Australia/Sydney", BECSSFTPTimeout: time.Minute, BECSSFTPReturnsSettle: 50 * time.Second,
		BECSSFTPReturnsIncompleteWait: time.Hour, MailFrom: "Pyng <no-reply@pyng.invalid>", ManagementLinkTTL: 30 * 24 * time.Hour,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults = %+v\nwant %+v", c, want)
	}
}

func TestConfigFromEnvironmentAndFlags(t *testing.T) {
	env := map[string]string{
		"PYNG_ADDR": "0.0.0.0:9000", "PYNG_DATABASE_URL": "postgres://db/pyng", "PYNG_INVITATION_TTL": "48h",
		"PYNG_SANDBOX": "false", "PYNG_JOB_WORKERS": "12", "PYNG_PUBLIC_URL": "https://pay.example.com/",
	}
	c, err := load(t, env, "-invitation-ttl", "1h")
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "0.0.0.0:9000" || c.DatabaseURL != "postgres://db/pyng" || c.Sandbox || c.Jobs.Workers != 12 {
		t.Errorf("environment not applied: %+v", c)
	}
	if c.InvitationTTL != time.Hour {
		t.Errorf("the flag should win over the environment: %v", c.InvitationTTL)
	}
	if c.PublicURL != "https://pay.example.com" {
		t.Errorf("public URL = %q, want https://pay.example.com", c.PublicURL)
	}
	t.Setenv("PYNG_PUBLIC_URL", "")
	c, err = load(t, map[string]string{"PYNG_ADDR": "0.0.0.0:9000", "PYNG_SANDBOX": "true"})
	if err != nil || c.PublicURL != "http://localhost:9000" {
		t.Errorf("the sandbox's public URL of an unspecified host = %q, %v; want http://localhost:9000", c.PublicURL, err)
	}
}

// Outside the sandbox the public URL must be given, and https: customers open the signup links
// and their emails' links from anywhere, and the pages' cookies are Secure only over https.
func TestOutsideTheSandboxThePublicURLIsRequiredAndHTTPS(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		refused   bool
	}{
		{"not given", "", true},
		{"http", "http://pay.example.com", true},
		{"https", "https://pay.example.com", false},
		{"https with a port", "https://pay.example.com:8443/", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, map[string]string{"PYNG_SANDBOX": "false", "PYNG_PUBLIC_URL": tc.url})
			if tc.refused != (err != nil) || err != nil && (!strings.Contains(err.Error(), "-public-url (env PYNG_PUBLIC_URL)") || !strings.Contains(err.Error(), "https://")) {
				t.Errorf("Load = %q, %v; want refused %v, naming -public-url, PYNG_PUBLIC_URL and https://", c.PublicURL, err, tc.refused)
			}
		})
	}
}

// Webhook URLs may name loopback and private hosts in a sandbox on a developer's machine (a
// public URL on it), where the receivers run, but not in a sandbox that others reach: its
// deliveries would let any partner probe the network it runs in.
func TestPrivateWebhookDestinationsOnlyInASandboxOnThisMachine(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		allowed bool
		refused string
	}{
		{"sandbox, default public URL", map[string]string{}, true, ""},
		{"sandbox on localhost", map[string]string{"PYNG_PUBLIC_URL": "http://localhost:9000"}, true, ""},
		{"sandbox on a name under .localhost", map[string]string{"PYNG_PUBLIC_URL": "http://pyng.localhost:9000"}, true, ""},
		{"sandbox on IPv6 loopback", map[string]string{"PYNG_PUBLIC_URL": "http://[::1]:8080"}, true, ""},
		{"sandbox others reach", map[string]string{"PYNG_PUBLIC_URL": "https://sandbox.example.com"}, false, ""},
		{"sandbox on a private address", map[string]string{"PYNG_PUBLIC_URL": "http://10.0.0.5:8080"}, false, ""},
		{"sandbox others reach, allowed", map[string]string{"PYNG_PUBLIC_URL": "https://sandbox.example.com",
			"PYNG_WEBHOOK_PRIVATE_DESTINATIONS": "true"}, true, ""},
		{"sandbox on localhost, refused", map[string]string{"PYNG_WEBHOOK_PRIVATE_DESTINATIONS": "false"}, false, ""},
		{"outside the sandbox", map[string]string{"PYNG_SANDBOX": "false", "PYNG_PUBLIC_URL": "https://pay.example.com"}, false, ""},
		{"outside the sandbox, on localhost", map[string]string{"PYNG_SANDBOX": "false", "PYNG_PUBLIC_URL": "https://localhost"}, false, ""},
		{"outside the sandbox, asked for", map[string]string{"PYNG_SANDBOX": "false", "PYNG_PUBLIC_URL": "https://pay.example.com",
			"PYNG_WEBHOOK_PRIVATE_DESTINATIONS": "true"}, false, "may be true only in the sandbox"},
		{"not a value", map[string]string{"PYNG_WEBHOOK_PRIVATE_DESTINATIONS": "yes"}, false, `"yes" is not auto, true or false`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.env)
			switch {
			case tc.refused != "":
				if err == nil || !strings.Contains(err.Error(), tc.refused) || !strings.Contains(err.Error(), "PYNG_WEBHOOK_PRIVATE_DESTINATIONS") {
					t.Errorf("Load = %v; want an error naming PYNG_WEBHOOK_PRIVATE_DESTINATIONS: %s", err, tc.refused)
				}
			case err != nil:
				t.Fatal(err)
			case c.Jobs.AllowPrivateWebhooks != tc.allowed:
				t.Errorf("private webhook destinations allowed = %v, want %v", c.Jobs.AllowPrivateWebhooks, tc.allowed)
			}
		})
	}
}

// A sandbox is on this machine, so that it serves /metrics on the API's address and takes webhook
// URLs of private addresses by default, only when it listens on loopback alone and its public URL
// is on this machine: one that listens on every interface or on another address is reached from
// its network, whatever its public URL says (by default http://localhost:PORT). The operator says
// otherwise with PYNG_METRICS_ADDR and PYNG_WEBHOOK_PRIVATE_DESTINATIONS=true.
func TestOnlyASandboxListeningOnLoopbackIsOnThisMachine(t *testing.T) {
	const local, network = true, false
	for _, tc := range []struct {
		name  string
		env   map[string]string
		where bool
		// privateWebhooks and metrics, when set, are what the operator's settings make them.
		privateWebhooks *bool
		metrics         string
	}{
		{name: "the default address", where: local},
		{name: "an address of 127.0.0.0/8", env: map[string]string{"PYNG_ADDR": "127.0.0.2:9000"}, where: local},
		{name: "IPv6 loopback", env: map[string]string{"PYNG_ADDR": "[::1]:9000"}, where: local},
		{name: "localhost", env: map[string]string{"PYNG_ADDR": "localhost:9000"}, where: local},
		{name: "every IPv4 interface", env: map[string]string{"PYNG_ADDR": "0.0.0.0:9000"}, where: network},
		{name: "every interface", env: map[string]string{"PYNG_ADDR": "[::]:9000"}, where: network},
		{name: "no host", env: map[string]string{"PYNG_ADDR": ":9000"}, where: network},
		{name: "a private address", env: map[string]string{"PYNG_ADDR": "10.0.0.5:9000"}, where: network},
		{name: "a host name", env: map[string]string{"PYNG_ADDR": "sandbox.internal:9000"}, where: network},
		{name: "every interface, a public URL of localhost", env: map[string]string{"PYNG_ADDR": "0.0.0.0:9000", "PYNG_PUBLIC_URL": "http://localhost:9000"}, where: network},
		{name: "loopback, a public URL of another host", env: map[string]string{"PYNG_PUBLIC_URL": "https://sandbox.example.com"}, where: network},
		{name: "every interface, private destinations allowed", env: map[string]string{"PYNG_ADDR": "0.0.0.0:9000", "PYNG_WEBHOOK_PRIVATE_DESTINATIONS": "true"},
			where: network, privateWebhooks: new(true)},
		{name: "every interface, metrics on a listener of their own", env: map[string]string{"PYNG_ADDR": "0.0.0.0:9000", "PYNG_METRICS_ADDR": "127.0.0.1:9090"},
			where: network, metrics: "127.0.0.1:9090"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			wantPrivate, wantMetrics := tc.where, "none"
			if tc.where == local {
				wantMetrics = "api"
			}
			if tc.privateWebhooks != nil {
				wantPrivate = *tc.privateWebhooks
			}
			if tc.metrics != "" {
				wantMetrics = tc.metrics
			}
			if c.Jobs.AllowPrivateWebhooks != wantPrivate || metricsAt(c) != wantMetrics {
				t.Errorf("PYNG_ADDR %s, public URL %s: private webhook destinations %v, metrics at %q; want %v, %q",
					c.Addr, c.PublicURL, c.Jobs.AllowPrivateWebhooks, metricsAt(c), wantPrivate, wantMetrics)
			}
		})
	}
}

func TestConfigRejectsBadValues(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"duration that is not one", []string{"-invitation-ttl", "a week"}, "-invitation-ttl"},
		{"zero invitation TTL", []string{"-invitation-ttl", "0s"}, "-invitation-ttl must be at least 1m0s"},
		{"an SFTP timeout too short", []string{"-becs-sftp-timeout", "1s"}, "-becs-sftp-timeout must be from 10s to 2m30s"},
		{"an SFTP timeout longer than a claim allows", []string{"-becs-sftp-timeout", "3m"}, "-becs-sftp-timeout must be from 10s to 2m30s"},
		{"an invitation TTL of a nanosecond", []string{"-invitation-ttl", "1ns"}, "-invitation-ttl must be at least 1m0s"},
		{"negative duration", []string{"-client-cache-ttl", "-1s"}, "-client-cache-ttl"},
		{"sandbox not a boolean", []string{"-sandbox", "maybe"}, "-sandbox"},
		{"address without port", []string{"-addr", "localhost"}, "-addr"},
		{"address of a port beyond 65535", []string{"-addr", "127.0.0.1:99999"}, `-addr: "127.0.0.1:99999" is not host:port, with a port from 0 to 65535`},
		{"address of a negative port", []string{"-addr", "127.0.0.1:-1"}, "-addr"},
		{"metrics address of a port beyond 65535", []string{"-metrics-addr", "127.0.0.1:65536"}, "-metrics-addr"},
		{"metrics address without port", []string{"-metrics-addr", "127.0.0.1"}, "-metrics-addr"},
		{"metrics on the API's address", []string{"-addr", "127.0.0.1:9000", "-metrics-addr", "127.0.0.1:9000"},
			`-metrics-addr (env PYNG_METRICS_ADDR) "127.0.0.1:9000" and -addr (env PYNG_ADDR) "127.0.0.1:9000" take the same port`},
		{"metrics on the port the API takes on every interface", []string{"-addr", ":9000", "-metrics-addr", "10.0.0.5:9000"}, "take the same port"},
		{"metrics on every interface of the API's port", []string{"-addr", "127.0.0.1:9000", "-metrics-addr", "0.0.0.0:9000"}, "take the same port"},
		{"metrics on an address of localhost, the API's", []string{"-addr", "localhost:9000", "-metrics-addr", "127.0.0.1:9000"}, "take the same port"},
		{"metrics on localhost, the API on IPv6 loopback", []string{"-addr", "[::1]:9000", "-metrics-addr", "localhost:9000"}, "take the same port"},
		{"public URL without scheme", []string{"-public-url", "pay.example.com"}, "-public-url"},
		{"public URL with a space", []string{"-public-url", "https://exa mple.com"}, "-public-url (env PYNG_PUBLIC_URL)"},
		{"public URL with a port that is not a number", []string{"-public-url", "http://host:notaport"}, "-public-url"},
		{"public URL without a host", []string{"-public-url", "http://"}, `-public-url (env PYNG_PUBLIC_URL): "http://" is not`},
		{"public URL with a query", []string{"-public-url", "https://pay.example.com/?a=b"}, "-public-url"},
		{"SMTP URL without a host", []string{"-smtp-url", "smtp://"}, `-smtp-url: "smtp://" is not an smtp:// or smtps:// URL with a host (env PYNG_SMTP_URL)`},
		{"SMTP URL of a port that is not one", []string{"-smtp-url", "smtp://mail.example.com:99999"}, "-smtp-url"},
		{"SMTP URL with a path", []string{"-smtp-url", "smtp://pyng:s3cr3t@mail.example.com:25/path"}, `-smtp-url: "smtp://pyng:xxxxx@mail.example.com:25/path" has a path`},
		{"SFTP key file without the SFTP server", []string{"-becs-sftp-key-file", "/etc/hostname"},
			"-becs-sftp-key-file (env PYNG_BECS_SFTP_KEY_FILE) is set, but not -becs-sftp-url (env PYNG_BECS_SFTP_URL)"},
		{"SFTP returns directory without the SFTP server", []string{"-becs-sftp-returns-dir", "returns"}, "-becs-sftp-returns-dir (env PYNG_BECS_SFTP_RETURNS_DIR) is set, but not"},
		{"SFTP server without its known hosts", []string{"-becs-sftp-url", "sftp://pyng@bank.example:22/in", "-becs-sftp-key-file", "/etc/hostname"},
			"-becs-sftp-url (env PYNG_BECS_SFTP_URL) needs -becs-sftp-known-hosts (env PYNG_BECS_SFTP_KNOWN_HOSTS)"},
		{"SFTP key file that is not a file", []string{"-becs-sftp-url", "sftp://pyng@bank.example:22/in", "-becs-sftp-key-file", "/nonexistent/key",
			"-becs-sftp-known-hosts", "/etc/hostname"}, `-becs-sftp-key-file (env PYNG_BECS_SFTP_KEY_FILE): "/nonexistent/key" is not a file`},
		{"SFTP key file that holds no key", []string{"-becs-sftp-url", "sftp://pyng@bank.example:22/in", "-becs-sftp-key-file", "/etc/hostname",
			"-becs-sftp-known-hosts", "/etc/hostname"}, "-becs-sftp-url (env PYNG_BECS_SFTP_URL): the SFTP key file /etc/hostname: ssh: no key found"},
		{"empty database URL", []string{"-database-url", ""}, "-database-url is required"},
		{"an SFTP timeout longer than a job may run", []string{"-becs-sftp-url", "sftp://pyng@bank.example:22/in", "-becs-sftp-key-file", "/etc/hostname",
			"-becs-sftp-known-hosts", "/etc/hostname", "-becs-sftp-timeout", "2m"},
			"-becs-sftp-timeout (env PYNG_BECS_SFTP_TIMEOUT) is 2m0s, longer than a job may run (1m0s, half of -job-rescue-after (env PYNG_JOB_RESCUE_AFTER)): set PYNG_JOB_RESCUE_AFTER to at least 4m0s"},
		{"a wait for an incomplete returns file shorter than the settle time", []string{"-becs-sftp-url", "sftp://pyng@bank.example:22/in",
			"-becs-sftp-key-file", "/etc/hostname", "-becs-sftp-known-hosts", "/etc/hostname", "-becs-sftp-returns-incomplete-wait", "30s"},
			"-becs-sftp-returns-incomplete-wait (env PYNG_BECS_SFTP_RETURNS_INCOMPLETE_WAIT) is 30s, shorter than -becs-sftp-returns-settle (env PYNG_BECS_SFTP_RETURNS_SETTLE), 50s"},
		{"a wait for an incomplete returns file longer than a day", []string{"-becs-sftp-returns-incomplete-wait", "25h"},
			"-becs-sftp-returns-incomplete-wait must be from 100ms to 24h0m0s"},
		{"unknown log format", []string{"-log-format", "xml"}, "-log-format"},
		{"no job workers", []string{"-job-workers", "0"}, "-job-workers"},
		{"negative rate limit", []string{"-rate-limit", "-1"}, "-rate-limit"},
		{"rate limit not a number", []string{"-rate-limit", "lots"}, "-rate-limit"},
		{"negative token rate limit", []string{"-token-rate-limit", "-1"}, "-token-rate-limit"},
		{"token rate limit not a number", []string{"-token-rate-limit", "NaN"}, "-token-rate-limit: \"NaN\" is not a number of requests a minute"},
		{"a trusted proxy named by its host name", []string{"-trusted-proxies", "10.0.0.1,lb.example"}, `-trusted-proxies: "lb.example" is not an IP address or a CIDR prefix such as 10.0.0.0/8`},
		{"job workers not a number", []string{"-job-workers", "many"}, "-job-workers"},
		{"job workers not auto", []string{"-job-workers", "Auto"}, `-job-workers: "Auto" is not a number from 1 to 1000, or auto`},
		{"no email workers", []string{"-email-workers", "0"}, "-email-workers"},
		{"no emails an address", []string{"-emails-per-address-per-day", "0"}, `-emails-per-address-per-day: "0" is not a number of emails from 1 to 1000 (env PYNG_EMAILS_PER_ADDRESS_PER_DAY)`},
		{"emails an address not a number", []string{"-emails-per-address-per-day", "ten"}, "-emails-per-address-per-day"},
		{"emails an address beyond any use", []string{"-emails-per-address-per-day", "1001"}, "from 1 to 1000"},
		{"too many webhook workers", []string{"-webhook-workers", "1001"}, "-webhook-workers"},
		{"no connections", []string{"-max-connections", "0"}, "-max-connections"},
		{"connections not a number", []string{"-max-connections", "lots"}, "-max-connections"},
		{"connections beyond any process's", []string{"-max-connections", "99999999999999"}, "from 1 to 1000000"},
		{"rescue too soon", []string{"-job-rescue-after", "1s"}, "-job-rescue-after must be at least 2s"},
		{"settlement delay not a duration", []string{"-sandbox-settlement-delay", "soon"}, "-sandbox-settlement-delay"},
		{"key ring that is not one", []string{"-encryption-key", "k1"}, "-encryption-key (PYNG_ENCRYPTION_KEY): key ring entry 1 is not id:base64key"},
		{"key ring with a short key", []string{"-encryption-key", "k1:c2hvcnQ="}, "5 bytes; want 32"},
		{"key ring given twice", []string{"-encryption-key", "k1:" + strings.Repeat("A", 43), "-encryption-key-file", "/keys"}, "are both set"},
		{"retention that is no duration", []string{"-bank-details-retention", "3 months"}, "-bank-details-retention"},
		{"negative retention", []string{"-bank-details-retention", "-1d"}, "-bank-details-retention"},
		{"one cut-off a day", []string{"-becs-cutoffs", "09:00"},
			`-becs-cutoffs (env PYNG_BECS_CUTOFFS): "09:00" leaves up to 25h0m0s from one cut-off to the next (in Australia/Sydney)`},
		{"cut-offs 23 hours apart in UTC", []string{"-becs-cutoffs", "09:00,10:00", "-becs-timezone", "UTC"},
			"none is more than 22h45m0s after the one before"},
		{"an interval of a day", []string{"-becs-cutoffs", "24h"}, "-becs-cutoffs (env PYNG_BECS_CUTOFFS): \"24h\" leaves up to 24h0m0s"},
		{"a holiday written day first", []string{"-becs-holidays", "2026-12-25,28/12/2026"}, `-becs-holidays: "2026-12-25,28/12/2026" is not a list of dates such as 2026-12-25,2026-12-28: "28/12/2026" is not a date (YYYY-MM-DD)`},
		{"a holiday named twice", []string{"-becs-holidays", "2026-12-25,2026-12-25"}, "names 2026-12-25 twice"},
		{"signing key reload too often", []string{"-signing-key-reload", "1ms"}, "-signing-key-reload must be at least 100ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, nil, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to mention %q", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), "PYNG_") {
				t.Errorf("error = %v, want it to name the environment variable too", err)
			}
		})
	}
}

func TestBankDetailsRetentionTakesDays(t *testing.T) {
	for v, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "0d": 0, "36h": 36 * time.Hour} {
		c, err := load(t, nil, "-bank-details-retention", v)
		if err != nil || c.Jobs.BankDetailsRetention != want {
			t.Errorf("-bank-details-retention %s = %v, %v; want %v", v, c.Jobs.BankDetailsRetention, err, want)
		}
	}
}

func TestEverySettingParsesItsOwnDefault(t *testing.T) {
	for _, s := range settings {
		var c Config
		if err := s.parse(&c, s.flag, s.def); err != nil {
			t.Errorf("-%s: default %q: %v", s.flag, s.def, err)
		}
	}
}

// notSettings are the Config fields Load fills without a setting.
var notSettings = map[string]bool{"Jobs.SweepInterval": true, "Jobs.AllowPrivateWebhooks": true, "Jobs.SendEmailFunc": true, "Jobs.JobFailedFunc": true, "Jobs.JobKindsFunc": true, "Jobs.StoppingFunc": true}

// TestEveryConfigFieldIsSetByExactlyOneSetting parses each setting's default into a zero Config
// and into one whose every field holds a value no default has: the fields that change are the
// setting's. A field no setting writes would keep its zero value silently.
func TestEveryConfigFieldIsSetByExactlyOneSetting(t *testing.T) {
	var sentinel Config
	for _, f := range leaves(reflect.ValueOf(&sentinel).Elem(), "") {
		switch f.value.Kind() {
		case reflect.String:
			f.value.SetString("\x00sentinel")
		case reflect.Bool:
			f.value.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.value.SetInt(-987654321)
		case reflect.Float64:
			f.value.SetFloat(-9876.5)
		case reflect.Func: // a dependency wired by the program (notSettings), not a setting
			continue
		case reflect.Slice:
			f.value.Set(reflect.Append(reflect.MakeSlice(f.value.Type(), 0, 1), reflect.ValueOf(-987654321).Convert(f.value.Type().Elem())))
		default:
			t.Fatalf("Config.%s: no sentinel for a %v", f.name, f.value.Type())
		}
	}
	writers := map[string][]string{} // field → the settings that write it
	for _, s := range settings {
		var written []string
		for _, start := range []Config{{}, sentinel} {
			c := start
			_ = s.parse(&c, s.flag, s.def)
			before := leaves(reflect.ValueOf(&start).Elem(), "")
			for i, f := range leaves(reflect.ValueOf(&c).Elem(), "") {
				if !reflect.DeepEqual(f.value.Interface(), before[i].value.Interface()) && !slices.Contains(written, f.name) {
					written = append(written, f.name)
				}
			}
		}
		if len(written) != 1 {
			t.Errorf("-%s writes the fields %v, want one", s.flag, written)
		}
		for _, name := range written {
			writers[name] = append(writers[name], s.flag)
		}
	}
	fields := map[string]bool{}
	for _, f := range leaves(reflect.ValueOf(&Config{}).Elem(), "") {
		fields[f.name] = true
		switch n := len(writers[f.name]); {
		case notSettings[f.name] && n > 0:
			t.Errorf("Config.%s is listed as set by no setting, yet %v write it", f.name, writers[f.name])
		case notSettings[f.name]:
		case n != 1:
			t.Errorf("Config.%s is written by the settings %v, want exactly one", f.name, writers[f.name])
		}
	}
	for name := range notSettings {
		if !fields[name] {
			t.Errorf("notSettings names %s, which Config does not have", name)
		}
	}
}

type leaf struct {
	name  string
	value reflect.Value
}

// leaves lists the fields of the struct v that are not structs themselves, depth first, named by
// their path ("Jobs.Workers").
func leaves(v reflect.Value, prefix string) []leaf {
	var out []leaf
	for i := range v.NumField() {
		name := prefix + v.Type().Field(i).Name
		if f := v.Field(i); f.Kind() == reflect.Struct {
			out = append(out, leaves(f, name+".")...)
		} else {
			out = append(out, leaf{name, f})
		}
	}
	return out
}

func TestDatabaseSettingsRegisterOnlyTheDatabaseURL(t *testing.T) {
	t.Setenv("PYNG_ADDR", "localhost") // not registered, so its bad value is not read
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	values := RegisterFlags(fs, DatabaseSettings...)
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if !slices.Equal(names, []string{"database-url"}) {
		t.Fatalf("flags = %v, want only database-url", names)
	}
	if err := fs.Parse([]string{"-database-url", "postgres://db/pyng"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(values)
	if err != nil || c.DatabaseURL != "postgres://db/pyng" || c.PublicURL != "" {
		t.Errorf("Load = %+v, %v; want the database URL and no public URL (the command does not listen)", c, err)
	}
}

func TestHelpShowsNoSecretOfTheEnvironment(t *testing.T) {
	ring := "k1:" + strings.Repeat("A", 43) + "="
	t.Setenv("PYNG_DATABASE_URL", "postgres://pyng:dbs3cret@db:5432/pyng")
	t.Setenv("PYNG_ENCRYPTION_KEY", ring)
	t.Setenv("PYNG_SMTP_URL", "smtp://pyng:mails3cret@mail.example")
	t.Setenv("PYNG_ADDR", "127.0.0.1:9999")
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var help strings.Builder
	fs.SetOutput(&help)
	values := RegisterFlags(fs)
	fs.PrintDefaults()
	for _, secret := range []string{"dbs3cret", ring, "mails3cret"} {
		if strings.Contains(help.String(), secret) {
			t.Errorf("-h shows %q:\n%s", secret, help.String())
		}
	}
	for _, shown := range []string{"postgres://pyng:xxxxx@db:5432/pyng", "(from PYNG_ENCRYPTION_KEY, not shown)", "127.0.0.1:9999"} {
		if !strings.Contains(help.String(), shown) {
			t.Errorf("-h does not show %q", shown)
		}
	}
	if *values["database-url"] != "postgres://pyng:dbs3cret@db:5432/pyng" || *values["encryption-key"] != ring {
		t.Errorf("values = %q, %q; want the environment's, whole", *values["database-url"], *values["encryption-key"])
	}
}

func TestMisspeltSettingNamesAreCaught(t *testing.T) {
	t.Run("RegisterFlags panics on a name that is no setting", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("RegisterFlags(databse-url) did not panic")
			}
		}()
		RegisterFlags(flag.NewFlagSet("migrate", flag.ContinueOnError), "databse-url")
	})
	t.Run("Load rejects a value under a name that is no setting", func(t *testing.T) {
		url := "postgres://db/pyng"
		if _, err := Load(map[string]*string{"databse-url": &url}); err == nil || !strings.Contains(err.Error(), `"databse-url"`) {
			t.Errorf("error = %v, want it to name databse-url", err)
		}
	})
}

// TestSandboxMustBeSetExplicitlyBeyondTheEmbeddedDatabase checks that the one-command sandbox
// stays the default of the embedded SQLite, while serving any other database with PYNG_SANDBOX
// unset is refused, in one line that names the setting: a production deployment that forgot it
// would otherwise get a demo client with every scope and the simulators.
func TestSandboxMustBeSetExplicitlyBeyondTheEmbeddedDatabase(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		sandbox bool
		refused bool
	}{
		{name: "the default SQLite database is a sandbox", sandbox: true},
		{name: "a SQLite file path is a sandbox", args: []string{"-database-url", "/var/lib/pyng/pyng.db"}, sandbox: true},
		{name: "SQLite with PYNG_SANDBOX=false is not", env: map[string]string{"PYNG_SANDBOX": "false"}, sandbox: false},
		{name: "postgres:// without the setting is refused", args: []string{"-database-url", "postgres://db/pyng"}, refused: true},
		{name: "postgresql:// without the setting is refused", env: map[string]string{"PYNG_DATABASE_URL": "postgresql://db/pyng"}, refused: true},
		{name: "an empty PYNG_SANDBOX counts as unset", env: map[string]string{"PYNG_DATABASE_URL": "postgres://db/pyng", "PYNG_SANDBOX": " "}, refused: true},
		{name: "postgres:// with PYNG_SANDBOX=false serves no sandbox", env: map[string]string{"PYNG_DATABASE_URL": "postgres://db/pyng", "PYNG_SANDBOX": "false"}, sandbox: false},
		{name: "postgres:// with PYNG_SANDBOX=true serves the sandbox", env: map[string]string{"PYNG_DATABASE_URL": "postgres://db/pyng", "PYNG_SANDBOX": "true"}, sandbox: true},
		{name: "postgres:// with -sandbox=false serves no sandbox", args: []string{"-database-url", "postgres://db/pyng", "-sandbox=false"}, sandbox: false},
		{name: "the flag wins over the environment", env: map[string]string{"PYNG_SANDBOX": "true"}, args: []string{"-database-url", "postgres://db/pyng", "-sandbox", "false"}, sandbox: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PYNG_SANDBOX", "") // whatever the environment of the test run says
			t.Setenv("PYNG_DATABASE_URL", "")
			t.Setenv("PYNG_PUBLIC_URL", "https://pay.example.com") // required outside the sandbox
			os.Unsetenv("PYNG_SANDBOX")
			os.Unsetenv("PYNG_DATABASE_URL")
			c, err := load(t, tc.env, tc.args...)
			if tc.refused {
				if err == nil || !strings.Contains(err.Error(), "-sandbox") || !strings.Contains(err.Error(), "PYNG_SANDBOX") || strings.Contains(err.Error(), "\n") {
					t.Errorf("error = %v, want one line naming -sandbox and PYNG_SANDBOX", err)
				}
				return
			}
			if err != nil || c.Sandbox != tc.sandbox {
				t.Errorf("Load = sandbox %v, %v; want sandbox %v", c.Sandbox, err, tc.sandbox)
			}
		})
	}
	t.Run("commands that do not serve need no sandbox setting", func(t *testing.T) {
		url := "postgres://db/pyng"
		if _, err := Load(map[string]*string{"database-url": &url}); err != nil {
			t.Errorf("Load of the database URL alone: %v", err)
		}
	})
}

// TestEverySettingIsInTheREADME checks that the README's configuration table has a row for each
// setting, with its flag and environment variable.
func TestEverySettingIsInTheREADME(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if row := "| `-" + s.flag + "` | `" + s.env + "` |"; !strings.Contains(string(readme), row) {
			t.Errorf("README.md has no configuration row starting %s", row)
		}
	}
}

// A PYNG_ variable of the environment that is no setting's (a typo, say) is found, so that the
// server can warn of it at start.
func TestUnknownEnvironmentFindsMisspeltSettings(t *testing.T) {
	got := UnknownEnvironment([]string{"PYNG_SMTP_ULR=smtp://x", "PYNG_SMTP_URL=smtp://x", "HOME=/root", "PYNG_BECS_OUTBOXX=/tmp", "PYNGX=1", "PYNG_ADDR=:8080"})
	if want := []string{"PYNG_BECS_OUTBOXX", "PYNG_SMTP_ULR"}; !slices.Equal(got, want) {
		t.Errorf("UnknownEnvironment = %v, want %v", got, want)
	}
}

// An SFTP timeout longer than a job may run (the BECS tasks' sessions run inside jobs) is
// accepted once the rescue time leaves it room, and kept as given.
func TestAnSFTPTimeoutNeedsARescueTimeTwiceAsLong(t *testing.T) {
	key, knownHosts := sftpFiles(t)
	c, err := load(t, map[string]string{"PYNG_BECS_SFTP_TIMEOUT": "2m30s", "PYNG_JOB_RESCUE_AFTER": "5m"},
		"-becs-sftp-url", "sftp://pyng@bank.example:22/in", "-becs-sftp-key-file", key, "-becs-sftp-known-hosts", knownHosts)
	if err != nil || c.BECSSFTPTimeout != 150*time.Second || c.Jobs.RescueAfter != 5*time.Minute {
		t.Fatalf("Load = %v, %v / %v; want 2m30s and 5m accepted", err, c.BECSSFTPTimeout, c.Jobs.RescueAfter)
	}
}

// Cut-offs that leave a file at least an hour to be lodged are taken, whatever their number.
func TestCutoffsThatLeaveAnHourToLodgeAreTaken(t *testing.T) {
	for _, cutoffs := range []string{"09:00,15:00", "09:00,12:00", "00:00,12:00", "22h45m", "1s"} {
		if c, err := load(t, nil, "-becs-cutoffs", cutoffs); err != nil || c.BECSCutoffs != cutoffs {
			t.Errorf("PYNG_BECS_CUTOFFS=%s: %v", cutoffs, err)
		}
	}
}

// TestConfigReadsTheSFTPKeyAndKnownHosts: the SFTP key and known_hosts files are read and parsed
// with the settings, so that one that does not parse is a setting refused (exit 2), not a server
// that fails once started.
func TestConfigReadsTheSFTPKeyAndKnownHosts(t *testing.T) {
	key, pinned := sftpFiles(t)
	garbled := filepath.Join(t.TempDir(), "garbled")
	if err := os.WriteFile(garbled, []byte("bank.example ssh-ed25519 not-base64!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := func(knownHosts string) []string {
		return []string{"-becs-sftp-url", "sftp://pyng@bank.example:22/in", "-becs-sftp-key-file", key, "-becs-sftp-known-hosts", knownHosts}
	}
	if _, err := load(t, nil, args(pinned)...); err != nil {
		t.Errorf("a key and a known_hosts that parse: %v", err)
	}
	want := "-becs-sftp-url (env PYNG_BECS_SFTP_URL): the SFTP known hosts file: "
	if _, err := load(t, nil, args(garbled)...); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a known_hosts that does not parse: %v, want it to say %q", err, want)
	}
}

// sftpFiles writes a key (made by ssh-keygen) and a known_hosts file pinning that same key for
// bank.example:22, as the SFTP settings need.
func sftpFiles(t *testing.T) (key, knownHosts string) {
	t.Helper()
	dir := t.TempDir()
	key, knownHosts = filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "known_hosts")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	public, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(knownHosts, append([]byte("[bank.example]:22 "), public...), 0o600); err != nil {
		t.Fatal(err)
	}
	return key, knownHosts
}

// The outbox is taken cleaned: a file records the destination it was staged to by its name, so
// that /srv/outbox/ and /srv/outbox, or a path through ./, must be one outbox.
func TestTheOutboxPathIsCleaned(t *testing.T) {
	dir := t.TempDir()
	for _, given := range []string{dir, dir + "/", dir + "//", dir + "/./", filepath.Dir(dir) + "/../" + filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)} {
		c, err := load(t, nil, "-becs-outbox", given)
		if err != nil || c.BECSOutbox != dir {
			t.Errorf("-becs-outbox %q = %q, %v; want %q", given, c.BECSOutbox, err, dir)
		}
	}
}
