package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/storage"
)

// runBinary runs the built pyng with env added and returns its exit code, stdout and stderr.
func runBinary(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(pyngBinary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

// TestSandboxMakesItsKeyBesideItsDatabaseAndSaysSo starts the binary as the README does, with no
// key, on a new SQLite file: it makes a key file beside the database that only its owner reads,
// says where on stderr and in the banner, and uses the same key on the next start. The database
// and the files SQLite keeps beside it are the owner's alone too.
func TestSandboxMakesItsKeyBesideItsDatabaseAndSaysSo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "data", "pyng.db")
	keyPath := dbPath + ".key"
	p, stdout := startServer(t, pyngBinary, "sqlite:"+dbPath, "PYNG_ENCRYPTION_KEY=")
	banner := readBanner(t, stdout)
	for _, want := range []string{keyPath, "Back it up"} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner does not say %q:\n%s", want, banner)
		}
	}
	if !strings.Contains(p.stderr.String(), keyPath) {
		t.Errorf("stderr does not name the key file:\n%s", p.stderr)
	}
	for _, file := range []string{keyPath, dbPath, dbPath + "-wal", dbPath + "-shm"} {
		info, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(file), perm)
		}
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	p.kill(t)

	again, _ := startServer(t, pyngBinary, "sqlite:"+dbPath, "PYNG_ENCRYPTION_KEY=")
	if after, _ := os.ReadFile(keyPath); !bytes.Equal(after, key) {
		t.Fatal("the second start changed the key file")
	}
	again.kill(t)
	if strings.Contains(again.stderr.String(), "generated") {
		t.Errorf("the second start says it generated a key:\n%s", again.stderr)
	}
}

// TestServeRefusesToStartWithoutAGoodKey: outside the sandbox, and in a sandbox on PostgreSQL,
// the server does not start without a key ring, and says how to give one; a malformed ring is a
// configuration error.
func TestServeRefusesToStartWithoutAGoodKey(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			databaseURL := databaseURL(t, engine)
			cases := []struct {
				rule     string
				env      []string
				wantCode int
				want     []string
			}{
				{"outside the sandbox no key is refused", []string{"PYNG_SANDBOX=false"}, 1,
					[]string{"no encryption key", "PYNG_ENCRYPTION_KEY", "PYNG_ENCRYPTION_KEY_FILE", "pyng admin keys generate"}},
				{"a malformed key ring is refused", []string{"PYNG_ENCRYPTION_KEY=k1:c2hvcnQ="}, 2,
					[]string{"-encryption-key (PYNG_ENCRYPTION_KEY)", "5 bytes; want 32"}},
				{"a missing key file is refused", []string{"PYNG_ENCRYPTION_KEY_FILE=" + filepath.Join(t.TempDir(), "missing")}, 1,
					[]string{"PYNG_ENCRYPTION_KEY_FILE", "missing"}},
			}
			if engine == storage.EnginePostgres {
				cases = append(cases, struct {
					rule     string
					env      []string
					wantCode int
					want     []string
				}{"a sandbox on PostgreSQL without a key is refused", []string{"PYNG_SANDBOX=true"}, 1, []string{"no encryption key", "PostgreSQL"}})
			}
			for _, tc := range cases {
				t.Run(tc.rule, func(t *testing.T) {
					env := append([]string{"PYNG_ADDR=" + freeAddr(t), "PYNG_DATABASE_URL=" + databaseURL,
						"PYNG_SANDBOX=false", "PYNG_PUBLIC_URL=https://pay.example.com", "PYNG_ENCRYPTION_KEY=", "PYNG_ENCRYPTION_KEY_FILE="}, tc.env...)
					code, out, errOut := runBinary(t, env, "serve")
					if code != tc.wantCode || out != "" || strings.Count(errOut, "\n") != 1 {
						t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and one line on stderr", code, out, errOut, tc.wantCode)
					}
					for _, want := range tc.want {
						if !strings.Contains(errOut, want) {
							t.Errorf("stderr %q does not say %q", errOut, want)
						}
					}
				})
			}
		})
	}
}

