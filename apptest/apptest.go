// Package apptest starts the whole server on loopback for black-box tests over HTTP, on a fresh
// database of the engine under test, with a clock the test controls.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/httpapi"
	"github.com/pyng/receivables/jobs"
	"github.com/pyng/receivables/storage"
	"github.com/pyng/receivables/token"
	"github.com/pyng/receivables/web"
)

// APIVersion is the value of the Pyng-Api-Version header every /billing/ call needs.
const APIVersion = "urn:pyng:api:billing:version:v1"

// Partner is an organisation with one site and one API client holding every scope.
type Partner struct {
	Organisation billing.Organisation
	Site         billing.Site
	ClientID     string
	ClientSecret string
}

// Server is a running server and what a test needs to reach behind it.
type Server struct {
	URL     string
	Engine  string
	Store   storage.Database
	Service *billing.Service
	Tokens  *token.Issuer
	Clock   *clocktest.Clock
	// Partner is a partner created at start, for tests that need only one.
	Partner
	// HTTP is a client that checks every response against the OpenAPI document and fails the
	// test on any mismatch.
	HTTP *http.Client
	// OperatorMetrics are the metrics as PYNG_METRICS_ADDR serves them: those of URL's /metrics
	// and those served there alone (the emails held back by an address's cap).
	OperatorMetrics prometheus.Gatherer
}

// Options change how the server is started.
type Options struct {
	NoSandbox      bool
	ClientCacheTTL time.Duration
	// RateLimit is the requests a second each API client may make (0: no limit).
	RateLimit float64
	// TokenRateLimit is the /oauth2/token requests a minute each client id and each remote
	// address may make (0: no limit).
	TokenRateLimit float64
	// SettlementDelay is how long the sandbox rail takes to settle, on the test's clock.
	SettlementDelay time.Duration
	// NoJobs leaves the job workers stopped, so that the test drives execution itself with
	// Service.ExecuteBatch, ExpireOverdue and PurgeBatches.
	NoJobs bool
	// Logger receives the server's logs (nil: discarded unless PYNG_TEST_LOG is set).
	Logger *slog.Logger
	// ReadTimeout is the server's http.Server.ReadTimeout (0: none).
	ReadTimeout time.Duration
	// PublicURL is the server's public base URL (default: its loopback URL), to see how it
	// answers behind an https load balancer.
	PublicURL string
	// RetrySchedule is the webhook deliveries' retry schedule (nil: jobs.DefaultRetrySchedule).
	RetrySchedule []time.Duration
	// Emails wires the emails to customers as the server does (app.Mailer): through SMTPURL;
	// without it, in the sandbox, to Logger; otherwise they wait in the queue. Without Emails
	// and SMTPURL the emails wait in the queue.
	Emails bool
	// SMTPURL is the SMTP server of the emails to customers (it implies Emails).
	SMTPURL string
	// ManagementLinkTTL is how long a management link lasts (0: it does not expire).
	ManagementLinkTTL time.Duration
	// EmailsPerAddressPerDay caps the emails to one address in any 24 hours (0: no cap); those
	// over it are counted in the metrics the server serves at /metrics.
	EmailsPerAddressPerDay int
}

// Start runs a server on loopback on a fresh database of engine, stopped when the test ends.
func Start(t testing.TB, engine string, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	db := dbtest.Open(t, engine)
	clock := clocktest.New()
	logger := o.Logger
	if logger == nil {
		logger = testLogger()
	}
	service, _ := ServiceOver(t, db, ServiceOptions{Clock: clock, SettlementDelay: o.SettlementDelay, NoSandbox: o.NoSandbox})
	tokens, err := app.Tokens(context.Background(), db, clock)
	if err != nil {
		t.Fatalf("signing key: %v", err)
	}
	srv := httptest.NewUnstartedServer(nil)
	url := "http://" + srv.Listener.Addr().String()
	public := url
	if o.PublicURL != "" {
		public = o.PublicURL
	}
	tokens.SetAgreementTTL(o.ManagementLinkTTL)
	metrics := prometheus.NewRegistry()
	operator := prometheus.NewRegistry() // as app.New: never on the API's /metrics
	var sendEmail func(context.Context, int64, billing.SendEmailJob) error
	if o.Emails || o.SMTPURL != "" {
		mailer, err := app.Mailer(app.Config{SMTPURL: o.SMTPURL, Sandbox: !o.NoSandbox, PublicURL: public, MailFrom: "Pyng <no-reply@pyng.test>",
			ManagementLinkTTL: o.ManagementLinkTTL, EmailsPerAddressPerDay: o.EmailsPerAddressPerDay}, service, tokens, logger, operator)
		if err != nil {
			t.Fatalf("mailer: %v", err)
		}
		if mailer != nil {
			sendEmail = mailer.Send
		}
	}
	if !o.NoJobs {
		jobsConfig := testJobs
		jobsConfig.AllowPrivateWebhooks = !o.NoSandbox
		jobsConfig.SendEmailFunc = sendEmail
		if o.RetrySchedule != nil {
			jobsConfig.RetrySchedule = o.RetrySchedule
		}
		stop, err := app.StartJobs(context.Background(), db, service, logger, jobsConfig)
		if err != nil {
			t.Fatalf("start jobs: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = stop(ctx)
		})
	}
	srv.Config.Handler = app.NewHandler(httpapi.Config{
		Service:        service,
		Tokens:         tokens,
		Logger:         logger,
		PublicURL:      public,
		Sandbox:        !o.NoSandbox,
		AccessTokenTTL: time.Hour,
		ClientCacheTTL: o.ClientCacheTTL,
		RateLimit:      o.RateLimit,
		TokenRateLimit: o.TokenRateLimit,
		Clock:          clock,
		Ready:          db.Ping,
		Metrics:        metrics,
	}, func(c *web.Config) { c.ManagementLinkTTL = o.ManagementLinkTTL })
	srv.Config.ReadTimeout = o.ReadTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	s := &Server{URL: url, Engine: engine, Store: db, Service: service, Tokens: tokens, Clock: clock,
		OperatorMetrics: prometheus.Gatherers{metrics, operator}}
	s.HTTP = &http.Client{Transport: validating(t, http.DefaultTransport)}
	s.Partner = s.NewPartner(t, billing.AllScopes...)
	return s
}

