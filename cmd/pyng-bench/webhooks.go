package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"time"
)

// The webhooks scenario's bounds.
const (
	// webhookEndpoints is how many endpoints of the site the delivery phase sends to (the most a
	// site may have): each invitation is that many deliveries, so the deliveries, not the
	// invitations, are what limits the phase.
	webhookEndpoints = 16
	// webhookPairs is how many times (a) measures mint and execute without the endpoint and then
	// with it.
	webhookPairs = 2
	// deliveryInvites is how many invitations a round of the delivery phase makes.
	deliveryInvites = 500
	// deliveryRounds is how many rounds the delivery phase has, each its deliveries and then as
	// many bare POSTs: a round's deliveries take about a second, so that a passing load on the
	// machine would weigh on one side of a single round.
	deliveryRounds = 3
	// webhookWorkers is the server's default PYNG_WEBHOOK_WORKERS, the concurrency of the bare
	// POSTs compared with.
	webhookWorkers = 16
)

// receiver is a partner's endpoint on loopback that answers 200 at once and counts what it
// received since its last reset, with the times of the first and the last. While held, it keeps
// the requests waiting, uncounted, until it is released: the release is then the first time.
type receiver struct {
	url     string
	srv     *http.Server
	mu      sync.Mutex
	n       int
	body    int // bytes of the last body, to send the same size in the bare POSTs
	started bool
	t0      time.Time
	t1      time.Time
	gate    chan struct{} // while not nil, requests wait for it to close
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + ln.Addr().String() + "/hook"}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n, _ := io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		gate := r.gate
		r.mu.Unlock()
		if gate != nil {
			<-gate
		}
		now := time.Now()
		r.mu.Lock()
		if !r.started {
			r.t0, r.started = now, true
		}
		r.n++
		r.t1 = now
		r.body = int(n)
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n, r.started, r.t0, r.t1 = 0, false, time.Time{}, time.Time{}
}

// hold resets the receiver and keeps the requests waiting until release.
func (r *receiver) hold() {
	r.reset()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gate = make(chan struct{})
}

// release lets the waiting requests through and counts the time from now.
func (r *receiver) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.gate)
	r.gate, r.t0, r.started = nil, time.Now(), true
}

// seen is how many requests arrived since the reset, from the first (or the release) to the last.
func (r *receiver) seen() (n, body int, elapsed time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, r.body, r.t1.Sub(r.t0)
}

