package httpapi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/token"
)

// realm names this server in WWW-Authenticate challenges.
const realm = `realm="pyng"`

// authenticate checks the bearer token of a /billing/ request (RFC 6750) and that it grants
// scope. On failure it sets the WWW-Authenticate challenge and returns the coded error.
func (a *server) authenticate(w http.ResponseWriter, r *http.Request, scope billing.Scope) (billing.Caller, error) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		w.Header().Set("WWW-Authenticate", "Bearer "+realm)
		return billing.Caller{}, billing.Errorf(billing.CodeMissingToken, "Authorization",
			"An access token is required: send Authorization: Bearer <token>, obtained from POST /oauth2/token.")
	}
	invalid := func(message string) error {
		w.Header().Set("WWW-Authenticate", "Bearer "+realm+`, error="invalid_token"`)
		return billing.Errorf(billing.CodeInvalidToken, "Authorization", message)
	}
	scheme, raw, ok := strings.Cut(values[0], " ")
	if len(values) > 1 || !ok || !strings.EqualFold(scheme, "Bearer") || !isToken68(raw) {
		return billing.Caller{}, invalid("The Authorization header must be of the form: Bearer <token>.")
	}
	caller, err := a.cfg.Tokens.ParseAccess(raw)
	switch {
	case errors.Is(err, token.ErrExpired):
		return billing.Caller{}, invalid("The access token has expired; obtain a new one from POST /oauth2/token.")
	case err != nil:
		return billing.Caller{}, invalid("The access token is not valid.")
	}
	client, err := a.clients.get(r.Context(), caller.ClientID)
	switch {
	case errors.Is(err, billing.ErrInvalidClient):
		return billing.Caller{}, invalid("The access token is not valid.")
	case err != nil:
		return billing.Caller{}, fmt.Errorf("get client: %w", err)
	case client.Revoked() || client.OrganisationID != caller.OrganisationID:
		return billing.Caller{}, invalid("The access token is no longer valid: its API client has been revoked.")
	}
	info := infoOf(r.Context())
	info.clientID, info.scopes = caller.ClientID, caller.Scopes
	if err := a.limits.allow(w, caller.ClientID); err != nil {
		return billing.Caller{}, err
	}
	if !slices.Contains(caller.Scopes, scope) {
		challengeScope(w, scope)
		return billing.Caller{}, billing.Errorf(billing.CodeInsufficientScope, "Authorization",
			fmt.Sprintf("The access token lacks the scope %s that this endpoint requires.", scope))
	}
	return caller, nil
}

