package main

import (
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/dbtest"
)

// get reads a /billing/ path of the partner's site and fails the test unless it answers 200.
func (p *partner) get(path string) []byte {
	p.t.Helper()
	req, _ := http.NewRequest("GET", p.base+"/billing/sites/"+p.siteID+path, nil)
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Pyng-Api-Version", apiVersion)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return body
}

// stop ends the process with SIGTERM and waits for it, so that its database connections are
// closed before the test's database is dropped.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		// SIGQUIT has the Go runtime write every goroutine's stack: what it waits for.
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
		log := p.stderr.String()
		t.Errorf("server did not stop within 30s of SIGTERM; its log and goroutines (SIGQUIT):\n%s", log[max(0, len(log)-60000):])
	}
}

// events reads the site's whole events list.
func (p *partner) events() []apptest.Event {
	p.t.Helper()
	return apptest.ListEvents(p.t, func(query string) []byte { return p.get("/events" + query) })
}

// TestCrashDuringDeliveryLosesNoEvent sends a site's events to a slow receiver and kills the
// server with SIGKILL again and again while deliveries are in flight and changes are being made,
// starting it again on the same database each time; in the end the receiver has every event of
// the events list (at least once), each with the list's bytes and verified by the official
// Standard Webhooks library.
func TestCrashDuringDeliveryLosesNoEvent(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			databaseURL := databaseURL(t, engine)
			env := []string{"PYNG_SANDBOX_SETTLEMENT_DELAY=300ms", "PYNG_JOB_RESCUE_AFTER=2s", "PYNG_JOB_POLL_INTERVAL=50ms",
				"PYNG_WEBHOOK_RETRY_SCHEDULE=200ms,400ms,800ms,1s,2s,5s,10s,20s,30s,60s"}
			recv := apptest.NewReceiver(t)
			recv.SetAnswer(http.StatusOK, 250*time.Millisecond) // a slow partner: deliveries stay in flight

			server, stdout := startServer(t, pyngBinary, databaseURL, env...)
			banner := readBanner(t, stdout)
			p := &partner{t: t, base: server.base, siteID: field(t, banner, `site\s+(site_\S+)`)}
			p.token = token(t, p.base, field(t, banner, `client id\s+(\S+)`), field(t, banner, `client secret\s+(\S+)`))
			var endpoint struct{ Data struct{ Secret string } }
			if st := p.call("POST", "/webhook-endpoints", map[string]any{"url": recv.URL}, &endpoint); st != 201 {
				t.Fatalf("create webhook endpoint: %d", st)
			}
			recv.SetSecret(t, endpoint.Data.Secret)

			const rounds, perRound = 4, 6
			for round := range rounds {
				if round > 0 {
					server, _ = startServer(t, pyngBinary, databaseURL, env...)
					p.base = server.base
				}
				// Changes of every kind, the last of them made while the kill comes.
				var rows []map[string]any
				for c := range perRound {
					ref := fmt.Sprintf("R%d-C%d", round, c)
					if st := p.call("POST", "/customers/invitations", map[string]string{"customerReference": ref}, nil); st != 201 {
						t.Fatalf("invite %s: %d", ref, st)
					}
					if c == 0 {
						continue // stays invited
					}
					if st := p.call("POST", "/sandbox/customers/"+ref+"/signup", nil, nil); st != 200 {
						t.Fatalf("sandbox signup %s: %d", ref, st)
					}
					rows = append(rows, map[string]any{"rowReference": fmt.Sprintf("R%d", c), "customerReference": ref, "amount": 1000 + c})
				}
				if st := p.call("POST", "/customers/"+fmt.Sprintf("R%d-C1", round)+"/revoke", nil, nil); st != 200 {
					t.Fatalf("revoke: %d", st)
				}
				if st := p.call("POST", "/batches", map[string]any{"batchReference": fmt.Sprintf("B%d", round), "rows": rows}, nil); st != 202 {
					t.Fatalf("submit B%d: %d", round, st)
				}
				waitFor(t, 20*time.Second, "a delivery in flight", func() bool { return recv.InFlight() > 0 })
				server.kill(t)
			}

			server, _ = startServer(t, pyngBinary, databaseURL, env...)
			p.base = server.base
			for round := range rounds {
				waitCompleted(t, 60*time.Second, p.call, fmt.Sprintf("B%d", round), perRound-1)
			}
			// A killed process's run lets go of the endpoint when its lease ends (RescueAfter/2);
			// River's rescuer gives a killed process's batch jobs back after RescueAfter, on its
			// round every 30 seconds. The events: invitations, signups, a revocation, a batch
			// accepted and completed per round.
			events := recv.AwaitEvents(t, 120*time.Second, rounds*(perRound+perRound-1+1+2), p.events)
			_, times := recv.Accepted()
			again := 0
			for _, n := range times {
				again += n - 1
			}
			server.stop(t)
			t.Logf("%d events, each received; %d sent again after a kill", len(events), again)
		})
	}
}
