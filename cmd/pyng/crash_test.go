package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail/sandbox"
	"github.com/pyng/receivables/storage"
)

const apiVersion = "urn:pyng:api:billing:version:v1"

// process is one running "pyng serve".
type process struct {
	cmd  *exec.Cmd
	base string
	// stderr is read while the process still writes it (os/exec's copying goroutine).
	stderr *apptest.SyncBuffer
}

// startServer starts the binary on databaseURL with env added, and waits until it answers.
func startServer(t *testing.T, bin, databaseURL string, env ...string) (*process, io.Reader) {
	t.Helper()
	p, stdout := launchServer(t, bin, databaseURL, env...)
	p.waitReady(t)
	return p, stdout
}

// launchServer starts the binary on databaseURL, sealing with the tests' key ring, with env added
// (which may give another), without waiting for it, so that several can start at once.
func launchServer(t *testing.T, bin, databaseURL string, env ...string) (*process, io.Reader) {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve")
	// A PostgreSQL database serves only with PYNG_SANDBOX set; these servers are sandboxes.
	cmd.Env = append(os.Environ(), append([]string{"PYNG_ADDR=" + addr, "PYNG_DATABASE_URL=" + databaseURL, "PYNG_SANDBOX=true",
		"PYNG_ENCRYPTION_KEY=" + dbtest.KeyRing}, env...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, base: "http://" + addr, stderr: &apptest.SyncBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return p, stdout
}

// waitReady waits until the process answers /readyz.
func (p *process) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready within 30s:\n%s", p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill stops the process the hard way, as a crash or an OOM kill would.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

// partner calls the API as one partner.
type partner struct {
	t            *testing.T
	base, siteID string
	token        string
}

func (p *partner) call(method, path string, body any, out any) int {
	p.t.Helper()
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, p.base+"/billing/sites/"+p.siteID+path, r)
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Pyng-Api-Version", apiVersion)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			p.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode
}

// requestToken asks the server at base for an access token with the client's credentials.
func requestToken(t *testing.T, base, clientID, secret string) *http.Response {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest("POST", base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// token is an access token of the client, which the server must grant.
func token(t *testing.T, base, clientID, secret string) string {
	t.Helper()
	resp := requestToken(t, base, clientID, secret)
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

type batchView struct {
	Data struct {
		State string
		Rows  []struct {
			RowReference, State, FailureReason string
			Amount                             int64
		}
	}
}

// TestCrashDuringExecutionLosesNothingAndDebitsOnce submits batches to a server process, kills it
// with SIGKILL while rows are executing, starts it again on the same database, and checks that
// every row ends terminal and the sandbox rail's ledger has exactly one debit per row it settled.
func TestCrashDuringExecutionLosesNothingAndDebitsOnce(t *testing.T) {
	bin := pyngBinary
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			databaseURL := databaseURL(t, engine)
			env := []string{"PYNG_SANDBOX_SETTLEMENT_DELAY=700ms", "PYNG_JOB_RESCUE_AFTER=2s",
				"PYNG_JOB_POLL_INTERVAL=50ms", "PYNG_JOB_WORKERS=2"}
			first, stdout := startServer(t, bin, databaseURL, env...)
			banner := readBanner(t, stdout)
			clientID, secret := field(t, banner, `client id\s+(\S+)`), field(t, banner, `client secret\s+(\S+)`)
			p := &partner{t: t, base: first.base, siteID: field(t, banner, `site\s+(site_\S+)`)}
			p.token = token(t, p.base, clientID, secret)

			customers := []string{"C1", "C2", "C3", "C4"}
			for _, c := range customers {
				if st := p.call("POST", "/customers/invitations", map[string]string{"customerReference": c}, nil); st != 201 {
					t.Fatalf("invite %s: %d", c, st)
				}
				if st := p.call("POST", "/sandbox/customers/"+c+"/signup", nil, nil); st != 200 {
					t.Fatalf("sandbox signup %s: %d", c, st)
				}
			}
			const batches, rowsPerBatch = 6, 150
			for b := range batches {
				var rows []map[string]any
				for i := range rowsPerBatch {
					customer := customers[i%len(customers)]
					if i%25 == 0 {
						customer = "NOBODY" // fails customerNotActive
					}
					rows = append(rows, map[string]any{"rowReference": fmt.Sprintf("R%d", i),
						"customerReference": customer, "amount": 1000 + i})
				}
				body := map[string]any{"batchReference": fmt.Sprintf("B%d", b), "rows": rows}
				if st := p.call("POST", "/batches", body, nil); st != 202 {
					t.Fatalf("submit B%d: %d", b, st)
				}
			}
			// Kill once execution is under way: some rows handed to the rail, not all settled.
			waitFor(t, 20*time.Second, "rows in progress before the crash", func() bool {
				var v batchView
				p.call("GET", "/batches/B0", nil, &v)
				return v.Data.State == "inProgress"
			})
			first.kill(t)

			second, _ := startServer(t, bin, databaseURL, env...)
			p.base = second.base
			succeeded := 0
			for b := range batches {
				v := waitCompleted(t, 60*time.Second, p.call, fmt.Sprintf("B%d", b), rowsPerBatch)
				for _, r := range v.Data.Rows {
					switch {
					case r.State == "succeeded":
						succeeded++
					case r.State != "failed":
						t.Errorf("B%d %s is %s after completion", b, r.RowReference, r.State)
					}
				}
			}
			second.kill(t)

			references := make([]string, batches)
			for b := range batches {
				references[b] = fmt.Sprintf("B%d", b)
			}
			checkLedger(t, databaseURL, p.siteID, references, succeeded, batches*(rowsPerBatch-rowsPerBatch/25))
		})
	}
}

// waitCompleted polls batch reference with call until it is completed, and returns it after
// checking that it has wantRows rows.
func waitCompleted(t *testing.T, limit time.Duration, call func(method, path string, body, out any) int, reference string, wantRows int) batchView {
	t.Helper()
	var v batchView
	waitFor(t, limit, "batch "+reference+" completed", func() bool {
		call("GET", "/batches/"+reference, nil, &v)
		return v.Data.State == "completed"
	})
	if len(v.Data.Rows) != wantRows {
		t.Fatalf("%s has %d rows, want %d", reference, len(v.Data.Rows), wantRows)
	}
	return v
}

func waitFor(t *testing.T, limit time.Duration, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkLedger checks that the sandbox rail's ledger holds a debit for each of the linkedRows rows
// of a linked customer in the site's batches with the references, for each of the succeeded rows
// among them, and none besides.
func checkLedger(t *testing.T, databaseURL, siteID string, references []string, succeeded, linkedRows int) {
	t.Helper()
	debits, elsewhere, ofSucceeded := ledgerCounts(t, databaseURL, siteID, references)
	if elsewhere != 0 {
		t.Errorf("the ledger has %d debits of no row of the batches (a batch accepted or executed twice)", elsewhere)
	}
	if ofSucceeded != succeeded {
		t.Errorf("succeeded rows with a debit = %d, want every one of the %d succeeded rows", ofSucceeded, succeeded)
	}
	if debits != linkedRows {
		t.Errorf("ledger has %d debits, want one for each of the %d rows of a linked customer", debits, linkedRows)
	}
}

// ledgerCounts reads the sandbox rail's ledger through its own store: how many debits it holds
// for the rows of the site's batches with the references, how many it holds besides (of rows
// that are not those: a batch accepted twice, say), and how many succeeded rows have a debit. The
// ledger is keyed by the row's debit key, so a row's debit cannot be recorded twice under it; a
// second debit of the same partner row would be under another row's key. A key withdrawn before
// the sandbox took it (an unlinked customer's row) is no debit.
func ledgerCounts(t *testing.T, databaseURL, siteID string, references []string) (debits, elsewhere, ofSucceeded int) {
	t.Helper()
	ctx := context.Background()
	db, err := storage.Open(ctx, databaseURL, storage.WithKeyring(dbtest.Keyring()))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows []billing.Row
	for _, ref := range references {
		b, err := db.GetBatch(ctx, siteID, ref)
		if err != nil {
			t.Fatalf("batch %s: %v", ref, err)
		}
		rs, err := db.BatchRows(ctx, b.ID, "")
		if err != nil {
			t.Fatalf("rows of %s: %v", ref, err)
		}
		rows = append(rows, rs...)
	}
	keys := make([]string, len(rows))
	for i, r := range rows {
		keys[i] = r.ID
	}
	ledger, err := sandbox.OpenLedger(ctx, db.Conn())
	if err != nil {
		t.Fatal(err)
	}
	entries, err := ledger.Entries(ctx, keys)
	if err != nil {
		t.Fatalf("ledger entries: %v", err)
	}
	debited := map[string]bool{}
	for _, e := range entries {
		debited[e.Key] = e.WithdrawnAt.IsZero()
	}
	for _, r := range rows {
		if r.State == billing.RowSucceeded && debited[r.ID] {
			ofSucceeded++
		}
	}
	var all int
	if err := db.Conn().Query(ctx, "SELECT count(*) FROM sandbox_ledger WHERE withdrawn_at IS NULL", nil, func(row storage.Scanner) error {
		return row.Scan(&all)
	}); err != nil {
		t.Fatalf("count the ledger: %v", err)
	}
	for _, d := range debited {
		if d {
			debits++
		}
	}
	return debits, all - debits, ofSucceeded
}
