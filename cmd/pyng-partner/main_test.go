package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/client"
	"github.com/pyng/receivables/dbtest"
)

// binary is the pyng-partner the tests run, built by TestMain.
var binary string

// ran records the commands that succeeded against a server, so that TestMain can tell that every
// command has a test.
var ran sync.Map

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "pyng-partner-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "pyng-partner")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build pyng-partner: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 && flag.Lookup("test.run").Value.String() == "" {
		for _, c := range commands {
			if _, ok := ran.Load(c.name); !ok {
				fmt.Fprintf(os.Stderr, "no test runs %q against a server\n", c.name)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// onEachEngine runs test, in parallel, against a fresh server of every storage engine.
func onEachEngine(t *testing.T, test func(t *testing.T, s *apptest.Server), opts ...apptest.Options) {
	t.Helper()
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			test(t, apptest.Start(t, engine, opts...))
		})
	}
}

// result is what a run of the binary gave.
type result struct {
	code           int
	stdout, stderr string
}

// environ is the environment of the binary for the server's partner.
func environ(s *apptest.Server) []string {
	return append(os.Environ(), "PYNG_URL="+s.URL, "PYNG_CLIENT_ID="+s.ClientID, "PYNG_CLIENT_SECRET="+s.ClientSecret, "PYNG_SITE="+s.Site.ID)
}

// cli runs the binary with args against the server, its stdout a pipe (so JSON by default), and
// records the command as run when it succeeds.
func cli(t *testing.T, s *apptest.Server, args ...string) result {
	t.Helper()
	return cliIn(t, s, "", args...)
}

// cliIn is cli with stdin.
func cliIn(t *testing.T, s *apptest.Server, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	if s != nil {
		cmd.Env = environ(s)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run %v: %v", args, err)
	}
	r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	recordRun(s, args, r.code)
	return r
}

// cliFake runs the binary with args against a fake API at url (for what a real server cannot be
// made to do), its stdout a pipe; interrupt, when not 0, sends it SIGINT (Ctrl-C) that long after
// it starts. It records nothing as run against a server.
func cliFake(t *testing.T, url string, interrupt time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), "PYNG_URL="+url, "PYNG_CLIENT_ID=cli_x", "PYNG_CLIENT_SECRET=sec_x", "PYNG_SITE=site_x")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if interrupt > 0 {
		timer := time.AfterFunc(interrupt, func() { _ = cmd.Process.Signal(os.Interrupt) })
		defer timer.Stop()
	}
	if err := cmd.Wait(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("run %v: %v", args, err)
		}
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// recordRun records the command of args as run against a server when it exited 0.
func recordRun(s *apptest.Server, args []string, code int) {
	if s == nil || code != 0 || len(args) == 0 {
		return
	}
	if c, _, err := findCommand(args); err == nil && c != nil && !slices.Contains(args, "-h") {
		ran.Store(c.name, true)
	}
}

