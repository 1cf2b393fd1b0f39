package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/storage"
	"github.com/pyng/receivables/token"
	"github.com/pyng/receivables/web"
)

// fixture is the customer's pages served on loopback over a fresh database, with one site.
type fixture struct {
	url    string
	svc    *billing.Service
	store  billing.Store
	tokens *token.Issuer
	clock  *clocktest.Clock
	site   billing.Site
	client *http.Client

	// What replica serves the pages from again: the database, the signing key, the options.
	dbURL      string
	signingKey billing.SigningKey
	opts       setupOptions
}

// forEachEngine runs fn on each storage engine, in parallel.
func forEachEngine(t *testing.T, fn func(t *testing.T, engine string)) {
	t.Helper()
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			fn(t, engine)
		})
	}
}

// setup starts the pages on a fresh database of engine. publicURL, when given, replaces the
// server's own URL as the public base (to see how the pages behave behind https).
func setup(t *testing.T, engine string, publicURL ...string) *fixture {
	t.Helper()
	var opts setupOptions
	if len(publicURL) > 0 {
		opts.publicURL = publicURL[0]
	}
	return setupWith(t, engine, opts)
}

// setupOptions change how setupWith serves the pages.
type setupOptions struct {
	// publicURL replaces the server's own URL as the public base.
	publicURL string
	// wrap, when set, stands in front of the pages: to see or change the requests they receive.
	wrap func(http.Handler) http.Handler
	// managementLinkTTL is how long the pages say a management link lasts (0: it does not
	// expire).
	managementLinkTTL time.Duration
	// debitUserID gives the sites' BECS user IDs (nil: none); logger receives the pages' log.
	debitUserID func(ctx context.Context, siteID string) (string, error)
	logger      *slog.Logger
}

// setupWith is setup with opts.
func setupWith(t *testing.T, engine string, opts setupOptions) *fixture {
	t.Helper()
	clk := clocktest.New()
	key := billing.SigningKey{ID: "key_test", Secret: []byte(billing.RandomToken(32)), CreatedAt: clk.Now()}
	f := (&fixture{
		tokens: token.NewIssuer(key, clk.Now),
		clock:  clk,
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},

		dbURL:      dbtest.URL(t, engine),
		signingKey: key,
		opts:       opts,
	}).serve(t)

	ctx := context.Background()
	org, err := f.svc.CreateOrganisation(ctx, "Acme Holdings")
	if err != nil {
		t.Fatalf("create organisation: %v", err)
	}
	if f.site, err = f.svc.CreateSite(ctx, org.ID, "Acme Plumbing Supplies"); err != nil {
		t.Fatalf("create site: %v", err)
	}
	return f
}

// replica is the pages served again, by a server of their own over f's database (a connection,
// a service and a token issuer of its own, the same signing key and clock), as by another
// replica of a deployment.
func (f *fixture) replica(t *testing.T) *fixture {
	t.Helper()
	r := *f
	r.tokens = token.NewIssuer(f.signingKey, f.clock.Now)
	return r.serve(t)
}

// serve serves the pages over a connection of their own to f's database, with f's token issuer.
func (f *fixture) serve(t *testing.T) *fixture {
	t.Helper()
	r := *f
	db := dbtest.OpenURL(t, f.dbURL, storage.WithKeyring(dbtest.Keyring()))
	svc, _, err := app.NewService(context.Background(), db, f.clock, app.ServiceSettings{Sandbox: true})
	if err != nil {
		t.Fatal(err)
	}
	if f.opts.debitUserID != nil { // the same service, but for where its user IDs come from
		rails, err := app.OpenRails(context.Background(), db, f.clock, 0)
		if err != nil {
			t.Fatal(err)
		}
		svc = billing.NewService(billing.Config{Store: db, Batches: db, Events: db, Rails: rails.ByName(), Clock: f.clock,
			InvitationTTL: billing.DefaultInvitationTTL, Sandbox: true, DebitUserID: f.opts.debitUserID})
	}
	r.svc, r.store = svc, db
	srv := httptest.NewUnstartedServer(nil)
	r.url = "http://" + srv.Listener.Addr().String()
	public := r.url
	if f.opts.publicURL != "" {
		public = f.opts.publicURL
	}
	logger := f.opts.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var pages http.Handler = web.New(web.Config{Service: svc, Tokens: f.tokens, Logger: logger,
		PublicURL: public, Now: f.clock.Now, ManagementLinkTTL: f.opts.managementLinkTTL})
	if f.opts.wrap != nil {
		pages = f.opts.wrap(pages)
	}
	srv.Config.Handler = pages
	srv.Start()
	t.Cleanup(srv.Close)
	return &r
}

