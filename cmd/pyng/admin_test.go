package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/storage"
)

// pyngJSON runs the built binary, which must succeed, and decodes each line of its stdout.
func pyngJSON(t *testing.T, env []string, args ...string) []map[string]any {
	t.Helper()
	code, out, errOut := runBinary(t, env, args...)
	if code != 0 {
		t.Fatalf("pyng %v: exit %d: %s", args, code, errOut)
	}
	var objects []map[string]any
	for line := range strings.Lines(out) {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("pyng %v: line %q: %v", args, line, err)
		}
		objects = append(objects, v)
	}
	return objects
}

func pyngOne(t *testing.T, env []string, args ...string) map[string]any {
	t.Helper()
	objects := pyngJSON(t, env, args...)
	if len(objects) != 1 {
		t.Fatalf("pyng %v printed %d objects, want one", args, len(objects))
	}
	return objects[0]
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func column(objects []map[string]any, key string) []string {
	var out []string
	for _, o := range objects {
		out = append(out, o[key].(string))
	}
	return out
}

// TestAdminListAndShow runs the list and show commands of the built binary on a database it
// filled with the create commands.
func TestAdminListAndShow(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		env := []string{"PYNG_DATABASE_URL=" + databaseURL(t, engine)}
		org := pyngOne(t, env, "admin", "org", "create", "--name", "Acme")["organisationId"].(string)
		other := pyngOne(t, env, "admin", "org", "create", "--name", "Other")["organisationId"].(string)
		site := pyngOne(t, env, "admin", "site", "create", "--org", org, "--name", "Acme Online")["siteId"].(string)
		otherSite := pyngOne(t, env, "admin", "site", "create", "--org", other, "--name", "Other Online")["siteId"].(string)
		created := pyngOne(t, env, "admin", "client", "create", "--org", org, "--scopes", "billing:batches:read billing:batches:write")
		client := created["clientId"].(string)
		revoked := pyngOne(t, env, "admin", "client", "create", "--org", org, "--scopes", "billing:batches:read")["clientId"].(string)
		pyngOne(t, env, "admin", "client", "revoke", "--client", revoked)
		otherClient := pyngOne(t, env, "admin", "client", "create", "--org", other, "--scopes", "billing:batches:read")["clientId"].(string)

		orgs := pyngJSON(t, env, "admin", "org", "list")
		if got := column(orgs, "organisationId"); !slices.Equal(got, []string{org, other}) {
			t.Errorf("org list: %v, want %s then %s (the order they were created)", got, org, other)
		}
		shown := pyngOne(t, env, "admin", "org", "show", "--org", org)
		if shown["name"] != "Acme" || shown["createdAt"] != orgs[0]["createdAt"] || shown["createdAt"].(float64) <= 0 {
			t.Errorf("org show = %v, listed as %v", shown, orgs[0])
		}

		if got := column(pyngJSON(t, env, "admin", "site", "list", "--org", org), "siteId"); !slices.Equal(got, []string{site}) {
			t.Errorf("site list --org: %v, want %s", got, site)
		}
		if got := column(pyngJSON(t, env, "admin", "site", "list"), "siteId"); !slices.Equal(got, []string{site, otherSite}) {
			t.Errorf("site list: %v, want %s, %s", got, site, otherSite)
		}
		s := pyngOne(t, env, "admin", "site", "show", "--site", site)
		if s["organisationId"] != org || s["name"] != "Acme Online" || s["currency"] != "AUD" || s["rail"] != "sandbox" {
			t.Errorf("site show = %v", s)
		}

		clients := pyngJSON(t, env, "admin", "client", "list", "--org", org)
		if got := column(clients, "clientId"); !slices.Equal(got, []string{client, revoked}) {
			t.Errorf("client list --org: %v, want %s, %s", got, client, revoked)
		}
		if got := column(pyngJSON(t, env, "admin", "client", "list"), "clientId"); !slices.Equal(got, []string{client, revoked, otherClient}) {
			t.Errorf("client list: %v", got)
		}
		c := pyngOne(t, env, "admin", "client", "show", "--client", client)
		for _, o := range append(clients, c) {
			if want := []string{"clientId", "createdAt", "organisationId", "revokedAt", "scopes"}; !slices.Equal(keys(o), want) {
				t.Errorf("a client is printed with %v, want %v (never a secret or its hash)", keys(o), want)
			}
		}
		if c["revokedAt"] != nil || c["organisationId"] != org || len(c["scopes"].([]any)) != 2 {
			t.Errorf("client show = %v", c)
		}
		if r := pyngOne(t, env, "admin", "client", "show", "--client", revoked); r["revokedAt"] == nil {
			t.Errorf("client show of a revoked client = %v, want its revokedAt", r)
		}
		_, out, _ := runBinary(t, env, "admin", "client", "list")
		if strings.Contains(out, created["clientSecret"].(string)) {
			t.Error("client list prints a secret")
		}
	})
}

