package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/client"
)

// The README's walkthrough is shown twice, with curl and with pyng-partner; these tests run each
// block as the README has it (only the server's address and credentials put in for the
// placeholders), so that neither can drift from what works.

// readmeBlock is the first ```sh block of the README after the line that starts with after.
func readmeBlock(t *testing.T, after string) string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i := strings.Index(text, "\n"+after)
	if i < 0 {
		t.Fatalf("the README has no line starting %q", after)
	}
	text = text[i:]
	start := strings.Index(text, "\n```sh\n")
	if start < 0 {
		t.Fatalf("no sh block after %q", after)
	}
	text = text[start+len("\n```sh\n"):]
	end := strings.Index(text, "\n```\n")
	if end < 0 {
		t.Fatalf("the sh block after %q does not end", after)
	}
	return text[:end+1]
}

// runScript runs script with sh -e in a directory of its own, with pyng-partner on the PATH, the
// README's placeholders replaced by the server's values.
func runScript(t *testing.T, s *apptest.Server, script string) string {
	t.Helper()
	replacer := strings.NewReplacer("http://127.0.0.1:8080", s.URL, "site_...", s.Site.ID, "cli_...", s.ClientID, "sec_...", s.ClientSecret)
	script = replacer.Replace(script)
	for _, placeholder := range []string{"site_...", "cli_...", "sec_...", "127.0.0.1:8080"} {
		if strings.Contains(script, placeholder) {
			t.Fatalf("placeholder %s left in the script", placeholder)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-e", "-c", script)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(binary)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s", err, out)
	}
	return string(out)
}

// checkWalkthrough checks what a walkthrough leaves: the customer linked, and the batch with its
// three outcomes.
func checkWalkthrough(t *testing.T, s *apptest.Server, customer, batch string) {
	t.Helper()
	site := siteOf(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if l, err := site.GetCustomer(ctx, customer); err != nil || l.State != client.LinkLinked {
		t.Errorf("%s = %+v, %v; want linked", customer, l, err)
	}
	b, err := site.AwaitBatch(ctx, batch, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range b.Rows {
		got = append(got, r.RowReference+" "+r.CustomerReference+" "+string(r.State)+" "+string(r.FailureReason))
	}
	want := []string{"INV-1 " + customer + " succeeded ", "INV-2 " + customer + " failed insufficientFunds", "INV-3 NOBODY failed customerNotActive"}
	if !slices.Equal(got, want) || b.TotalAmount != 26451 {
		t.Errorf("%s: rows %q, total %d; want %q, 26451", batch, got, b.TotalAmount, want)
	}
}

// curlWalkthrough runs the README's walkthrough with curl and checks its output.
func curlWalkthrough(t *testing.T, s *apptest.Server) {
	t.Helper()
	out := runScript(t, s, readmeBlock(t, "In another shell, in the repository's directory, with those values:"))
	for _, want := range []string{`"signupUrl":"` + s.URL + `/signup?token=`, `"state":"linked"`, `"batchReference":"2026-11-INV"`, "rowReference,customerReference,amount"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %s:\n%s", want, out)
		}
	}
	checkWalkthrough(t, s, "ACME-001", "2026-11-INV")
}

func TestREADMEWalkthroughWithCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the README's walkthrough needs curl on the PATH")
	}
	onEachEngine(t, curlWalkthrough)
}

// The CLI's walkthrough on the server of the curl one, as a reader of the README runs them.
func TestREADMEWalkthroughWithTheCLI(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		curlWalkthrough(t, s)
		out := runScript(t, s, readmeBlock(t, "### The same walkthrough with the CLI"))
		for _, want := range []string{`"signupUrl":"` + s.URL + `/signup?token=`, `"outcomes":[`, "rows settled: 3/3", `"type":"customer.invited"`, "INV-2,ACME-002,4551,failed,insufficientFunds,true,"} {
			if !strings.Contains(out, want) {
				t.Errorf("the output lacks %s:\n%s", want, out)
			}
		}
		checkWalkthrough(t, s, "ACME-002", "2026-11-CLI")
	})
}