// invite mints an invitation for a fresh customerReference and returns it with its signup token.
func (f *fixture) invite(t *testing.T) (billing.Link, string) {
	t.Helper()
	l, err := f.svc.Invite(context.Background(), f.site, "CUST-"+billing.RandomToken(5))
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	tok, err := f.tokens.Signup(l)
	if err != nil {
		t.Fatalf("signup token: %v", err)
	}
	return l, tok
}

// link reads a link from the store.
func (f *fixture) link(t *testing.T, id string) billing.Link {
	t.Helper()
	l, err := f.store.GetLink(context.Background(), id)
	if err != nil {
		t.Fatalf("get link: %v", err)
	}
	return l
}

// unchanged fails the test if the stored link differs from before. A zero before (no link was
// stored) passes.
func (f *fixture) unchanged(t *testing.T, before billing.Link) {
	t.Helper()
	if before.ID == "" {
		return
	}
	after := f.link(t, before.ID)
	if after.StoredState != before.StoredState || after.Customer != before.Customer ||
		!after.LinkedAt.Equal(before.LinkedAt) || !after.RevokedAt.Equal(before.RevokedAt) || after.RevokedBy != before.RevokedBy {
		t.Errorf("link changed:\nbefore %+v\nafter  %+v", before, after)
	}
}

// page is a response read whole.
type page struct {
	Status int
	Header http.Header
	Body   string
}

func (p page) contains(t *testing.T, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if !strings.Contains(p.Body, s) {
			t.Errorf("page (status %d) lacks %q:\n%s", p.Status, s, p.Body)
		}
	}
}

func (p page) lacks(t *testing.T, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(p.Body, s) {
			t.Errorf("page (status %d) shows %q, which it must not:\n%s", p.Status, s, p.Body)
		}
	}
}

func (p page) status(t *testing.T, want int) {
	t.Helper()
	if p.Status != want {
		t.Fatalf("status %d, want %d:\n%s", p.Status, want, p.Body)
	}
}

// request describes one call: a form is posted when set; cookie is the CSRF cookie to send.
type request struct {
	method, path string
	form         url.Values
	cookie       *http.Cookie
	header       map[string]string
}

func (f *fixture) do(t *testing.T, r request) page {
	t.Helper()
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	}
	req, err := http.NewRequest(r.method, f.url+r.path, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if r.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if r.cookie != nil {
		req.AddCookie(r.cookie)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return page{Status: resp.StatusCode, Header: resp.Header, Body: string(data)}
}

func (f *fixture) get(t *testing.T, path string) page {
	t.Helper()
	return f.do(t, request{method: http.MethodGet, path: path})
}

// session is a browser's CSRF state: the cookie and the value the forms echo.
type session struct {
	cookie *http.Cookie
	token  string
	// terms is the version of the terms a signup form showed (its hidden field), "" for another
	// page.
	terms string
}

var (
	csrfFieldPattern  = regexp.MustCompile(`name="csrf" value="([^"]*)"`)
	termsFieldPattern = regexp.MustCompile(`name="terms" value="([^"]*)"`)
)

// sessionFrom takes the CSRF cookie and the form's hidden fields from a page.
func sessionFrom(t *testing.T, p page) session {
	t.Helper()
	m := csrfFieldPattern.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("page has no csrf field:\n%s", p.Body)
	}
	s := session{token: m[1]}
	if m := termsFieldPattern.FindStringSubmatch(p.Body); m != nil {
		s.terms = m[1]
	}
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		s.cookie = c
	}
	if s.cookie == nil {
		t.Fatalf("page set no CSRF cookie; headers %v", p.Header)
	}
	return s
}

// openForm opens the signup form of tok, as a browser does, and returns its CSRF session.
func (f *fixture) openForm(t *testing.T, tok string) session {
	t.Helper()
	p := f.get(t, "/signup?token="+url.QueryEscape(tok))
	p.status(t, http.StatusOK)
	return sessionFrom(t, p)
}

// session opens the form of an invitation of its own, for posts whose token has no form.
func (f *fixture) session(t *testing.T) session {
	t.Helper()
	_, tok := f.invite(t)
	return f.openForm(t, tok)
}

// post sends a form with the session's cookie and CSRF field, and the version of the terms its
// signup form showed unless the form names one.
func (f *fixture) post(t *testing.T, path string, form url.Values, s session, header map[string]string) page {
	t.Helper()
	form = cloneForm(form)
	form.Set("csrf", s.token)
	if _, named := form["terms"]; !named && s.terms != "" {
		form.Set("terms", s.terms)
	}
	return f.do(t, request{method: http.MethodPost, path: path, form: form, cookie: s.cookie, header: header})
}

