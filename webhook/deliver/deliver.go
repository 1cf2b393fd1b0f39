// Package deliver sends signed webhooks (see package webhook) to partners' endpoints over HTTP.
//
// One Send is one attempt: a POST of the body, signed, answered by a 2xx within the timeout, or
// failed. Retries and their schedule belong to the caller. Redirects are not followed, proxies are
// not used, and outside the sandbox every connection is checked when it is made: the address a
// host name resolves to is the one checked, on each dial, so a name that resolves to a public
// address when the URL is saved and to a private one later (DNS rebinding) is still refused.
package deliver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/pyng/receivables/webhook"
)

// DefaultTimeout is the time an attempt has, from the dial to the end of the response, when
// Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// DefaultUserAgent is the User-Agent of deliveries when Options.UserAgent is empty.
const DefaultUserAgent = "Pyng-Webhooks/1"

// maxResponseBytes is how much of a response body is read (and discarded) so that its connection
// can be reused; a longer body closes the connection instead.
const maxResponseBytes = 64 << 10

// maxResponseHeaderBytes bounds the headers of a response; larger ones fail the attempt.
const maxResponseHeaderBytes = 64 << 10

// maxIdleConnsPerHost is how many connections to one partner's host are kept for reuse: as many
// as the server's default webhook workers, which may all be sending to the same partner, so that
// a burst of deliveries does not open (and for https, handshake) a connection each.
const maxIdleConnsPerHost = 16

// maxErrBytes bounds Result.Err.
const maxErrBytes = 200

// Options configure a Client.
type Options struct {
	// AllowPrivate lets deliveries reach any address and use http: the sandbox only.
	AllowPrivate bool
	// Timeout bounds each attempt; DefaultTimeout when zero.
	Timeout time.Duration
	// UserAgent is sent with each delivery; DefaultUserAgent when empty.
	UserAgent string
}

// Client sends deliveries. It is safe for concurrent use and reuses connections between them.
type Client struct {
	// transport sends each request as it is: no http.Client, for redirects are not followed
	// and an attempt's time is bounded by its context.
	transport    *http.Transport
	allowPrivate bool
	timeout      time.Duration
	userAgent    string
}

// New makes a Client.
func New(o Options) *Client {
	c := &Client{allowPrivate: o.AllowPrivate, timeout: o.Timeout, userAgent: o.UserAgent}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	// The sandbox's loopback and private addresses are a developer's receivers; a link-local one
	// is never a receiver's (webhook.ForbiddenEverywhere).
	forbidden := webhook.Forbidden
	if o.AllowPrivate {
		forbidden = webhook.ForbiddenEverywhere
	}
	dialer := &net.Dialer{Timeout: c.timeout, KeepAlive: 30 * time.Second, ControlContext: refuse(forbidden)}
	c.transport = &http.Transport{
		Proxy:                  nil, // a proxy would be the address checked, not the partner's
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    c.timeout,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    maxIdleConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	return c
}

// CloseIdleConnections closes the connections kept for reuse.
func (c *Client) CloseIdleConnections() { c.transport.CloseIdleConnections() }

// Request is one delivery attempt.
type Request struct {
	URL string
	// ID is the message id (webhook-id), the same on every attempt of one message.
	ID string
	// Timestamp is the attempt's time (webhook-timestamp); receivers refuse one far from their
	// clock.
	Timestamp time.Time
	// Body is sent as it is, the exact bytes signed.
	Body []byte
	// Secrets sign the body, each adding one signature: two during a rotation.
	Secrets []webhook.Secret
}

// Result is the outcome of one attempt.
type Result struct {
	// Status is the HTTP status of the response, 0 when there was none.
	Status int
	// Err says, shortly and for the partner, why the attempt failed; empty when it succeeded.
	Err string
	// Duration is the time from the start of the attempt to its end.
	Duration time.Duration
}

// OK reports whether the attempt succeeded: a 2xx status.
func (r Result) OK() bool { return r.Status >= 200 && r.Status <= 299 }

// Send makes one attempt at delivering r: a POST of r.Body as application/json with the headers
// webhook-id, webhook-timestamp and webhook-signature. A request that cannot be sent (a URL that
// webhook.CheckDestination refuses, no id, no timestamp, no secret) fails without a connection.
func (c *Client) Send(ctx context.Context, r Request) Result {
	start := time.Now()
	res := c.send(ctx, r, true)
	res.Duration = time.Since(start)
	if len(res.Err) > maxErrBytes {
		res.Err = strings.ToValidUTF8(res.Err[:maxErrBytes], "")
	}
	return res
}

func (c *Client) send(ctx context.Context, r Request, checkURL bool) Result {
	if checkURL {
		if err := webhook.CheckDestination(r.URL, c.allowPrivate); err != nil {
			return Result{Err: err.Error()}
		}
	}
	switch {
	case r.ID == "":
		return Result{Err: "no message id"}
	case r.Timestamp.IsZero():
		return Result{Err: "no timestamp"}
	case len(r.Secrets) == 0:
		return Result{Err: "no signing secret"}
	}
	for _, s := range r.Secrets {
		if s.IsZero() {
			return Result{Err: "no signing secret"}
		}
	}

	// A caller whose own deadline comes first (a delivery run near its end) cuts the attempt
	// short; the attempt then says so rather than claiming the full timeout passed.
	timeout := c.timeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(deadline))
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return Result{Err: "the webhook URL is not valid"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	for _, h := range webhook.Headers(r.ID, r.Timestamp, r.Body, r.Secrets...) {
		req.Header.Set(h.Name, h.Value)
	}

	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		return Result{Err: c.describe(ctx, err, timeout)}
	}
	// Read a little of the body so that the connection can serve the next delivery; what the
	// partner answers is not used.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	_ = resp.Body.Close()

	// Go's client takes any three digits as a status (000 to 999); HTTP's are 100 to 599, which
	// the deliveries list documents. Another is no HTTP answer, and no status is listed.
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		return Result{Err: "the answer is not HTTP"}
	}
	res := Result{Status: resp.StatusCode}
	switch {
	case res.OK():
	case resp.StatusCode >= 300 && resp.StatusCode <= 399:
		res.Err = fmt.Sprintf("redirect not followed: status %d", resp.StatusCode)
	default:
		res.Err = fmt.Sprintf("status %d, not 2xx", resp.StatusCode)
	}
	return res
}

