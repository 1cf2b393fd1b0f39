package app_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/storage"
)

// TestShutdownLetsInFlightRequestsFinish starts a request, stops the server while the request's
// body is still arriving, and checks that the request is answered in full before Run returns.
func TestShutdownLetsInFlightRequestsFinish(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			r := runServer(t, map[string]string{"database-url": dbtest.URL(t, engine), "encryption-key": dbtest.KeyRing}, slog.New(slog.DiscardHandler))
			base := r.base
			clientID, secret := r.banner(t, `client id\s+(\S+)`), r.banner(t, `client secret\s+(\S+)`)
			body, send := io.Pipe()
			req, _ := http.NewRequest("POST", base+"/oauth2/token", body)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(clientID, secret)
			answered := make(chan *http.Response, 1)
			go func() {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("in-flight request: %v", err)
					close(answered)
					return
				}
				answered <- resp
			}()
			form := url.Values{"grant_type": {"client_credentials"}}.Encode()
			_, _ = send.Write([]byte(form[:5])) // the request is now in flight
			time.Sleep(100 * time.Millisecond)
			r.signal()
			time.Sleep(200 * time.Millisecond)
			select {
			case <-r.done:
				t.Fatalf("Run returned with a request in flight: %v", r.err)
			default:
			}
			_, _ = send.Write([]byte(form[5:]))
			send.Close()
			resp := <-answered
			if resp == nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("in-flight request answered %v, want 200", resp)
			}
			resp.Body.Close()
			select {
			case <-r.done:
				if r.err != nil {
					t.Fatalf("Run: %v", r.err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after the in-flight request finished")
			}
			if _, err := http.Get(base + "/healthz"); err == nil {
				t.Error("the server still accepts connections after shutdown")
			}
		})
	}
}

func ptr(s string) *string { return &s }

// running is a server runServer started: its base URL and what it printed.
type running struct {
	base string
	out  *apptest.SyncBuffer
	// signal asks Run to return, as SIGTERM does; done is closed once it has, err what it
	// returned.
	signal func()
	done   chan struct{}
	err    error
	// stop signals and waits for Run, reporting its error; the test's end calls it too.
	stop func()
}

// runServer runs app.New and Run with settings on a free loopback port, logging to logger, until
// it is stopped or the test ends, and waits until it is ready.
func runServer(t *testing.T, settings map[string]string, logger *slog.Logger) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	values := map[string]*string{"addr": &addr}
	for name, v := range settings {
		values[name] = ptr(v)
	}
	cfg, err := app.Load(values)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{base: "http://" + addr, out: &apptest.SyncBuffer{}, done: make(chan struct{})}
	server, err := app.New(context.Background(), cfg, logger, r.out)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.signal = cancel
	go func() { r.err = server.Run(ctx); close(r.done) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			<-r.done
			if r.err != nil {
				t.Errorf("Run: %v", r.err)
			}
		})
	}
	t.Cleanup(r.stop)
	waitReady(t, r.base)
	return r
}

// banner is the value of the first-run banner that pattern's group matches.
func (r *running) banner(t *testing.T, pattern string) string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(r.out.String())
	if m == nil {
		t.Fatalf("the banner has no %s:\n%s", pattern, r.out.String())
	}
	return m[1]
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	// Without keep-alives, so that the readiness checks hold no connection afterwards (the
	// connection limit's tests count them).
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := client.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("server not ready")
}

// TestReplicasStartingTogetherCreateOneDemo starts several servers at once on one empty database:
// exactly one creates the demo organisation.
func TestReplicasStartingTogetherCreateOneDemo(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			databaseURL := dbtest.URL(t, engine)
			values := map[string]*string{"database-url": &databaseURL}
			if engine == storage.EnginePostgres {
				values["encryption-key"] = ptr(dbtest.KeyRing) // on SQLite the replicas share the key the sandbox makes
			}
			cfg, err := app.Load(values)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Go(func() {
					server, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard)
					if err != nil {
						t.Errorf("replica %d: %v", i, err)
						return
					}
					server.Close()
				})
			}
			wg.Wait()
			db, err := storage.Open(context.Background(), databaseURL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if n, err := db.CountOrganisations(context.Background()); n != 1 || err != nil {
				t.Errorf("organisations = %d, %v; want the one demo organisation", n, err)
			}
		})
	}
}

