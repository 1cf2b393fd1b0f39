package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/storage"
)

// TestBrowserEveryOtherPageIsAccessible runs axe-core, and the captures at a phone's and a
// desktop's width, on the pages and states the walk of TestBrowserSignupAndRevocation does not
// reach: a BECS site's service agreement (its debit user, ABN and user ID), the review and the
// agreement page of the longest values the form takes, without a space, the page of a signup
// link already used and of one cancelled, the "email me my management link" form refusing an
// address and refusing for too many requests, a management link expired, an agreement the site
// ended, one already revoked, one whose details were erased, and the not-found and wrong-method
// pages. At the narrowest phone's width (320 CSS pixels) nothing of any of them is wider than the
// screen, which would hide a part of it from a customer who cannot scroll sideways.
func TestBrowserEveryOtherPageIsAccessible(t *testing.T) {
	browser := startBrowser(t)
	f := setupWith(t, storage.EngineSQLite, setupOptions{managementLinkTTL: time.Hour,
		debitUserID: func(context.Context, string) (string, error) { return "123456", nil }})
	f.tokens.SetAgreementTTL(time.Hour)
	ctx := context.Background()
	legalName, abn, phone, address := "Acme Plumbing Supplies Holdings Proprietary Limited", "51824753556", "1300 000 000",
		"Level 12, 1 Farrer Place, Sydney NSW 2000"
	if _, err := f.svc.UpdateSite(ctx, f.site.ID, billing.SiteUpdate{LegalName: &legalName, ABN: &abn, Phone: &phone, Address: &address}); err != nil {
		t.Fatal(err)
	}
	b := newTab(t, browser, screenshotDir(t), "other")
	visit := func(name, path string, status int, heading string) {
		t.Helper()
		if got := b.load(chromedp.Navigate(f.url + path)); got != status {
			t.Errorf("%s: status %d, want %d", name, got, status)
		}
		b.see("h1", heading)
	}
	check := func(name string) {
		t.Helper()
		b.check(name)
		b.do(chromedp.EmulateViewport(320, 640, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
		wide, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`(() => {
			const width = 320, out = []; // not the layout's width, which a phone widens to fit what overflows
			for (const el of document.querySelectorAll("body, body *")) {
				const r = el.getBoundingClientRect();
				if (r.right > width + 1) out.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + " to " + Math.round(r.right) + "px");
			}
			return out.slice(0, 5);
		})()`))
		if err != nil {
			t.Fatalf("browser: %v", err)
		}
		for _, w := range wide {
			t.Errorf("%s at 320px: %s, wider than the screen", name, w)
		}
		b.viewport(0)
	}

	visit("service agreement", "/service-agreement/"+f.site.ID, http.StatusOK, "Direct Debit Request Service Agreement")
	b.see("main", "direct debit user ID 123456")
	check("10-service-agreement-becs")

	// The longest values the form takes, without a space to break them at.
	_, long := f.invite(t)
	visit("the signup form", "/signup?token="+url.QueryEscape(long), http.StatusOK, "Set up payments to")
	b.do(
		chromedp.Click(chromedp.CSS("#customerType-business")),
		chromedp.SetValue(chromedp.CSS("#name"), strings.Repeat("Ada", 33)),
		chromedp.SetValue(chromedp.CSS("#email"), strings.Repeat("a", 64)+"@"+strings.Repeat("b", 60)+"."+strings.Repeat("c", 60)+".example.com"),
		chromedp.SetValue(chromedp.CSS("#businessName"), strings.Repeat("Engines", 14)),
		chromedp.SetValue(chromedp.CSS("#abn"), "51 824 753 556"),
		chromedp.SetValue(chromedp.CSS("#accountName"), strings.Repeat("W", 32)),
		chromedp.SetValue(chromedp.CSS("#bsb"), "062-000"),
		chromedp.SetValue(chromedp.CSS("#accountNumber"), "123456789"),
		chromedp.Click(chromedp.CSS("#authorised")),
		chromedp.Click(chromedp.CSS("#consent")),
	)
	if status := b.load(chromedp.Click(chromedp.CSS(`button[type="submit"]`))); status != http.StatusOK {
		t.Fatalf("the longest values: status %d (%s), want 200, the review", status, b.text("h1"))
	}
	check("11-review-longest-values")
	if status := b.load(chromedp.Click(chromedp.CSS("#confirm"))); status != http.StatusOK {
		t.Fatalf("confirm the longest values: status %d, want 200", status)
	}
	b.see("h1", "You're linked with")
	check("12-agreement-longest-values")

	_, used := f.invite(t)
	f.signUp(t, used, validForm(used))
	visit("a used signup link", "/signup?token="+url.QueryEscape(used), http.StatusConflict, "This link has already been used")
	check("13-error-used")
	b.do(chromedp.SendKeys(chromedp.CSS("#email-link-address"), "not an address"))
	if status := b.load(chromedp.Click(chromedp.CSS(`form[action="/agreement/email-link"] button`))); status != http.StatusBadRequest {
		t.Errorf("an address that is none: status %d, want 400", status)
	}
	b.see("#email-link-address-error", "Enter the email address you gave")
	check("14-email-link-refused")

	cancelled, cancelledToken := f.invite(t)
	if _, err := f.svc.RevokeByPartner(ctx, f.site, cancelled.CustomerReference); err != nil {
		t.Fatal(err)
	}
	visit("a cancelled invitation", "/signup?token="+url.QueryEscape(cancelledToken), http.StatusGone, "This invitation has been cancelled")
	check("15-error-cancelled")

	ended, endedToken := f.linked(t)
	if _, err := f.svc.RevokeByPartner(ctx, f.site, ended.CustomerReference); err != nil {
		t.Fatal(err)
	}
	visit("an agreement the site ended", "/agreement?token="+url.QueryEscape(endedToken), http.StatusOK, "is revoked")
	b.see("main", f.site.Name+" ended this direct debit agreement")
	check("16-agreement-ended-by-site")
	visit("an agreement already revoked", "/agreement/revoke?token="+url.QueryEscape(endedToken), http.StatusConflict, "This agreement is already revoked")
	check("17-error-already-revoked")

	erased, _ := f.linked(t)
	if _, err := f.svc.RevokeByCustomer(ctx, erased.ID); err != nil {
		t.Fatal(err)
	}

	_, agreement := f.linked(t)
	visit("the agreement page", "/agreement?token="+url.QueryEscape(agreement), http.StatusOK, "You're linked with")
	for tries := 0; ; tries++ {
		b.do(chromedp.SetValue(chromedp.CSS("#email-link-address"), "someone.else@example.com"))
		status := b.load(chromedp.Click(chromedp.CSS(`form[action="/agreement/email-link"] button`)))
		if status == http.StatusTooManyRequests {
			break
		}
		if tries == 20 {
			t.Fatalf("20 requests for a new link, none refused")
		}
		b.load(chromedp.Navigate(f.url + "/agreement?token=" + url.QueryEscape(agreement)))
	}
	b.see("h1", "Too many requests for a new link")
	check("18-error-too-many-requests")

	f.clock.Advance(time.Hour)
	visit("a management link expired", "/agreement?token="+url.QueryEscape(agreement), http.StatusGone, "This link to your agreement has expired")
	check("19-error-management-link-expired")

	if _, _, err := f.svc.EraseBankDetails(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	erasedToken, err := f.tokens.Agreement(f.link(t, erased.ID)) // a link emailed before, its time left
	if err != nil {
		t.Fatal(err)
	}
	visit("an agreement whose details were erased", "/agreement?token="+url.QueryEscape(erasedToken), http.StatusOK, "is revoked")
	b.see("#erased", "We have erased your name, email address and bank details")
	check("20-agreement-erased")

	visit("a page that does not exist", "/signup/nothing", http.StatusNotFound, "Page not found")
	check("21-error-not-found")
	visit("a page used the wrong way", "/agreement/email-link", http.StatusMethodNotAllowed, "That didn't work")
	check("22-error-wrong-method")
}
