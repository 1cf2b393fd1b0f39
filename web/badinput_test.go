package web_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/token"
)

// rawPost posts body as it is, with contentType ("" for none) and the session's CSRF cookie.
func (f *fixture) rawPost(t *testing.T, path, contentType, body string, s session) page {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if s.cookie != nil {
		req.AddCookie(s.cookie)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{Status: resp.StatusCode, Header: resp.Header, Body: string(data)}
}

// managementLinks counts the management-link emails queued for the link.
func (f *fixture) managementLinks(t *testing.T, linkID string) int {
	t.Helper()
	n := 0
	for _, j := range f.emailJobs(t, linkID) {
		if j.Email == billing.EmailManagementLink {
			n++
		}
	}
	return n
}

// auditForm is one of the customer's forms, filled so that it would change something: a signup
// confirmed, a revocation confirmed, a management link asked for with the customer's address.
// filled is the form's fields with its session's CSRF token, as the page would post them.
func (a auditForm) filled() url.Values {
	filled := cloneForm(a.form)
	filled.Set("csrf", a.session.token)
	return filled
}

// changedNothing fails t when the form's link changed, or a management link was queued beyond
// the emails there were before.
func (f *fixture) changedNothing(t *testing.T, form auditForm, emails int) {
	t.Helper()
	f.unchanged(t, form.link)
	if got := f.managementLinks(t, form.link.ID); got != emails {
		t.Errorf("management links queued: %d, were %d", got, emails)
	}
}

// wantState fails t when the link is not in state.
func (f *fixture) wantState(t *testing.T, linkID string, state billing.LinkState) {
	t.Helper()
	if got := f.link(t, linkID).StoredState; got != state {
		t.Errorf("link %s is %s, want %s", linkID, got, state)
	}
}

type auditForm struct {
	name, path string
	form       url.Values
	session    session
	link       billing.Link
}

func (f *fixture) auditForms(t *testing.T) []auditForm {
	t.Helper()
	invited, tok := f.invite(t)
	linked, agreement := f.linked(t)
	forRevoke := sessionFrom(t, f.get(t, "/agreement/revoke?token="+url.QueryEscape(agreement)))
	return []auditForm{
		{"signup", "/signup", validForm(tok), f.openForm(t, tok), f.link(t, invited.ID)},
		{"revocation", "/agreement/revoke", url.Values{"token": {agreement}, "confirm": {"yes"}}, forRevoke, linked},
		{"management link", "/agreement/email-link", url.Values{"token": {agreement}, "email": {"ada@example.com"}}, forRevoke, linked},
	}
}

// A form post that cannot be read (too long, or not a well-formed form) is refused with a page
// that says so, and changes nothing: no signup, no revocation, no email.
func TestUnreadableFormsAreRefusedAndChangeNothing(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		for _, form := range f.auditForms(t) {
			emails := f.managementLinks(t, form.link.ID)
			filled := form.filled()
			encoded := filled.Encode()
			for _, bad := range []struct{ name, body string }{
				{"a form over 16 KiB", encoded + "&pad=" + strings.Repeat("a", 16<<10)},
				{"a bad escape", encoded + "&note=%zz"},
				{"a semicolon separator", encoded + ";note=x"},
			} {
				t.Run(form.name+" with "+bad.name, func(t *testing.T) {
					p := f.rawPost(t, form.path, "application/x-www-form-urlencoded", bad.body, form.session)
					p.status(t, http.StatusBadRequest)
					p.contains(t, `role="alert"`, "We couldn&#39;t read this form", "Nothing was changed")
					if got := p.Header.Get("Cache-Control"); got != "no-store" {
						t.Errorf("Cache-Control = %q, want no-store", got)
					}
					f.changedNothing(t, form, emails)
				})
			}
		}
	})
}

// The forms are posted as application/x-www-form-urlencoded: the same fields in another media
// type (JSON, multipart, text, none) are refused, and change nothing.
func TestFormsOfAnotherMediaTypeChangeNothing(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		for _, form := range f.auditForms(t) {
			emails := f.managementLinks(t, form.link.ID)
			filled := form.filled()
			var asJSON, multipart strings.Builder
			asJSON.WriteString("{")
			for k := range filled {
				if asJSON.Len() > 1 {
					asJSON.WriteString(",")
				}
				asJSON.WriteString(`"` + k + `":"` + filled.Get(k) + `"`)
				multipart.WriteString("--x\r\nContent-Disposition: form-data; name=\"" + k + "\"\r\n\r\n" + filled.Get(k) + "\r\n")
			}
			asJSON.WriteString("}")
			multipart.WriteString("--x--\r\n")
			for _, bad := range []struct{ name, contentType, body string }{
				{"JSON", "application/json", asJSON.String()},
				{"multipart/form-data", "multipart/form-data; boundary=x", multipart.String()},
				{"text/plain", "text/plain", filled.Encode()},
				{"no Content-Type", "", filled.Encode()},
				{"a Content-Type that does not parse", "application/x-www-form-urlencoded; charset", filled.Encode()},
			} {
				t.Run(form.name+" as "+bad.name, func(t *testing.T) {
					p := f.rawPost(t, form.path, bad.contentType, bad.body, form.session)
					if p.Status != http.StatusBadRequest && p.Status != http.StatusForbidden && p.Status != http.StatusUnsupportedMediaType {
						t.Fatalf("status %d, want the form refused (400, 403 or 415):\n%s", p.Status, p.Body)
					}
					p.contains(t, `role="alert"`, "Nothing was changed")
					f.changedNothing(t, form, emails)
				})
			}
		}
	})
}