func cloneForm(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// validForm is a customer who fills every field correctly and confirms the details at once (as
// the review page's confirm button posts them).
func validForm(tok string) url.Values {
	return url.Values{
		"token":         {tok},
		"step":          {"confirm"},
		"customerType":  {"individual"},
		"name":          {"Ada Lovelace"},
		"email":         {"ada@example.com"},
		"accountName":   {"A LOVELACE"},
		"bsb":           {"062-000"},
		"accountNumber": {"12345678"},
		"authorised":    {"yes"},
		"consent":       {"yes"},
	}
}

// businessForm is a business customer who fills every field correctly.
func businessForm(tok string) url.Values {
	form := validForm(tok)
	form.Set("customerType", "business")
	form.Set("businessName", "Analytical Engines Pty Ltd")
	form.Set("abn", "51 824 753 556")
	form.Set("accountName", "ANALYTICAL ENGINES PTY LTD")
	form.Set("authorised", "yes")
	return form
}

// signUp fills the form of tok as a browser does.
func (f *fixture) signUp(t *testing.T, tok string, form url.Values) page {
	t.Helper()
	return f.post(t, "/signup", form, f.openForm(t, tok), nil)
}

// agreementToken returns the token of the agreement page a signup redirected to.
func agreementToken(t *testing.T, p page) string {
	t.Helper()
	p.status(t, http.StatusSeeOther)
	loc, err := url.Parse(p.Header.Get("Location"))
	if err != nil || loc.Path != "/agreement" || loc.Query().Get("token") == "" {
		t.Fatalf("Location %q is not the agreement page", p.Header.Get("Location"))
	}
	return loc.Query().Get("token")
}

// linked is a customer who has signed up: the link and the agreement page's token.
func (f *fixture) linked(t *testing.T) (billing.Link, string) {
	t.Helper()
	l, tok := f.invite(t)
	agreement := agreementToken(t, f.signUp(t, tok, validForm(tok)))
	return f.link(t, l.ID), agreement
}

func TestSignupFormNamesTheSiteAndAsksForEverything(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		_, tok := f.invite(t)
		p := f.get(t, "/signup?token="+url.QueryEscape(tok))
		p.status(t, http.StatusOK)
		p.contains(t,
			`<meta name="viewport" content="width=device-width, initial-scale=1">`,
			"Set up payments to Acme Plumbing Supplies",
			`name="name"`, `name="email"`, `name="bsb"`, `name="accountNumber"`,
			`type="checkbox" id="consent" name="consent"`,
			"Australian dollars (AUD)", "in batches",
			`I agree to the direct debit agreement with Acme Plumbing Supplies`,
			`<form class="card" method="post" action="/signup"`,
		)
		s := sessionFrom(t, p)
		if !s.cookie.HttpOnly || s.cookie.SameSite != http.SameSiteLaxMode || s.cookie.Path != "/" || s.cookie.Secure {
			t.Errorf("CSRF cookie over http = %+v, want HttpOnly, SameSite=Lax, Path=/, not Secure", s.cookie)
		}
		if s.cookie.Value != s.token || len(s.token) < 40 {
			t.Errorf("form's csrf field %q does not echo a strong cookie %q", s.token, s.cookie.Value)
		}
	})
}

func TestCSRFCookieIsHostOnlyAndSecureBehindHTTPS(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine, "https://pay.example.com")
		_, tok := f.invite(t)
		s := f.openForm(t, tok)
		c := s.cookie
		if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
			t.Errorf("CSRF cookie behind https = %+v, want __Host- prefix, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain", c)
		}
	})
}

func TestValidSignupLinksTheCustomer(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		tests := []struct {
			name     string
			bsb      string
			account  string
			wantBSB  string
			wantAcct string
		}{
			{name: "BSB typed with a hyphen is accepted", bsb: "062-000", account: "12345678", wantBSB: "062000", wantAcct: "12345678"},
			{name: "BSB typed as six digits is accepted", bsb: "062000", account: "012345678", wantBSB: "062000", wantAcct: "012345678"},
			{name: "spaces in BSB and account number are ignored", bsb: "062 000", account: "1234 5678", wantBSB: "062000", wantAcct: "12345678"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				l, tok := f.invite(t)
				form := validForm(tok)
				form.Set("bsb", tt.bsb)
				form.Set("accountNumber", tt.account)
				p := f.signUp(t, tok, form)
				agreement := agreementToken(t, p)
				if id, err := f.tokens.ParseAgreement(agreement); err != nil || id != l.ID {
					t.Errorf("redirect's agreement token names %q (%v), want %q", id, err, l.ID)
				}
				got := f.link(t, l.ID)
				want := billing.Customer{Name: "Ada Lovelace", Email: "ada@example.com", BSB: tt.wantBSB, AccountNumber: tt.wantAcct,
					AccountName: "A LOVELACE", Type: billing.CustomerIndividual}
				if got.StoredState != billing.LinkLinked || got.Customer != want || !got.LinkedAt.Equal(f.clock.Now()) {
					t.Errorf("stored link = %s %+v linked at %v, want linked %+v at %v", got.StoredState, got.Customer, got.LinkedAt, want, f.clock.Now())
				}
				api, err := f.svc.Link(context.Background(), f.site, l.CustomerReference)
				if err != nil || api.StateAt(f.clock.Now()) != billing.LinkLinked {
					t.Errorf("partner sees %s (%v), want linked", api.StateAt(f.clock.Now()), err)
				}
			})
		}

		t.Run("a signup token is single-use: another submission changes nothing", func(t *testing.T) {
			t.Parallel()
			l, tok := f.invite(t)
			s := f.openForm(t, tok)
			agreementToken(t, f.post(t, "/signup", validForm(tok), s, nil))
			before := f.link(t, l.ID)
			again := validForm(tok)
			again.Set("name", "Mallory")
			again.Set("accountNumber", "99999999")
			// Another browser is told the link was used; the one that signed up, that its other
			// details were not saved (the same ones lead to its agreement page: see
			// TestADoubleClickedConfirmationLeadsToTheAgreementPage).
			p := f.post(t, "/signup", again, f.session(t), nil)
			p.status(t, http.StatusConflict)
			p.contains(t, "already been used")
			p = f.post(t, "/signup", again, s, nil)
			p.status(t, http.StatusConflict)
			p.contains(t, "these were not saved")
			f.unchanged(t, before)
		})
	})
}

