package web_test

import (
	"html/template"
	"net/http"
	"testing"

	"github.com/pyng/receivables/billing"
)

// A name that a mail client would make a link of (a web or email address, a domain name) is
// refused on the signup form, beside the field, in the words of its other errors, with what was
// typed kept; nothing is stored and no email is queued. The emails greet the customer by the name
// typed, and whoever holds a signup link (the partner too) may type it. A full stop followed by a
// word without a space ("J.Smith", "bit.ly") is told as that: the customer is asked for the space,
// not accused of typing an address. Names with apostrophes, ampersands, initials with their
// spaces, accents and hyphens, and a single name, sign up as they are.
func TestSignupRefusesANameWithAWebOrEmailAddress(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		const address = "Enter your name without a web or email address."
		const space = "Put a space after each full stop in your name, as in J. Smith: without one, email programs may take it for a web address."
		for _, tt := range []struct {
			name    string
			refused string // the message beside the field; "" when the name is taken
		}{
			{name: "O'Brien"},
			{name: "Smith & Sons Pty Ltd"},
			{name: "J.R.R. Tolkien"},
			{name: "J. Smith"},
			{name: "Cher"},
			{name: "Nguyễn Văn A"},
			{name: "St. John"},
			{name: "A.B.C. Holdings"},
			{name: "Mary-Jane Watson"},
			{name: "J.Smith", refused: space},
			{name: "Visit http://evil.example/claim", refused: address},
			{name: "www.evil.example", refused: address},
			{name: "me@evil.example", refused: address},
			{name: "evil.example/claim", refused: address},
			{name: "go to bit.ly now", refused: space},
			// The dots of East Asian scripts, which browsers take for a domain's (IDNA's label
			// separators): U+3002, and U+FF61, which compatibility maps to it.
			{name: "go to evil\u3002example now", refused: space},
			{name: "go to evil\uff61example now", refused: space},
			// A character that shows nothing beside a dot hides no address.
			{name: "go to evil\u200b.example now", refused: space},
			{name: "go to evil.\u2060example now", refused: space},
			// Names of scripts that write a zero-width non-joiner sign up as they are.
			{name: "\u0646\u06cc\u06a9\u200c\u0646\u0627\u0645"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				l, tok := f.invite(t)
				before := f.link(t, l.ID)
				form := validForm(tok)
				form.Set("name", tt.name)
				p := f.signUp(t, tok, form)
				if tt.refused == "" {
					agreementToken(t, p)
					if got := f.link(t, l.ID); got.StoredState != billing.LinkLinked || got.Customer.Name != tt.name {
						t.Errorf("stored link %s of %q, want linked as %q", got.StoredState, got.Customer.Name, tt.name)
					}
					if jobs := f.emailJobs(t, l.ID); len(jobs) != 1 || jobs[0].Email != billing.EmailSignupConfirmation {
						t.Errorf("email jobs %+v, want the signup confirmation", jobs)
					}
					return
				}
				p.status(t, http.StatusBadRequest)
				p.contains(t, `<span class="error" id="name-error">`+template.HTMLEscapeString(tt.refused)+`</span>`, `class="summary" role="alert"`, `aria-invalid="true"`, `value="`+template.HTMLEscapeString(tt.name)+`"`)
				f.unchanged(t, before)
				if jobs := f.emailJobs(t, l.ID); len(jobs) != 0 {
					t.Errorf("email jobs %+v of a refused signup, want none", jobs)
				}
			})
		}
	})
}
