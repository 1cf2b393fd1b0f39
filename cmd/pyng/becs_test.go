package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/becs/aba"
	"github.com/pyng/receivables/storage"
)

// TestBECSAdminCommands puts a site on the BECS rail, has a batch of it cut into a file, and
// lists, gets and lodges the file with the operator's commands.
func TestBECSAdminCommands(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := databaseURL(t, engine)
			db := "-database-url=" + url
			key := "-encryption-key=" + dbtest.KeyRing

			site := newSiteByCommand(t, db)

			setRail := func(extra ...string) (int, string, string) {
				return runPyng(t, append([]string{"admin", "site", "set-rail", db, key, "--site", site.SiteID}, extra...)...)
			}
			for _, bad := range []struct {
				args []string
				want string
			}{
				{[]string{"--rail", "becs"}, "--user-id, --user-name"},
				{append(append([]string{"--rail", "becs"}, debitUserArgs...), "--user-id", "12"), "user"},
				{append(append([]string{"--rail", "becs"}, debitUserArgs...), "--trace-bsb", "06200"), "BSB"},
				{append(append([]string{"--rail", "becs"}, debitUserArgs...), "--remitter", "ÄCME"), "emitter"},
				{[]string{"--rail", "swift"}, "--rail"},
			} {
				if code, out, errOut := setRail(bad.args...); code != 2 || out != "" || !strings.Contains(errOut, bad.want) {
					t.Errorf("set-rail %v = %d, %q, %q; want 2 and a message naming %q", bad.args, code, out, errOut, bad.want)
				}
			}
			// A site whose debit user (site update) is not set takes no rail that collects: its
			// customers' Direct Debit Request would name no one to contact. Nothing is written.
			bare := bareSiteByCommand(t, db)
			code, out, errOut := runPyng(t, append([]string{"admin", "site", "set-rail", db, key, "--site", bare.SiteID, "--rail", "becs"}, debitUserArgs...)...)
			if code != 2 || out != "" || !strings.Contains(errOut, "--site: The site's debit user is not set") {
				t.Errorf("set-rail --rail becs of a site without its debit user = %d, %q, %q; want 2, refused naming --site", code, out, errOut)
			}
			if code, out, _ := runPyng(t, "admin", "site", "show", db, key, "--site", bare.SiteID); code != 0 || strings.Contains(out, `"becs"`) || !strings.Contains(out, `"rail":"sandbox"`) {
				t.Errorf("the site refused: %d, %s; want it on the sandbox rail, no BECS details written", code, out)
			}
			code, out, errOut = setRail(append(append([]string{"--rail", "becs"}, debitUserArgs...), "--self-balancing")...)
			var set struct {
				SiteID, Rail string
				BECS         struct {
					UserID, TraceBsb string
					SelfBalancing    bool
				}
			}
			decodeOne(t, code, out, errOut, &set)
			if set.Rail != "becs" || set.BECS.UserID != "123456" || set.BECS.TraceBsb != "062-000" || !set.BECS.SelfBalancing {
				t.Fatalf("set-rail = %+v", set)
			}

			// A batch of the site, executed and cut, as the server's jobs would.
			cut := cutBECSFile(t, url, site.SiteID, billing.SystemClock{}, 1234, 5678)
			service, s, r, files := cut.service, cut.site, cut.rail, []becs.File{cut.file}
			if s.Rail != "becs" {
				t.Fatalf("site = %+v", s)
			}

			code, out, errOut = runPyng(t, "admin", "becs", "files", "list", db, key, "--site", site.SiteID)
			var listed struct {
				ID, Checksum, State string
				Rows                int
				Total, CutAt        int64
			}
			decodeOne(t, code, out, errOut, &listed)
			if listed.ID != files[0].ID || listed.Rows != 2 || listed.Total != 1234+5678 || listed.State != "cut" ||
				listed.Checksum != "sha256:"+files[0].Checksum || listed.CutAt != billing.Millis(files[0].CutAt) {
				t.Fatalf("files list = %+v, want the file cut %+v", listed, files[0])
			}

			code, out, errOut = runPyng(t, "admin", "becs", "files", "get", files[0].ID, db, key)
			if code != 0 || errOut != "" {
				t.Fatalf("files get = %d, %s", code, errOut)
			}
			parsed, err := aba.Read(strings.NewReader(out))
			if err != nil || parsed.Totals().Debit != 1234+5678 || len(parsed.Details) != 3 {
				t.Fatalf("files get gave a file of %+v (%d details), %v; want the two debits and the balancing credit", parsed.Totals(), len(parsed.Details), err)
			}
			stored, _ := r.Content(ctx, files[0].ID)
			if !bytes.Equal([]byte(out), stored) {
				t.Fatal("files get did not give the stored bytes")
			}

			code, out, errOut = runPyng(t, "admin", "becs", "files", "lodged", files[0].ID, db, key)
			var lodged struct {
				ID, State string
				LodgedAt  int64
			}
			decodeOne(t, code, out, errOut, &lodged)
			if lodged.State != "lodged" || lodged.LodgedAt == 0 {
				t.Fatalf("files lodged = %+v", lodged)
			}
			// A lodged file is the bank's: getting it, or recording it lodged again, says so.
			code, out, errOut = runPyng(t, "admin", "becs", "files", "lodged", files[0].ID, db, key)
			if code != 0 || !strings.Contains(out, `"state":"lodged"`) || !strings.Contains(errOut, "was recorded lodged already") ||
				!strings.Contains(errOut, "do not upload it to the bank again") {
				t.Errorf("files lodged of a lodged file = %d, %q, %q; want it as it is, with a warning", code, out, errOut)
			}
			if code, out, errOut = runPyng(t, "admin", "becs", "files", "get", files[0].ID, db, key); code != 0 || out != string(stored) ||
				!strings.Contains(errOut, "warning: file "+files[0].ID+" was lodged at") || !strings.Contains(errOut, "do not upload it again") {
				t.Errorf("files get of a lodged file = %d, %q; want its bytes, with a warning", code, errOut)
			}
			_, _, rows, err := service.Batch(ctx, s, "B1", "")
			if err != nil {
				t.Fatal(err)
			}
			for _, row := range rows {
				if row.State != billing.RowSucceeded || billing.Millis(row.OutcomeAt) != lodged.LodgedAt {
					t.Errorf("row %s is %s at %v once its file is lodged, want succeeded at the lodging", row.ID, row.State, row.OutcomeAt)
				}
			}

			testReturnsImport(t, db, key, service, s, stored, rows)

			if code, _, errOut := runPyng(t, "admin", "becs", "files", "get", "file_nope", db, key); code != 2 || !strings.Contains(errOut, "no BECS file") {
				t.Errorf("files get of an unknown file = %d, %q", code, errOut)
			}
			code, out, _ = runPyng(t, "admin", "becs", "files", "list", db, key, "--site", "site_other")
			if code != 2 || out != "" {
				t.Errorf("files list of no site = %d, %q; want exit 2 and nothing", code, out)
			}
		})
	}
}