// rotation is what "pyng admin keys rotate" prints.
type rotation struct {
	KeyID    string
	Resealed map[string]int
}

// TestAdminKeysRotate follows the README's rotation procedure with the binary, while the server
// keeps serving partners: data sealed with k1; the ring k2,k1 given to the server; two rotations
// run at once, then one again; then k1 dropped, and the server still debits the customers.
func TestAdminKeysRotate(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			databaseURL := databaseURL(t, engine)
			env := []string{"PYNG_SANDBOX_SETTLEMENT_DELAY=0", "PYNG_JOB_POLL_INTERVAL=50ms", "PYNG_RATE_LIMIT=0"}

			first, stdout := startServer(t, pyngBinary, databaseURL, append(env, "PYNG_ENCRYPTION_KEY="+dbtest.KeyRingOf("k1"))...)
			banner := readBanner(t, stdout)
			clientID, secret := field(t, banner, `client id\s+(\S+)`), field(t, banner, `client secret\s+(\S+)`)
			p := &partner{t: t, base: first.base, siteID: field(t, banner, `site\s+(site_\S+)`)}
			p.token = token(t, p.base, clientID, secret)
			customers := []string{"C1", "C2", "C3"}
			var rows []map[string]any
			for i, c := range customers {
				if st := p.call("POST", "/customers/invitations", map[string]string{"customerReference": c}, nil); st != 201 {
					t.Fatalf("invite %s: %d", c, st)
				}
				if st := p.call("POST", "/sandbox/customers/"+c+"/signup", nil, nil); st != 200 {
					t.Fatalf("sandbox signup %s: %d", c, st)
				}
				rows = append(rows, map[string]any{"rowReference": fmt.Sprintf("R%d", i), "customerReference": c, "amount": 1000})
			}
			if st := p.call("POST", "/batches", map[string]any{"batchReference": "B1", "rows": rows}, nil); st != 202 {
				t.Fatalf("submit B1: %d", st)
			}
			waitCompleted(t, 30*time.Second, p.call, "B1", len(rows))
			// A webhook endpoint whose secret was rotated: two sealed secrets.
			var endpoint struct{ Data struct{ EndpointID string } }
			if st := p.call("POST", "/webhook-endpoints", map[string]any{"url": "http://127.0.0.1:9/hook", "eventTypes": []string{"batch.completed"}}, &endpoint); st != 201 {
				t.Fatalf("create a webhook endpoint: %d", st)
			}
			if st := p.call("POST", "/webhook-endpoints/"+endpoint.Data.EndpointID+"/secret-rotation", nil, nil); st != 200 {
				t.Fatalf("rotate the endpoint's secret: %d", st)
			}
			first.kill(t)

			// The new key first in the ring, the server restarted with it; it serves meanwhile.
			ring := "PYNG_ENCRYPTION_KEY=" + dbtest.KeyRingOf("k2", "k1")
			second, _ := startServer(t, pyngBinary, databaseURL, append(env, ring)...)
			p.base = second.base
			stopCalls := make(chan struct{})
			var calls sync.WaitGroup
			calls.Go(func() {
				for {
					select {
					case <-stopCalls:
						return
					default:
					}
					if st := p.call("GET", "/customers/C1", nil, nil); st != 200 {
						t.Errorf("GET a customer during the rotation: %d", st)
						return
					}
				}
			})
			results := make([]rotation, 2)
			var rotations sync.WaitGroup
			for i := range results {
				rotations.Go(func() {
					code, out, errOut := runBinary(t, []string{"PYNG_DATABASE_URL=" + databaseURL, ring}, "admin", "keys", "rotate", "--batch-size", "2")
					if code != 0 || json.Unmarshal([]byte(out), &results[i]) != nil {
						t.Errorf("keys rotate #%d: exit %d, %q, %s", i+1, code, out, errOut)
					}
				})
			}
			rotations.Wait()
			close(stopCalls)
			calls.Wait()
			total := map[string]int{}
			for _, r := range results {
				if r.KeyID != "k2" {
					t.Errorf("keys rotate sealed with %q, want k2", r.KeyID)
				}
				for table, n := range r.Resealed {
					total[table] += n
				}
			}
			// The site is on the sandbox: the BECS rail's tables hold nothing.
			want := map[string]int{"customer_links": len(customers), "signing_keys": 1, "webhook_endpoints": 1, "sandbox_ledger": len(rows),
				"becs_debits": 0, "becs_files": 0, "becs_unmatched_returns": 0}
			if fmt.Sprint(total) != fmt.Sprint(want) {
				t.Fatalf("the two rotations together sealed %v, want each value once: %v", total, want)
			}
			var again rotation
			code, out, errOut := runBinary(t, []string{"PYNG_DATABASE_URL=" + databaseURL, ring}, "admin", "keys", "rotate")
			decodeOne(t, code, out, errOut, &again)
			if fmt.Sprint(again.Resealed) != fmt.Sprint(map[string]int{"customer_links": 0, "signing_keys": 0, "webhook_endpoints": 0, "sandbox_ledger": 0,
				"becs_debits": 0, "becs_files": 0, "becs_unmatched_returns": 0}) {
				t.Fatalf("the rotation run again sealed %v, want nothing", again.Resealed)
			}
			second.kill(t)

			// k1 dropped: the server reads everything with k2 alone, and debits the customers.
			third, _ := startServer(t, pyngBinary, databaseURL, append(env, "PYNG_ENCRYPTION_KEY="+dbtest.KeyRingOf("k2"))...)
			p.base = third.base
			p.token = token(t, p.base, clientID, secret)
			if st := p.call("POST", "/batches", map[string]any{"batchReference": "B2", "rows": rows}, nil); st != 202 {
				t.Fatalf("submit B2: %d", st)
			}
			v := waitCompleted(t, 30*time.Second, p.call, "B2", len(rows))
			for _, r := range v.Data.Rows {
				if r.State != "succeeded" {
					t.Errorf("B2 %s is %s %s after k1 was dropped, want succeeded", r.RowReference, r.State, r.FailureReason)
				}
			}
			if st := p.call("GET", "/webhook-endpoints/"+endpoint.Data.EndpointID, nil, nil); st != 200 {
				t.Errorf("GET the webhook endpoint after k1 was dropped: %d, want 200", st)
			}
			third.kill(t)
			wantAllSealedWith(t, databaseURL, "k2")
		})
	}
}

