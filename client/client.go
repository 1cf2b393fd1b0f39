// Package client is the Go client of the Pyng B2B Receivables API: a partner imports it to invite
// its customers, follow their links, submit and poll batches of debits, read the site's events and
// manage the webhook endpoints they are sent to. It covers every /billing/ route.
//
//	c, err := client.New(client.Config{
//		BaseURL:      "https://sample.pyng.com.au",
//		ClientID:     "cli_...",
//		ClientSecret: "sec_...",
//	})
//	site := c.Site("site_...")
//	inv, err := site.InviteCustomer(ctx, "ACME-001")
//
// The client obtains and renews its access tokens itself (OAuth 2.0 client credentials, through
// golang.org/x/oauth2/clientcredentials): before one expires by its own clock, and when the
// server answers that the token it sent has expired (their clocks need not agree), sending the
// request again with a new one. It sets the Pyng-Api-Version header on every call, and sends a
// request again after 429 and 5xx answers, and after a connection that failed before the answer
// came, where that is safe (see [Config.MaxRetries]), the token endpoint's included. An error
// answer is an [*Error] carrying the code, target and traceId of the answer (the token
// endpoint's too); a list is an iterator ([iter.Seq2]) that follows the pages' cursors.
//
// The client is written by hand rather than over code generated from api/openapi.yaml. Generated
// code (oapi-codegen) gives one function per operation with pointer-heavy types, a response
// wrapper per status and a runtime dependency; a partner wants a few typed calls that return the
// answer or an error, iterators and retries, which would be a hand-written layer over it anyway.
// The document still binds the client: the module's tests generate a client from the document and
// compile it, and this package's tests run against the real server, whose every answer is
// validated against the document, so the two cannot drift apart unnoticed.
//
// Adding a route is one small method on [Site] (routes.go): it describes the request (method,
// path, query, body, whether sending it again is safe) and decodes the answer's data, or reads
// a page and lists it with the iterator every list shares.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// APIVersion is the version of the API this client speaks, sent as the Pyng-Api-Version header.
const APIVersion = "urn:pyng:api:billing:version:v1"

// Config says where the API is and which API client to call it as.
type Config struct {
	// BaseURL is the server's URL, such as https://sample.pyng.com.au (the sandbox) or
	// https://app.pyng.com.au (production).
	BaseURL string
	// ClientID and ClientSecret are the API client's credentials, as supplied by Pyng.
	ClientID, ClientSecret string
	// Scopes are the scopes to ask for; all of the API client's when empty.
	Scopes []string
	// HTTPClient sends the requests, token requests included; http.DefaultClient when nil. The
	// client adds the access token to each request itself.
	HTTPClient *http.Client
	// MaxRetries is how many times a request is sent again after an answer that may succeed
	// later: 429 (the server refused it before acting on it, so every request is retried) and
	// 500, 502, 503 and 504, or no answer at all (a connection refused, reset or timed out
	// before the answer was read whole; not the end of the call's context): these only where
	// sending it again is safe, that is reads, a batch submission, which is idempotent on its
	// batchReference, a webhook endpoint's update, which sets the same fields again, and the
	// sandbox's deadline. 0 means 3; a negative value turns retries off.
	MaxRetries int
	// MaxRetryWait is the longest the client waits before a retry (1 minute when 0). An answer
	// whose Retry-After asks for longer, or for longer than the context's deadline leaves, is
	// returned as it is.
	MaxRetryWait time.Duration
	// Timeout bounds each attempt at a request, its access token and its whole answer included
	// (80 seconds when 0, as Stripe's clients do; a negative value: none, the call's context
	// alone). An attempt that runs out of time got no answer, and is sent again where that is
	// safe (see MaxRetries).
	Timeout time.Duration
}

// Client calls the API. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	http       *http.Client
	tokens     *tokens
	maxRetries int
	maxWait    time.Duration
	timeout    time.Duration // of an attempt; 0 for none
}

// DefaultTimeout is Config.Timeout when it is 0.
const DefaultTimeout = 80 * time.Second