func mustLocation(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Australia/Sydney")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// testReturnsImport imports, with the built binary, a returns file of the first of the rows
// (succeeded, in the file content) and of an item that matches none: twice, then malformed.
func testReturnsImport(t *testing.T, db, key string, service *billing.Service, site billing.Site, content []byte, rows []billing.Row) {
	t.Helper()
	returns, err := becs.ReturnsOf(content, map[string]aba.ReturnReason{becs.LodgementReference(rows[0].ID): aba.ReturnAccountClosed}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f, err := aba.Read(bytes.NewReader(returns))
	if err != nil {
		t.Fatal(err)
	}
	stray := f.Returns[0]
	stray.LodgementReference, stray.Reason = "PYSTRAY", aba.ReturnPaymentStopped
	f.Returns = append(f.Returns, stray)
	if returns, err = f.MarshalText(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "returns.aba")
	if err := os.WriteFile(path, returns, 0o600); err != nil {
		t.Fatal(err)
	}
	type imported struct {
		Source                                               string
		Items, Returned, AlreadyReturned, Unmatched, Revoked int
	}
	// The first import returns the row accountClosed, which ends its customer's authority.
	for i, want := range []imported{{Items: 2, Returned: 1, Unmatched: 1, Revoked: 1}, {Items: 2, AlreadyReturned: 1, Unmatched: 1}} {
		code, out, errOut := runPyng(t, "admin", "becs", "returns", "import", path, db, key)
		var got imported
		if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
			t.Fatalf("returns import #%d = %d, %q, %q", i+1, code, out, errOut)
		}
		if want := fmt.Sprintf(`{"source":%q,"items":%d,"returned":%d,"alreadyReturned":%d,"unmatched":%d,"revoked":%d}`+"\n",
			got.Source, want.Items, want.Returned, want.AlreadyReturned, want.Unmatched, want.Revoked); out != want {
			t.Errorf("returns import #%d printed %q; want %q, in the README's order", i+1, out, want)
		}
		got.Source = ""
		if got != want || !strings.Contains(errOut, "line 3") || !strings.Contains(errOut, `"PYSTRAY"`) ||
			!strings.Contains(errOut, "no debit") || strings.Count(errOut, "\n") != 1 {
			t.Fatalf("returns import #%d = %+v, stderr %q; want %+v and the stray item on stderr", i+1, got, errOut, want)
		}
	}
	_, _, after, err := service.Batch(context.Background(), site, "B1", "")
	if err != nil {
		t.Fatal(err)
	}
	if r := after[0]; r.State != billing.RowSucceeded || r.ReturnReason != "accountClosed" || r.ReturnedAt.IsZero() || r.Retryable() {
		t.Fatalf("the returned row is %+v; want succeeded, returned accountClosed, not retryable", r)
	}
	if after[1].Returned() {
		t.Fatalf("the other row is returned: %+v", after[1])
	}

	bad := filepath.Join(dir, "bad.aba")
	if err := os.WriteFile(bad, bytes.Replace(returns, []byte("PYSTRAY"), []byte("PY~TRAY"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runPyng(t, "admin", "becs", "returns", "import", bad, db, key)
	if code != 1 || out != "" || !strings.Contains(errOut, "line 3") || !strings.Contains(errOut, "column") || !strings.Contains(errOut, "nothing was imported") {
		t.Fatalf("a malformed returns file = %d, %q, %q; want 1 and its errors with line and column", code, out, errOut)
	}
	code, out, errOut = runPyng(t, "admin", "becs", "returns", "unmatched", db, key)
	var kept struct {
		Line               int
		LodgementReference string
		Reason             string
	}
	decodeOne(t, code, out, errOut, &kept)
	if kept.Line != 3 || kept.LodgementReference != "PYSTRAY" || kept.Reason != "paymentStopped" {
		t.Fatalf("returns unmatched = %+v; want the stray item, once", kept)
	}
}

// TestBECSFilesLodgedRefusesAFileTooLateToLodge: the command runs on the system's clock, so the
// file is cut two days ago (the service and the rail on a clock set back): its debits' deadlines
// have passed. Recording it lodged is refused, exit 1, with a message saying not to lodge it, and
// the file stays unlodged; files get still gives its bytes (exit 0), with a warning on stderr.
func TestBECSFilesLodgedRefusesAFileTooLateToLodge(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := databaseURL(t, engine)
			db := "-database-url=" + url
			key := "-encryption-key=" + dbtest.KeyRing

			site := becsSiteByCommand(t, db, key)

			cut := cutBECSFile(t, url, site.SiteID, clocktest.At(time.Now().Add(-2*billing.RowDeadline)), 1234)
			r, files := cut.rail, []becs.File{cut.file}
			if !files[0].LodgeBy().Before(time.Now()) {
				t.Fatalf("the file may be lodged until %v; want a time passed", files[0].LodgeBy())
			}

			code, out, errOut := runPyng(t, "admin", "becs", "files", "lodged", files[0].ID, db, key)
			if code != 1 || out != "" || !strings.Contains(errOut, "refused: too late to lodge") ||
				!strings.Contains(errOut, files[0].ID) || !strings.Contains(errOut, "do not lodge this file with the bank") ||
				!strings.Contains(errOut, "if you uploaded it already, have the bank recall it now") {
				t.Fatalf("files lodged of a file too late = %d, %q, %q; want 1 and a message refusing it", code, out, errOut)
			}
			if got, err := r.File(ctx, files[0].ID); err != nil || !got.LodgedAt.IsZero() {
				t.Fatalf("the file is %+v, %v; want not lodged", got, err)
			}

			code, out, errOut = runPyng(t, "admin", "becs", "files", "get", files[0].ID, db, key)
			stored, err := r.Content(ctx, files[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if code != 0 || out != string(stored) {
				t.Fatalf("files get of a file too late to lodge = %d, %d bytes, %q; want 0 and its bytes", code, len(out), errOut)
			}
			if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "warning") || !strings.Contains(errOut, files[0].ID) ||
				!strings.Contains(errOut, "expired") || !strings.Contains(errOut, "do not lodge it") {
				t.Fatalf("files get of a file too late to lodge: stderr %q; want one line warning not to lodge it", errOut)
			}
		})
	}
}

// Issue 12: `pyng admin site set-rail --site … --rail becs --user-id 123456 --user-name … --bank CBA
// --description … --trace-bsb 062-000 --trace-account … --remitter … [--self-balancing]` "(each
// field validated ...)". The operator gives flags, not a file: a refused value is named by the
// flag that gave it, as every other admin command's usage errors do, rather than only by the
// line and column of a sample file the operator never sees ("line 1, descriptive record (type 0),
// column 21 (financial institution)"). Self-balancing, the value is also in the credit to the
// trace account (the user name its title of account): its problem is told once, by the flag.
func TestSetRailErrorsNameTheFlagAtFault(t *testing.T) {
	url := databaseURL(t, "sqlite")
	db := "-database-url=" + url
	key := "-encryption-key=" + dbtest.KeyRing
	site := newSiteByCommand(t, db)
	for _, c := range []struct {
		flag, value   string
		selfBalancing bool
	}{
		{"--bank", "cba", false},
		{"--user-id", "1234567", false},
		{"--user-name", strings.Repeat("A", 27), false},
		{"--description", strings.Repeat("D", 13), false},
		{"--trace-account", "1234567890", false},
		{"--remitter", strings.Repeat("R", 17), false},
		{"--trace-bsb", "06-2000", false},
		{"--user-name", "ÄCME", true},
		{"--trace-account", "00000000", true},
	} {
		args := append([]string{"admin", "site", "set-rail", db, key, "--site", site.SiteID, "--rail", "becs"}, debitUserArgs...)
		args = append(args, c.flag, c.value)
		if c.selfBalancing {
			args = append(args, "--self-balancing")
		}
		code, out, errOut := runPyng(t, args...)
		if code != 2 || out != "" {
			t.Errorf("set-rail %s %q = %d, %q; want exit 2 and nothing on stdout", c.flag, c.value, code, out)
		}
		if !strings.HasPrefix(errOut, "pyng: "+c.flag+": ") || strings.Count(errOut, "\n") != 1 || strings.Contains(errOut, "record") {
			t.Errorf("set-rail %s %q: %q; want one line naming %s, and no record of a file", c.flag, c.value, errOut, c.flag)
		}
	}
}

// README: set-rail prints a JSON object; a six-digit BSB is taken in the format's form, and every
// field of the debit user is shown back as stored.
func TestSetRailPrintsTheDebitUserAsStored(t *testing.T) {
	url := databaseURL(t, "sqlite")
	db := "-database-url=" + url
	key := "-encryption-key=" + dbtest.KeyRing
	site := newSiteByCommand(t, db)
	args := []string{"admin", "site", "set-rail", db, key, "--site", site.SiteID, "--rail", "becs", "--user-id", "012345",
		"--user-name", "Acme Pty Ltd", "--bank", "WBC", "--description", "DEBITS", "--trace-bsb", "062000",
		"--trace-account", "12-3456", "--remitter", "ACME"}
	// siteAfter is what a command printed of the site, each decoded afresh.
	type siteAfter struct {
		SiteID, Rail string
		BECS         map[string]any
	}
	run := func(args ...string) (got siteAfter) {
		t.Helper()
		code, out, errOut := runPyng(t, args...)
		decodeOne(t, code, out, errOut, &got)
		return got
	}
	want := map[string]any{"userId": "012345", "userName": "Acme Pty Ltd", "bank": "WBC", "description": "DEBITS",
		"traceBsb": "062-000", "traceAccount": "12-3456", "remitter": "ACME", "selfBalancing": false}
	check := func(command string, got siteAfter, rail string) {
		t.Helper()
		if got.Rail != rail || got.SiteID != site.SiteID {
			t.Errorf("%s = %+v, want site %s on the %s rail", command, got, site.SiteID, rail)
		}
		for k, v := range want {
			if got.BECS[k] != v {
				t.Errorf("%s: becs.%s = %v, want %v", command, k, got.BECS[k], v)
			}
		}
	}
	check("set-rail", run(args...), "becs")
	// site show reads them back, on the rail and off it.
	show := []string{"admin", "site", "show", db, "--site", site.SiteID}
	check("site show", run(show...), "becs")
	if got := run("admin", "site", "set-rail", db, key, "--site", site.SiteID, "--rail", "sandbox"); got.Rail != "sandbox" || got.BECS != nil {
		t.Errorf("set-rail sandbox = %+v", got)
	}
	check("site show, the site back on the sandbox", run(show...), "sandbox")
	// A site never put on the BECS rail has no BECS details.
	other := newSiteByCommand(t, db).SiteID
	if got := run("admin", "site", "show", db, "--site", other); got.SiteID != other || got.Rail != "sandbox" || got.BECS != nil {
		t.Errorf("site show of a site never on the BECS rail = %+v", got)
	}
	// A site that does not exist is a usage error, on either rail.
	for _, r := range []string{"sandbox", "becs"} {
		a := []string{"admin", "site", "set-rail", db, key, "--site", "site_nope", "--rail", r}
		if r == "becs" {
			a = append(a, debitUserArgs...)
		}
		if code, out, errOut := runPyng(t, a...); code != 2 || out != "" || !strings.Contains(errOut, "site") {
			t.Errorf("set-rail of an unknown site (%s) = %d, %q, %q; want 2", r, code, out, errOut)
		}
	}
}

// Without a key ring set-rail is refused before it writes anything. Moving a site to the BECS rail,
// or to another user ID, has the rail withdraw the debits of the customers whose Direct Debit
// Request does not name it, which opens their sealed details: failing only then left the new
// details written and the debits queued, and every run again failed the same way.
func TestSetRailWithoutAKeyRingChangesNothing(t *testing.T) {
	url := databaseURL(t, "sqlite")
	db, key := "-database-url="+url, "-encryption-key="+dbtest.KeyRing
	noKey := []string{"-encryption-key=", "-encryption-key-file="} // whatever the environment holds
	onSandbox := newSiteByCommand(t, db).SiteID
	onBECS := becsSiteByCommand(t, db, key).SiteID
	otherUser := append(append([]string{"--rail", "becs"}, debitUserArgs...), "--user-id", "654321")
	for _, tc := range []struct {
		rule, site string
		args       []string
	}{
		{"a site put on the BECS rail", onSandbox, otherUser},
		{"a BECS site given another user ID", onBECS, otherUser},
		{"a BECS site put back on the sandbox", onBECS, []string{"--rail", "sandbox"}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			show := func() string {
				t.Helper()
				code, out, errOut := runPyng(t, "admin", "site", "show", db, "--site", tc.site)
				if code != 0 {
					t.Fatalf("site show: exit %d, %s", code, errOut)
				}
				return out
			}
			before := show()
			args := append(append([]string{"admin", "site", "set-rail", db, "--site", tc.site}, noKey...), tc.args...)
			code, out, errOut := runPyng(t, args...)
			if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 ||
				!strings.Contains(errOut, "admin site set-rail needs the key ring, and nothing was changed") || !strings.Contains(errOut, "PYNG_ENCRYPTION_KEY") {
				t.Errorf("set-rail without a key ring = %d, %q, %q; want exit 1 and one line saying it needs the key ring", code, out, errOut)
			}
			if after := show(); after != before {
				t.Errorf("set-rail without a key ring changed the site:\nbefore %safter  %s", before, after)
			}
		})
	}
}

// README: "A file that does not read changes nothing: every problem is printed on stderr with
// its line and column, and the command exits 1." An empty file, a file cut short (its total
// record missing) and a file whose item is a character short are such files.
func TestReturnsImportOfAnEmptyOrTruncatedFile(t *testing.T) {
	url := databaseURL(t, "sqlite")
	db := "-database-url=" + url
	key := "-encryption-key=" + dbtest.KeyRing
	dir := t.TempDir()
	returns := strayReturns(t)
	for name, content := range map[string][]byte{
		"empty.aba":     nil,
		"truncated.aba": returns[:len(returns)-122],
		"short.aba":     slices.Concat(returns[:241], returns[242:]), // the item a character short: its last
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runPyng(t, "admin", "becs", "returns", "import", path, db, key)
		if code != 1 || out != "" || !strings.Contains(errOut, "line ") || !strings.Contains(errOut, "column") ||
			!strings.Contains(errOut, "nothing was imported") {
			t.Errorf("returns import %s = %d, %q, %q; want 1, the problems with line and column", name, code, out, errOut)
		}
	}
	code, out, errOut := runPyng(t, "admin", "becs", "returns", "unmatched", db, key)
	if code != 0 || out != "" {
		t.Errorf("returns unmatched after bad files = %d, %q, %q; want nothing kept", code, out, errOut)
	}
}

// strayReturns is a returns file of one item that matches no debit.
func strayReturns(t *testing.T) []byte {
	t.Helper()
	f := aba.File{ReelSequence: 1, Institution: "CBA", UserName: "ACME PTY LTD", UserID: "123456", Description: "RETURNS",
		ProcessingDate: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		Returns: []aba.Return{{Entry: aba.Entry{BSB: "062-000", Account: "12345678", Code: aba.CodeDebit, Amount: 1234,
			Title: "SOMEONE", LodgementReference: "PYNOSUCHDEBIT", TraceBSB: "062-000", TraceAccount: "87654321", Remitter: "ACME"},
			Reason: aba.ReturnAccountClosed, OriginalDay: 1, OriginalUserID: "123456"}}}
	b, err := f.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The usage: "pyng admin becs returns import FILE  import the bank's returns file (- for stdin)".
// Importing from stdin twice keeps the stray item once and reports it on stderr each time.
func TestReturnsImportFromStdin(t *testing.T) {
	url := databaseURL(t, "sqlite")
	env := []string{"PYNG_DATABASE_URL=" + url, "PYNG_ENCRYPTION_KEY=" + dbtest.KeyRing}
	returns := strayReturns(t)
	for i := range 2 {
		cmd := exec.Command(pyngBinary, "admin", "becs", "returns", "import", "-")
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = bytes.NewReader(returns)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) || err != nil {
			t.Fatalf("returns import - #%d: %v: %s", i+1, err, stderr.String())
		}
		var rep struct{ Items, Returned, AlreadyReturned, Unmatched int }
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || rep.Items != 1 || rep.Unmatched != 1 {
			t.Fatalf("returns import - #%d = %q, %v", i+1, stdout.String(), err)
		}
		if !strings.Contains(stderr.String(), "PYNOSUCHDEBIT") || !strings.Contains(stderr.String(), "line 2") {
			t.Fatalf("returns import - #%d stderr %q; want the stray item", i+1, stderr.String())
		}
	}
	code, out, errOut := runBinary(t, env, "admin", "becs", "returns", "unmatched")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"reason":"accountClosed"`) {
		t.Fatalf("returns unmatched = %d, %q, %q; want the item once", code, out, errOut)
	}
}

// newSiteByCommand makes an organisation and a site of it with the admin commands, on the database
// of the -database-url flag db.
func newSiteByCommand(t *testing.T, db string) (site struct{ SiteID string }) {
	t.Helper()
	site = bareSiteByCommand(t, db)
	code, out, errOut := runPyng(t, "admin", "site", "update", db, "--site", site.SiteID, "--legal-name", "Acme Pty Ltd", "--email", "accounts@acme.example")
	decodeOne(t, code, out, errOut, new(struct{ SiteID string }))
	return site
}

// becsSiteByCommand is newSiteByCommand's site, put on the BECS rail by set-rail (key: the
// -encryption-key flag).
func becsSiteByCommand(t *testing.T, db, key string) (site struct{ SiteID string }) {
	t.Helper()
	site = newSiteByCommand(t, db)
	code, out, errOut := runPyng(t, append([]string{"admin", "site", "set-rail", db, key, "--site", site.SiteID, "--rail", "becs"}, debitUserArgs...)...)
	decodeOne(t, code, out, errOut, new(struct{ Rail string }))
	return site
}

// bareSiteByCommand is newSiteByCommand without the debit user: a site no rail that collects takes.
func bareSiteByCommand(t *testing.T, db string) (site struct{ SiteID string }) {
	t.Helper()
	code, out, errOut := runPyng(t, "admin", "org", "create", db, "--name", "Acme")
	var org struct{ OrganisationID string }
	decodeOne(t, code, out, errOut, &org)
	code, out, errOut = runPyng(t, "admin", "site", "create", db, "--org", org.OrganisationID, "--name", "Acme")
	decodeOne(t, code, out, errOut, &site)
	return site
}

// debitUserArgs are the flags of a valid debit user for "site set-rail --rail becs".
var debitUserArgs = []string{"--user-id", "123456", "--user-name", "ACME PTY LTD", "--bank", "CBA", "--description", "RECEIVABLES",
	"--trace-bsb", "062-000", "--trace-account", "87654321", "--remitter", "ACME"}

// cutFile is a BECS site's one file and the service, site and rail it was cut with.
type cutFile struct {
	service *billing.Service
	site    billing.Site
	rail    *becs.Rail
	file    becs.File
}

// fileByCommand puts a new site on the BECS rail with the admin commands and cuts a file of a
// batch of two rows of it (12.34 and 56.78), as the server's jobs would; it returns the file and
// the -database-url and -encryption-key flags of its database.
func fileByCommand(t *testing.T, engine string) (cut cutFile, db, key string) {
	t.Helper()
	url := databaseURL(t, engine)
	db, key = "-database-url="+url, "-encryption-key="+dbtest.KeyRing
	site := becsSiteByCommand(t, db, key)
	return cutBECSFile(t, url, site.SiteID, billing.SystemClock{}, 1234, 5678), db, key
}

// cutBECSFile links customer C1 at the site, on the BECS rail, of the database at url, submits
// batch B1 of one row a amount, executes it and cuts its file as the server's jobs would, all on
// clock.
func cutBECSFile(t *testing.T, url, siteID string, clock billing.Clock, amounts ...int64) cutFile {
	t.Helper()
	ctx := context.Background()
	store, err := storage.Open(ctx, url, storage.WithKeyring(dbtest.Keyring()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	service, _, err := app.NewService(ctx, store, clock, app.ServiceSettings{Sandbox: true})
	if err != nil {
		t.Fatal(err)
	}
	site, err := store.GetSite(ctx, siteID)
	if err != nil {
		t.Fatal(err)
	}
	apptest.LinkedCustomer(t, service, site, "C1")
	rows := make([]billing.RowRequest, len(amounts))
	for i, a := range amounts {
		rows[i] = billing.RowRequest{Reference: fmt.Sprintf("R%d", i+1), CustomerReference: "C1", Amount: a}
	}
	b := apptest.SubmitBatch(t, service, site, "B1", rows...)
	if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	r, err := becs.Open(ctx, store.Conn(), clock)
	if err != nil {
		t.Fatal(err)
	}
	files, err := r.Cut(ctx, becs.Calendar{Location: mustLocation(t)})
	if err != nil || len(files) != 1 {
		t.Fatalf("Cut = %+v, %v", files, err)
	}
	return cutFile{service: service, site: site, rail: r, file: files[0]}
}

// README: "uploads the file to the bank, then records it: `pyng admin becs files lodged FILE_ID`.
// Its rows become `succeeded` at once", and the API's BatchState: a batch is `inProgress` while
// "some rows are not terminal yet", `completed` once every row is, `completedAt` "when the last
// row became terminal". Lodging the file that held a batch's last open rows completes the batch
// then, with its batch.completed event, not at its next step a minute later.
func TestFilesLodgedCompletesTheBatchesItsRowsEnd(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			cut, db, key := fileByCommand(t, engine)

			code, out, errOut := runPyng(t, "admin", "becs", "files", "lodged", cut.file.ID, db, key)
			var lodged struct{ LodgedAt int64 }
			decodeOne(t, code, out, errOut, &lodged)

			b, summary, _, err := cut.service.Batch(ctx, cut.site, "B1", "")
			if err != nil {
				t.Fatal(err)
			}
			if b.State != billing.BatchCompleted || billing.Millis(b.CompletedAt) < lodged.LodgedAt || summary[billing.RowSucceeded].Count != 2 {
				t.Fatalf("batch once its file is lodged = %s, completed at %v, %+v; want completed at the lodging (%d), both rows succeeded",
					b.State, b.CompletedAt, summary, lodged.LodgedAt)
			}
			events, _, err := cut.service.Events(ctx, cut.site, billing.EventFilter{Type: billing.EventBatchCompleted, Limit: 10})
			if err != nil || len(events) != 1 {
				t.Fatalf("batch.completed events = %+v, %v; want the one of the lodging", events, err)
			}
		})
	}
}

// Issue: a returns file imported before its file is recorded lodged (the operator lodged the file
// at the bank, and the bank's returns came in before `files lodged`) keeps its items unmatched;
// `files lodged` then records their returns, once, and says so on stderr: the item of the
// lodged row is no longer kept, the partner gets one debit.returned event, and importing the
// returns file again changes nothing. The items that match no row (an unknown reference, another
// amount) stay kept.
func TestFilesLodgedRecordsTheReturnsImportedBeforeIt(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			cut, db, key := fileByCommand(t, engine)
			_, _, rows, err := cut.service.Batch(ctx, cut.site, "B1", "")
			if err != nil {
				t.Fatal(err)
			}
			content, err := cut.rail.Content(ctx, cut.file.ID)
			if err != nil {
				t.Fatal(err)
			}
			returns, err := becs.ReturnsOf(content, map[string]aba.ReturnReason{becs.LodgementReference(rows[0].ID): aba.ReturnAccountClosed,
				becs.LodgementReference(rows[1].ID): aba.ReturnPaymentStopped}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			f, err := aba.Read(bytes.NewReader(returns))
			if err != nil {
				t.Fatal(err)
			}
			stray := f.Returns[0]
			stray.LodgementReference = "PYSTRAY"
			for i := range f.Returns {
				if f.Returns[i].LodgementReference == becs.LodgementReference(rows[1].ID) {
					f.Returns[i].Amount++ // the second row's debit, another amount
				}
			}
			f.Returns = append(f.Returns, stray)
			if returns, err = f.MarshalText(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "returns.aba")
			if err := os.WriteFile(path, returns, 0o600); err != nil {
				t.Fatal(err)
			}
			importReturns := func(want string) {
				t.Helper()
				code, out, errOut := runPyng(t, "admin", "becs", "returns", "import", path, db, key)
				if _, got, _ := strings.Cut(out, `",`); code != 0 || got != want+"\n" {
					t.Fatalf("returns import = %d, %q, %q; want %s", code, out, errOut, want)
				}
			}
			first, second := becs.LodgementReference(rows[0].ID), becs.LodgementReference(rows[1].ID)
			wantKept := func(refs ...string) {
				t.Helper()
				code, out, errOut := runPyng(t, "admin", "becs", "returns", "unmatched", db, key)
				var got []string
				dec := json.NewDecoder(strings.NewReader(out))
				for dec.More() {
					var kept struct{ LodgementReference string }
					if err := dec.Decode(&kept); err != nil {
						t.Fatal(err)
					}
					got = append(got, kept.LodgementReference)
				}
				slices.Sort(got)
				slices.Sort(refs)
				if code != 0 || !slices.Equal(got, refs) {
					t.Fatalf("returns unmatched = %d, %q, %q; want the items of %v", code, out, errOut, refs)
				}
			}
			importReturns(`"items":3,"returned":0,"alreadyReturned":0,"unmatched":3,"revoked":0}`)
			wantKept(first, second, "PYSTRAY")

			code, out, errOut := runPyng(t, "admin", "becs", "files", "lodged", cut.file.ID, db, key)
			var lodged struct{ State string }
			decodeOne(t, code, out, errOut, &lodged)
			if lodged.State != "lodged" || !strings.Contains(errOut, "1 returned items kept unmatched (returns imported before this record) match their rows now") ||
				!strings.Contains(errOut, "customers revoked by the bank, as a return of theirs ended their authority: 1\n") {
				t.Fatalf("files lodged = %+v, stderr %q; want it lodged, saying the kept item matched and revoked its customer", lodged, errOut)
			}
			wantKept(second, "PYSTRAY")
			_, _, after, err := cut.service.Batch(ctx, cut.site, "B1", "")
			if err != nil {
				t.Fatal(err)
			}
			if r := after[0]; r.State != billing.RowSucceeded || r.ReturnReason != "accountClosed" || r.ReturnedAt.IsZero() {
				t.Fatalf("the first row is %+v; want succeeded, returned accountClosed", r)
			}
			if after[1].Returned() || after[1].State != billing.RowSucceeded {
				t.Fatalf("the second row is %+v; want succeeded, not returned", after[1])
			}
			returnedEvents := func() int {
				t.Helper()
				deadline := time.Now().Add(15 * time.Second) // the other tests' transactions may hold an event back
				for {
					events, _, err := cut.service.Events(ctx, cut.site, billing.EventFilter{Type: billing.EventDebitReturned, Limit: 10})
					if err != nil {
						t.Fatal(err)
					}
					if len(events) > 0 || time.Now().After(deadline) {
						return len(events)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			if n := returnedEvents(); n != 1 {
				t.Fatalf("%d debit.returned events, want 1", n)
			}

			importReturns(`"items":3,"returned":0,"alreadyReturned":1,"unmatched":2,"revoked":0}`)
			wantKept(second, "PYSTRAY")
			code, out, errOut = runPyng(t, "admin", "becs", "files", "lodged", cut.file.ID, db, key)
			if code != 0 || strings.Contains(errOut, "match their rows now") {
				t.Fatalf("files lodged again = %d, %q, %q; want nothing more matched", code, out, errOut)
			}
			if n := returnedEvents(); n != 1 {
				t.Fatalf("%d debit.returned events after importing again, want 1", n)
			}
			if _, _, again, _ := cut.service.Batch(ctx, cut.site, "B1", ""); !again[0].ReturnedAt.Equal(after[0].ReturnedAt) {
				t.Fatalf("the first row's return changed: %v, then %v", after[0].ReturnedAt, again[0].ReturnedAt)
			}
		})
	}
}

