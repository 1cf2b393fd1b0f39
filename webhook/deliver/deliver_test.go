package deliver_test

import (
	"context"
	"encoding/base64"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/pyng/receivables/webhook"
	"github.com/pyng/receivables/webhook/deliver"
)

// delivery is what a receiver got.
type delivery struct {
	method string
	header http.Header
	body   []byte
}

// receiver is a partner's endpoint on loopback that counts its connections and keeps what it
// receives.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	conns int
	got   []delivery
}

// newReceiver starts a receiver that records each request and then answers it with answer.
func newReceiver(t *testing.T, answer http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			t.Errorf("receiver: reading the body: %v", err)
		}
		r.mu.Lock()
		r.got = append(r.got, delivery{method: req.Method, header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		answer(w, req)
	}))
	r.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.mu.Lock()
			r.conns++
			r.mu.Unlock()
		}
	}
	r.Start()
	t.Cleanup(r.Close)
	return r
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// seen gives the receiver's connections and deliveries so far.
func (r *receiver) seen() (conns int, got []delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns, append([]delivery(nil), r.got...)
}

func secret(t *testing.T, b byte) webhook.Secret {
	t.Helper()
	key := make([]byte, 32)
	for i := range key {
		key[i] = b + byte(i)
	}
	s, err := webhook.ParseSecret(webhook.SecretPrefix + base64.StdEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verifiedBy checks a delivery with the official Standard Webhooks library alone.
func verifiedBy(t *testing.T, s webhook.Secret, d delivery) error {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(s.Reveal())
	if err != nil {
		t.Fatalf("standardwebhooks.NewWebhook: %v", err)
	}
	return wh.Verify(d.body, d.header)
}

func request(url string, secrets ...webhook.Secret) deliver.Request {
	return deliver.Request{
		URL:       url,
		ID:        "msg_31kXc9",
		Timestamp: time.Now(),
		Body:      []byte(`{"type":"batch.completed","data":{"batchId":"bat_7","rows":[1, 2]}}`),
		Secrets:   secrets,
	}
}

func TestSendDeliversASignedPostTheLibraryVerifies(t *testing.T) {
	t.Parallel()
	old, current, stranger := secret(t, 1), secret(t, 100), secret(t, 200)
	tests := []struct {
		name          string
		answer        int
		secrets       []webhook.Secret
		userAgent     string
		wantUserAgent string
	}{
		{"one secret, answered 200", 200, []webhook.Secret{current}, "", deliver.DefaultUserAgent},
		{"two secrets during a rotation, answered 204", 204, []webhook.Secret{old, current}, "", deliver.DefaultUserAgent},
		{"a User-Agent of the caller's, answered 202", 202, []webhook.Secret{current}, "Pyng-Sandbox/2", "Pyng-Sandbox/2"},
		{"any 2xx is success", 299, []webhook.Secret{current}, "", deliver.DefaultUserAgent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, status(tt.answer))
			c := deliver.New(deliver.Options{AllowPrivate: true, UserAgent: tt.userAgent})
			req := request(rcv.URL+"/hooks?site=1", tt.secrets...)
			res := c.Send(context.Background(), req)
			if !res.OK() || res.Status != tt.answer || res.Err != "" {
				t.Fatalf("Send = %+v, want OK with status %d", res, tt.answer)
			}
			if res.Duration <= 0 {
				t.Errorf("Duration = %v", res.Duration)
			}
			_, got := rcv.seen()
			if len(got) != 1 {
				t.Fatalf("the receiver got %d requests, want 1", len(got))
			}
			d := got[0]
			if d.method != http.MethodPost {
				t.Errorf("method %s, want POST", d.method)
			}
			if string(d.body) != string(req.Body) {
				t.Errorf("body %q, want the exact bytes %q", d.body, req.Body)
			}
			for name, want := range map[string]string{
				"Content-Type":      "application/json",
				"User-Agent":        tt.wantUserAgent,
				"webhook-id":        req.ID,
				"webhook-timestamp": strconv.FormatInt(req.Timestamp.Unix(), 10),
			} {
				if got := d.header.Get(name); got != want {
					t.Errorf("header %s = %q, want %q", name, got, want)
				}
			}
			for i, s := range tt.secrets {
				if err := verifiedBy(t, s, d); err != nil {
					t.Errorf("the library refuses the delivery with secret %d alone: %v", i, err)
				}
			}
			if err := verifiedBy(t, stranger, d); err == nil {
				t.Error("the library verifies the delivery with a secret that did not sign it")
			}
		})
	}
}

func TestSendFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		answer     http.HandlerFunc
		wantStatus int
		wantErr    string
	}{
		{"500 fails with its status", status(500), 500, "status 500, not 2xx"},
		{"404 fails with its status", status(404), 404, "status 404, not 2xx"},
		{"429 fails with its status", status(429), 429, "status 429, not 2xx"},
		{"a redirect is not followed", nil, 302, "redirect not followed: status 302"},
		{"a permanent redirect is not followed", nil, 308, "redirect not followed: status 308"},
		{"a connection closed without an answer fails", func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}, 0, "connection closed without a response"},
		{"an answer that is not HTTP fails saying so", func(w http.ResponseWriter, _ *http.Request) {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_, _ = buf.WriteString("SSH-2.0-OpenSSH_9.6\r\n\r\n")
				_ = buf.Flush()
				_ = conn.Close()
			}
		}, 0, "the answer is not HTTP"},
		{"headers over 64 KB fail saying so", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Padding", strings.Repeat("a", 70<<10))
			w.WriteHeader(http.StatusOK)
		}, 0, "the answer's headers exceed 64 KB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target := newReceiver(t, status(200))
			answer := tt.answer
			if answer == nil {
				answer = func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, target.URL+"/elsewhere", tt.wantStatus)
				}
			}
			rcv := newReceiver(t, answer)
			c := deliver.New(deliver.Options{AllowPrivate: true})
			res := c.Send(context.Background(), request(rcv.URL, secret(t, 1)))
			if res.OK() || res.Status != tt.wantStatus || res.Err != tt.wantErr {
				t.Errorf("Send = %+v, want status %d and error %q", res, tt.wantStatus, tt.wantErr)
			}
			if _, got := rcv.seen(); len(got) != 1 {
				t.Errorf("the receiver got %d requests, want 1", len(got))
			}
			if conns, _ := target.seen(); conns != 0 {
				t.Errorf("the redirect's target got %d connections, want none", conns)
			}
		})
	}
}

func TestSendTimesOut(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * timeout):
		}
		w.WriteHeader(200)
	})
	c := deliver.New(deliver.Options{AllowPrivate: true, Timeout: timeout})
	res := c.Send(context.Background(), request(rcv.URL, secret(t, 1)))
	if res.OK() || res.Status != 0 || res.Err != "timeout after 300ms" {
		t.Errorf("Send = %+v, want a timeout without status", res)
	}
	if res.Duration < timeout || res.Duration > timeout+time.Second {
		t.Errorf("Duration = %v, want about %v", res.Duration, timeout)
	}
}

// TestSendSaysWhenItsCallersDeadlineCutItShort: a delivery run near its end gives an attempt less
// than the client's timeout; the attempt's error must not claim the whole timeout passed.
func TestSendSaysWhenItsCallersDeadlineCutItShort(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	c := deliver.New(deliver.Options{AllowPrivate: true, Timeout: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res := c.Send(ctx, request(rcv.URL, secret(t, 1)))
	if res.OK() || !strings.Contains(res.Err, "the sending run's time ended") {
		t.Errorf("Send = %+v, want a timeout of about 300ms that says the run's time ended", res)
	}
	if res.Duration > 5*time.Second {
		t.Errorf("Duration = %v, want about 300ms", res.Duration)
	}
}

func TestSendStopsWhenCanceled(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	c := deliver.New(deliver.Options{AllowPrivate: true})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	res := c.Send(ctx, request(rcv.URL, secret(t, 1)))
	if res.OK() || res.Err != "canceled" {
		t.Errorf("Send = %+v, want canceled", res)
	}
}

func TestSendFailsOnConnectionAndTLSErrors(t *testing.T) {
	t.Parallel()
	closed := newReceiver(t, status(200))
	closedURL := closed.URL
	closed.Close()
	tlsServer := httptest.NewUnstartedServer(status(200))
	tlsServer.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	tlsServer.StartTLS()
	t.Cleanup(tlsServer.Close)
	plain := newReceiver(t, status(200))

	tests := []struct {
		name    string
		url     string
		wantErr string
	}{
		{"nothing listening", closedURL, "connection refused"},
		{"a certificate of an unknown authority", tlsServer.URL, "TLS: the certificate is signed by an unknown authority"},
		{"https to a server without TLS", strings.Replace(plain.URL, "http://", "https://", 1), "TLS: the server did not answer with TLS"},
		{"an unknown host", "http://no-such-host.invalid/", "DNS: no such host no-such-host.invalid"},
	}
	c := deliver.New(deliver.Options{AllowPrivate: true, Timeout: 5 * time.Second})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := c.Send(context.Background(), request(tt.url, secret(t, 1)))
			if res.OK() || res.Status != 0 || res.Err != tt.wantErr {
				t.Errorf("Send = %+v, want error %q", res, tt.wantErr)
			}
		})
	}
	if conns, got := plain.seen(); len(got) != 0 {
		t.Errorf("the plain server got %d requests over %d connections, want none", len(got), conns)
	}
}

