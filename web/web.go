// Package web is the customer's side ("the Pyng App"): the server-rendered signup page a signupUrl
// opens and the page where the customer manages (and may revoke) the debit agreement.
//
// The pages work without JavaScript. Every state-changing form is protected twice against
// cross-site request forgery: net/http's CrossOriginProtection rejects cross-origin browser
// requests, and a double-submit token (a random cookie that the form must echo) rejects what gets
// past it. Every response carries a strict Content-Security-Policy, a same-origin referrer policy
// (tokens travel in the URL) and no-store.
package web

import (
	"bytes"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/token"
)

// Config is what the pages need.
type Config struct {
	Service *billing.Service
	Tokens  *token.Issuer
	Logger  *slog.Logger
	// PublicURL is the server's external base URL; links on the pages are built from it, and
	// cookies are marked Secure when it is https.
	PublicURL string
	// ManagementLinkTTL is how long a management link lasts (0: it does not expire), for the
	// pages to say.
	ManagementLinkTTL time.Duration
	// EmailLinkLimits bounds the "email me my management link" form (zero: the defaults).
	EmailLinkLimits EmailLinkLimits
	// Now is the time of the form's limits (nil: time.Now).
	Now func() time.Time
	// Sandbox says that the server is a sandbox: every page says so, and that no money is taken,
	// so that a customer sent its link by mistake does not give it their real bank details.
	Sandbox bool
}

// maxFormBytes bounds the body of a form post; the forms are a few hundred bytes.
const maxFormBytes = 16 << 10

// handler serves the customer's pages.
type handler struct {
	service   *billing.Service
	tokens    *token.Issuer
	logger    *slog.Logger
	publicURL string
	csrf      csrf
	signedUp  signedUp
	mux       *http.ServeMux
	// pages are the templates the handler renders (pages, or sandboxPages).
	pages map[string]*template.Template

	managementLinkTTL time.Duration
	emailLinkLimits   emailLinkLimits
}

// Paths are the patterns of the paths the pages own (app mounts New's handler at each): a path
// under them that no page serves gets the pages' own not-found page, not the API's JSON answer.
var Paths = []string{"/signup", "/signup/", "/agreement", "/agreement/", "/service-agreement/"}

// New returns the handler of the customer's pages: GET and POST /signup?token=... (the form, the
// review of the details, the confirmation), GET /agreement?token=..., GET and POST
// /agreement/revoke (the page that asks to confirm a revocation, and the revocation), POST
// /agreement/email-link, GET /agreement/service-agreement?token=... (the service agreement the
// customer agreed to) and GET /service-agreement/{siteId} (the site's, as it stands).
func New(cfg Config) http.Handler {
	h := &handler{
		service:   cfg.Service,
		tokens:    cfg.Tokens,
		logger:    cfg.Logger,
		publicURL: strings.TrimRight(cfg.PublicURL, "/"),
		csrf:      newCSRF(strings.HasPrefix(cfg.PublicURL, "https://")),
		signedUp:  newSignedUp(strings.HasPrefix(cfg.PublicURL, "https://")),
		mux:       http.NewServeMux(),
		pages:     pages,

		managementLinkTTL: cfg.ManagementLinkTTL,
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	h.emailLinkLimits = newEmailLinkLimits(cfg.EmailLinkLimits, now)
	if cfg.Sandbox {
		h.pages = sandboxPages
	}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	h.mux.Handle("/signup", h.methods(map[string]http.HandlerFunc{
		http.MethodGet:  h.showSignup,
		http.MethodPost: h.protect(h.submitSignup),
	}))
	h.mux.Handle("/agreement", h.methods(map[string]http.HandlerFunc{
		http.MethodGet: h.showAgreement,
	}))
	h.mux.Handle("/agreement/revoke", h.methods(map[string]http.HandlerFunc{
		http.MethodGet:  h.confirmRevocation,
		http.MethodPost: h.protect(h.revokeAgreement),
	}))
	h.mux.Handle("/agreement/email-link", h.methods(map[string]http.HandlerFunc{
		http.MethodPost: h.protect(h.emailLink),
	}))
	h.mux.Handle("/agreement/service-agreement", h.methods(map[string]http.HandlerFunc{
		http.MethodGet: h.showAgreedServiceAgreement,
	}))
	h.mux.Handle("/service-agreement/{siteId}", h.methods(map[string]http.HandlerFunc{
		http.MethodGet: h.showServiceAgreement,
	}))
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { h.fail(w, r, pageNotFound()) })
	return h
}

