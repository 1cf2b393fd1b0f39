package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/token"
)

// tokenRequest posts a form to /oauth2/token.
func tokenRequest(t testing.TB, s *apptest.Server, form string, header ...string) *apptest.Response {
	t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	return s.Do(t, apptest.Request{Method: http.MethodPost, Path: "/oauth2/token", Body: form, Header: h})
}

func TestTokenEndpoint(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := s.Partner
		revoked := s.NewPartner(t, billing.AllScopes...)
		if _, err := s.Service.RevokeClient(context.Background(), revoked.ClientID); err != nil {
			t.Fatal(err)
		}
		inviteOnly := s.NewPartner(t, billing.ScopeCustomersInvite)
		creds := "client_id=" + p.ClientID + "&client_secret=" + p.ClientSecret
		all := billing.FormatScopes(billing.AllScopes)
		tests := []struct {
			name      string
			form      string
			header    []string
			status    int
			error     string // RFC 6749 §5.2 code; empty on success
			scope     string // granted scope on success
			challenge string // WWW-Authenticate
		}{
			{name: "client authenticated by HTTP Basic gets a token with all its scopes",
				form: "grant_type=client_credentials", header: []string{"Authorization", basic(p.ClientID, p.ClientSecret)}, status: 200, scope: all},
			{name: "client authenticated by form fields gets a token",
				form: "grant_type=client_credentials&" + creds, status: 200, scope: all},
			{name: "a subset of the client's scopes is granted as asked",
				form: "grant_type=client_credentials&scope=billing%3Acustomers%3Aread+billing%3Acustomers%3Ainvite&" + creds, status: 200,
				scope: "billing:customers:read billing:customers:invite"},
			{name: "an empty scope grants all the client's scopes",
				form: "grant_type=client_credentials&scope=&" + creds, status: 200, scope: all},
			{name: "an unrecognised parameter is ignored (RFC 6749 §3.2), as a client library may send one",
				form: "grant_type=client_credentials&resource=https%3A%2F%2Fsample.pyng.com.au&" + creds, status: 200, scope: all},
			{name: "an empty client_id and client_secret beside HTTP Basic count as omitted (RFC 6749 §3.2)",
				form: "grant_type=client_credentials&client_id=&client_secret=", header: []string{"Authorization", basic(p.ClientID, p.ClientSecret)},
				status: 200, scope: all},
			{name: "Basic and form credentials together are invalid_request",
				form: "grant_type=client_credentials&" + creds, header: []string{"Authorization", basic(p.ClientID, p.ClientSecret)},
				status: 400, error: "invalid_request"},
			{name: "a wrong secret over Basic is invalid_client with a Basic challenge",
				form: "grant_type=client_credentials", header: []string{"Authorization", basic(p.ClientID, "sec_wrong")},
				status: 401, error: "invalid_client", challenge: `Basic realm="pyng"`},
			{name: "a wrong secret in the form is invalid_client",
				form: "grant_type=client_credentials&client_id=" + p.ClientID + "&client_secret=sec_wrong", status: 401, error: "invalid_client", challenge: `Basic realm="pyng"`},
			{name: "an unknown client is invalid_client",
				form: "grant_type=client_credentials", header: []string{"Authorization", basic("cli_unknown", p.ClientSecret)},
				status: 401, error: "invalid_client", challenge: `Basic realm="pyng"`},
			{name: "a revoked client is invalid_client",
				form: "grant_type=client_credentials", header: []string{"Authorization", basic(revoked.ClientID, revoked.ClientSecret)},
				status: 401, error: "invalid_client", challenge: `Basic realm="pyng"`},
			{name: "no client authentication is invalid_client",
				form: "grant_type=client_credentials", status: 401, error: "invalid_client", challenge: `Basic realm="pyng"`},
			{name: "an unknown scope is invalid_scope",
				form: "grant_type=client_credentials&scope=billing%3Aeverything&" + creds, status: 400, error: "invalid_scope"},
			{name: "a scope the client is not granted is invalid_scope",
				form:   "grant_type=client_credentials&scope=billing%3Acustomers%3Aread&client_id=" + inviteOnly.ClientID + "&client_secret=" + inviteOnly.ClientSecret,
				status: 400, error: "invalid_scope"},
			{name: "a missing grant_type is invalid_request",
				form: creds, status: 400, error: "invalid_request"},
			{name: "another grant_type is unsupported_grant_type",
				form: "grant_type=password&" + creds, status: 400, error: "unsupported_grant_type"},
			{name: "a repeated parameter is invalid_request",
				form: "grant_type=client_credentials&grant_type=client_credentials&" + creds, status: 400, error: "invalid_request"},
			{name: "a body that is not a form is invalid_request",
				form: `{"grant_type":"client_credentials"}`, header: []string{"Content-Type", "application/json"}, status: 400, error: "invalid_request"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				r := tokenRequest(t, s, tt.form, tt.header...)
				wantStatus(t, r, tt.status)
				if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
					t.Errorf("Cache-Control = %q, Pragma = %q; want no-store, no-cache", r.Header.Get("Cache-Control"), r.Header.Get("Pragma"))
				}
				if got := r.Header.Get("WWW-Authenticate"); got != tt.challenge {
					t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
				}
				if tt.error != "" {
					var body struct{ Error, ErrorDescription string }
					r.JSON(t, &body)
					if body.Error != tt.error {
						t.Errorf("error = %q, want %q", body.Error, tt.error)
					}
					return
				}
				var body struct {
					AccessToken string `json:"access_token"`
					TokenType   string `json:"token_type"`
					ExpiresIn   int64  `json:"expires_in"`
					Scope       string `json:"scope"`
				}
				r.JSON(t, &body)
				if body.TokenType != "Bearer" || body.ExpiresIn != 3600 || body.Scope != tt.scope || body.AccessToken == "" {
					t.Errorf("token = %+v, want a Bearer token for 3600 s with scope %q", body, tt.scope)
				}
				// The token works.
				r = s.Do(t, apptest.Request{Method: http.MethodGet, Path: "/billing/sites/" + s.Site.ID + "/customers", Token: body.AccessToken})
				wantStatus(t, r, http.StatusOK)
			})
		}
	})
}