// A URL is sent to as it was kept: one that holds a character a URL may not hold as it is (an
// endpoint kept before CheckURL refused it) still gets its deliveries, at the URL encoded.
func TestSendDeliversToAURLKeptWithASpace(t *testing.T) {
	t.Parallel()
	paths := make(chan string, 1)
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { paths <- r.URL.EscapedPath() })
	c := deliver.New(deliver.Options{AllowPrivate: true})
	if res := c.Send(context.Background(), request(rcv.URL+"/a b", secret(t, 1))); !res.OK() {
		t.Fatalf("Send = %+v", res)
	}
	if path := <-paths; path != "/a%20b" {
		t.Errorf("path %q, want /a%%20b", path)
	}
}

func TestSendReusesConnections(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"received":true}`)
	})
	c := deliver.New(deliver.Options{AllowPrivate: true})
	for i := range 3 {
		if res := c.Send(context.Background(), request(rcv.URL, secret(t, 1))); !res.OK() {
			t.Fatalf("Send %d = %+v", i, res)
		}
	}
	if conns, got := rcv.seen(); conns != 1 || len(got) != 3 {
		t.Errorf("3 deliveries over %d connections (%d received), want 1", conns, len(got))
	}
}

// Outside the sandbox the URL is checked first: a URL that names a non-public host, or that is
// not https, is refused without a connection.
func TestSendRefusesURLsCheckDestinationRefuses(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, status(200))
	port := rcv.URL[strings.LastIndexByte(rcv.URL, ':')+1:]
	tests := []struct {
		url     string
		wantErr string
	}{
		{rcv.URL, "the webhook URL must use https"},
		{"https://127.0.0.1:" + port + "/", "the webhook URL must not point to a private, loopback, link-local or otherwise non-public address"},
		{"https://localhost:" + port + "/", "the webhook URL must not point to localhost"},
		{"https://[::ffff:127.0.0.1]:" + port + "/", "the webhook URL must not point to a private, loopback, link-local or otherwise non-public address"},
	}
	c := deliver.New(deliver.Options{})
	for _, tt := range tests {
		res := c.Send(context.Background(), request(tt.url, secret(t, 1)))
		if res.OK() || res.Status != 0 || res.Err != tt.wantErr {
			t.Errorf("Send(%s) = %+v, want error %q", tt.url, res, tt.wantErr)
		}
	}
	if conns, _ := rcv.seen(); conns != 0 {
		t.Errorf("the receiver got %d connections, want none", conns)
	}
}

// The check made when a connection is: the address a name resolves to is refused when it is not
// public, so a URL that passed CheckDestination is no way to the host's network.
func TestConnectionsToNonPublicAddressesAreRefusedWhenMade(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, status(200))
	port := rcv.URL[strings.LastIndexByte(rcv.URL, ':')+1:]
	tests := []struct {
		name         string
		url          string
		allowPrivate bool
		wantErr      string
	}{
		{"an IPv4 loopback address is refused", rcv.URL, false, "refused address: the host is not at a public address"},
		{"a name that resolves to loopback is refused", "http://localhost:" + port + "/", false, "refused address: the host is not at a public address"},
		{"an IPv6 loopback address is refused", "http://[::1]:" + port + "/", false, "refused address: the host is not at a public address"},
		{"an IPv4-mapped loopback address is refused", "http://[::ffff:127.0.0.1]:" + port + "/", false, "refused address: the host is not at a public address"},
		{"the sandbox reaches loopback", rcv.URL, true, ""},
		{"the sandbox reaches a name that resolves to loopback", "http://localhost:" + port + "/", true, ""},
		// No receiver is at a link-local address; the cloud's metadata service is.
		{"the sandbox does not reach the metadata address", "http://169.254.169.254:" + port + "/", true, "refused address: the host is not at a public address"},
		{"the sandbox does not reach a link-local IPv6 address", "http://[fe80::1]:" + port + "/", true, "refused address: the host is not at a public address"},
		// Told apart, the two would tell a partner which internal names the server resolves.
		{"outside the sandbox a name that does not resolve is told as a refused address", "https://no-such-host.invalid/", false,
			"refused address: the host is not at a public address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := deliver.New(deliver.Options{AllowPrivate: tt.allowPrivate})
			before, _ := rcv.seen()
			res := deliver.SendUnchecked(context.Background(), c, request(tt.url, secret(t, 1)))
			after, _ := rcv.seen()
			if tt.wantErr == "" {
				if !res.OK() {
					t.Errorf("Send = %+v, want OK", res)
				}
				return
			}
			if res.OK() || res.Status != 0 || res.Err != tt.wantErr {
				t.Errorf("Send = %+v, want error %q", res, tt.wantErr)
			}
			if after != before {
				t.Errorf("the receiver got %d connections, want none", after-before)
			}
		})
	}
}

// A proxy from the environment would be the address checked and would carry the delivery
// anywhere: deliveries never use one.
func TestSendUsesNoProxy(t *testing.T) {
	proxy := newReceiver(t, status(200))
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	c := deliver.New(deliver.Options{AllowPrivate: true, Timeout: 500 * time.Millisecond})
	// 192.0.2.1 (documentation) is no host: a delivery fails unless a proxy answers for it.
	res := c.Send(context.Background(), request("http://192.0.2.1/hooks", secret(t, 1)))
	if res.OK() {
		t.Errorf("Send = %+v, want a failure", res)
	}
	if conns, _ := proxy.seen(); conns != 0 {
		t.Errorf("the proxy got %d connections, want none", conns)
	}
}

func TestSendRefusesIncompleteRequests(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, status(200))
	tests := []struct {
		name    string
		change  func(*deliver.Request)
		wantErr string
	}{
		{"no message id", func(r *deliver.Request) { r.ID = "" }, "no message id"},
		{"no timestamp", func(r *deliver.Request) { r.Timestamp = time.Time{} }, "no timestamp"},
		{"no secret", func(r *deliver.Request) { r.Secrets = nil }, "no signing secret"},
		{"the zero secret", func(r *deliver.Request) { r.Secrets = append(r.Secrets, webhook.Secret{}) }, "no signing secret"},
		{"a URL with a fragment", func(r *deliver.Request) { r.URL += "#x" }, "the webhook URL must not have a fragment (#)"},
	}
	c := deliver.New(deliver.Options{AllowPrivate: true})
	for _, tt := range tests {
		req := request(rcv.URL, secret(t, 1))
		tt.change(&req)
		res := c.Send(context.Background(), req)
		if res.OK() || res.Status != 0 || res.Err != tt.wantErr {
			t.Errorf("%s: Send = %+v, want error %q", tt.name, res, tt.wantErr)
		}
	}
	if conns, _ := rcv.seen(); conns != 0 {
		t.Errorf("the receiver got %d connections, want none", conns)
	}
}

// An answer whose status line holds a code outside HTTP's 100–599 (Go's client takes any three
// digits, 000 to 999) is not an HTTP answer: the deliveries list documents an attempt's status as
// 100 to 599, and a status 0 is no status at all (the attempt would list none beside its error).
func TestAStatusOutsideHTTPsRangeIsNoStatus(t *testing.T) {
	t.Parallel()
	for _, line := range []string{"HTTP/1.1 999 Odd", "HTTP/1.1 600 Odd", "HTTP/1.1 099 Odd", "HTTP/1.1 000 Odd"} {
		rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_, _ = buf.WriteString(line + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
				_ = buf.Flush()
				_ = conn.Close()
			}
		})
		c := deliver.New(deliver.Options{AllowPrivate: true})
		res := c.Send(context.Background(), request(rcv.URL, secret(t, 1)))
		if res.OK() || res.Status != 0 || res.Err != "the answer is not HTTP" {
			t.Errorf("%q: Send = %+v, want no status and the error \"the answer is not HTTP\"", line, res)
		}
	}
}
