package app_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/dbtest"
)

// outageProxy forwards TCP connections to PostgreSQL until it is cut: then it closes every
// connection it forwards and refuses new ones, as a database that went away does.
type outageProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newOutageProxy(t *testing.T, target string) *outageProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &outageProxy{ln: ln, target: target}
	t.Cleanup(p.cut)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *outageProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// While the database cannot be reached, the API answers 503 unavailable (with Retry-After) and
// the token endpoint 503 temporarily_unavailable, rather than 500: the failure is not the
// request's, and a client may send it again shortly. /readyz says so too.
func TestTheAPIAnswers503WhileTheDatabaseIsAway(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(dbtest.URL(t, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := newOutageProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	var logs apptest.LogBuffer
	r := runServer(t, map[string]string{"database-url": u.String(), "encryption-key": dbtest.KeyRing,
		"sandbox": "true", "client-cache-ttl": "1h"}, logs.Logger())
	base := r.base
	clientID, secret, site := r.banner(t, `client id\s+(\S+)`), r.banner(t, `client secret\s+(\S+)`), r.banner(t, `site\s+(site_\S+)`)
	tokenRequest := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := tokenRequest()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("token before the outage: %d, %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	list := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/billing/sites/"+site+"/customers", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Pyng-Api-Version", "urn:pyng:api:billing:version:v1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := list(); resp.StatusCode != http.StatusOK {
		t.Fatalf("customers before the outage: %d", resp.StatusCode)
	}

	proxy.cut()
	resp = list()
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "urn:pyng:platform:billing:error:unavailable") ||
		resp.Header.Get("Retry-After") == "" {
		t.Errorf("customers during the outage: %d, Retry-After %q, %s; want 503 unavailable with Retry-After\nlog: %s",
			resp.StatusCode, resp.Header.Get("Retry-After"), body, logs.String())
	}
	resp = tokenRequest()
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"temporarily_unavailable"`) {
		t.Errorf("token during the outage: %d, %s; want 503 temporarily_unavailable\nlog: %s", resp.StatusCode, body, logs.String())
	}
	if resp, err := http.Get(base + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %v, %v; want 503", resp, err)
	}
}
