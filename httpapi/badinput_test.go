package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/token"
)

// auditSite is a partner's site holding one of everything a route can change: an invited
// customer, a linked one, a batch whose rows are open (the sandbox settles after an hour of the
// test's clock, which stands still), and a webhook endpoint with a delivery that succeeded.
type auditSite struct {
	partner
	endpoint endpoint
	delivery string
}

func newAuditSite(t *testing.T, s *apptest.Server) *auditSite {
	t.Helper()
	p := newPartner(t, s)
	rc := newReceiver(t)
	e := p.createEndpoint(t, map[string]any{"url": rc.srv.URL, "eventTypes": []string{"customer.invited"}})
	p.mustInvite(t, "C-INV")
	p.link(t, "C-LINKED")
	p.mustSubmit(t, batchRequest("B-OPEN", debit{"R0", "C-LINKED", 100}))
	ds := p.awaitDeliveries(t, e.EndpointID, 2, "succeeded")
	// Wait until the batch stands still: executed, its row sent and waiting for settlement.
	deadline := time.Now().Add(20 * time.Second)
	for {
		b := p.mustGetBatch(t, "B-OPEN", "")
		if b.State == "inProgress" && len(b.Rows) == 1 && b.Rows[0].State == "inProgress" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch B-OPEN is %s with rows %v, want inProgress", b.State, b.Rows)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &auditSite{partner: p, endpoint: e, delivery: ds[0].DeliveryID}
}

// state is everything the partner can read of its site, and the endpoint's secret, without the
// traceIds: two states are equal when nothing changed.
func (a *auditSite) state(t testing.TB) string {
	t.Helper()
	var out strings.Builder
	base := "/webhook-endpoints/" + a.endpoint.EndpointID
	for _, path := range []string{"/customers?limit=100", "/customers/C-INV", "/customers/C-LINKED", "/batches?limit=100",
		"/batches/B-OPEN", "/events?limit=100", "/webhook-endpoints", base, base + "/deliveries?limit=100"} {
		r := a.do(t, http.MethodGet, path, nil)
		wantStatus(t, r, http.StatusOK)
		var body struct{ Data json.RawMessage }
		r.JSON(t, &body)
		out.WriteString(path + " " + string(body.Data) + "\n")
	}
	e, err := a.s.Service.WebhookEndpoint(context.Background(), billing.Site{ID: a.site}, a.endpoint.EndpointID)
	if err != nil {
		t.Fatalf("read endpoint: %v", err)
	}
	out.WriteString("secret " + e.Secret.Reveal() + "\n")
	return out.String()
}

// unchanged fails the test when the site's state differs from before, showing the lines that
// differ, and returns the state now (so that one failure does not fail every later check).
func (a *auditSite) unchanged(t testing.TB, before string) string {
	t.Helper()
	after := a.state(t)
	if after != before {
		was, now := strings.Split(before, "\n"), strings.Split(after, "\n")
		var diff strings.Builder
		for i := range max(len(was), len(now)) {
			var w, n string
			if i < len(was) {
				w = was[i]
			}
			if i < len(now) {
				n = now[i]
			}
			if w != n {
				diff.WriteString("was: " + w + "\nnow: " + n + "\n")
			}
		}
		t.Errorf("a refused request changed the site:\n%s", diff.String())
	}
	return after
}

// wantEnvelope is wantError, and the envelope's traceId is the Pyng-Trace-Id header's, a UUID,
// and the answer is not to be cached.
func wantEnvelope(t testing.TB, r *apptest.Response, status int, code, target string) apiError {
	t.Helper()
	e := wantError(t, r, status, code, target)
	var body errorBody
	r.JSON(t, &body)
	if !uuidV4.MatchString(body.TraceID) || body.TraceID != r.Header.Get("Pyng-Trace-Id") {
		t.Errorf("traceId %q, header %q: want the same UUID", body.TraceID, r.Header.Get("Pyng-Trace-Id"))
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	return e
}

// orJSON is a case's Content-Type, application/json when the case gives none ("-" sends none).
func orJSON(contentType string) string {
	if contentType == "" {
		return "application/json"
	}
	return contentType
}

// oversized is a JSON object just over the 64 KiB every body but a batch's may have.
var oversized = `{"pad":"` + strings.Repeat("a", 64<<10) + `"}`

// The actions that take no parameters (a body that is empty or {}) refuse every other body,
// before they act: a revocation, the sandbox's simulations, a secret rotation, a retry.
func TestEmptyBodyActionsRefuseBadBodiesAndChangeNothing(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		a := newAuditSite(t, s)
		base := "/webhook-endpoints/" + a.endpoint.EndpointID
		actions := []string{
			"/customers/C-INV/revoke",
			"/customers/C-LINKED/revoke",
			"/sandbox/customers/C-INV/signup",
			"/sandbox/customers/C-LINKED/customer-revocation",
			"/sandbox/batches/B-OPEN/deadline",
			base + "/secret-rotation",
			base + "/deliveries/" + a.delivery + "/retry",
			"/sandbox/webhook-endpoints/" + a.endpoint.EndpointID + "/test",
		}
		bodies := []struct {
			name, contentType, body string
			status                  int
			code, target            string
		}{
			{"malformed JSON", "", `{`, 400, "request:malformed-json", ""},
			{"truncated member", "", `{"a":`, 400, "request:malformed-json", ""},
			{"an array", "", `[]`, 400, "request:malformed-json", ""},
			{"a string", "", `"{}"`, 400, "request:malformed-json", ""},
			{"a number", "", `0`, 400, "request:malformed-json", ""},
			{"null", "", `null`, 400, "request:malformed-json", ""},
			{"trailing data", "", `{} {}`, 400, "request:malformed-json", ""},
			{"invalid UTF-8", "", "{\"\xff\":1}", 400, "request:malformed-json", ""},
			{"an unknown member", "", `{"reason":"fraud"}`, 400, "request:unknown-field", "reason"},
			{"a body over 64 KiB", "", oversized, 413, "request:body-too-large", ""},
			{"no Content-Type", "-", `{}`, 415, "request:unsupported-media-type", "Content-Type"},
			{"text/plain", "text/plain", `{}`, 415, "request:unsupported-media-type", "Content-Type"},
			{"a form", "application/x-www-form-urlencoded", `confirm=yes`, 415, "request:unsupported-media-type", "Content-Type"},
			{"a charset other than UTF-8", "application/json; charset=utf-16", `{}`, 415, "request:unsupported-media-type", "Content-Type"},
		}
		before := a.state(t)
		for _, path := range actions {
			for _, b := range bodies {
				t.Run(path+" with "+b.name, func(t *testing.T) {
					wantEnvelope(t, a.do(t, http.MethodPost, path, b.body, "Content-Type", orJSON(b.contentType)), b.status, b.code, b.target)
				})
			}
		}
		time.Sleep(100 * time.Millisecond) // time for a retry or a test event that should not be sent
		a.unchanged(t, before)
	}, apptest.Options{SettlementDelay: time.Hour})
}

