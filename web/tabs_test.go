package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/pyng/receivables/storage"
)

// TestBrowserAPageOpenedAgainFromTheEmailLeavesTheFormsOpenWorking: a customer opens a link from
// their email (a page of another site) in one tab, then again, or another of the emails' links,
// in a second tab, and goes back to the first to send its form. Under a SameSite=Strict CSRF
// cookie, each page opened from the email arrived without it and was given a new one, and the
// first tab's form, echoing the old, was refused: "We couldn't accept this form", and what the
// customer had typed was lost. Each tab's form is sent here after the other tab was opened.
func TestBrowserAPageOpenedAgainFromTheEmailLeavesTheFormsOpenWorking(t *testing.T) {
	browser := startBrowser(t)
	f := setup(t, storage.EngineSQLite)
	l, tok := f.invite(t)
	_, agreement := f.linked(t)
	links := map[string]string{
		"signup":    f.url + "/signup?token=" + url.QueryEscape(tok),
		"agreement": f.url + "/agreement?token=" + url.QueryEscape(agreement),
	}
	// The webmail is another site: localhost, where the pages are at 127.0.0.1.
	mail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>Inbox</title><a id="open" href="%s">Open</a>`, links[r.URL.Query().Get("link")])
	}))
	t.Cleanup(mail.Close)
	webmail := strings.Replace(mail.URL, "127.0.0.1", "localhost", 1)
	first := newTab(t, browser, t.TempDir(), "tabs")
	second, cancel := chromedp.NewContext(first.ctx) // a second tab of the same browser, with its cookies
	t.Cleanup(cancel)
	other := &tab{t: t, ctx: second, shotsDir: first.shotsDir, prefix: first.prefix}
	open := func(b *tab, link string) {
		t.Helper()
		b.load(chromedp.Navigate(webmail + "/?link=" + link))
		if status := b.load(chromedp.Click(chromedp.CSS("#open"))); status != http.StatusOK {
			t.Fatalf("the %s link from the email: status %d, want 200", link, status)
		}
	}

	for _, again := range []string{"signup", "agreement"} {
		t.Run("the signup form, then the "+again+" link in another tab", func(t *testing.T) {
			open(first, "signup")
			open(other, again)
			first.do(adaFillsTheSignupForm...)
			if status := first.load(chromedp.Click(chromedp.CSS(`button[type="submit"]`))); status != http.StatusOK {
				t.Fatalf("the first tab's form: status %d (%s), want 200, the review", status, first.text("h1"))
			}
			first.see("h1", "Check your details")
		})
	}
	t.Run("the agreement page, then the signup link in another tab", func(t *testing.T) {
		open(first, "agreement")
		open(other, "signup")
		if status := first.load(chromedp.Click(chromedp.CSS("#revoke"))); status != http.StatusOK {
			t.Fatalf("revoke: status %d, want 200", status)
		}
		open(other, "agreement")
		if status := first.load(chromedp.Click(chromedp.CSS(`form[action="/agreement/revoke"] button`))); status != http.StatusOK {
			t.Fatalf("the first tab's revocation: status %d (%s), want 200", status, first.text("h1"))
		}
		first.see("h1", "is revoked")
	})
	f.unchanged(t, l)
}
