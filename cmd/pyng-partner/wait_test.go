package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// With --wait, the batch is accepted (202) and then every read of it fails (a gateway answering
// 502: a server that is down, or a network error, does the same). The command fails saying the
// batch was accepted, so that the partner does not take it for a failed submission and send the
// rows again under another reference (every customer debited twice); and its progress shows no
// row settled, none having been read so. A fake server: a real one cannot be made to fail
// only after accepting.
func TestAWaitThatFailsAfterTheBatchWasAcceptedSaysSo(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/oauth2/token":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":3600}`))
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/batches"):
			posts.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"data":{"batchReference":"B-1","state":"accepted","rowCount":1,"totalAmount":12000,"submittedAt":1764500000000},"traceId":"tr1"}`))
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(`<html>bad gateway</html>`))
		}
	}))
	defer srv.Close()
	path := file(t, "b.csv", "INV-1,ACME-001,120.00\n")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "batches", "submit", path, "--reference", "B-1", "--wait", "--interval", "10ms")
	cmd.Env = append(os.Environ(), "PYNG_URL="+srv.URL, "PYNG_CLIENT_ID=cli_x", "PYNG_CLIENT_SECRET=sec_x", "PYNG_SITE=site_x")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	t.Logf("exit %d\nstdout: %q\nstderr: %q", cmd.ProcessState.ExitCode(), stdout.String(), stderr.String())
	if posts.Load() != 1 {
		t.Fatalf("%d submissions, want 1", posts.Load())
	}
	if !strings.Contains(stderr.String(), "batch B-1 was accepted") || !strings.Contains(stderr.String(), "batches show B-1") {
		t.Errorf("the batch was accepted, but the command's output does not say so: a partner cannot tell the submission from the failed wait")
	}
	if strings.Contains(stderr.String(), "rows settled") {
		t.Errorf("the progress shows rows settled although no read of the batch succeeded")
	}
}