// tokens keeps the access token the client sends, and obtains another when it has expired by the
// client's clock or the server refused it.
type tokens struct {
	creds clientcredentials.Config
	http  *http.Client
	// turn is held while the token is read or obtained, so that concurrent calls obtain one; a
	// channel rather than a mutex, so that a call waiting for it gives up when its context ends.
	turn  chan struct{}
	token *oauth2.Token
}

// get returns a valid access token other than refused (the one the server refused, if any).
func (t *tokens) get(ctx context.Context, refused string) (*oauth2.Token, error) {
	select {
	case t.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, &noAnswerError{err: fmt.Errorf("waiting for an access token: %w", ctx.Err()), beforeRequest: true}
	}
	defer func() { <-t.turn }()
	if t.token.Valid() && t.token.AccessToken != refused {
		return t.token, nil
	}
	token, err := t.creds.Token(context.WithValue(ctx, oauth2.HTTPClient, t.http))
	if err != nil {
		return nil, tokenError(err, time.Now())
	}
	t.token = token
	return token, nil
}

// Scopes returns the scopes the server granted the client's access token, obtaining a token
// first if it has none: a partner's program can check at start that its API client may do what
// it will be asked to (a scope it lacks fails each call with 403 auth:insufficient-scope).
func (c *Client) Scopes(ctx context.Context) ([]string, error) {
	token, err := c.tokens.get(ctx, "")
	if err != nil {
		return nil, err
	}
	scope, _ := token.Extra("scope").(string) // the token answer's scope member
	return strings.Fields(scope), nil
}

// New returns a client for cfg. It makes no request: the first call obtains the access token.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(strings.TrimSuffix(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("pyng client: BaseURL %q is not an http or https URL", cfg.BaseURL)
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, fmt.Errorf("pyng client: ClientID and ClientSecret are required")
	}
	hc := http.DefaultClient
	if cfg.HTTPClient != nil {
		hc = cfg.HTTPClient
	}
	creds := clientcredentials.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		TokenURL:     base.String() + "/oauth2/token",
		Scopes:       cfg.Scopes,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	c := &Client{base: base, http: hc, tokens: &tokens{creds: creds, http: hc, turn: make(chan struct{}, 1)}, maxRetries: cfg.MaxRetries, maxWait: cfg.MaxRetryWait}
	if c.maxRetries == 0 {
		c.maxRetries = 3
	}
	switch {
	case cfg.Timeout == 0:
		c.timeout = DefaultTimeout
	case cfg.Timeout > 0:
		c.timeout = cfg.Timeout
	}
	if c.maxWait == 0 {
		c.maxWait = time.Minute
	}
	return c, nil
}

// Site is a site of the partner's organisation, as supplied by Pyng; every /billing/ route is
// under one.
type Site struct {
	c  *Client
	id string
}

// Site returns the site with this siteId.
func (c *Client) Site(siteID string) *Site { return &Site{c: c, id: siteID} }

// ID is the site's siteId.
func (s *Site) ID() string { return s.id }

// request is one call of a route.
type request struct {
	method string
	// path is the route's path under /billing/sites/{siteId}/, its segments unescaped.
	path   []string
	query  url.Values
	body   any // sent as JSON when not nil
	accept string
	// safe says that sending the request again after a 5xx cannot do anything twice.
	safe bool
}

// answer is a successful answer, read whole.
type answer struct {
	header http.Header
	body   []byte
}

// data decodes the data member of an answer's {data, traceId} envelope.
func data[T any](a *answer, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	var envelope struct {
		Data *T `json:"data"`
	}
	if err := json.Unmarshal(a.body, &envelope); err != nil || envelope.Data == nil {
		return nil, fmt.Errorf("pyng client: the answer is not a {data, traceId} envelope: %.200s", a.body)
	}
	return envelope.Data, nil
}