// TestHSTSWhenThePublicURLIsHTTPS checks that behind an https public URL every answer, of the
// API and of the pages, carries Strict-Transport-Security, and that none does behind http (where
// a browser would be told to insist on an https the server does not offer).
func TestHSTSWhenThePublicURLIsHTTPS(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		for publicURL, want := range map[string]string{
			"https://pay.example.com": "max-age=63072000; includeSubDomains",
			"":                        "",
		} {
			t.Run(engine+" "+publicURL, func(t *testing.T) {
				t.Parallel()
				s := apptest.Start(t, engine, apptest.Options{PublicURL: publicURL})
				token := s.Token(t, s.Partner)
				site := "/billing/sites/" + s.Site.ID
				answers := map[string]*apptest.Response{
					"a page of customers": s.Do(t, apptest.Request{Method: http.MethodGet, Path: site + "/customers", Token: token}),
					"an API error":        s.Do(t, apptest.Request{Method: http.MethodGet, Path: site + "/customers"}),
					"a token error":       s.Do(t, apptest.Request{Method: http.MethodPost, Path: "/oauth2/token", Body: "grant_type=password", Header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}),
					"an unknown path":     s.Do(t, apptest.Request{Method: http.MethodGet, Path: "/nowhere"}),
					"liveness":            s.Do(t, apptest.Request{Method: http.MethodGet, Path: "/healthz"}),
				}
				// The pages are HTML, which the validating client does not read.
				noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				for name, path := range map[string]string{
					"the signup page":    "/signup?token=forged",
					"the agreement page": "/agreement?token=forged",
					"a page's redirect":  "//signup",
				} {
					resp, err := noRedirects.Get(s.URL + path)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					answers[name] = &apptest.Response{Status: resp.StatusCode, Header: resp.Header}
				}
				for name, r := range answers {
					if got := r.Header.Get("Strict-Transport-Security"); got != want {
						t.Errorf("%s (%d): Strict-Transport-Security %q, want %q", name, r.Status, got, want)
					}
				}
			})
		}
	}
}

// The customer's pages are served as the API's answers are: a traceId in Pyng-Trace-Id and a
// request line in the log, by the page's path pattern, never with the token of its query.
func TestThePagesAnswersHaveATraceIDAndALogLine(t *testing.T) {
	var log apptest.LogBuffer
	s := apptest.Start(t, "sqlite", apptest.Options{Logger: log.Logger()})
	for path, route := range map[string]string{"/signup?token=forged-signup": "/signup", "/agreement?token=forged-agreement": "/agreement"} {
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		trace := resp.Header.Get("Pyng-Trace-Id")
		if trace == "" {
			t.Errorf("GET %s (%d): no Pyng-Trace-Id", path, resp.StatusCode)
		}
		// The line is written once the answer has gone: wait for it.
		want := fmt.Sprintf("msg=request method=GET route=%s status=%d", route, resp.StatusCode)
		logged := func() bool {
			return strings.Contains(log.String(), want) && strings.Contains(log.String(), "traceId="+trace)
		}
		for deadline := time.Now().Add(5 * time.Second); !logged() && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if !logged() {
			t.Errorf("GET %s: the log holds no %q with traceId %s:\n%s", path, want, trace, log.String())
		}
	}
	if strings.Contains(log.String(), "forged") {
		t.Errorf("the log holds a page's token:\n%s", log.String())
	}
}

