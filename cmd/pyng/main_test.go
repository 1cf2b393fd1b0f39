package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/storage"
)

// admin runs "pyng admin ..." in process against databaseURL and returns its exit code, stdout
// and stderr.
// databaseURL is the URL of a fresh database of engine with pyng's tables, as `pyng migrate` and
// `pyng serve` leave one: the admin commands open no other (storage.MustExist).
func databaseURL(t *testing.T, engine string) string {
	t.Helper()
	url := dbtest.URL(t, engine) // a SQLite file comes migrated
	if engine == storage.EnginePostgres {
		dbtest.OpenURL(t, url) // migrates the schema; closed when the test ends
	}
	return url
}

func runPyng(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestAdminCommands(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			db := "-database-url=" + databaseURL(t, engine)

			code, out, errOut := runPyng(t, "admin", "org", "create", db, "--name", "Acme Pty Ltd")
			var org struct{ OrganisationID, Name string }
			decodeOne(t, code, out, errOut, &org)
			if org.Name != "Acme Pty Ltd" || !strings.HasPrefix(org.OrganisationID, "org_") {
				t.Fatalf("org create = %+v", org)
			}

			code, out, errOut = runPyng(t, "admin", "site", "create", db, "--org", org.OrganisationID, "--name", "Acme Plumbing")
			var site struct{ SiteID, OrganisationID, Name string }
			decodeOne(t, code, out, errOut, &site)
			if site.OrganisationID != org.OrganisationID || site.Name != "Acme Plumbing" || site.SiteID == "" {
				t.Fatalf("site create = %+v", site)
			}

			code, out, errOut = runPyng(t, "admin", "client", "create", db, "--org", org.OrganisationID,
				"--scopes", "billing:customers:invite billing:customers:read")
			var client struct {
				ClientID, ClientSecret, OrganisationID string
				Scopes                                 []string
			}
			decodeOne(t, code, out, errOut, &client)
			if client.ClientSecret == "" || client.OrganisationID != org.OrganisationID ||
				strings.Join(client.Scopes, " ") != "billing:customers:invite billing:customers:read" {
				t.Fatalf("client create = %+v", client)
			}

			code, out, errOut = runPyng(t, "admin", "client", "revoke", db, "--client", client.ClientID)
			var revoked struct {
				ClientID  string
				RevokedAt int64
			}
			decodeOne(t, code, out, errOut, &revoked)
			if revoked.ClientID != client.ClientID || revoked.RevokedAt == 0 {
				t.Fatalf("client revoke = %+v", revoked)
			}

			bad := []struct {
				name string
				args []string
				want string
			}{
				{"no command", nil, "a command is required"},
				{"unknown command", []string{"launch"}, `unknown command "launch"`},
				{"admin without verb", []string{"admin", "org"}, "needs a noun and a verb"},
				{"unknown admin command", []string{"admin", "org", "delete", db}, `unknown admin command "org delete"`},
				{"missing required flag", []string{"admin", "org", "create", db}, "--name is required"},
				{"unknown flag", []string{"admin", "org", "create", db, "--nom", "x"}, "flag provided but not defined: -nom"},
				{"stray argument", []string{"admin", "org", "create", db, "--name", "x", "extra"}, `unexpected argument "extra"`},
				{"site of missing org", []string{"admin", "site", "create", db, "--org", "org_missing", "--name", "x"}, "--org: No organisation with this id exists."},
				{"client of missing org", []string{"admin", "client", "create", db, "--org", "org_missing", "--scopes", "billing:batches:read"}, "--org: No organisation with this id exists."},
				{"unknown scope", []string{"admin", "client", "create", db, "--org", org.OrganisationID, "--scopes", "billing:everything"}, `unknown scope "billing:everything"`},
				{"revoke missing client", []string{"admin", "client", "revoke", db, "--client", "cli_missing"}, "--client: No client with this id exists."},
				{"bad database url", []string{"admin", "org", "create", "-database-url=mysql://x", "--name", "x"}, "mysql"},
			}
			for _, tc := range bad {
				code, out, errOut := runPyng(t, tc.args...)
				if code == 0 || out != "" {
					t.Errorf("%s: exit %d, stdout %q; want a failure and nothing on stdout", tc.name, code, out)
				}
				if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
					t.Errorf("%s: stderr %q; want one line containing %q", tc.name, errOut, tc.want)
				}
			}
		})
	}
}

func decodeOne(t *testing.T, code int, out, errOut string, v any) {
	t.Helper()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("stdout %q: want one JSON object on one line", out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("stdout %q: %v", out, err)
	}
}