func TestInvalidSignupShowsEachProblemBesideItsField(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		tests := []struct {
			name     string
			change   map[string]string // field → typed value; "" with drop removes it
			drop     string
			messages []string
		}{
			{name: "name is required", change: map[string]string{"name": "  "}, messages: []string{"Enter your name"}},
			{name: "name longer than 100 characters is refused", change: map[string]string{"name": strings.Repeat("a", 101)}, messages: []string{"Enter your name (up to 100 characters)."}},
			{name: "name of invisible characters only is refused", change: map[string]string{"name": "\u200b\u200b"},
				messages: []string{`<span class="error" id="name-error">Enter your name: it must contain at least one letter.</span>`}},
			{name: "name without a letter is refused", change: map[string]string{"name": "12 - 34"},
				messages: []string{`<span class="error" id="name-error">Enter your name: it must contain at least one letter.</span>`}},
			{name: "name with a right-to-left override is refused", change: map[string]string{"name": "Ada \u202eecalevoL"},
				messages: []string{`<span class="error" id="name-error">Enter your name without hidden characters that change the direction of text.</span>`}},
			{name: "name of a right-to-left override only is refused", change: map[string]string{"name": "\u202e"},
				messages: []string{`<span class="error" id="name-error">Enter your name without hidden characters that change the direction of text.</span>`}},
			{name: "name with a directional isolate is refused", change: map[string]string{"name": "\u2066Ada Lovelace\u2069"},
				messages: []string{`<span class="error" id="name-error">Enter your name without hidden characters that change the direction of text.</span>`}},
			{name: "email must be an address", change: map[string]string{"email": "ada@"}, messages: []string{"Enter a valid email address"}},
			{name: "email with a display name is refused", change: map[string]string{"email": "Ada <ada@example.com>"}, messages: []string{"Enter a valid email address"}},
			{name: "BSB must have 6 digits", change: map[string]string{"bsb": "062-00"}, messages: []string{"Enter a BSB of 6 digits"}},
			{name: "BSB must be digits", change: map[string]string{"bsb": "06A-000"}, messages: []string{"Enter a BSB of 6 digits"}},
			{name: "account number must have at least 5 digits", change: map[string]string{"accountNumber": "1234"}, messages: []string{"Enter an account number of 5 to 9 digits."}},
			{name: "account number must have at most 9 digits", change: map[string]string{"accountNumber": "1234567890"}, messages: []string{"Enter an account number of 5 to 9 digits."}},
			{name: "account number must be digits", change: map[string]string{"accountNumber": "1234abcd"}, messages: []string{"Enter an account number of 5 to 9 digits."}},
			{name: "account number must not be all zeros", change: map[string]string{"accountNumber": "00-000"}, messages: []string{"Enter your account number: it cannot be all zeros."}},
			{name: "consent is required", drop: "consent", messages: []string{"Tick the box to agree to the direct debit agreement."}},
			{
				name:   "every problem is reported at once",
				change: map[string]string{"name": "", "email": "", "bsb": "", "accountNumber": ""}, drop: "consent",
				messages: []string{"Enter your name", "Enter a valid email address", "Enter a BSB of 6 digits", "Enter an account number", "Tick the box"},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				l, tok := f.invite(t)
				before := f.link(t, l.ID)
				form := validForm(tok)
				for k, v := range tt.change {
					form.Set(k, v)
				}
				if tt.drop != "" {
					form.Del(tt.drop)
				}
				s := f.openForm(t, tok)
				p := f.post(t, "/signup", form, s, nil)
				p.status(t, http.StatusBadRequest)
				p.contains(t, tt.messages...)
				p.contains(t, `class="summary" role="alert"`, `aria-invalid="true"`)
				// What was typed is kept, so that only the wrong answer needs typing again.
				for _, k := range []string{"name", "email", "accountName", "bsb", "accountNumber"} {
					if v := form.Get(k); strings.TrimSpace(v) != "" && !strings.ContainsRune(v, '<') {
						p.contains(t, `value="`+v+`"`)
					}
				}
				if tt.drop != "consent" {
					p.contains(t, `value="yes" checked`)
				}
				f.unchanged(t, before)
				// The form shown again still works.
				if m := csrfFieldPattern.FindStringSubmatch(p.Body); m == nil || m[1] != s.token {
					t.Errorf("form shown again has CSRF field %q, want the session's %q", m, s.token)
				}
				agreementToken(t, f.post(t, "/signup", validForm(tok), s, nil))
			})
		}
	})
}

