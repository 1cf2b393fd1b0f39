package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/client"
)

// A batch accepted executes whatever becomes of its wait: AwaitBatch reads it again through
// failures that may pass, as long as they last, and when the wait ends without the outcome says
// that the batch was accepted, so that the program does not take the error for a batch not made
// and submit its rows again under another reference (every customer debited twice).
func TestAwaitBatchGoesOnThroughTemporaryFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		answers    []answer
		timeout    time.Duration
		wantStatus int    // of the *client.Error the error is (errors.As); 0: none
		unknown    bool   // the error is ErrOutcomeUnknown
		wantIs     error  // and that too, if not nil
		progress   string // a regexp of the reads reported, each "completed " or its status and a space
		requests   int    // 0: any number
	}{
		{"502s, then the batch completed: the batch is returned",
			[]answer{{status: 502}, {status: 502}, {status: 502}, {status: 200}}, 0, 0, false, nil, "^502 502 502 completed $", 4},
		{"a 429's Retry-After is waited for, though longer than the interval",
			[]answer{{status: 429, retryAfter: "1"}, {status: 200}}, 0, 0, false, nil, "^429 completed $", 2},
		{"a 503's Retry-After is waited for too",
			[]answer{{status: 503, retryAfter: "1"}, {status: 200}}, 0, 0, false, nil, "^503 completed $", 2},
		{"a 403 ends the wait at once: accepted, outcome unknown",
			[]answer{{status: 403}, {status: 200}}, 0, 403, true, nil, "^$", 1},
		{"a 404 is returned as it is: the batch is not known to have been accepted",
			[]answer{{status: 404}, {status: 200}}, 0, 404, false, nil, "^$", 1},
		{"the end of the context ends the wait: accepted, outcome unknown, and the deadline",
			[]answer{{status: 502}}, 300 * time.Millisecond, 0, true, context.DeadlineExceeded, "^(502 )+$", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// No retries of the client's own: AwaitBatch's alone are under test.
			ctx, site, f := flakySite(t, tt.answers, client.Config{MaxRetries: -1}, tt.timeout)
			var reads strings.Builder
			b, err := site.AwaitBatchProgress(ctx, "B-1", 10*time.Millisecond, func(b *client.BatchDetail, err error) {
				var apiErr *client.Error
				switch {
				case err == nil:
					fmt.Fprintf(&reads, "%s ", b.State)
				case errors.As(err, &apiErr):
					fmt.Fprintf(&reads, "%d ", apiErr.StatusCode)
				default:
					fmt.Fprintf(&reads, "%v ", err)
				}
			})
			var apiErr *client.Error
			switch {
			case tt.wantStatus == 0 && !tt.unknown:
				if err != nil || b.State != client.BatchCompleted {
					t.Errorf("AwaitBatch = %+v, %v; want the batch completed", b, err)
				}
			case tt.wantStatus != 0 && (!errors.As(err, &apiErr) || apiErr.StatusCode != tt.wantStatus):
				t.Errorf("error = %v, want the answer's *client.Error, %d", err, tt.wantStatus)
			}
			if tt.unknown != errors.Is(err, client.ErrOutcomeUnknown) {
				t.Errorf("error = %v: errors.Is ErrOutcomeUnknown is %v, want %v", err, !tt.unknown, tt.unknown)
			}
			if tt.unknown && !strings.Contains(fmt.Sprint(err), "batch B-1 was accepted and executes, but its outcome is unknown") {
				t.Errorf("error = %v, want it to say plainly that the batch was accepted and its outcome is unknown", err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error = %v, want one that is %v", err, tt.wantIs)
			}
			if !regexp.MustCompile(tt.progress).MatchString(reads.String()) {
				t.Errorf("reads reported %q, want %s", reads.String(), tt.progress)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if tt.requests != 0 && len(f.requests) != tt.requests {
				t.Errorf("the server saw %d requests, want %d", len(f.requests), tt.requests)
			}
			for i := 1; i < len(f.requests); i++ {
				if early := f.requests[i-1].notBefore.Sub(f.requests[i].at); early > 0 {
					t.Errorf("read %d came %v before the Retry-After of the one before allowed", i+1, early)
				}
			}
		})
	}
}

// Temporary is the one rule of what may pass, which AwaitBatch and the partner CLI go on through.
func TestTemporaryTellsWhatMayPassFromARefusal(t *testing.T) {
	t.Parallel()
	value := func(err error) func(*testing.T) error { return func(*testing.T) error { return err } }
	tests := []struct {
		name string
		err  func(t *testing.T) error
		want bool
	}{
		{"a 429", value(&client.Error{StatusCode: 429}), true},
		{"a 502, wrapped", value(fmt.Errorf("reading: %w", &client.Error{StatusCode: 502})), true},
		{"a 503", value(&client.Error{StatusCode: 503}), true},
		{"a 403", value(&client.Error{StatusCode: 403}), false},
		{"a 409", value(&client.Error{StatusCode: 409}), false},
		{"no answer", value(client.ErrNoAnswer), true},
		{"a network error", value(&net.OpError{Op: "dial", Err: errors.New("connection refused")}), true},
		{"any other error", value(errors.New("the answer is not a {data, traceId} envelope")), false},
		{"no error", value(nil), false},
		{"a token endpoint out of reach", func(t *testing.T) error { return readWithToken(t, nil) }, true},
		{"a token refused (ErrNotSent too)", func(t *testing.T) error {
			return readWithToken(t, func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"error":"invalid_client"}`)
			})
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.err(t)
			if got := client.Temporary(err); got != tt.want {
				t.Errorf("Temporary(%v) = %v, want %v", err, got, tt.want)
			}
		})
	}
}

// readWithToken is the error of a read whose access token the token endpoint answers with
// token; one that is out of reach when token is nil.
func readWithToken(t *testing.T, token func(http.ResponseWriter)) error {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { token(w) }))
	if token == nil {
		srv.Close()
	} else {
		t.Cleanup(srv.Close)
	}
	c, err := client.New(client.Config{BaseURL: srv.URL, ClientID: "cli", ClientSecret: "sec", HTTPClient: srv.Client(), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Site("site_1").GetBatch(t.Context(), "B-1", client.GetBatchOptions{})
	if !errors.Is(err, client.ErrNotSent) {
		t.Fatalf("error = %v, want one that is ErrNotSent", err)
	}
	return err
}
