// Package app wires the server together: configuration, storage, the domain service, the API and
// the customer's pages. cmd/pyng runs it; tests start it on loopback.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/httpapi"
	"github.com/pyng/receivables/internal/redact"
	"github.com/pyng/receivables/jobs"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/sandbox"
	"github.com/pyng/receivables/storage"
	"github.com/pyng/receivables/storage/driver"
	"github.com/pyng/receivables/token"
	"github.com/pyng/receivables/web"
)

// HSTS is the Strict-Transport-Security of every answer when the public URL is https: browsers
// then reach the server over https only, for two years, subdomains included.
const HSTS = "max-age=63072000; includeSubDomains"

// MaxHeaderBytes bounds the header of a request (its request line too): more is answered 431.
const MaxHeaderBytes = 32 << 10

// NewHandler mounts the customer's pages and the partner API on one handler, the pages served
// as the API's answers are (a traceId, a log line, the metrics; not the mux's redirect of a
// page's path to its clean form). A path that is not in ServeMux's clean form goes to the pages
// when it is under one of their paths as it was sent (/service-agreement/..: they answer their
// not-found page, or redirect to the page its clean form is), otherwise to the API, which
// answers its JSON 404, unless its clean form is a page's: the pages keep the mux's redirect to
// it. Behind an https public URL every answer carries HSTS (TLS ends at the load balancer, so the
// request itself says nothing of it).
//
// pages, if given, completes the pages' configuration (their BECS user IDs, the management links'
// lifetime).
func NewHandler(cfg httpapi.Config, pages ...func(*web.Config)) http.Handler {
	mux := http.NewServeMux()
	pagesConfig := web.Config{Service: cfg.Service, Tokens: cfg.Tokens, Logger: cfg.Logger, PublicURL: cfg.PublicURL, Sandbox: cfg.Sandbox}
	for _, f := range pages {
		f(&pagesConfig)
	}
	api := httpapi.New(cfg)
	customerPages := web.New(pagesConfig)
	observed := map[string]http.Handler{}
	for _, path := range web.Paths {
		observed[path] = api.Observed(path, customerPages)
		mux.Handle(path, observed[path])
	}
	mux.Handle("/", api)
	https := strings.HasPrefix(cfg.PublicURL, "https://")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if https {
			w.Header().Set("Strict-Transport-Security", HSTS)
		}
		if r.URL.Path == "" { // CONNECT host:port names no path: the mux would answer it in text
			api.ServeHTTP(w, r)
			return
		}
		if clean := httpapi.CleanPath(r.URL.Path); clean != r.URL.Path && r.Method != http.MethodConnect {
			if pattern := pagesPrefix(r.URL.Path); pattern != "" {
				observed[pattern].ServeHTTP(w, r)
				return
			}
			if _, pattern := mux.Handler(&http.Request{Method: r.Method, Host: r.Host, URL: &url.URL{Path: clean}}); pattern == "/" {
				api.ServeHTTP(w, r)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// pagesPrefix is the pattern of web.Paths that ends in a slash and starts path, as it was sent
// ("" if none).
func pagesPrefix(path string) string {
	for _, pattern := range web.Paths {
		if strings.HasSuffix(pattern, "/") && strings.HasPrefix(path, pattern) {
			return pattern
		}
	}
	return ""
}

// ServiceSettings are the settings of the domain service (Config's).
type ServiceSettings struct {
	// InvitationTTL is how long a signup link stays valid; billing.DefaultInvitationTTL when zero.
	InvitationTTL time.Duration
	// SettlementDelay is how long the sandbox rail takes to settle a debit.
	SettlementDelay time.Duration
	Sandbox         bool
	// PrivateWebhooks lets webhook URLs be http and name internal hosts (sandbox only).
	PrivateWebhooks bool
}

// NewService returns the domain service over db, reading time from clock, with the rails it
// opens (OpenRails), which it returns too: whatever else works on a rail (the BECS rail's tasks,
// metrics and admin commands) works on the one the service sends debits to.
func NewService(ctx context.Context, db storage.Database, clock billing.Clock, settings ServiceSettings) (*billing.Service, Rails, error) {
	rails, err := OpenRails(ctx, db, clock, settings.SettlementDelay)
	if err != nil {
		return nil, Rails{}, err
	}
	return billing.NewService(billing.Config{
		Store:         db,
		Batches:       db,
		Events:        db,
		Rails:         rails.ByName(),
		Clock:         clock,
		InvitationTTL: cmp.Or(settings.InvitationTTL, billing.DefaultInvitationTTL),
		DebitUserID:   BECSUserIDs(rails.BECS),

		Sandbox:         settings.Sandbox,
		PrivateWebhooks: settings.PrivateWebhooks,
		ExecuteChunk:    executeChunk[db.Engine()],
	}), rails, nil
}

// executeChunk is billing.Config.ExecuteChunk per engine: on SQLite's one connection, steps of 250
// rows keep a batch submitted during another's execution from waiting for all of it (the accept
// benchmark's p50 went from about 3 to 2 times its baseline); PostgreSQL's executions run beside
// the other transactions, and one step per batch is its fewest round trips.
var executeChunk = map[string]int{storage.EngineSQLite: 250}

// Rails are the payment rails the server offers, open: the sandbox rail (every site's until an
// operator moves it) and the BECS rail, in sandbox mode and out of it.
type Rails struct {
	Sandbox *sandbox.Rail
	BECS    *becs.Rail
}

// ByName is the rails by the name a site gives (Site.Rail).
func (r Rails) ByName() map[string]rail.Rail {
	return map[string]rail.Rail{rail.Sandbox: r.Sandbox, rail.BECS: r.BECS}
}

// OpenRails opens the payment rails, applying the migrations of the tables a rail keeps in db of
// its own. It is the one place where a rail is opened.
func OpenRails(ctx context.Context, db storage.Database, clock billing.Clock, settlementDelay time.Duration) (Rails, error) {
	ledger, err := sandbox.OpenLedger(ctx, db.Conn())
	if err != nil {
		return Rails{}, fmt.Errorf("sandbox rail: %w", err)
	}
	becsRail, err := becs.Open(ctx, db.Conn(), clock)
	if err != nil {
		return Rails{}, err
	}
	return Rails{Sandbox: &sandbox.Rail{Ledger: ledger, Clock: clock, SettlementDelay: settlementDelay}, BECS: becsRail}, nil
}

// Tokens returns the issuer of the database's signing keys, creating the first key on first use:
// every replica on one database agrees on it. The issuer signs with the current key and verifies
// with every key stored; Reload (or ReloadEvery) reads them again after a rotation.
func Tokens(ctx context.Context, db storage.Database, clock billing.Clock) (*token.Issuer, error) {
	candidate := billing.SigningKey{ID: billing.NewID("key"), Secret: []byte(billing.RandomToken(32)), CreatedAt: clock.Now()}
	if _, err := db.EnsureSigningKey(ctx, candidate); err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return token.NewIssuerFrom(ctx, db.SigningKeys, clock.Now)
}

// Server is a configured server, ready to run.
type Server struct {
	cfg     Config
	db      storage.Database
	logger  *slog.Logger
	handler http.Handler
	metrics *prometheus.Registry // served by the API's listener, or by its own (Config.MetricsAddr)
	// private holds the metrics served on Config.MetricsAddr alone, never on the API's listener:
	// the count of emails held back by their address's cap, which a partner reading the sandbox's
	// /metrics could watch to learn whether a guessed address is its customer's.
	private *prometheus.Registry
	service *billing.Service
	rails   Rails
	tokens  *token.Issuer
	out     io.Writer
	banner  string // how to use the demo credentials, printed once the server listens
	// draining is set from a stop signal for Config.ShutdownDrain: /readyz fails meanwhile.
	draining *atomic.Bool
}

// New reads the key ring (see Keyring), opens the database (applying migrations), prepares the
// signing key and, on the first start of an empty sandbox database, creates demo credentials; Run
// prints how to use them to out, and where the sandbox's key is if it made one.
func New(ctx context.Context, cfg Config, logger *slog.Logger, out io.Writer) (*Server, error) {
	keys, created, err := Keyring(cfg)
	if err != nil {
		return nil, err
	}
	if info, err := os.Stat(cfg.EncryptionKeyFile); cfg.EncryptionKeyFile != "" && err == nil && info.Mode().Perm()&0o077 != 0 {
		logger.Warn("the key file can be read by others than its owner", "path", cfg.EncryptionKeyFile, "mode", info.Mode().Perm().String())
	}
	db, err := storage.Open(ctx, cfg.DatabaseURL, storage.WithKeyring(keys))
	if err != nil {
		if created != "" && errors.Is(err, driver.ErrForeignDatabase) {
			// The key made for another application's database, which every replica refuses, has
			// sealed nothing; left there, it would be taken for that database's. (After any other
			// failure it stays: a replica starting beside this one may be using it.)
			err = errors.Join(err, os.Remove(created))
		}
		return nil, err
	}
	var banner string
	if created != "" {
		logger.Warn("generated the sandbox's encryption key; back it up with the database, without it customers' bank details cannot be read",
			"path", created)
		banner = keyFileBanner(created)
	}
	clock := billing.SystemClock{}
	service, rails, err := NewService(ctx, db, clock, ServiceSettings{InvitationTTL: cfg.InvitationTTL,
		SettlementDelay: cfg.SettlementDelay, Sandbox: cfg.Sandbox, PrivateWebhooks: cfg.Jobs.AllowPrivateWebhooks})
	if err == nil && cfg.BECSOutbox != "" {
		err = rails.BECS.CheckOutbox(ctx, becs.Dir(cfg.BECSOutbox))
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	tokens, err := Tokens(ctx, db, clock)
	if err != nil {
		db.Close()
		return nil, err
	}
	tokens.SetAgreementTTL(cfg.ManagementLinkTTL)
	warnSitesThatCannotCollect(ctx, service, logger)
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	private := prometheus.NewRegistry()
	mailer, err := Mailer(cfg, service, tokens, logger, private)
	if err != nil {
		db.Close()
		return nil, err
	}
	if mailer != nil {
		cfg.Jobs.SendEmailFunc = mailer.Send
	}
	if cfg.Sandbox {
		demo, err := createDemo(ctx, service, cfg)
		if err == nil && demo == "" {
			demo, err = existingDemo(ctx, service, cfg, logger)
		}
		if err != nil {
			db.Close()
			return nil, err
		}
		banner += demo
	}
	jobFailures := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pyng_job_failures_total",
		Help: "Failed attempts of background jobs, by kind, and of a run_task job by task; last=\"true\" when the job has no attempt left."},
		[]string{"kind", "task", "last"})
	metrics.MustRegister(jobFailures, newBECSBacklog(rails.BECS, clock, logger), newJobBacklog(db, logger))
	cfg.Jobs.JobFailedFunc = func(k jobs.JobKind, last bool) {
		jobFailures.WithLabelValues(k.Kind, k.Task, strconv.FormatBool(last)).Inc()
	}
	cfg.Jobs.JobKindsFunc = func(kinds []jobs.JobKind) {
		for _, k := range kinds {
			jobFailures.WithLabelValues(k.Kind, k.Task, "false")
			jobFailures.WithLabelValues(k.Kind, k.Task, "true")
		}
	}
	draining := new(atomic.Bool)
	proxies, err := parseTrustedProxies(cfg.TrustedProxies)
	if err != nil { // Load checked it
		db.Close()
		return nil, err
	}
	handler := NewHandler(httpapi.Config{
		Service:        service,
		Tokens:         tokens,
		Logger:         logger,
		PublicURL:      cfg.PublicURL,
		Sandbox:        cfg.Sandbox,
		AccessTokenTTL: cfg.AccessTokenTTL,
		ClientCacheTTL: cfg.ClientCacheTTL,
		RateLimit:      cfg.RateLimit,
		TokenRateLimit: cfg.TokenRateLimit,
		Clock:          clock,
		Ready: func(ctx context.Context) error {
			if draining.Load() {
				return httpapi.ErrDraining
			}
			return db.Ping(ctx)
		},
		Unreachable:    db.Unreachable,
		Metrics:        metrics,
		NoMetricsRoute: metricsAt(cfg) != "api",
	}, func(c *web.Config) { c.ManagementLinkTTL = cfg.ManagementLinkTTL })
	return &Server{cfg: cfg, db: db, logger: logger, handler: proxies.clientAddress(handler), metrics: metrics, private: private, service: service, rails: rails, tokens: tokens, out: out, banner: banner,
		draining: draining}, nil
}

// Close releases a server that will not Run.
func (s *Server) Close() error { return s.db.Close() }

// shutdownGrace is how long in-flight requests may take to finish after a stop signal (a
// variable for the tests).
var shutdownGrace = 25 * time.Second

// Run serves and works the job queue until ctx is done, then lets in-flight requests and running
// jobs finish and closes the database.
func (s *Server) Run(ctx context.Context) error {
	defer s.db.Close()
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	limited := limitListener(ln, s.cfg.MaxConnections)
	ln = limited
	metricsSrv, err := s.serveMetrics()
	if err != nil {
		ln.Close()
		return err
	}
	defer metricsSrv() // after the API's listener: scrapes see the shutdown through
	tasks, err := BECSTasks(s.rails.BECS, s.service, billing.SystemClock{}, s.cfg, s.logger)
	if err != nil {
		ln.Close()
		return fmt.Errorf("becs rail: %w", err)
	}
	stopJobs, err := StartJobs(context.WithoutCancel(ctx), s.db, s.service, s.logger, s.cfg.Jobs, tasks...)
	if err != nil {
		ln.Close()
		return err
	}
	reloadCtx, stopReload := context.WithCancel(ctx)
	reloaded := make(chan struct{})
	go func() {
		defer close(reloaded)
		s.tokens.ReloadEvery(reloadCtx, s.cfg.SigningKeyReload, func(err error) {
			s.logger.Warn("signing keys not reloaded; the ones read before stay in use", "err", err)
		})
	}()
	defer func() { stopReload(); <-reloaded }() // before the database closes
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		// The headers of a request the API or the pages take are a few kilobytes (a bearer token
		// is the largest): a connection holds at most this much of them, not Go's 1 MiB.
		MaxHeaderBytes: MaxHeaderBytes,
		ReadTimeout:    30 * time.Second,
		WriteTimeout:   60 * time.Second,
		IdleTimeout:    120 * time.Second,
		ConnState:      limited.ConnState,
		ErrorLog:       slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	if unknown := UnknownEnvironment(os.Environ()); len(unknown) > 0 {
		s.logger.Warn("the environment sets PYNG_ variables that are no setting (misspelt?); they are ignored", "names", strings.Join(unknown, ","))
	}
	s.logger.Info("serving", "addr", ln.Addr().String(), "publicUrl", s.cfg.PublicURL,
		"engine", s.db.Engine(), "sandbox", s.cfg.Sandbox, "maxConnections", s.cfg.MaxConnections,
		"smtp", orNone(redact.URL(s.cfg.SMTPURL)), "becsOutbox", orNone(s.cfg.BECSOutbox), "becsSftp", orNone(redact.URL(s.cfg.BECSSFTPURL)),
		"metrics", metricsAt(s.cfg))
	fmt.Fprint(s.out, s.banner)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	if s.cfg.ShutdownDrain > 0 {
		s.logger.Info("draining: /readyz answers 503 and each connection closes after its answer", "for", s.cfg.ShutdownDrain)
		s.draining.Store(true)
		srv.SetKeepAlivesEnabled(false)
		select {
		case <-time.After(s.cfg.ShutdownDrain):
		case err := <-served:
			return err
		}
	}
	s.logger.Info("shutting down: finishing in-flight requests and running jobs")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Requests still in flight at the grace period's end (a client sending its body slowly)
		// are cut off, so that the jobs still stop, rather than being left claimed as the process
		// exits.
		s.logger.Warn("requests still in flight at the end of the shutdown's grace period are cut off", "err", err)
		srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	// A job cut short here is safe: batch execution resumes where it stopped on the next start.
	if err := stopJobs(shutdownCtx); err != nil {
		return fmt.Errorf("stop jobs: %w", err)
	}
	return nil
}

// metricsAt says where GET /metrics is served, for the serving line: on PYNG_METRICS_ADDR when
// it is set; else, in a sandbox on this machine (onThisMachine), on the API's listener
// ("api"); else nowhere ("none"): elsewhere the metrics would tell the volume of a business, or
// of the partners that share a hosted sandbox, and which jobs wait, to whoever reaches the API
// (a reverse proxy on the same host makes every client a local one).
func metricsAt(cfg Config) string {
	switch {
	case cfg.MetricsAddr != "":
		return cfg.MetricsAddr
	case cfg.Sandbox && onThisMachine(cfg):
		return "api"
	default:
		return "none"
	}
}

// serveMetrics serves GET /metrics on a listener of its own when Config.MetricsAddr is set, and
// returns the function that closes it (a no-op when it is not).
func (s *Server) serveMetrics() (stop func(), err error) {
	if s.cfg.MetricsAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", s.cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.Gatherers{s.metrics, s.private}, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn)}
	go func() { _ = srv.Serve(ln) }()
	s.logger.Info("serving metrics", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// createDemo gives an empty sandbox database a demo partner (billing.Service.CreateDemo), and
// returns how to use it with a ready curl line, so the README walkthrough needs no other step. A
// database that has an organisation already gets nothing, and nothing is printed.
func createDemo(ctx context.Context, service *billing.Service, cfg Config) (string, error) {
	demo, created, err := service.CreateDemo(ctx)
	if err != nil || !created {
		return "", err
	}
	return fmt.Sprintf(`
Sandbox ready: this empty database now has a demo organisation.
  organisation  %s
  site          %s
  client id     %s
  client secret %s   (shown once; stored only as a hash)

Get a token:
  curl -s -u '%s:%s' -d grant_type=client_credentials %s/oauth2/token

`, demo.Organisation.ID, demo.Site.ID, demo.Client.ID, demo.Secret, demo.Client.ID, demo.Secret, cfg.PublicURL), nil
}

// existingDemo says, on a restart of a sandbox whose demo organisation exists, how to get working
// credentials for it again: the first client's secret was shown once, at the first start, and is
// gone with that terminal. It logs the demo's ids and returns the commands that give the demo
// client a new secret or make another client; nothing when the demo organisation does not exist.
func existingDemo(ctx context.Context, service *billing.Service, cfg Config, logger *slog.Logger) (string, error) {
	demo, ok, err := service.FindDemo(ctx)
	if err != nil || !ok {
		return "", err
	}
	logger.Info("sandbox: the demo organisation exists; its client's first secret was shown once, at the first start",
		"organisation", demo.Organisation.ID, "site", demo.Site.ID, "client", demo.Client.ID)
	database := "-database-url \"$PYNG_DATABASE_URL\""
	if path, err := storage.SQLitePath(cfg.DatabaseURL); err == nil {
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		database = "-database-url 'sqlite:" + path + "'"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nSandbox: this database has its demo organisation already (shown once, at the first start).\n")
	fmt.Fprintf(&b, "  organisation  %s\n", demo.Organisation.ID)
	if demo.Site.ID != "" {
		fmt.Fprintf(&b, "  site          %s\n", demo.Site.ID)
	}
	if demo.Client.ID != "" {
		fmt.Fprintf(&b, "  client id     %s\n\nGive that client a new secret (the old one stops working):\n  pyng admin client rotate-secret --client %s %s\n",
			demo.Client.ID, demo.Client.ID, database)
	}
	fmt.Fprintf(&b, "\nOr make a new client for the demo organisation:\n  pyng admin client create --org %s --scopes '%s' %s\n\n",
		demo.Organisation.ID, billing.FormatScopes(billing.AllScopes), database)
	return b.String(), nil
}

// orNone is v, or "none" when empty: what the serving line says of a setting left out.
func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

// warnSitesThatCannotCollect warns of each site on a rail that moves money whose debit user is not
// set as its customers' Direct Debit Request needs it (billing.Site.CanCollect): SetSiteRail
// refuses to put such a site on the rail, but one put there by an earlier version stays, its
// agreement sending customers to contact details it never gave. A failure to list the sites is
// warned of, and the server starts all the same.
func warnSitesThatCannotCollect(ctx context.Context, service *billing.Service, logger *slog.Logger) {
	for site, err := range service.Sites(ctx, "") {
		if err != nil {
			logger.Warn("the sites' debit users could not be checked", "err", err)
			return
		}
		if site.Rail != rail.Sandbox && site.CanCollect() != nil {
			logger.Warn("site on a rail that collects without its debit user's legal name and contact: its customers' Direct Debit Request "+
				"names no one to reach to stop, defer or dispute a debit; set them with pyng admin site update", "site", site.ID, "rail", site.Rail)
		}
	}
}