func TestUnusableSignupTokensShowAnErrorPageAndChangeNothing(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		ctx := context.Background()
		otherKey := token.NewIssuer(billing.SigningKey{ID: "key_other", Secret: []byte(billing.RandomToken(32))}, f.clock.Now)
		tests := []struct {
			name string
			// arrange returns the token to open, and the link it names (zero when none is stored).
			arrange    func(t *testing.T) (string, billing.Link)
			wantStatus int
			wantText   string
		}{
			{
				name:       "missing token is a bad request",
				arrange:    func(t *testing.T) (string, billing.Link) { return "", billing.Link{} },
				wantStatus: http.StatusBadRequest, wantText: "This link is incomplete",
			},
			{
				name:       "malformed token is not found",
				arrange:    func(t *testing.T) (string, billing.Link) { return "not-a-token", billing.Link{} },
				wantStatus: http.StatusNotFound, wantText: "This signup link isn&#39;t valid",
			},
			{
				name: "forged token signed with another key is not found",
				arrange: func(t *testing.T) (string, billing.Link) {
					l, _ := f.invite(t)
					forged, err := otherKey.Signup(l)
					if err != nil {
						t.Fatal(err)
					}
					return forged, l
				},
				wantStatus: http.StatusNotFound, wantText: "This signup link isn&#39;t valid",
			},
			{
				name: "tampered token carrying another invitation's claims is not found",
				arrange: func(t *testing.T) (string, billing.Link) {
					l, tok := f.invite(t)
					_, other := f.invite(t)
					parts, otherParts := strings.Split(tok, "."), strings.Split(other, ".")
					return parts[0] + "." + otherParts[1] + "." + parts[2], l
				},
				wantStatus: http.StatusNotFound, wantText: "This signup link isn&#39;t valid",
			},
			{
				name: "genuine token of an unknown invitation is not found",
				arrange: func(t *testing.T) (string, billing.Link) {
					tok, err := f.tokens.Signup(billing.Link{ID: "lnk_unknown", CreatedAt: f.clock.Now(), ExpiresAt: f.clock.Now().Add(time.Hour)})
					if err != nil {
						t.Fatal(err)
					}
					return tok, billing.Link{}
				},
				wantStatus: http.StatusNotFound, wantText: "This signup link isn&#39;t valid",
			},
			{
				name: "agreement token is not a signup token",
				arrange: func(t *testing.T) (string, billing.Link) {
					l, agreement := f.linked(t)
					return agreement, f.link(t, l.ID)
				},
				wantStatus: http.StatusNotFound, wantText: "This signup link isn&#39;t valid",
			},
			{
				name: "invitation revoked by the partner is gone",
				arrange: func(t *testing.T) (string, billing.Link) {
					l, tok := f.invite(t)
					if _, err := f.svc.RevokeByPartner(ctx, f.site, l.CustomerReference); err != nil {
						t.Fatal(err)
					}
					return tok, f.link(t, l.ID)
				},
				wantStatus: http.StatusGone, wantText: "This invitation has been cancelled",
			},
			{
				name: "used invitation says so, and nothing of who used it",
				arrange: func(t *testing.T) (string, billing.Link) {
					l, tok := f.invite(t)
					agreementToken(t, f.signUp(t, tok, validForm(tok)))
					return tok, f.link(t, l.ID)
				},
				wantStatus: http.StatusConflict, wantText: "This link has already been used",
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				tok, before := tt.arrange(t)
				s := f.session(t)
				for _, p := range []page{
					f.get(t, "/signup?token="+url.QueryEscape(tok)),
					f.post(t, "/signup", validForm(tok), s, nil),
				} {
					p.status(t, tt.wantStatus)
					p.contains(t, tt.wantText, `role="alert"`)
					p.lacks(t, "Ada Lovelace", "ada@example.com", "12345678", "062-000", `name="consent"`)
				}
				f.unchanged(t, before)
			})
		}
	})
}