// send makes the request for the site, sending it again as Config.MaxRetries allows, and returns
// the successful answer or an *Error.
func (s *Site) send(ctx context.Context, r request) (_ *answer, err error) {
	// sent says that an attempt reached the server, which may have acted on it (a read acts on
	// nothing); sentBefore, that one before the last did.
	sent, sentBefore := false, false
	defer func() { err = lastOf(err, sentBefore) }()
	u := *s.c.base
	segments := append([]string{"billing", "sites", s.id}, r.path...)
	escaped := make([]string, len(segments))
	for i, seg := range segments {
		escaped[i] = url.PathEscape(seg)
	}
	u.RawPath = u.EscapedPath() + "/" + strings.Join(escaped, "/")
	u.Path, _ = url.PathUnescape(u.RawPath) // cannot fail: every segment was escaped
	u.RawQuery = r.query.Encode()
	var payload []byte
	if r.body != nil {
		var err error
		if payload, err = json.Marshal(r.body); err != nil {
			return nil, fmt.Errorf("pyng client: encode the request: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		sentBefore = sent
		a, err := s.c.attempt(ctx, r, u.String(), payload)
		sent = sent || r.method != http.MethodGet && mayHaveActed(err)
		if err == nil || attempt >= s.c.maxRetries {
			return a, err
		}
		var wait time.Duration
		switch e := err.(type) {
		case *Error:
			if !e.retryable(r.safe) {
				return nil, err
			}
			wait = e.RetryAfter
		case *noAnswerError:
			if !(r.safe || e.beforeRequest) || ctx.Err() != nil {
				return nil, err
			}
		default:
			return nil, err
		}
		if wait == 0 {
			wait = backoff(attempt)
		}
		if deadline, ok := ctx.Deadline(); wait > s.c.maxWait || ok && time.Until(deadline) < wait {
			return nil, err
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("pyng client: %w while waiting to retry after %w", ctx.Err(), err)
		case <-timer.C:
		}
	}
}

// mayHaveActed reports whether the server may have acted on the request of an attempt that ended
// in err: it got no answer once sent, or a 5xx.
func mayHaveActed(err error) bool {
	switch e := err.(type) {
	case *noAnswerError:
		return !e.beforeRequest
	case *Error:
		return e.StatusCode >= 500 && !e.beforeRequest
	}
	return false
}

// lastOf is the error of a call whose last attempt ended in err, after an earlier attempt that
// may have reached the server when sentBefore: then one that says the server may have acted
// (ErrNoAnswer) however the last ended (a 429 refused that attempt alone, as a token refused
// left that one alone unsent; the retries spent, the context ended), never ErrNotSent: a batch
// submitted so may have been stored.
func lastOf(err error, sentBefore bool) error {
	if err == nil || !sentBefore || errors.Is(err, ErrNoAnswer) {
		return err
	}
	return &sentBeforeError{err: err}
}

// sentBeforeError is the error of a call whose last attempt ended in err after an earlier one
// may have reached the server: ErrNoAnswer, not ErrNotSent, and as err for every other
// errors.Is and errors.As (the last answer's *Error, the context's error). It has no Unwrap,
// through which errors.Is would find ErrNotSent.
type sentBeforeError struct{ err error }

func (e *sentBeforeError) Error() string {
	return e.err.Error() + "; an earlier attempt was sent, and the server may have acted on it"
}

func (e *sentBeforeError) Is(target error) bool {
	return target == ErrNoAnswer || target != ErrNotSent && errors.Is(e.err, target)
}

func (e *sentBeforeError) As(target any) bool { return errors.As(e.err, target) }

// backoff is the wait before the retry after attempt (0 for the first) when the server did not
// say: 250 ms, doubled at each attempt, less a random part of up to half, so that the clients an
// outage stopped together do not all come back at the same moments.
func backoff(attempt int) time.Duration {
	d := min(250*time.Millisecond<<min(attempt, maxBackoffDoublings), maxBackoff)
	return d - rand.N(d/2+1)
}

// maxBackoff bounds backoff's wait: after many retries timed by the server (Retry-After), a
// shift by their count would overflow. maxBackoffDoublings (250 ms doubled 8 times is 64 s) is
// past it.
const (
	maxBackoff          = time.Minute
	maxBackoffDoublings = 8
)

// attempt is once within the attempt's time (Config.Timeout): one that runs out of it got no
// answer, as a connection that timed out.
func (c *Client) attempt(ctx context.Context, r request, u string, payload []byte) (*answer, error) {
	if c.timeout <= 0 {
		return c.once(ctx, r, u, payload)
	}
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	a, err := c.once(actx, r, u, payload)
	if err != nil && ctx.Err() == nil && actx.Err() != nil {
		var noAnswer *noAnswerError
		if !errors.As(err, &noAnswer) {
			err = &noAnswerError{err: fmt.Errorf("%s %s: no answer within %v: %w", r.method, u, c.timeout, err)}
		}
	}
	return a, err
}

// once sends the request once, with the access token; and again with a new token when the server
// refused that one (401 auth:invalid-token: it acted on nothing).
func (c *Client) once(ctx context.Context, r request, u string, payload []byte) (*answer, error) {
	token, err := c.tokens.get(ctx, "")
	if err != nil {
		return nil, err
	}
	a, err := c.exchange(ctx, r, u, payload, token.AccessToken)
	if apiErr, ok := err.(*Error); ok && apiErr.StatusCode == http.StatusUnauthorized && apiErr.Code == CodeInvalidToken {
		if token, err = c.tokens.get(ctx, token.AccessToken); err != nil {
			return nil, err
		}
		return c.exchange(ctx, r, u, payload, token.AccessToken)
	}
	return a, err
}

// exchange sends the request with the access token and reads the answer.
func (c *Client) exchange(ctx context.Context, r request, u string, payload []byte, token string) (*answer, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("pyng client: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Pyng-Api-Version", APIVersion)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	accept := r.accept
	if accept == "" {
		accept = "application/json"
	}
	req.Header.Set("Accept", accept)
	resp, err := c.http.Do(req)
	if err != nil {
		recordResponse(ctx, nil)
		return nil, &noAnswerError{err: err}
	}
	defer resp.Body.Close()
	recordResponse(ctx, resp)
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &noAnswerError{err: fmt.Errorf("%s %s: read the answer: %w", r.method, req.URL.Path, err)}
	}
	if resp.StatusCode >= 300 {
		return nil, errorOf(resp, data, time.Now())
	}
	return &answer{header: resp.Header, body: data}, nil
}

// noAnswerError is a request that got no answer, or only part of one: the connection failed, or
// broke, or timed out, before the answer was read whole. The server may or may not have acted on
// the request, so it is sent again only where that is safe.
type noAnswerError struct {
	err error
	// beforeRequest says that obtaining the access token failed: the request itself was not sent.
	beforeRequest bool
}

func (e *noAnswerError) Error() string { return "pyng client: " + e.err.Error() }
func (e *noAnswerError) Unwrap() error { return e.err }

// Is makes a noAnswerError ErrNoAnswer, or ErrNotSent when it is the token endpoint's.
func (e *noAnswerError) Is(target error) bool {
	return target == ErrNoAnswer && !e.beforeRequest || target == ErrNotSent && e.beforeRequest
}

// ErrNoAnswer is what a call's error is (errors.Is) when its request got no answer, or only part
// of one, once the client's own retries are spent: the connection failed, broke or timed out; and,
// but for a read, when an attempt before the last got none, or a 5xx, however the last ended (its
// error is then also the last answer's *Error, errors.As: a 429 refused the last attempt alone,
// not the one before, which the server may have acted on). The server may or may not have acted
// on it: send a batch again with the same batchReference (it is then answered with its receipt if
// the first was stored), and read an invitation's link before inviting again.
var ErrNoAnswer = errors.New("pyng client: no answer")

// ErrNotSent is what a call's error is (errors.Is) when obtaining its access token failed, once
// the client's retries are spent: the token endpoint gave no answer, or refused (the error is then
// also an *Error, with the endpoint's OAuth 2.0 code). The request itself was not sent, so the
// server did nothing: a batch was not submitted, an invitation not minted.
var ErrNotSent = errors.New("pyng client: the request was not sent: no access token")

// retryAfter reads a Retry-After header: seconds, or an HTTP date (RFC 9110 §10.2.3).
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 {
		// More seconds than a Duration holds would wrap to a wait that is short or negative,
		// retrying at once; the longest Duration is beyond any MaxRetryWait instead.
		if secs > int64(math.MaxInt64/time.Second) {
			return math.MaxInt64
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}
