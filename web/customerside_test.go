package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/storage"
	"github.com/pyng/receivables/web"
)

// emailJobs lists the send_email jobs of the link.
func (f *fixture) emailJobs(t *testing.T, linkID string) []billing.SendEmailJob {
	t.Helper()
	queue, err := f.store.(storage.Database).NewJobClient(&river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := queue.JobList(context.Background(), river.NewJobListParams().Kinds(billing.SendEmailJob{}.Kind()).First(1000))
	if err != nil {
		t.Fatal(err)
	}
	var out []billing.SendEmailJob
	for _, j := range res.Jobs {
		var args billing.SendEmailJob
		if err := json.Unmarshal(j.EncodedArgs, &args); err != nil {
			t.Fatal(err)
		}
		if args.LinkID == linkID {
			out = append(out, args)
		}
	}
	return out
}

func TestServiceAgreementPage(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		path := "/service-agreement/" + f.site.ID
		p := f.get(t, path)
		p.status(t, http.StatusOK)
		p.contains(t, "Direct Debit Request Service Agreement", "Acme Plumbing Supplies", "The debit arrangements", "Disputes",
			"Your obligations", "Confidentiality", "Stopping or deferring a debit")
		name, abn := "Acme Plumbing Pty Ltd", "51824753556"
		if _, err := f.svc.UpdateSite(context.Background(), f.site.ID, billing.SiteUpdate{LegalName: &name, ABN: &abn}); err != nil {
			t.Fatal(err)
		}
		f.get(t, path).contains(t, "Acme Plumbing Pty Ltd (trading as Acme Plumbing Supplies)", "ABN 51 824 753 556")
		f.get(t, "/service-agreement/site_nope").status(t, http.StatusNotFound)

		// The authority the signup form asks for names the same debit user, not Pyng.
		_, tok := f.invite(t)
		f.get(t, "/signup?token="+url.QueryEscape(tok)).contains(t, `href="`+path+`"`,
			"I request and authorise Acme Plumbing Pty Ltd (trading as Acme Plumbing Supplies) to arrange, through Pyng, which processes its debits, for amounts to be debited from the bank account above through the Bulk Electronic Clearing System (BECS)")
	})
}

func TestEmailMeMyManagementLink(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		l, agreement := f.linked(t)
		if got := f.emailJobs(t, l.ID); len(got) != 1 || got[0].Email != billing.EmailSignupConfirmation {
			t.Fatalf("after signing up, the email jobs are %v; want the signup confirmation", got)
		}
		manage := f.get(t, "/agreement?token="+url.QueryEscape(agreement))
		manage.status(t, http.StatusOK)
		manage.contains(t, "Email me my management link", `action="/agreement/email-link"`)
		s := sessionFrom(t, manage)

		known := f.post(t, "/agreement/email-link", url.Values{"token": {agreement}, "email": {"ADA@example.com"}}, s, nil)
		unknown := f.post(t, "/agreement/email-link", url.Values{"token": {agreement}, "email": {"someone@example.com"}}, s, nil)
		known.status(t, http.StatusOK)
		unknown.status(t, http.StatusOK)
		if known.Body != unknown.Body {
			t.Errorf("the answer differs for a known and an unknown address:\n%s\n---\n%s", known.Body, unknown.Body)
		}
		// Each request enqueues one job, so that a known and an unknown address cost the same:
		// the unknown one's sends nothing (EmailNone).
		got := f.emailJobs(t, l.ID)
		if len(got) != 3 || got[1].Email != billing.EmailManagementLink || got[2].Email != billing.EmailNone {
			t.Errorf("email jobs = %v; want the management link for the known address, and one that sends nothing for the unknown", got)
		}
		f.post(t, "/agreement/email-link", url.Values{"token": {"forged"}, "email": {"ada@example.com"}}, s, nil).status(t, http.StatusOK)
	})
}