// The webhook endpoint's creation and update refuse bodies of the wrong kind or the wrong types,
// naming the member, and change nothing; a body cut short is malformed, whatever member the
// decoder met before its end. (A JSON null counts as an absent member, as the document says.)
func TestWebhookEndpointBodiesOfTheWrongKindOrTypes(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		a := newAuditSite(t, s)
		path := "/webhook-endpoints/" + a.endpoint.EndpointID
		const invalid, malformed = "request:invalid-field", "request:malformed-json"
		cases := []struct {
			name, method, contentType, body string
			status                          int
			code, target                    string
		}{
			{"creation without Content-Type", "POST", "-", `{"url":"https://example.com/x"}`, 415, "request:unsupported-media-type", "Content-Type"},
			{"creation as text/plain", "POST", "text/plain", `{"url":"https://example.com/x"}`, 415, "request:unsupported-media-type", "Content-Type"},
			{"creation over 64 KiB", "POST", "", `{"url":"https://example.com/` + strings.Repeat("a", 64<<10) + `"}`, 413, "request:body-too-large", ""},
			{"creation with an empty body", "POST", "", ``, 400, malformed, ""},
			{"creation with a repeated member", "POST", "", `{"url":"https://example.com/x","url":"https://example.com/y"}`, 400, malformed, ""},
			{"creation with a number for an event type", "POST", "", `{"url":"https://example.com/x","eventTypes":[5]}`, 400, invalid, "eventTypes[0]"},
			{"creation with an object for eventTypes", "POST", "", `{"url":"https://example.com/x","eventTypes":{"a":1}}`, 400, invalid, "eventTypes"},
			// A null in the list is no type (the decoder would read it as ""), as a number is not.
			{"creation with null for an event type", "POST", "", `{"url":"https://example.com/x","eventTypes":[null]}`, 400, invalid, "eventTypes[0]"},
			{"creation with trailing data", "POST", "", `{"url":"https://example.com/x"} {}`, 400, malformed, ""},
			{"creation with invalid UTF-8", "POST", "", "{\"url\":\"https://example.com/\xff\"}", 400, malformed, ""},
			{"update without Content-Type", "PATCH", "-", `{"state":"disabled"}`, 415, "request:unsupported-media-type", "Content-Type"},
			{"update as text/plain", "PATCH", "text/plain", `{"state":"disabled"}`, 415, "request:unsupported-media-type", "Content-Type"},
			{"update as a merge patch", "PATCH", "application/merge-patch+json", `{"state":"disabled"}`, 415, "request:unsupported-media-type", "Content-Type"},
			{"update over 64 KiB", "PATCH", "", `{"url":"https://example.com/` + strings.Repeat("a", 64<<10) + `"}`, 413, "request:body-too-large", ""},
			{"update with malformed JSON", "PATCH", "", `{"state":`, 400, malformed, ""},
			{"update with an empty body", "PATCH", "", ``, 400, malformed, ""},
			{"update cut short after an unknown member", "PATCH", "", `{"state":"disabled","colour":`, 400, malformed, ""},
			{"update cut short after a member of the wrong type", "PATCH", "", `{"url":5,`, 400, malformed, ""},
			{"update with an array", "PATCH", "", `[{"state":"disabled"}]`, 400, malformed, ""},
			{"update with a repeated member", "PATCH", "", `{"state":"disabled","state":"enabled"}`, 400, malformed, ""},
			{"update with a number for url", "PATCH", "", `{"url":5}`, 400, invalid, "url"},
			{"update with a boolean for state", "PATCH", "", `{"state":true}`, 400, invalid, "state"},
			{"update with a string for eventTypes", "PATCH", "", `{"eventTypes":"customer.linked"}`, 400, invalid, "eventTypes"},
			{"update with a number for an event type", "PATCH", "", `{"eventTypes":["customer.linked",7]}`, 400, invalid, "eventTypes[1]"},
			{"update with null for an event type", "PATCH", "", `{"eventTypes":["customer.linked",null]}`, 400, invalid, "eventTypes[1]"},
			{"update with trailing data", "PATCH", "", `{"state":"disabled"}x`, 400, malformed, ""},
			{"update with invalid UTF-8", "PATCH", "", "{\"url\":\"https://example.com/\xff\"}", 400, malformed, ""},
			{"update with an unknown member beside a valid one", "PATCH", "", `{"state":"disabled","colour":"red"}`, 400, "request:unknown-field", "colour"},
			// A deletion takes no member: one sent expecting it checked is refused, and nothing
			// is deleted.
			{"deletion with a member", "DELETE", "", `{"x":1}`, 400, "request:unknown-field", "x"},
			{"deletion with malformed JSON", "DELETE", "", `{"x":`, 400, malformed, ""},
			{"deletion of a body as text/plain", "DELETE", "text/plain", `{}`, 415, "request:unsupported-media-type", "Content-Type"},
			{"deletion of a body without Content-Type", "DELETE", "-", `{}`, 415, "request:unsupported-media-type", "Content-Type"},
			{"deletion over 64 KiB", "DELETE", "", `{"x":"` + strings.Repeat("a", 64<<10) + `"}`, 413, "request:body-too-large", ""},
		}
		before := a.state(t)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				p := "/webhook-endpoints"
				if tc.method != "POST" {
					p = path
				}
				r := a.do(t, tc.method, p, tc.body, "Content-Type", orJSON(tc.contentType))
				before = a.unchanged(t, before)
				wantEnvelope(t, r, tc.status, tc.code, tc.target)
			})
		}
	}, apptest.Options{SettlementDelay: time.Hour})
}