// wantAllSealedWith reads the sealed columns as stored and fails unless every value is sealed
// with key id.
func wantAllSealedWith(t *testing.T, databaseURL, id string) {
	t.Helper()
	db := dbtest.OpenURL(t, databaseURL)
	queries := []string{
		`SELECT customer_name FROM customer_links WHERE customer_name IS NOT NULL`,
		`SELECT customer_email FROM customer_links WHERE customer_email IS NOT NULL`,
		`SELECT customer_bsb FROM customer_links WHERE customer_bsb IS NOT NULL`,
		`SELECT customer_account_number FROM customer_links WHERE customer_account_number IS NOT NULL`,
		`SELECT customer_account_name FROM customer_links WHERE customer_account_name IS NOT NULL`,
		`SELECT customer_type FROM customer_links WHERE customer_type IS NOT NULL`,
		`SELECT bsb FROM sandbox_ledger`,
		`SELECT account_number FROM sandbox_ledger`,
		`SELECT secret FROM webhook_endpoints`,
		`SELECT previous_secret FROM webhook_endpoints WHERE previous_secret IS NOT NULL`,
	}
	for _, q := range queries {
		n := 0
		err := db.Conn().Query(context.Background(), q, nil, func(row storage.Scanner) error {
			var v string
			if err := row.Scan(&v); err != nil {
				return err
			}
			n++
			if !strings.HasPrefix(v, "v1."+id+".") {
				return fmt.Errorf("stored %q, not sealed with %s", v, id)
			}
			return nil
		})
		if err != nil || n == 0 {
			t.Fatalf("%s: %d values, %v", q, n, err)
		}
	}
	secrets := 0
	err := db.Conn().Query(context.Background(), `SELECT secret FROM signing_keys`, nil, func(row storage.Scanner) error {
		var v []byte
		if err := row.Scan(&v); err != nil {
			return err
		}
		secrets++
		if !bytes.HasPrefix(v, []byte("v1."+id+".")) {
			return fmt.Errorf("a signing key's secret %q is not sealed with %s", v, id)
		}
		return nil
	})
	if err != nil || secrets == 0 {
		t.Fatalf("signing keys: %d, %v", secrets, err)
	}
}

