package main

import (
	"strings"
	"testing"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
)

// "pyng admin NOUN VERB -h" shows one command's flags: set-rail's help must say what it does and
// what its flags are.
func TestSetRailHelpDescribesItsFlags(t *testing.T) {
	code, out, errOut := runPyng(t, "admin", "site", "set-rail", "-h")
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	if !strings.Contains(errOut, "--rail") || !strings.Contains(errOut, "becs") {
		t.Errorf("set-rail -h gives no synopsis of its flags: %q", errOut[:min(len(errOut), 120)])
	}
	for _, flag := range []string{"user-id", "trace-bsb", "rail"} {
		i := strings.Index(errOut, "-"+flag+" string\n")
		if i < 0 {
			continue
		}
		rest := errOut[i+len("-"+flag+" string\n"):]
		line, _, _ := strings.Cut(rest, "\n")
		if d := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), "(required)")); d == "" {
			t.Errorf("-%s has no description in set-rail -h", flag)
		}
	}
}

// "pyng admin -h" lists the admin commands (README), set-rail, becs and bsb import among them.
func TestAdminHelpListsEveryCommand(t *testing.T) {
	code, _, errOut := runPyng(t, "admin", "-h")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"site set-rail", "becs files list", "bsb import"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("admin -h does not list %q", want)
		}
	}
}

// "pyng help" lists every command, the BECS rail's among them (each error says to run it).
func TestHelpListsTheBECSCommands(t *testing.T) {
	code, _, errOut := runPyng(t, "help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, name := range becsOrder {
		if !strings.Contains(errOut, "pyng admin becs "+name) {
			t.Errorf("pyng help does not list becs %s", name)
		}
	}
}

// "pyng admin becs NOUN VERB -h" shows that command, what it does and its flags, as the other
// admin commands do: --site for files list alone.
func TestBECSCommandHelpShowsItsFlags(t *testing.T) {
	for _, name := range becsOrder {
		t.Run(name, func(t *testing.T) {
			code, _, errOut := runPyng(t, append(append([]string{"admin", "becs"}, strings.Fields(name)...), "-h")...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			want := []string{"usage: pyng admin becs " + name, becsCommands[name].about, "-database-url", "-encryption-key"}
			if name == "files list" {
				want = append(want, "-site string")
			} else if strings.Contains(errOut, "-site") {
				t.Errorf("becs %s -h offers --site, which only files list takes:\n%s", name, errOut)
			}
			for _, w := range want {
				if !strings.Contains(errOut, w) {
					t.Errorf("becs %s -h lacks %q:\n%s", name, w, errOut)
				}
			}
		})
	}
}

// A BECS command's one argument may come before its flags, among them or after them; "--" ends
// the flags, for an argument that starts with a dash.
func TestBECSCommandsTakeTheirArgumentAnywhere(t *testing.T) {
	db := "-database-url=" + databaseURL(t, "sqlite")
	key := "-encryption-key=" + dbtest.KeyRing
	newSiteByCommand(t, db) // the database exists
	for _, args := range [][]string{
		{"file_nope", db, key},
		{db, "file_nope", key},
		{db, key, "file_nope"},
		{db, key, "--", "file_nope"},
	} {
		code, out, errOut := runPyng(t, append([]string{"admin", "becs", "files", "get"}, args...)...)
		if code != 2 || out != "" || !strings.Contains(errOut, `no BECS file "file_nope"`) {
			t.Errorf("files get %v: exit %d, %q, %q; want the file looked for, and not found", args, code, out, errOut)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{db, key}, "needs a file id"},
		{[]string{"file_a", "file_b", db, key}, `unexpected argument "file_b"`},
		{[]string{"file_a", db, key, "file_b"}, `unexpected argument "file_b"`},
		{[]string{db, key, "--site=site_x", "file_a"}, "--site is for files list only"},
	} {
		if code, _, errOut := runPyng(t, append([]string{"admin", "becs", "files", "get"}, tc.args...)...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("files get %v: exit %d, %q; want exit 2 saying %q", tc.args, code, errOut, tc.want)
		}
	}
}

// "becs files list" of a site that does not exist is a mistake (exit 2, naming --site), not a
// site without files (exit 0, nothing printed).
func TestBECSFilesListOfNoSite(t *testing.T) {
	db := "-database-url=" + databaseURL(t, "sqlite")
	key := "-encryption-key=" + dbtest.KeyRing
	site := newSiteByCommand(t, db)
	if code, out, errOut := runPyng(t, "admin", "becs", "files", "list", db, key, "--site", site.SiteID); code != 0 || out != "" {
		t.Errorf("files list of a site without files: exit %d, %q, %q; want exit 0 and nothing", code, out, errOut)
	}
	code, out, errOut := runPyng(t, "admin", "becs", "files", "list", db, key, "--site", "site_nope")
	if code != 2 || out != "" || !strings.Contains(errOut, "--site: ") {
		t.Errorf("files list --site site_nope: exit %d, %q, %q; want exit 2 and the --site at fault", code, out, errOut)
	}
}

// Asking the becs commands for help is not a usage mistake.
func TestBECSHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"admin", "becs", "-h"}, {"admin", "becs", "help"}, {"admin", "becs", "files", "-h"},
		{"admin", "becs", "files", "help"}, {"admin", "becs", "files", "get", "-h"}, {"admin", "becs", "files", "lodged", "--help"},
		{"admin", "becs", "returns", "import", "-h"}, {"admin", "becs", "files", "get", "-database-url=sqlite:x.db", "-h"},
		{"admin", "becs", "files", "get", "file_x", "-h"}, {"admin", "becs", "returns", "import", "-", "--help"}} {
		if code, _, errOut := runPyng(t, args...); code != 0 {
			t.Errorf("pyng %v: exit %d, %q; want the becs usage and exit 0", args, code, errOut)
		}
	}
}

// "site set-rail --rail sandbox" with the BECS debit user's flags is refused: it used to drop them.
func TestSetRailSandboxRefusesTheDebitUsersFlags(t *testing.T) {
	db := "-database-url=" + databaseURL(t, "sqlite")
	key := "-encryption-key=" + dbtest.KeyRing
	site := newSiteByCommand(t, db)
	code, out, _ := runPyng(t, "admin", "site", "set-rail", db, key, "--site", site.SiteID, "--rail", "sandbox", "--user-id", "123456")
	if code == 0 {
		t.Errorf("set-rail --rail sandbox --user-id 123456 = exit 0, %q: the flag was ignored", out)
	}
}

// "becs files lodged FILEID --site OTHER" is refused: it took --site (files list's flag) and
// ignored it, recording the file of another site lodged, and its rows succeeded.
func TestBECSCommandsOfOneFileRefuseASite(t *testing.T) {
	url := databaseURL(t, "sqlite")
	db := "-database-url=" + url
	key := "-encryption-key=" + dbtest.KeyRing
	site := becsSiteByCommand(t, db, key)
	other := newSiteByCommand(t, db)
	file := cutBECSFile(t, url, site.SiteID, billing.SystemClock{}, 1234).file
	code, out, errOut := runPyng(t, "admin", "becs", "files", "lodged", file.ID, db, key, "--site", other.SiteID)
	if code == 0 {
		t.Errorf("files lodged %s --site %s (a file of %s) = exit 0, %q %q: --site was ignored and the file recorded lodged",
			file.ID, other.SiteID, site.SiteID, strings.TrimSpace(out), errOut)
	}
}