func TestServeRejectsBadConfiguration(t *testing.T) {
	code, _, errOut := runPyng(t, "serve", "-invitation-ttl", "a week")
	if code != 2 || !strings.Contains(errOut, "-invitation-ttl") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// A setting whose value cannot be read is told once, in one line naming it and its environment
// variable, with exit 2: not followed by the rules its value would break as 0 (a minimum), nor by
// those of other settings that depend on it (a public URL needed outside the sandbox, the SFTP
// server's key file). Two settings that cannot be read are told each once.
func TestServeTellsASettingThatCannotBeReadOnce(t *testing.T) {
	const usage = ` (run "pyng help" for usage)` + "\n"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-invitation-ttl", "abc"}, `-invitation-ttl: "abc" is not a duration such as 168h or 30s (env PYNG_INVITATION_TTL)`},
		{[]string{"-access-token-ttl", "-1s"}, `-access-token-ttl: "-1s" is not a duration such as 168h or 30s (env PYNG_ACCESS_TOKEN_TTL)`},
		{[]string{"-becs-sftp-timeout", "1e3"}, `-becs-sftp-timeout: "1e3" is not a duration such as 168h or 30s (env PYNG_BECS_SFTP_TIMEOUT)`},
		{[]string{"-sandbox", "maybe"}, `-sandbox: "maybe" is not true or false (env PYNG_SANDBOX)`},
		{[]string{"-becs-sftp-url", "bank.example"}, `-becs-sftp-url: "bank.example" is not of the form sftp://user@host:port/dir (env PYNG_BECS_SFTP_URL)`},
		{[]string{"-max-connections", "lots"}, `-max-connections: "lots" is not a number of connections from 1 to 1000000 (env PYNG_MAX_CONNECTIONS)`},
		{[]string{"-invitation-ttl", "abc", "-log-format", "xml"},
			`-invitation-ttl: "abc" is not a duration such as 168h or 30s (env PYNG_INVITATION_TTL); -log-format: "xml" is not text or json (env PYNG_LOG_FORMAT)`},
	} {
		code, out, errOut := runPyng(t, append([]string{"serve"}, tc.args...)...)
		if want := "pyng: " + tc.want + usage; code != 2 || out != "" || errOut != want {
			t.Errorf("serve %q: exit %d, stdout %q, stderr\n%q\nwant exit 2 and\n%q", tc.args, code, out, errOut, want)
		}
	}
}

// TestServeRefusesPostgreSQLWithoutTheSandboxSetting checks that a PostgreSQL server does not
// start as a sandbox by default: it exits at once, saying in one line which setting to set.
func TestServeRefusesPostgreSQLWithoutTheSandboxSetting(t *testing.T) {
	t.Setenv("PYNG_SANDBOX", "")
	code, out, errOut := runPyng(t, "serve", "-database-url", "postgres://postgres@127.0.0.1:1/none", "-addr", "127.0.0.1:0")
	if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "-sandbox (env PYNG_SANDBOX) must be set to true or false") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and one line naming -sandbox and PYNG_SANDBOX", code, out, errOut)
	}
}

// pyngBinary is the command compiled once for the tests that run it as an operator would.
var pyngBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pyng-test-")
	if err != nil {
		panic(err)
	}
	pyngBinary = filepath.Join(dir, "pyng")
	cmd := exec.Command("go", "build", "-o", pyngBinary, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeFirstRunWalkthrough starts the real binary on an empty database, as the README's first
// command does, and follows the credentials it prints; then SIGTERM stops it cleanly. On SQLite
// it is given no key, as in the README: the sandbox makes its own.
func TestServeFirstRunWalkthrough(t *testing.T) {
	bin := pyngBinary
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			addr := freeAddr(t)
			cmd := exec.Command(bin, "serve")
			cmd.Env = append(os.Environ(), "PYNG_ADDR="+addr, "PYNG_DATABASE_URL="+databaseURL(t, engine))
			if engine == storage.EnginePostgres {
				// The embedded SQLite is a sandbox by default; PostgreSQL must say so, and must be given
				// the key ring its replicas share.
				cmd.Env = append(cmd.Env, "PYNG_SANDBOX=true", "PYNG_ENCRYPTION_KEY="+dbtest.KeyRing)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })

			banner := readBanner(t, stdout)
			clientID := field(t, banner, `client id\s+(\S+)`)
			secret := field(t, banner, `client secret\s+(\S+)`)
			siteID := field(t, banner, `site\s+(site_\S+)`)
			if !strings.Contains(banner, "curl") || !strings.Contains(banner, "http://"+addr+"/oauth2/token") {
				t.Errorf("banner lacks a ready curl line:\n%s", banner)
			}

			if status := tokenStatus(t, "http://"+addr, clientID, secret); status != 200 || siteID == "" {
				t.Fatalf("token with printed credentials: %d", status)
			}

			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("after SIGTERM: %v\n%s", err, stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("server did not stop within 10s of SIGTERM")
			}
			if !strings.Contains(stderr.String(), "shutting down") {
				t.Errorf("no shutdown log:\n%s", stderr.String())
			}
		})
	}
}

// readBanner reads the first-run banner up to the curl line.
func readBanner(t *testing.T, r io.Reader) string {
	t.Helper()
	return readUntil(t, r, "curl ")
}

func field(t *testing.T, text, pattern string) string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("%q not found in:\n%s", pattern, text)
	}
	return m[1]
}
