package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pyng/receivables/client"
)

// A call whose context ends while another call of the same client obtains a token returns with
// its context's error, not when the token request ends; the request was not sent (ErrNotSent).
func TestAWaitForATokenEndsWithTheCallsContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/oauth2/token" {
			<-release // a slow (or hung) token endpoint
			fmt.Fprint(w, `{"access_token":"tok","token_type":"Bearer","expires_in":3600}`)
			return
		}
		fmt.Fprint(w, `{"data":[],"traceId":"x"}`)
	}))
	defer srv.Close()
	defer close(release)
	c, err := client.New(client.Config{BaseURL: srv.URL, ClientID: "cli", ClientSecret: "sec", HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	site := c.Site("site_1")
	go site.WebhookEndpoints(context.Background()) // holds the token lock while its request hangs
	time.Sleep(100 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := site.WebhookEndpoints(ctx); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, client.ErrNotSent) || errors.Is(err, client.ErrNoAnswer) {
			t.Errorf("err = %v, want the context's deadline, ErrNotSent (the request waited for its token), not ErrNoAnswer", err)
		}
	case <-time.After(2 * time.Second):
		t.Errorf("a call with a 200ms deadline had not returned after 2s: it waits on tokens.mu, whatever its context")
	}
}
