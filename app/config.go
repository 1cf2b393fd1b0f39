package app

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"math"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // the BECS cut-offs' time zone, whatever the host has

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/email"
	"github.com/pyng/receivables/internal/redact"
	"github.com/pyng/receivables/jobs"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/seal"
	"github.com/pyng/receivables/storage"
)

// Config is the server's configuration, read once at start from flags, each of which has an
// environment-variable equivalent (the flag wins).
type Config struct {
	Addr string
	// MetricsAddr, when set, is the listener of GET /metrics, apart from the API's.
	MetricsAddr   string
	DatabaseURL   string
	PublicURL     string
	InvitationTTL time.Duration
	Sandbox       bool
	// WebhookPrivateDestinations is auto, true or false: whether, in the sandbox, webhook URLs
	// may be http and name internal hosts (Load resolves it into Jobs.AllowPrivateWebhooks).
	WebhookPrivateDestinations string
	AccessTokenTTL             time.Duration
	ClientCacheTTL             time.Duration
	// RateLimit is the requests a second each API client may make to one replica (0: no limit).
	RateLimit float64
	// TokenRateLimit is the token requests a minute each client id, and each remote address, may
	// make to one replica (0: no limit).
	TokenRateLimit float64
	// TrustedProxies are the load balancers whose X-Forwarded-For names the client, in
	// parseTrustedProxies's form ("" for none).
	TrustedProxies string
	LogFormat      string
	// MaxConnections bounds the connections the server holds open at once.
	MaxConnections int
	// SettlementDelay is how long the sandbox rail takes to settle a debit.
	SettlementDelay time.Duration
	// Jobs tunes the background workers.
	Jobs jobs.Config
	// EncryptionKey is the key ring that seals customers' bank details and the signing keys
	// (seal.Parse's format); EncryptionKeyFile names a file holding one. See Keyring.
	EncryptionKey     string
	EncryptionKeyFile string
	// SigningKeyReload is how often a replica reads the signing keys again, picking up rotations.
	SigningKeyReload time.Duration
	// ShutdownDrain is how long a replica keeps serving after a stop signal, failing /readyz and
	// closing each connection after its answer, before it stops accepting connections.
	ShutdownDrain time.Duration
	// BECSCutoffs is when the BECS rail cuts its files (becs.ParseSchedule), in BECSTimezone;
	// BECSOutbox is the directory files are delivered to ("" for none): with BECSSFTPURL as
	// well, each file is written there (a copy, for the record) and uploaded to the server.
	BECSCutoffs  string
	BECSTimezone string
	BECSOutbox   string
	// BECSHolidays are the dates, besides weekends, on which BECS processes no file
	// (becs.ParseHolidays): a file cut on one is dated the next business day.
	BECSHolidays string
	// BECSSFTPURL, with its key file and known hosts, is the bank's SFTP server files are
	// delivered (and so lodged) to; BECSSFTPReturnsDir its directory of returns files.
	BECSSFTPURL        string
	BECSSFTPKeyFile    string
	BECSSFTPKnownHosts string
	BECSSFTPReturnsDir string
	// BECSSFTPTimeout bounds each session with the SFTP server (becs.SFTPConfig.Timeout).
	BECSSFTPTimeout time.Duration
	// BECSSFTPReturnsSettle is how long a returns file must be seen unchanged before it is read
	// (becs.SFTPConfig.ReturnsSettle).
	BECSSFTPReturnsSettle time.Duration
	// BECSSFTPReturnsIncompleteWait is how long a returns file that reads as incomplete is left
	// in place while unchanged before it is rejected (becs.SFTPConfig.ReturnsIncompleteWait).
	BECSSFTPReturnsIncompleteWait time.Duration
	// SMTPURL is the SMTP server of the emails to customers ("" for none); MailFrom their sender.
	SMTPURL  string
	MailFrom string
	// ManagementLinkTTL is how long a customer's link to manage their agreement lasts.
	ManagementLinkTTL time.Duration
	// EmailsPerAddressPerDay caps the emails to customers sent to one address in any 24 hours.
	EmailsPerAddressPerDay int
}

// setting is one configuration value: its flag, environment variable, default and meaning, and
// how its text becomes its field of Config.
type setting struct {
	flag, env, def, usage string
	// parse checks value and stores it in c; its errors name the flag.
	parse func(c *Config, flag, value string) error
}

// addrFlag and sandboxFlag are the settings Load asks for by name: the public URL defaults to
// the address only when the command listens, and only a command that serves must say whether
// it is a sandbox.
const (
	addrFlag    = "addr"
	sandboxFlag = "sandbox"
	// webhookPrivateFlag's setting is resolved once the sandbox and the public URL are known.
	webhookPrivateFlag = "webhook-private-destinations"
	webhookPrivateAuto = "auto"
)

