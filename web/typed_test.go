package web_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/pyng/receivables/storage"
)

// TestBrowserABankNumberTypedWithSeparatorsIsKeptWhole: a BSB or an account number typed (or
// pasted) with the spaces and dashes the form takes reaches the server whole. The browser cuts
// what is typed into an input at its maxlength: an account number's of 11 cut " 123-456-789",
// pasted with the space before it, to " 123-456-78", 8 digits the form took, and the customer
// would have signed up another account's number. Each value is typed as a customer would, and
// the review shows every digit.
func TestBrowserABankNumberTypedWithSeparatorsIsKeptWhole(t *testing.T) {
	browser := startBrowser(t)
	f := setup(t, storage.EngineSQLite)
	b := newTab(t, browser, t.TempDir(), "typed")
	for _, tt := range []struct{ bsb, account, wantBSB, wantAccount string }{
		{bsb: "062-000", account: " 123-456-789", wantBSB: "062-000", wantAccount: "123456789"},
		{bsb: "062-000", account: "1 2 3 4 5 6 7 8 9", wantBSB: "062-000", wantAccount: "123456789"},
		{bsb: " 062 - 000 ", account: "12345678", wantBSB: "062-000", wantAccount: "12345678"},
		{bsb: "0 6 2 0 0 0", account: "12 345 678 ", wantBSB: "062-000", wantAccount: "12345678"},
	} {
		t.Run(tt.bsb+" "+tt.account, func(t *testing.T) {
			_, tok := f.invite(t)
			b.load(chromedp.Navigate(f.url + "/signup?token=" + url.QueryEscape(tok)))
			b.do(
				chromedp.Click(chromedp.CSS("#customerType-individual")),
				chromedp.SendKeys(chromedp.CSS("#name"), "Ada Lovelace"),
				chromedp.SendKeys(chromedp.CSS("#email"), "ada@example.com"),
				chromedp.SendKeys(chromedp.CSS("#accountName"), "A LOVELACE"),
				chromedp.SendKeys(chromedp.CSS("#bsb"), tt.bsb),
				chromedp.SendKeys(chromedp.CSS("#accountNumber"), tt.account),
				chromedp.Click(chromedp.CSS("#authorised")),
				chromedp.Click(chromedp.CSS("#consent")),
			)
			if status := b.load(chromedp.Click(chromedp.CSS(`button[type="submit"]`))); status != http.StatusOK {
				t.Fatalf("status %d (%s), want 200, the review", status, b.text("h1"))
			}
			if got := b.text("#review-bsb"); got != tt.wantBSB {
				t.Errorf("BSB typed %q: the review shows %q, want %q", tt.bsb, got, tt.wantBSB)
			}
			if got := b.text("#review-account"); got != tt.wantAccount {
				t.Errorf("account number typed %q: the review shows %q, want %q", tt.account, got, tt.wantAccount)
			}
		})
	}
}