func TestExpiredInvitationIsGoneAndChangesNothing(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		l, tok := f.invite(t)
		s := f.openForm(t, tok)

		f.clock.Advance(billing.DefaultInvitationTTL - 2*time.Second)
		f.get(t, "/signup?token="+url.QueryEscape(tok)).status(t, http.StatusOK)

		f.clock.Advance(2 * time.Second) // now exactly expiresAt: expired
		before := f.link(t, l.ID)
		for _, p := range []page{
			f.get(t, "/signup?token="+url.QueryEscape(tok)),
			f.post(t, "/signup", validForm(tok), s, nil),
		} {
			p.status(t, http.StatusGone)
			p.contains(t, "This invitation has expired", "Ask Acme Plumbing Supplies to send you a new link")
		}
		f.unchanged(t, before)
		if got := f.link(t, l.ID).StateAt(f.clock.Now()); got != billing.LinkExpired {
			t.Errorf("link reads %s, want expired", got)
		}
	})
}

func TestSignupFormIsProtectedAgainstCSRF(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		tests := []struct {
			name       string
			send       func(t *testing.T, tok string, s session) page
			wantStatus int
		}{
			{
				name: "without the CSRF cookie it is refused",
				send: func(t *testing.T, tok string, s session) page {
					form := validForm(tok)
					form.Set("csrf", s.token)
					return f.do(t, request{method: http.MethodPost, path: "/signup", form: form})
				},
				wantStatus: http.StatusForbidden,
			},
			{
				name: "without the form's CSRF field it is refused",
				send: func(t *testing.T, tok string, s session) page {
					return f.do(t, request{method: http.MethodPost, path: "/signup", form: validForm(tok), cookie: s.cookie})
				},
				wantStatus: http.StatusForbidden,
			},
			{
				name: "a CSRF field that differs from the cookie is refused",
				send: func(t *testing.T, tok string, s session) page {
					return f.post(t, "/signup", validForm(tok), session{cookie: s.cookie, token: f.session(t).token}, nil)
				},
				wantStatus: http.StatusForbidden,
			},
			{
				name: "a post from another origin is refused",
				send: func(t *testing.T, tok string, s session) page {
					return f.post(t, "/signup", validForm(tok), s, map[string]string{"Origin": "https://evil.example"})
				},
				wantStatus: http.StatusForbidden,
			},
			{
				name: "a cross-site browser post is refused",
				send: func(t *testing.T, tok string, s session) page {
					return f.post(t, "/signup", validForm(tok), s, map[string]string{"Sec-Fetch-Site": "cross-site"})
				},
				wantStatus: http.StatusForbidden,
			},
			{
				name: "a same-origin browser post with the token is accepted",
				send: func(t *testing.T, tok string, s session) page {
					return f.post(t, "/signup", validForm(tok), s, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": f.url})
				},
				wantStatus: http.StatusSeeOther,
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				l, tok := f.invite(t)
				s := f.openForm(t, tok)
				before := f.link(t, l.ID)
				p := tt.send(t, tok, s)
				p.status(t, tt.wantStatus)
				if tt.wantStatus == http.StatusForbidden {
					p.contains(t, "We couldn&#39;t accept this form", "Nothing was changed")
					f.unchanged(t, before)
				}
			})
		}
	})
}