// ServeHTTP sets the security headers every page carries, then routes.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	// The signup and agreement tokens are in the URL: never send it to another site (the pages
	// load nothing from one, by the CSP), never cache. Not no-referrer: under it browsers send
	// "Origin: null" with a form post, which the cross-origin check must refuse from a browser
	// that sends no Sec-Fetch-Site (Safari before 16.4).
	hdr.Set("Referrer-Policy", "same-origin")
	hdr.Set("Cache-Control", "no-store")
	// A path that is not in its clean form is redirected to it only when a page is there: the
	// pages keep /service-agreement/.. (which is /) and /signup// as their own not-found.
	if _, pattern := h.mux.Handler(r); pattern == "/" {
		h.fail(w, r, pageNotFound())
		return
	}
	h.mux.ServeHTTP(w, r)
}

// methods dispatches by method, answering others with a 405 page that lists the allowed ones.
// HEAD is served as GET.
func (h *handler) methods(byMethod map[string]http.HandlerFunc) http.Handler {
	allowed := make([]string, 0, len(byMethod)+1)
	for m := range byMethod {
		allowed = append(allowed, m)
	}
	if byMethod[http.MethodGet] != nil {
		allowed = append(allowed, http.MethodHead)
	}
	slices.Sort(allowed)
	allow := strings.Join(allowed, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		next, ok := byMethod[method]
		if !ok {
			w.Header().Set("Allow", allow)
			h.fail(w, r, methodNotAllowed())
			return
		}
		next(w, r)
	})
}

// protect guards a state-changing form: first net/http's cross-origin protection, then the
// double-submit token. A request that fails either gets the 403 page and changes nothing.
func (h *handler) protect(next http.HandlerFunc) http.HandlerFunc {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, forbidden())
	}))
	checked := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !readForm(w, r) {
			h.fail(w, r, badForm())
			return
		}
		if !h.csrf.valid(r) {
			h.fail(w, r, forbidden())
			return
		}
		next(w, r)
	})
	return cop.Handler(checked).ServeHTTP
}

// render writes a page with its status. The page is rendered whole before anything is sent, so
// a template failure is a clean 500.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		h.logger.ErrorContext(r.Context(), "render page", "page", name, "traceId", traceID(w), "err", err)
		http.Error(w, "Something went wrong on our side. Please try again later."+referenceOf(traceID(w)), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// fail renders the error page of p.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, p *problem) { h.failing(w, r, p, "") }

// failing renders the error page of p, naming reference (a traceId) when it is not empty.
func (h *handler) failing(w http.ResponseWriter, r *http.Request, p *problem, reference string) {
	h.withEmailLinkForm(w, r, p)
	h.render(w, r, p.Status, "error", errorPage{problem: p, Reference: reference})
}

// usable reports whether a token resolved to something the request can act on; if not, it has
// shown why (p), or an internal failure (err).
func (h *handler) usable(w http.ResponseWriter, r *http.Request, what string, p *problem, err error) bool {
	switch {
	case err != nil:
		h.internal(w, r, what, err)
		return false
	case p != nil:
		h.fail(w, r, p)
		return false
	}
	return true
}

// internal logs an unexpected failure and shows a page that gives away nothing of it.
func (h *handler) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.logger.ErrorContext(r.Context(), what, "path", r.URL.Path, "traceId", traceID(w), "err", err)
	h.failing(w, r, internalError(), traceID(w))
}

// traceID is the request's traceId, which the server that mounts the pages gives the answer
// (Pyng-Trace-Id) before they run, as it does every answer: "" when the pages are served alone.
// Support finds the request's log lines by it.
func traceID(w http.ResponseWriter) string { return w.Header().Get("Pyng-Trace-Id") }

// referenceOf is the sentence that gives the customer a failure's traceId, if there is one.
func referenceOf(traceID string) string {
	if traceID == "" {
		return ""
	}
	return " If it goes on, contact support with this reference: " + traceID
}
