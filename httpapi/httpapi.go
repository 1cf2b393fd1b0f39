// Package httpapi is the partner-facing HTTP API: the OAuth 2.0 token endpoint, the /billing/
// endpoints, health checks, metrics and the OpenAPI document.
//
// Every /billing/ request passes the same gates, in this order: the route (404, 405), the bearer
// token and its scope (401, 403), the Pyng-Api-Version header (400), the handler's reading of the
// body and headers (413, 415, 400, 406), then the site, resolved once (404 unless it belongs to
// the caller), at which the handler acts. Every answer carries a traceId, in the Pyng-Trace-Id
// header and, on /billing/, in the body; no /billing/ answer may be cached (Cache-Control:
// no-store), errors included.
package httpapi

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pyng/receivables/api"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/token"
)

// Config is what the API needs.
type Config struct {
	Service *billing.Service
	Tokens  *token.Issuer
	Logger  *slog.Logger
	// PublicURL is the base of every signupUrl: PublicURL + "/signup?token=" + token.
	PublicURL string
	// Sandbox enables the /billing/sites/{siteId}/sandbox/ simulators (404 otherwise).
	Sandbox bool
	// AccessTokenTTL is the lifetime of the access tokens /oauth2/token issues.
	AccessTokenTTL time.Duration
	// ClientCacheTTL is how long a client's revocation status is cached per process; 0 checks the
	// database on every request.
	ClientCacheTTL time.Duration
	// RateLimit is how many /billing/ requests a second each API client may make to this process
	// (in bursts of up to twice as many); 0 sets no limit.
	RateLimit float64
	// TokenRateLimit is how many /oauth2/token requests a minute each client id, and each remote
	// address, may make to this process (in bursts of as many); 0 sets no limit.
	TokenRateLimit float64
	// Clock tells the time to the rate limits and the client cache; nil is the system clock.
	Clock billing.Clock
	// Ready reports whether the server can serve (GET /readyz).
	Ready func(context.Context) error
	// Unreachable reports whether an error is the database's being out of reach: answered 503
	// (unavailable; the token endpoint's temporarily_unavailable), for the client to try again
	// shortly, rather than 500. Nil: never.
	Unreachable func(error) bool
	// Metrics receives the API's collectors and is served at GET /metrics, unless NoMetricsRoute:
	// then the API's listener has no such route (another listener serves it, PYNG_METRICS_ADDR, or,
	// outside the sandbox without one, none does).
	Metrics        *prometheus.Registry
	NoMetricsRoute bool
}

// APIVersion is the only value of the Pyng-Api-Version header this server accepts.
const APIVersion = "urn:pyng:api:billing:version:v1"

// TraceHeader is the response header that carries the request's traceId.
const TraceHeader = "Pyng-Trace-Id"

type server struct {
	cfg      Config
	log      *slog.Logger
	mux      *http.ServeMux
	clients  *clientCache
	limits   *buckets // /billing/ requests, by API client
	tokens   *buckets // /oauth2/token requests, by client id and by remote address
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New returns the API's handler.
func New(cfg Config) *Handler {
	a := &server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.cfg.Metrics == nil {
		a.cfg.Metrics = prometheus.NewRegistry()
	}
	if a.cfg.Ready == nil {
		a.cfg.Ready = func(context.Context) error { return nil }
	}
	if a.cfg.Clock == nil {
		a.cfg.Clock = billing.SystemClock{}
	}
	a.clients = &clientCache{service: cfg.Service, clock: a.cfg.Clock, ttl: cfg.ClientCacheTTL, entries: map[string]cachedClient{}}
	a.limits = newRateLimits(cfg.RateLimit, a.cfg.Clock)
	a.tokens = newTokenLimits(cfg.TokenRateLimit, a.cfg.Clock)
	a.requests = register(a.cfg.Metrics, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pyng_http_requests_total",
		Help: "HTTP requests answered, by route pattern, method and status.",
	}, []string{"route", "method", "status"}))
	a.duration = register(a.cfg.Metrics, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "pyng_http_request_duration_seconds",
		Help:    "Time taken to answer HTTP requests, by route pattern and method.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "method"}))
	a.routes()
	return &Handler{a: a}
}

// register adds c to reg, or returns the collector of the same name already there (when two
// handlers share one registry).
func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		if already, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := already.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("httpapi: register metrics: %v", err))
	}
	return c
}

