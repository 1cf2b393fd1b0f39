// Package token issues and checks the signed tokens of the server: partner access tokens (OAuth 2.0
// bearer tokens), signup tokens (the token of a signupUrl) and agreement tokens (the customer's
// link to manage the agreement). All are JWTs signed with HS256 by the shared signing key, each
// kind with its own audience so that one can never stand in for another.
package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pyng/receivables/billing"
)

// The audiences of the three kinds of token.
const (
	audienceAccess    = "pyng:billing"
	audienceSignup    = "pyng:signup"
	audienceAgreement = "pyng:agreement"
	issuer            = "pyng"
)

// ErrInvalid is a token that is malformed, forged, of the wrong kind or signed by another key.
var ErrInvalid = errors.New("token is invalid")

// ErrExpired is a genuine token past its expiry.
var ErrExpired = errors.New("token has expired")

// errUnknownKey is a token whose kid names no key the Issuer holds.
var errUnknownKey = errors.New("token: unknown signing key")

// Issuer signs tokens with the current signing key and verifies them with the key their kid
// names, of the keys it holds.
type Issuer struct {
	keys   atomic.Pointer[keySet]
	reload *reloader // nil for an Issuer of one key
	nowFn  func() time.Time
	access *accessCache
	// agreementTTL is how long an agreement token lasts (0: it does not expire).
	agreementTTL atomic.Int64
}

// SetAgreementTTL makes the agreement tokens issued from now on expire ttl after they are
// issued (0: never, the default).
func (i *Issuer) SetAgreementTTL(ttl time.Duration) { i.agreementTTL.Store(int64(ttl)) }

// NewIssuer returns an Issuer of one key, signing with it and reading the time from now.
func NewIssuer(key billing.SigningKey, now func() time.Time) *Issuer {
	set, err := newKeySet([]billing.SigningKey{key})
	if err != nil {
		panic(err) // a key without a secret is a mistake of the caller's
	}
	i := &Issuer{nowFn: now, access: newAccessCache(accessCacheSize)}
	i.keys.Store(set)
	return i
}

type accessClaims struct {
	Organisation string `json:"org"`
	Scope        string `json:"scope"`
	jwt.RegisteredClaims
}

// Access issues an access token for caller valid for ttl, and returns when it expires.
func (i *Issuer) Access(caller billing.Caller, ttl time.Duration) (string, time.Time, error) {
	now := i.nowFn()
	expires := now.Add(ttl)
	claims := accessClaims{
		Organisation: caller.OrganisationID,
		Scope:        billing.FormatScopes(caller.Scopes),
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   caller.ClientID,
			Audience:  jwt.ClaimStrings{audienceAccess},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(expires),
			ID:        billing.RandomToken(12),
		},
	}
	s, err := i.sign(claims)
	return s, expires, err
}

// ParseAccess verifies an access token and returns the caller it was issued to. A token verified
// once is remembered until it expires, so a partner's later requests skip the decoding and the
// HMAC; its expiry, and that the Issuer still holds its key, are still checked on every call.
func (i *Issuer) ParseAccess(s string) (billing.Caller, error) {
	now := i.nowFn()
	if v, ok := i.access.get(s); ok && !i.holds(v.kid) {
		i.access.remove(s) // its key was retired: verify it again, which fails
	} else if ok {
		if !now.Before(v.expires) { // the parser's rule: expired from the exp second on
			i.access.remove(s)
			return billing.Caller{}, ErrExpired
		}
		return v.callerCopy(), nil
	}
	v, err := i.verifyAccess(s)
	if err != nil {
		return billing.Caller{}, err
	}
	i.access.put(s, v, now)
	return v.callerCopy(), nil
}

// verifyAccess is ParseAccess without the cache.
func (i *Issuer) verifyAccess(s string) (verifiedAccess, error) {
	var claims accessClaims
	kid, err := i.parse(s, audienceAccess, &claims, jwt.WithExpirationRequired())
	if err != nil {
		return verifiedAccess{}, err
	}
	scopes, unknown := billing.ParseScopes(claims.Scope)
	if claims.Subject == "" || claims.Organisation == "" || len(unknown) > 0 {
		return verifiedAccess{}, ErrInvalid
	}
	return verifiedAccess{
		caller:  billing.Caller{ClientID: claims.Subject, OrganisationID: claims.Organisation, Scopes: scopes},
		expires: claims.ExpiresAt.Time,
		kid:     kid,
	}, nil
}

// Signup returns the signup token of an invitation. It is derived from the link alone (issued at
// its creation, expiring with it), so the same link always gives the same signupUrl and the
// partner can resend it. It is single-use because signing up moves the link out of invited.
func (i *Issuer) Signup(l billing.Link) (string, error) {
	return i.signLink(l, audienceSignup, l.ExpiresAt)
}