func TestAnExpiredManagementLinkShowsHowToGetANewOne(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		f.tokens.SetAgreementTTL(time.Hour)
		l, agreement := f.linked(t)
		f.get(t, "/agreement?token="+url.QueryEscape(agreement)).status(t, http.StatusOK)
		f.clock.Advance(time.Hour)
		p := f.get(t, "/agreement?token="+url.QueryEscape(agreement))
		p.status(t, http.StatusGone)
		p.contains(t, "This link to your agreement has expired", "Email me my management link", `name="token" value="`+agreement+`"`)
		f.post(t, "/agreement/email-link", url.Values{"token": {agreement}, "email": {"ada@example.com"}}, sessionFrom(t, p), nil).status(t, http.StatusOK)
		if got := f.emailJobs(t, l.ID); len(got) != 2 || got[1].Email != billing.EmailManagementLink {
			t.Errorf("email jobs = %v; want a new management link", got)
		}

		// The page of a signup link already used offers the same form.
		_, signup := f.invite(t)
		f.signUp(t, signup, validForm(signup))
		used := f.get(t, "/signup?token="+url.QueryEscape(signup))
		used.status(t, http.StatusConflict)
		used.contains(t, "Email me my management link", `name="token" value="`+signup+`"`)
	})
}

// A revoked agreement leaves nothing to manage: asking for a new management link, with either
// link its customer holds, mails none, and is answered as for an address Pyng does not know.
func TestNoManagementLinkIsMailedForARevokedAgreement(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		for _, tt := range []struct {
			name  string
			token func(signup, agreement string) string
		}{
			{name: "with its management link", token: func(_, agreement string) string { return agreement }},
			{name: "with its used signup link", token: func(signup, _ string) string { return signup }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				l, signup := f.invite(t)
				agreement := agreementToken(t, f.signUp(t, signup, validForm(signup)))
				s := sessionFrom(t, f.get(t, "/agreement?token="+url.QueryEscape(agreement)))
				if _, err := f.svc.RevokeByCustomer(context.Background(), l.ID); err != nil {
					t.Fatal(err)
				}
				tok := tt.token(signup, agreement)
				known := f.post(t, "/agreement/email-link", url.Values{"token": {tok}, "email": {"ada@example.com"}}, s, nil)
				unknown := f.post(t, "/agreement/email-link", url.Values{"token": {tok}, "email": {"someone@example.com"}}, s, nil)
				known.status(t, http.StatusOK)
				if known.Body != unknown.Body {
					t.Errorf("the answer differs for the customer's address and another:\n%s\n---\n%s", known.Body, unknown.Body)
				}
				if n := f.managementLinks(t, l.ID); n != 0 {
					t.Errorf("%d management links queued for a revoked agreement, want none", n)
				}
			})
		}
	})
}

// The agreement page of a revoked agreement shows the customer's details until they are erased,
// then says that they were, rather than showing empty fields.
func TestARevokedAgreementsPageSaysWhenItsDetailsAreErased(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		ctx := context.Background()
		erased := "We have erased your name, email address and bank details"
		for _, tt := range []struct {
			name         string
			erase        bool
			shows, lacks []string
		}{
			{name: "before the erasure it shows the details", shows: []string{"Ada Lovelace", "BSB 062-000, account ••••5678"}, lacks: []string{erased}},
			{name: "after the erasure it says they were erased", erase: true, shows: []string{erased}, lacks: []string{"Bank account", "BSB ,", "••••", "<dt>Name</dt>", "<dt>Email</dt>"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				l, agreement := f.linked(t)
				if _, err := f.svc.RevokeByCustomer(ctx, l.ID); err != nil {
					t.Fatal(err)
				}
				if tt.erase {
					f.clock.Advance(time.Hour)
					if _, _, err := f.svc.EraseBankDetails(ctx, time.Hour); err != nil {
						t.Fatal(err)
					}
					if c := f.link(t, l.ID).Customer; c != (billing.Customer{}) {
						t.Fatalf("after the erasure the link still holds %+v", c)
					}
				}
				p := f.get(t, "/agreement?token="+url.QueryEscape(agreement))
				p.status(t, http.StatusOK)
				p.contains(t, append(tt.shows, "Your agreement with Acme Plumbing Supplies is revoked", "You revoked this direct debit agreement")...)
				p.lacks(t, tt.lacks...)
			})
		}
	})
}

