package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/storage"
)

// TestThreeReplicasDeliverEachEventOnce runs three server processes on one PostgreSQL database
// with a webhook endpoint that answers 200 at once, makes many changes through them round robin,
// and checks that the receiver got every event of the events list exactly once (verified by the
// official Standard Webhooks library), that each event has one delivery of one attempt, and that
// each run of the deliveries was worked once, by one replica.
func TestThreeReplicasDeliverEachEventOnce(t *testing.T) {
	t.Parallel()
	databaseURL := databaseURL(t, storage.EnginePostgres)
	env := []string{"PYNG_JOB_POLL_INTERVAL=50ms", "PYNG_SANDBOX_SETTLEMENT_DELAY=100ms", "PYNG_WEBHOOK_WORKERS=4"}
	r := &replicaSet{p: &partner{t: t}, down: make([]bool, 3), answered: make([]int, 3)}
	// The first replica makes the sandbox's demo partner; the others start on its database.
	first, stdout := startServer(t, pyngBinary, databaseURL, env...)
	banner := readBanner(t, stdout)
	r.p.siteID = field(t, banner, `site\s+(site_\S+)`)
	r.replicas = append(r.replicas, first)
	for range 2 {
		p, _ := launchServer(t, pyngBinary, databaseURL, env...)
		r.replicas = append(r.replicas, p)
	}
	for _, p := range r.replicas[1:] {
		p.waitReady(t)
	}
	r.p.token = token(t, first.base, field(t, banner, `client id\s+(\S+)`), field(t, banner, `client secret\s+(\S+)`))

	recv := apptest.NewReceiver(t)
	var endpoint struct {
		Data struct{ EndpointID, Secret string }
	}
	if st := r.call("POST", "/webhook-endpoints", map[string]any{"url": recv.URL}, &endpoint); st != 201 {
		t.Fatalf("create webhook endpoint: %d", st)
	}
	recv.SetSecret(t, endpoint.Data.Secret)

	const customers, batches = 60, 6
	var rows []map[string]any
	for c := range customers {
		ref := fmt.Sprintf("CUST-%02d", c)
		if st := r.call("POST", "/customers/invitations", map[string]string{"customerReference": ref}, nil); st != 201 {
			t.Fatalf("invite %s: %d", ref, st)
		}
		if c%6 == 0 {
			continue
		}
		if st := r.call("POST", "/sandbox/customers/"+ref+"/signup", nil, nil); st != 200 {
			t.Fatalf("sandbox signup %s: %d", ref, st)
		}
		if c%6 == 1 {
			if st := r.call("POST", "/customers/"+ref+"/revoke", nil, nil); st != 200 {
				t.Fatalf("revoke %s: %d", ref, st)
			}
		}
		rows = append(rows, map[string]any{"rowReference": fmt.Sprintf("R%02d", c), "customerReference": ref, "amount": 1000 + c})
	}
	for b := range batches {
		if st := r.call("POST", "/batches", map[string]any{"batchReference": fmt.Sprintf("B%d", b), "rows": rows}, nil); st != 202 {
			t.Fatalf("submit B%d: %d", b, st)
		}
	}
	for b := range batches {
		waitCompleted(t, 60*time.Second, r.call, fmt.Sprintf("B%d", b), len(rows))
	}
	r.p.base = r.replicas[r.pick()].base
	// Invitations, signups, revocations, and each batch accepted and completed.
	events := recv.AwaitEvents(t, 30*time.Second, customers+(customers-customers/6)+customers/6+2*batches, r.p.events)
	_, times := recv.Accepted()
	for id, n := range times {
		if n != 1 {
			t.Errorf("event %s was received %d times, want once", id, n)
		}
	}

	// The deliveries list agrees: one delivery per event, of one attempt, succeeded.
	deliveries := map[string]int{}
	waitFor(t, 10*time.Second, "every delivery succeeded", func() bool {
		clear(deliveries)
		pending := false
		cursor := ""
		for {
			var page struct {
				Data []struct {
					EventID, State string
					Attempts       []json.RawMessage
				}
				NextCursor string
			}
			path := "/webhook-endpoints/" + endpoint.Data.EndpointID + "/deliveries?limit=100"
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			if err := json.Unmarshal(r.p.get(path), &page); err != nil {
				t.Fatal(err)
			}
			for _, d := range page.Data {
				deliveries[d.EventID]++
				switch {
				case d.State == "pending":
					pending = true
				case d.State != "succeeded" || len(d.Attempts) != 1:
					t.Fatalf("delivery of %s: %s after %d attempts, want succeeded at the first", d.EventID, d.State, len(d.Attempts))
				}
			}
			if cursor = page.NextCursor; cursor == "" {
				return !pending
			}
		}
	})
	for _, e := range events {
		if n := deliveries[e.ID]; n != 1 {
			t.Errorf("event %s has %d deliveries, want 1", e.ID, n)
		}
	}

	// And the queue: each run of the endpoint's deliveries was worked once, by one replica. (A run
	// holds its endpoint while the endpoint's events keep coming, so which replicas ran them is
	// logged, not required to vary.)
	clients := map[string]int{}
	for _, j := range completedJobs(t, databaseURL, billing.DeliverWebhooksJob{}.Kind(), -1) {
		if j.Attempt != 1 || len(j.AttemptedBy) != 1 {
			t.Errorf("deliver_webhooks job %d: attempt %d by %v, want one attempt", j.ID, j.Attempt, j.AttemptedBy)
			continue
		}
		clients[j.AttemptedBy[0]]++
	}
	for _, p := range r.replicas {
		p.stop(t)
	}
	t.Logf("%d events delivered once each; runs of deliveries per replica %v", len(events), slices.Sorted(maps.Values(clients)))
}
