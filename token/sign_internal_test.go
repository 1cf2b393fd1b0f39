package token

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pyng/receivables/billing"
)

// librarySigned is a token as jwt.Token.SignedString makes it, the reference the signer must match.
func librarySigned(t *testing.T, key billing.SigningKey, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = key.ID
	s, err := tok.SignedString(key.Secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignerMakesTheLibrarysTokensByteForByte(t *testing.T) {
	key := billing.SigningKey{ID: "key_a", Secret: []byte("0123456789abcdef0123456789abcdef")}
	at := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)
	iss := NewIssuer(key, func() time.Time { return at })
	links := []struct {
		name string
		link billing.Link
	}{
		{"a link of today", billing.Link{ID: billing.NewID("lnk"), CreatedAt: at, ExpiresAt: at.Add(168 * time.Hour)}},
		{"a link in another zone", billing.Link{ID: "lnk_2", CreatedAt: at.In(time.FixedZone("AEST", 10*3600)), ExpiresAt: at.Add(time.Minute)}},
		{"a link before 1970", billing.Link{ID: "lnk_3", CreatedAt: time.Date(1960, 1, 1, 0, 0, 0, 500, time.UTC), ExpiresAt: at}},
		{"a link of zero times", billing.Link{ID: "lnk_4"}},
		{"an id JSON escapes (the general path)", billing.Link{ID: `lnk_<"é">&`, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}},
		{"an empty id", billing.Link{CreatedAt: at, ExpiresAt: at.Add(time.Hour)}},
	}
	for _, tt := range links {
		t.Run("signup token of "+tt.name, func(t *testing.T) {
			got, err := iss.Signup(tt.link)
			if want := librarySigned(t, key, linkClaims(tt.link, audienceSignup, tt.link.ExpiresAt)); err != nil || got != want {
				t.Errorf("Signup = %s, %v\nwant     %s", got, err, want)
			}
		})
		t.Run("agreement token of "+tt.name, func(t *testing.T) {
			got, err := iss.Agreement(tt.link)
			if want := librarySigned(t, key, linkClaims(tt.link, audienceAgreement, time.Time{})); err != nil || got != want {
				t.Errorf("Agreement = %s, %v\nwant        %s", got, err, want)
			}
		})
	}
	t.Run("access token", func(t *testing.T) {
		claims := accessClaims{Organisation: "org_<1>", Scope: "customers:read batches:write",
			RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer, Subject: "cli_1", Audience: jwt.ClaimStrings{audienceAccess},
				IssuedAt: jwt.NewNumericDate(at), ExpiresAt: jwt.NewNumericDate(at.Add(time.Hour)), ID: "abc"}}
		got, err := iss.sign(claims)
		if want := librarySigned(t, key, claims); err != nil || got != want {
			t.Errorf("sign = %s, %v\nwant   %s", got, err, want)
		}
	})
}
