package web

import (
	"crypto/subtle"
	"net/http"

	"github.com/pyng/receivables/billing"
)

// csrfField is the form field that must echo the CSRF cookie.
const csrfField = "csrf"

// csrfTokenBytes is the randomness of a CSRF token: 256 bits.
const csrfTokenBytes = 32

// csrf is the double-submit token: a random value in an HttpOnly, SameSite=Lax cookie, which
// every form posts back in a hidden field. Another site can neither read the cookie nor set it
// (the __Host- prefix, over https, stops even a sibling subdomain from planting one), and a post
// from it carries no Lax cookie. Lax, not Strict: a page opened from a link in an email (another
// site) would otherwise arrive without the cookie and be given a new one, leaving the form of
// every page already open in another tab refused.
type csrf struct {
	cookie string
	secure bool
}

func newCSRF(secure bool) csrf {
	return csrf{cookie: cookieName("pyng-csrf", secure), secure: secure}
}

// cookieName is the name a cookie of the pages takes: over https with the __Host- prefix, which
// browsers take only from a Secure cookie of this host with Path=/, so that no other host (a
// sibling subdomain) can plant one of that name.
func cookieName(name string, secure bool) string {
	if secure {
		return "__Host-" + name
	}
	return name
}

// token returns the visitor's CSRF token, setting a new cookie unless the request carries a
// well-formed one already (so that two open tabs keep working).
func (c csrf) token(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(c.cookie); err == nil && wellFormed(ck.Value) {
		return ck.Value
	}
	v := billing.RandomToken(csrfTokenBytes)
	http.SetCookie(w, &http.Cookie{
		Name:     c.cookie,
		Value:    v,
		Path:     "/",
		HttpOnly: true,
		Secure:   c.secure,
		SameSite: http.SameSiteLaxMode,
	})
	return v
}

// valid reports whether the posted form echoes the cookie. The form must be parsed.
func (c csrf) valid(r *http.Request) bool {
	ck, err := r.Cookie(c.cookie)
	if err != nil || !wellFormed(ck.Value) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostForm.Get(csrfField))) == 1
}

// wellFormed reports whether v looks like a token this server issues: lowercase base32 of
// csrfTokenBytes bytes.
func wellFormed(v string) bool {
	if len(v) != (csrfTokenBytes*8+4)/5 {
		return false
	}
	for _, r := range v {
		if (r < 'a' || r > 'z') && (r < '2' || r > '7') {
			return false
		}
	}
	return true
}