func (a *server) routes() {
	m := a.mux
	m.HandleFunc("POST /oauth2/token", a.token)
	m.HandleFunc("GET /healthz", a.healthz)
	m.HandleFunc("GET /readyz", a.readyz)
	m.HandleFunc("GET /openapi.yaml", serveOpenAPI)
	if !a.cfg.NoMetricsRoute {
		m.Handle("GET /metrics", promhttp.HandlerFor(a.cfg.Metrics, promhttp.HandlerOpts{}))
	}

	const site = "/billing/sites/{siteId}"
	a.handle("POST "+site+"/customers/invitations", billing.ScopeCustomersInvite, a.invite)
	a.handle("GET "+site+"/customers", billing.ScopeCustomersRead, a.listLinks, "cursor", "limit", "state")
	a.handle("GET "+site+"/customers/{customerReference}", billing.ScopeCustomersRead, a.getLink)
	a.handle("POST "+site+"/customers/{customerReference}/revoke", billing.ScopeCustomersRevoke, a.revokeLink)
	a.handle("POST "+site+"/batches", billing.ScopeBatchesWrite, a.submitBatch)
	a.handle("GET "+site+"/batches", billing.ScopeBatchesRead, a.listBatches, "cursor", "limit")
	a.handle("GET "+site+"/batches/{batchReference}", billing.ScopeBatchesRead, a.getBatch, "rowState")
	a.handle("GET "+site+"/events", billing.ScopeEventsRead, a.listEvents, "after", "limit", "type")
	const endpoint = site + "/webhook-endpoints/{endpointId}"
	a.handle("POST "+site+"/webhook-endpoints", billing.ScopeWebhooksManage, a.createWebhookEndpoint)
	a.handle("GET "+site+"/webhook-endpoints", billing.ScopeWebhooksManage, a.listWebhookEndpoints)
	a.handle("GET "+endpoint, billing.ScopeWebhooksManage, a.getWebhookEndpoint)
	a.handle("PATCH "+endpoint, billing.ScopeWebhooksManage, a.updateWebhookEndpoint)
	a.handle("DELETE "+endpoint, billing.ScopeWebhooksManage, a.deleteWebhookEndpoint)
	a.handle("POST "+endpoint+"/secret-rotation", billing.ScopeWebhooksManage, a.rotateWebhookSecret)
	a.handle("GET "+endpoint+"/deliveries", billing.ScopeWebhooksManage, a.listDeliveries, "cursor", "limit")
	a.handle("POST "+endpoint+"/deliveries/{deliveryId}/retry", billing.ScopeWebhooksManage, a.retryDelivery)
	if a.cfg.Sandbox {
		a.handle("POST "+site+"/sandbox/webhook-endpoints/{endpointId}/test", billing.ScopeWebhooksManage, a.simulateWebhookTest)
		a.handle("POST "+site+"/sandbox/customers/{customerReference}/signup", billing.ScopeCustomersInvite, a.simulateSignup)
		a.handle("POST "+site+"/sandbox/customers/{customerReference}/customer-revocation", billing.ScopeCustomersRevoke, a.simulateCustomerRevocation)
		a.handle("POST "+site+"/sandbox/batches/{batchReference}/deadline", billing.ScopeBatchesWrite, a.simulateDeadline)
	}
}

// result is what a /billing/ handler answers on success; handle adds the traceId.
type result struct {
	status int
	body   dataEnvelope
	// writeFunc, when set, writes the answer instead, in a media type other than JSON.
	writeFunc func(w http.ResponseWriter)
}

// billingFunc handles a /billing/ request in the API's order of checks: it reads the body and
// headers the request must have (a problem there is answered whatever the site), and returns what
// to do at the site, which the gate resolves next.
type billingFunc func(w http.ResponseWriter, r *http.Request) (atSite, error)

// atSite finishes a /billing/ request at the caller's site; the rest of the request (fields,
// query parameters, references) is checked there.
type atSite func(site billing.Site) (result, error)

// handle registers a /billing/ route behind the gates every such route shares: the bearer token
// and its scope, the API version, then, once the handler has read the request, the site and the
// query string, which may hold only the route's params.
func (a *server) handle(pattern string, scope billing.Scope, f billingFunc, params ...string) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		res, err := a.gate(w, r, scope, f, params)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		if res.writeFunc != nil {
			res.writeFunc(w)
			return
		}
		res.body.TraceID = traceIDOf(r.Context())
		writeJSON(w, res.status, res.body)
	})
}

// gate passes a /billing/ request through the checks in order and, if it passes them all, acts at
// its site.
func (a *server) gate(w http.ResponseWriter, r *http.Request, scope billing.Scope, f billingFunc, params []string) (result, error) {
	caller, err := a.authenticate(w, r, scope)
	if err != nil {
		return result{}, err
	}
	if err := checkVersion(r); err != nil {
		return result{}, err
	}
	act, err := f(w, r)
	if err != nil {
		return result{}, err
	}
	site, err := a.cfg.Service.Site(r.Context(), caller, r.PathValue("siteId"))
	if err != nil {
		return result{}, err
	}
	if err := checkQuery(r.URL.RawQuery, params); err != nil {
		return result{}, err
	}
	return act(site)
}