// kidOf is the key id in a token's header.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	header, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(header, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// TestAdminSigningKeyRotate rotates the token signing key with the binary under two replicas
// that reload the keys every 200ms: tokens signed before stay valid, new ones are signed with the
// new key on both; retiring the earlier keys makes both replicas refuse their tokens, even tokens
// they verified before.
func TestAdminSigningKeyRotate(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			databaseURL := databaseURL(t, engine)
			env := []string{"PYNG_SIGNING_KEY_RELOAD=200ms"}
			a, stdout := startServer(t, pyngBinary, databaseURL, env...)
			banner := readBanner(t, stdout)
			clientID, secret := field(t, banner, `client id\s+(\S+)`), field(t, banner, `client secret\s+(\S+)`)
			b, _ := startServer(t, pyngBinary, databaseURL, env...)
			siteID := field(t, banner, `site\s+(site_\S+)`)
			atA := &partner{t: t, base: a.base, siteID: siteID}
			atB := &partner{t: t, base: b.base, siteID: siteID}
			admin := func(args ...string) (int, string, string) {
				return runBinary(t, []string{"PYNG_DATABASE_URL=" + databaseURL, "PYNG_ENCRYPTION_KEY=" + dbtest.KeyRing}, append([]string{"admin", "signing-key"}, args...)...)
			}
			// status is the answer of a replica to a token.
			status := func(p *partner, tok string) int {
				p.token = tok
				return p.call("GET", "/customers", nil, nil)
			}

			old := token(t, a.base, clientID, secret)
			if st := status(atB, old); st != 200 {
				t.Fatalf("the first key's token at replica B: %d", st)
			}
			var rotated struct {
				SigningKeyID string
				RetiredKeys  int
			}
			code, out, errOut := admin("rotate")
			decodeOne(t, code, out, errOut, &rotated)
			if rotated.SigningKeyID == "" || rotated.RetiredKeys != 0 || rotated.SigningKeyID == kidOf(t, old) {
				t.Fatalf("signing-key rotate = %+v", rotated)
			}
			// Each replica reloads the keys every 200 ms, later on a loaded machine: each is asked
			// for tokens until it signs with the new key.
			for name, p := range map[string]*partner{"A": atA, "B": atB} {
				waitFor(t, 10*time.Second, "replica "+name+" to sign with the new key", func() bool {
					return kidOf(t, token(t, p.base, clientID, secret)) == rotated.SigningKeyID
				})
			}
			for name, p := range map[string]*partner{"A": atA, "B": atB} {
				fresh := token(t, p.base, clientID, secret)
				if kid := kidOf(t, fresh); kid != rotated.SigningKeyID {
					t.Errorf("replica %s signs with %s after the rotation, want %s", name, kid, rotated.SigningKeyID)
				}
				for _, other := range []*partner{atA, atB} {
					if st := status(other, fresh); st != 200 {
						t.Errorf("replica %s's new token at %s: %d", name, other.base, st)
					}
				}
				if st := status(p, old); st != 200 {
					t.Errorf("the earlier key's token at replica %s after the rotation: %d, want 200 until it expires", name, st)
				}
			}
			var listed struct {
				SigningKeys []struct {
					ID      string
					Current bool
				}
			}
			code, out, errOut = admin("list")
			decodeOne(t, code, out, errOut, &listed)
			if len(listed.SigningKeys) != 2 || listed.SigningKeys[0].ID != rotated.SigningKeyID || !listed.SigningKeys[0].Current || listed.SigningKeys[1].Current {
				t.Fatalf("signing-key list = %+v, want the new key current and the first", listed)
			}

			middle := token(t, b.base, clientID, secret)
			code, out, errOut = admin("rotate", "--retire-others")
			decodeOne(t, code, out, errOut, &rotated)
			if rotated.RetiredKeys != 2 {
				t.Fatalf("signing-key rotate --retire-others retired %d keys, want 2", rotated.RetiredKeys)
			}
			for _, p := range []*partner{atA, atB} {
				waitFor(t, 10*time.Second, "the replica at "+p.base+" to refuse the retired keys' tokens", func() bool {
					return status(p, old) == 401 && status(p, middle) == 401
				})
			}
			for _, p := range []*partner{atA, atB} {
				for _, tok := range []string{old, middle} {
					if st := status(p, tok); st != 401 {
						t.Errorf("a retired key's token at %s: %d, want 401", p.base, st)
					}
				}
				if st := status(p, token(t, p.base, clientID, secret)); st != 200 {
					t.Errorf("a token of the remaining key at %s: %d", p.base, st)
				}
			}
			code, _, errOut = runBinary(t, []string{"PYNG_DATABASE_URL=" + databaseURL, "PYNG_ENCRYPTION_KEY=", "PYNG_ENCRYPTION_KEY_FILE="}, "admin", "signing-key", "rotate")
			if code == 0 || !strings.Contains(errOut, "no encryption key") {
				t.Errorf("signing-key rotate without a key ring: exit %d, %q; want a refusal", code, errOut)
			}
		})
	}
}