func TestTokenFromAnOAuth2ClientLibrary(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		// apptest.Server.Token uses golang.org/x/oauth2/clientcredentials.
		p := partner{s: s, p: s.Partner, token: s.Token(t, s.Partner, billing.ScopeCustomersInvite), site: s.Site.ID}
		wantStatus(t, p.invite(t, "ACME-001"), http.StatusCreated)
		// It asked for the invite scope only.
		wantError(t, p.get(t, "ACME-001"), http.StatusForbidden, "auth:insufficient-scope", "Authorization")
	})
}

func TestBearerToken(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		caller := billing.Caller{ClientID: s.ClientID, OrganisationID: s.Organisation.ID, Scopes: billing.AllScopes}
		other := token.NewIssuer(billing.SigningKey{ID: "key_other", Secret: []byte(billing.RandomToken(32))}, s.Clock.Now)
		forged, _, err := other.Access(caller, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		l, err := s.Service.Invite(context.Background(), s.Site, "ACME-SIGNUP")
		if err != nil {
			t.Fatal(err)
		}
		signup, err := s.Tokens.Signup(l)
		if err != nil {
			t.Fatal(err)
		}
		good := s.Token(t, s.Partner)
		const (
			bare    = `Bearer realm="pyng"`
			invalid = `Bearer realm="pyng", error="invalid_token"`
		)
		tests := []struct {
			name          string
			authorization string // "-" for none
			code          string
			challenge     string
		}{
			{"a missing Authorization header is 401 missing-token", "-", "auth:missing-token", bare},
			{"another scheme is 401 invalid-token", basic(s.ClientID, s.ClientSecret), "auth:invalid-token", invalid},
			{"Bearer without a token is 401 invalid-token", "Bearer ", "auth:invalid-token", invalid},
			{"a token that is not token68 is 401 invalid-token", "Bearer a b", "auth:invalid-token", invalid},
			{"a garbage token is 401 invalid-token", "Bearer garbage", "auth:invalid-token", invalid},
			{"a token signed by another key is 401 invalid-token", "Bearer " + forged, "auth:invalid-token", invalid},
			{"a signup token is not an access token", "Bearer " + signup, "auth:invalid-token", invalid},
			{"a tampered token is 401 invalid-token", "Bearer " + apptest.Tampered(good), "auth:invalid-token", invalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				r := s.Do(t, apptest.Request{Method: http.MethodGet, Path: "/billing/sites/" + s.Site.ID + "/customers",
					Header: map[string]string{"Authorization": tt.authorization}})
				wantError(t, r, http.StatusUnauthorized, tt.code, "Authorization")
				if got := r.Header.Get("WWW-Authenticate"); got != tt.challenge {
					t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
				}
			})
		}

		t.Run("the token of a revoked client is 401 at once when the client cache is off", func(t *testing.T) {
			t.Parallel()
			p := newPartner(t, s)
			wantStatus(t, p.list(t, ""), http.StatusOK)
			if _, err := s.Service.RevokeClient(context.Background(), p.p.ClientID); err != nil {
				t.Fatal(err)
			}
			r := p.list(t, "")
			wantError(t, r, http.StatusUnauthorized, "auth:invalid-token", "Authorization")
			if got := r.Header.Get("WWW-Authenticate"); got != invalid {
				t.Errorf("WWW-Authenticate = %q, want %q", got, invalid)
			}
		})

		scoped := []struct {
			scope          billing.Scope
			method, path   string
			requiredScopes billing.Scope
		}{
			{billing.ScopeCustomersRead, http.MethodPost, "/customers/invitations", billing.ScopeCustomersInvite},
			{billing.ScopeCustomersInvite, http.MethodGet, "/customers", billing.ScopeCustomersRead},
			{billing.ScopeCustomersInvite, http.MethodGet, "/customers/ACME-001", billing.ScopeCustomersRead},
			{billing.ScopeCustomersRead, http.MethodPost, "/customers/ACME-001/revoke", billing.ScopeCustomersRevoke},
			{billing.ScopeCustomersRead, http.MethodPost, "/sandbox/customers/ACME-001/signup", billing.ScopeCustomersInvite},
			{billing.ScopeCustomersInvite, http.MethodPost, "/sandbox/customers/ACME-001/customer-revocation", billing.ScopeCustomersRevoke},
			{billing.ScopeBatchesRead, http.MethodPost, "/batches", billing.ScopeBatchesWrite},
			{billing.ScopeBatchesWrite, http.MethodGet, "/batches", billing.ScopeBatchesRead},
			{billing.ScopeBatchesWrite, http.MethodGet, "/batches/B-1", billing.ScopeBatchesRead},
			{billing.ScopeBatchesRead, http.MethodPost, "/sandbox/batches/B-1/deadline", billing.ScopeBatchesWrite},
		}
		for _, tt := range scoped {
			t.Run("a token without "+string(tt.requiredScopes)+" gets 403 on "+tt.method+" "+tt.path, func(t *testing.T) {
				t.Parallel()
				p := partner{s: s, token: s.Token(t, s.Partner, tt.scope), site: s.Site.ID}
				r := p.do(t, tt.method, tt.path, map[string]string{"customerReference": "ACME-403"})
				wantError(t, r, http.StatusForbidden, "auth:insufficient-scope", "Authorization")
				want := `Bearer realm="pyng", error="insufficient_scope", scope="` + string(tt.requiredScopes) + `"`
				if got := r.Header.Get("WWW-Authenticate"); got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
			})
		}
	})
}