// An address that is not one is refused openly on the "email me my management link" form, beside
// the field, before any limit is taken: no customer gave it, so the refusal tells nothing.
func TestEmailMeMyManagementLinkRefusesWhatIsNoAddress(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		l, agreement := f.linked(t)
		s := sessionFrom(t, f.get(t, "/agreement?token="+url.QueryEscape(agreement)))
		bad := []struct{ name, address string }{
			{name: "an empty address", address: ""},
			{name: "spaces", address: "   "},
			{name: "no domain", address: "ada@"},
			{name: "no @", address: "ada.example.com"},
			{name: "a display name", address: "Ada <ada@example.com>"},
		}
		// More refusals than a client may make requests in an hour: none of them counts.
		for range web.DefaultEmailLinkLimits.PerClient/len(bad) + 1 {
			for _, tt := range bad {
				t.Run(tt.name, func(t *testing.T) {
					p := f.post(t, "/agreement/email-link", url.Values{"token": {agreement}, "email": {tt.address}}, s, nil)
					p.status(t, http.StatusBadRequest)
					p.contains(t, "Check the email address", `id="email-link-address-error"`, "Enter the email address you gave when you signed up",
						`aria-invalid="true"`, `name="token" value="`+agreement+`"`)
				})
			}
		}
		if n := f.managementLinks(t, l.ID); n != 0 {
			t.Errorf("%d management links queued, want none", n)
		}
		f.post(t, "/agreement/email-link", url.Values{"token": {agreement}, "email": {" ADA@example.com "}}, s, nil).status(t, http.StatusOK)
		if n := f.managementLinks(t, l.ID); n != 1 {
			t.Errorf("%d management links queued for the customer's address, want 1", n)
		}
	})
}

// An unexpected failure of a page tells the customer the request's traceId (which the server
// that mounts the pages gives every answer in Pyng-Trace-Id) and logs it, so that support can
// find what went wrong; a page served alone says no reference.
func TestAPageThatFailsGivesTheCustomerItsTraceID(t *testing.T) {
	t.Parallel()
	var log apptest.LogBuffer
	f := setupWith(t, "sqlite", setupOptions{
		debitUserID: func(context.Context, string) (string, error) {
			return "", errors.New("the BECS rail's database is down")
		},
		logger: log.Logger(),
		wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Pyng-Trace-Id", "trace-0123")
				h.ServeHTTP(w, r)
			})
		},
	})
	_, tok := f.invite(t)
	p := f.get(t, "/signup?token="+url.QueryEscape(tok))
	p.status(t, http.StatusInternalServerError)
	p.contains(t, "Something went wrong on our side", "contact support with this reference: <code>trace-0123</code>")
	if !strings.Contains(log.String(), "traceId=trace-0123") || !strings.Contains(log.String(), "the BECS rail's database is down") {
		t.Errorf("the log does not hold the failure with its traceId:\n%s", log.String())
	}
}

// The agreement page links the service agreement the customer agreed to: how to stop or defer a
// debit and how to dispute one, and whom the customer authorised. A customer who manages the
// agreement later, or whose agreement has ended (a debit made before may still be disputed),
// finds it there as agreed, not only in the confirmation email, though the site's debit user has
// changed since; the site's own page shows its terms as they stand.
func TestTheAgreementPageLinksTheServiceAgreementAgreed(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		ctx := context.Background()
		agreed, phone := "Acme Plumbing Pty Ltd", "02 9999 0000"
		if _, err := f.svc.UpdateSite(ctx, f.site.ID, billing.SiteUpdate{LegalName: &agreed, Phone: &phone}); err != nil {
			t.Fatal(err)
		}
		l, agreement := f.linked(t)
		later, laterPhone := "Acme Holdings Pty Ltd", "1300 000 000"
		if _, err := f.svc.UpdateSite(ctx, f.site.ID, billing.SiteUpdate{LegalName: &later, Phone: &laterPhone}); err != nil {
			t.Fatal(err)
		}
		terms := "/agreement/service-agreement?token=" + url.QueryEscape(agreement)
		link := `<a href="` + html.EscapeString(terms) + `">Direct Debit Request Service Agreement</a>`
		for _, revoked := range []bool{false, true} {
			if revoked {
				if _, err := f.svc.RevokeByCustomer(ctx, l.ID); err != nil {
					t.Fatal(err)
				}
			}
			p := f.get(t, "/agreement?token="+url.QueryEscape(agreement))
			p.status(t, http.StatusOK)
			p.contains(t, link)
			p = f.get(t, terms)
			p.status(t, http.StatusOK)
			p.contains(t, "Direct Debit Request Service Agreement", agreed+" (trading as Acme Plumbing Supplies)", "by phone on "+phone,
				"As you agreed to it on ")
			p.lacks(t, later, laterPhone)
		}
		p := f.get(t, "/service-agreement/"+f.site.ID)
		p.status(t, http.StatusOK)
		p.contains(t, later+" (trading as Acme Plumbing Supplies)", "by phone on "+laterPhone)
		p.lacks(t, agreed, "As you agreed")
		for bad, status := range map[string]int{"": http.StatusBadRequest, "not-a-token": http.StatusNotFound,
			apptest.Tampered(agreement): http.StatusNotFound} {
			f.get(t, "/agreement/service-agreement?token="+url.QueryEscape(bad)).status(t, status)
		}
	})
}