func TestAgreementPage(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		ctx := context.Background()
		revoke := func(t *testing.T, agreement string, s session, header map[string]string) page {
			t.Helper()
			return f.post(t, "/agreement/revoke", url.Values{"token": {agreement}, "confirm": {"yes"}}, s, header)
		}
		open := func(t *testing.T, agreement string) page {
			t.Helper()
			return f.get(t, "/agreement?token="+url.QueryEscape(agreement))
		}
		// confirmation opens the page that asks to confirm a revocation.
		confirmation := func(t *testing.T, agreement string) page {
			t.Helper()
			return f.get(t, "/agreement/revoke?token="+url.QueryEscape(agreement))
		}

		t.Run("says the customer is linked with the site, since when, with the account masked", func(t *testing.T) {
			t.Parallel()
			l, agreement := f.linked(t)
			p := open(t, agreement)
			p.status(t, http.StatusOK)
			p.contains(t, "You're linked with Acme Plumbing Supplies", "••••5678", "062-000",
				sydneyTime(l.LinkedAt), `href="/agreement/revoke?token=`, "Revoke agreement")
			p.lacks(t, "12345678")
		})

		t.Run("the customer revokes the agreement, and the page then says so with no revoke button", func(t *testing.T) {
			t.Parallel()
			l, agreement := f.linked(t)
			s := sessionFrom(t, confirmation(t, agreement))
			p := revoke(t, agreement, s, nil)
			p.status(t, http.StatusSeeOther)
			if got := p.Header.Get("Location"); got != "/agreement?token="+url.QueryEscape(agreement) {
				t.Errorf("Location %q, want the agreement page", got)
			}
			got := f.link(t, l.ID)
			if got.StoredState != billing.LinkRevoked || got.RevokedBy != billing.RevokedByCustomer {
				t.Errorf("stored link %s by %q, want revoked by customer", got.StoredState, got.RevokedBy)
			}
			api, err := f.svc.Link(ctx, f.site, l.CustomerReference)
			if err != nil || api.StateAt(f.clock.Now()) != billing.LinkRevoked || api.RevokedBy != billing.RevokedByCustomer {
				t.Errorf("partner sees %s by %q (%v), want revoked by customer", api.StateAt(f.clock.Now()), api.RevokedBy, err)
			}
			after := open(t, agreement)
			after.status(t, http.StatusOK)
			after.contains(t, "Your agreement with Acme Plumbing Supplies is revoked", "You revoked this direct debit agreement")
			after.lacks(t, `href="/agreement/revoke`, "Revoke agreement</a>")
		})

		t.Run("revoking twice leads to the agreement revoked and changes nothing", func(t *testing.T) {
			t.Parallel()
			l, agreement := f.linked(t)
			s := sessionFrom(t, confirmation(t, agreement))
			first := revoke(t, agreement, s, nil)
			first.status(t, http.StatusSeeOther)
			before := f.link(t, l.ID)
			f.clock.Advance(time.Second) // shared clock: other cases only move forward with it
			again := revoke(t, agreement, s, nil)
			again.status(t, http.StatusSeeOther)
			if got, want := again.Header.Get("Location"), first.Header.Get("Location"); got != want {
				t.Errorf("again to %q, want %q as the first", got, want)
			}
			f.unchanged(t, before)
			confirmation(t, agreement).contains(t, "This agreement is already revoked")
		})

		t.Run("an agreement the site ended says so, with no revoke button", func(t *testing.T) {
			t.Parallel()
			l, agreement := f.linked(t)
			if _, err := f.svc.RevokeByPartner(ctx, f.site, l.CustomerReference); err != nil {
				t.Fatal(err)
			}
			p := open(t, agreement)
			p.status(t, http.StatusOK)
			p.contains(t, "Acme Plumbing Supplies ended this direct debit agreement")
			p.lacks(t, `href="/agreement/revoke`)
		})

		t.Run("an agreement the bank ended says so, not that the site did", func(t *testing.T) {
			t.Parallel()
			l, agreement := f.linked(t)
			if _, err := f.store.RevokeLink(ctx, l.ID, billing.RevokedByBank, f.clock.Now()); err != nil {
				t.Fatal(err)
			}
			p := open(t, agreement)
			p.status(t, http.StatusOK)
			p.contains(t, "your bank returned a debit made under it, saying the account cannot be debited")
			p.lacks(t, "Acme Plumbing Supplies ended this direct debit agreement")
			p.lacks(t, `href="/agreement/revoke`)
		})

		for _, tt := range []struct {
			name   string
			header map[string]string
			noCSRF bool
		}{
			{name: "revoking without the CSRF field is refused", noCSRF: true},
			{name: "revoking from another origin is refused", header: map[string]string{"Origin": "https://evil.example"}},
			{name: "revoking by a cross-site browser post is refused", header: map[string]string{"Sec-Fetch-Site": "cross-site"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				l, agreement := f.linked(t)
				s := sessionFrom(t, confirmation(t, agreement))
				if tt.noCSRF {
					s.token = ""
				}
				before := f.link(t, l.ID)
				revoke(t, agreement, s, tt.header).status(t, http.StatusForbidden)
				f.unchanged(t, before)
			})
		}

		otherKey := token.NewIssuer(billing.SigningKey{ID: "key_other", Secret: []byte(billing.RandomToken(32))}, f.clock.Now)
		for _, tt := range []struct {
			name       string
			token      func(t *testing.T) (string, billing.Link)
			wantStatus int
		}{
			{name: "missing agreement token is a bad request", token: func(t *testing.T) (string, billing.Link) { return "", billing.Link{} }, wantStatus: http.StatusBadRequest},
			{name: "malformed agreement token is not found", token: func(t *testing.T) (string, billing.Link) { return "abc.def.ghi", billing.Link{} }, wantStatus: http.StatusNotFound},
			{name: "forged agreement token is not found", token: func(t *testing.T) (string, billing.Link) {
				l, _ := f.linked(t)
				forged, err := otherKey.Agreement(l)
				if err != nil {
					t.Fatal(err)
				}
				return forged, f.link(t, l.ID)
			}, wantStatus: http.StatusNotFound},
			{name: "signup token is not an agreement token", token: func(t *testing.T) (string, billing.Link) {
				l, tok := f.invite(t)
				agreementToken(t, f.signUp(t, tok, validForm(tok)))
				return tok, f.link(t, l.ID)
			}, wantStatus: http.StatusNotFound},
			{name: "genuine agreement token of an unknown link is not found", token: func(t *testing.T) (string, billing.Link) {
				tok, err := f.tokens.Agreement(billing.Link{ID: "lnk_unknown", LinkedAt: f.clock.Now()})
				if err != nil {
					t.Fatal(err)
				}
				return tok, billing.Link{}
			}, wantStatus: http.StatusNotFound},
			{name: "agreement token of an invitation never signed up is not found", token: func(t *testing.T) (string, billing.Link) {
				l, _ := f.invite(t)
				tok, err := f.tokens.Agreement(l)
				if err != nil {
					t.Fatal(err)
				}
				return tok, f.link(t, l.ID)
			}, wantStatus: http.StatusNotFound},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				tok, before := tt.token(t)
				s := f.session(t)
				for _, p := range []page{open(t, tok), confirmation(t, tok), revoke(t, tok, s, nil)} {
					p.status(t, tt.wantStatus)
					p.contains(t, `role="alert"`)
					p.lacks(t, "Ada Lovelace", "ada@example.com", "5678")
				}
				f.unchanged(t, before)
			})
		}
	})
}