// auditRoute is one /billing/ route, called with a body that it would act on.
type auditRoute struct {
	method, path string
	body         any
}

func (a *auditSite) routes() []auditRoute {
	base := "/webhook-endpoints/" + a.endpoint.EndpointID
	return []auditRoute{
		{http.MethodPost, "/customers/invitations", map[string]string{"customerReference": "C-NEW"}},
		{http.MethodGet, "/customers", nil},
		{http.MethodGet, "/customers/C-INV", nil},
		{http.MethodPost, "/customers/C-INV/revoke", nil},
		{http.MethodPost, "/customers/C-LINKED/revoke", nil},
		{http.MethodPost, "/sandbox/customers/C-INV/signup", nil},
		{http.MethodPost, "/sandbox/customers/C-LINKED/customer-revocation", nil},
		{http.MethodPost, "/batches", batchRequest("B-NEW", debit{"R0", "C-LINKED", 100})},
		{http.MethodGet, "/batches", nil},
		{http.MethodGet, "/batches/B-OPEN", nil},
		{http.MethodPost, "/sandbox/batches/B-OPEN/deadline", nil},
		{http.MethodGet, "/events", nil},
		{http.MethodPost, "/webhook-endpoints", map[string]string{"url": "https://example.com/new"}},
		{http.MethodGet, "/webhook-endpoints", nil},
		{http.MethodGet, base, nil},
		{http.MethodPatch, base, map[string]string{"state": "disabled"}},
		{http.MethodDelete, base, nil},
		{http.MethodPost, base + "/secret-rotation", nil},
		{http.MethodGet, base + "/deliveries", nil},
		{http.MethodPost, base + "/deliveries/" + a.delivery + "/retry", nil},
		{http.MethodPost, "/sandbox/webhook-endpoints/" + a.endpoint.EndpointID + "/test", nil},
	}
}

