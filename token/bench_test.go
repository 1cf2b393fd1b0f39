package token

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pyng/receivables/billing"
)

// The token work of every /billing/ request (the access token) and of every invitation (the
// signup token), for comparing a change with benchstat:
//
//	go test -run XXX -bench . -count 10 ./token/ > old.txt   (then again after the change)
//	benchstat old.txt new.txt

func benchIssuer() (*Issuer, billing.Link) {
	now := time.Now()
	key := billing.SigningKey{ID: "key_a", Secret: []byte("0123456789abcdef0123456789abcdef")}
	l := billing.Link{ID: billing.NewID("lnk"), CreatedAt: now, ExpiresAt: now.Add(168 * time.Hour)}
	return NewIssuer(key, func() time.Time { return now }), l
}

// BenchmarkParseAccess checks a partner's access token: cached is every request but the first of
// a token's life, verified the first (decoding the claims and checking the HMAC).
func BenchmarkParseAccess(b *testing.B) {
	i, _ := benchIssuer()
	s, _, err := i.Access(billing.Caller{ClientID: "cli_1", OrganisationID: "org_1", Scopes: billing.AllScopes}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := i.ParseAccess(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verified", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := i.verifyAccess(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSignup signs the signup token of an invitation: by the signer, and by the jwt
// package as it was signed before (the reference the signer matches byte for byte).
func BenchmarkSignup(b *testing.B) {
	i, l := benchIssuer()
	b.Run("signer", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := i.Signup(l); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jwt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t := jwt.NewWithClaims(jwt.SigningMethodHS256, linkClaims(l, audienceSignup, l.ExpiresAt))
			key := i.keys.Load().current
			t.Header["kid"] = key.ID
			if _, err := t.SignedString(key.Secret); err != nil {
				b.Fatal(err)
			}
		}
	})
}
