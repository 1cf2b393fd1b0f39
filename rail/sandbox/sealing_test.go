package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail/sandbox"
	"github.com/pyng/receivables/seal"
	"github.com/pyng/receivables/storage"
)

// reopen returns a function that opens the ledger of one fresh database of engine with a key
// ring, the same database at each call.
func reopen(t *testing.T, engine string) func(keys *seal.Keyring) (*sandbox.Ledger, storage.Conn) {
	url := dbtest.URL(t, engine)
	return func(keys *seal.Keyring) (*sandbox.Ledger, storage.Conn) {
		conn := dbtest.OpenURL(t, url, storage.WithKeyring(keys)).Conn()
		l, err := sandbox.OpenLedger(context.Background(), conn)
		if err != nil {
			t.Fatal(err)
		}
		return l, conn
	}
}

// storedAccounts returns the bsb and account number of every entry as stored, by key.
func storedAccounts(t *testing.T, conn storage.Conn) map[string][2]string {
	t.Helper()
	out := map[string][2]string{}
	err := conn.Query(context.Background(), `SELECT idempotency_key, bsb, account_number FROM sandbox_ledger`, nil, func(row storage.Scanner) error {
		var key, bsb, account string
		if err := row.Scan(&key, &bsb, &account); err != nil {
			return err
		}
		out[key] = [2]string{bsb, account}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantSealedWith(t *testing.T, conn storage.Conn, id string) {
	t.Helper()
	for key, account := range storedAccounts(t, conn) {
		for _, v := range account {
			if !strings.HasPrefix(v, "v1."+id+".") || strings.Contains(v, "062000") || strings.Contains(v, "12345678") {
				t.Fatalf("entry %s stores %q, want values sealed with %s", key, account, id)
			}
		}
	}
}

// insertPlain inserts an entry as a release before sealing wrote it.
func insertPlain(t *testing.T, conn storage.Conn, key string) {
	t.Helper()
	q := `INSERT INTO sandbox_ledger (idempotency_key, amount, bsb, account_number, failure, submitted_at, settles_at)
		VALUES ('` + key + `', 100, '062000', '12345678', NULL, 1795428000000, 1795428003000)`
	if _, err := conn.Exec(context.Background(), q); err != nil {
		t.Fatal(err)
	}
}

func TestLedgerSealsAccounts(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		rule string
		run  func(t *testing.T, engine string)
	}{
		{"accounts are stored sealed with the current key and read in clear", func(t *testing.T, engine string) {
			l, conn := reopen(t, engine)(dbtest.KeyringOf(t, "k2", "k1"))
			es := []sandbox.Entry{entry("k1", 100), entry("k2", 151)}
			record(t, l, 2, es...)
			wantSealedWith(t, conn, "k2")
			wantEntries(t, entries(t, l, "k1", "k2"), es)
		}},
		{"entries written in plaintext before sealing are read", func(t *testing.T, engine string) {
			l, conn := reopen(t, engine)(dbtest.KeyringOf(t, "k1"))
			insertPlain(t, conn, "k1")
			wantEntries(t, entries(t, l, "k1"), []sandbox.Entry{entry("k1", 100)})
		}},
		{"without a key ring nothing is recorded", func(t *testing.T, engine string) {
			l, conn := reopen(t, engine)(nil)
			if _, err := l.Record(ctx, []sandbox.Entry{entry("k1", 100)}); !errors.Is(err, seal.ErrNoKey) {
				t.Fatalf("Record without a key ring: %v, want ErrNoKey", err)
			}
			if n := len(storedAccounts(t, conn)); n != 0 {
				t.Fatalf("the ledger holds %d entries, want none", n)
			}
		}},
		{"rotation seals plaintext and earlier keys' accounts with the current key, once", func(t *testing.T, engine string) {
			open := reopen(t, engine)
			l, conn := open(dbtest.KeyringOf(t, "k1"))
			var es []sandbox.Entry
			for i := range 5 {
				es = append(es, entry(fmt.Sprintf("e%d", i), 100))
			}
			record(t, l, 5, es...)
			insertPlain(t, conn, "p1")
			insertPlain(t, conn, "p2")
			es = append(es, entry("p1", 100), entry("p2", 100))
			l, _ = open(dbtest.KeyringOf(t, "k2", "k1"))
			record(t, l, 1, entry("new", 100))
			es = append(es, entry("new", 100))
			for run, want := range []int{7, 0} {
				n, err := l.Reseal(ctx, 2)
				if err != nil || n != want {
					t.Fatalf("Reseal run %d = %d, %v; want %d", run+1, n, err, want)
				}
			}
			wantSealedWith(t, conn, "k2")
			l, _ = open(dbtest.KeyringOf(t, "k2"))
			keys := make([]string, len(es))
			for i, e := range es {
				keys[i] = e.Key
			}
			got := entries(t, l, keys...)
			if len(got) != len(es) {
				t.Fatalf("Entries with k2 alone = %d entries, want %d", len(got), len(es))
			}
		}},
		{"erasure blanks the accounts of entries submitted by the cutoff, once, and keeps their outcomes", func(t *testing.T, engine string) {
			l, conn := reopen(t, engine)(dbtest.KeyringOf(t, "k1"))
			old, recent := entry("old", 151), entry("recent", 100)
			recent.SubmittedAt, recent.SettlesAt = t0.Add(time.Hour+time.Millisecond), t0.Add(2*time.Hour)
			record(t, l, 2, old, recent)
			for run, want := range []int{1, 0} {
				n, err := l.EraseAccounts(ctx, t0.Add(time.Hour))
				if err != nil || n != want {
					t.Fatalf("EraseAccounts run %d = %d, %v; want %d", run+1, n, err, want)
				}
			}
			erased := old
			erased.BSB, erased.AccountNumber = "", ""
			wantEntries(t, entries(t, l, "old", "recent"), []sandbox.Entry{erased, recent})
			if got := storedAccounts(t, conn)["old"]; got != [2]string{"", ""} {
				t.Fatalf("the erased entry stores %q", got)
			}
		}},
		{"rotation never brings an erased account back", func(t *testing.T, engine string) {
			open := reopen(t, engine)
			l, conn := open(dbtest.KeyringOf(t, "k1"))
			record(t, l, 3, entry("e1", 100), entry("e2", 100), entry("e3", 100))
			l, _ = open(dbtest.KeyringOf(t, "k2", "k1"))
			sandbox.SetBeforeResealWrite(t, func() {
				if _, err := l.EraseAccounts(ctx, t0); err != nil {
					t.Error(err)
				}
			})
			if _, err := l.Reseal(ctx, 10); err != nil {
				t.Fatal(err)
			}
			for key, account := range storedAccounts(t, conn) {
				if account != [2]string{"", ""} {
					t.Fatalf("entry %s holds %q after its erasure", key, account)
				}
			}
		}},
	}
	// Not parallel: the last case sets a hook of the package.
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.rule, func(t *testing.T) { tc.run(t, engine) })
			}
		})
	}
}
