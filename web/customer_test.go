package web_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
)

// apcaDirectory is a small BSB directory in APCA's format.
const apcaDirectory = `"062-000","CBA","Sydney","Level 1, 48 Martin Place","Sydney","NSW","2000","PEH"
"733-000","WBC","Parramatta","142 Marsden Street","Parramatta","NSW","2150","PEH"
"032-999","WBC","Cheques Only","1 Clearing Lane","Sydney","NSW","2000","P"
`

// review posts the form to be checked, as its button does, and returns the page.
func (f *fixture) review(t *testing.T, form url.Values, s session) page {
	t.Helper()
	form = cloneForm(form)
	form.Del("step") // the form's own button: review
	return f.post(t, "/signup", form, s, nil)
}

// hiddenFields reads the hidden fields of the first form of a page.
func hiddenFields(t *testing.T, p page) url.Values {
	t.Helper()
	first, _, _ := strings.Cut(p.Body, "</form>")
	out := url.Values{}
	for _, m := range hiddenPattern.FindAllStringSubmatch(first, -1) {
		out.Add(m[1], unescape(m[2]))
	}
	return out
}

func TestReviewStepShowsTheDetailsAndStoresNothingUntilConfirmed(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		for _, tt := range []struct {
			name string
			form func(tok string) url.Values
			want billing.Customer
			show []string
		}{
			{
				name: "an individual",
				form: validForm,
				want: billing.Customer{Name: "Ada Lovelace", Email: "ada@example.com", BSB: "062000", AccountNumber: "12345678",
					AccountName: "A LOVELACE", Type: billing.CustomerIndividual},
				show: []string{"Check your details", "Ada Lovelace", "ada@example.com", "A LOVELACE", "062-000", "12345678", "Your own",
					"You are authorised to operate this account on your own",
					// The authority that confirming makes, beside the button that makes it.
					`id="review-authority">By confirming you make this Direct Debit Request: I request and authorise`},
			},
			{
				name: "a business, with its name and ABN",
				form: businessForm,
				want: billing.Customer{Name: "Ada Lovelace", Email: "ada@example.com", BSB: "062000", AccountNumber: "12345678",
					AccountName: "ANALYTICAL ENGINES PTY LTD", Type: billing.CustomerBusiness, BusinessName: "Analytical Engines Pty Ltd", ABN: "51824753556"},
				show: []string{"Check your details", "Analytical Engines Pty Ltd", `id="review-abn">51 824 753 556<`, "ANALYTICAL ENGINES PTY LTD", "You are authorised to operate this account"},
			},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				l, tok := f.invite(t)
				s := f.openForm(t, tok)
				before := f.link(t, l.ID)
				p := f.review(t, tt.form(tok), s)
				p.status(t, http.StatusOK)
				p.contains(t, tt.show...)
				p.contains(t, `name="step" value="confirm"`, `name="step" value="edit"`)
				f.unchanged(t, before)
				if got := f.link(t, l.ID).StoredState; got != billing.LinkInvited {
					t.Fatalf("after the review the link is %s, want invited", got)
				}

				// "Change my details" goes back to the form, filled in.
				edit := hiddenFields(t, p)
				edit.Set("step", "edit")
				back := f.post(t, "/signup", edit, s, nil)
				back.status(t, http.StatusOK)
				back.contains(t, `value="`+tt.want.AccountName+`"`, `value="ada@example.com"`, `value="yes" checked`)
				f.unchanged(t, before)

				// Confirming links the customer, with the details as reviewed.
				confirm := hiddenFields(t, p)
				if confirm.Get("step") != "confirm" {
					t.Fatalf("the review's first form posts step %q, want confirm", confirm.Get("step"))
				}
				agreementToken(t, f.post(t, "/signup", confirm, s, nil))
				got := f.link(t, l.ID)
				if got.StoredState != billing.LinkLinked || got.Customer != tt.want {
					t.Errorf("stored %s %+v, want linked %+v", got.StoredState, got.Customer, tt.want)
				}
			})
		}
	})
}