// From returns a client like HTTP (validating every answer) whose connections come from the
// loopback address ip, such as 127.0.0.2, so that the server sees another remote address.
func (s *Server) From(t testing.TB, ip string) *http.Client {
	t.Helper()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext
	t.Cleanup(transport.CloseIdleConnections)
	return &http.Client{Transport: validating(t, transport)}
}

// testJobs polls the queue often (jobsPollInterval) so that tests wait little for their
// batches. Bank details are kept as long as the server's default: with none, the erasure job,
// run at start (and late on a slow machine), would erase a lodged BECS file while a test that
// drives the rail reads it (a test of the erasure calls it with its own retention).
var testJobs = jobs.Config{Workers: 4, PollInterval: jobsPollInterval, RescueAfter: 10 * time.Second, SweepInterval: time.Minute,
	WebhookWorkers: 4, EmailWorkers: 2, RetrySchedule: jobs.DefaultRetrySchedule, BankDetailsRetention: billing.DefaultBankDetailsRetention}

// testLogger discards the server's logs unless PYNG_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("PYNG_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// NewPartner creates an organisation with a site and an API client holding scopes.
func (s *Server) NewPartner(t testing.TB, scopes ...billing.Scope) Partner {
	t.Helper()
	ctx := context.Background()
	org, err := s.Service.CreateOrganisation(ctx, "Partner "+billing.RandomToken(4))
	if err != nil {
		t.Fatalf("create organisation: %v", err)
	}
	site, err := s.Service.CreateSite(ctx, org.ID, "Site of "+org.Name)
	if err != nil {
		t.Fatalf("create site: %v", err)
	}
	client, secret, err := s.Service.CreateClient(ctx, org.ID, scopes)
	if err != nil {
		t.Fatalf("create client: %v", err)
	}
	return Partner{Organisation: org, Site: site, ClientID: client.ID, ClientSecret: secret}
}

// Tampered is the token tok with the last two characters of its signature changed, always to
// others than its own.
func Tampered(tok string) string {
	suffix := "xx"
	if strings.HasSuffix(tok, suffix) {
		suffix = "yy"
	}
	return tok[:len(tok)-len(suffix)] + suffix
}

// Token obtains an access token for the partner's client through /oauth2/token with a real OAuth
// 2.0 client library, asking for scopes (all of the client's when none are given).
func (s *Server) Token(t testing.TB, p Partner, scopes ...billing.Scope) string {
	t.Helper()
	cfg := clientcredentials.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret, TokenURL: s.URL + "/oauth2/token"}
	for _, sc := range scopes {
		cfg.Scopes = append(cfg.Scopes, string(sc))
	}
	tok, err := cfg.Token(context.WithValue(context.Background(), oauth2HTTPClient, s.HTTP))
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	return tok.AccessToken
}

// Response is a response read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test if it cannot.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Request is one call to the server. Body is sent as is when it is a string or []byte, and as JSON
// otherwise. Unless set, Content-Type is application/json when there is a body, and
// Pyng-Api-Version is the current version on /billing/ paths (set it to "-" to omit it).
type Request struct {
	Method, Path, Token string
	Body                any
	Header              map[string]string
}

// Do sends the request through the validating client and reads the response.
func (s *Server) Do(t testing.TB, r Request) *Response {
	t.Helper()
	var body io.Reader
	switch b := r.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode body: %v", err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequest(r.Method, s.URL+r.Path, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if strings.HasPrefix(r.Path, "/billing/") {
		req.Header.Set("Pyng-Api-Version", APIVersion)
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, v := range r.Header {
		if v == "-" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}