// A path under the customer's pages (/signup/, /agreement/, /service-agreement/) that routes to no
// page is answered with the pages' HTML not-found page, as a browser shows it, not with the
// partner API's JSON, even when it is not in its clean form and its clean form is none of the
// pages' (/service-agreement/.. cleans to /): it is not redirected out of the pages. A path
// whose clean form is a page keeps the mux's redirect to it; the API's paths keep their JSON.
func TestPathsUnderThePagesThatRouteNowhereAreThePagesNotFound(t *testing.T) {
	s := apptest.Start(t, "sqlite")
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(t *testing.T, path string) (*http.Response, string) {
		t.Helper()
		resp, err := noRedirects.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(body)
	}
	for _, path := range []string{"/signup/", "/signup/x", "/signup/x/y", "/signup/..", "/signup//x",
		"/signup/../billing/sites/x/customers", "/agreement/", "/agreement/x/y", "/agreement/revoke/x", "/agreement/..",
		"/service-agreement/", "/service-agreement/x/y", "/service-agreement/..", "/service-agreement/%2e%2e",
		"/service-agreement/x/..", "/signup//"} {
		resp, body := get(t, path)
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
			!strings.Contains(body, "Page not found") || resp.Header.Get("Content-Security-Policy") == "" ||
			resp.Header.Get("Pyng-Trace-Id") == "" {
			t.Errorf("GET %s = %d %q (Location %q): %.200q; want the pages' 404 page", path, resp.StatusCode,
				resp.Header.Get("Content-Type"), resp.Header.Get("Location"), body)
		}
	}
	for path, location := range map[string]string{"/service-agreement/./x": "/service-agreement/x", "/agreement/revoke/..": "/agreement",
		"/agreement//revoke": "/agreement/revoke", "//signup?token=x": "/signup?token=x"} {
		if resp, _ := get(t, path); resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != location {
			t.Errorf("GET %s = %d Location %q, want 307 to %s", path, resp.StatusCode, resp.Header.Get("Location"), location)
		}
	}
	for _, path := range []string{"/billing/x", "/billing/..", "/billing/sites/x/../../nowhere", "/", "/signupx", "/nowhere/../x"} {
		if resp, body := get(t, path); resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/json;charset=UTF-8" ||
			!strings.Contains(body, "request:not-found") {
			t.Errorf("GET %s = %d %q: %.200q; want the API's JSON 404", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
}

// serve runs a server of the engine, with the settings given, until the test ends, and returns
// its address once it is ready.
func serve(t *testing.T, engine string, settings map[string]string) string {
	t.Helper()
	all := map[string]string{"database-url": dbtest.URL(t, engine), "encryption-key": dbtest.KeyRing}
	maps.Copy(all, settings)
	return strings.TrimPrefix(runServer(t, all, slog.New(slog.DiscardHandler)).base, "http://")
}

// keepAlive opens a connection to addr and sends GET /healthz on it, leaving it open.
func keepAlive(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return conn, bufio.NewReader(conn)
}

// answered reads the answer to the request sent on conn within wait, and reports whether it came.
func answered(t *testing.T, conn net.Conn, r *bufio.Reader, wait time.Duration) bool {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(r, nil)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz = %d", resp.StatusCode)
	}
	return true
}

// TestConnectionsBeyondTheLimitWait opens more connections than -max-connections allows against a
// real server on loopback, the held ones busy with a request (a body still coming): the extra ones
// are not served while the limit holds, and each is served once a held connection closes.
func TestConnectionsBeyondTheLimitWait(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			addr := serve(t, engine, map[string]string{"max-connections": "2"})
			first, second := busy(t, addr), busy(t, addr)
			third, thirdReader := keepAlive(t, addr)
			fourth, fourthReader := keepAlive(t, addr)
			if answered(t, third, thirdReader, 1500*time.Millisecond) {
				t.Fatal("a third connection was served while two were busy, the limit")
			}
			first.Close()
			if !answered(t, third, thirdReader, 10*time.Second) {
				t.Fatal("the third connection was not served once the first closed")
			}
			// The third is idle now: the fourth takes its slot.
			if !answered(t, fourth, fourthReader, 10*time.Second) {
				t.Fatal("the fourth connection was not served in the slot of the idle third")
			}
			second.Close()
		})
	}
}

// TestNoOneHoldsEverySlotWithoutSendingRequests fills -max-connections with connections that hold
// their slot without a request in progress, as one client could to keep everyone else out: idle
// keep-alive connections, or connections that sent nothing. Another client is served all the
// same, in the slot of the one idle longest, or of one that has sent nothing for a second.
func TestNoOneHoldsEverySlotWithoutSendingRequests(t *testing.T) {
	for _, held := range []string{"idle", "silent"} {
		t.Run(held, func(t *testing.T) {
			t.Parallel()
			addr := serve(t, storage.EngineSQLite, map[string]string{"max-connections": "3"})
			for range 3 {
				if held == "silent" {
					conn, err := net.Dial("tcp", addr)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { conn.Close() })
					continue
				}
				conn, r := keepAlive(t, addr)
				if !answered(t, conn, r, 10*time.Second) {
					t.Fatal("a connection within the limit was not served")
				}
			}
			other, r := keepAlive(t, addr)
			if !answered(t, other, r, 5*time.Second) {
				t.Fatalf("another client was not served while %s connections held every slot", held)
			}
		})
	}
}

// busy opens a connection to addr and starts a request on it whose body does not all come, so
// that the server is busy with it until the connection closes (or its read timeout).
func busy(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, "POST /oauth2/token HTTP/1.1\r\nHost: "+addr+
		"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type="); err != nil {
		t.Fatal(err)
	}
	return conn
}