// refusedError is the error of a dial to an address outside the sandbox may not reach. Its text,
// which the partner reads in the deliveries list, does not give the address: a URL naming one of
// the server's internal hosts would learn its internal address. Outside the sandbox a name that
// does not resolve gets the same text.
type refusedError struct{}

func (*refusedError) Error() string {
	return "refused address: the host is not at a public address"
}

// refuse is the dialer's check of each connection, made after the name is resolved and before
// the connection is: address is the IP address and port about to be dialled, refused when
// forbidden.
func refuse(forbidden func(netip.Addr) bool) func(context.Context, string, string, syscall.RawConn) error {
	return func(_ context.Context, _, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || forbidden(ap.Addr()) {
			return &refusedError{}
		}
		return nil
	}
}

// describe says, shortly and without this host's addresses, why a request got no response.
func (c *Client) describe(ctx context.Context, err error, timeout time.Duration) string {
	var (
		refused  *refusedError
		dnsErr   *net.DNSError
		certErr  *tls.CertificateVerificationError
		hostErr  x509.HostnameError
		authErr  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		alert    tls.AlertError
		netErr   net.Error
		opErr    *net.OpError
		sysErr   syscall.Errno
		timedOut = errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout()
	)
	switch {
	case errors.As(err, &refused):
		return refused.Error()
	case (timedOut || ctx.Err() == context.DeadlineExceeded) && timeout < c.timeout:
		return "timeout after " + timeout.Round(time.Millisecond).String() + ", when the sending run's time ended (the attempt's own limit is " + c.timeout.String() + ")"
	case timedOut || ctx.Err() == context.DeadlineExceeded:
		return "timeout after " + c.timeout.String()
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &dnsErr):
		switch {
		case dnsErr.IsNotFound && !c.allowPrivate:
			// Told apart from a refused address, "no such host" would tell a partner which of
			// the server's internal host names resolve.
			return (&refusedError{}).Error()
		case dnsErr.IsNotFound:
			return "DNS: no such host " + dnsErr.Name
		}
		return "DNS lookup of " + dnsErr.Name + " failed"
	case errors.As(err, &hostErr):
		return "TLS: the certificate is not valid for " + hostErr.Host
	case errors.As(err, &authErr):
		return "TLS: the certificate is signed by an unknown authority"
	case errors.As(err, &invalid):
		return "TLS: the certificate is not valid: " + strings.TrimPrefix(invalid.Error(), "x509: ")
	case errors.As(err, &certErr):
		return "TLS: the certificate is not valid"
	case errors.Is(err, http.ErrSchemeMismatch), errors.As(err, &record):
		return "TLS: the server did not answer with TLS"
	case errors.As(err, &alert):
		return "TLS: handshake failed: " + strings.TrimPrefix(alert.Error(), "tls: ")
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without a response"
	case errors.As(err, &sysErr):
		return "connection failed: " + sysErr.Error()
	case errors.As(err, &opErr):
		return "connection failed"
	// net/http gives these two as text alone.
	case strings.Contains(err.Error(), "malformed HTTP"):
		return "the answer is not HTTP"
	case strings.Contains(err.Error(), "response headers exceeded"):
		return fmt.Sprintf("the answer's headers exceed %d KB", maxResponseHeaderBytes>>10)
	case strings.Contains(err.Error(), "tls:"):
		return "TLS handshake failed"
	}
	return "request failed"
}
