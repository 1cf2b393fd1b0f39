package web_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
)

// browserNames are the headless Chromium builds the test looks for, best first. Debian's
// chromium-headless-shell is what CI installs.
var browserNames = []string{"/usr/bin/chromium-headless-shell", "chromium-headless-shell", "chromium", "chromium-browser"}

// artifactsEnv overrides where the screenshots go (by default artifacts/screenshots at the
// repository root).
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
		root, err := filepath.Abs("..") // tests run in web/; the module root is its parent
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
			t.Fatalf("repository root %s has no go.mod; set %s", root, artifactsEnv)
		}
		dir = filepath.Join(root, "artifacts")
	}
	dir = filepath.Join(dir, "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create %s: %v", dir, err)
	}
	return dir
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
	ctx, cancelTimeout := context.WithTimeout(ctx, time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel() })
	tb := &tab{t: t, ctx: ctx, shotsDir: shotsDir, prefix: prefix}
	tb.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	return tb
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

// screenshot saves the whole page as a PNG.
func (b *tab) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.shotsDir, b.prefix+"-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("save screenshot: %v", err)
	}
	b.t.Logf("screenshot %s", path)
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

// TestBrowserSignupAndRevocation drives the customer's pages in headless Chromium at a phone's
// size, against the whole server: the partner mints an invitation over the API, the customer
// signs up (after correcting mistakes), the API says linked; the customer revokes, the API says
// revoked by the customer; expired and forged links show error pages.
func TestBrowserSignupAndRevocation(t *testing.T) {
	browser := startBrowser(t)
	shots := screenshotDir(t)
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := apptest.Start(t, engine)
			accessToken := s.Token(t, s.Partner)
			signupURL := invite(t, s, accessToken, "ACME-001")
			b := newTab(t, browser, shots, engine)

			// The customer opens the link the partner sent.
			if status := b.load(chromedp.Navigate(signupURL)); status != http.StatusOK {
				t.Fatalf("signup page status %d, want 200", status)
			}
			b.see("h1", "Set up payments to "+s.Site.Name)
			b.see("#agreement-text", "Australian dollars (AUD)")
			b.screenshot("1-signup-form")

			// A first try with mistakes and no consent: each is shown beside its field.
			b.do(
				chromedp.SendKeys(chromedp.CSS("#name"), "Ada Lovelace"),
				chromedp.SendKeys(chromedp.CSS("#email"), "ada@"),
				chromedp.SendKeys(chromedp.CSS("#bsb"), "062-00"),
				chromedp.SendKeys(chromedp.CSS("#accountNumber"), "12345678"),
			)
			if status := b.load(chromedp.Click(chromedp.CSS(`button[type="submit"]`))); status != http.StatusBadRequest {
				t.Fatalf("submit with mistakes: status %d, want 400", status)
			}
			b.see("#email-error", "Enter a valid email address")
			b.see("#bsb-error", "Enter a BSB of 6 digits")
			b.see("#consent-error", "Tick the box")
			if got, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS("#name"))); err != nil || got != "Ada Lovelace" {
				t.Errorf("name field after errors = %q (%v), want what was typed", got, err)
			}
			b.screenshot("2-form-with-errors")
			if c := customerLink(t, s, accessToken, "ACME-001"); c.Data.State != "invited" {
				t.Errorf("after the rejected form the API says %q, want invited", c.Data.State)
			}

			// Corrected, with consent: the confirmation page.
			b.do(
				chromedp.SetValue(chromedp.CSS("#email"), "ada@example.com"),
				chromedp.SetValue(chromedp.CSS("#bsb"), "062-000"),
				chromedp.Click(chromedp.CSS("#consent")),
			)
			if status := b.load(chromedp.Click(chromedp.CSS(`button[type="submit"]`))); status != http.StatusOK {
				t.Fatalf("submit: status %d, want 200 after the redirect", status)
			}
			b.see("h1", "You're linked with "+s.Site.Name)
			b.see("dl", "••••5678")
			b.screenshot("3-agreement")
			if c := customerLink(t, s, accessToken, "ACME-001"); c.Data.State != "linked" {
				t.Errorf("after signup the API says %q, want linked", c.Data.State)
			}

			// The customer revokes from the agreement page.
			if status := b.load(chromedp.Click(chromedp.CSS(`form[action="/agreement/revoke"] button`))); status != http.StatusOK {
				t.Fatalf("revoke: status %d, want 200 after the redirect", status)
			}
			b.see("h1", "is revoked")
			b.see("main", "You revoked this direct debit agreement")
			if n, err := chromedp.Run(b.ctx, chromedp.Nodes(chromedp.CSS("button"), chromedp.AtLeast(0))); err != nil || len(n) != 0 {
				t.Errorf("revoked page has %d buttons (%v), want none", len(n), err)
			}
			b.screenshot("4-agreement-revoked")
			if c := customerLink(t, s, accessToken, "ACME-001"); c.Data.State != "revoked" || c.Data.RevokedBy != "customer" {
				t.Errorf("after revocation the API says %q by %q, want revoked by customer", c.Data.State, c.Data.RevokedBy)
			}

			// A forged link, and an invitation left past its expiry, show error pages.
			if status := b.load(chromedp.Navigate(s.URL + "/signup?token=eyJhbGciOiJIUzI1NiJ9.e30.forged")); status != http.StatusNotFound {
				t.Errorf("forged link: status %d, want 404", status)
			}
			b.see("h1", "This signup link isn't valid")
			late := invite(t, s, accessToken, "ACME-002")
			s.Clock.Advance(billing.DefaultInvitationTTL + time.Second)
			if status := b.load(chromedp.Navigate(late)); status != http.StatusGone {
				t.Errorf("expired link: status %d, want 410", status)
			}
			b.see("h1", "This invitation has expired")
			b.see("main", "Ask "+s.Site.Name+" to send you a new link")
			b.screenshot("5-error-expired")
		})
	}
}
