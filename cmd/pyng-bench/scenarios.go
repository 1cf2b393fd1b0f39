package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/pyng/receivables/apptest/badbatch"
)

// bench runs the scenarios on one engine: the server under test, a partner client of it, and the
// baseline database.
type bench struct {
	engine    string
	opts      options
	server    *serverUnderTest
	client    *client
	base      baseline
	customers []string // linked customers of the site
	report    *engineReport
	// accepted is the accept scenario's c=1 load of valid 1000-row batches, which badbatch's
	// figures are compared with.
	accepted *measure
}

// serverUnderTest is the server the scenarios drive.
type serverUnderTest struct {
	baseURL string
	creds   credentials
	pid     int // 0 when unknown: no RSS figures
	stop    func()
	// logErrors counts the ERROR lines of its log, when the bench has it.
	logErrors func() int
}

// Bounds of each scenario besides its duration.
const (
	maxRequests = 1_000_000
	// maxBatches bounds a phase of the accept scenario, so the batches it leaves to execute
	// drain in seconds.
	maxBatches = 150
	// maxBadBatches bounds each shape of the badbatch scenario.
	maxBadBatches  = 50
	batchRows      = 1000
	executeBatches = 50
	linkedCount    = 50
	drainLimit     = 5 * time.Minute
)