var settings = []setting{
	{addrFlag, "PYNG_ADDR", "127.0.0.1:8080", "address to listen on", func(c *Config, flag, v string) error {
		c.Addr = v
		return listenAddress(flag, v)
	}},
	{"metrics-addr", "PYNG_METRICS_ADDR", "", "address of a listener of its own for GET /metrics, such as 127.0.0.1:9090, which the API's address then does not serve (empty: a sandbox on this machine, listening on loopback alone with its public URL on it, serves it on the API's address; any other server nowhere)", func(c *Config, flag, v string) error {
		c.MetricsAddr = v
		if v == "" {
			return nil
		}
		return listenAddress(flag, v)
	}},
	{"database-url", "PYNG_DATABASE_URL", "sqlite:pyng.db", "database: a sqlite: URL or file path (embedded), or a postgres:// URL whose parameters also configure the connection pool: pool_max_conns (default max(4, CPUs)), pool_min_conns, pool_max_conn_lifetime, pool_max_conn_idle_time, pool_health_check_period", func(c *Config, flag, v string) error {
		c.DatabaseURL = v
		if v == "" {
			return fmt.Errorf("-%s is required", flag)
		}
		if _, err := storage.SQLitePath(v); errors.Is(err, storage.ErrKeywordValue) {
			return fmt.Errorf("-%s: %w", flag, err)
		}
		return nil
	}},
	{"public-url", "PYNG_PUBLIC_URL", "", "external base URL of the server, the root of a host, used in signupUrl and the customers' emails (in the sandbox, default http://ADDR; required, https, outside it)", func(c *Config, flag, v string) error {
		c.PublicURL = strings.TrimSuffix(v, "/")
		if c.PublicURL == "" {
			return nil
		}
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
			strings.ContainsAny(c.PublicURL, " \t") || (u.Port() != "" && strings.Trim(u.Port(), "0123456789") != "") {
			return fmt.Errorf("-%s (env PYNG_PUBLIC_URL): %q is not an http:// or https:// URL of a host, such as https://pay.example.com", flag, redact.URL(v))
		}
		if u.Path != "" {
			return fmt.Errorf("-%s (env PYNG_PUBLIC_URL): %q has a path: the server is reached at the root of its host (the pages link to /signup, /agreement, ...), as https://pay.example.com", flag, redact.URL(v))
		}
		// As every part of the server compares it (https://, its host): HTTPS://Pay.Example.com
		// would otherwise be https to the check above and not to the cookies and HSTS.
		c.PublicURL = (&url.URL{Scheme: u.Scheme, Host: strings.ToLower(u.Host)}).String()
		return nil
	}},
	{"invitation-ttl", "PYNG_INVITATION_TTL", "168h", "how long a signup link stays valid (Go duration)",
		duration(func(c *Config) *time.Duration { return &c.InvitationTTL }, atLeast(time.Minute))}, // a customer must have time to open it
	{sandboxFlag, "PYNG_SANDBOX", "", "sandbox mode, true or false: demo credentials on first start and the sandbox simulators (default true with the embedded SQLite; with any other database it must be set)", func(c *Config, flag, v string) error {
		if v == "" {
			// Unset: the one-command sandbox of the embedded database. Load refuses to serve
			// any other database with it unset.
			c.Sandbox = true
			return nil
		}
		b, err := strconv.ParseBool(v)
		c.Sandbox = b
		if err != nil {
			return fmt.Errorf("-%s: %q is not true or false", flag, v)
		}
		return nil
	}},
	{"access-token-ttl", "PYNG_ACCESS_TOKEN_TTL", "1h", "lifetime of OAuth 2.0 access tokens",
		duration(func(c *Config) *time.Duration { return &c.AccessTokenTTL }, positive)},
	{"client-cache-ttl", "PYNG_CLIENT_CACHE_TTL", "30s", "how long a replica caches that an API client is not revoked",
		duration(func(c *Config) *time.Duration { return &c.ClientCacheTTL }, nil)},
	{"rate-limit", "PYNG_RATE_LIMIT", "100", "requests a second each API client may make to this replica, in bursts of twice as many (0: no limit)",
		requestRate(func(c *Config) *float64 { return &c.RateLimit }, "a second")},
	{"token-rate-limit", "PYNG_TOKEN_RATE_LIMIT", "60", "requests a minute to /oauth2/token that each client id, and each remote address, may make to this replica, in bursts of as many (0: no limit)",
		requestRate(func(c *Config) *float64 { return &c.TokenRateLimit }, "a minute")},
	{"trusted-proxies", "PYNG_TRUSTED_PROXIES", "", "the load balancers in front of this replica, comma-separated IP addresses or CIDR prefixes: a request one of them forwards is counted by the limits per client address under the address X-Forwarded-For gives (its last one not of a proxy listed)", func(c *Config, flag, v string) error {
		c.TrustedProxies = v
		if _, err := parseTrustedProxies(v); err != nil {
			return fmt.Errorf("-%s: %w", flag, err)
		}
		return nil
	}},
	{"log-format", "PYNG_LOG_FORMAT", "text", "log format: text or json", func(c *Config, flag, v string) error {
		c.LogFormat = v
		if v != "text" && v != "json" {
			return fmt.Errorf("-%s: %q is not text or json", flag, v)
		}
		return nil
	}},
	{"sandbox-settlement-delay", "PYNG_SANDBOX_SETTLEMENT_DELAY", "3s", "how long the sandbox rail takes to settle a debit",
		duration(func(c *Config) *time.Duration { return &c.SettlementDelay }, nil)},
	{"max-connections", "PYNG_MAX_CONNECTIONS", "1000", "connections this replica holds open at once, idle keep-alives included; at the limit a new one takes the slot of the one idle longest (or silent for a second), and only while every one is busy with a request do more wait in the kernel's queue", func(c *Config, flag, v string) error {
		n, err := strconv.Atoi(v)
		c.MaxConnections = n
		if err != nil || n < 1 || n > maxConnections {
			return fmt.Errorf("-%s: %q is not a number of connections from 1 to %d", flag, v, maxConnections)
		}
		return nil
	}},
	{"job-workers", "PYNG_JOB_WORKERS", "auto", "how many jobs (batch executions) run at once in this process; auto: twice the CPUs it may use, at most 8", func(c *Config, flag, v string) error {
		if v == "auto" {
			c.Jobs.Workers = autoJobWorkers()
			return nil
		}
		if err := workers(func(c *Config) *int { return &c.Jobs.Workers })(c, flag, v); err != nil {
			return fmt.Errorf("%w, or auto", err)
		}
		return nil
	}},
	{"job-poll-interval", "PYNG_JOB_POLL_INTERVAL", "200ms", "how often the job queue is polled (PostgreSQL also notifies at once)",
		duration(func(c *Config) *time.Duration { return &c.Jobs.PollInterval }, atLeast(time.Millisecond))},
	{"job-rescue-after", "PYNG_JOB_RESCUE_AFTER", "2m", "how long a job may run before another worker takes it over (for jobs of a process that died)",
		duration(func(c *Config) *time.Duration { return &c.Jobs.RescueAfter }, atLeast(2*time.Second))},
	{encryptionKeyFlag, "PYNG_ENCRYPTION_KEY", "", "key ring sealing customers' bank details and the signing keys: id:base64key[,id:base64key...], 32-byte AES-256 keys, the first seals and every one opens (prefer the environment or -encryption-key-file to this flag)", func(c *Config, flag, v string) error {
		c.EncryptionKey = v
		if v == "" {
			return nil
		}
		if _, err := seal.Parse(v); err != nil {
			return fmt.Errorf("-%s (PYNG_ENCRYPTION_KEY): %w", flag, err)
		}
		return nil
	}},
	{encryptionKeyFileFlag, "PYNG_ENCRYPTION_KEY_FILE", "", "file holding the key ring, in the format of -encryption-key", func(c *Config, flag, v string) error {
		c.EncryptionKeyFile = v
		return nil
	}},
	{"bank-details-retention", "PYNG_BANK_DETAILS_RETENTION", "90d", "how long a customer's bank details, name and email are kept after their link is revoked (a Go duration, or days such as 90d)", func(c *Config, flag, v string) error {
		d, err := parseDays(v)
		c.Jobs.BankDetailsRetention = d
		if err != nil || d < 0 {
			return fmt.Errorf("-%s: %q is not a duration such as 90d or 2160h", flag, v)
		}
		return nil
	}},
	{"webhook-workers", "PYNG_WEBHOOK_WORKERS", "16", "how many webhook deliveries this process sends at once (a queue apart from batch execution)",
		workers(func(c *Config) *int { return &c.Jobs.WebhookWorkers })},
	{"email-workers", "PYNG_EMAIL_WORKERS", "4", "how many emails to customers this process sends at once (a queue apart from batch execution)",
		workers(func(c *Config) *int { return &c.Jobs.EmailWorkers })},
	{"emails-per-address-per-day", "PYNG_EMAILS_PER_ADDRESS_PER_DAY", "10", "how many emails to customers (signup and revocation confirmations, management links) one address is sent from one site in any 24 hours, from 1 to 1000; those beyond are not sent (whoever holds a signup link, the partner too, may type any address into the form)", func(c *Config, flag, v string) error {
		n, err := strconv.Atoi(v)
		c.EmailsPerAddressPerDay = n
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("-%s: %q is not a number of emails from 1 to 1000", flag, v)
		}
		return nil
	}},
	{webhookPrivateFlag, "PYNG_WEBHOOK_PRIVATE_DESTINATIONS", webhookPrivateAuto, "whether webhook URLs may be http and name loopback and private addresses (a developer's own receivers): auto, in the sandbox when it is on this machine (listening on loopback alone, -addr 127.0.0.1, ::1 or localhost, not 0.0.0.0, and its public URL localhost or a loopback address); true, in the sandbox whatever its public URL (a sandbox on a private network); false, never (a sandbox others reach: its network is not theirs to reach); never outside the sandbox, and never link-local or cloud metadata addresses", func(c *Config, flag, v string) error {
		c.WebhookPrivateDestinations = v
		if v != webhookPrivateAuto && v != "true" && v != "false" {
			return fmt.Errorf("-%s: %q is not auto, true or false", flag, v)
		}
		return nil
	}},
	{"webhook-retry-schedule", "PYNG_WEBHOOK_RETRY_SCHEDULE", "5s,5m,30m,2h,5h,10h,10h", "how long a failed webhook delivery waits before each next attempt (comma-separated Go durations; the first attempt is immediate, the one after the last wait is the last)", func(c *Config, flag, v string) error {
		c.Jobs.RetrySchedule = nil
		for part := range strings.SplitSeq(v, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(part))
			if err != nil || d <= 0 {
				return fmt.Errorf("-%s: %q is not a list of positive durations such as 5s,5m,30m", flag, v)
			}
			c.Jobs.RetrySchedule = append(c.Jobs.RetrySchedule, d)
		}
		if len(c.Jobs.RetrySchedule) > 20 {
			return fmt.Errorf("-%s: at most 20 retries", flag)
		}
		return nil
	}},
	{"signing-key-reload", "PYNG_SIGNING_KEY_RELOAD", "1m", "how often a replica reads the signing keys again, picking up a rotation",
		duration(func(c *Config) *time.Duration { return &c.SigningKeyReload }, atLeast(100*time.Millisecond))},
	{"shutdown-drain", "PYNG_SHUTDOWN_DRAIN", "0s", "how long a replica keeps serving after SIGTERM before it stops accepting connections, answering /readyz 503 and closing each connection after its answer, so that a load balancer stops sending to it first (0: stop accepting at once)",
		duration(func(c *Config) *time.Duration { return &c.ShutdownDrain }, between(0, time.Minute))},
	{"becs-cutoffs", "PYNG_BECS_CUTOFFS", "09:00,15:00", "when the BECS rail cuts a file of each site's debits: local times of PYNG_BECS_TIMEZONE such as 09:00,15:00, or an interval such as 10m (for testing); none more than 22h45m after the one before, so that every file has an hour to be lodged", func(c *Config, flag, v string) error {
		c.BECSCutoffs = v
		if _, err := becs.ParseSchedule(v, time.UTC); err != nil {
			return fmt.Errorf("-%s: %w", flag, err)
		}
		return nil
	}},
	{"becs-timezone", "PYNG_BECS_TIMEZONE", "Australia/Sydney", "the time zone of the BECS cut-offs and of the files' processing dates (an IANA name)", func(c *Config, flag, v string) error {
		c.BECSTimezone = v
		if _, err := time.LoadLocation(v); err != nil || v == "" {
			return fmt.Errorf("-%s: %q is not a time zone such as Australia/Sydney", flag, v)
		}
		return nil
	}},
	{"becs-holidays", "PYNG_BECS_HOLIDAYS", "", "the dates, in PYNG_BECS_TIMEZONE, on which BECS processes no file besides Saturdays and Sundays: the national bank holidays your bank publishes, such as 2026-12-25,2026-12-28,2027-01-01 (a file cut on one, or on a weekend, is dated the next business day; a holiday not listed is dated as a business day, which the bank processes on its next)", func(c *Config, flag, v string) error {
		c.BECSHolidays = v
		if _, err := becs.ParseHolidays(v); err != nil {
			return fmt.Errorf("-%s: %w", flag, err)
		}
		return nil
	}},
	{"smtp-url", "PYNG_SMTP_URL", "", "SMTP server of the emails to customers: smtp://[user:password@]host[:port] (STARTTLS when offered; ?tls=required insists) or smtps://... (empty: in the sandbox emails are written to the log; outside it they wait in the queue, with a warning at start)", func(c *Config, flag, v string) error {
		c.SMTPURL = v
		if v == "" {
			return nil
		}
		if _, err := email.SMTP(v); err != nil { // what the server will send with, checked before it starts
			return fmt.Errorf("-%s: %v", flag, err)
		}
		// The SMTP client takes the host and port alone: a path would be ignored unseen.
		if u, err := url.Parse(v); err == nil && strings.TrimPrefix(u.Path, "/") != "" {
			return fmt.Errorf("-%s: %q has a path: an SMTP server is a host and port, as smtp://user:password@mail.example.com:587", flag, redact.URL(v))
		}
		return nil
	}},
	{"mail-from", "PYNG_MAIL_FROM", "Pyng <no-reply@pyng.invalid>", "the sender of the emails to customers, an address with an optional name", func(c *Config, flag, v string) error {
		c.MailFrom = v
		if _, err := mail.ParseAddress(v); err != nil {
			return fmt.Errorf("-%s: %q is not an email address: %v", flag, v, err)
		}
		return nil
	}},
	{"management-link-ttl", "PYNG_MANAGEMENT_LINK_TTL", "720h", "how long a customer's link to manage their agreement lasts (Go duration); a new one comes by email",
		duration(func(c *Config) *time.Duration { return &c.ManagementLinkTTL }, positive)},
	{"becs-outbox", "PYNG_BECS_OUTBOX", "", "directory the BECS rail delivers its files to, each written atomically, for the operator to lodge with the bank; with PYNG_BECS_SFTP_URL, a copy of each file the server lodges, for the record, not to lodge (empty: files stay in the database, for pyng admin becs files get)", func(c *Config, flag, v string) error {
		if v == "" {
			c.BECSOutbox = ""
			return nil
		}
		// Cleaned, as a file records the destination it was staged to by its name: /srv/outbox/
		// and /srv/outbox are one outbox (becs.Rail's staged_to).
		c.BECSOutbox = filepath.Clean(v)
		if info, err := os.Stat(v); err != nil || !info.IsDir() {
			return fmt.Errorf("-%s: %q is not a directory", flag, v)
		}
		return nil
	}},
	{"becs-sftp-url", "PYNG_BECS_SFTP_URL", "", "the bank's SFTP server the BECS rail delivers its files to, as sftp://user@host:port/dir (dir relative to the login directory; //dir absolute); a file uploaded there is lodged (empty: none; with PYNG_BECS_OUTBOX, each file is written to the outbox too, then uploaded)", func(c *Config, flag, v string) error {
		c.BECSSFTPURL = v
		if u, err := url.Parse(v); v != "" && (err != nil || u.Scheme != "sftp" || u.Host == "" || u.User == nil) {
			return fmt.Errorf("-%s: %q is not of the form sftp://user@host:port/dir", flag, redact.URL(v))
		}
		return nil
	}},
	{"becs-sftp-key-file", "PYNG_BECS_SFTP_KEY_FILE", "", "the private key (OpenSSH format) the BECS rail logs in to the SFTP server with", func(c *Config, flag, v string) error {
		c.BECSSFTPKeyFile = v
		return nil
	}},
	{"becs-sftp-known-hosts", "PYNG_BECS_SFTP_KNOWN_HOSTS", "", "a known_hosts file holding the SFTP server's host key, the only key accepted", func(c *Config, flag, v string) error {
		c.BECSSFTPKnownHosts = v
		return nil
	}},
	{"becs-sftp-returns-dir", "PYNG_BECS_SFTP_RETURNS_DIR", "", "the SFTP server's directory the bank puts returns files in (relative to the login directory unless it starts with /), imported every minute (each moved to imported/ or rejected/ beside it; empty: none)", func(c *Config, flag, v string) error {
		c.BECSSFTPReturnsDir = v
		return nil
	}},
	{"becs-sftp-returns-settle", "PYNG_BECS_SFTP_RETURNS_SETTLE", becs.DefaultReturnsSettle.String(), "how long a returns file must be seen unchanged (its size and modification time) before it is read, so that a file the bank is still uploading is left for a later look (one that reads whole is imported only after PYNG_BECS_SFTP_RETURNS_INCOMPLETE_WAIT, one malformed is rejected); from 100ms to 1h",
		duration(func(c *Config) *time.Duration { return &c.BECSSFTPReturnsSettle }, between(100*time.Millisecond, time.Hour))},
	{"becs-sftp-returns-incomplete-wait", "PYNG_BECS_SFTP_RETURNS_INCOMPLETE_WAIT", becs.DefaultReturnsIncompleteWait.String(), "how long a returns file must be seen unchanged before it is imported (a file cut at the end of one of its blocks reads whole), and how long one that reads as incomplete (it ends before its file total record, as one the bank is still uploading does) is left in place while it is seen unchanged, read again every minute, before it is rejected, so that an upload that stalled for longer than PYNG_BECS_SFTP_RETURNS_SETTLE and resumed is imported whole; from 100ms to 24h, and at least PYNG_BECS_SFTP_RETURNS_SETTLE",
		duration(func(c *Config) *time.Duration { return &c.BECSSFTPReturnsIncompleteWait }, between(100*time.Millisecond, 24*time.Hour))},
	{"becs-sftp-timeout", "PYNG_BECS_SFTP_TIMEOUT", becs.DefaultSFTPTimeout.String(), "how long each session with the SFTP server may last: connecting and a whole file's upload (size it to the largest file at the link's speed: 60 MB, a file of 500,000 debits, takes a minute at 1 MB/s), or a look at the returns directory; from 10s to " + becs.MaxSFTPTimeout.String() + ", and at most half of PYNG_JOB_RESCUE_AFTER (the sessions run inside jobs)",
		duration(func(c *Config) *time.Duration { return &c.BECSSFTPTimeout }, between(10*time.Second, becs.MaxSFTPTimeout))},
}

