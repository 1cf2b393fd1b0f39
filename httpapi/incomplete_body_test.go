package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/dbtest"
)

// requestLines are the request lines for route of a server's JSON log.
func requestLines(log *apptest.SyncBuffer, route string) []map[string]any {
	var lines []map[string]any
	for _, line := range strings.Split(log.String(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) == nil && entry["msg"] == "request" && entry["route"] == route {
			lines = append(lines, entry)
		}
	}
	return lines
}

// rawRequest opens a loopback connection to the server and sends a request whose header
// announces contentLength bytes of body but whose body is only body.
func rawRequest(t *testing.T, s *apptest.Server, token, path, contentType string, contentLength int, body string) *net.TCPConn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nPyng-Api-Version: %s\r\n",
		path, strings.TrimPrefix(s.URL, "http://"), contentType, contentLength, apptest.APIVersion)
	if token != "" {
		head += "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := io.WriteString(conn, head+"\r\n"+body); err != nil {
		t.Fatal(err)
	}
	return conn.(*net.TCPConn)
}

// readAnswer reads the answer to a raw request.
func readAnswer(t *testing.T, conn net.Conn) (*http.Response, errorBody) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var body errorBody
	if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(data, &body) != nil || len(body.Errors) != 1 ||
		body.Errors[0].Code != codePrefix+"request:malformed-json" || body.TraceID != resp.Header.Get("Pyng-Trace-Id") {
		t.Fatalf("answer = %d %s, want 400 request:malformed-json with the traceId", resp.StatusCode, data)
	}
	return resp, body
}

// TestIncompleteRequestBodiesAre400sNotLoggedAsErrors sends bodies shorter than their
// Content-Length over real loopback connections: a client that half-closes its side, one that
// closes the connection, and one whose body stops arriving until the server's read timeout. Each
// is the client's failure: a 400 (when anyone is left to read it) and no ERROR log line.
func TestIncompleteRequestBodiesAre400sNotLoggedAsErrors(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			log := &apptest.SyncBuffer{}
			s := apptest.Start(t, engine, apptest.Options{
				Logger:      slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
				ReadTimeout: 500 * time.Millisecond,
			})
			p := mainPartner(t, s)
			site := "/billing/sites/" + p.site
			endpoints := []struct {
				name, path, route, body string
			}{
				{"an invitation", site + "/customers/invitations", "POST /billing/sites/{siteId}/customers/invitations", `{"customerReference":"ACM`},
				{"a batch", site + "/batches", "POST /billing/sites/{siteId}/batches", `{"batchReference":"B-1","rows":[{"rowRef`},
				{"a revocation", site + "/customers/ACME-001/revoke", "POST /billing/sites/{siteId}/customers/{customerReference}/revoke", `{`},
			}
			for _, e := range endpoints {
				t.Run(e.name+": half-closed after part of the body is a 400", func(t *testing.T) {
					conn := rawRequest(t, s, p.token, e.path, "application/json", 100, e.body)
					if err := conn.CloseWrite(); err != nil {
						t.Fatal(err)
					}
					readAnswer(t, conn)
				})
				t.Run(e.name+": a body that stops arriving is a 400 at the read timeout", func(t *testing.T) {
					conn := rawRequest(t, s, p.token, e.path, "application/json", 100, e.body)
					readAnswer(t, conn)
				})
				t.Run(e.name+": closed after part of the body is answered 400 to no one", func(t *testing.T) {
					before := len(requestLines(log, e.route))
					conn := rawRequest(t, s, p.token, e.path, "application/json", 100, e.body)
					conn.Close()
					deadline := time.Now().Add(20 * time.Second)
					for len(requestLines(log, e.route)) == before {
						if time.Now().After(deadline) {
							t.Fatalf("no request line logged for %s", e.route)
						}
						time.Sleep(10 * time.Millisecond)
					}
					lines := requestLines(log, e.route)
					if status := lines[len(lines)-1]["status"]; status != float64(http.StatusBadRequest) {
						t.Errorf("request logged with status %v, want 400", status)
					}
				})
			}
			t.Run("the token endpoint answers a half-closed form 400 invalid_request", func(t *testing.T) {
				conn := rawRequest(t, s, "", "/oauth2/token", "application/x-www-form-urlencoded", 100, "grant_type=client_cre")
				if err := conn.CloseWrite(); err != nil {
					t.Fatal(err)
				}
				_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatal(err)
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(data), `"error":"invalid_request"`) {
					t.Errorf("answer = %d %s, want 400 invalid_request", resp.StatusCode, data)
				}
			})
			t.Run("nothing was logged at ERROR", func(t *testing.T) {
				for _, line := range strings.Split(log.String(), "\n") {
					if strings.Contains(line, `"level":"ERROR"`) {
						t.Errorf("logged at ERROR: %s", line)
					}
				}
			})
		})
	}
}