// ParseSignup returns the link id of a signup token. A genuine but expired token gives the link
// id together with ErrExpired, so the page can say the link expired rather than that it is forged.
func (i *Issuer) ParseSignup(s string) (string, error) {
	c, err := i.parseLink(s, audienceSignup, jwt.WithExpirationRequired())
	return c.Subject, err
}

// Agreement returns the token of the customer's page to manage a linked agreement (the
// management link). With an agreement TTL (SetAgreementTTL) it is issued now and expires after
// it, and a new one comes by email; without, it is derived from the link alone and never expires.
func (i *Issuer) Agreement(l billing.Link) (string, error) {
	ttl := time.Duration(i.agreementTTL.Load())
	if ttl <= 0 {
		return i.signLink(l, audienceAgreement, time.Time{})
	}
	now := i.nowFn().Truncate(time.Second)
	issued := l
	issued.CreatedAt = now
	return i.signLink(issued, audienceAgreement, now.Add(ttl))
}

// ParseAgreement returns the link id of an agreement token. With an agreement TTL, a token
// issued without an expiry (while there was none) lasts the TTL from its time of issue, rather
// than for ever: that is its link's creation (the invitation), which it was derived from.
func (i *Issuer) ParseAgreement(s string) (string, error) {
	c, err := i.parseLink(s, audienceAgreement)
	if ttl := time.Duration(i.agreementTTL.Load()); err == nil && ttl > 0 && c.ExpiresAt == nil &&
		(c.IssuedAt == nil || !i.nowFn().Before(c.IssuedAt.Add(ttl))) {
		err = ErrExpired
	}
	return c.Subject, err
}

func (i *Issuer) signLink(l billing.Link, audience string, expires time.Time) (string, error) {
	var buf [192]byte
	if claims, ok := linkClaimsJSON(buf[:0], l.ID, audience, l.CreatedAt, expires); ok {
		return i.keys.Load().signer.sign(claims), nil
	}
	return i.sign(linkClaims(l, audience, expires))
}

func linkClaims(l billing.Link, audience string, expires time.Time) jwt.RegisteredClaims {
	c := jwt.RegisteredClaims{
		Issuer:   issuer,
		Subject:  l.ID,
		Audience: jwt.ClaimStrings{audience},
		IssuedAt: jwt.NewNumericDate(l.CreatedAt),
	}
	if !expires.IsZero() {
		c.ExpiresAt = jwt.NewNumericDate(expires)
	}
	return c
}

// parseLink returns the claims of a link's token, whose Subject is the link id: with ErrExpired
// too, for a genuine token past its expiry.
func (i *Issuer) parseLink(s, audience string, opts ...jwt.ParserOption) (jwt.RegisteredClaims, error) {
	var claims jwt.RegisteredClaims
	_, err := i.parse(s, audience, &claims, opts...)
	if err != nil && !errors.Is(err, ErrExpired) {
		return jwt.RegisteredClaims{}, err
	}
	if claims.Subject == "" {
		return jwt.RegisteredClaims{}, ErrInvalid
	}
	return claims, err
}

func (i *Issuer) sign(claims jwt.Claims) (string, error) {
	c, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return i.keys.Load().signer.sign(c), nil
}

// parse verifies the token s with the key its kid names and decodes its claims; it returns the
// kid.
func (i *Issuer) parse(s, audience string, claims jwt.Claims, opts ...jwt.ParserOption) (kid string, err error) {
	opts = append(opts,
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		// One spelling for each token: base64url whose unused last bits are not zero would
		// otherwise decode to the same signature, a token altered that still passes.
		jwt.WithStrictDecoding(),
		jwt.WithAudience(audience),
		jwt.WithIssuer(issuer),
		jwt.WithTimeFunc(i.nowFn),
	)
	_, err = jwt.ParseWithClaims(s, claims, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		if secret, ok := i.secret(kid); ok {
			return secret, nil
		}
		return nil, errUnknownKey
	}, opts...)
	switch {
	case err == nil:
		return kid, nil
	case errors.Is(err, jwt.ErrTokenExpired) && onlyExpired(err):
		return kid, ErrExpired
	default:
		return "", ErrInvalid
	}
}

// onlyExpired reports whether expiry is the token's only fault (the signature is good).
func onlyExpired(err error) bool {
	return !errors.Is(err, jwt.ErrTokenSignatureInvalid) && !errors.Is(err, jwt.ErrTokenMalformed) &&
		!errors.Is(err, jwt.ErrTokenInvalidAudience) && !errors.Is(err, jwt.ErrTokenInvalidIssuer) &&
		!errors.Is(err, jwt.ErrTokenUnverifiable)
}