// run runs every scenario, recording rows as it goes; a scenario that fails ends the engine's run.
func (b *bench) run(ctx context.Context) error {
	if err := b.provision(ctx); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	steps := map[string]func(context.Context) ([]row, error){
		"mint":     b.mint,
		"accept":   b.accept,
		"badbatch": b.badbatch,
		"execute":  b.execute,
		"read":     b.read,
		"webhooks": b.webhooks,
		"becs":     b.becs,
		"soak": func(ctx context.Context) ([]row, error) {
			s, err := b.soak(ctx)
			b.report.Soak = s
			return nil, err
		},
	}
	for _, name := range scenarioNames {
		if !slices.Contains(b.opts.scenarios, name) {
			continue
		}
		if err := b.scenario(ctx, name, steps[name]); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// scenarioNames are the scenarios in the order they run. Read needs execute's batches, badbatch
// accept's latencies.
var scenarioNames = []string{"mint", "accept", "badbatch", "execute", "read", "soak", "webhooks", "becs"}

// scenario runs one scenario with the server's peak RSS reset before it, and a CPU profile of
// it when asked for.
func (b *bench) scenario(ctx context.Context, name string, fn func(context.Context) ([]row, error)) error {
	fmt.Fprintf(os.Stderr, "%s: %s...\n", b.engine, name)
	if b.server.pid != 0 {
		resetPeak(b.server.pid)
	}
	if b.opts.cpuprofile != "" {
		f, err := os.Create(filepath.Join(b.opts.cpuprofile, b.engine+"-"+name+".pprof"))
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	rows, err := fn(ctx)
	var peak int64
	if b.server.pid != 0 {
		_, peak = memory(b.server.pid)
	}
	b.report.ServerPeakRSSMB = max(b.report.ServerPeakRSSMB, mb(peak))
	for i := range rows {
		rows[i].PeakRSSMB = mb(peak)
		fmt.Fprintf(os.Stderr, "  %-16s %-7s server %10s  baseline %10s  ratio %.2f  errors %d\n", rows[i].Scenario,
			rows[i].Metric, num(rows[i].Figure), num(rows[i].Baseline), rows[i].Ratio, rows[i].Errors)
	}
	b.report.Rows = append(b.report.Rows, rows...)
	return err
}

// Roles label the bench's goroutines in CPU profiles (role=client, role=baseline), so that the
// server's own work can be told apart when it runs in process.
const (
	roleClient   = "client"
	roleBaseline = "baseline"
)

// as runs fn, and every goroutine it starts, labelled with role.
func as[T any](ctx context.Context, role string, fn func(context.Context) (T, error)) (v T, err error) {
	pprof.Do(ctx, pprof.Labels("role", role), func(ctx context.Context) { v, err = fn(ctx) })
	return v, err
}

// onServer runs a load against the server.
func (b *bench) onServer(ctx context.Context, concurrency, maxOps int, op opFunc) measure {
	m, _ := as(ctx, roleClient, func(ctx context.Context) (measure, error) {
		return load(ctx, concurrency, b.opts.duration, maxOps, op), nil
	})
	return m
}

// onBaseline runs a load on the baseline database.
func (b *bench) onBaseline(ctx context.Context, concurrency, maxOps int, op opFunc) measure {
	m, _ := as(ctx, roleBaseline, func(ctx context.Context) (measure, error) {
		return load(ctx, concurrency, b.opts.duration, maxOps, op), nil
	})
	return m
}

// provision links the customers the batches debit, through the sandbox signup simulator.
func (b *bench) provision(ctx context.Context) error {
	for i := range linkedCount {
		ref := fmt.Sprintf("C%03d", i)
		if err := b.client.invite(ctx, ref); err != nil {
			return err
		}
		if err := b.client.signup(ctx, ref); err != nil {
			return err
		}
		b.customers = append(b.customers, ref)
	}
	return nil
}

// mint is scenario 1: invitations at concurrency 1 and 32, against single-row INSERTs.
func (b *bench) mint(ctx context.Context) ([]row, error) {
	var rows []row
	for _, c := range []int{1, 32} {
		server := b.onServer(ctx, c, maxRequests, func(ctx context.Context, w, i int) (time.Duration, error) {
			ref := fmt.Sprintf("M%d-%d", c, i)
			return timed(func() error { return b.client.invite(ctx, ref) })
		})
		base := b.onBaseline(ctx, c, maxRequests, func(ctx context.Context, w, i int) (time.Duration, error) {
			ref := fmt.Sprintf("M%d-%d", c, i)
			return timed(func() error { return b.base.mint(ctx, ref) })
		})
		var t *target
		if c == 32 && b.engine == "postgres" {
			t = &target{AtLeast: true, Value: 0.6}
		}
		rows = append(rows, newRow(fmt.Sprintf("mint c=%d", c), "req/s", server.rate(), base.rate(), server, base, t))
	}
	return rows, nil
}

// accept is scenario 2: 1000-row batches at concurrency 1 and 8, against decoding the body and
// inserting its rows in one transaction by the bulk path. The server's batches are executed
// (drained) before the baseline runs.
func (b *bench) accept(ctx context.Context) ([]row, error) {
	var rows []row
	for _, c := range []int{1, 8} {
		server := b.onServer(ctx, c, maxBatches, func(ctx context.Context, w, i int) (time.Duration, error) {
			body := batchJSON(fmt.Sprintf("A%d-%d", c, i), batchRows, b.customers)
			return timed(func() error { return b.client.submit(ctx, body) })
		})
		if err := b.client.drain(ctx, drainLimit); err != nil {
			return rows, err
		}
		var quiet measure
		if c == 1 {
			// The same with each batch executed before the next is submitted: the accept path
			// alone, without the execution of earlier batches competing for the database.
			quiet = b.onServer(ctx, 1, maxBatches, func(ctx context.Context, w, i int) (time.Duration, error) {
				body := batchJSON(fmt.Sprintf("Q-%d", i), batchRows, b.customers)
				took, err := timed(func() error { return b.client.submit(ctx, body) })
				if err == nil {
					_, err = b.client.await(ctx, []string{fmt.Sprintf("Q-%d", i)}, 20*time.Millisecond, drainLimit)
				}
				return took, err
			})
		}
		base := b.onBaseline(ctx, c, maxBatches, func(ctx context.Context, w, i int) (time.Duration, error) {
			body := batchJSON(fmt.Sprintf("A%d-%d", c, i), batchRows, b.customers)
			return timed(func() error { _, _, err := b.base.accept(ctx, body); return err })
		})
		name := fmt.Sprintf("accept c=%d", c)
		if c == 1 {
			b.accepted = &server
			rows = append(rows, newRow(name, "p50 ms", ms(server.percentile(50)), ms(base.percentile(50)), server, base,
				&target{AtLeast: false, Value: 2}))
		}
		rows = append(rows, newRow(name, "rows/s", server.rate()*batchRows, base.rate()*batchRows, server, base, nil))
		if c == 1 {
			rows = append(rows, newRow("accept c=1 quiet", "p50 ms", ms(quiet.percentile(50)), ms(base.percentile(50)), quiet, base, nil))
		}
	}
	return rows, nil
}

// badBatchLimit is the largest body the server reads; maxBadAnswer bounds the answer to any of
// the hostile ones.
const (
	badBatchLimit = 1 << 20
	maxBadAnswer  = 32 << 10
)

// badbatch is scenario 2b: the most costly invalid bodies of up to 1 MiB that we could make
// (badbatch.Bodies), each submitted at concurrency 1; its p50 against the p50 of accept c=1, a
// valid 1000-row batch, in the same run. An answer other than a 400 of at most maxBadAnswer bytes
// is an error.
func (b *bench) badbatch(ctx context.Context) ([]row, error) {
	if b.accepted == nil {
		return nil, errors.New("badbatch compares with accept c=1, which did not run")
	}
	var rows []row
	for _, body := range badbatch.Bodies(badBatchLimit) {
		server := b.onServer(ctx, 1, maxBadBatches, func(ctx context.Context, w, i int) (time.Duration, error) {
			var answer []byte
			took, err := timed(func() error {
				var err error
				answer, err = b.client.call(ctx, http.MethodPost, "/batches", body.JSON, http.StatusBadRequest, true)
				return err
			})
			if err == nil && len(answer) > maxBadAnswer {
				err = fmt.Errorf("%s: an answer of %d bytes", body.Name, len(answer))
			}
			return took, err
		})
		rows = append(rows, newRow("badbatch "+body.Name, "p50 ms", ms(server.percentile(50)), ms(b.accepted.percentile(50)),
			server, *b.accepted, &target{AtLeast: false, Value: 2}))
	}
	return rows, nil
}

// execute is scenario 3: 50 batches of 1000 rows submitted at once; rows per second from the
// first 202 to the last batch completed (the server's completedAt). Baseline: the set-based
// UPDATE of 1000 rows to their outcomes, one transaction each, 50 times.
func (b *bench) execute(ctx context.Context) ([]row, error) {
	server, err := as(ctx, roleClient, b.executeOnServer)
	if err != nil {
		return nil, err
	}
	base, err := as(ctx, roleBaseline, b.executeOnBaseline)
	if err != nil {
		return nil, err
	}
	rate := func(m measure) float64 {
		if m.elapsed <= 0 {
			return 0
		}
		return float64(m.ops*batchRows) / m.elapsed.Seconds()
	}
	return []row{newRow(fmt.Sprintf("execute %d×%d", executeBatches, batchRows), "rows/s", rate(server), rate(base), server, base,
		&target{AtLeast: true, Value: 0.25})}, nil
}

func executeRef(i int) string { return fmt.Sprintf("E-%d", i) }

// executeOnServer submits the batches together and waits for them all to complete. Its
// latencies are each batch's time from its 202 to its completedAt.
func (b *bench) executeOnServer(ctx context.Context) (measure, error) {
	return b.executeBatchesOnServer(ctx, executeRef)
}

// executeBatchesOnServer is executeOnServer with the batches' references given by executeRef.
func (b *bench) executeBatchesOnServer(ctx context.Context, executeRef func(int) string) (measure, error) {
	bodies := make([][]byte, executeBatches)
	for i := range bodies {
		bodies[i] = batchJSON(executeRef(i), batchRows, b.customers)
	}
	accepted := make([]time.Time, executeBatches)
	errs := make([]error, executeBatches)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range bodies {
		wg.Go(func() {
			<-start
			errs[i] = b.client.submit(ctx, bodies[i])
			accepted[i] = time.Now()
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return measure{}, err
	}
	first := slices.MinFunc(accepted, func(a, b time.Time) int { return a.Compare(b) })
	refs := make([]string, executeBatches)
	for i := range refs {
		refs[i] = executeRef(i)
	}
	// The newest 100 batches hold these 50: earlier scenarios' batches are older.
	completed, err := b.client.await(ctx, refs, 100*time.Millisecond, drainLimit)
	if err != nil {
		return measure{}, err
	}
	m := measure{ops: executeBatches}
	var last int64
	for i := range executeBatches {
		at := completed[executeRef(i)]
		last = max(last, at)
		m.latencies = append(m.latencies, time.Duration(at-accepted[i].UnixMilli())*time.Millisecond)
	}
	slices.Sort(m.latencies)
	m.elapsed = time.Duration(last-first.UnixMilli()) * time.Millisecond
	return m, nil
}

// executeOnBaseline inserts the batches (not measured), then moves each batch's rows to the
// outcomes the sandbox rail would give them, one UPDATE per batch.
func (b *bench) executeOnBaseline(ctx context.Context) (measure, error) {
	return b.executeBatchesOnBaseline(ctx, executeRef)
}

// executeBatchesOnBaseline is executeOnBaseline with the batches' references given by ref.
func (b *bench) executeBatchesOnBaseline(ctx context.Context, ref func(int) string) (measure, error) {
	batches := make([][]outcome, executeBatches)
	for i := range batches {
		_, ids, err := b.base.accept(ctx, batchJSON(ref(i), batchRows, b.customers))
		if err != nil {
			return measure{}, err
		}
		for j, id := range ids {
			failure := ""
			switch (1000 + j) % 100 { // batchJSON's amounts
			case 51:
				failure = "insufficientFunds"
			case 52:
				failure = "accountClosed"
			}
			batches[i] = append(batches[i], outcome{ID: id, Failure: failure})
		}
	}
	m := load(ctx, 1, time.Hour, executeBatches, func(ctx context.Context, w, i int) (time.Duration, error) {
		at := time.Now().UnixMilli()
		for j := range batches[i] {
			batches[i][j].At = at
		}
		return timed(func() error { return b.base.recordOutcomes(ctx, batches[i]) })
	})
	// The rate is of the UPDATEs alone, back to back.
	m.elapsed = 0
	for _, l := range m.latencies {
		m.elapsed += l
	}
	if m.errors > 0 {
		return m, m.firstError
	}
	return m, nil
}

// read is scenario 4: GET a completed 1000-row batch at concurrency 8, against selecting its rows.
func (b *bench) read(ctx context.Context) ([]row, error) {
	ref := executeRef(0)
	server := b.onServer(ctx, 8, maxRequests, func(ctx context.Context, w, i int) (time.Duration, error) {
		return timed(func() error { _, err := b.client.batch(ctx, ref, false); return err })
	})
	batchID, _, err := b.base.accept(ctx, batchJSON("READ", batchRows, b.customers))
	if err != nil {
		return nil, err
	}
	base := b.onBaseline(ctx, 8, maxRequests, func(ctx context.Context, w, i int) (time.Duration, error) {
		return timed(func() error {
			n, err := b.base.readRows(ctx, batchID)
			if err == nil && n != batchRows {
				err = fmt.Errorf("read %d rows, want %d", n, batchRows)
			}
			return err
		})
	})
	return []row{
		newRow("read c=8", "p50 ms", ms(server.percentile(50)), ms(base.percentile(50)), server, base, &target{AtLeast: false, Value: 3}),
		newRow("read c=8", "req/s", server.rate(), base.rate(), server, base, nil),
	}, nil
}

// recorder collects the soak's latencies and errors per kind of operation.
type recorder struct {
	mu         sync.Mutex
	latencies  map[string][]time.Duration
	errors     map[string]int
	firstError error
}

func (r *recorder) do(kind string, fn func() error) error {
	took, err := timed(fn)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errors[kind]++
		if r.firstError == nil {
			r.firstError = fmt.Errorf("%s: %w", kind, err)
		}
	} else {
		r.latencies[kind] = append(r.latencies[kind], took)
	}
	return err
}

// soak is scenario 5: partners inviting and signing up customers, submitting batches and polling
// them to completion, and reading completed batches and the customer list, all together for the
// soak duration; the server's RSS is sampled every two seconds.
func (b *bench) soak(ctx context.Context) (*soak, error) {
	rec := &recorder{latencies: map[string][]time.Duration{}, errors: map[string]int{}}
	var (
		mu        sync.Mutex
		customers = slices.Clone(b.customers)
		done      []string // completed batches to read
	)
	if slices.Contains(b.opts.scenarios, "execute") {
		done = append(done, executeRef(0))
	}
	deadline := time.Now().Add(b.opts.soak)
	live := func() bool { return ctx.Err() == nil && time.Now().Before(deadline) }
	var samples []int64
	rss := func() int64 {
		if b.server.pid == 0 {
			return 0
		}
		r, _ := memory(b.server.pid)
		return r
	}
	samples = append(samples, rss())
	var wg sync.WaitGroup
	_, _ = as(ctx, roleClient, func(ctx context.Context) (struct{}, error) {
		for w := range 2 { // onboarding: invite, then sign up
			wg.Go(func() {
				for i := 0; live(); i++ {
					ref := fmt.Sprintf("S%d-%d", w, i)
					if rec.do("invite", func() error { return b.client.invite(ctx, ref) }) != nil {
						continue
					}
					if rec.do("signup", func() error { return b.client.signup(ctx, ref) }) == nil {
						mu.Lock()
						customers = append(customers, ref)
						mu.Unlock()
					}
				}
			})
		}
		for w := range 2 { // submitters: a batch over the newest customers, polled until completed
			wg.Go(func() {
				for i := 0; live(); i++ {
					ref := fmt.Sprintf("SB%d-%d", w, i)
					mu.Lock()
					body := batchJSON(ref, batchRows, customers[max(0, len(customers)-linkedCount):])
					mu.Unlock()
					if rec.do("submit", func() error { return b.client.submit(ctx, body) }) != nil {
						continue
					}
					b.pollUntilCompleted(ctx, rec, ref)
					mu.Lock()
					done = append(done, ref)
					mu.Unlock()
				}
			})
		}
		for range 2 { // readers: a completed batch, then the first page of customers
			wg.Go(func() {
				for live() {
					mu.Lock()
					ref := ""
					if len(done) > 0 {
						ref = done[rand.IntN(len(done))]
					}
					mu.Unlock()
					if ref != "" {
						rec.do("read", func() error { _, err := b.client.batch(ctx, ref, false); return err })
					}
					rec.do("list", func() error {
						_, err := b.client.call(ctx, "GET", "/customers?limit=100", nil, 200, false)
						return err
					})
				}
			})
		}
		return struct{}{}, nil
	})
	for live() {
		time.Sleep(2 * time.Second)
		samples = append(samples, rss())
	}
	wg.Wait()
	samples = append(samples, rss())
	var peak int64
	if b.server.pid != 0 {
		_, peak = memory(b.server.pid)
	}

	s := &soak{Duration: b.opts.soak.String(), Ops: map[string]int{}, Errors: rec.errors, P99MsByOp: map[string]float64{}}
	var all []time.Duration
	for kind, l := range rec.latencies {
		slices.Sort(l)
		s.Ops[kind] = len(l)
		s.P99MsByOp[kind] = ms(percentile(l, 99))
		all = append(all, l...)
	}
	for kind, n := range rec.errors {
		s.Ops[kind] += n
	}
	slices.Sort(all)
	s.P50Ms, s.P99Ms = ms(percentile(all, 50)), ms(percentile(all, 99))
	if rec.firstError != nil {
		s.FirstError = rec.firstError.Error()
	}
	for _, v := range samples {
		s.RSSSamplesMB = append(s.RSSSamplesMB, mb(v))
	}
	firstHalfMax := slices.Max(samples[:len(samples)/2+1])
	s.RSSStartMB, s.RSSEndMB, s.RSSFirstHalfMaxMB, s.PeakRSSMB = mb(samples[0]), mb(samples[len(samples)-1]), mb(firstHalfMax), mb(peak)
	s.NoGrowth = float64(samples[len(samples)-1]) <= 1.1*float64(firstHalfMax)
	errs := 0
	for _, n := range rec.errors {
		errs += n
	}
	s.Met = errs == 0 && s.NoGrowth && peak > 0 && peak <= soakRSSLimit
	return s, nil
}

// soakPollLimit bounds how long the soak waits for one batch to complete (an error beyond).
const soakPollLimit = time.Minute

// pollUntilCompleted reads the batch every 100 ms until it is completed.
func (b *bench) pollUntilCompleted(ctx context.Context, rec *recorder, ref string) {
	deadline := time.Now().Add(soakPollLimit)
	for ctx.Err() == nil {
		var state batchState
		err := rec.do("poll", func() error {
			var err error
			state, err = b.client.batch(ctx, ref, true)
			return err
		})
		if err == nil && state.State == "completed" {
			return
		}
		if time.Now().After(deadline) {
			rec.do("poll", func() error { return fmt.Errorf("batch %s not completed within %s", ref, soakPollLimit) })
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
