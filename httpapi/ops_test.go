package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/httpapi"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/token"
)

func TestRoutes(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		tests := []struct {
			name, method, path string
			status             int
			code, allow        string
		}{
			{"an unknown path is 404 request:not-found", http.MethodGet, "/nowhere", 404, "request:not-found", ""},
			{"an unknown /billing/ path is 404 request:not-found", http.MethodGet, "/billing/sites/" + s.Site.ID + "/nowhere", 404, "request:not-found", ""},
			{"another method on an endpoint is 405 with Allow", http.MethodDelete, "/billing/sites/" + s.Site.ID + "/customers", 405, "request:method-not-allowed", "GET, HEAD"},
			{"DELETE on the batches endpoint is 405 with Allow", http.MethodDelete, "/billing/sites/" + s.Site.ID + "/batches", 405, "request:method-not-allowed", "GET, HEAD, POST"},
			{"POST on a batch is 405 with Allow", http.MethodPost, "/billing/sites/" + s.Site.ID + "/batches/B-1", 405, "request:method-not-allowed", "GET, HEAD"},
			{"PUT on the invitations endpoint is 405 with Allow", http.MethodPut, "/billing/sites/" + s.Site.ID + "/customers/invitations", 405, "request:method-not-allowed", "GET, HEAD, POST"},
			{"GET on the token endpoint is 405 with Allow", http.MethodGet, "/oauth2/token", 405, "request:method-not-allowed", "POST"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				r := s.Do(t, apptest.Request{Method: tt.method, Path: tt.path, Token: p.token})
				wantError(t, r, tt.status, tt.code, "")
				if got := r.Header.Get("Allow"); got != tt.allow {
					t.Errorf("Allow = %q, want %q", got, tt.allow)
				}
			})
		}
	})
}

func TestEveryAnswerHasATraceID(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		seen := map[string]bool{}
		for _, r := range []*apptest.Response{
			p.invite(t, "ACME-001"),
			p.invite(t, "ACME-001"),
			p.invite(t, "bad ref"),
			p.list(t, ""),
			p.list(t, "?limit=0"),
			p.get(t, "ACME-001"),
			p.get(t, "ACME-404"),
			p.post(t, "/customers/ACME-001/revoke"),
			p.post(t, "/customers/ACME-001/revoke"),
			p.post(t, "/sandbox/customers/ACME-001/signup"),
			p.submit(t, batchRequest("B-1", debit{"R0", "ACME-001", 100})),
			p.submit(t, batchRequest("B-1", debit{"R0", "ACME-001", 1.5})),
			p.getBatch(t, "B-404", ""),
			s.Do(t, apptest.Request{Method: http.MethodGet, Path: "/billing/sites/" + s.Site.ID + "/customers"}),
			s.Do(t, apptest.Request{Method: http.MethodGet, Path: "/billing/sites/" + s.Site.ID + "/customers", Token: p.token, Header: map[string]string{"Pyng-Api-Version": "-"}}),
			s.Do(t, apptest.Request{Method: http.MethodGet, Path: "/billing/nowhere", Token: p.token}),
		} {
			var body struct{ TraceID string }
			r.JSON(t, &body)
			header := r.Header.Get("Pyng-Trace-Id")
			if !uuidV4.MatchString(body.TraceID) || body.TraceID != header {
				t.Errorf("%d %s: traceId %q, Pyng-Trace-Id %q; want one UUID v4 in both", r.Status, r.Body, body.TraceID, header)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
				t.Errorf("%d %s: Content-Type %q", r.Status, r.Body, ct)
			}
			if seen[header] {
				t.Errorf("traceId %s used twice", header)
			}
			seen[header] = true
		}
	})
}