// GET /metrics is served on PYNG_METRICS_ADDR alone when it is set (the monitoring network's),
// the API's address answering it as a route it does not have; without it, on the API's address in
// a sandbox on this machine, and nowhere else (the metrics would tell anyone the volume of a
// business, or of the partners sharing a hosted sandbox).
// The count of emails held back by an address's cap is served on PYNG_METRICS_ADDR alone.
func TestMetricsAreServedWhereConfigured(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	production := map[string]string{"sandbox": "false", "public-url": "https://pay.example.com"}
	for _, tc := range []struct {
		name     string
		settings map[string]string
		api      int // the status of GET /metrics on the API's address
	}{
		{"their own listener", map[string]string{"metrics-addr": metricsAddr}, http.StatusNotFound},
		{"the sandbox, without one", nil, http.StatusOK},
		{"a sandbox others reach, without one", map[string]string{"public-url": "https://sandbox.example.com"}, http.StatusNotFound},
		{"outside the sandbox, without one", production, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(t, "sqlite", tc.settings)
			checks := map[string]int{"http://" + addr + "/metrics": tc.api} // URL: status
			if tc.settings["metrics-addr"] != "" {
				checks["http://"+metricsAddr+"/metrics"] = http.StatusOK
			}
			for url, status := range checks {
				resp, err := http.Get(url)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := []string{"request:not-found"}
				if status == http.StatusOK {
					// Every kind of job's failures from zero: a counter that first appears at 1
					// shows Prometheus no increase to alert on.
					want = []string{`pyng_jobs_waiting{queue="emails"} 0`, `pyng_jobs_waiting{queue="withdrawals"} 0`, `pyng_job_failures_total{kind="execute_batch",last="false",task=""} 0`,
						`pyng_job_failures_total{kind="deliver_webhooks",last="true",task=""} 0`,
						`pyng_job_failures_total{kind="run_task",last="true",task="becs_cut"} 0`,
						`pyng_job_failures_total{kind="run_task",last="false",task="becs_deliver"} 0`}
				}
				// The emails held back by an address's cap are counted on the operator's own
				// listener alone: on the sandbox API's, a partner who spent a guessed address's
				// cap would watch the count rise as its customer's email to it is held back.
				const suppressed = `pyng_customer_emails_suppressed_total{kind="managementLink"} 0`
				ownListener := status == http.StatusOK && url == "http://"+metricsAddr+"/metrics"
				if ownListener {
					want = append(want, suppressed)
				} else if strings.Contains(string(body), "pyng_customer_emails_suppressed_total") {
					t.Errorf("GET %s shows the emails held back by an address's cap to whoever reaches the API", url)
				}
				for _, w := range want {
					if resp.StatusCode != status || !strings.Contains(string(body), w) {
						t.Errorf("GET %s: %d %.300s; want %d with %q", url, resp.StatusCode, body, status, w)
					}
				}
			}
		})
	}
}

// A sandbox start that fails to open its database for a reason of its own (here, a file that is
// not a database) keeps the key file it made: replicas starting together share that file, and
// another may be sealing with it. Only another application's database, which every replica
// refuses, has its key removed (cmd/pyng TestADatabaseOfAnotherApplicationIsRefused).
func TestAFailedStartKeepsTheSandboxKeyItMade(t *testing.T) {
	path := t.TempDir() + "/pyng.db"
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 300)), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "sqlite:" + path
	cfg, err := app.Load(map[string]*string{"database-url": &url})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard); err == nil {
		s.Close()
		t.Fatal("the server started on a file that is not a database")
	}
	if _, err := os.Stat(path + app.KeyFileSuffix); err != nil {
		t.Errorf("the key file made for it is gone: %v", err)
	}
}