// The settings of the key ring, which Load checks together.
const (
	encryptionKeyFlag     = "encryption-key"
	encryptionKeyFileFlag = "encryption-key-file"
)

// KeySettings are the settings of the key ring, for the admin commands that seal.
var KeySettings = []string{encryptionKeyFlag, encryptionKeyFileFlag}

// parseDays parses a Go duration, or a whole number of days such as 90d (at most a duration's
// 106751 days: more would wrap around to any duration, as short as minutes).
func parseDays(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 32)
		if err == nil && (n < 0 || n > int64(math.MaxInt64/(24*time.Hour))) {
			err = fmt.Errorf("%d days is not from 0 to a duration's longest", n)
		}
		return time.Duration(n) * 24 * time.Hour, err
	}
	return time.ParseDuration(v)
}

// duration parses a Go duration that is not negative into *field(c), then checks bound (if any)
// on it: a value that is not a duration is told as that alone.
func duration(field func(*Config) *time.Duration, bound func(flag string, d time.Duration) error) func(*Config, string, string) error {
	return func(c *Config, flag, v string) error {
		d, err := time.ParseDuration(v)
		*field(c) = d
		switch {
		case err != nil || d < 0:
			return fmt.Errorf("-%s: %q is not a duration such as 168h or 30s", flag, v)
		case bound != nil:
			return bound(flag, d)
		}
		return nil
	}
}