func TestOperationsEndpoints(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		p.list(t, "")
		for _, path := range []string{"/healthz", "/readyz"} {
			r := s.Do(t, apptest.Request{Method: http.MethodGet, Path: path})
			wantStatus(t, r, http.StatusOK)
			if strings.TrimSpace(string(r.Body)) != `{"status":"ok"}` {
				t.Errorf("GET %s = %s", path, r.Body)
			}
		}
		r := s.Do(t, apptest.Request{Method: http.MethodGet, Path: "/metrics"})
		wantStatus(t, r, http.StatusOK)
		for _, want := range []string{
			`pyng_http_requests_total{method="GET",route="GET /billing/sites/{siteId}/customers",status="200"} 1`,
			`pyng_http_requests_total{method="POST",route="POST /oauth2/token",status="200"} 1`,
			`pyng_http_request_duration_seconds_count{method="GET",route="GET /billing/sites/{siteId}/customers"} 1`,
		} {
			if !strings.Contains(string(r.Body), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

// store is a store whose GetSite is getSiteFunc; the client it knows is client. The service
// reaches nothing else of it.
type store struct {
	billing.Store
	billing.BatchStore
	billing.EventStore
	client      billing.Client
	getSiteFunc func() (billing.Site, error)
}

// unusedRail is a rail the requests of these tests never reach.
type unusedRail struct{ rail.Rail }

func (s store) GetClient(context.Context, string) (billing.Client, error) { return s.client, nil }
func (s store) GetSite(context.Context, string) (billing.Site, error)     { return s.getSiteFunc() }

// bareAPI serves httpapi.New over a store that fails as told, and returns a token for it and the
// server's log.
func bareAPI(t *testing.T, getSite func() (billing.Site, error), ready func(context.Context) error) (*httptest.Server, string, *bytes.Buffer) {
	t.Helper()
	client := billing.Client{ID: "cli_test", OrganisationID: "org_test", Scopes: billing.AllScopes}
	tokens := token.NewIssuer(billing.SigningKey{ID: "key_test", Secret: []byte("secret")}, time.Now)
	var log bytes.Buffer
	st := store{client: client, getSiteFunc: getSite}
	h := httpapi.New(httpapi.Config{
		Service: billing.NewService(billing.Config{
			Store:         st,
			Batches:       st,
			Events:        st,
			Rails:         map[string]rail.Rail{rail.Sandbox: unusedRail{}},
			Clock:         billing.SystemClock{},
			InvitationTTL: billing.DefaultInvitationTTL,
		}),
		Tokens:         tokens,
		Logger:         slog.New(slog.NewJSONHandler(&log, nil)),
		AccessTokenTTL: time.Hour,
		Ready:          ready,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tok, _, err := tokens.Access(billing.Caller{ClientID: client.ID, OrganisationID: client.OrganisationID, Scopes: client.Scopes}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return srv, tok, &log
}

func TestFailuresAreOpaque500sLoggedWithTheTraceID(t *testing.T) {
	const secret = "database password is hunter2"
	for _, tt := range []struct {
		name    string
		getSite func() (billing.Site, error)
	}{
		{"an unknown error is a 500 internal", func() (billing.Site, error) { return billing.Site{}, errors.New(secret) }},
		{"a panic is a 500 internal", func() (billing.Site, error) { panic(secret) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, tok, log := bareAPI(t, tt.getSite, nil)
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/billing/sites/site_x/customers", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Pyng-Api-Version", httpapi.APIVersion)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var body errorBody
			if err := json.Unmarshal(data, &body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 500 || len(body.Errors) != 1 || body.Errors[0].Code != codePrefix+"internal" {
				t.Fatalf("answer = %d %s, want 500 internal", resp.StatusCode, data)
			}
			if strings.Contains(string(data), "hunter2") {
				t.Errorf("the answer shows the internal error: %s", data)
			}
			logged := log.String()
			if !strings.Contains(logged, "hunter2") || !strings.Contains(logged, `"traceId":"`+body.TraceID+`"`) {
				t.Errorf("the log does not record the error with traceId %s:\n%s", body.TraceID, logged)
			}
			if !strings.Contains(logged, `"msg":"request","method":"GET","route":"GET /billing/sites/{siteId}/customers","status":500`) ||
				!strings.Contains(logged, `"clientId":"cli_test"`) {
				t.Errorf("no request line with route, status and clientId:\n%s", logged)
			}
		})
	}
}

func TestReadyzFailsWhenNotReady(t *testing.T) {
	t.Parallel()
	srv, _, _ := bareAPI(t, nil, func(context.Context) error { return errors.New("database unreachable") })
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(string(data), "unreachable") {
		t.Errorf("GET /readyz = %d %s, want 503 without the cause", resp.StatusCode, data)
	}
	if resp, err := http.Get(srv.URL + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz = %v, %v; want 200 while not ready", resp, err)
	}
}

// TestNonCanonicalPathsAreTheAPIsNotFound checks that a path ServeMux would clean (a doubled
// slash, a dot segment) is answered with the API's JSON 404 and a traceId, not the mux's HTML
// redirect, which sent "/billing/sites//customers" to another path; the pages' paths keep theirs.
func TestNonCanonicalPathsAreTheAPIsNotFound(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		site := "/billing/sites/" + s.Site.ID
		for _, tt := range []struct{ method, path string }{
			{http.MethodGet, "/" + site + "/customers"},
			{http.MethodGet, "/billing/sites//customers"},
			{http.MethodGet, site + "//customers"},
			{http.MethodGet, site + "/./customers"},
			{http.MethodGet, site + "/customers/../batches"},
			{http.MethodGet, "/billing/sites/" + s.Site.ID + "%2F%2Fcustomers"},
			{http.MethodPost, site + "/customers//invitations"},
			{http.MethodPost, "//oauth2/token"},
			{http.MethodGet, "//healthz"},
			{http.MethodGet, "//nowhere"},
		} {
			t.Run(tt.method+" "+tt.path, func(t *testing.T) {
				t.Parallel()
				r := s.Do(t, apptest.Request{Method: tt.method, Path: tt.path, Token: p.token})
				wantError(t, r, http.StatusNotFound, "request:not-found", "")
				var body errorBody
				r.JSON(t, &body)
				if !uuidV4.MatchString(body.TraceID) || body.TraceID != r.Header.Get("Pyng-Trace-Id") {
					t.Errorf("traceId %q, Pyng-Trace-Id %q; want one UUID v4 in both", body.TraceID, r.Header.Get("Pyng-Trace-Id"))
				}
				if ct := r.Header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
					t.Errorf("Content-Type %q, want the API's JSON", ct)
				}
			})
		}
		noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for path, location := range map[string]string{
			"//signup?token=x":   "/signup?token=x",
			"/agreement//revoke": "/agreement/revoke",
			"/x/../agreement":    "/agreement",
		} {
			t.Run("the pages' path "+path+" still redirects to "+location, func(t *testing.T) {
				t.Parallel()
				resp, err := noRedirects.Get(s.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != location {
					t.Errorf("GET %s = %d Location %q, want 307 to %s", path, resp.StatusCode, resp.Header.Get("Location"), location)
				}
			})
		}
	})
}

// TestBillingAnswersAreNeverCached checks Cache-Control: no-store on every kind of /billing/
// answer: they hold signup tokens and CSV exports, and an error of one request must not stand in
// for the answer of the next.
func TestBillingAnswersAreNeverCached(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		p.link(t, "ACME-001")
		p.mustSubmit(t, batchRequest("B-1", debit{"R1", "ACME-001", 100}))
		site := "/billing/sites/" + p.site
		for name, r := range map[string]*apptest.Response{
			"an invitation with its signupUrl": p.invite(t, "ACME-002"),
			"a customer":                       p.get(t, "ACME-002"),
			"a page of customers":              p.list(t, "?limit=1"),
			"a batch's CSV export":             p.getBatch(t, "B-1", "", "Accept", "text/csv"),
			"a batch receipt":                  p.submit(t, batchRequest("B-2", debit{"R1", "ACME-001", 100})),
			"400":                              p.list(t, "?limit=0"),
			"401":                              s.Do(t, apptest.Request{Method: http.MethodGet, Path: site + "/customers"}),
			"404 site":                         partner{s: s, token: p.token, site: "site_doesnotexist"}.list(t, ""),
			"404 endpoint":                     s.Do(t, apptest.Request{Method: http.MethodGet, Path: site + "/nowhere", Token: p.token}),
			"404 unclean path":                 s.Do(t, apptest.Request{Method: http.MethodGet, Path: "/" + site + "/customers", Token: p.token}),
			"405":                              s.Do(t, apptest.Request{Method: http.MethodDelete, Path: site + "/customers", Token: p.token}),
			"409":                              p.invite(t, "ACME-002"),
		} {
			if got := r.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("%s (%d): Cache-Control %q, want no-store", name, r.Status, got)
			}
		}
	})
}

// The customer's pages are served beside the API as its answers are (app.NewHandler mounts them
// through Handler.Observed): each answer has its traceId, and the log a request line with the
// page's path pattern, never the query that holds the customer's token; a page's panic is a
// plain 500 that names the traceId, logged with it.
func TestPagesServedBesideTheAPIHaveATraceIDAndALogLine(t *testing.T) {
	var log bytes.Buffer
	api := httpapi.New(httpapi.Config{Logger: slog.New(slog.NewJSONHandler(&log, nil))})
	const secret = "tok_do_not_log"
	mux := http.NewServeMux()
	mux.Handle("/signup", api.Observed("/signup", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("panic") != "" {
			panic("template broke")
		}
		io.WriteString(w, "<p>the page</p>")
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		query  string
		status int
		body   string
	}{
		{"?token=" + secret, http.StatusOK, "<p>the page</p>"},
		{"?token=" + secret + "&panic=1", http.StatusInternalServerError, "Something went wrong on our side"},
	} {
		log.Reset()
		resp, err := http.Get(srv.URL + "/signup" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		trace := resp.Header.Get("Pyng-Trace-Id")
		if resp.StatusCode != tc.status || !strings.Contains(string(data), tc.body) || !uuidV4.MatchString(trace) {
			t.Fatalf("GET /signup%s = %d %q, Pyng-Trace-Id %q; want %d %q and a traceId", tc.query, resp.StatusCode, data, trace, tc.status, tc.body)
		}
		logged := log.String()
		wantLine := fmt.Sprintf(`"msg":"request","method":"GET","route":"/signup","status":%d`, tc.status)
		if !strings.Contains(logged, wantLine) || !strings.Contains(logged, `"traceId":"`+trace+`"`) {
			t.Errorf("GET /signup%s logged:\n%s\nwant %s with traceId %s", tc.query, logged, wantLine, trace)
		}
		if strings.Contains(logged, secret) {
			t.Errorf("the log holds the customer's token:\n%s", logged)
		}
		if tc.status == http.StatusInternalServerError && (!strings.Contains(string(data), trace) || !strings.Contains(logged, "template broke")) {
			t.Errorf("a page's panic answered %q and logged %s; want the traceId in both and the panic logged", data, logged)
		}
	}
}