// Every /billing/ route refuses a forged or expired access token, and a token of another kind,
// with 401 auth:invalid-token and its challenge, and acts on nothing.
func TestForgedAndExpiredAccessTokensOnEveryRoute(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		a := newAuditSite(t, s)
		caller := billing.Caller{ClientID: a.p.ClientID, OrganisationID: a.p.Organisation.ID, Scopes: billing.AllScopes}
		mint := func(i *token.Issuer, ttl time.Duration) string {
			tok, _, err := i.Access(caller, ttl)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		otherKey := token.NewIssuer(billing.SigningKey{ID: "key_other", Secret: []byte(billing.RandomToken(32))}, s.Clock.Now)
		sameKid := token.NewIssuer(billing.SigningKey{ID: s.Tokens.KeyID(), Secret: []byte(billing.RandomToken(32))}, s.Clock.Now)
		good := mint(s.Tokens, time.Hour)
		parts := strings.Split(good, ".")
		enc := base64.RawURLEncoding.EncodeToString
		algNone := enc([]byte(`{"alg":"none","typ":"JWT","kid":"`+s.Tokens.KeyID()+`"}`)) + "." + parts[1] + "."
		linked, err := s.Service.Link(context.Background(), billing.Site{ID: a.site}, "C-LINKED")
		if err != nil {
			t.Fatal(err)
		}
		agreement, err := s.Tokens.Agreement(linked)
		if err != nil {
			t.Fatal(err)
		}
		invited, err := s.Service.Link(context.Background(), billing.Site{ID: a.site}, "C-INV")
		if err != nil {
			t.Fatal(err)
		}
		signup, err := s.Tokens.Signup(invited)
		if err != nil {
			t.Fatal(err)
		}
		tokens := []struct {
			name, token string
			expired     bool // the message says the token expired
		}{
			{"a token signed by another key", mint(otherKey, time.Hour), false},
			{"a token naming the server's key but signed by another secret", mint(sameKid, time.Hour), false},
			{"an unsigned token (alg none)", algNone, false},
			{"a genuine token with its signature cut", parts[0] + "." + parts[1] + ".", false},
			{"a genuine expired token", mint(s.Tokens, -time.Minute), true},
			{"an expired token signed by another key", mint(otherKey, -time.Minute), false},
			{"a signup token", signup, false},
			{"an agreement token", agreement, false},
		}
		before := a.state(t)
		for _, tk := range tokens {
			for _, rt := range a.routes() {
				t.Run(tk.name+" on "+rt.method+" "+rt.path, func(t *testing.T) {
					r := s.Do(t, apptest.Request{Method: rt.method, Path: "/billing/sites/" + a.site + rt.path, Token: tk.token, Body: rt.body})
					e := wantEnvelope(t, r, http.StatusUnauthorized, "auth:invalid-token", "Authorization")
					if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="pyng", error="invalid_token"` {
						t.Errorf("WWW-Authenticate = %q", got)
					}
					if says := strings.Contains(e.DisplayMessage, "expired"); says != tk.expired {
						t.Errorf("message %q: says expired %v, want %v", e.DisplayMessage, says, tk.expired)
					}
				})
			}
		}
		a.unchanged(t, before)
	}, apptest.Options{SettlementDelay: time.Hour})
}

// A query string that does not decode is refused naming the parameter on the routes the existing
// test leaves out (events, webhook endpoints, deliveries, and actions), before they act.
func TestMalformedQueryStringsOnEventAndWebhookRoutes(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		a := newAuditSite(t, s)
		base := "/webhook-endpoints/" + a.endpoint.EndpointID
		cases := []struct {
			method, path string
			body         any
			target       string
		}{
			{http.MethodGet, "/events?limit=%zz", nil, "limit"},
			{http.MethodGet, "/events?after=%", nil, "after"},
			{http.MethodGet, "/events?type=customer.linked;after=x", nil, "type"},
			{http.MethodGet, "/webhook-endpoints?x=%zz", nil, "x"},
			{http.MethodGet, base + "?%zz", nil, "%zz"},
			{http.MethodGet, base + "/deliveries?cursor=%%%", nil, "cursor"},
			{http.MethodGet, base + "/deliveries?limit=1;cursor=x", nil, "limit"},
			{http.MethodPost, "/webhook-endpoints?x=%zz", map[string]string{"url": "https://example.com/new"}, "x"},
			{http.MethodPatch, base + "?x=%zz", map[string]string{"state": "disabled"}, "x"},
			{http.MethodDelete, base + "?x=%zz", nil, "x"},
			{http.MethodPost, base + "/secret-rotation?x=%zz", nil, "x"},
			{http.MethodPost, base + "/deliveries/" + a.delivery + "/retry?x=%zz", nil, "x"},
			{http.MethodPost, "/sandbox/webhook-endpoints/" + a.endpoint.EndpointID + "/test?x=%zz", nil, "x"},
			{http.MethodPost, "/customers/C-INV/revoke?x=%zz", nil, "x"},
			{http.MethodPost, "/sandbox/customers/C-INV/signup?x=%zz", nil, "x"},
			{http.MethodPost, "/sandbox/customers/C-LINKED/customer-revocation?x=%zz", nil, "x"},
			{http.MethodPost, "/sandbox/batches/B-OPEN/deadline?x=%zz", nil, "x"},
			{http.MethodPost, "/batches?x=%zz", batchRequest("B-NEW", debit{"R0", "C-LINKED", 100}), "x"},
		}
		before := a.state(t)
		for _, tc := range cases {
			t.Run(tc.method+" "+tc.path, func(t *testing.T) {
				wantEnvelope(t, a.do(t, tc.method, tc.path, tc.body), http.StatusBadRequest, "request:invalid-field", tc.target)
			})
		}
		time.Sleep(100 * time.Millisecond)
		a.unchanged(t, before)
	}, apptest.Options{SettlementDelay: time.Hour})
}

// References in the path that name nothing of the caller's are 404 naming the parameter, on the
// routes whose tests leave them out, and change nothing.
func TestUnknownPathReferencesChangeNothing(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		a := newAuditSite(t, s)
		base := "/webhook-endpoints/" + a.endpoint.EndpointID
		const missing = "whe_unknown"
		cases := []struct {
			method, path string
			body         any
			code, target string
		}{
			{http.MethodPatch, "/webhook-endpoints/" + missing, map[string]string{"state": "disabled"}, "webhook-endpoint:not-found", "endpointId"},
			{http.MethodPost, "/webhook-endpoints/" + missing + "/secret-rotation", nil, "webhook-endpoint:not-found", "endpointId"},
			{http.MethodGet, "/webhook-endpoints/" + missing + "/deliveries", nil, "webhook-endpoint:not-found", "endpointId"},
			{http.MethodPost, "/webhook-endpoints/" + missing + "/deliveries/" + a.delivery + "/retry", nil, "webhook-endpoint:not-found", "endpointId"},
			{http.MethodPost, "/sandbox/webhook-endpoints/" + missing + "/test", nil, "webhook-endpoint:not-found", "endpointId"},
			{http.MethodPost, base + "/deliveries/dlv_unknown/retry", nil, "webhook-delivery:not-found", "deliveryId"},
			{http.MethodPost, "/customers/" + strings.Repeat("C", 65) + "/revoke", nil, "customer-link:not-found", "customerReference"},
			{http.MethodPost, "/sandbox/customers/C-NOBODY/customer-revocation", nil, "customer-link:not-found", "customerReference"},
			{http.MethodGet, "/batches/" + strings.Repeat("B", 65), nil, "batch:not-found", "batchReference"},
		}
		before := a.state(t)
		for _, tc := range cases {
			t.Run(tc.method+" "+tc.path, func(t *testing.T) {
				wantEnvelope(t, a.do(t, tc.method, tc.path, tc.body), http.StatusNotFound, tc.code, tc.target)
			})
		}
		time.Sleep(100 * time.Millisecond)
		a.unchanged(t, before)
	}, apptest.Options{SettlementDelay: time.Hour})
}

// The token endpoint refuses forms it cannot read with RFC 6749's invalid_request, in RFC 6749's
// shape (not the API's envelope), uncached.
func TestTokenEndpointRefusesUnreadableForms(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		creds := "grant_type=client_credentials&client_id=" + s.ClientID + "&client_secret=" + s.ClientSecret
		var gzipped bytes.Buffer
		zw := gzip.NewWriter(&gzipped)
		if _, err := zw.Write([]byte(creds)); err != nil || zw.Close() != nil {
			t.Fatal(err)
		}
		const uncompressed = "Send the form uncompressed, without Content-Encoding: the token endpoint reads no content coding."
		cases := []struct {
			name, contentType, body string
			description             string // "" for any
			encoding                string // Content-Encoding, when set
		}{
			{"a form compressed with gzip", "application/x-www-form-urlencoded", gzipped.String(), uncompressed, "gzip"},
			{"a plain form that claims gzip", "application/x-www-form-urlencoded", creds, uncompressed, "gzip"},
			{"a plain form that claims identity, then br", "application/x-www-form-urlencoded", creds, uncompressed, "identity, br"},
			{"a form over 64 KiB", "application/x-www-form-urlencoded", creds + "&pad=" + strings.Repeat("a", 64<<10), "The request body must not exceed 64 KiB.", ""},
			{"a form with a bad escape", "application/x-www-form-urlencoded", creds + "&scope=%zz", "The request body is not a valid form.", ""},
			{"a form with a semicolon separator", "application/x-www-form-urlencoded", creds + ";scope=x", "The request body is not a valid form.", ""},
			{"no Content-Type", "-", creds, "", ""},
			{"text/plain", "text/plain", creds, "", ""},
			{"multipart/form-data", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--x--\r\n", "", ""},
			{"JSON", "application/json", `{"grant_type":"client_credentials","client_id":"` + s.ClientID + `","client_secret":"` + s.ClientSecret + `"}`, "", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				header := []string{"Content-Type", tc.contentType}
				if tc.encoding != "" {
					header = append(header, "Content-Encoding", tc.encoding)
				}
				r := tokenRequest(t, s, tc.body, header...)
				wantStatus(t, r, http.StatusBadRequest)
				var body map[string]any
				r.JSON(t, &body)
				if body["error"] != "invalid_request" || body["error_description"] == "" || body["errors"] != nil || body["access_token"] != nil {
					t.Errorf("body = %s, want RFC 6749 invalid_request", r.Body)
				}
				if tc.description != "" && body["error_description"] != tc.description {
					t.Errorf("error_description = %q, want %q", body["error_description"], tc.description)
				}
				if r.Header.Get("Cache-Control") != "no-store" {
					t.Errorf("Cache-Control = %q, want no-store", r.Header.Get("Cache-Control"))
				}
			})
		}
	})
}

// The customer pages that take a token, a form or a path parameter are in the OpenAPI document,
// as /signup, /agreement and POST /agreement/revoke are: the validating client fails a test on
// an answer to an operation the document does not describe.
func TestCustomerPagesTakingInputAreDocumented(t *testing.T) {
	s := apptest.Start(t, "sqlite")
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for _, r := range []apptest.Request{
		{Method: http.MethodGet, Path: "/agreement/revoke"},
		{Method: http.MethodGet, Path: "/agreement/revoke?token=forged"},
		{Method: http.MethodPost, Path: "/agreement/email-link", Body: "token=forged&email=a%40example.com", Header: form},
		{Method: http.MethodGet, Path: "/service-agreement/site_nope"},
		{Method: http.MethodGet, Path: "/agreement/service-agreement?token=forged"},
	} {
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			if got := s.Do(t, r); got.Status < 400 || got.Status >= 500 {
				t.Errorf("status %d, want the page's refusal", got.Status)
			}
		})
	}
}

// A query parameter a route does not take is refused naming it, on every /billing/ route, before
// the route acts: a misspelt ?limt=5 is not answered with the default page. A malformed one is
// reported first, wherever it stands.
func TestUnknownQueryParametersAreRefused(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		a := newAuditSite(t, s)
		before := a.state(t)
		for _, rt := range a.routes() {
			t.Run(rt.method+" "+rt.path, func(t *testing.T) {
				e := wantEnvelope(t, a.do(t, rt.method, rt.path+"?limt=5", rt.body), http.StatusBadRequest, "request:unknown-field", "limt")
				if !strings.Contains(e.DisplayMessage, "limt") {
					t.Errorf("message %q does not name the parameter", e.DisplayMessage)
				}
				wantEnvelope(t, a.do(t, rt.method, rt.path+"?limt=5&x=%zz", rt.body), http.StatusBadRequest, "request:invalid-field", "x")
			})
		}
		time.Sleep(100 * time.Millisecond) // time for a retry or a test event that should not be sent
		a.unchanged(t, before)
		for _, ok := range []string{"/customers?limit=1&state=linked", "/batches?limit=1", "/batches/B-OPEN?rowState=pending",
			"/events?limit=1&type=customer.invited", "/webhook-endpoints/" + a.endpoint.EndpointID + "/deliveries?limit=1"} {
			if r := a.do(t, http.MethodGet, ok, nil); r.Status != http.StatusOK {
				t.Errorf("GET %s: %d %s, want 200", ok, r.Status, r.Body)
			}
		}
	}, apptest.Options{SettlementDelay: time.Hour})
}

// A name the client sent that is refused is quoted cut to billing.MaxQuoted bytes, in the target
// and the message, wherever it stands: a query parameter that is not well-formed, a metadata key
// that is too long. Long names make no long answers, and the request changes nothing.
func TestLongNamesAreQuotedCutInErrors(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		long := strings.Repeat("k", 50000)
		quoted := strings.Repeat("k", billing.MaxQuoted) + "…"
		cases := []struct {
			name         string
			method, path string
			body         any
			code, target string
		}{
			{"a query parameter that is not well-formed", http.MethodGet, "/customers?" + long + "=%zz", nil, "request:invalid-field", quoted},
			{"an unknown query parameter", http.MethodGet, "/customers?" + long + "=1", nil, "request:unknown-field", quoted},
			{"a metadata key too long", http.MethodPost, "/customers/invitations",
				map[string]any{"customerReference": "LONG-1", "metadata": map[string]string{long: "x"}}, "request:invalid-field", "metadata." + quoted},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := p.do(t, tc.method, tc.path, tc.body)
				e := wantEnvelope(t, r, http.StatusBadRequest, tc.code, tc.target)
				if len(r.Body) > 1024 || strings.Contains(e.DisplayMessage, strings.Repeat("k", billing.MaxQuoted+1)) {
					t.Errorf("a %d-character name was answered in %d bytes: %q", len(long), len(r.Body), e.DisplayMessage)
				}
			})
		}
		wantStatus(t, p.get(t, "LONG-1"), http.StatusNotFound)
	})
}

// A query parameter a route takes, given more than once, is refused naming it and saying so, not
// that its value is out of range or unknown (?limit=1&limit=1 has a limit in range, twice).
func TestRepeatedQueryParametersAreSaidToBeRepeated(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		a := newAuditSite(t, s)
		before := a.state(t)
		base := "/webhook-endpoints/" + a.endpoint.EndpointID
		for _, tc := range []struct{ path, target string }{
			{"/customers?limit=1&limit=1", "limit"},
			{"/customers?state=linked&limit=5&state=linked", "state"},
			{"/batches?limit=2&limit=3", "limit"},
			{"/batches/B-OPEN?rowState=pending&rowState=pending", "rowState"},
			{"/events?type=customer.invited&type=customer.invited", "type"},
			{"/events?limit=1&limit=1", "limit"},
			{base + "/deliveries?limit=1&limit=1", "limit"},
		} {
			t.Run(tc.path, func(t *testing.T) {
				e := wantEnvelope(t, a.do(t, http.MethodGet, tc.path, nil), http.StatusBadRequest, "request:invalid-field", tc.target)
				if want := "The query parameter " + tc.target + " is given more than once; give it once."; e.DisplayMessage != want {
					t.Errorf("message %q, want %q", e.DisplayMessage, want)
				}
			})
		}
		// An unknown parameter is still the problem named first, and a malformed one before both.
		wantEnvelope(t, a.do(t, http.MethodGet, "/customers?limit=1&limit=1&limt=2", nil), http.StatusBadRequest, "request:unknown-field", "limt")
		wantEnvelope(t, a.do(t, http.MethodGet, "/customers?limit=1&limit=1&x=%zz", nil), http.StatusBadRequest, "request:invalid-field", "x")
		a.unchanged(t, before)
	}, apptest.Options{SettlementDelay: time.Hour})
}

// A query parameter without a name (?=5) is refused as not well-formed, with a message that does
// not quote an empty name, and no target.
func TestQueryParameterWithoutANameIsNotWellFormed(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		for _, query := range []string{"=5", "limit=1&=", "%3D=1&=x"} {
			r := p.do(t, http.MethodGet, "/customers?"+query, nil)
			e := wantEnvelope(t, r, http.StatusBadRequest, "request:invalid-field", "")
			if want := "A query parameter has no name: write each one as name=value, separated by &."; e.DisplayMessage != want {
				t.Errorf("?%s: message %q, want %q", query, e.DisplayMessage, want)
			}
		}
	})
}

// A webhook URL holding a character a URL may not hold as it is (a space, a control character,
// < > " \ { } | ^ `, an invisible one) or a % that starts no percent-encoding is refused naming
// url, with the character and its encoding, on creation and on update, and nothing changes: it
// is not stored as typed and sent as something else. The same URL percent-encoded is taken as
// it is written.
func TestWebhookURLsWithCharactersAURLMayNotHoldAreRefused(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		a := newAuditSite(t, s)
		before := a.state(t)
		const space = "The webhook URL must not hold a space as it is: percent-encode it as %20."
		const percent = "The webhook URL has a % that starts no percent-encoding (such as %20): write a % itself as %25."
		for _, tc := range []struct{ url, message string }{
			{"https://example.com/a b", space},
			{"https://example.com/x?q=a b", space},
			{"https://exa mple.com/", space},
			{"https://example.com/a\tb", `The webhook URL must not hold "\t" as it is: percent-encode it as %09.`},
			{"https://example.com/a\x7fb", `The webhook URL must not hold "\x7f" as it is: percent-encode it as %7F.`},
			{"https://example.com/<a>", `The webhook URL must not hold "<" as it is: percent-encode it as %3C.`},
			{"https://example.com/a>", `The webhook URL must not hold ">" as it is: percent-encode it as %3E.`},
			{`https://example.com/a"b`, `The webhook URL must not hold "\"" as it is: percent-encode it as %22.`},
			{`https://example.com/a\b`, `The webhook URL must not hold "\\" as it is: percent-encode it as %5C.`},
			{"https://example.com/{a}", `The webhook URL must not hold "{" as it is: percent-encode it as %7B.`},
			{"https://example.com/a}", `The webhook URL must not hold "}" as it is: percent-encode it as %7D.`},
			{"https://example.com/a|b", `The webhook URL must not hold "|" as it is: percent-encode it as %7C.`},
			{"https://example.com/a^b", `The webhook URL must not hold "^" as it is: percent-encode it as %5E.`},
			{"https://example.com/a`b", "The webhook URL must not hold \"`\" as it is: percent-encode it as %60."},
			{"https://example.com/a\u00a0b", `The webhook URL must not hold "\u00a0" as it is: percent-encode it as %C2%A0.`},
			{"https://example.com/a\u200bb", `The webhook URL must not hold "\u200b" as it is: percent-encode it as %E2%80%8B.`},
			{"https://example.com/x?q=%zz", percent},
			{"https://example.com/x?q=100%", percent},
		} {
			body := map[string]string{"url": tc.url}
			e := wantEnvelope(t, a.do(t, http.MethodPost, "/webhook-endpoints", body), http.StatusBadRequest,
				"webhook-endpoint:invalid-url", "url")
			if e.DisplayMessage != tc.message {
				t.Errorf("POST %q: message %q, want %q", tc.url, e.DisplayMessage, tc.message)
			}
			wantEnvelope(t, a.do(t, http.MethodPatch, "/webhook-endpoints/"+a.endpoint.EndpointID, body),
				http.StatusBadRequest, "webhook-endpoint:invalid-url", "url")
		}
		a.unchanged(t, before)

		for _, u := range []string{"https://example.com/a%20b?q=%7Bx%7D&r=50%25", "https://example.com/café"} {
			if e := a.createEndpoint(t, map[string]string{"url": u}); e.URL != u {
				t.Errorf("POST %q: url %q, want it as written", u, e.URL)
			}
		}
	}, apptest.Options{SettlementDelay: time.Hour})
}

// A webhook URL whose host name no resolver can look up (an empty label, a label starting or
// ending with a hyphen, a wildcard) is refused when it is given, naming url, whether an endpoint
// is created or changed, and nothing changes: it is not taken to fail every delivery until the
// endpoint is disabled.
func TestWebhookURLsOfHostNamesThatCannotResolveAreRefused(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		a := newAuditSite(t, s)
		before := a.state(t)
		for _, u := range []string{"https://hooks..example.com/pyng", "https://-hooks.example.com/pyng", "https://hooks-.example.com/pyng",
			"https://*.example.com/pyng"} {
			e := wantEnvelope(t, a.do(t, http.MethodPost, "/webhook-endpoints", map[string]string{"url": u}), http.StatusBadRequest,
				"webhook-endpoint:invalid-url", "url")
			if e.DisplayMessage != "The webhook URL has an invalid host name." {
				t.Errorf("POST %s: message %q", u, e.DisplayMessage)
			}
			wantEnvelope(t, a.do(t, http.MethodPatch, "/webhook-endpoints/"+a.endpoint.EndpointID, map[string]string{"url": u}),
				http.StatusBadRequest, "webhook-endpoint:invalid-url", "url")
		}
		a.unchanged(t, before)
	}, apptest.Options{SettlementDelay: time.Hour})
}

// Every route that reads a body refuses one in a content coding (a compressed body), which it
// cannot read, with 415 naming Content-Encoding and saying it reads only identity, rather than
// reading the compressed bytes as JSON (a misleading malformed-json at byte 0), or a plain body
// that claims a coding as if it had none; and nothing changes.
func TestBodiesInAContentCodingAreRefused(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		a := newAuditSite(t, s)
		before := a.state(t)
		for _, rt := range a.routes() {
			if rt.method == http.MethodGet {
				continue
			}
			plain := []byte("{}")
			if rt.body != nil {
				var err error
				if plain, err = json.Marshal(rt.body); err != nil {
					t.Fatal(err)
				}
			}
			var zipped bytes.Buffer
			zw := gzip.NewWriter(&zipped)
			if _, err := zw.Write(plain); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name, coding string
				body         []byte
			}{
				{"a gzip body", "gzip", zipped.Bytes()},
				{"a plain body said to be gzip", "gzip", plain},
				{"a body in a coding named in capitals", "GZIP", zipped.Bytes()},
				{"a body in two codings", "gzip, br", zipped.Bytes()},
			} {
				t.Run(tc.name+" to "+rt.method+" "+rt.path, func(t *testing.T) {
					r := a.do(t, rt.method, rt.path, tc.body, "Content-Type", "application/json", "Content-Encoding", tc.coding)
					wantEnvelope(t, r, http.StatusUnsupportedMediaType, "request:unsupported-media-type", "Content-Encoding")
					if got := r.Header.Get("Accept-Encoding"); got != "identity" {
						t.Errorf("Accept-Encoding = %q, want identity (RFC 9110 §12.5.3)", got)
					}
				})
			}
		}
		a.unchanged(t, before)
		// identity is no coding: the body is read.
		r := a.do(t, http.MethodPost, "/customers/invitations", `{"customerReference":"C-IDENTITY"}`,
			"Content-Type", "application/json", "Content-Encoding", "identity")
		wantStatus(t, r, http.StatusCreated)
	}, apptest.Options{SettlementDelay: time.Hour})
}