// TestAdminUsage checks each command's usage and the exit codes: 0 for -h, 2 for a mistake in the
// command line, 1 for a failure.
func TestAdminUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "nowhere", "pyng.db")
	db := "-database-url=" + databaseURL(t, "sqlite")
	tests := []struct {
		name string
		args []string
		code int
		want string // on stderr
	}{
		{"pyng -h", []string{"-h"}, 0, "pyng admin client rotate-secret --client CLIENTID"},
		{"admin -h", []string{"admin", "-h"}, 0, "pyng admin org list"},
		{"admin help", []string{"admin", "help"}, 0, "pyng admin site show --site SITEID"},
		{"admin noun -h", []string{"admin", "client", "-h"}, 0, "pyng admin client show"},
		{"migrate -h", []string{"migrate", "-h"}, 0, `{"applied":[`},
		{"serve -h", []string{"serve", "-h"}, 0, "-database-url"},
		{"no command", nil, 2, "a command is required"},
		{"admin without noun", []string{"admin"}, 2, "needs a noun and a verb"},
		{"unknown admin command", []string{"admin", "org", "delete"}, 2, `unknown admin command "org delete"`},
		{"show without its flag", []string{"admin", "org", "show", db}, 2, "--org is required"},
		{"list with a stray argument", []string{"admin", "org", "list", db, "extra"}, 2, `unexpected argument "extra"`},
		{"list with an unknown flag", []string{"admin", "client", "list", db, "--site", "x"}, 2, "flag provided but not defined: -site"},
		{"show of a missing organisation", []string{"admin", "org", "show", db, "--org", "org_missing"}, 2, "--org: No organisation with this id exists."},
		{"site list of a missing organisation", []string{"admin", "site", "list", db, "--org", "org_missing"}, 2, "--org: No organisation with this id exists."},
		{"show of a missing site", []string{"admin", "site", "show", db, "--site", "site_missing"}, 2, "--site: No site with this id exists."},
		{"show of a missing client", []string{"admin", "client", "show", db, "--client", "cli_missing"}, 2, "--client: No client with this id exists."},
		{"rotate of a missing client", []string{"admin", "client", "rotate-secret", db, "--client", "cli_missing"}, 2, "--client: No client with this id exists."},
		{"a database that does not exist", []string{"admin", "org", "list", "-database-url=sqlite:" + missing}, 1, "no database at " + missing},
	}
	for _, name := range adminOrder {
		tests = append(tests, struct {
			name string
			args []string
			code int
			want string
		}{name + " -h", append(strings.Fields("admin "+name), "-h"), 0, "usage: pyng admin " + name})
	}
	for _, tc := range tests {
		code, out, errOut := runBinary(t, nil, tc.args...)
		if code != tc.code || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d, no stdout, stderr containing %q", tc.name, code, out, errOut, tc.code, tc.want)
		}
		if tc.code == 2 && strings.Count(errOut, "\n") != 1 {
			t.Errorf("%s: stderr %q, want one line", tc.name, errOut)
		}
	}
	if _, err := os.Stat(filepath.Dir(missing)); !os.IsNotExist(err) {
		t.Errorf("an admin command on a missing database made %s (%v)", filepath.Dir(missing), err)
	}
}

