package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pyng/receivables/client"
)

// With --wait, the batch is accepted (202) and its receipt printed at once; then the reads of it
// fail. Those that may pass (a 502, an answer cut short: after the client's own retries) are
// reported and tried again until the batch completes. Any other (a 403), or Ctrl-C, ends the wait
// with exit 3 (accepted, outcome unknown, not 1: the API refused it) and says the batch was
// accepted, so that the partner does not take it for a failed submission and send the rows again
// under another reference (every customer debited twice). A fake server: a real one cannot be
// made to fail only after accepting.
func TestAWaitForAnAcceptedBatchGoesOnThroughTransientFailures(t *testing.T) {
	t.Parallel()
	const completed = `{"data":{"batchReference":"B-1","state":"completed","rowCount":1,"totalAmount":12000,"submittedAt":1764500000000,` +
		`"completedAt":1764500003000,"summary":{"succeeded":{"count":1,"amount":12000}},` +
		`"rows":[{"rowReference":"INV-1","customerReference":"ACME-001","amount":12000,"state":"succeeded"}]},"traceId":"tr2"}`
	tests := []struct {
		name      string
		read      func(w http.ResponseWriter, n int) // answers the nth read of the batch (1 for the first)
		interrupt time.Duration
		code      int
		stderr    []string
	}{
		{"reads that fail for a while, then the outcome", func(w http.ResponseWriter, n int) {
			switch {
			case n <= 4: // the client's first attempt and its 3 retries
				badGateway(w)
			case n <= 8:
				cutShort(w)
			default:
				_, _ = w.Write([]byte(completed))
			}
		}, 0, 0, []string{"reading batch B-1: pyng: 502", "unexpected EOF", "(trying again)", "rows settled: 1/1"}},
		{"a read refused ends the wait", func(w http.ResponseWriter, _ int) {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"errors":[{"code":"` + string(client.CodeInsufficientScope) + `","displayMessage":"no"}],"traceId":"tr3"}`))
		}, 0, exitOutcomeUnknown, []string{"batch B-1 was accepted", "batches show B-1", "error 403"}},
		{"Ctrl-C ends the wait", func(w http.ResponseWriter, _ int) { badGateway(w) },
			2 * time.Second, exitOutcomeUnknown, []string{"(trying again)", "batch B-1 was accepted", "batches show B-1", "is still accepted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var posts, reads atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				switch {
				case r.URL.Path == "/oauth2/token":
					_, _ = w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":3600}`))
				case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/batches"):
					posts.Add(1)
					w.WriteHeader(http.StatusAccepted)
					_, _ = w.Write([]byte(`{"data":{"batchReference":"B-1","state":"accepted","rowCount":1,"totalAmount":12000,"submittedAt":1764500000000},"traceId":"tr1"}`))
				default:
					tt.read(w, int(reads.Add(1)))
				}
			}))
			defer srv.Close()
			r := cliFake(t, srv.URL, tt.interrupt, "batches", "submit", file(t, "b.csv", "INV-1,ACME-001,120.00\n"), "--reference", "B-1", "--wait", "--interval", "10ms")
			t.Logf("exit %d\nstdout: %q\nstderr: %q", r.code, r.stdout, r.stderr)
			if posts.Load() != 1 || r.code != tt.code {
				t.Errorf("%d submissions, exit %d; want 1, exit %d", posts.Load(), r.code, tt.code)
			}
			for _, want := range tt.stderr {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q", want)
				}
			}
			lines := strings.SplitAfter(strings.TrimSuffix(r.stdout, "\n"), "\n")
			if receipt := one[submittedReceipt](t, lines[0]); receipt.BatchReference != "B-1" || receipt.State != client.BatchAccepted {
				t.Errorf("the first line of stdout is %q, want the receipt", lines[0])
			}
			if tt.code == 0 {
				if _, summary := waited(t, r.stdout); summary.State != client.BatchCompleted {
					t.Errorf("summary = %+v, want the batch completed", summary)
				}
				return
			}
			if len(lines) != 1 || strings.Contains(r.stderr, "rows settled") {
				t.Errorf("stdout holds more than the receipt, or the progress shows rows settled although no read of the batch succeeded")
			}
		})
	}
}

// cutShort answers 200 with a body shorter than its Content-Length says, and closes the
// connection: the client gets an answer cut short (ErrNoAnswer, io.ErrUnexpectedEOF).
func cutShort(w http.ResponseWriter) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"data\":")
	_ = buf.Flush()
}