// workers parses a number of workers, from 1 to 1000, into *field(c).
func workers(field func(*Config) *int) func(*Config, string, string) error {
	return func(c *Config, flag, v string) error {
		n, err := strconv.Atoi(v)
		*field(c) = n
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("-%s: %q is not a number from 1 to 1000", flag, v)
		}
		return nil
	}
}

// requestRate parses a number of requests per unit ("a second") that is not negative into
// *field(c); 0 sets no limit.
func requestRate(field func(*Config) *float64, per string) func(*Config, string, string) error {
	return func(c *Config, flag, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		*field(c) = f
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("-%s: %q is not a number of requests %s (0 for no limit)", flag, v, per)
		}
		return nil
	}
}

func positive(flag string, d time.Duration) error {
	if d == 0 {
		return fmt.Errorf("-%s must be positive", flag)
	}
	return nil
}

// listenAddress checks an address to listen on: host:port, the port a number up to 65535 (0: any
// free port) or a service's name, so that a wrong one stops the server before it opens anything.
func listenAddress(flag, v string) error {
	_, port, err := net.SplitHostPort(v)
	if err == nil {
		_, err = net.LookupPort("tcp", port)
	}
	if err != nil {
		return fmt.Errorf("-%s: %q is not host:port, with a port from 0 to 65535", flag, v)
	}
	return nil
}

