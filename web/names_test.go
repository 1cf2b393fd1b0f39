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
// typed, and whoever holds a signup link (the partner too) may type it. Names with apostrophes,
// ampersands, initials, accents and hyphens sign up as they are.
func TestSignupRefusesANameWithAWebOrEmailAddress(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		const refused = `<span class="error" id="name-error">Enter your name without a web or email address (put a space after a full stop between two words).</span>`
		for _, tt := range []struct {
			name    string
			refused bool
		}{
			{name: "O'Brien"},
			{name: "Smith & Sons Pty Ltd"},
			{name: "J.R.R. Tolkien"},
			{name: "Nguyễn Văn A"},
			{name: "St. John"},
			{name: "A.B.C. Holdings"},
			{name: "Mary-Jane Watson"},
			{name: "Visit http://evil.example/claim", refused: true},
			{name: "www.evil.example", refused: true},
			{name: "me@evil.example", refused: true},
			{name: "evil.example/claim", refused: true},
			{name: "go to bit.ly now", refused: true},
			// The dots of East Asian scripts, which browsers take for a domain's (IDNA's label
			// separators): U+3002, and U+FF61, which compatibility maps to it.
			{name: "go to evil\u3002example now", refused: true},
			{name: "go to evil\uff61example now", refused: true},
			// A character that shows nothing beside a dot hides no address.
			{name: "go to evil\u200b.example now", refused: true},
			{name: "go to evil.\u2060example now", refused: true},
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
				if !tt.refused {
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
				p.contains(t, refused, `class="summary" role="alert"`, `aria-invalid="true"`, `value="`+template.HTMLEscapeString(tt.name)+`"`)
				f.unchanged(t, before)
				if jobs := f.emailJobs(t, l.ID); len(jobs) != 0 {
					t.Errorf("email jobs %+v of a refused signup, want none", jobs)
				}
			})
		}
	})
}
