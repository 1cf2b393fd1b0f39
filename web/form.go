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

// The steps of the signup form, as its buttons post them: the form sent to be checked (the
// default), the details checked and confirmed, or sent back to the form to change.
const (
	stepReview  = "review"
	stepConfirm = "confirm"
	stepEdit    = "edit"
)

// signupForm is what the signup form (and the review page, in hidden fields) posts: the
// invitation's token, the step, what the customer typed, and the boxes they ticked (sent as any
// value when ticked, absent when not).
type signupForm struct {
	token        string
	step         string
	customer     billing.Customer
	declarations billing.Declarations
}

// signupFormOf reads the signup form; a field sent twice counts by its first value.
func signupFormOf(form url.Values) signupForm {
	return signupForm{
		token: form.Get("token"),
		step:  form.Get("step"),
		customer: billing.Customer{
			Name:          form.Get("name"),
			Email:         form.Get("email"),
			BSB:           form.Get("bsb"),
			AccountNumber: form.Get("accountNumber"),
			AccountName:   form.Get("accountName"),
			Type:          billing.CustomerType(form.Get("customerType")),
			BusinessName:  form.Get("businessName"),
			ABN:           form.Get("abn"),
		},
		declarations: billing.Declarations{
			Consent:    form.Get("consent") != "",
			Authorised: form.Get("authorised") != "",
			Terms:      form.Get("terms"),
		},
	}
}

// values writes the form back as the review page's hidden fields carry it (without the step).
func (f signupForm) values() url.Values {
	v := url.Values{"token": {f.token}, "name": {f.customer.Name}, "email": {f.customer.Email},
		"bsb": {f.customer.BSB}, "accountNumber": {f.customer.AccountNumber}, "accountName": {f.customer.AccountName},
		"customerType": {string(f.customer.Type)}, "businessName": {f.customer.BusinessName}, "abn": {f.customer.ABN},
		"terms": {f.declarations.Terms}}
	if f.declarations.Consent {
		v.Set("consent", "yes")
	}
	if f.declarations.Authorised {
		v.Set("authorised", "yes")
	}
	return v
}