// awaitCount waits until the receiver has n requests since its reset.
func (r *receiver) awaitCount(ctx context.Context, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		got, _, _ := r.seen()
		switch {
		case got >= n:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("the receiver got %d of %d deliveries within %s", got, n, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// webhooks is scenario 6: with a receiver on loopback that answers 200 at once, (a) mint c=32 and
// execute 50×1000 with one endpoint subscribed to every event, each against the same without it
// (the endpoint disabled) just before, twice over; (b) deliveries per second to 16 endpoints of the receiver, against as many bare
// HTTP POSTs of the same size from Go at the server's 16 delivery workers, in deliveryRounds
// rounds summed. In (b) the receiver holds the requests while the invitations are made and
// counts from its release to the last delivery received: the figure is the sending of
// deliveries, not the making of invitations (which mint measures). The endpoints are deleted at
// the end.
func (b *bench) webhooks(ctx context.Context) ([]row, error) {
	recv, err := startReceiver()
	if err != nil {
		return nil, err
	}
	defer recv.srv.Close()
	var endpoints []string
	defer func() {
		for _, id := range endpoints {
			_, _ = b.client.call(context.WithoutCancel(ctx), http.MethodDelete, "/webhook-endpoints/"+id, nil, http.StatusOK, false)
		}
	}()
	subscribe := func() error {
		body, _ := json.Marshal(map[string]any{"url": fmt.Sprintf("%s/%d", recv.url, len(endpoints))})
		answer, err := b.client.call(ctx, http.MethodPost, "/webhook-endpoints", body, http.StatusCreated, true)
		if err != nil {
			return err
		}
		var e struct{ Data struct{ EndpointID string } }
		if err := json.Unmarshal(answer, &e); err != nil {
			return err
		}
		endpoints = append(endpoints, e.Data.EndpointID)
		return nil
	}
	mint := func(prefix string) measure {
		return b.onServer(ctx, 32, maxRequests, func(ctx context.Context, w, i int) (time.Duration, error) {
			ref := fmt.Sprintf("%s-%d", prefix, i)
			return timed(func() error { return b.client.invite(ctx, ref) })
		})
	}
	execute := func(prefix string) (measure, error) {
		return as(ctx, roleClient, func(ctx context.Context) (measure, error) {
			return b.executeBatchesOnServer(ctx, func(i int) string { return fmt.Sprintf("%s-%d", prefix, i) })
		})
	}
	rowsRate := func(m measure) float64 { return m.rate() * batchRows }

	// (a) Without, then with one endpoint, in webhookPairs pairs, each measured back to back on
	// the same database, the endpoint disabled (so sent nothing) for the one without. The pairs
	// are summed, so that a passing load on the machine weighs on both sides.
	setState := func(state string) error {
		body, _ := json.Marshal(map[string]string{"state": state})
		_, err := b.client.call(ctx, http.MethodPatch, "/webhook-endpoints/"+endpoints[0], body, http.StatusOK, false)
		return err
	}
	if err := subscribe(); err != nil {
		return nil, err
	}
	// pairOf runs a phase with the endpoint disabled, then one with it enabled, and waits for the
	// deliveries of the second: sent(m) is how many events its measure m made.
	pairOf := func(without, with func() (measure, error), sent func(measure) int) (measure, measure, error) {
		if err := setState("disabled"); err != nil {
			return measure{}, measure{}, err
		}
		m0, err := without()
		if err != nil {
			return measure{}, measure{}, err
		}
		if err := setState("enabled"); err != nil {
			return measure{}, measure{}, err
		}
		recv.reset()
		m1, err := with()
		if err == nil {
			err = recv.awaitCount(ctx, sent(m1), drainLimit)
		}
		return m0, m1, err
	}
	var mintWithout, mintWith, executeWithout, executeWith measure
	for pair := range webhookPairs {
		m0, m1, err := pairOf(func() (measure, error) { return mint(fmt.Sprintf("WM0-%d", pair)), nil },
			func() (measure, error) { return mint(fmt.Sprintf("WM1-%d", pair)), nil },
			func(m measure) int { return m.ops })
		if err != nil {
			return nil, err
		}
		mintWithout, mintWith = mintWithout.add(m0), mintWith.add(m1)
		e0, e1, err := pairOf(func() (measure, error) { return execute(fmt.Sprintf("WE0-%d", pair)) },
			func() (measure, error) { return execute(fmt.Sprintf("WE1-%d", pair)) },
			func(measure) int { return 2 * executeBatches }) // batch.accepted and batch.completed
		if err != nil {
			return nil, err
		}
		executeWithout, executeWith = executeWithout.add(e0), executeWith.add(e1)
	}
	rows := []row{
		newRow("mint c=32 + endpoint", "req/s", mintWith.rate(), mintWithout.rate(), mintWith, mintWithout, &target{AtLeast: true, Value: 0.85}),
		newRow(fmt.Sprintf("execute %d×%d + endpoint", executeBatches, batchRows), "rows/s", rowsRate(executeWith), rowsRate(executeWithout),
			executeWith, executeWithout, &target{AtLeast: true, Value: 0.85}),
	}

	// (b) Deliveries per second.
	for len(endpoints) < webhookEndpoints {
		if err := subscribe(); err != nil {
			return rows, err
		}
	}
	var server, bare measure
	for round := range deliveryRounds {
		sent, posted, err := b.deliveryRound(ctx, recv, round)
		if err != nil {
			return rows, err
		}
		server, bare = server.add(sent), bare.add(posted)
	}
	rows = append(rows, newRow(fmt.Sprintf("deliver %d×%d", deliveryInvites, webhookEndpoints), "deliv/s", server.rate(), bare.rate(),
		server, bare, &target{AtLeast: true, Value: 0.5}))
	return rows, nil
}

// deliveryRound is one round of (b): the deliveries of deliveryInvites invitations to the
// endpoints, then as many bare POSTs.
func (b *bench) deliveryRound(ctx context.Context, recv *receiver, round int) (server, bare measure, err error) {
	recv.hold()
	invited := b.onServer(ctx, 32, deliveryInvites, func(ctx context.Context, w, i int) (time.Duration, error) {
		ref := fmt.Sprintf("WD%d-%d", round, i)
		return timed(func() error { return b.client.invite(ctx, ref) })
	})
	recv.release()
	deliveries := invited.ops * webhookEndpoints
	if err := recv.awaitCount(ctx, deliveries, drainLimit); err != nil {
		return server, bare, err
	}
	n, size, elapsed := recv.seen()
	server = measure{ops: n, elapsed: elapsed, errors: invited.errors, firstError: invited.firstError}
	recv.reset()
	bare, err = as(ctx, roleBaseline, func(ctx context.Context) (measure, error) {
		if b.opts.cpuprofile != "" { // the server runs in this process: so do the bare POSTs
			return barePosts(ctx, recv.url+"/bare", deliveries, size), nil
		}
		return barePostsApart(ctx, recv.url+"/bare", deliveries, size)
	})
	if err != nil {
		return server, bare, err
	}
	if got, _, _ := recv.seen(); got != deliveries && bare.errors == 0 {
		return server, bare, fmt.Errorf("the receiver got %d bare POSTs of %d", got, deliveries)
	}
	return server, bare, nil
}

// barePostsEnv, set in the bench's environment, makes it the child that barePostsApart starts:
// it sends the bare POSTs the value describes ("URL N SIZE"), prints their measure as JSON, and
// exits.
const barePostsEnv = "PYNG_BENCH_BARE_POSTS"

// barePostsApart sends the bare POSTs from a process of their own, this program started again,
// as the server's deliveries come from a process of its own: on a machine of few cores, two
// processes sharing them (the sender's and the receiver's, this one) each cost the other more
// than the goroutines of one do, and the baseline pays for it as the server does. Its measure is
// taken in the child, from its first POST to its last answer, not counting the start.
func barePostsApart(ctx context.Context, url string, n, size int) (measure, error) {
	self, err := os.Executable()
	if err != nil {
		return measure{}, err
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d", barePostsEnv, url, n, size))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return measure{}, fmt.Errorf("the bare POSTs' process: %w", err)
	}
	var w wireMeasure
	if err := json.Unmarshal(out, &w); err != nil {
		return measure{}, fmt.Errorf("the bare POSTs' process printed %q: %w", out, err)
	}
	return w.measure(), nil
}

// barePostsChild is the child of barePostsApart: spec is "URL N SIZE".
func barePostsChild(ctx context.Context, spec string, stdout io.Writer) error {
	var (
		url     string
		n, size int
	)
	if _, err := fmt.Sscanf(spec, "%s %d %d", &url, &n, &size); err != nil {
		return fmt.Errorf("%s=%q: %w", barePostsEnv, spec, err)
	}
	m := barePosts(ctx, url, n, size)
	w := wireMeasure{Ops: m.ops, Errors: m.errors, Elapsed: m.elapsed, Latencies: m.latencies}
	if m.firstError != nil {
		w.FirstError = m.firstError.Error()
	}
	return json.NewEncoder(stdout).Encode(w)
}

// wireMeasure is a measure as the bare POSTs' process prints it.
type wireMeasure struct {
	Ops, Errors int
	Elapsed     time.Duration
	Latencies   []time.Duration
	FirstError  string
}

func (w wireMeasure) measure() measure {
	m := measure{ops: w.Ops, errors: w.Errors, elapsed: w.Elapsed, latencies: w.Latencies}
	if w.FirstError != "" {
		m.firstError = errors.New(w.FirstError)
	}
	return m
}

// barePosts sends n POSTs of a body of size bytes to url from webhookWorkers goroutines, with a
// client that keeps a connection per goroutine: what Go alone does on this machine.
func barePosts(ctx context.Context, url string, n, size int) measure {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: webhookWorkers, DisableCompression: true}}
	defer client.CloseIdleConnections()
	body := bytes.Repeat([]byte("x"), size)
	return load(ctx, webhookWorkers, time.Hour, n, func(ctx context.Context, w, i int) (time.Duration, error) {
		return timed(func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return errors.New(resp.Status)
			}
			return nil
		})
	})
}
