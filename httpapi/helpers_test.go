package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"testing"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
)

// onEachEngine runs test, in parallel, on a fresh server of every storage engine.
func onEachEngine(t *testing.T, test func(t *testing.T, s *apptest.Server), opts ...apptest.Options) {
	t.Helper()
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			test(t, apptest.Start(t, engine, opts...))
		})
	}
}

// partner is a partner with a token holding every scope, calling the API for one of its sites.
type partner struct {
	s     *apptest.Server
	p     apptest.Partner
	token string
	site  string
}

// mainPartner is the partner the server was started with.
func mainPartner(t testing.TB, s *apptest.Server) partner {
	t.Helper()
	return partner{s: s, p: s.Partner, token: s.Token(t, s.Partner), site: s.Site.ID}
}

// newPartner is a partner of its own (organisation, site, client), so that a test sees only its
// own customers.
func newPartner(t testing.TB, s *apptest.Server) partner {
	t.Helper()
	p := s.NewPartner(t, billing.AllScopes...)
	return partner{s: s, p: p, token: s.Token(t, p), site: p.Site.ID}
}

// do calls path under the partner's site: /billing/sites/{siteId}path.
func (p partner) do(t testing.TB, method, path string, body any, header ...string) *apptest.Response {
	t.Helper()
	h := map[string]string{}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	return p.s.Do(t, apptest.Request{Method: method, Path: "/billing/sites/" + p.site + path, Token: p.token, Body: body, Header: h})
}

func (p partner) invite(t testing.TB, ref string) *apptest.Response {
	t.Helper()
	return p.do(t, http.MethodPost, "/customers/invitations", map[string]string{"customerReference": ref})
}

// mustInvite invites ref and returns the invitation.
func (p partner) mustInvite(t testing.TB, ref string) invitation {
	t.Helper()
	r := p.invite(t, ref)
	wantStatus(t, r, http.StatusCreated)
	return dataOf[invitation](t, r)
}

func (p partner) get(t testing.TB, ref string) *apptest.Response {
	t.Helper()
	return p.do(t, http.MethodGet, "/customers/"+ref, nil)
}

func (p partner) mustGet(t testing.TB, ref string) link {
	t.Helper()
	r := p.get(t, ref)
	wantStatus(t, r, http.StatusOK)
	return dataOf[link](t, r)
}

// snapshot is what GET one answers for ref, less the traceId: two snapshots are equal when
// nothing changed.
func (p partner) snapshot(t testing.TB, ref string) string {
	t.Helper()
	r := p.get(t, ref)
	var body struct{ Data, Errors json.RawMessage }
	r.JSON(t, &body)
	return fmt.Sprintf("%d %s %s", r.Status, body.Data, body.Errors)
}

func (p partner) list(t testing.TB, query string) *apptest.Response {
	t.Helper()
	return p.do(t, http.MethodGet, "/customers"+query, nil)
}

func (p partner) mustList(t testing.TB, query string) page {
	t.Helper()
	r := p.list(t, query)
	wantStatus(t, r, http.StatusOK)
	var pg page
	r.JSON(t, &pg)
	return pg
}

func (p partner) post(t testing.TB, path string) *apptest.Response {
	t.Helper()
	return p.do(t, http.MethodPost, path, nil)
}

// The bodies of the API, decoded loosely: the validating client has checked them exactly.
type invitation struct {
	CustomerReference string `json:"customerReference"`
	SignupURL         string `json:"signupUrl"`
	ExpiresAt         int64  `json:"expiresAt"`
	State             string `json:"state"`
}

type link struct {
	CustomerReference string `json:"customerReference"`
	State             string `json:"state"`
	CreatedAt         int64  `json:"createdAt"`
	ExpiresAt         int64  `json:"expiresAt"`
	LinkedAt          int64  `json:"linkedAt"`
	RevokedAt         int64  `json:"revokedAt"`
	RevokedBy         string `json:"revokedBy"`
	SignupURL         string `json:"signupUrl"`
}

type page struct {
	Data       []link `json:"data"`
	NextCursor string `json:"nextCursor"`
	TraceID    string `json:"traceId"`
}

type apiError struct {
	Code           string `json:"code"`
	DisplayMessage string `json:"displayMessage"`
	Target         string `json:"target"`
}

// dataOf decodes the data of an answer.
func dataOf[T any](t testing.TB, r *apptest.Response) T {
	t.Helper()
	var body struct{ Data T }
	r.JSON(t, &body)
	return body.Data
}

type errorBody struct {
	Errors  []apiError `json:"errors"`
	TraceID string     `json:"traceId"`
}

func refs(links []link) []string {
	out := make([]string, len(links))
	for i, l := range links {
		out[i] = l.CustomerReference
	}
	return out
}

const codePrefix = "urn:pyng:platform:billing:error:"

func wantStatus(t testing.TB, r *apptest.Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.Status, status, r.Body)
	}
}

// wantError checks that r is the error envelope with one error of code (after the prefix) and
// target, and returns it.
func wantError(t testing.TB, r *apptest.Response, status int, code, target string) apiError {
	t.Helper()
	wantStatus(t, r, status)
	var body errorBody
	r.JSON(t, &body)
	if len(body.Errors) != 1 {
		t.Fatalf("errors = %+v, want one", body.Errors)
	}
	e := body.Errors[0]
	if e.Code != codePrefix+code || e.Target != target {
		t.Fatalf("error = %+v, want code %s%s and target %q", e, codePrefix, code, target)
	}
	if e.DisplayMessage == "" {
		t.Fatalf("error %+v has no displayMessage", e)
	}
	return e
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func cursorOf(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}