// An account name typed with the apostrophes and dashes of a phone's keyboard (iOS's smart
// punctuation types ’ for ') is kept with the ones of the BECS character set, shown so on the
// review, rather than refused as "not in English letters" to a customer who typed nothing else.
func TestAnAccountNameTypedWithAPhonesPunctuationIsKeptInTheBECSCharacterSet(t *testing.T) {
	t.Parallel()
	f := setup(t, "sqlite")
	for _, tt := range []struct{ typed, kept, shown string }{
		{typed: "J O’BRIEN", kept: "J O'BRIEN", shown: "J O&#39;BRIEN"},
		{typed: "J O‘BRIEN", kept: "J O'BRIEN", shown: "J O&#39;BRIEN"},
		{typed: "J OʼBRIEN", kept: "J O'BRIEN", shown: "J O&#39;BRIEN"},
		{typed: "SMITH–JONES", kept: "SMITH-JONES", shown: "SMITH-JONES"},
		{typed: "SMITH—JONES", kept: "SMITH-JONES", shown: "SMITH-JONES"},
		{typed: "SMITH‑JONES", kept: "SMITH-JONES", shown: "SMITH-JONES"},
	} {
		t.Run(tt.typed, func(t *testing.T) {
			t.Parallel()
			l, tok := f.invite(t)
			s := f.openForm(t, tok)
			form := validForm(tok)
			form.Set("accountName", tt.typed)
			review := f.review(t, form, s)
			review.status(t, http.StatusOK)
			review.contains(t, `id="review-account-name">`+tt.shown+`<`)
			agreementToken(t, f.post(t, "/signup", hiddenFields(t, review), s, nil))
			if got := f.link(t, l.ID).Customer.AccountName; got != tt.kept {
				t.Errorf("the account name typed %q is kept as %q, want %q", tt.typed, got, tt.kept)
			}
		})
	}
}

func TestNewFieldsAreCheckedBesideThemAndNothingIsStored(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		for _, tt := range []struct {
			name          string
			form          func(string) url.Values
			change        map[string]string
			drop          string
			field, anchor string
			message       string
		}{
			{name: "customer type is required", form: validForm, drop: "customerType", field: "customerType", anchor: "customerType-individual", message: "Choose whether the account is yours or a business"},
			{name: "customer type must be one of the two", form: validForm, change: map[string]string{"customerType": "trust"}, field: "customerType", anchor: "customerType-individual", message: "Choose whether the account is yours or a business"},
			{name: "account name is required", form: validForm, change: map[string]string{"accountName": " "}, field: "accountName", message: "Enter the account name as your bank shows it (up to 32 characters)."},
			{name: "account name longer than 32 characters is refused", form: validForm, change: map[string]string{"accountName": strings.Repeat("A", 33)}, field: "accountName", message: "Enter the account name as your bank shows it (up to 32 characters)."},
			{name: "account name outside the BECS character set is refused", form: validForm, change: map[string]string{"accountName": "ZOË O’BRIEN"}, field: "accountName", message: "Write the account name in English letters, digits, spaces and common punctuation"},
			{name: "a business's name is required", form: businessForm, change: map[string]string{"businessName": ""}, field: "businessName", message: "Enter the business&#39;s name"},
			{name: "a business's ABN must pass the checksum", form: businessForm, change: map[string]string{"abn": "51 824 753 557"}, field: "abn", message: "Enter the business&#39;s ABN: 11 digits"},
			{name: "a business's ABN must have 11 digits", form: businessForm, change: map[string]string{"abn": "5182475355"}, field: "abn", message: "Enter the business&#39;s ABN"},
			// A Direct Debit Request binds an account only the customer may operate: a joint
			// account that needs another holder's signature cannot be debited on theirs alone.
			{name: "a business's customer must be authorised to operate the account", form: businessForm, drop: "authorised", field: "authorised", message: "Tick the box to confirm that you are authorised to operate this account on your own."},
			{name: "an individual must be authorised to operate the account", form: validForm, drop: "authorised", field: "authorised", message: "Tick the box to confirm that you are authorised to operate this account on your own."},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				l, tok := f.invite(t)
				before := f.link(t, l.ID)
				form := tt.form(tok)
				for k, v := range tt.change {
					form.Set(k, v)
				}
				if tt.drop != "" {
					form.Del(tt.drop)
				}
				s := f.openForm(t, tok)
				for _, p := range []page{f.review(t, form, s), f.post(t, "/signup", form, s, nil)} {
					p.status(t, http.StatusBadRequest)
					anchor := tt.anchor
					if anchor == "" {
						anchor = tt.field
					}
					p.contains(t, `id="`+tt.field+`-error">`+tt.message, `href="#`+anchor+`"`)
					f.unchanged(t, before)
				}
			})
		}
	})
}

