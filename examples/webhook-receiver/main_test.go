package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
)

// The receiver of the README gets, verifies and prints the events of a real server, once each,
// and refuses what Pyng did not sign.
func TestReceiverVerifiesThePyngDeliveries(t *testing.T) {
	s := apptest.Start(t, "sqlite")
	ctx := context.Background()
	var out apptest.SyncBuffer
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)

	e, err := s.Service.CreateWebhookEndpoint(ctx, s.Site, billing.WebhookEndpointRequest{URL: ptr(srv.URL + "/pyng")})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := verifier(e.Secret.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	handler = receiver(wh, &out)
	if _, err := s.Service.Invite(ctx, s.Site, "ACME-001"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "customer.invited") {
		if time.Now().After(deadline) {
			t.Fatalf("the receiver printed %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(out.String(), `"customerReference":"ACME-001"`) {
		t.Errorf("printed %q", out.String())
	}

	resp, err := http.Post(srv.URL+"/pyng", "application/json", strings.NewReader(`{"eventId":"evt_forged"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || strings.Contains(out.String(), "evt_forged") {
		t.Errorf("an unsigned request answered %d", resp.StatusCode)
	}
}

// The receiver verifies only with a secret that is one: with an empty key (PYNG_WEBHOOK_SECRET
// unset) the library would take what anyone signed with the empty key.
func TestTheReceiverRefusesASecretThatIsNotOne(t *testing.T) {
	t.Parallel()
	bytesOf := func(n int) string { return "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, n)) }
	tests := []struct {
		name   string
		secret string
		valid  bool
	}{
		{"unset", "", false},
		{"the prefix alone", "whsec_", false},
		{"without its prefix", strings.TrimPrefix(bytesOf(32), "whsec_"), false},
		{"not base64", "whsec_not*base64", false},
		{"a key of 23 bytes", bytesOf(23), false},
		{"a key of 65 bytes", bytesOf(65), false},
		{"a key of 24 bytes", bytesOf(24), true},
		{"a key of 64 bytes", bytesOf(64), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := verifier(tt.secret); (err == nil) != tt.valid {
				t.Errorf("verifier(%q) = %v, want valid %v", tt.secret, err, tt.valid)
			}
		})
	}
}

// Without a secret that is one, the program does not start: it says why and exits 1, rather than
// accepting what anyone signed.
func TestTheReceiverDoesNotStartWithoutASecret(t *testing.T) {
	t.Parallel()
	binary := filepath.Join(t.TempDir(), "webhook-receiver")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, secret := range []string{"", "whsec_c2hvcnQ="} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary)
		cmd.Env = append(os.Environ(), "PYNG_WEBHOOK_SECRET="+secret)
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "PYNG_WEBHOOK_SECRET must be the endpoint's secret") {
			t.Errorf("PYNG_WEBHOOK_SECRET=%q: exit %d, output %q; want 1 and why", secret, code, out)
		}
	}
}

// The README shows this program as it is.
func TestTheREADMEShowsThisReceiver(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	source, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), string(source)) {
		t.Error("README.md does not show examples/webhook-receiver/main.go as it is; copy it there again")
	}
}

func ptr[T any](v T) *T { return &v }