func between(least, most time.Duration) func(string, time.Duration) error {
	return func(flag string, d time.Duration) error {
		if d < least || d > most {
			return fmt.Errorf("-%s must be from %v to %v", flag, least, most)
		}
		return nil
	}
}

func atLeast(least time.Duration) func(string, time.Duration) error {
	return func(flag string, d time.Duration) error {
		if d < least {
			return fmt.Errorf("-%s must be at least %v", flag, least)
		}
		return nil
	}
}

// DatabaseSettings are the settings the admin and migrate commands read.
var DatabaseSettings = []string{"database-url"}

// RegisterFlags defines the flags named in only (all when only is empty) on fs, with defaults
// taken from the environment. Parse the flag set, then call Load. It panics on a name that is no
// setting, as fs does on a flag defined twice.
func RegisterFlags(fs *flag.FlagSet, only ...string) map[string]*string {
	for _, name := range only {
		if !isSetting(name) {
			panic(fmt.Sprintf("app.RegisterFlags: no setting is named %q", name))
		}
	}
	values := map[string]*string{}
	for _, s := range settings {
		if len(only) > 0 && !slices.Contains(only, s.flag) {
			continue
		}
		def := s.def
		v, fromEnv := os.LookupEnv(s.env)
		if fromEnv {
			def = v
		}
		values[s.flag] = fs.String(s.flag, def, fmt.Sprintf("%s (env %s)", s.usage, s.env))
		if fromEnv {
			fs.Lookup(s.flag).DefValue = shownDefault(s, def)
		}
	}
	return values
}