// checkQuery refuses a query string that does not decode, naming the parameter as target:
// net/url drops such a parameter silently, which would answer as if it had not been sent (the
// first page, the default limit). It parses as url.ParseQuery does, so a query it lets through
// reads the same in every handler. A parameter that is not one of params is refused too, as an
// unknown member of a body is: a misspelt ?limt=5 would otherwise answer the default page.
func checkQuery(raw string, params []string) error {
	var unknown, repeated error
	seen := map[string]bool{}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		key, errName := url.QueryUnescape(name)
		_, errValue := url.QueryUnescape(value)
		if errName != nil || errValue != nil || strings.Contains(pair, ";") {
			if errName != nil {
				key = name
			}
			key = billing.Quoted(key) // as an unknown one's: a long name is not echoed whole, twice
			return billing.Errorf(billing.CodeInvalidField, key, "The query parameter "+key+
				" is not well-formed: percent-encode reserved characters (%XX) and separate parameters with &.")
		}
		if key == "" { // ?=5: nothing to name as the target, nor to quote in the message
			return billing.Errorf(billing.CodeInvalidField, "", "A query parameter has no name: write each one as name=value, separated by &.")
		}
		known := slices.Contains(params, key)
		if !known && unknown == nil {
			takes := "This route takes no query parameter."
			if len(params) > 0 {
				takes = "This route takes " + strings.Join(params, ", ") + "."
			}
			unknown = billing.Errorf(billing.CodeUnknownField, billing.Quoted(key), "The query parameter "+billing.Quoted(key)+" is unknown. "+takes)
		}
		// A parameter given twice is never read (?limit=1&limit=1): say so, rather than that its
		// value is out of range or unknown.
		if seen[key] && known && repeated == nil {
			repeated = billing.Errorf(billing.CodeInvalidField, key, "The query parameter "+key+" is given more than once; give it once.")
		}
		seen[key] = true
	}
	if unknown != nil {
		return unknown // after every parameter is found well-formed, as a body's syntax comes before its members
	}
	return repeated
}

// checkVersion enforces the Pyng-Api-Version header.
func checkVersion(r *http.Request) error {
	values := r.Header.Values("Pyng-Api-Version")
	switch {
	case len(values) == 0 || values[0] == "":
		return billing.Errorf(billing.CodeInvalidAPIVersion, "Pyng-Api-Version",
			"The Pyng-Api-Version header is required; send "+APIVersion+".")
	case len(values) > 1:
		// Not "not supported": the client may have sent the right version twice (a default header
		// of its HTTP library, and its own).
		return billing.Errorf(billing.CodeInvalidAPIVersion, "Pyng-Api-Version",
			"The Pyng-Api-Version header was sent more than once; send it once: "+APIVersion+".")
	case values[0] != APIVersion:
		return billing.Errorf(billing.CodeInvalidAPIVersion, "Pyng-Api-Version",
			"This Pyng-Api-Version is not supported; send "+APIVersion+".")
	}
	return nil
}

// requestInfo is what the handlers learn about a request: what its log line reports, and the
// scopes of its caller (for an answer that depends on them, beside the route's own scope).
type requestInfo struct {
	traceID  string
	clientID string
	scopes   []billing.Scope
}

type infoKey struct{}

func infoOf(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

func traceIDOf(ctx context.Context) string { return infoOf(ctx).traceID }

// newTraceID returns a random UUID (version 4), as text.
func newTraceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ServeHTTP gives the request a traceId, routes it, turns an unknown route or method (or a path
// not in its clean form) into the error envelope, recovers a panic into a 500, and records one
// log line and the metrics.
func (a *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	clean := CleanPath(r.URL.Path)
	h, route := a.mux.Handler(r)
	if r.Method != http.MethodConnect && clean != r.URL.Path {
		// ServeMux would redirect to the cleaned path, in HTML: a client that followed it would
		// reach another endpoint than the one it named ("/billing/sites//customers").
		h, route = nil, ""
	}
	serve := a.mux.ServeHTTP
	if route == "" {
		route = "unmatched"
		serve = func(w http.ResponseWriter, r *http.Request) { a.unmatched(w, r, h) }
	}
	a.observed(w, r, route, a.writeError, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth2/token" {
			// RFC 6749 §5.1: no answer of the token endpoint may be cached.
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Pragma", "no-cache")
		}
		if strings.HasPrefix(clean, "/billing/") {
			// The answers hold signup tokens and exports; an error must not stand in for a later answer.
			w.Header().Set("Cache-Control", "no-store")
		}
		serve(w, r)
	})
}

