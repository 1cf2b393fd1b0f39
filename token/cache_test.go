package token_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/token"
)

var (
	testKey   = billing.SigningKey{ID: "key_a", Secret: []byte("0123456789abcdef0123456789abcdef")}
	otherKey  = billing.SigningKey{ID: "key_b", Secret: []byte("fedcba9876543210fedcba9876543210")}
	start     = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	cliCaller = billing.Caller{ClientID: "cli_1", OrganisationID: "org_1",
		Scopes: []billing.Scope{billing.ScopeCustomersRead, billing.ScopeCustomersInvite}}
)

// clock is a settable time source.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func TestCachedAccessTokenExpiresWithTheToken(t *testing.T) {
	tests := []struct {
		name    string
		after   time.Duration
		wantErr error
	}{
		{"a second before its expiry it is valid", time.Hour - time.Second, nil},
		{"at its expiry it is expired", time.Hour, token.ErrExpired},
		{"after its expiry it is expired", 2 * time.Hour, token.ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{now: start}
			issuer := token.NewIssuer(testKey, c.Now)
			access, _, err := issuer.Access(cliCaller, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := issuer.ParseAccess(access); err != nil {
				t.Fatalf("fresh token: %v", err)
			}
			if _, cached := token.CachedAccess(issuer, access); !cached {
				t.Fatal("a verified token should be cached")
			}
			c.now = start.Add(tt.after)
			_, err = issuer.ParseAccess(access)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("cached: ParseAccess error = %v, want %v", err, tt.wantErr)
			}
			// An issuer that never saw the token gives the same answer.
			_, err = token.NewIssuer(testKey, c.Now).ParseAccess(access)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("uncached: ParseAccess error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestRefusedTokensAreNeverCached(t *testing.T) {
	c := &clock{now: start}
	issuer := token.NewIssuer(testKey, c.Now)
	good, _, _ := issuer.Access(cliCaller, time.Hour)
	forged, _, _ := token.NewIssuer(otherKey, c.Now).Access(cliCaller, time.Hour)
	expired, _, _ := token.NewIssuer(testKey, func() time.Time { return start.Add(-2 * time.Hour) }).Access(cliCaller, time.Hour)
	signup, _ := issuer.Signup(billing.Link{ID: "lnk_1", CreatedAt: start, ExpiresAt: start.Add(time.Hour)})
	tests := []struct {
		name, token string
		want        error
	}{
		{"forged with another key", forged, token.ErrInvalid},
		{"tampered", apptest.Tampered(good), token.ErrInvalid},
		{"signed with HS512", withAlg(t, jwt.SigningMethodHS512, testKey.Secret), token.ErrInvalid},
		{"unsigned (alg none)", withAlg(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType), token.ErrInvalid},
		{"a signup token", signup, token.ErrInvalid},
		{"expired", expired, token.ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 { // refused again, not remembered
				if _, err := issuer.ParseAccess(tt.token); !errors.Is(err, tt.want) {
					t.Fatalf("ParseAccess error = %v, want %v", err, tt.want)
				}
			}
			if n, cached := token.CachedAccess(issuer, tt.token); cached || n != 0 {
				t.Errorf("cache holds %d tokens, this one: %v; want none", n, cached)
			}
		})
	}
}

// withAlg is an access token with genuine claims, signed by method with key.
func withAlg(t *testing.T, method jwt.SigningMethod, key any) string {
	t.Helper()
	claims := jwt.MapClaims{"iss": "pyng", "sub": "cli_1", "org": "org_1", "scope": "customers:read",
		"aud": []string{"pyng:billing"}, "iat": start.Unix(), "exp": start.Add(time.Hour).Unix()}
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = testKey.ID
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAccessCacheIsBounded(t *testing.T) {
	// fill has issuer verify n tokens of distinct clients, checking the bound after each.
	fill := func(t *testing.T, issuer *token.Issuer, n int) []string {
		t.Helper()
		tokens := make([]string, n)
		for i := range tokens {
			caller := cliCaller
			caller.ClientID = fmt.Sprintf("cli_%d", i)
			tokens[i], _, _ = issuer.Access(caller, time.Hour)
			if _, err := issuer.ParseAccess(tokens[i]); err != nil {
				t.Fatal(err)
			}
			if n, _ := token.CachedAccess(issuer, tokens[i]); n > token.AccessCacheSize {
				t.Fatalf("after %d tokens the cache holds %d, more than %d", i+1, n, token.AccessCacheSize)
			}
		}
		return tokens
	}
	t.Run("a token dropped from the cache is verified again", func(t *testing.T) {
		issuer := token.NewIssuer(testKey, func() time.Time { return start })
		tokens := fill(t, issuer, token.AccessCacheSize+100)
		for i, s := range tokens {
			got, err := issuer.ParseAccess(s)
			if want := fmt.Sprintf("cli_%d", i); err != nil || got.ClientID != want {
				t.Fatalf("ParseAccess = %+v, %v; want %s", got.ClientID, err, want)
			}
		}
	})
	t.Run("expired tokens make room first", func(t *testing.T) {
		c := &clock{now: start}
		issuer := token.NewIssuer(testKey, c.Now)
		fill(t, issuer, token.AccessCacheSize)
		c.now = start.Add(time.Hour)
		fresh, _, _ := issuer.Access(cliCaller, time.Hour)
		if _, err := issuer.ParseAccess(fresh); err != nil {
			t.Fatal(err)
		}
		if n, cached := token.CachedAccess(issuer, fresh); n != 1 || !cached {
			t.Errorf("cache holds %d tokens (the new one: %v); want the new one alone", n, cached)
		}
	})
}

func TestCachedCallersDoNotShareScopes(t *testing.T) {
	issuer := token.NewIssuer(testKey, func() time.Time { return start })
	access, _, _ := issuer.Access(cliCaller, time.Hour)
	first, _ := issuer.ParseAccess(access)
	first.Scopes[0] = billing.ScopeBatchesWrite
	second, err := issuer.ParseAccess(access)
	if err != nil || second.Scopes[0] != billing.ScopeCustomersRead {
		t.Errorf("second ParseAccess = %+v, %v; a caller's change leaked into the cache", second, err)
	}
}
