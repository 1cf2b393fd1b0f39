package token_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/token"
)

// keyStore is a KeySource whose keys a test changes, counting its reads.
type keyStore struct {
	mu    sync.Mutex
	keys  []billing.SigningKey
	reads int
	err   error
}

func (s *keyStore) set(keys ...billing.SigningKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func (s *keyStore) source(context.Context) ([]billing.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	return s.keys, s.err
}

func (s *keyStore) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func newIssuer(t *testing.T, store *keyStore, c *clock) *token.Issuer {
	t.Helper()
	i, err := token.NewIssuerFrom(context.Background(), store.source, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// kid is the key id in a token's header.
func kid(t *testing.T, s string) string {
	t.Helper()
	header, err := base64.RawURLEncoding.DecodeString(strings.Split(s, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(header, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// tokens are one token of each kind, issued by one issuer.
type tokens struct{ access, signup, agreement string }

func issue(t *testing.T, i *token.Issuer) tokens {
	t.Helper()
	access, _, err := i.Access(cliCaller, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	l := billing.Link{ID: billing.NewID("lnk"), CreatedAt: start, ExpiresAt: start.Add(time.Hour)}
	signup, _ := i.Signup(l)
	agreement, _ := i.Agreement(l)
	return tokens{access, signup, agreement}
}

// verify checks each of the tokens with i and returns the errors.
func verify(i *token.Issuer, ts tokens) []error {
	_, errAccess := i.ParseAccess(ts.access)
	_, errSignup := i.ParseSignup(ts.signup)
	_, errAgreement := i.ParseAgreement(ts.agreement)
	return []error{errAccess, errSignup, errAgreement}
}

func wantVerified(t *testing.T, what string, errs []error, want error) {
	t.Helper()
	for n, err := range errs {
		if !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Fatalf("%s: the %s token: %v, want %v", what, []string{"access", "signup", "agreement"}[n], err, want)
		}
	}
}

func TestRotatedKeys(t *testing.T) {
	cases := []struct {
		rule string
		run  func(t *testing.T, store *keyStore, c *clock)
	}{
		{"after a rotation the current key signs and the earlier keys still verify", func(t *testing.T, store *keyStore, c *clock) {
			store.set(testKey)
			i := newIssuer(t, store, c)
			old := issue(t, i)
			wantVerified(t, "before the rotation", verify(i, old), nil)
			store.set(otherKey, testKey)
			if err := i.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
			fresh := issue(t, i)
			if got := kid(t, fresh.access); got != otherKey.ID || i.KeyID() != otherKey.ID {
				t.Fatalf("a token after the rotation has kid %s (KeyID %s), want %s", got, i.KeyID(), otherKey.ID)
			}
			wantVerified(t, "the earlier key's tokens", verify(i, old), nil)
			wantVerified(t, "the current key's tokens", verify(i, fresh), nil)
		}},
		{"tokens of a retired key are refused, even those verified before", func(t *testing.T, store *keyStore, c *clock) {
			store.set(otherKey, testKey)
			i := newIssuer(t, store, c)
			old := token.NewIssuer(testKey, c.Now)
			ts := issue(t, old)
			wantVerified(t, "before the retirement", verify(i, ts), nil)
			store.set(otherKey)
			if err := i.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
			c.now = c.now.Add(10 * time.Second) // past the gap: the refusal reads the keys again and still refuses
			wantVerified(t, "after the retirement", verify(i, ts), token.ErrInvalid)
			if n, cached := token.CachedAccess(i, ts.access); cached {
				t.Fatalf("the refused token is still cached (%d cached)", n)
			}
		}},
		{"a token of a key added since the last reload is verified after reading the keys again", func(t *testing.T, store *keyStore, c *clock) {
			store.set(testKey)
			replica := newIssuer(t, store, c)
			store.set(otherKey, testKey)
			other := newIssuer(t, store, c) // another replica, started after the rotation
			c.now = c.now.Add(10 * time.Second)
			wantVerified(t, "the other replica's tokens", verify(replica, issue(t, other)), nil)
			if replica.KeyID() != otherKey.ID {
				t.Fatalf("after reading the keys again the replica signs with %s, want %s", replica.KeyID(), otherKey.ID)
			}
		}},
		{"tokens of unknown keys read the keys at most once in a while", func(t *testing.T, store *keyStore, c *clock) {
			store.set(testKey)
			i := newIssuer(t, store, c)
			forged := issue(t, token.NewIssuer(billing.SigningKey{ID: "key_forged", Secret: []byte("forged")}, c.Now))
			c.now = c.now.Add(10 * time.Second)
			before := store.readCount()
			for range 20 {
				wantVerified(t, "forged tokens", verify(i, forged), token.ErrInvalid)
			}
			if reads := store.readCount() - before; reads != 1 {
				t.Fatalf("60 forged tokens read the keys %d times, want once", reads)
			}
		}},
		{"a failed reload keeps the keys", func(t *testing.T, store *keyStore, c *clock) {
			store.set(testKey)
			i := newIssuer(t, store, c)
			ts := issue(t, i)
			store.err = errors.New("database down")
			if err := i.Reload(context.Background()); err == nil {
				t.Fatal("Reload of a failing source succeeded")
			}
			wantVerified(t, "after a failed reload", verify(i, ts), nil)
		}},
		{"ReloadEvery picks up the rotation", func(t *testing.T, store *keyStore, c *clock) {
			store.set(testKey)
			i := newIssuer(t, store, c)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				i.ReloadEvery(ctx, 10*time.Millisecond, func(err error) { t.Error(err) })
			}()
			defer func() { cancel(); <-done }()
			store.set(otherKey, testKey)
			deadline := time.Now().Add(5 * time.Second)
			for i.KeyID() != otherKey.ID {
				if time.Now().After(deadline) {
					t.Fatal("ReloadEvery did not pick up the new key within 5s")
				}
				time.Sleep(5 * time.Millisecond)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			tc.run(t, &keyStore{}, &clock{now: start})
		})
	}
}