func TestEveryPageCarriesTheSecurityHeaders(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		_, tok := f.invite(t)
		_, agreement := f.linked(t)
		s := f.session(t)
		pages := map[string]page{
			"signup form":         f.get(t, "/signup?token="+url.QueryEscape(tok)),
			"form with errors":    f.post(t, "/signup", url.Values{"token": {tok}}, f.openForm(t, tok), nil),
			"agreement page":      f.get(t, "/agreement?token="+url.QueryEscape(agreement)),
			"error page":          f.get(t, "/signup?token=forged"),
			"CSRF refusal":        f.do(t, request{method: http.MethodPost, path: "/signup", form: validForm(tok)}),
			"unknown page":        f.get(t, "/agreement/nowhere"),
			"method not allowed":  f.do(t, request{method: http.MethodDelete, path: "/signup"}),
			"redirect after post": f.post(t, "/signup", validForm(tok), s, nil),
		}
		for name, p := range pages {
			t.Run(name, func(t *testing.T) {
				csp := p.Header.Get("Content-Security-Policy")
				for _, directive := range []string{"default-src 'none'", "style-src 'sha256-", "form-action 'self'", "frame-ancestors 'none'"} {
					if !strings.Contains(csp, directive) {
						t.Errorf("Content-Security-Policy %q lacks %q", csp, directive)
					}
				}
				for header, want := range map[string]string{
					"X-Content-Type-Options": "nosniff",
					"Referrer-Policy":        "same-origin",
					"Cache-Control":          "no-store",
				} {
					if got := p.Header.Get(header); got != want {
						t.Errorf("%s = %q, want %q", header, got, want)
					}
				}
				if p.Status != http.StatusSeeOther && !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
					t.Errorf("Content-Type %q, want an HTML page", p.Header.Get("Content-Type"))
				}
			})
		}

		t.Run("the inline stylesheet is the one the policy's hash allows", func(t *testing.T) {
			p := pages["signup form"]
			m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(p.Body)
			if m == nil {
				t.Fatal("page has no inline style")
			}
			sum := sha256.Sum256([]byte(m[1]))
			hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
			if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "style-src "+hash) {
				t.Errorf("Content-Security-Policy %q does not allow the page's style %s", csp, hash)
			}
		})
	})
}

func TestUnknownPathsAndWrongMethods(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		tests := []struct {
			name, method, path string
			wantStatus         int
			wantAllow          string
		}{
			{name: "unknown page under /agreement/ is not found", method: http.MethodGet, path: "/agreement/settings", wantStatus: http.StatusNotFound},
			{name: "DELETE of the revoke action is not allowed", method: http.MethodDelete, path: "/agreement/revoke", wantStatus: http.StatusMethodNotAllowed, wantAllow: "GET, HEAD, POST"},
			{name: "PUT of the signup page is not allowed", method: http.MethodPut, path: "/signup", wantStatus: http.StatusMethodNotAllowed, wantAllow: "GET, HEAD, POST"},
			{name: "POST of the agreement page is not allowed", method: http.MethodPost, path: "/agreement", wantStatus: http.StatusMethodNotAllowed, wantAllow: "GET, HEAD"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				p := f.do(t, request{method: tt.method, path: tt.path})
				p.status(t, tt.wantStatus)
				p.contains(t, `role="alert"`)
				if got := p.Header.Get("Allow"); got != tt.wantAllow {
					t.Errorf("Allow %q, want %q", got, tt.wantAllow)
				}
			})
		}
	})
}

// sydneyTime is how the pages show a moment: in the site's zone, Australia/Sydney for now.
func sydneyTime(t time.Time) string {
	loc, err := time.LoadLocation("Australia/Sydney")
	if err != nil {
		panic(err)
	}
	return t.In(loc).Format("2 January 2006 at 3:04 pm MST")
}

var hiddenPattern = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)

// unescape reads an attribute value as html/template wrote it.
func unescape(s string) string { return html.UnescapeString(s) }
