// Command pyng-bench measures the server against the machine's own limit, in the same run: it
// builds and starts "pyng serve" on a fresh database per engine, provisions a partner, runs each
// scenario (mint, accept, badbatch, execute, read, soak, webhooks, becs) for a bounded time and count on
// loopback, runs the same database work directly as the baseline, and prints a table (and writes a
// JSON file) of each figure, its baseline, their ratio against its target, latencies and the
// server's peak RSS.
//
//	go run ./cmd/pyng-bench                       # both engines, about 8 minutes
//	go run ./cmd/pyng-bench -engines sqlite -duration 3s -soak 30s
//
// See the README's Benchmarks section for the scenarios and their baselines.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/billing"
)

// options are the command's flags.
type options struct {
	engines     []string
	scenarios   []string
	postgresURL string
	duration    time.Duration
	soak        time.Duration
	out         string
	pyng        string
	// url, with the credentials and pid, targets a running server instead of starting one.
	url, siteID, clientID, clientSecret string
	pid                                 int
	// cpuprofile runs the server inside this process and writes a CPU profile per scenario there.
	cpuprofile string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if spec := os.Getenv(barePostsEnv); spec != "" { // the bench's own child (webhooks.go)
		if err := barePostsChild(ctx, spec, os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "pyng-bench (bare POSTs): %v\n", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "pyng-bench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	var o options
	fs := flag.NewFlagSet("pyng-bench", flag.ContinueOnError)
	engines := fs.String("engines", "sqlite,postgres", "engines to measure, comma-separated")
	scenarios := fs.String("scenarios", strings.Join(scenarioNames, ","), "scenarios to run, comma-separated (read needs execute, badbatch accept)")
	fs.StringVar(&o.postgresURL, "postgres-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"PostgreSQL server; the bench creates two schemas there (server and baseline) and drops them at the end")
	fs.DurationVar(&o.duration, "duration", 6*time.Second, "how long each measured phase runs (server and baseline each)")
	fs.DurationVar(&o.soak, "soak", 2*time.Minute, "how long the mixed soak runs")
	fs.StringVar(&o.out, "out", "bench.json", "JSON file to write")
	fs.StringVar(&o.pyng, "pyng", "", "pyng binary to run (default: build ./cmd/pyng of this module)")
	fs.StringVar(&o.url, "url", "", "base URL of a running server to measure instead of starting one (one engine: its engine)")
	fs.StringVar(&o.siteID, "site", "", "with -url: the site to use")
	fs.StringVar(&o.clientID, "client-id", "", "with -url: an API client with every scope")
	fs.StringVar(&o.clientSecret, "client-secret", "", "with -url: the client's secret")
	fs.IntVar(&o.pid, "pid", 0, "with -url: the server's process id, for its RSS (optional)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "directory: run the server inside the bench and write a CPU profile per scenario "+
		"(client and baseline goroutines carry the label role=client or role=baseline); RSS is then the bench's")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for e := range strings.SplitSeq(*engines, ",") {
		e = strings.TrimSpace(e)
		if e != "sqlite" && e != "postgres" {
			return fmt.Errorf("-engines: unknown engine %q (sqlite, postgres)", e)
		}
		o.engines = append(o.engines, e)
	}
	for name := range strings.SplitSeq(*scenarios, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(scenarioNames, name) {
			return fmt.Errorf("-scenarios: unknown scenario %q (%s)", name, strings.Join(scenarioNames, ", "))
		}
		o.scenarios = append(o.scenarios, name)
	}
	if slices.Contains(o.scenarios, "read") && !slices.Contains(o.scenarios, "execute") {
		return errors.New("-scenarios: read reads a batch of execute; run execute too")
	}
	if slices.Contains(o.scenarios, "badbatch") && !slices.Contains(o.scenarios, "accept") {
		return errors.New("-scenarios: badbatch compares with accept's latencies; run accept too")
	}
	switch {
	case o.duration <= 0 || o.soak <= 0:
		return errors.New("-duration and -soak must be positive")
	case o.url != "" && (len(o.engines) != 1 || o.siteID == "" || o.clientID == "" || o.clientSecret == ""):
		return errors.New("-url needs -engines with the server's one engine, -site, -client-id and -client-secret")
	case o.url != "" && o.cpuprofile != "":
		return errors.New("-cpuprofile starts the server itself; it cannot be used with -url")
	}
	if o.cpuprofile != "" {
		if err := os.MkdirAll(o.cpuprofile, 0o755); err != nil {
			return err
		}
	}

	r := &report{StartedAt: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		Duration: o.duration.String(), Soak: o.soak.String()}
	work, err := os.MkdirTemp("", "pyng-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if o.url == "" && o.cpuprofile == "" && o.pyng == "" {
		fmt.Fprintln(os.Stderr, "building ./cmd/pyng...")
		if o.pyng, err = buildServer(ctx, work); err != nil {
			return err
		}
	}
	for _, engine := range o.engines {
		e := engineReport{Engine: engine}
		if err := runEngine(ctx, o, engine, filepath.Join(work, engine), &e); err != nil {
			e.Error = err.Error()
			fmt.Fprintf(os.Stderr, "%s: %v\n", engine, err)
		}
		r.Engines = append(r.Engines, e)
		if ctx.Err() != nil {
			break
		}
	}
	r.Took = time.Since(r.StartedAt).Round(time.Second).String()
	r.count()
	fmt.Fprintln(stdout)
	r.printTable(stdout)
	if err := r.writeJSON(o.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "took %s; wrote %s\n", r.Took, o.out)
	for _, e := range r.Engines {
		if e.Error != "" {
			return fmt.Errorf("%s: %s", e.Engine, e.Error)
		}
	}
	return nil
}

// runEngine runs every scenario on one engine: fresh databases, the server, the baseline.
func runEngine(ctx context.Context, o options, engine, dir string, e *engineReport) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	serverURL, base, cleanup, err := databases(ctx, o, engine, dir)
	if err != nil {
		return err
	}
	defer cleanup()
	defer base.close()

	var sut *serverUnderTest
	switch {
	case o.url != "":
		sut = &serverUnderTest{baseURL: strings.TrimSuffix(o.url, "/"), pid: o.pid, stop: func() {},
			creds: credentials{siteID: o.siteID, clientID: o.clientID, secret: o.clientSecret}}
	case o.cpuprofile != "":
		sut, err = startInProcess(ctx, serverURL, dir)
	default:
		var p *process
		p, err = startServer(ctx, o.pyng, serverURL, dir)
		if p != nil {
			sut = &serverUnderTest{baseURL: p.baseURL, creds: p.creds, pid: p.pid, stop: p.stop, logErrors: p.errorLines}
		}
	}
	if err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	c, err := newClient(ctx, sut.baseURL, sut.creds)
	if err != nil {
		sut.stop()
		return err
	}
	b := &bench{engine: engine, opts: o, server: sut, client: c, base: base, report: e}
	err = b.run(ctx)
	sut.stop()
	if sut.logErrors != nil {
		e.ServerLogErrors = sut.logErrors()
	}
	return err
}

// databases prepares the server's empty database and the baseline's, on the engine: two files
// in dir for SQLite, two schemas for PostgreSQL (dropped by cleanup).
func databases(ctx context.Context, o options, engine, dir string) (serverURL string, base baseline, cleanup func(), err error) {
	if engine == "sqlite" {
		b, err := openSQLiteBaseline(ctx, filepath.Join(dir, "baseline.db"))
		return "sqlite:" + filepath.Join(dir, "server.db"), b, func() {}, err
	}
	admin, err := pgx.Connect(ctx, o.postgresURL)
	if err != nil {
		return "", nil, nil, fmt.Errorf("connect to %s: %w", o.postgresURL, err)
	}
	defer admin.Close(ctx)
	suffix := strings.ToLower(billing.RandomToken(5))
	schemas := []string{"pyngbench_server_" + suffix, "pyngbench_baseline_" + suffix}
	cleanup = func() {
		conn, err := pgx.Connect(context.WithoutCancel(ctx), o.postgresURL)
		if err != nil {
			fmt.Fprintf(os.Stderr, "drop bench schemas: %v\n", err)
			return
		}
		defer conn.Close(context.WithoutCancel(ctx))
		for _, s := range schemas {
			if _, err := conn.Exec(context.WithoutCancel(ctx), "DROP SCHEMA IF EXISTS "+s+" CASCADE"); err != nil {
				fmt.Fprintf(os.Stderr, "drop schema %s: %v\n", s, err)
			}
		}
	}
	for _, s := range schemas {
		if _, err := admin.Exec(ctx, "CREATE SCHEMA "+s); err != nil {
			cleanup()
			return "", nil, nil, fmt.Errorf("create schema %s: %w", s, err)
		}
	}
	if o.url != "" {
		// The server under test has its own database; only the baseline's schema is used.
		serverURL = ""
	} else if serverURL, err = withSearchPath(o.postgresURL, schemas[0]); err != nil {
		cleanup()
		return "", nil, nil, err
	}
	baseURL, err := withSearchPath(o.postgresURL, schemas[1])
	if err == nil {
		base, err = openPGBaseline(ctx, baseURL)
	}
	if err != nil {
		cleanup()
		return "", nil, nil, err
	}
	return serverURL, base, cleanup, nil
}

// withSearchPath sets a PostgreSQL URL's search_path, which puts every table in that schema.
func withSearchPath(raw, schema string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("-postgres-url: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// startInProcess runs the server inside the bench (for -cpuprofile), configured as the process
// would be.
func startInProcess(ctx context.Context, databaseURL, dir string) (*serverUnderTest, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	values := app.RegisterFlags(fs)
	if err := fs.Parse([]string{"-addr", addr, "-database-url", databaseURL, "-sandbox=true",
		"-sandbox-settlement-delay", "0", "-rate-limit", "0", "-log-format", "text", "-encryption-key", benchKeyRing()}); err != nil {
		return nil, err
	}
	cfg, err := app.Load(values)
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	banner := &lockedBuffer{}
	srv, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(logFile, nil)), banner)
	if err != nil {
		logFile.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	stop := func() {
		cancel()
		<-done
		logFile.Close()
	}
	if err := waitReady(ctx, "http://"+addr); err != nil {
		stop()
		return nil, err
	}
	creds, err := parseBanner(banner.String())
	if err != nil {
		stop()
		return nil, err
	}
	return &serverUnderTest{baseURL: "http://" + addr, creds: creds, pid: os.Getpid(), stop: stop}, nil
}

// lockedBuffer is a strings.Builder safe for the server's goroutine and the bench's.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