// shownDefault is the default -h shows for a setting whose value comes from the environment:
// -h's output is pasted into tickets and logged by orchestrators, so never the key ring, and the
// URLs without their password.
func shownDefault(s setting, value string) string {
	switch s.flag {
	case encryptionKeyFlag:
		return "(from " + s.env + ", not shown)"
	case "database-url", "smtp-url", "becs-sftp-url":
		return redact.URL(value)
	}
	return value
}

// isHTTPS reports whether a URL's scheme is https, in any case.
func isHTTPS(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == "https"
}

// otherVariables are the PYNG_ variables that are not the server's settings but the module's
// other programs' (pyng-partner's credentials, the README's webhook receiver, the test suite), so
// that a shell that exports them for those starts the server without a false warning.
var otherVariables = []string{"PYNG_URL", "PYNG_SITE", "PYNG_CLIENT_ID", "PYNG_CLIENT_SECRET", "PYNG_WEBHOOK_SECRET",
	"PYNG_TEST_POSTGRES_URL", "PYNG_TEST_LOG", "PYNG_ARTIFACTS_DIR"}

// UnknownEnvironment lists the variables of environ (as os.Environ gives it) named PYNG_ that are
// no setting's: a misspelt PYNG_SMTP_ULR would otherwise leave its setting at its default, unseen.
func UnknownEnvironment(environ []string) []string {
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "PYNG_") && !slices.Contains(otherVariables, name) &&
			!slices.ContainsFunc(settings, func(s setting) bool { return s.env == name }) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	return unknown
}

// embedded reports whether a database URL names the embedded SQLite.
func embedded(databaseURL string) bool {
	_, err := storage.SQLitePath(databaseURL)
	return err == nil
}

// envOf is the environment variable of the setting flag.
func envOf(flag string) string {
	i := slices.IndexFunc(settings, func(s setting) bool { return s.flag == flag })
	return settings[i].env
}

func isSetting(name string) bool {
	return slices.ContainsFunc(settings, func(s setting) bool { return s.flag == name })
}

