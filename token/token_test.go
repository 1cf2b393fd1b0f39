package token_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/token"
)

func TestTokens(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	clock := clocktest.At(now).Now
	key := billing.SigningKey{ID: "key_a", Secret: []byte("0123456789abcdef0123456789abcdef")}
	other := token.NewIssuer(billing.SigningKey{ID: "key_b", Secret: []byte("fedcba9876543210fedcba9876543210")}, clock)
	issuer := token.NewIssuer(key, clock)
	caller := billing.Caller{ClientID: "cli_1", OrganisationID: "org_1", Scopes: []billing.Scope{billing.ScopeCustomersRead}}
	link := billing.Link{ID: "lnk_1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}

	access, expires, err := issuer.Access(caller, time.Hour)
	if err != nil || !expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("Access = %v, %v", expires, err)
	}
	signup, _ := issuer.Signup(link)
	again, _ := issuer.Signup(link)
	if signup != again {
		t.Error("signup token of one link should be stable so the partner can resend the signupUrl")
	}
	agreement, _ := issuer.Agreement(link)
	forged, _, _ := other.Access(caller, time.Hour)

	t.Run("access token round trip", func(t *testing.T) {
		got, err := issuer.ParseAccess(access)
		if err != nil || got.ClientID != "cli_1" || got.OrganisationID != "org_1" || len(got.Scopes) != 1 {
			t.Fatalf("ParseAccess = %+v, %v", got, err)
		}
	})
	t.Run("signup and agreement tokens name the link", func(t *testing.T) {
		if id, err := issuer.ParseSignup(signup); id != "lnk_1" || err != nil {
			t.Errorf("ParseSignup = %q, %v", id, err)
		}
		if id, err := issuer.ParseAgreement(agreement); id != "lnk_1" || err != nil {
			t.Errorf("ParseAgreement = %q, %v", id, err)
		}
	})
	invalid := []struct{ name, token string }{
		{"forged with another key", forged},
		{"garbage", "not-a-token"},
		{"empty", ""},
		{"tampered", apptest.Tampered(access)},
		{"its signature's unused last bits set", paddingBitSet(t, access)},
		{"signup token used as access token", signup},
		{"agreement token used as access token", agreement},
	}
	for _, tc := range invalid {
		t.Run(tc.name+" is invalid", func(t *testing.T) {
			if _, err := issuer.ParseAccess(tc.token); !errors.Is(err, token.ErrInvalid) {
				t.Errorf("ParseAccess error = %v, want ErrInvalid", err)
			}
		})
	}
	t.Run("access token used as signup token is invalid", func(t *testing.T) {
		if _, err := issuer.ParseSignup(access); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("expired tokens", func(t *testing.T) {
		later := token.NewIssuer(key, clocktest.At(now.Add(2*time.Hour)).Now)
		if _, err := later.ParseAccess(access); !errors.Is(err, token.ErrExpired) {
			t.Errorf("ParseAccess error = %v, want ErrExpired", err)
		}
		id, err := later.ParseSignup(signup)
		if id != "lnk_1" || !errors.Is(err, token.ErrExpired) {
			t.Errorf("ParseSignup = %q, %v; want the link id and ErrExpired", id, err)
		}
		if id, err := later.ParseAgreement(agreement); id != "lnk_1" || err != nil {
			t.Errorf("agreement tokens do not expire: %q, %v", id, err)
		}
	})
}

func TestAgreementTokensExpireAfterTheirTTL(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	clock := now
	issuer := token.NewIssuer(billing.SigningKey{ID: "key_1", Secret: []byte("0123456789abcdef0123456789abcdef")}, func() time.Time { return clock })
	issuer.SetAgreementTTL(30 * 24 * time.Hour)
	tok, err := issuer.Agreement(billing.Link{ID: "lnk_1", CreatedAt: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	clock = now.Add(30*24*time.Hour - time.Second)
	if id, err := issuer.ParseAgreement(tok); err != nil || id != "lnk_1" {
		t.Errorf("a second before its expiry: %q, %v", id, err)
	}
	clock = now.Add(30 * 24 * time.Hour)
	if id, err := issuer.ParseAgreement(tok); !errors.Is(err, token.ErrExpired) || id != "lnk_1" {
		t.Errorf("at its expiry: %q, %v; want lnk_1 with ErrExpired", id, err)
	}
}

// A management link issued while they did not expire (no TTL, as before there was one) lasts the
// TTL from its issue once there is one, so that an old link sent by email does not open the
// customer's details for ever.
func TestAgreementTokensIssuedWithoutExpiryExpireOnceThereIsATTL(t *testing.T) {
	linked := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	clock := linked
	issuer := token.NewIssuer(billing.SigningKey{ID: "key_1", Secret: []byte("0123456789abcdef0123456789abcdef")}, func() time.Time { return clock })
	old, err := issuer.Agreement(billing.Link{ID: "lnk_1", CreatedAt: linked})
	if err != nil {
		t.Fatal(err)
	}
	const ttl = 30 * 24 * time.Hour
	tests := []struct {
		name    string
		ttl     time.Duration
		at      time.Time
		expired bool
	}{
		{"no TTL, years later", 0, linked.Add(3 * 365 * 24 * time.Hour), false},
		{"a TTL, a second before it ends", ttl, linked.Add(ttl - time.Second), false},
		{"a TTL, as it ends", ttl, linked.Add(ttl), true},
		{"a TTL, years later", ttl, linked.Add(3 * 365 * 24 * time.Hour), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issuer.SetAgreementTTL(tt.ttl)
			clock = tt.at
			id, err := issuer.ParseAgreement(old)
			if id != "lnk_1" || errors.Is(err, token.ErrExpired) != tt.expired || (!tt.expired && err != nil) {
				t.Errorf("ParseAgreement = %q, %v; want lnk_1, expired %v", id, err, tt.expired)
			}
		})
	}
}

// paddingBitSet is tok with the lowest bit of its last character set: a 32-byte HS256
// signature is 43 base64url characters, whose last two bits are unused, so the token decodes to
// the same signature unless decoding is strict.
func paddingBitSet(t *testing.T, tok string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	if last < 0 || last&3 != 0 {
		t.Fatalf("the token's last character %q has its unused bits set already", tok[len(tok)-1])
	}
	return tok[:len(tok)-1] + string(alphabet[last|1])
}

// An access token signed with the issuer's own key is still refused when it is not one the issuer
// makes: each claim and header it checks, changed alone, makes the token invalid, and the token
// with none changed is valid (so that each refusal is that claim's).
func TestAccessTokensNotAsIssuedAreInvalid(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	key := billing.SigningKey{ID: "key_a", Secret: []byte("0123456789abcdef0123456789abcdef")}
	issuer := token.NewIssuer(key, clocktest.At(now).Now)
	claims := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "pyng", "sub": "cli_1", "org": "org_1", "aud": []string{"pyng:billing"},
			"scope": string(billing.ScopeCustomersRead), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	}
	signed := func(method jwt.SigningMethod, kid any, change func(jwt.MapClaims)) string {
		c := claims()
		if change != nil {
			change(c)
		}
		tok := jwt.NewWithClaims(method, c)
		if kid != nil {
			tok.Header["kid"] = kid
		}
		var secret any = key.Secret
		if method == jwt.SigningMethodNone {
			secret = jwt.UnsafeAllowNoneSignatureType
		}
		s, err := tok.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if _, err := issuer.ParseAccess(signed(jwt.SigningMethodHS256, "key_a", nil)); err != nil {
		t.Fatalf("the token as issued: %v, want it valid", err)
	}
	set := func(name string, v any) func(jwt.MapClaims) { return func(c jwt.MapClaims) { c[name] = v } }
	unset := func(name string) func(jwt.MapClaims) { return func(c jwt.MapClaims) { delete(c, name) } }
	for _, tc := range []struct {
		name   string
		method jwt.SigningMethod
		kid    any
		change func(jwt.MapClaims)
	}{
		{"another issuer", jwt.SigningMethodHS256, "key_a", set("iss", "someone-else")},
		{"no issuer", jwt.SigningMethodHS256, "key_a", unset("iss")},
		{"another audience", jwt.SigningMethodHS256, "key_a", set("aud", []string{"pyng:signup"})},
		{"no audience", jwt.SigningMethodHS256, "key_a", unset("aud")},
		{"no expiry", jwt.SigningMethodHS256, "key_a", unset("exp")},
		{"not valid yet", jwt.SigningMethodHS256, "key_a", set("nbf", now.Add(time.Minute).Unix())},
		{"no subject", jwt.SigningMethodHS256, "key_a", unset("sub")},
		{"no organisation", jwt.SigningMethodHS256, "key_a", unset("org")},
		{"an unknown scope", jwt.SigningMethodHS256, "key_a", set("scope", "billing:customers:read billing:everything")},
		{"HS384 with the key", jwt.SigningMethodHS384, "key_a", nil},
		{"HS512 with the key", jwt.SigningMethodHS512, "key_a", nil},
		{"alg none", jwt.SigningMethodNone, "key_a", nil},
		{"no kid", jwt.SigningMethodHS256, nil, nil},
		{"an unknown kid", jwt.SigningMethodHS256, "key_b", nil},
		{"a kid that is not a string", jwt.SigningMethodHS256, 7, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := issuer.ParseAccess(signed(tc.method, tc.kid, tc.change)); !errors.Is(err, token.ErrInvalid) {
				t.Errorf("ParseAccess = %+v, %v; want ErrInvalid", got, err)
			}
		})
	}
}
