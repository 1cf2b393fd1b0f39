package web_test

import (
	"context"
	_ "embed"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/smtptest"
	"github.com/pyng/receivables/storage"
)

// browserNames are the headless Chromium builds the test looks for, best first. Debian's
// chromium-headless-shell is what CI installs.
var browserNames = []string{"/usr/bin/chromium-headless-shell", "chromium-headless-shell", "chromium", "chromium-browser"}

// artifactsEnv names the directory the test's artifacts go to (screenshots/ in it); by default
// a temporary directory, which the test keeps and logs. .ci/run sets it to .ci/artifacts.
const artifactsEnv = "PYNG_ARTIFACTS_DIR"

// findBrowser returns the path of a headless Chromium, or fails the test: the end-to-end test is
// never skipped.
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range browserNames {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Fatalf("no headless Chromium found (looked for %s); install it with: apt-get install -y chromium-headless-shell",
		strings.Join(browserNames, ", "))
	return ""
}

// screenshotDir returns the directory for screenshots, created if missing.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(artifactsEnv)
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "pyng-artifacts-"); err != nil {
			t.Fatal(err)
		}
	}
	dir = filepath.Join(dir, "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create %s: %v", dir, err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// axeSource is axe-core, vendored by testdata/axe/update.sh.
//
//go:embed testdata/axe/axe.min.js
var axeSource string

// The widths the pages are captured at: a phone's and a desktop's.
var viewports = []struct {
	name          string
	width, height int64
	mobile        bool
}{
	{"phone", 390, 844, true},
	{"desktop", 1280, 900, false},
}

// startBrowser starts one headless Chromium for the test and its subtests.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(findBrowser(t)),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", findBrowser(t), err)
	}
	return ctx
}

// tab is one browser tab with its own cookies, at a phone's size, for one test.
type tab struct {
	t        *testing.T
	ctx      context.Context
	shotsDir string
	prefix   string
}

func newTab(t *testing.T, browser context.Context, shotsDir, prefix string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	// A bound against a browser that hangs, not a measure: a tab's pages, screenshots and
	// accessibility checks take seconds, and on a loaded two-core machine over a minute.
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel() })
	tb := &tab{t: t, ctx: ctx, shotsDir: shotsDir, prefix: prefix}
	tb.viewport(0)
	return tb
}

// adaFillsTheSignupForm fills a signup form as an individual would, ticking both declarations.
var adaFillsTheSignupForm = []chromedp.Action[chromedp.Void]{
	chromedp.Click(chromedp.CSS("#customerType-individual")),
	chromedp.SendKeys(chromedp.CSS("#name"), "Ada Lovelace"),
	chromedp.SendKeys(chromedp.CSS("#email"), "ada@example.com"),
	chromedp.SendKeys(chromedp.CSS("#accountName"), "A LOVELACE"),
	chromedp.SendKeys(chromedp.CSS("#bsb"), "062-000"),
	chromedp.SendKeys(chromedp.CSS("#accountNumber"), "12345678"),
	chromedp.Click(chromedp.CSS("#authorised")),
	chromedp.Click(chromedp.CSS("#consent")),
}

// do runs steps, failing the test on error.
func (b *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// load runs steps that load a page (navigate, submit) and returns its HTTP status.
func (b *tab) load(steps ...chromedp.Action[chromedp.Void]) int {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, steps...)
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return int(resp.Status)
}

// text returns the text of the first element sel matches.
func (b *tab) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

// see fails the test unless the element sel matches shows want.
func (b *tab) see(sel, want string) {
	b.t.Helper()
	if got := b.text(sel); !strings.Contains(got, want) {
		b.t.Errorf("%s shows %q, want %q", sel, got, want)
	}
}

// viewport sets the tab to the size of viewports[i].
func (b *tab) viewport(i int) {
	b.t.Helper()
	v := viewports[i]
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
	if v.mobile {
		opts = []chromedp.EmulateViewportOption{chromedp.EmulateMobile, chromedp.EmulateScale(2)}
	}
	b.do(chromedp.EmulateViewport(v.width, v.height, opts...))
}

// check checks the page as it stands: axe-core finds no accessibility violation, and a PNG of
// the whole page at each width goes to the artifacts. The tab is left at a phone's width.
func (b *tab) check(name string) {
	b.t.Helper()
	b.accessible(name)
	for i, v := range viewports {
		b.viewport(i)
		png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			b.t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(b.shotsDir, b.prefix+"-"+name+"-"+v.name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			b.t.Fatalf("save screenshot: %v", err)
		}
	}
	b.viewport(0)
}

