package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

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
	wh, err := standardwebhooks.NewWebhook(e.Secret.Reveal())
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