func TestExpiredAccessTokenIsRejected(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		wantStatus(t, p.list(t, ""), http.StatusOK)
		s.Clock.Advance(time.Hour) // the access token lifetime
		r := p.list(t, "")
		e := wantError(t, r, http.StatusUnauthorized, "auth:invalid-token", "Authorization")
		if !strings.Contains(e.DisplayMessage, "expired") {
			t.Errorf("message %q does not say the token expired", e.DisplayMessage)
		}
		if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="pyng", error="invalid_token"` {
			t.Errorf("WWW-Authenticate = %q", got)
		}
		// A new token works.
		p.token = s.Token(t, s.Partner)
		wantStatus(t, p.list(t, ""), http.StatusOK)
	})
}

func TestRevokedClientStopsWithinTheClientCacheLifetime(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		wantStatus(t, p.list(t, ""), http.StatusOK) // the client is cached now
		if _, err := s.Service.RevokeClient(context.Background(), p.p.ClientID); err != nil {
			t.Fatal(err)
		}
		s.Clock.Advance(30*time.Second - time.Millisecond)
		wantStatus(t, p.list(t, ""), http.StatusOK)
		s.Clock.Advance(time.Millisecond) // the cache lifetime has passed on the server's clock
		wantError(t, p.list(t, ""), http.StatusUnauthorized, "auth:invalid-token", "Authorization")
	}, apptest.Options{ClientCacheTTL: 30 * time.Second})
}

func TestRateLimitPerClient(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		// A limit of one request every two seconds allows a burst of one: the second request at
		// once is refused. The buckets fill on the test's clock, which stands still until moved.
		wantStatus(t, p.list(t, ""), http.StatusOK)
		r := p.list(t, "")
		wantError(t, r, http.StatusTooManyRequests, "request:rate-limited", "")
		if got := r.Header.Get("Retry-After"); got != "2" {
			t.Errorf("Retry-After = %q, want the 2 seconds until a request is allowed", got)
		}
		// A refused invitation is not minted.
		wantError(t, p.invite(t, "ACME-001"), http.StatusTooManyRequests, "request:rate-limited", "")
		// Each client has its own bucket.
		other := newPartner(t, s)
		wantStatus(t, other.list(t, ""), http.StatusOK)
		// Refused requests take nothing from the bucket: two seconds on there is room again.
		s.Clock.Advance(2 * time.Second)
		if page := p.mustList(t, ""); len(page.Data) != 0 {
			t.Errorf("customers = %+v, want none: the refused invitation changed nothing", page.Data)
		}
	}, apptest.Options{RateLimit: 0.5})
}

func TestAPIVersionAndCheckOrder(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		anon := partner{s: s, site: s.Site.ID}
		missingSite := partner{s: s, token: p.token, site: "site_doesnotexist"}
		tests := []struct {
			name    string
			p       partner
			version string
			status  int
			code    string
			target  string
		}{
			{"a missing Pyng-Api-Version is 400 invalid-api-version", p, "-", 400, "request:invalid-api-version", "Pyng-Api-Version"},
			{"an unknown Pyng-Api-Version is 400 invalid-api-version", p, "urn:pyng:api:billing:version:v2", 400, "request:invalid-api-version", "Pyng-Api-Version"},
			{"authentication comes before the version", anon, "-", 401, "auth:missing-token", "Authorization"},
			{"the version comes before the site", missingSite, "-", 400, "request:invalid-api-version", "Pyng-Api-Version"},
			{"with a good version the missing site is 404", missingSite, apptest.APIVersion, 404, "site:not-found", "siteId"},
		}
		t.Run("rules", func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					for _, ep := range []struct {
						method, path string
						body         any
					}{
						{http.MethodGet, "/customers", nil},
						{http.MethodPost, "/customers/invitations", map[string]string{"customerReference": "ACME-VERSION"}},
						{http.MethodGet, "/customers/ACME-VERSION", nil},
						{http.MethodPost, "/customers/ACME-VERSION/revoke", nil},
						{http.MethodPost, "/sandbox/customers/ACME-VERSION/signup", nil},
						{http.MethodPost, "/batches", batchRequest("B-VERSION", debit{"R0", "ACME-VERSION", 100})},
						{http.MethodPost, "/batches", map[string]any{"batchReference": "", "colour": "red"}},
						{http.MethodGet, "/batches", nil},
						{http.MethodGet, "/batches?cursor=!!!", nil},
						{http.MethodGet, "/batches/B-VERSION", nil},
						{http.MethodGet, "/batches/B-VERSION?rowState=done", nil},
					} {
						r := tt.p.do(t, ep.method, ep.path, ep.body, "Pyng-Api-Version", tt.version)
						wantError(t, r, tt.status, tt.code, tt.target)
					}
				})
			}
		})
		// Nothing was invited or submitted by the refused requests.
		if pg := p.mustList(t, ""); len(pg.Data) != 0 {
			t.Errorf("customers = %v, want none", refs(pg.Data))
		}
		if pg := p.mustListBatches(t, ""); len(pg.Data) != 0 {
			t.Errorf("batches = %v, want none", batchRefs(pg.Data))
		}
	})
}

func TestSiteOfAnotherOrganisationLooksMissing(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		other := newPartner(t, s)
		other.mustInvite(t, "ACME-001")
		other.mustSubmit(t, batchRequest("B-1", debit{"R0", "ACME-001", 100}))
		hook := other.createEndpoint(t, map[string]any{"url": "https://example.com/theirs", "eventTypes": []string{"debit.returned"}})
		theirEndpoint := "/webhook-endpoints/" + hook.EndpointID
		theirs := partner{s: s, token: p.token, site: other.site}
		missing := partner{s: s, token: p.token, site: "site_doesnotexist"}
		for _, ep := range []struct {
			name, method, path string
			body               any
		}{
			{"invite", http.MethodPost, "/customers/invitations", map[string]string{"customerReference": "ACME-001"}},
			{"list", http.MethodGet, "/customers", nil},
			{"get", http.MethodGet, "/customers/ACME-001", nil},
			{"revoke", http.MethodPost, "/customers/ACME-001/revoke", nil},
			{"sandbox signup", http.MethodPost, "/sandbox/customers/ACME-001/signup", nil},
			{"sandbox customer revocation", http.MethodPost, "/sandbox/customers/ACME-001/customer-revocation", nil},
			{"submit batch", http.MethodPost, "/batches", batchRequest("B-1", debit{"R0", "ACME-001", 100})},
			{"submit invalid batch", http.MethodPost, "/batches", batchRequest("", debit{"R0", "ACME-001", 0})},
			{"list batches", http.MethodGet, "/batches", nil},
			{"get batch", http.MethodGet, "/batches/B-1", nil},
			{"get batch rows in a state", http.MethodGet, "/batches/B-1?rowState=failed", nil},
			{"list events", http.MethodGet, "/events", nil},
			{"list webhook endpoints", http.MethodGet, "/webhook-endpoints", nil},
			{"add a webhook endpoint", http.MethodPost, "/webhook-endpoints", map[string]string{"url": "https://example.com/steal"}},
			{"get a webhook endpoint", http.MethodGet, theirEndpoint, nil},
			{"change a webhook endpoint", http.MethodPatch, theirEndpoint, map[string]string{"url": "https://example.com/steal"}},
			{"delete a webhook endpoint", http.MethodDelete, theirEndpoint, nil},
			{"rotate a webhook secret", http.MethodPost, theirEndpoint + "/secret-rotation", nil},
			{"list deliveries", http.MethodGet, theirEndpoint + "/deliveries", nil},
			{"retry a delivery", http.MethodPost, theirEndpoint + "/deliveries/dlv_0/retry", nil},
			{"sandbox webhook test", http.MethodPost, "/sandbox/webhook-endpoints/" + hook.EndpointID + "/test", nil},
			{"sandbox deadline", http.MethodPost, "/sandbox/batches/B-1/deadline", nil},
		} {
			t.Run(ep.name, func(t *testing.T) {
				a := wantError(t, theirs.do(t, ep.method, ep.path, ep.body), http.StatusNotFound, "site:not-found", "siteId")
				b := wantError(t, missing.do(t, ep.method, ep.path, ep.body), http.StatusNotFound, "site:not-found", "siteId")
				if a != b {
					t.Errorf("another organisation's site answers %+v, a missing site %+v: they must be the same", a, b)
				}
			})
		}
		if l := other.mustGet(t, "ACME-001"); l.State != "invited" {
			t.Errorf("the other organisation's customer is %s, want invited", l.State)
		}
		if b := other.mustGetBatch(t, "B-1", ""); b.TotalAmount != 100 {
			t.Errorf("the other organisation's batch = %+v", b)
		}
		if eps := other.endpoints(t); len(eps) != 1 || eps[0].URL != hook.URL || eps[0].State != "enabled" {
			t.Errorf("the other organisation's webhook endpoints = %+v, want its one as it made it", eps)
		}
		if r := other.do(t, http.MethodGet, theirEndpoint+"/deliveries", nil); r.Status != http.StatusOK || len(dataOf[[]json.RawMessage](t, r)) != 0 {
			t.Errorf("the other organisation's endpoint has deliveries: %d %s", r.Status, r.Body)
		}
	})
}

// A Pyng-Api-Version header sent twice, even with the supported version both times, is refused
// saying so, not that the version is unsupported, and changes nothing.
func TestAPIVersionSentTwiceIsSaidSo(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		for _, second := range []string{apptest.APIVersion, "urn:pyng:api:billing:version:v2"} {
			req, err := http.NewRequest(http.MethodPost, s.URL+"/billing/sites/"+p.site+"/customers/invitations",
				strings.NewReader(`{"customerReference":"ACME-TWICE"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+p.token)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Add("Pyng-Api-Version", apptest.APIVersion)
			req.Header.Add("Pyng-Api-Version", second)
			resp, err := s.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body errorBody
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			want := "The Pyng-Api-Version header was sent more than once; send it once: " + apptest.APIVersion + "."
			if err != nil || resp.StatusCode != http.StatusBadRequest || len(body.Errors) != 1 ||
				body.Errors[0].Code != "urn:pyng:platform:billing:error:request:invalid-api-version" ||
				body.Errors[0].Target != "Pyng-Api-Version" || body.Errors[0].DisplayMessage != want {
				t.Errorf("versions %s and %s: %d %+v (%v); want 400 invalid-api-version %q", apptest.APIVersion, second, resp.StatusCode, body, err, want)
			}
		}
		wantStatus(t, p.get(t, "ACME-TWICE"), http.StatusNotFound)
	})
}