// With PYNG_SHUTDOWN_DRAIN, a stopped server keeps serving for the drain: /readyz answers 503, so
// that a load balancer stops sending to it, and every answer closes its connection, so that no
// client sends its next request on a connection about to close; then it stops as without.
func TestShutdownDrainsFirst(t *testing.T) {
	t.Parallel()
	const drain = 1500 * time.Millisecond
	logs := &apptest.SyncBuffer{}
	r := runServer(t, map[string]string{"database-url": dbtest.URL(t, "sqlite"), "encryption-key": dbtest.KeyRing,
		"shutdown-drain": drain.String()}, slog.New(slog.NewTextHandler(logs, nil)))
	base := r.base
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s while draining: %v", path, err)
		}
		resp.Body.Close()
		return resp
	}
	stopped := time.Now()
	r.signal()
	// The signal is handled a moment later (more on a loaded machine): /readyz is asked until it
	// answers 503, for half the drain at most.
	waitFor(t, drain/2, "/readyz while draining does not answer 503", func() bool {
		return get("/readyz").StatusCode == http.StatusServiceUnavailable
	})
	if resp := get("/healthz"); resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("/healthz while draining = %d, closing its connection %v; want 200, closing it", resp.StatusCode, resp.Close)
	}
	select {
	case <-r.done:
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the drain")
	}
	if took := time.Since(stopped); took < drain {
		t.Errorf("Run returned %v after the stop, before the drain of %v ended", took, drain)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the server still accepts connections after the drain")
	}
	// The drain is expected: a load balancer's probes of /readyz meanwhile warn of nothing.
	if strings.Contains(logs.String(), "not ready") {
		t.Errorf("the drain's /readyz answers were logged as warnings:\n%s", logs.String())
	}
}

// A request still in flight at the end of the shutdown's grace period (a client sending its body
// slowly) is cut off, and the stop goes on to stop the jobs and succeeds: before, Run returned
// "shutdown: context deadline exceeded" at once, leaving the jobs running as the process exited.
func TestShutdownCutsOffARequestStillInFlightAtTheGracePeriodsEnd(t *testing.T) {
	app.SetShutdownGrace(t, 300*time.Millisecond)
	logs := &apptest.SyncBuffer{}
	r := runServer(t, map[string]string{"database-url": dbtest.URL(t, "sqlite"), "encryption-key": dbtest.KeyRing},
		slog.New(slog.NewTextHandler(logs, nil)))
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Half a body of the length announced: the server waits for the rest.
	if _, err := io.WriteString(conn, "POST /oauth2/token HTTP/1.1\r\nHost: pyng\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type="); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	r.signal()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the grace period")
	}
	if r.err != nil {
		t.Errorf("Run: %v; want the request cut off and nil", r.err)
	}
	if !strings.Contains(logs.String(), "requests still in flight at the end of the shutdown's grace period are cut off") {
		t.Errorf("no warning of the request cut off in the log:\n%s", logs.String())
	}
}

// A request's header, its request line with it, is bounded (app.MaxHeaderBytes; beyond it, 431),
// not Go's 1 MiB that each of the connections could hold; and what of it the server echoes (a
// method no route takes: any token is one) or logs is bounded too, with no token needed to send it.
func TestARequestsHeaderIsBoundedAndNeverEchoedWhole(t *testing.T) {
	logs := &apptest.LogBuffer{}
	addr := strings.TrimPrefix(runServer(t, map[string]string{"database-url": dbtest.URL(t, storage.EngineSQLite),
		"encryption-key": dbtest.KeyRing}, logs.Logger()).base, "http://")
	send := func(request string) (*http.Response, []byte) { t.Helper(); return rawRequest(t, addr, request) }
	resp, _ := send("GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\nX-Large: " + strings.Repeat("a", app.MaxHeaderBytes+8<<10) + "\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a header larger than %d bytes answered %s; want 431", app.MaxHeaderBytes, resp.Status)
	}

	method := strings.Repeat("A", app.MaxHeaderBytes/2)
	resp, body := send(method + " /billing/sites/site_x/batches HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
	if resp.StatusCode != http.StatusMethodNotAllowed || len(body) > 1<<10 {
		t.Errorf("a method of %d bytes answered %s with %d bytes; want 405, of at most 1 KiB", len(method), resp.Status, len(body))
	}
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, method[:200]) && len(line) > 2<<10 {
			t.Errorf("a log line of %d bytes holds the method", len(line))
		}
	}
}

// A CONNECT request of a host and port, which names no path, is answered as any request no route
// takes: the API's JSON 404 with its trace id, not the mux's text.
func TestAConnectRequestIsAnsweredWithTheErrorEnvelope(t *testing.T) {
	addr := serve(t, storage.EngineSQLite, nil)
	resp, body := rawRequest(t, addr, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		resp.Header.Get("Pyng-Trace-Id") == "" || !strings.Contains(string(body), "request:not-found") {
		t.Errorf("CONNECT example.com:443 answered %s %q: %s; want the JSON 404 with a trace id", resp.Status, resp.Header.Get("Content-Type"), body)
	}
}

// rawRequest sends request, as written, on a new connection to addr, and reads its answer.
func rawRequest(t *testing.T, addr, request string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
