package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"hash"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pyng/receivables/billing"
)

// signer makes the tokens jwt.Token.SignedString makes with HS256 and the key's kid, byte for
// byte, at less cost: every invitation signs a token. The header segment is the same for every
// token, so it is encoded once, and the HMAC states are reused rather than keyed anew.
type signer struct {
	header []byte // the encoded header and the dot after it
	macs   sync.Pool
}

func newSigner(key billing.SigningKey) *signer {
	t := jwt.New(jwt.SigningMethodHS256)
	t.Header["kid"] = key.ID
	h, err := json.Marshal(t.Header)
	if err != nil {
		panic(err) // a map of strings always encodes
	}
	secret := slices.Clone(key.Secret)
	s := &signer{header: append(base64.RawURLEncoding.AppendEncode(nil, h), '.')}
	s.macs.New = func() any { return hmac.New(sha256.New, secret) }
	return s
}

// sign returns the token of the claims, given in JSON.
func (s *signer) sign(claims []byte) string {
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(s.header)+enc.EncodedLen(len(claims))+1+enc.EncodedLen(sha256.Size))
	buf = append(buf, s.header...)
	buf = enc.AppendEncode(buf, claims)
	mac := s.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(buf)
	var sum [sha256.Size]byte
	sig := mac.Sum(sum[:0])
	s.macs.Put(mac)
	buf = append(buf, '.')
	return string(enc.AppendEncode(buf, sig))
}

// linkClaimsJSON is linkClaims as encoding/json encodes jwt.RegisteredClaims (its fields in
// order, the audience as an array, whole seconds), built by hand. ok is false when the subject
// is empty (omitted) or has a character JSON might escape; the caller then encodes the claims
// the general way.
func linkClaimsJSON(dst []byte, subject, audience string, issued, expires time.Time) (_ []byte, ok bool) {
	if subject == "" {
		return dst, false
	}
	for _, c := range []byte(subject) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return dst, false
		}
	}
	dst = append(dst, `{"iss":"`+issuer+`","sub":"`...)
	dst = append(dst, subject...)
	dst = append(dst, `","aud":["`...)
	dst = append(dst, audience...)
	dst = append(dst, `"]`...)
	if !expires.IsZero() {
		dst = append(dst, `,"exp":`...)
		dst = strconv.AppendInt(dst, expires.Unix(), 10)
	}
	dst = append(dst, `,"iat":`...)
	dst = strconv.AppendInt(dst, issued.Unix(), 10)
	return append(dst, '}'), true
}
