package app_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/storage"
)

// syncBuffer collects what the server prints while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestShutdownLetsInFlightRequestsFinish starts a request, stops the server while the request's
// body is still arriving, and checks that the request is answered in full before Run returns.
func TestShutdownLetsInFlightRequestsFinish(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			cfg, err := app.Load(map[string]*string{"addr": &addr, "database-url": ptr(dbtest.URL(t, engine)), "encryption-key": ptr(dbtest.KeyRing)})
			if err != nil {
				t.Fatal(err)
			}
			out := &syncBuffer{}
			server, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler), out)
			if err != nil {
				t.Fatal(err)
			}
			ctx, stop := context.WithCancel(context.Background())
			ran := make(chan error, 1)
			go func() { ran <- server.Run(ctx) }()
			base := "http://" + addr
			waitReady(t, base)

			banner := out.String()
			clientID := regexp.MustCompile(`client id\s+(\S+)`).FindStringSubmatch(banner)[1]
			secret := regexp.MustCompile(`client secret\s+(\S+)`).FindStringSubmatch(banner)[1]
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
			stop()
			time.Sleep(200 * time.Millisecond)
			select {
			case err := <-ran:
				t.Fatalf("Run returned with a request in flight: %v", err)
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
			case err := <-ran:
				if err != nil {
					t.Fatalf("Run: %v", err)
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

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
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