func TestControlCharactersAndInvalidUTF8AreRefusedBesideTheirField(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		for _, field := range []string{"name", "email", "accountName", "businessName", "abn", "bsb", "accountNumber"} {
			for _, bad := range []struct{ name, text string }{
				{"NUL", "\x00"}, {"a line break", "\n"}, {"an escape", "\x1b"}, {"invalid UTF-8", "\xff"}, {"a C1 control", "\u0085"},
			} {
				t.Run(field+" with "+bad.name, func(t *testing.T) {
					t.Parallel()
					l, tok := f.invite(t)
					before := f.link(t, l.ID)
					form := businessForm(tok)
					form.Set(field, form.Get(field)[:1]+bad.text+form.Get(field)[1:])
					s := f.openForm(t, tok)
					for _, p := range []page{f.review(t, form, s), f.post(t, "/signup", form, s, nil)} {
						p.status(t, http.StatusBadRequest)
						p.contains(t, `id="`+field+`-error"`, `href="#`+field+`"`)
						f.unchanged(t, before)
					}
				})
			}
		}
		t.Run("a signup token with a NUL is not found", func(t *testing.T) {
			t.Parallel()
			_, tok := f.invite(t)
			for _, p := range []page{
				f.get(t, "/signup?token="+url.QueryEscape(tok+"\x00")),
				f.post(t, "/signup", validForm(tok+"\x00"), f.session(t), nil),
				f.get(t, "/agreement?token="+url.QueryEscape("\xff"+tok)),
			} {
				p.status(t, http.StatusNotFound)
			}
		})
	})
}

func TestBSBDirectory(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		l, tok := f.invite(t)
		s := f.openForm(t, tok)
		form := validForm(tok)
		form.Set("bsb", "111-111")

		// Before the operator imports the directory, any BSB of 6 digits is accepted.
		before := f.review(t, form, s)
		before.status(t, http.StatusOK)
		before.contains(t, "111-111")
		before.lacks(t, `id="review-branch"`)

		if n, err := f.svc.ImportBranches(context.Background(), strings.NewReader(apcaDirectory)); err != nil || n != 3 {
			t.Fatalf("ImportBranches = %d, %v", n, err)
		}
		unknown := f.review(t, form, s)
		unknown.status(t, http.StatusBadRequest)
		unknown.contains(t, `id="bsb-error">We can&#39;t find this BSB`, `href="#bsb"`, `value="111-111"`)
		f.unchanged(t, f.link(t, l.ID))
		f.post(t, "/signup", form, s, nil).status(t, http.StatusBadRequest)
		if got := f.link(t, l.ID).StoredState; got != billing.LinkInvited {
			t.Fatalf("a confirmation with an unknown BSB left the link %s, want invited", got)
		}

		// A branch whose payment flags lack E (electronic) takes no direct debit: every debit to
		// it would come back from the bank.
		form.Set("bsb", "032-999")
		chequesOnly := f.review(t, form, s)
		chequesOnly.status(t, http.StatusBadRequest)
		chequesOnly.contains(t, `id="bsb-error">This branch doesn&#39;t accept direct debits`, `href="#bsb"`, `value="032-999"`)
		f.post(t, "/signup", form, s, nil).status(t, http.StatusBadRequest)
		if got := f.link(t, l.ID).StoredState; got != billing.LinkInvited {
			t.Fatalf("a confirmation with a BSB that takes no direct debit left the link %s, want invited", got)
		}

		form.Set("bsb", "733000")
		known := f.review(t, form, s)
		known.status(t, http.StatusOK)
		known.contains(t, `id="review-branch">Westpac, Parramatta NSW`, "733-000")
		agreementToken(t, f.post(t, "/signup", form, s, nil))
	})
}