// observed serves r with serve as every answer of the server is served: with a traceId in
// Pyng-Trace-Id, one log line and the metrics under route, and a panic answered by failed (when
// no answer has begun) and logged.
func (a *server) observed(w http.ResponseWriter, r *http.Request, route string, failed func(http.ResponseWriter, *http.Request, error),
	serve http.HandlerFunc) {
	start := time.Now()
	info := &requestInfo{traceID: newTraceID()}
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
	sw := &statusWriter{ResponseWriter: w}
	sw.Header().Set(TraceHeader, info.traceID)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			if !sw.wroteHeader {
				failed(sw, r, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
			} else {
				a.log.ErrorContext(r.Context(), "panic after the answer began", "traceId", info.traceID,
					"panic", v, "stack", string(debug.Stack()))
			}
		}
		a.observe(r, route, sw.status, time.Since(start), info)
	}()
	serve(sw, r)
}

// Handler is the API's handler.
type Handler struct{ a *server }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.a.ServeHTTP(w, r) }

// Observed serves page, a handler of other pages beside the API (the customer's), as the API's
// answers are served: with a traceId in Pyng-Trace-Id, a log line and the request metrics under
// route (a path pattern: never the query, which holds the customer's token), and a panic
// answered with a plain 500 that names the traceId, and logged with its stack.
func (h *Handler) Observed(route string, page http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.a.observed(w, r, route, h.a.pageFailed, page.ServeHTTP)
	})
}

// pageFailed answers a page's panic: the page's own error page may be what failed, so plain text.
func (a *server) pageFailed(w http.ResponseWriter, r *http.Request, err error) {
	traceID := traceIDOf(r.Context())
	a.log.ErrorContext(r.Context(), "internal error", "traceId", traceID, "method", billing.Quoted(r.Method), "path", r.URL.Path, "error", err)
	http.Error(w, "Something went wrong on our side. Nothing has been lost; please try again in a few minutes. "+
		"If it persists, contact support with this reference: "+traceID, http.StatusInternalServerError)
}

// CleanPath is a URL path as ServeMux cleans it before routing: no empty, "." or ".." segments,
// a trailing slash kept. A path that differs from its cleaned form is not one the API serves.
func CleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	clean := path.Clean(p)
	if p[len(p)-1] == '/' && clean != "/" {
		clean += "/"
	}
	return clean
}

// unmatched answers a request no route takes: 405 with Allow when the path exists for other
// methods, 404 otherwise. h is the mux's own answer, consulted for the Allow list (nil: 404).
func (a *server) unmatched(w http.ResponseWriter, r *http.Request, h http.Handler) {
	probe := &probeWriter{header: http.Header{}}
	if h != nil {
		h.ServeHTTP(probe, r)
	}
	if probe.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", probe.header.Get("Allow"))
		a.writeError(w, r, billing.Errorf(billing.CodeMethodNotAllowed, "",
			"This endpoint does not accept the "+billing.Quoted(r.Method)+" method; the Allow header lists those it does."))
		return
	}
	a.writeError(w, r, notFound())
}

// knownMethods bounds the method label of the metrics.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

func (a *server) observe(r *http.Request, route string, status int, took time.Duration, info *requestInfo) {
	switch {
	case status == 0 && r.Context().Err() != nil:
		status = statusClientGone
	case status == 0:
		status = http.StatusOK
	}
	method := r.Method
	if !knownMethods[method] {
		method = "other"
	}
	a.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	a.duration.WithLabelValues(route, method).Observe(took.Seconds())
	// The method as sent, bounded: any token is one, and a header of a megabyte may hold it.
	a.log.InfoContext(r.Context(), "request", "method", billing.Quoted(r.Method), "route", route, "status", status,
		"duration", took, "traceId", info.traceID, "clientId", info.clientID)
}

// statusClientGone is the status recorded (never sent) for a request answered nothing because its
// client went away first: nginx's 499.
const statusClientGone = 499

// statusWriter remembers the status of the answer.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(status int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// probeWriter records what a handler would answer, and discards it.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header { return p.header }
func (p *probeWriter) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}
func (p *probeWriter) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}

func (a *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// ErrDraining is what Config.Ready returns while the server drains before it stops: /readyz
// answers 503, as expected then, without a warning at each probe.
var ErrDraining = errors.New("draining: the server is stopping")

// readyTimeout bounds the readiness check, so that a stuck database fails it rather than hangs it.
const readyTimeout = 2 * time.Second

func (a *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := a.cfg.Ready(ctx); err != nil {
		if !errors.Is(err, ErrDraining) {
			a.log.WarnContext(ctx, "not ready", "traceId", traceIDOf(ctx), "error", err)
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(api.OpenAPI)
}
