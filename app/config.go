package app

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pyng/receivables/jobs"
)

// Config is the server's configuration, read once at start from flags, each of which has an
// environment-variable equivalent (the flag wins).
type Config struct {
	Addr           string
	DatabaseURL    string
	PublicURL      string
	InvitationTTL  time.Duration
	Sandbox        bool
	AccessTokenTTL time.Duration
	ClientCacheTTL time.Duration
	// RateLimit is the requests a second each API client may make to one replica (0: no limit).
	RateLimit float64
	LogFormat string
	// SettlementDelay is how long the sandbox rail takes to settle a debit.
	SettlementDelay time.Duration
	// Jobs tunes the background workers.
	Jobs jobs.Config
}

// setting is one configuration value: its flag, environment variable, default and meaning.
type setting struct {
	flag, env, def, usage string
}

var settings = []setting{
	{"addr", "PYNG_ADDR", "127.0.0.1:8080", "address to listen on"},
	{"database-url", "PYNG_DATABASE_URL", "sqlite:pyng.db", "database: a sqlite: URL or file path (embedded), or a postgres:// URL whose parameters also configure the connection pool: pool_max_conns (default max(4, CPUs)), pool_min_conns, pool_max_conn_lifetime, pool_max_conn_idle_time, pool_health_check_period"},
	{"public-url", "PYNG_PUBLIC_URL", "", "external base URL of the server, used in signupUrl (default http://ADDR)"},
	{"invitation-ttl", "PYNG_INVITATION_TTL", "168h", "how long a signup link stays valid (Go duration)"},
	{"sandbox", "PYNG_SANDBOX", "true", "sandbox mode: demo credentials on first start and the sandbox simulators"},
	{"access-token-ttl", "PYNG_ACCESS_TOKEN_TTL", "1h", "lifetime of OAuth 2.0 access tokens"},
	{"client-cache-ttl", "PYNG_CLIENT_CACHE_TTL", "30s", "how long a replica caches that an API client is not revoked"},
	{"rate-limit", "PYNG_RATE_LIMIT", "100", "requests a second each API client may make to this replica, in bursts of twice as many (0: no limit)"},
	{"log-format", "PYNG_LOG_FORMAT", "text", "log format: text or json"},
	{"sandbox-settlement-delay", "PYNG_SANDBOX_SETTLEMENT_DELAY", "3s", "how long the sandbox rail takes to settle a debit"},
	{"job-workers", "PYNG_JOB_WORKERS", "8", "how many jobs (batch executions) run at once in this process"},
	{"job-poll-interval", "PYNG_JOB_POLL_INTERVAL", "200ms", "how often the job queue is polled (PostgreSQL also notifies at once)"},
	{"job-rescue-after", "PYNG_JOB_RESCUE_AFTER", "2m", "how long a job may run before another worker takes it over (for jobs of a process that died)"},
}

// DatabaseSettings are the settings the admin and migrate commands read.
var DatabaseSettings = []string{"database-url"}

// RegisterFlags defines the flags named in only (all when only is empty) on fs, with defaults
// taken from the environment. Parse the flag set, then call Load.
func RegisterFlags(fs *flag.FlagSet, only ...string) map[string]*string {
	values := map[string]*string{}
	for _, s := range settings {
		if len(only) > 0 && !contains(only, s.flag) {
			continue
		}
		def := s.def
		if v, ok := os.LookupEnv(s.env); ok {
			def = v
		}
		values[s.flag] = fs.String(s.flag, def, fmt.Sprintf("%s (env %s)", s.usage, s.env))
	}
	return values
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Load validates the flag values into a Config; settings that were not registered keep their
// defaults.
func Load(values map[string]*string) (Config, error) {
	get := func(name string) string {
		if v, ok := values[name]; ok {
			return strings.TrimSpace(*v)
		}
		for _, s := range settings {
			if s.flag == name {
				return s.def
			}
		}
		return ""
	}
	var errs []error
	duration := func(name string) time.Duration {
		d, err := time.ParseDuration(get(name))
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("-%s: %q is not a duration such as 168h or 30s", name, get(name)))
		}
		return d
	}
	c := Config{
		Addr:            get("addr"),
		DatabaseURL:     get("database-url"),
		PublicURL:       strings.TrimSuffix(get("public-url"), "/"),
		InvitationTTL:   duration("invitation-ttl"),
		AccessTokenTTL:  duration("access-token-ttl"),
		ClientCacheTTL:  duration("client-cache-ttl"),
		LogFormat:       get("log-format"),
		SettlementDelay: duration("sandbox-settlement-delay"),
		Jobs: jobs.Config{
			PollInterval:  duration("job-poll-interval"),
			RescueAfter:   duration("job-rescue-after"),
			SweepInterval: jobs.DefaultConfig.SweepInterval,
		},
	}
	rateLimit, err := strconv.ParseFloat(get("rate-limit"), 64)
	if err != nil || rateLimit < 0 || math.IsInf(rateLimit, 0) || math.IsNaN(rateLimit) {
		errs = append(errs, fmt.Errorf("-rate-limit: %q is not a number of requests a second (0 for no limit)", get("rate-limit")))
	}
	c.RateLimit = rateLimit
	workers, err := strconv.Atoi(get("job-workers"))
	if err != nil || workers < 1 || workers > 1000 {
		errs = append(errs, fmt.Errorf("-job-workers: %q is not a number from 1 to 1000", get("job-workers")))
	}
	c.Jobs.Workers = workers
	if c.Jobs.PollInterval < time.Millisecond {
		errs = append(errs, errors.New("-job-poll-interval must be at least 1ms"))
	}
	if c.Jobs.RescueAfter < 2*time.Second {
		errs = append(errs, errors.New("-job-rescue-after must be at least 2s"))
	}
	sandbox, err := strconv.ParseBool(get("sandbox"))
	if err != nil {
		errs = append(errs, fmt.Errorf("-sandbox: %q is not true or false", get("sandbox")))
	}
	c.Sandbox = sandbox
	if c.InvitationTTL == 0 {
		errs = append(errs, errors.New("-invitation-ttl must be positive"))
	}
	if c.AccessTokenTTL == 0 {
		errs = append(errs, errors.New("-access-token-ttl must be positive"))
	}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("-database-url is required"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("-log-format: %q is not text or json", c.LogFormat))
	}
	if _, ok := values["addr"]; ok {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("-addr: %q is not host:port", c.Addr))
		}
		if c.PublicURL == "" {
			c.PublicURL = "http://" + reachable(c.Addr)
		}
	}
	if c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		errs = append(errs, fmt.Errorf("-public-url: %q must start with http:// or https://", c.PublicURL))
	}
	return c, errors.Join(errs...)
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