func TestRevocationAsksForConfirmationFirst(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		l, agreement := f.linked(t)
		before := f.link(t, l.ID)
		page := f.get(t, "/agreement?token="+url.QueryEscape(agreement))
		page.contains(t, `<a class="button danger" id="revoke" href="/agreement/revoke?token=`)
		page.lacks(t, `action="/agreement/revoke"`) // the agreement page itself revokes nothing

		confirm := f.get(t, "/agreement/revoke?token="+url.QueryEscape(agreement))
		confirm.status(t, http.StatusOK)
		confirm.contains(t, "Revoke your agreement with Acme Plumbing Supplies?", `name="confirm" value="yes"`,
			"Yes, revoke my agreement", "No, keep my agreement", `href="/agreement?token=`)
		f.unchanged(t, before)

		s := sessionFrom(t, confirm)
		// A post without the confirmation goes to the confirmation page and changes nothing.
		p := f.post(t, "/agreement/revoke", url.Values{"token": {agreement}}, s, nil)
		p.status(t, http.StatusSeeOther)
		if got := p.Header.Get("Location"); got != "/agreement/revoke?token="+url.QueryEscape(agreement) {
			t.Errorf("Location %q, want the confirmation page", got)
		}
		f.unchanged(t, before)

		f.post(t, "/agreement/revoke", url.Values{"token": {agreement}, "confirm": {"yes"}}, s, nil).status(t, http.StatusSeeOther)
		if got := f.link(t, l.ID); got.StoredState != billing.LinkRevoked || got.RevokedBy != billing.RevokedByCustomer {
			t.Fatalf("after confirming: %s by %q, want revoked by the customer", got.StoredState, got.RevokedBy)
		}
		again := f.get(t, "/agreement/revoke?token="+url.QueryEscape(agreement))
		again.status(t, http.StatusConflict)
		again.contains(t, "This agreement is already revoked", sydneyTime(f.link(t, l.ID).RevokedAt))
	})
}

func TestTimesAreShownInTheSitesZone(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		_, agreement := f.linked(t)
		p := f.get(t, "/agreement?token="+url.QueryEscape(agreement))
		// clocktest's clock starts at a fixed moment; in Sydney it is shown with the zone's name.
		want := sydneyTime(f.clock.Now())
		if !strings.HasSuffix(want, "AEST") && !strings.HasSuffix(want, "AEDT") {
			t.Fatalf("Sydney time %q names no Australian zone", want)
		}
		p.contains(t, want)
		p.lacks(t, "UTC")
		if utc := f.clock.Now().UTC().Format("15:04"); f.clock.Now().In(time.UTC).Hour() != mustSydney(f.clock.Now()).Hour() {
			p.lacks(t, "at "+utc+" ")
		}

		// A site in Perth shows its customers Perth's time.
		perth := "Australia/Perth"
		if _, err := f.svc.UpdateSite(context.Background(), f.site.ID, billing.SiteUpdate{TimeZone: &perth}); err != nil {
			t.Fatal(err)
		}
		loc, _ := time.LoadLocation(perth)
		p = f.get(t, "/agreement?token="+url.QueryEscape(agreement))
		p.contains(t, f.clock.Now().In(loc).Format("2 January 2006 at 3:04 pm MST"))
		p.lacks(t, want)
	})
}

func mustSydney(t time.Time) time.Time {
	loc, err := time.LoadLocation("Australia/Sydney")
	if err != nil {
		panic(err)
	}
	return t.In(loc)
}

// browser is a client that keeps its cookies, as a browser does, and follows no redirect.
type browser struct {
	f      *fixture
	client *http.Client
}

