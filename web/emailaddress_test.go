package web_test

import (
	"html/template"
	"net/http"
	"net/url"
	"testing"
)

// An email address holding a character that shows nothing (a zero-width space, a soft hyphen, a
// byte order mark, a mark that changes the direction of text: Unicode's format characters), as
// one copied from a document or a web page may, is refused beside the field, with what was typed
// kept, nothing stored and no email queued. The review page would show it as the address the
// customer meant, but the confirmation, which carries the service agreement and the management
// link, would go nowhere; and "email me my management link", which sends only to the address
// given, would never match the address the customer types. The same address is refused by that
// form too, openly, as no customer can have given it.
func TestSignupRefusesAnEmailAddressWithHiddenCharacters(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		const refused = `<span class="error" id="email-error">Type your email address in again: it holds a hidden character (one that shows nothing, or changes the direction of text), perhaps copied with it.</span>`
		for _, address := range []string{
			"ada\u200b@example.com", // zero-width space
			"ada\u00ad@example.com", // soft hyphen
			"\ufeffada@example.com", // byte order mark
			"ada@exam\u200dple.com", // zero-width joiner
			"ada\u202e@example.com", // right-to-left override
			"ada@example.com\u2060", // word joiner
		} {
			t.Run(url.QueryEscape(address), func(t *testing.T) {
				t.Parallel()
				l, tok := f.invite(t)
				before := f.link(t, l.ID)
				form := validForm(tok)
				form.Set("step", "review")
				form.Set("email", address)
				p := f.signUp(t, tok, form)
				p.status(t, http.StatusBadRequest)
				p.contains(t, refused, `class="summary" role="alert"`, `value="`+template.HTMLEscapeString(address)+`"`)
				form.Set("step", "confirm")
				f.signUp(t, tok, form).status(t, http.StatusBadRequest)
				f.unchanged(t, before)
				if jobs := f.emailJobs(t, l.ID); len(jobs) != 0 {
					t.Errorf("email jobs %+v of a refused signup, want none", jobs)
				}

				linked, agreement := f.linked(t)
				s := sessionFrom(t, f.get(t, "/agreement?token="+url.QueryEscape(agreement)))
				p = f.post(t, "/agreement/email-link", url.Values{"token": {agreement}, "email": {address}}, s, nil)
				p.status(t, http.StatusBadRequest)
				p.contains(t, "Check the email address")
				if jobs := f.emailJobs(t, linked.ID); len(jobs) != 1 {
					t.Errorf("email jobs %+v, want the signup confirmation alone", jobs)
				}
			})
		}
	})
}