// An operator changes a site's debit user and time zone with pyng admin site update, another
// process than the server's, whose cache of sites it cannot clear: the pages the server shows
// next name the debit user in the authority the customer gives, and its times in the new zone,
// even though they showed the site before the change.
func TestPagesShowTheSiteAsAnotherProcessUpdatedIt(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		_, agreement := f.linked(t)
		_, tok := f.invite(t)
		signup := "/signup?token=" + url.QueryEscape(tok)
		manage := "/agreement?token=" + url.QueryEscape(agreement)
		f.get(t, signup).lacks(t, "Acme Plumbing Pty Ltd")
		f.get(t, manage).status(t, http.StatusOK)

		admin, _ := apptest.ServiceOver(t, f.store.(storage.Database), apptest.ServiceOptions{}) // as the admin command does
		name, perth := "Acme Plumbing Pty Ltd", "Australia/Perth"
		if _, err := admin.UpdateSite(context.Background(), f.site.ID, billing.SiteUpdate{LegalName: &name, TimeZone: &perth}); err != nil {
			t.Fatal(err)
		}
		f.get(t, signup).contains(t, "I request and authorise Acme Plumbing Pty Ltd (trading as Acme Plumbing Supplies) to arrange")
		loc, _ := time.LoadLocation(perth)
		f.get(t, manage).contains(t, f.clock.Now().In(loc).Format("2 January 2006 at 3:04 pm MST"))
	})
}

// A customer agrees to the terms the form showed, and no other: when an operator changes the
// site's debit user between the form and the confirmation, the confirmation links nothing and
// shows the form again with the new terms, the consent unticked and why beside it, as does the
// review of the details, which shows the authority confirming makes; a form that names no terms,
// or others, is refused the same way. Confirmed again under the new terms, the signup links the
// customer, and the link keeps those terms.
func TestASignupIsCompletedOnlyUnderTheTermsItShowed(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		ctx := context.Background()
		l, tok := f.invite(t)
		s := f.openForm(t, tok)
		newName := "Acme Holdings Pty Ltd"
		if _, err := f.svc.UpdateSite(ctx, f.site.ID, billing.SiteUpdate{LegalName: &newName}); err != nil {
			t.Fatal(err)
		}
		const changed = "The Direct Debit Request changed since this page was shown. Read it again, and tick the box if you agree."
		var again page
		for name, terms := range map[string]string{"the terms the form showed, changed since": s.terms, "no terms": "", "terms of no form": "0123456789abcdef",
			"the terms the form showed, at the review": s.terms} {
			form := validForm(tok)
			form.Set("terms", terms)
			if strings.HasSuffix(name, "at the review") {
				form.Del("step")
			}
			again = f.post(t, "/signup", form, s, nil)
			again.status(t, http.StatusBadRequest)
			again.contains(t, changed, "I request and authorise "+newName+" (trading as Acme Plumbing Supplies)")
			if strings.Contains(again.Body, `name="consent" value="yes" checked`) {
				t.Errorf("%s: the consent is still ticked", name)
			}
			if got := f.link(t, l.ID); got.StoredState != billing.LinkInvited {
				t.Fatalf("%s: the link is %s, want invited", name, got.StoredState)
			}
		}
		m := termsFieldPattern.FindStringSubmatch(again.Body)
		if m == nil || m[1] == s.terms {
			t.Fatalf("the form shown again carries the terms %v, want new ones", m)
		}
		s.terms = m[1]
		f.post(t, "/signup", validForm(tok), s, nil).status(t, http.StatusSeeOther)
		if got := f.link(t, l.ID); got.StoredState != billing.LinkLinked || got.Terms.DebitUser != newName || got.Terms.Site != f.site.Name {
			t.Errorf("the link is %s under the terms %+v, want linked under those naming %s", got.StoredState, got.Terms, newName)
		}
	})
}