// A management link that expired cannot revoke the agreement, from the confirmation page opened
// before it expired or by a post: it says it expired, and nothing changes.
func TestAnExpiredManagementLinkRevokesNothing(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		f.tokens.SetAgreementTTL(time.Hour)
		l, agreement := f.linked(t)
		confirm := f.get(t, "/agreement/revoke?token="+url.QueryEscape(agreement))
		confirm.status(t, http.StatusOK)
		s := sessionFrom(t, confirm)
		before := f.link(t, l.ID)
		f.clock.Advance(time.Hour)
		for name, p := range map[string]page{
			"the confirmation page": f.get(t, "/agreement/revoke?token="+url.QueryEscape(agreement)),
			"the revocation":        f.post(t, "/agreement/revoke", url.Values{"token": {agreement}, "confirm": {"yes"}}, s, nil),
		} {
			t.Run(name, func(t *testing.T) {
				p.status(t, http.StatusGone)
				p.contains(t, `role="alert"`, "This link to your agreement has expired")
				p.lacks(t, "Ada Lovelace", "ada@example.com", "5678")
			})
		}
		f.unchanged(t, before)
		f.wantState(t, l.ID, billing.LinkLinked)
	})
}

// A token past its expiry but signed by another key is forged, not expired: the pages must not
// tell it apart from a genuine link that expired (nor offer to email a new one).
func TestExpiredForgedTokensAreNotFoundNotExpired(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		past := f.clock.Now().Add(-2 * time.Hour)
		other := token.NewIssuer(billing.SigningKey{ID: "key_other", Secret: []byte(billing.RandomToken(32))}, func() time.Time { return past })
		other.SetAgreementTTL(time.Hour)

		invited, _ := f.invite(t)
		stale := invited
		stale.CreatedAt, stale.ExpiresAt = past, past.Add(time.Hour)
		forgedSignup, err := other.Signup(stale)
		if err != nil {
			t.Fatal(err)
		}
		linked, _ := f.linked(t)
		forgedAgreement, err := other.Agreement(linked)
		if err != nil {
			t.Fatal(err)
		}
		s := f.session(t)
		pages := map[string]page{
			"GET /signup":            f.get(t, "/signup?token="+url.QueryEscape(forgedSignup)),
			"POST /signup":           f.post(t, "/signup", validForm(forgedSignup), s, nil),
			"GET /agreement":         f.get(t, "/agreement?token="+url.QueryEscape(forgedAgreement)),
			"GET /agreement/revoke":  f.get(t, "/agreement/revoke?token="+url.QueryEscape(forgedAgreement)),
			"POST /agreement/revoke": f.post(t, "/agreement/revoke", url.Values{"token": {forgedAgreement}, "confirm": {"yes"}}, s, nil),
		}
		for name, p := range pages {
			t.Run(name, func(t *testing.T) {
				p.status(t, http.StatusNotFound)
				p.contains(t, `role="alert"`)
				p.lacks(t, "expired", "Email me my management link")
			})
		}
		f.unchanged(t, f.link(t, invited.ID))
		f.unchanged(t, linked)
		f.wantState(t, invited.ID, billing.LinkInvited)
		f.wantState(t, linked.ID, billing.LinkLinked)
	})
}

// The "email me my management link" form is protected like the others, and sends nothing for
// a forged token or a form without an address.
func TestEmailLinkFormRefusesBadInput(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		l, agreement := f.linked(t)
		s := sessionFrom(t, f.get(t, "/agreement?token="+url.QueryEscape(agreement)))
		good := url.Values{"token": {agreement}, "email": {"ada@example.com"}}
		t.Run("without the CSRF field", func(t *testing.T) {
			p := f.do(t, request{method: http.MethodPost, path: "/agreement/email-link", form: good, cookie: s.cookie})
			p.status(t, http.StatusForbidden)
			p.contains(t, "Nothing was changed")
		})
		t.Run("from another origin", func(t *testing.T) {
			f.post(t, "/agreement/email-link", good, s, map[string]string{"Origin": "https://evil.example"}).status(t, http.StatusForbidden)
		})
		otherKey := token.NewIssuer(billing.SigningKey{ID: "key_other", Secret: []byte(billing.RandomToken(32))}, f.clock.Now)
		forged, err := otherKey.Agreement(l)
		if err != nil {
			t.Fatal(err)
		}
		for name, form := range map[string]url.Values{
			"a forged token":         {"token": {forged}, "email": {"ada@example.com"}},
			"no token":               {"email": {"ada@example.com"}},
			"no email":               {"token": {agreement}},
			"an empty email":         {"token": {agreement}, "email": {""}},
			"a token that is no JWT": {"token": {"lnk_" + l.ID}, "email": {"ada@example.com"}},
		} {
			t.Run(name, func(t *testing.T) {
				p := f.post(t, "/agreement/email-link", form, s, nil)
				if p.Status >= 500 {
					t.Fatalf("status %d:\n%s", p.Status, p.Body)
				}
			})
		}
		if got := f.managementLinks(t, l.ID); got != 0 {
			t.Errorf("%d management links queued, want none", got)
		}
	})
}

// The service agreement page of a site that is not there is the pages' 404, whatever the id.
func TestServiceAgreementOfAnUnknownSite(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		for _, id := range []string{"nope", "site_", "site_" + strings.Repeat("a", 300), url.PathEscape("site_\x00"), url.PathEscape("site_\xff")} {
			t.Run(id, func(t *testing.T) {
				p := f.get(t, "/service-agreement/"+id)
				p.status(t, http.StatusNotFound)
				p.contains(t, `role="alert"`)
			})
		}
		if _, err := f.svc.SiteByID(context.Background(), f.site.ID); err != nil {
			t.Fatal(err)
		}
	})
}