// Putting a site on the BECS rail says how many of its linked customers must sign up again: those
// whose Direct Debit Request names no user ID (they signed up while the site was on the
// sandbox), or another, or is not known (linked before the terms agreed were kept). A customer
// who signed up under the user ID, or whose link is revoked, is not counted.
func TestSetRailCountsTheCustomersToSignUpAgainAndStopsTheirDebits(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := databaseURL(t, engine)
			db, key := "-database-url="+url, "-encryption-key="+dbtest.KeyRing
			siteID := newSiteByCommand(t, db).SiteID
			store := dbtest.OpenURL(t, url, storage.WithKeyring(dbtest.Keyring()))
			service, rails, err := app.NewService(ctx, store, billing.SystemClock{}, app.ServiceSettings{Sandbox: true})
			if err != nil {
				t.Fatal(err)
			}
			site, err := store.GetSite(ctx, siteID)
			if err != nil {
				t.Fatal(err)
			}
			setRail := func(userID string) int {
				t.Helper()
				args := append([]string{"admin", "site", "set-rail", db, key, "--site", siteID, "--rail", "becs"}, debitUserArgs...)
				code, out, errOut := runPyng(t, append(args, "--user-id", userID)...)
				var got struct{ CustomersToSignUpAgain *int }
				decodeOne(t, code, out, errOut, &got)
				if got.CustomersToSignUpAgain == nil {
					t.Fatalf("set-rail printed no customersToSignUpAgain: %s", out)
				}
				return *got.CustomersToSignUpAgain
			}
			apptest.LinkedCustomer(t, service, site, "ON-SANDBOX")
			revoked := apptest.LinkedCustomer(t, service, site, "REVOKED")
			if _, err := service.RevokeByCustomer(ctx, revoked.ID); err != nil {
				t.Fatal(err)
			}
			if n := setRail("123456"); n != 1 {
				t.Errorf("set-rail 123456 counts %d customers to sign up again, want 1 (ON-SANDBOX)", n)
			}
			apptest.LinkedCustomer(t, service, site, "UNDER-123456")
			if n := setRail("123456"); n != 1 {
				t.Errorf("set-rail 123456 again counts %d, want 1: UNDER-123456 agreed to it", n)
			}
			// UNDER-123456's debit waits for the cut-off when the user ID changes: set-rail has the
			// rail withdraw it, and no cut-off sends it under a user ID the customer never agreed to.
			if site, err = store.GetSite(ctx, siteID); err != nil {
				t.Fatal(err)
			}
			b := apptest.SubmitBatch(t, service, site, "B1", billing.RowRequest{Reference: "R1", CustomerReference: "UNDER-123456", Amount: 100})
			if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			if n := setRail("654321"); n != 2 {
				t.Errorf("set-rail 654321 counts %d, want 2", n)
			}
			if files, err := rails.BECS.Cut(ctx, becs.Calendar{}); err != nil || len(files) != 0 {
				t.Errorf("the cut after set-rail 654321 = %+v, %v; want no file", files, err)
			}
			if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			if _, _, rows, err := service.Batch(ctx, site, "B1", ""); err != nil || rows[0].FailureReason != billing.FailureCustomerNotActive {
				t.Errorf("the row of UNDER-123456 is %+v (%v); want failed customerNotActive", rows, err)
			}
			// UNDER-123456's terms lost, as for a customer linked before they were kept.
			if _, err := store.Conn().Exec(ctx, "UPDATE customer_links SET agreed_terms = NULL WHERE customer_reference = 'UNDER-123456'"); err != nil {
				t.Fatal(err)
			}
			if n := setRail("123456"); n != 2 {
				t.Errorf("set-rail 123456 with UNDER-123456's terms unknown counts %d, want 2", n)
			}
		})
	}
}