// Load validates the flag values into a Config; settings that were not registered keep their
// defaults.
func Load(values map[string]*string) (Config, error) {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(values)) {
		if !isSetting(name) {
			errs = append(errs, fmt.Errorf("no setting is named %q", name))
		}
	}
	var c Config
	for _, s := range settings {
		v := s.def
		if given, ok := values[s.flag]; ok {
			v = strings.TrimSpace(*given)
		}
		if err := s.parse(&c, s.flag, v); err != nil && !strings.Contains(err.Error(), s.env) {
			// An operator sets most settings in the environment: the message names both.
			errs = append(errs, fmt.Errorf("%w (env %s)", err, s.env))
		} else {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		// The checks across settings would read the values that could not be, as zero: each
		// setting's mistake is told once, alone.
		return c, err
	}
	c.Jobs.SweepInterval = jobs.DefaultConfig.SweepInterval
	if v, serves := values[sandboxFlag]; serves && strings.TrimSpace(*v) == "" && c.DatabaseURL != "" && !embedded(c.DatabaseURL) {
		// A production database that forgot the setting would otherwise get a demo client with
		// every scope and the simulators that link customers without them.
		errs = append(errs, fmt.Errorf("-%s (env %s) must be set to true or false when the database is not the embedded SQLite: sandbox mode creates a demo API client with every scope and serves the simulators",
			sandboxFlag, envOf(sandboxFlag)))
	}
	if c.EncryptionKey != "" && c.EncryptionKeyFile != "" {
		errs = append(errs, fmt.Errorf("-%s (env %s) and -%s (env %s) are both set: give the key ring one way",
			encryptionKeyFlag, envOf(encryptionKeyFlag), encryptionKeyFileFlag, envOf(encryptionKeyFileFlag)))
	}
	errs = append(errs, checkSFTP(c)...)
	errs = append(errs, checkCutoffs(c, time.Now())...)
	_, listens := values[addrFlag]
	switch {
	case listens && !c.Sandbox && !isHTTPS(c.PublicURL):
		// Customers open the signup links and the links of their emails from anywhere: a
		// default of http://localhost would send them nowhere, and plain http exposes their
		// bank details and loses the Secure cookie and HSTS the pages rely on.
		errs = append(errs, fmt.Errorf("-public-url (env %s) must be set, to an https:// URL, outside the sandbox: signup links and the customers' emails carry it (%q)",
			envOf("public-url"), redact.URL(c.PublicURL)))
	case listens && c.PublicURL == "":
		c.PublicURL = "http://" + reachable(c.Addr)
	}
	switch {
	case c.WebhookPrivateDestinations == "true" && !c.Sandbox:
		errs = append(errs, fmt.Errorf("-%s (env %s) may be true only in the sandbox: outside it every webhook URL is https and public",
			webhookPrivateFlag, envOf(webhookPrivateFlag)))
	case c.WebhookPrivateDestinations == "true":
		c.Jobs.AllowPrivateWebhooks = true
	case c.WebhookPrivateDestinations == webhookPrivateAuto:
		c.Jobs.AllowPrivateWebhooks = c.Sandbox && onThisMachine(c)
	}
	if c.MetricsAddr != "" && oneListener(c.Addr, c.MetricsAddr) {
		errs = append(errs, fmt.Errorf("-metrics-addr (env %s) %q and -addr (env %s) %q take the same port: the metrics need a listener of their own, on another port (or leave %s empty)",
			envOf("metrics-addr"), c.MetricsAddr, envOf(addrFlag), c.Addr, envOf("metrics-addr")))
	}
	return c, errors.Join(errs...)
}

// onThisMachine reports whether the server is reached from this machine alone: it listens on a
// loopback address only (127.0.0.0/8, ::1 or localhost) and its public URL names this machine
// (localhost, a name under .localhost, or a loopback address). One that listens on every
// interface (0.0.0.0, ::, no host) or on another address is reached from its network, whatever
// its public URL says: the URL defaults to http://localhost:PORT for a browser on this machine.
func onThisMachine(c Config) bool {
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil || !loopbackHost(host, false) {
		return false
	}
	u, err := url.Parse(c.PublicURL)
	return err == nil && loopbackHost(u.Hostname(), true)
}

// loopbackHost reports whether host names this machine's loopback interface: a loopback address,
// localhost, or, with underLocalhost, a name under .localhost (which browsers take to be
// loopback, and a listener resolves as any other name).
func loopbackHost(host string, underLocalhost bool) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if addr, err := netip.ParseAddr(host); err == nil {
		return addr.Unmap().IsLoopback()
	}
	return host == "localhost" || underLocalhost && strings.HasSuffix(host, ".localhost")
}

// oneListener reports whether listening on both addresses would take one port twice: the same
// port (not 0, any free port) on the same host, or on every interface for either.
func oneListener(a, b string) bool {
	hostA, portA, errA := net.SplitHostPort(a)
	hostB, portB, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return false
	}
	numberA, errA := net.LookupPort("tcp", portA)
	numberB, errB := net.LookupPort("tcp", portB)
	if errA != nil || errB != nil || numberA != numberB || numberA == 0 {
		return false
	}
	everyInterface := func(host string) bool { ip := net.ParseIP(host); return host == "" || ip != nil && ip.IsUnspecified() }
	// The addresses a host listens on: localhost's are 127.0.0.1 and ::1.
	addresses := func(host string) []string {
		if strings.EqualFold(host, "localhost") {
			return []string{"localhost", "127.0.0.1", "::1"}
		}
		return []string{strings.ToLower(host)}
	}
	shared := slices.ContainsFunc(addresses(hostA), func(h string) bool { return slices.Contains(addresses(hostB), h) })
	return shared || everyInterface(hostA) || everyInterface(hostB)
}