// ok runs the binary and fails the test unless it exits 0.
func ok(t *testing.T, s *apptest.Server, args ...string) result {
	t.Helper()
	r := cli(t, s, args...)
	if r.code != 0 {
		t.Fatalf("pyng-partner %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// decode reads the JSON lines of out into a slice of T.
func decode[T any](t *testing.T, out string) []T {
	t.Helper()
	var items []T
	for line := range strings.Lines(out) {
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("stdout line %q is not the JSON of a %T: %v", line, v, err)
		}
		items = append(items, v)
	}
	return items
}

// one reads the single JSON line of out.
func one[T any](t *testing.T, out string) T {
	t.Helper()
	items := decode[T](t, out)
	if len(items) != 1 {
		t.Fatalf("stdout %q: want one JSON line", out)
	}
	return items[0]
}

// siteOf is a client of the server's site, to see what the commands did.
func siteOf(t *testing.T, s *apptest.Server) *client.Site {
	t.Helper()
	c, err := client.New(client.Config{BaseURL: s.URL, ClientID: s.ClientID, ClientSecret: s.ClientSecret, HTTPClient: s.HTTP})
	if err != nil {
		t.Fatal(err)
	}
	return c.Site(s.Site.ID)
}

var traceID = regexp.MustCompile(`(?m)^traceId [0-9a-f-]{36}$`)

func TestCustomerCommands(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		inv := one[client.Invitation](t, ok(t, s, "customers", "invite", "ACME-001").stdout)
		if inv.CustomerReference != "ACME-001" || inv.State != client.LinkInvited || !strings.Contains(inv.SignupURL, "/signup?token=") {
			t.Errorf("invite = %+v", inv)
		}
		// On a terminal (here: --json=false) the signup link is printed on a line of its own.
		table := ok(t, s, "customers", "invite", "ACME-002", "--json=false").stdout
		if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], s.URL+"/signup?token=") ||
			!strings.HasPrefix(lines[0], "Invited ACME-002.") {
			t.Errorf("invite as a table:\n%s", table)
		}

		ok(t, s, "customers", "invite", "ACME-META", "--metadata", "accountId=8841", "--metadata", "note=a=b")
		if meta := one[client.Link](t, ok(t, s, "customers", "show", "ACME-META").stdout).Metadata; !maps.Equal(meta, map[string]string{"accountId": "8841", "note": "a=b"}) {
			t.Errorf("customers invite --metadata: the customer's metadata is %v", meta)
		}
		if r := cli(t, s, "customers", "invite", "ACME-BAD", "--metadata", "novalue"); r.code != 2 {
			t.Errorf("--metadata without =: exit %d, stderr %q; want 2", r.code, r.stderr)
		}
		ok(t, s, "customers", "revoke", "ACME-META")

		linked := one[client.Link](t, ok(t, s, "sandbox", "signup", "ACME-001").stdout)
		if linked.State != client.LinkLinked {
			t.Errorf("sandbox signup = %+v", linked)
		}
		links := decode[client.Link](t, ok(t, s, "customers", "list").stdout)
		if len(links) != 3 || links[0].CustomerReference != "ACME-001" || links[0].State != client.LinkLinked || links[1].State != client.LinkInvited {
			t.Errorf("customers list = %+v", links)
		}
		only := decode[client.Link](t, ok(t, s, "customers", "list", "--state", "invited").stdout)
		if len(only) != 1 || only[0].CustomerReference != "ACME-002" {
			t.Errorf("customers list --state invited = %+v", only)
		}
		listTable := ok(t, s, "customers", "list", "--json=false").stdout
		if !regexp.MustCompile(`(?m)^CUSTOMER +STATE +CREATED`).MatchString(listTable) || !regexp.MustCompile(`(?m)^ACME-001 +linked `).MatchString(listTable) {
			t.Errorf("customers list as a table:\n%s", listTable)
		}
		// A linked customer's link does not expire; an invited one's invitation does.
		if !regexp.MustCompile(`(?m)^ACME-001 +linked .* -$`).MatchString(listTable) || !regexp.MustCompile(`(?m)^ACME-002 +invited .*\d\d:\d\d:\d\d$`).MatchString(listTable) {
			t.Errorf("customers list as a table, its EXPIRES column:\n%s\nwant - for the linked customer, a time for the invited one", listTable)
		}
		if shown := one[client.Link](t, ok(t, s, "customers", "show", "ACME-001").stdout); !reflect.DeepEqual(shown, linked) {
			t.Errorf("customers show = %+v, want %+v", shown, linked)
		}
		revoked := one[client.Link](t, ok(t, s, "customers", "revoke", "ACME-001").stdout)
		if revoked.State != client.LinkRevoked || revoked.RevokedBy != "partner" {
			t.Errorf("customers revoke = %+v", revoked)
		}
		ok(t, s, "sandbox", "signup", "ACME-002")
		byCustomer := one[client.Link](t, ok(t, s, "sandbox", "customer-revocation", "ACME-002").stdout)
		if byCustomer.State != client.LinkRevoked || byCustomer.RevokedBy != "customer" {
			t.Errorf("sandbox customer-revocation = %+v", byCustomer)
		}

		t.Run("an error answer exits 1 with its code, message and traceId on stderr", func(t *testing.T) {
			r := cli(t, s, "customers", "show", "NOPE")
			if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "error 404 urn:pyng:platform:billing:error:customer-link:not-found (customerReference): ") ||
				!traceID.MatchString(r.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			r = cli(t, s, "customers", "invite", "no spaces")
			if r.code != 1 || !strings.Contains(r.stderr, string(client.CodeLinkInvalidReference)) {
				t.Errorf("an invalid reference: exit %d, stderr %q", r.code, r.stderr)
			}
		})

		t.Run("--verbose writes each request with its status and traceId on stderr", func(t *testing.T) {
			r := ok(t, s, "customers", "show", "ACME-002", "--verbose")
			if shown := one[client.Link](t, r.stdout); shown.CustomerReference != "ACME-002" {
				t.Errorf("stdout with --verbose: %q", r.stdout)
			}
			uuid := `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
			want := regexp.MustCompile(`^POST /oauth2/token: 200 OK traceId ` + uuid + "\n" +
				`GET /billing/sites/` + s.Site.ID + `/customers/ACME-002: 200 OK traceId ` + uuid + "\n$")
			if !want.MatchString(r.stderr) {
				t.Errorf("stderr with --verbose:\n%s", r.stderr)
			}
			missing := cli(t, s, "customers", "show", "NOPE", "--verbose")
			if !regexp.MustCompile(`(?m)^GET /billing/sites/` + s.Site.ID + `/customers/NOPE: 404 Not Found traceId ` + uuid + `$`).MatchString(missing.stderr) {
				t.Errorf("stderr of an error with --verbose:\n%s", missing.stderr)
			}
		})
	})
}