func (f *fixture) browser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{f: f, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(t *testing.T, method, path string, form url.Values) page {
	t.Helper()
	f := *b.f
	f.client = b.client
	return f.do(t, request{method: method, path: path, form: form})
}

// openForm opens the signup form of tok and returns its hidden fields (the browser keeps its
// cookie).
func (b *browser) openForm(t *testing.T, tok string) session {
	t.Helper()
	p := b.do(t, http.MethodGet, "/signup?token="+url.QueryEscape(tok), nil)
	p.status(t, http.StatusOK)
	csrf, terms := csrfFieldPattern.FindStringSubmatch(p.Body), termsFieldPattern.FindStringSubmatch(p.Body)
	if csrf == nil || terms == nil {
		t.Fatalf("page lacks the csrf or terms field:\n%s", p.Body)
	}
	return session{token: csrf[1], terms: terms[1]}
}

// confirm posts the signup form of tok, confirmed, with the hidden fields of s.
func (b *browser) confirm(t *testing.T, tok string, s session) page {
	t.Helper()
	form := validForm(tok)
	form.Set("csrf", s.token)
	form.Set("terms", s.terms)
	return b.do(t, http.MethodPost, "/signup", form)
}

// The browser that signed up, sending its confirmation again (the back button, a reload, a second
// click once the first was answered) or opening the signup link again, is taken to the agreement
// page it was sent to, for a few minutes; any other browser is told the link was used, as before.
func TestASignupConfirmedAgainFromItsBrowserLeadsToTheAgreementPage(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		l, tok := f.invite(t)
		customer := f.browser(t)
		s := customer.openForm(t, tok)
		agreement := agreementToken(t, customer.confirm(t, tok, s))
		linked := f.link(t, l.ID)

		for _, again := range []struct {
			name string
			page page
		}{
			{name: "the confirmation sent again", page: customer.confirm(t, tok, s)},
			{name: "the signup link opened again", page: customer.do(t, http.MethodGet, "/signup?token="+url.QueryEscape(tok), nil)},
		} {
			if got := agreementToken(t, again.page); got != agreement {
				t.Errorf("%s: sent to the agreement page of token %q, want %q", again.name, got, agreement)
			}
		}
		f.unchanged(t, linked)

		other := f.browser(t)
		other.do(t, http.MethodGet, "/signup?token="+url.QueryEscape(tok), nil).status(t, http.StatusConflict)
		_, otherTok := f.invite(t)
		other.confirm(t, tok, other.openForm(t, otherTok)).status(t, http.StatusConflict)

		// Another invitation's form, in the browser that signed up, is that invitation's.
		customer.do(t, http.MethodGet, "/signup?token="+url.QueryEscape(otherTok), nil).status(t, http.StatusOK)

		if _, err := f.svc.RevokeByCustomer(context.Background(), l.ID); err != nil {
			t.Fatal(err)
		}
		customer.do(t, http.MethodGet, "/signup?token="+url.QueryEscape(tok), nil).status(t, http.StatusGone)
		customer.confirm(t, tok, s).status(t, http.StatusGone)
	})
}

// A confirmation from another tab of the browser that has just signed up, of other details (a
// corrected account number), is told that they were not saved, rather than sent to the agreement
// page as if they were; nothing changes.
func TestASignupConfirmedFromAnotherTabWithOtherDetailsIsToldTheyWereNotSaved(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		l, tok := f.invite(t)
		customer := f.browser(t)
		first, second := customer.openForm(t, tok), customer.openForm(t, tok)
		agreementToken(t, customer.confirm(t, tok, first))
		linked := f.link(t, l.ID)

		form := validForm(tok)
		form.Set("csrf", second.token)
		form.Set("terms", second.terms)
		form.Set("accountNumber", "87654321")
		p := customer.do(t, http.MethodPost, "/signup", form)
		p.status(t, http.StatusConflict)
		p.contains(t, "You have already signed up", "these were not saved")
		f.unchanged(t, linked)
	})
}

// The cookie a signup leaves: HttpOnly, SameSite=Lax (so that the signup link opened again from
// the email carries it), for 10 minutes, and host-only and Secure behind https.
func TestTheSignedUpCookiesAttributes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ publicURL, name string }{
		{"", "pyng-signed-up"},
		{"https://pay.example.com", "__Host-pyng-signed-up"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var f *fixture
			if tt.publicURL == "" {
				f = setup(t, "sqlite")
			} else {
				f = setup(t, "sqlite", tt.publicURL)
			}
			_, tok := f.invite(t)
			p := f.signUp(t, tok, validForm(tok))
			agreement := agreementToken(t, p)
			var c *http.Cookie
			for _, ck := range (&http.Response{Header: p.Header}).Cookies() {
				if ck.Name == tt.name {
					c = ck
				}
			}
			secure := tt.publicURL != ""
			if c == nil || c.Value != agreement || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" ||
				c.Domain != "" || c.MaxAge != 600 || c.Secure != secure {
				t.Errorf("cookie %s = %+v; want the agreement's token, HttpOnly, SameSite=Lax, Path=/, no Domain, Max-Age 600, Secure %v",
					tt.name, c, secure)
			}
		})
	}
}
