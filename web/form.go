package web

import (
	"net/http"
	"net/url"

	"github.com/pyng/receivables/billing"
)

// readForm reads the body of a form post, of at most maxFormBytes, into r.PostForm (and the query
// into r.Form). It reports false for a body that is too long or not a form.
func readForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	return r.ParseForm() == nil
}

// signupForm is what the signup form posts: the invitation's token, what the customer typed, and
// whether they ticked the consent box (sent as any value when ticked, absent when not).
type signupForm struct {
	token    string
	customer billing.Customer
	consent  bool
}

// signupFormOf reads the signup form; a field sent twice counts by its first value.
func signupFormOf(form url.Values) signupForm {
	return signupForm{
		token: form.Get("token"),
		customer: billing.Customer{
			Name:          form.Get("name"),
			Email:         form.Get("email"),
			BSB:           form.Get("bsb"),
			AccountNumber: form.Get("accountNumber"),
		},
		consent: form.Get("consent") != "",
	}
}