// The admin commands open an existing database only: a PostgreSQL database (its schema of
// search_path) that holds none of pyng's tables is an error naming it, as a SQLite file that does
// not exist is, and no table is made in it. Before, the command migrated it and answered as if
// it were the deployment's, empty.
func TestAdminRefusesAPostgreSQLDatabaseWithoutPyngsTables(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t, storage.EnginePostgres) // an empty schema
	code, out, errOut := runBinary(t, nil, "admin", "org", "list", "-database-url="+url)
	if code != 1 || out != "" || !strings.Contains(errOut, "no database at postgres://") || !strings.Contains(errOut, "holds none of pyng's tables") ||
		!strings.Contains(errOut, `create one with "pyng migrate"`) {
		t.Errorf("admin org list on an empty schema: exit %d, stdout %q, stderr %q; want exit 1 saying there is no database there", code, out, errOut)
	}
	db := openDirect(t, storage.EnginePostgres, url)
	defer db.Close()
	var tables int
	if err := db.QueryRow(`SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("the refused command made %d tables", tables)
	}
}

// TestAdminDefaultDatabaseFromAnotherDirectory runs an admin command with the default database
// URL (a relative path) in a directory holding none: it fails naming the path, and creates nothing.
func TestAdminDefaultDatabaseFromAnotherDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(pyngBinary, "admin", "client", "list")
	cmd.Dir = dir
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PYNG_DATABASE_URL=") })
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(stderr.String(), "no database at "+filepath.Join(dir, "pyng.db")) {
		t.Errorf("exit %v, stderr %q; want exit 1 naming %s", err, stderr.String(), filepath.Join(dir, "pyng.db"))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the command left %d files in %s", len(entries), dir)
	}
}

// TestRestartedSandboxTellsHowToGetCredentials restarts a sandbox on its database: the second
// start says the demo exists and prints the command that gives its client a new secret. The
// test runs that command: the new secret gets a token over HTTP, the first one no longer does.
func TestRestartedSandboxTellsHowToGetCredentials(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		databaseURL := databaseURL(t, engine)
		first, stdout := launchServer(t, pyngBinary, databaseURL)
		banner := readBanner(t, stdout)
		clientID := field(t, banner, `client id\s+(\S+)`)
		oldSecret := field(t, banner, `client secret\s+(\S+)`)
		first.waitReady(t)
		if code := tokenStatus(t, first.base, clientID, oldSecret); code != http.StatusOK {
			t.Fatalf("token with the first secret: %d", code)
		}
		first.kill(t)

		second, stdout := launchServer(t, pyngBinary, databaseURL)
		restart := readUntil(t, stdout, "pyng admin client create")
		if !strings.Contains(restart, "demo organisation already") || !strings.Contains(restart, clientID) {
			t.Fatalf("restart banner:\n%s", restart)
		}
		rotate := field(t, restart, `(?m)^\s*(pyng admin client rotate-secret .*)$`)
		second.waitReady(t)

		// Run the printed command as the operator would, with the built binary as pyng.
		sh := exec.Command("sh", "-c", strings.Replace(rotate, "pyng", pyngBinary, 1))
		sh.Env = append(os.Environ(), "PYNG_DATABASE_URL="+databaseURL)
		out, err := sh.Output()
		if err != nil {
			t.Fatalf("%s: %v", rotate, err)
		}
		var rotated struct{ ClientID, ClientSecret, OrganisationID string }
		if err := json.Unmarshal(out, &rotated); err != nil || rotated.ClientID != clientID || rotated.ClientSecret == "" || rotated.OrganisationID != "org_demo" {
			t.Fatalf("rotate-secret printed %q (%v)", out, err)
		}
		if code := tokenStatus(t, second.base, clientID, oldSecret); code != http.StatusUnauthorized {
			t.Errorf("token with the old secret after rotation: %d, want 401", code)
		}
		if code := tokenStatus(t, second.base, clientID, rotated.ClientSecret); code != http.StatusOK {
			t.Errorf("token with the new secret: %d, want 200", code)
		}
	})
}

// tokenStatus asks for an access token with the client's credentials and returns the status.
func tokenStatus(t *testing.T, base, clientID, secret string) int {
	t.Helper()
	resp := requestToken(t, base, clientID, secret)
	resp.Body.Close()
	return resp.StatusCode
}

// readUntil reads r's lines up to the first containing marker, then drains the rest.
func readUntil(t *testing.T, r io.Reader, marker string) string {
	t.Helper()
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(r)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	var b strings.Builder
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before %q:\n%s", marker, b.String())
			}
			b.WriteString(line + "\n")
			if strings.Contains(line, marker) {
				go func() {
					for range lines {
					}
				}()
				return b.String()
			}
		case <-timeout:
			t.Fatalf("no %q within 30s:\n%s", marker, b.String())
		}
	}
}

// TestAdminSiteUpdate sets a site's debit user and time zone with the built binary, which show
// and list then print; every invalid field is reported at once and nothing is written.
func TestAdminSiteUpdate(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		env := []string{"PYNG_DATABASE_URL=" + databaseURL(t, engine)}
		org := pyngOne(t, env, "admin", "org", "create", "--name", "Acme")["organisationId"].(string)
		site := pyngOne(t, env, "admin", "site", "create", "--org", org, "--name", "Acme Online")["siteId"].(string)
		if s := pyngOne(t, env, "admin", "site", "show", "--site", site); s["timeZone"] != "Australia/Sydney" || s["debitUser"] != nil {
			t.Errorf("a new site = %v, want Australia/Sydney and no debit user", s)
		}

		code, _, errOut := runBinary(t, env, "admin", "site", "update", "--site", site, "--legal-name", "Acme Pty Ltd", "--abn", "51 824 753 557",
			"--email", "not-an-address", "--time-zone", "Mars/Olympus")
		if code != 2 || !strings.Contains(errOut, "--abn:") || !strings.Contains(errOut, "--email:") || !strings.Contains(errOut, "--time-zone:") {
			t.Errorf("invalid fields: exit %d, stderr %q; want 2 naming --abn, --email and --time-zone", code, errOut)
		}
		if s := pyngOne(t, env, "admin", "site", "show", "--site", site); s["debitUser"] != nil {
			t.Errorf("a refused update wrote %v", s["debitUser"])
		}

		updated := pyngOne(t, env, "admin", "site", "update", "--site", site, "--legal-name", "Acme Pty Ltd", "--abn", "51 824 753 556",
			"--phone", "02 9999 0000", "--email", "billing@acme.example", "--address", "1 George St, Sydney NSW 2000")
		want := map[string]any{"legalName": "Acme Pty Ltd", "abn": "51824753556", "phone": "02 9999 0000", "email": "billing@acme.example",
			"address": "1 George St, Sydney NSW 2000"}
		if !maps.Equal(updated["debitUser"].(map[string]any), want) || updated["timeZone"] != "Australia/Sydney" {
			t.Errorf("site update = %v, want debitUser %v in Australia/Sydney", updated, want)
		}
		pyngOne(t, env, "admin", "site", "update", "--site", site, "--time-zone", "Australia/Perth", "--phone", "+61 8 9999 0000")
		want["phone"] = "+61 8 9999 0000"
		for _, s := range []map[string]any{pyngOne(t, env, "admin", "site", "show", "--site", site), pyngJSON(t, env, "admin", "site", "list")[0]} {
			if !maps.Equal(s["debitUser"].(map[string]any), want) || s["timeZone"] != "Australia/Perth" {
				t.Errorf("after a second update, the site = %v; want the other fields kept", s)
			}
		}
		if code, _, errOut := runBinary(t, env, "admin", "site", "update", "--site", "site_nope", "--abn", "51824753556"); code != 2 || !strings.Contains(errOut, "--site:") {
			t.Errorf("an unknown site: exit %d, stderr %q", code, errOut)
		}
	})
}

// TestAdminOptionalFlagGivenEmpty gives optional flags an empty value, as an unset shell variable
// does: exit 2 naming the flag, nothing printed and nothing changed, never the flag's absence (a
// list of every organisation's clients, an update that keeps the value).
func TestAdminOptionalFlagGivenEmpty(t *testing.T) {
	t.Parallel()
	env := []string{"PYNG_DATABASE_URL=" + databaseURL(t, "sqlite")}
	org := pyngOne(t, env, "admin", "org", "create", "--name", "Acme")["organisationId"].(string)
	other := pyngOne(t, env, "admin", "org", "create", "--name", "Other")["organisationId"].(string)
	site := pyngOne(t, env, "admin", "site", "create", "--org", org, "--name", "Acme Online")["siteId"].(string)
	pyngOne(t, env, "admin", "client", "create", "--org", other, "--scopes", "billing:batches:read")
	pyngOne(t, env, "admin", "site", "update", "--site", site, "--time-zone", "Australia/Perth")
	tests := []struct {
		name string
		args []string
		flag string
	}{
		{"client list of an empty --org", []string{"client", "list", "--org", ""}, "--org"},
		{"site list of a blank --org", []string{"site", "list", "--org=  "}, "--org"},
		{"site update with an empty --time-zone", []string{"site", "update", "--site", site, "--time-zone", ""}, "--time-zone"},
		{"site update with an empty --legal-name", []string{"site", "update", "--site", site, "--legal-name="}, "--legal-name"},
		{"keys generate with an empty --id", []string{"keys", "generate", "--id", ""}, "--id"},
	}
	for _, tc := range tests {
		code, out, errOut := runBinary(t, env, append([]string{"admin"}, tc.args...)...)
		if code != 2 || out != "" || !strings.HasPrefix(errOut, "pyng: "+tc.flag+" has no value") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 2, no stdout, one line naming %s", tc.name, code, out, errOut, tc.flag)
		}
	}
	if s := pyngOne(t, env, "admin", "site", "show", "--site", site); s["timeZone"] != "Australia/Perth" || s["debitUser"] != nil {
		t.Errorf("after the refused updates the site = %v, want it unchanged", s)
	}
}

// TestAdminNamesAreOneLineOfText creates organisations and sites with names that are not one line
// of text: exit 2 naming --name, and nothing created. A site's name is the title of the customer's
// pages and the subject of their emails.
func TestAdminNamesAreOneLineOfText(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		env := []string{"PYNG_DATABASE_URL=" + databaseURL(t, engine)}
		org := pyngOne(t, env, "admin", "org", "create", "--name", "Acme")["organisationId"].(string)
		for _, name := range []string{"Acme\r\nBcc: someone@example.com", "Acme\x1b[31m", "Acme\tOnline", strings.Repeat("a", 201)} {
			for _, args := range [][]string{{"org", "create", "--name", name}, {"site", "create", "--org", org, "--name", name}} {
				code, out, errOut := runBinary(t, env, append([]string{"admin"}, args...)...)
				if code != 2 || out != "" || !strings.HasPrefix(errOut, "pyng: --name: name must be 1 to 200 characters, without control characters.") {
					t.Errorf("%s %s %q: exit %d, stdout %q, stderr %q; want exit 2 naming --name", args[0], args[1], name, code, out, errOut)
				}
			}
		}
		if orgs := pyngJSON(t, env, "admin", "org", "list"); len(orgs) != 1 {
			t.Errorf("after the refused names, %d organisations: %v", len(orgs), orgs)
		}
		if sites := pyngJSON(t, env, "admin", "site", "list"); len(sites) != 0 {
			t.Errorf("after the refused names, sites %v", sites)
		}
		long := strings.Repeat("é", 200)
		if s := pyngOne(t, env, "admin", "site", "create", "--org", org, "--name", long); s["name"] != long {
			t.Errorf("a name of 200 characters: %v", s)
		}
	})
}