// violation is what axe-core reports of one rule the page breaks.
type violation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// accessible runs axe-core's every rule (WCAG 2.x A and AA, and its best practices) on the page,
// and fails the test on any violation. axe is evaluated through the DevTools protocol, which the
// pages' Content-Security-Policy (no scripts at all) does not govern.
func (b *tab) accessible(name string) {
	b.t.Helper()
	for _, v := range b.violations(name) {
		b.t.Errorf("%s: accessibility violation %s (%s): %s, at %s", name, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "; "))
	}
}

// violations runs axe-core on the page and returns what it finds.
func (b *tab) violations(name string) []violation {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Evaluate[chromedp.Void](axeSource)); err != nil {
		b.t.Fatalf("inject axe-core: %v", err)
	}
	found, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]violation](`axe.run(document, {resultTypes: ["violations"]}).then(r =>
		r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help, nodes: v.nodes.map(n => n.target.join(" "))})))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("run axe-core on %s: %v", name, err)
	}
	return found
}

// value returns the value of the input sel matches.
func (b *tab) value(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("browser: value of %s: %v", sel, err)
	}
	return v
}

// customer is a customer link as the partner API shows it.
type customer struct {
	Data struct {
		CustomerReference string `json:"customerReference"`
		State             string `json:"state"`
		RevokedBy         string `json:"revokedBy"`
		SignupURL         string `json:"signupUrl"`
	} `json:"data"`
}

// invite mints an invitation over the partner API and returns its signupUrl.
func invite(t *testing.T, s *apptest.Server, accessToken, reference string) string {
	t.Helper()
	resp := s.Do(t, apptest.Request{Method: http.MethodPost, Path: "/billing/sites/" + s.Site.ID + "/customers/invitations",
		Token: accessToken, Body: map[string]string{"customerReference": reference}})
	if resp.Status != http.StatusCreated {
		t.Fatalf("invite %s: status %d: %s", reference, resp.Status, resp.Body)
	}
	var c customer
	resp.JSON(t, &c)
	return c.Data.SignupURL
}

// email waits for the nth email to the customer (ada@example.com) and reads it: its subject
// is subject, and neither part shows the whole account number.
func email(t *testing.T, inbox *smtptest.Server, n int, subject string) smtptest.Parts {
	t.Helper()
	m := inbox.Wait(t, n, 30*time.Second)[n-1]
	if len(m.To) != 1 || m.To[0] != "ada@example.com" {
		t.Errorf("email %d went to %v, want the address the customer gave", n, m.To)
	}
	p := m.MustRead(t)
	if p.Subject != subject {
		t.Errorf("email %d: subject %q, want %q", n, p.Subject, subject)
	}
	if strings.Contains(p.Text, "12345678") || strings.Contains(p.HTML, "12345678") {
		t.Errorf("email %d shows the whole account number", n)
	}
	return p
}

// customerLink reads a customer's link over the partner API.
func customerLink(t *testing.T, s *apptest.Server, accessToken, reference string) customer {
	t.Helper()
	resp := s.Do(t, apptest.Request{Method: http.MethodGet, Path: "/billing/sites/" + s.Site.ID + "/customers/" + reference, Token: accessToken})
	if resp.Status != http.StatusOK {
		t.Fatalf("get customer %s: status %d: %s", reference, resp.Status, resp.Body)
	}
	var c customer
	resp.JSON(t, &c)
	return c
}

// TestBrowserSignupAndRevocation drives the customer's pages in headless Chromium, against the
// whole server: the partner mints an invitation over the API; the customer signs up for a
// business (after correcting mistakes, each shown beside its field), checks the details on the
// review page, goes back to change them, and confirms; the API says linked. The confirmation
// email arrives at an SMTP server on loopback; the customer opens its management link, asks there
// for a new link by email and opens the one the second email brings. The customer asks to
// revoke, is asked to confirm, keeps the agreement, then revokes it; the API says revoked by the
// customer, and the revocation email arrives. Expired and forged links show error pages. Every page passes axe-core with no
// violation and is captured at a phone's and a desktop's width.
func TestBrowserSignupAndRevocation(t *testing.T) {
	browser := startBrowser(t)
	shots := screenshotDir(t)
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			inbox := smtptest.Start(t)
			s := apptest.Start(t, engine, apptest.Options{SMTPURL: inbox.URL(), ManagementLinkTTL: 30 * 24 * time.Hour})
			accessToken := s.Token(t, s.Partner)
			signupURL := invite(t, s, accessToken, "ACME-001")
			b := newTab(t, browser, shots, engine)
			state := func(want string) {
				t.Helper()
				if c := customerLink(t, s, accessToken, "ACME-001"); c.Data.State != want {
					t.Errorf("the API says %q, want %q", c.Data.State, want)
				}
			}

			// The customer opens the link the partner sent.
			if status := b.load(chromedp.Navigate(signupURL)); status != http.StatusOK {
				t.Fatalf("signup page status %d, want 200", status)
			}
			b.see("h1", "Set up payments to "+s.Site.Name)
			b.see("#agreement-text", "Australian dollars (AUD)")
			b.check("1-signup-form")

			// A first try with mistakes and no ticks: each is shown beside its field.
			b.do(
				chromedp.Click(chromedp.CSS("#customerType-business")),
				chromedp.SendKeys(chromedp.CSS("#name"), "Ada Lovelace"),
				chromedp.SendKeys(chromedp.CSS("#email"), "ada@"),
				chromedp.SendKeys(chromedp.CSS("#businessName"), "Analytical Engines Pty Ltd"),
				chromedp.SendKeys(chromedp.CSS("#abn"), "51 824 753 557"),
				chromedp.SendKeys(chromedp.CSS("#accountName"), "ANALYTICAL ENGINES"),
				chromedp.SendKeys(chromedp.CSS("#bsb"), "062-00"),
				chromedp.SendKeys(chromedp.CSS("#accountNumber"), "12345678"),
			)
			if status := b.load(chromedp.Click(chromedp.CSS(`button[type="submit"]`))); status != http.StatusBadRequest {
				t.Fatalf("submit with mistakes: status %d, want 400", status)
			}
			b.see("#email-error", "Enter a valid email address")
			b.see("#abn-error", "Enter the business's ABN")
			b.see("#bsb-error", "Enter a BSB of 6 digits")
			b.see("#authorised-error", "authorised to operate this account")
			b.see("#consent-error", "Tick the box")
			b.see(".summary", "Enter a valid email address")
			if got := b.value("#name"); got != "Ada Lovelace" {
				t.Errorf("name field after errors = %q, want what was typed", got)
			}
			b.check("2-form-with-errors")
			state("invited")

			// Corrected, with the boxes ticked: the review, where nothing is stored yet.
			b.do(
				chromedp.SetValue(chromedp.CSS("#email"), "ada@example.com"),
				chromedp.SetValue(chromedp.CSS("#abn"), "51 824 753 556"),
				chromedp.SetValue(chromedp.CSS("#bsb"), "062-000"),
				chromedp.Click(chromedp.CSS("#authorised")),
				chromedp.Click(chromedp.CSS("#consent")),
			)
			if status := b.load(chromedp.Click(chromedp.CSS(`button[type="submit"]`))); status != http.StatusOK {
				t.Fatalf("submit for review: status %d, want 200", status)
			}
			b.see("h1", "Check your details")
			b.see("#review-business", "Analytical Engines Pty Ltd")
			b.see("#review-abn", "51 824 753 556")
			b.see("#review-bsb", "062-000")
			b.see("#review-account", "12345678")
			b.check("3-review")
			state("invited")

			// Back to change the account name, then to the review again.
			if status := b.load(chromedp.Click(chromedp.CSS("#edit"))); status != http.StatusOK {
				t.Fatalf("change my details: status %d, want 200", status)
			}
			if got := b.value("#businessName"); got != "Analytical Engines Pty Ltd" {
				t.Errorf("business name back on the form = %q", got)
			}
			b.do(chromedp.SetValue(chromedp.CSS("#accountName"), "ANALYTICAL ENGINES PTY LTD"))
			if status := b.load(chromedp.Click(chromedp.CSS(`button[type="submit"]`))); status != http.StatusOK {
				t.Fatalf("submit for review again: status %d, want 200", status)
			}
			b.see("#review-account-name", "ANALYTICAL ENGINES PTY LTD")
			state("invited")

			// Confirmed: the agreement page.
			if status := b.load(chromedp.Click(chromedp.CSS("#confirm"))); status != http.StatusOK {
				t.Fatalf("confirm: status %d, want 200 after the redirect", status)
			}
			b.see("h1", "You're linked with "+s.Site.Name)
			b.see("dl", "••••5678")
			b.see("dl", "51 824 753 556")
			b.check("4-agreement")
			state("linked")

			// The confirmation email arrives, with the management link in its text part; the
			// customer opens it.
			confirmation := email(t, inbox, 1, "Your direct debit agreement with "+s.Site.Name)
			manage := confirmation.Link(t, s.URL+"/agreement?token=")
			if status := b.load(chromedp.Navigate(manage)); status != http.StatusOK {
				t.Fatalf("the email's management link: status %d, want 200", status)
			}
			b.see("h1", "You're linked with "+s.Site.Name)
			b.see("dl", "••••5678")

			// From that page the customer asks for a new link by email, and follows it.
			s.Clock.Advance(time.Minute) // a new token, not the first one again
			b.do(chromedp.SendKeys(chromedp.CSS("#email-link-address"), "ada@example.com"))
			if status := b.load(chromedp.Click(chromedp.CSS(`form[action="/agreement/email-link"] button`))); status != http.StatusOK {
				t.Fatalf("email me my management link: status %d, want 200", status)
			}
			b.see("h1", "Check your email")
			b.check("5-email-link-sent")
			again := email(t, inbox, 2, "Your link to manage your agreement with "+s.Site.Name)
			manageAgain := again.Link(t, s.URL+"/agreement?token=")
			if manageAgain == manage {
				t.Errorf("the second email has the first email's link")
			}
			if status := b.load(chromedp.Navigate(manageAgain)); status != http.StatusOK {
				t.Fatalf("the second email's management link: status %d, want 200", status)
			}
			b.see("h1", "You're linked with "+s.Site.Name)
			state("linked")

			// Revoking asks first; the customer keeps the agreement, then revokes it.
			if status := b.load(chromedp.Click(chromedp.CSS("#revoke"))); status != http.StatusOK {
				t.Fatalf("revoke: status %d, want 200", status)
			}
			b.see("h1", "Revoke your agreement with "+s.Site.Name+"?")
			b.check("6-revoke-confirmation")
			state("linked")
			if status := b.load(chromedp.Click(chromedp.CSS(".back a"))); status != http.StatusOK {
				t.Fatalf("keep my agreement: status %d, want 200", status)
			}
			b.see("h1", "You're linked with "+s.Site.Name)
			state("linked")
			b.load(chromedp.Click(chromedp.CSS("#revoke")))
			if status := b.load(chromedp.Click(chromedp.CSS(`form[action="/agreement/revoke"] button`))); status != http.StatusOK {
				t.Fatalf("confirm the revocation: status %d, want 200 after the redirect", status)
			}
			b.see("h1", "is revoked")
			b.see("main", "You revoked this direct debit agreement")
			if n, err := chromedp.Run(b.ctx, chromedp.Nodes(chromedp.CSS("button, a.button"), chromedp.AtLeast(0))); err != nil || len(n) != 0 {
				t.Errorf("revoked page has %d buttons (%v), want none", len(n), err)
			}
			b.check("7-agreement-revoked")
			if c := customerLink(t, s, accessToken, "ACME-001"); c.Data.State != "revoked" || c.Data.RevokedBy != "customer" {
				t.Errorf("after revocation the API says %q by %q, want revoked by customer", c.Data.State, c.Data.RevokedBy)
			}
			ended := email(t, inbox, 3, "Your direct debit agreement with "+s.Site.Name+" has ended")
			if !strings.Contains(ended.Text, "when you revoked it") || strings.Contains(ended.Text, "/agreement?token=") {
				t.Errorf("the revocation confirmation:\n%s", ended.Text)
			}

			// A forged link, and an invitation left past its expiry, show error pages.
			if status := b.load(chromedp.Navigate(s.URL + "/signup?token=eyJhbGciOiJIUzI1NiJ9.e30.forged")); status != http.StatusNotFound {
				t.Errorf("forged link: status %d, want 404", status)
			}
			b.see("h1", "This signup link isn't valid")
			b.check("8-error-forged")
			late := invite(t, s, accessToken, "ACME-002")
			s.Clock.Advance(billing.DefaultInvitationTTL + time.Second)
			if status := b.load(chromedp.Navigate(late)); status != http.StatusGone {
				t.Errorf("expired link: status %d, want 410", status)
			}
			b.see("h1", "This invitation has expired")
			b.see("main", "Ask "+s.Site.Name+" to send you a new link")
			b.check("9-error-expired")

			// The check can fail: the same page, with an unlabelled input and an image without
			// text added, breaks two of axe's rules.
			b.do(chromedp.Evaluate[chromedp.Void](`document.querySelector("main").insertAdjacentHTML("beforeend",
				'<input type="text"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">')`))
			var ids []string
			for _, v := range b.violations("a broken page") {
				ids = append(ids, v.ID)
			}
			if !slices.Contains(ids, "label") || !slices.Contains(ids, "image-alt") {
				t.Errorf("axe-core found %v on a page with an unlabelled input and an image without text; want label and image-alt", ids)
			}
		})
	}
}

// TestBrowserFormsPassTheOriginCheckWithoutSecFetchSite: a browser that sends no Sec-Fetch-Site
// (Safari before 16.4) has its form posts judged by their Origin header alone. Under a
// no-referrer policy a browser sends "Origin: null" with a form post, which the check refuses
// (every post of such a Safari was a 403); under the pages' same-origin policy it sends the
// pages' own origin. Chromium posts each of the pages' forms here, through a server that drops
// Sec-Fetch-Site before the pages see it, as such a browser would have sent them.
func TestBrowserFormsPassTheOriginCheckWithoutSecFetchSite(t *testing.T) {
	browser := startBrowser(t)
	var mu sync.Mutex
	var origins []string // of the posts the server received, in order
	f := setupWith(t, storage.EngineSQLite, setupOptions{wrap: func(pages http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				mu.Lock()
				origins = append(origins, r.Header.Get("Origin"))
				mu.Unlock()
			}
			r.Header.Del("Sec-Fetch-Site")
			pages.ServeHTTP(w, r)
		})
	}})
	lastOrigin := func() (string, int) {
		mu.Lock()
		defer mu.Unlock()
		if len(origins) == 0 {
			return "", 0
		}
		return origins[len(origins)-1], len(origins)
	}
	_, signup := f.invite(t)
	b := newTab(t, browser, t.TempDir(), "origin")
	if status := b.load(chromedp.Navigate(f.url + "/signup?token=" + url.QueryEscape(signup))); status != http.StatusOK {
		t.Fatalf("signup page status %d, want 200", status)
	}
	var agreementURL string
	for i, step := range []struct {
		name string
		// before brings the tab to the form's page, when the last step did not leave it there.
		before  func()
		fill    []chromedp.Action[chromedp.Void]
		submit  string
		heading string
	}{
		{name: "the signup form", fill: adaFillsTheSignupForm, submit: `form[action="/signup"] button[type="submit"]`, heading: "Check your details"},
		{name: "the review's confirmation", submit: "#confirm", heading: "You're linked with"},
		{name: "email me my management link", before: func() {
			var err error
			if agreementURL, err = chromedp.Run(b.ctx, chromedp.Location()); err != nil {
				t.Fatalf("browser: location: %v", err)
			}
		}, fill: []chromedp.Action[chromedp.Void]{
			chromedp.SendKeys(chromedp.CSS("#email-link-address"), "ada@example.com"),
		}, submit: `form[action="/agreement/email-link"] button`, heading: "Check your email"},
		{name: "the revocation", before: func() {
			b.load(chromedp.Navigate(agreementURL))
			b.load(chromedp.Click(chromedp.CSS("#revoke")))
		}, submit: `form[action="/agreement/revoke"] button`, heading: "is revoked"},
	} {
		if step.before != nil {
			step.before()
		}
		b.do(step.fill...)
		status := b.load(chromedp.Click(chromedp.CSS(step.submit)))
		origin, posts := lastOrigin()
		if posts != i+1 || origin != f.url {
			t.Errorf("%s: the server received %d posts, the last with Origin %q; want %d, with %q", step.name, posts, origin, i+1, f.url)
		}
		if status != http.StatusOK {
			t.Fatalf("%s: status %d, want 200 (a redirect's page for a confirmation)", step.name, status)
		}
		b.see("h1", step.heading)
	}
}