// TestRotationsRefuseAKeyRingThatCannotOpenTheSigningKeys: the servers' ring is k2, which sealed
// the signing keys; an admin shell given k3 alone is refused by both rotations before they write,
// naming the key it cannot open and the ring to use. Without the refusal, signing-key rotate
// planted a current key sealed with k3, and every replica of the ring k2 then failed to load the
// signing keys and would not start. The ring of a rotation, k3 first and k2 after it, is taken.
func TestRotationsRefuseAKeyRingThatCannotOpenTheSigningKeys(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		db := "-database-url=" + databaseURL(t, engine)
		ring := func(ids ...string) string { return "-encryption-key=" + dbtest.KeyRingOf(ids...) }
		var first struct{ SigningKeyID string }
		code, out, errOut := runPyng(t, "admin", "signing-key", "rotate", db, ring("k2"))
		decodeOne(t, code, out, errOut, &first)
		listed := func() string {
			t.Helper()
			code, out, errOut := runPyng(t, "admin", "signing-key", "list", db, ring("k2"))
			if code != 0 {
				t.Fatalf("signing-key list with the servers' ring: exit %d, %s", code, errOut)
			}
			return out
		}
		before := listed()
		for _, command := range [][]string{{"signing-key", "rotate"}, {"signing-key", "rotate", "--retire-others"}, {"keys", "rotate"}} {
			args := append(append([]string{"admin"}, command...), db, ring("k3"))
			code, out, errOut := runPyng(t, args...)
			if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 {
				t.Errorf("%v with a ring that cannot open the signing keys = %d, %q, %q; want exit 1 and one line", command, code, out, errOut)
			}
			for _, want := range []string{"refused, nothing was written", "signing key " + first.SigningKeyID, `sealed with key "k2"`, "PYNG_ENCRYPTION_KEY"} {
				if !strings.Contains(errOut, want) {
					t.Errorf("%v: %q does not say %q", command, errOut, want)
				}
			}
		}
		if after := listed(); after != before {
			t.Errorf("the refused rotations changed the signing keys:\nbefore %safter  %s", before, after)
		}
		code, out, errOut = runPyng(t, "admin", "signing-key", "rotate", db, ring("k3", "k2"))
		decodeOne(t, code, out, errOut, new(struct{ SigningKeyID string }))
		code, out, errOut = runPyng(t, "admin", "keys", "rotate", db, ring("k3", "k2"))
		decodeOne(t, code, out, errOut, new(rotation))
	})
}