// challengeScope tells the caller, in the WWW-Authenticate header of a 403, the scope it lacks.
func challengeScope(w http.ResponseWriter, scope billing.Scope) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer %s, error="insufficient_scope", scope="%s"`, realm, scope))
}

// isToken68 reports whether s is a token68 (RFC 9110 §11.2), the syntax of a bearer token.
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for _, c := range body {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~+/", c)
		if !ok {
			return false
		}
	}
	return true
}

// clientCache remembers, per process, the API clients behind access tokens, so that a revoked
// client's tokens stop working within ttl without a database read on every request. A revoked
// client is remembered for good: revocation is final.
type clientCache struct {
	service *billing.Service
	clock   billing.Clock
	ttl     time.Duration
	mu      sync.Mutex
	entries map[string]cachedClient
}

type cachedClient struct {
	client  billing.Client
	fetched time.Time
}

func (c *clientCache) get(ctx context.Context, id string) (billing.Client, error) {
	if c.ttl > 0 {
		c.mu.Lock()
		e, ok := c.entries[id]
		c.mu.Unlock()
		if ok && (e.client.Revoked() || c.clock.Now().Sub(e.fetched) < c.ttl) {
			return e.client, nil
		}
	}
	client, err := c.service.Client(ctx, id)
	if err != nil {
		return billing.Client{}, err
	}
	if c.ttl > 0 {
		c.mu.Lock()
		c.entries[id] = cachedClient{client: client, fetched: c.clock.Now()}
		c.mu.Unlock()
	}
	return client, nil
}

// tokenResponse is the successful answer of the token endpoint (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// oauthError is an error answer of the token endpoint (RFC 6749 §5.2).
type oauthError struct {
	status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func invalidRequest(description string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, Code: "invalid_request", Description: description}
}

func invalidScope(description string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, Code: "invalid_scope", Description: description}
}

var errInvalidClient = &oauthError{status: http.StatusUnauthorized, Code: "invalid_client",
	Description: "Client authentication failed: unknown client, wrong secret or revoked client."}

// tokenRequest is what a token request asks, as read from its form and Authorization header.
type tokenRequest struct {
	clientID, secret string
	scope            string // as sent: space-separated, possibly empty
}

// maxCredentialBytes bounds a client id and a secret: none this server issues is near as long,
// so a longer one is refused as an unknown client without a read of the database.
const maxCredentialBytes = 256

// readTokenRequest reads the form of a token request (RFC 6749 §4.4.2) and the client's
// credentials, in HTTP Basic (form-encoded first, §2.3.1) or in the form, but not both.
func readTokenRequest(w http.ResponseWriter, r *http.Request) (tokenRequest, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return tokenRequest{}, invalidRequest("The request body must be application/x-www-form-urlencoded.")
	}
	if coded(r.Header.Values("Content-Encoding")) {
		return tokenRequest{}, invalidRequest("Send the form uncompressed, without Content-Encoding: the token endpoint reads no content coding.")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			return tokenRequest{}, invalidRequest("The request body must not exceed 64 KiB.")
		}
		return tokenRequest{}, invalidRequest("The request body is not a valid form.")
	}
	form := r.PostForm
	// The first repeated parameter by name, so that the same request always gets the same answer.
	for _, name := range slices.Sorted(maps.Keys(form)) {
		if len(form[name]) > 1 {
			return tokenRequest{}, invalidRequest("The parameter " + billing.Quoted(name) + " is repeated.")
		}
	}
	switch grant := form.Get("grant_type"); grant {
	case "":
		return tokenRequest{}, invalidRequest("grant_type is required; this server supports client_credentials.")
	case "client_credentials":
	default:
		return tokenRequest{}, &oauthError{status: http.StatusBadRequest, Code: "unsupported_grant_type",
			Description: "Only the client_credentials grant is supported."}
	}
	req := tokenRequest{scope: form.Get("scope")}
	id, secret, basic := r.BasicAuth()
	if basic {
		// A parameter sent without a value counts as omitted (RFC 6749 §3.2), as an empty scope does.
		if form.Get("client_id") != "" || form.Get("client_secret") != "" {
			return tokenRequest{}, invalidRequest("Authenticate the client one way only: HTTP Basic, or client_id and client_secret in the body.")
		}
		var err1, err2 error
		req.clientID, err1 = url.QueryUnescape(id)
		req.secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return tokenRequest{}, errInvalidClient
		}
	} else {
		req.clientID, req.secret = form.Get("client_id"), form.Get("client_secret")
	}
	if req.clientID == "" || req.secret == "" || len(req.clientID) > maxCredentialBytes || len(req.secret) > maxCredentialBytes {
		return tokenRequest{}, errInvalidClient
	}
	return req, nil
}

// maxListedScopes bounds the unknown scopes an answer lists.
const maxListedScopes = 5

// unknownScopes says which scopes of a request are unknown: the first few, each quoted at most
// billing.MaxQuoted bytes long, and how many more.
func unknownScopes(unknown []string) string {
	listed := make([]string, min(len(unknown), maxListedScopes))
	for i := range listed {
		listed[i] = billing.Quoted(unknown[i])
	}
	more := ""
	if n := len(unknown) - len(listed); n > 0 {
		more = fmt.Sprintf(" and %d more", n)
	}
	return "Unknown scope: " + strings.Join(listed, " ") + more + "."
}

// token is POST /oauth2/token: the client credentials grant (RFC 6749 §4.4).
func (a *server) token(w http.ResponseWriter, r *http.Request) {
	resp, err := a.issue(w, r)
	var oe *oauthError
	switch {
	case errors.As(err, &oe):
		if oe.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", "Basic "+realm)
		}
		writeJSON(w, oe.status, oe)
	case err != nil && a.unreachable(err):
		a.log.ErrorContext(r.Context(), "database unreachable", "traceId", traceIDOf(r.Context()), "path", r.URL.Path, "error", err)
		w.Header().Set("Retry-After", unavailableRetryAfter)
		writeJSON(w, http.StatusServiceUnavailable, &oauthError{Code: "temporarily_unavailable",
			Description: "Pyng cannot issue tokens now; try again shortly."})
	case err != nil:
		a.log.ErrorContext(r.Context(), "internal error", "traceId", traceIDOf(r.Context()), "path", r.URL.Path, "error", err)
		writeJSON(w, http.StatusInternalServerError, &oauthError{Code: "server_error",
			Description: "Something went wrong on our side; try again later."})
	default:
		writeJSON(w, http.StatusOK, resp)
	}
}

func (a *server) issue(w http.ResponseWriter, r *http.Request) (tokenResponse, error) {
	// The address's limit comes before the body is read: a refused request costs no database
	// read. A client id has two limits, its tokens and its wrong secrets, so that whoever knows a
	// client id (not a secret) cannot keep its partner from getting tokens by guessing.
	if err := a.tokens.allowToken(w, addressKey(r.RemoteAddr), "address"); err != nil {
		return tokenResponse{}, err
	}
	req, err := readTokenRequest(w, r)
	if err != nil {
		return tokenResponse{}, err
	}
	client, err := a.cfg.Service.AuthenticateClient(r.Context(), req.clientID, req.secret)
	if errors.Is(err, billing.ErrInvalidClient) {
		if err := a.tokens.allowToken(w, "wrong secrets "+req.clientID, "client"); err != nil {
			return tokenResponse{}, err
		}
		return tokenResponse{}, errInvalidClient
	}
	if err != nil {
		return tokenResponse{}, err
	}
	if err := a.tokens.allowToken(w, "client "+req.clientID, "client"); err != nil {
		return tokenResponse{}, err
	}
	infoOf(r.Context()).clientID = client.ID
	scopes := client.Scopes
	if strings.TrimSpace(req.scope) != "" {
		var unknown []string
		scopes, unknown = billing.ParseScopes(req.scope)
		if len(unknown) > 0 {
			return tokenResponse{}, invalidScope(unknownScopes(unknown))
		}
		for _, s := range scopes {
			if !slices.Contains(client.Scopes, s) {
				return tokenResponse{}, invalidScope("This client is not granted the scope " + string(s) + ".")
			}
		}
	}
	caller := billing.Caller{ClientID: client.ID, OrganisationID: client.OrganisationID, Scopes: scopes}
	access, _, err := a.cfg.Tokens.Access(caller, a.cfg.AccessTokenTTL)
	if err != nil {
		return tokenResponse{}, err
	}
	return tokenResponse{
		AccessToken: access,
		TokenType:   "Bearer",
		ExpiresIn:   int64(a.cfg.AccessTokenTTL / time.Second),
		Scope:       billing.FormatScopes(scopes),
	}, nil
}