// sftpConfig is the BECS rail's SFTP server as configured.
func (c Config) sftpConfig() becs.SFTPConfig {
	return becs.SFTPConfig{URL: c.BECSSFTPURL, KeyFile: c.BECSSFTPKeyFile, KnownHosts: c.BECSSFTPKnownHosts,
		ReturnsDir: c.BECSSFTPReturnsDir, Timeout: c.BECSSFTPTimeout, ReturnsSettle: c.BECSSFTPReturnsSettle,
		ReturnsIncompleteWait: c.BECSSFTPReturnsIncompleteWait}
}

// checkSFTP checks the SFTP settings together: the key file and known_hosts of an SFTP server
// must be given, and files; and none of them without the server's URL, where it would be ignored
// unseen.
func checkSFTP(c Config) []error {
	var errs []error
	named := func(flag string) string { return "-" + flag + " (env " + envOf(flag) + ")" }
	files := []struct{ flag, path string }{{"becs-sftp-key-file", c.BECSSFTPKeyFile}, {"becs-sftp-known-hosts", c.BECSSFTPKnownHosts}}
	if c.BECSSFTPURL == "" {
		for _, s := range append(files, struct{ flag, path string }{"becs-sftp-returns-dir", c.BECSSFTPReturnsDir}) {
			if s.path != "" {
				errs = append(errs, fmt.Errorf("%s is set, but not %s: it is used only with the bank's SFTP server", named(s.flag), named("becs-sftp-url")))
			}
		}
		return errs
	}
	for _, s := range files {
		if s.path == "" {
			errs = append(errs, fmt.Errorf("%s needs %s", named("becs-sftp-url"), named(s.flag)))
		} else if info, err := os.Stat(s.path); err != nil || !info.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("%s: %q is not a file", named(s.flag), s.path))
		}
	}
	if len(errs) == 0 {
		// A key or known_hosts file that cannot be read or parsed is a setting to correct, told
		// as the others are, rather than a failure of the server once started.
		if _, err := becs.OpenSFTP(c.sftpConfig()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", named("becs-sftp-url"), err))
		}
	}
	if c.BECSSFTPReturnsIncompleteWait < c.BECSSFTPReturnsSettle {
		errs = append(errs, fmt.Errorf("%s is %v, shorter than %s, %v: an incomplete returns file would be rejected at its first read",
			named("becs-sftp-returns-incomplete-wait"), c.BECSSFTPReturnsIncompleteWait, named("becs-sftp-returns-settle"), c.BECSSFTPReturnsSettle))
	}
	// A session runs inside a job (the BECS tasks), which River ends at half the rescue time.
	if jobTime := c.Jobs.JobTimeout(); c.BECSSFTPTimeout > jobTime {
		errs = append(errs, fmt.Errorf("%s is %v, longer than a job may run (%v, half of %s): set %s to at least %v",
			named("becs-sftp-timeout"), c.BECSSFTPTimeout, jobTime, named("job-rescue-after"), envOf("job-rescue-after"), 2*c.BECSSFTPTimeout))
	}
	return errs
}

// checkCutoffs refuses BECS cut-offs so far apart that a debit queued just after one would reach
// the next with less than becs.LodgeWindow to lodge its file before its row's deadline: its whole
// file would have to be lodged at once or fail expired. The gap is measured over the year from
// now, in the cut-offs' zone (a night the clocks go back is an hour longer).
func checkCutoffs(c Config, now time.Time) []error {
	loc, err := time.LoadLocation(c.BECSTimezone)
	if err != nil {
		return nil // refused with its setting
	}
	schedule, err := becs.ParseSchedule(c.BECSCutoffs, loc)
	if err != nil {
		return nil
	}
	longest := billing.RowDeadline - becs.LodgeMargin - becs.LodgeWindow
	if gap := schedule.LongestGap(now); gap > longest {
		return []error{fmt.Errorf("-becs-cutoffs (env %s): %q leaves up to %v from one cut-off to the next (in %s): the file of a debit queued just after a cut-off "+
			"would have less than %v from its cut to its lodge-by time (%v before the row's %v deadline); add cut-offs so that none is more than %v after the one before",
			envOf("becs-cutoffs"), c.BECSCutoffs, gap, c.BECSTimezone, becs.LodgeWindow, becs.LodgeMargin, billing.RowDeadline, longest)}
	}
	return nil
}

// reachable turns a listening address into one a browser can open: an unspecified host (":8080",
// "0.0.0.0:8080") becomes localhost.
func reachable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// maxConnections bounds -max-connections: far beyond what one process's file descriptors allow,
// so that a typo of a few digits too many is refused rather than taken as no limit.
const maxConnections = 1_000_000

// autoJobWorkers is how many jobs run at once by default: twice the CPUs the process may use (an
// execution waits for its database about as long as it computes), at most 8. More executions at
// once than that only queue for a small machine's cores, and make the API's requests wait behind
// them: on 2 cores, a batch submitted while earlier ones executed took 2.3–2.5 times pyng-bench's
// baseline to be accepted with 8 at once, 1.5–1.9 times with 4.
func autoJobWorkers() int { return min(8, 2*runtime.GOMAXPROCS(0)) }
