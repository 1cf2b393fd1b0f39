package web

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/ddr"
)

// formRequest is a POST of body as a form.
func formRequest(path, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// maxSignupPage bounds the signup page shown again with the customer's problems: the page with
// each field's value escaped (at most six bytes a byte) beside the fixed text.
const maxSignupPage = 6*maxFormBytes + 16<<10

// FuzzSignupForm reads signup forms as POST /signup does, then shows them again as the page does
// when the details are refused: a form over maxFormBytes is refused; a form read writes again to
// the same; every problem of the details is shown beside its field; the page renders, its size
// bounded; details accepted are accepted again as they were kept.
func FuzzSignupForm(f *testing.F) {
	for _, seed := range []string{
		"token=t&csrf=c&name=Ada+Lovelace&email=ada%40example.com&bsb=062-000&accountNumber=12345678&consent=on",
		"token=t&step=confirm&customerType=business&name=Ada&email=a%40b.co&businessName=Acme&abn=51+824+753+556&accountName=ACME+PTY&bsb=062000&accountNumber=123456&authorised=yes&consent=yes",
		"customerType=individual&accountName=%00&businessName=%FF&abn=51824753557&name=A%0Ab&email=a%09b%40c.de",
		"name=&email=&bsb=&accountNumber=",
		"name=%20%20&email=a@b&bsb=062+000&accountNumber=1234-5678&consent=",
		"name=A&name=B&consent=on&consent=",
		"name=" + strings.Repeat("é", 101) + "&email=" + strings.Repeat("a", 250) + "@example.com",
		"name=%3Cscript%3E&email=%22a%22%40b.c&bsb=%00&accountNumber=%E2%80%8B",
		"email=Ada+%3Cada%40example.com%3E&bsb=0620001&accountNumber=1234",
		"name=%zz", "a;b=1", "&&&=&=", strings.Repeat("x", maxFormBytes+1),
	} {
		f.Add(seed)
	}
	site := billing.Site{ID: "site_1", Name: "Acme"}
	f.Fuzz(func(t *testing.T, body string) {
		r := formRequest("/signup", body)
		if !readForm(httptest.NewRecorder(), r) {
			return
		}
		if len(body) > maxFormBytes {
			t.Fatalf("a form of %d bytes was read", len(body))
		}
		form := signupFormOf(r.PostForm)
		form.step = "" // the review page's hidden fields carry all but the step
		again := formRequest("/signup", form.values().Encode())
		if !readForm(httptest.NewRecorder(), again) || signupFormOf(again.PostForm) != form {
			t.Fatalf("%+v written again reads %+v", form, signupFormOf(again.PostForm))
		}

		c, err := billing.ValidateCustomer(form.customer, form.declarations)
		if err == nil {
			if kept, err := billing.ValidateCustomer(c, form.declarations); err != nil || kept != c {
				t.Fatalf("details %+v accepted are kept as %+v, which reads %+v, %v", form.customer, c, kept, err)
			}
			for _, s := range []string{c.Name, c.Email, c.AccountName, c.BusinessName} {
				if !billing.PlainText(s) {
					t.Fatalf("details %+v accepted with %q, which is not plain text", c, s)
				}
			}
			review := newReviewPage(site, ddr.Terms{Site: "Acme"}, "csrf", signupForm{token: form.token, customer: c, declarations: form.declarations}, billing.Branch{})
			var out bytes.Buffer
			if err := pages["review"].ExecuteTemplate(&out, "layout", review); err != nil {
				t.Fatalf("the review page: %v", err)
			}
			return
		}
		errs := billing.AsErrors(err)
		page := newSignupPage(site, ddr.Terms{Site: "Acme"}, form.token, "csrf", form.customer, form.declarations)
		if !page.withErrors(errs) || len(page.Problems) != len(errs) {
			t.Fatalf("problems %v, of which the page shows %v", errs, page.Problems)
		}
		var out bytes.Buffer
		if err := pages["signup"].ExecuteTemplate(&out, "layout", page); err != nil || out.Len() > maxSignupPage {
			t.Fatalf("the page shown again: %d bytes, %v; want it rendered within %d", out.Len(), err, maxSignupPage)
		}
	})
}

// FuzzRevocationForm reads agreement revocation forms as POST /agreement/revoke does: a form over
// maxFormBytes is refused, and the double-submit check passes exactly when the form's first csrf
// is the cookie and the cookie is a token this server writes.
func FuzzRevocationForm(f *testing.F) {
	good := billing.RandomToken(csrfTokenBytes)
	for _, seed := range [][2]string{
		{"token=t&csrf=" + good, good},
		{"token=t&csrf=" + good + "&csrf=x", good},
		{"token=t&csrf=x&csrf=" + good, good},
		{"token=t&csrf=" + strings.ToUpper(good), strings.ToUpper(good)},
		{"token=t&csrf=" + good[1:], good[1:]},
		{"token=t&csrf=", ""},
		{"token=t", good},
		{"csrf=" + good + "%00", good + "\x00"},
		{strings.Repeat("y", maxFormBytes+1), good},
	} {
		f.Add(seed[0], seed[1])
	}
	c := newCSRF(false)
	f.Fuzz(func(t *testing.T, body, cookie string) {
		if strings.ContainsAny(cookie, "; ,\"\t\r\n") { // one cookie value, as a browser sends it
			return
		}
		r := formRequest("/agreement/revoke", body)
		r.Header.Set("Cookie", c.cookie+"="+cookie)
		if !readForm(httptest.NewRecorder(), r) {
			return
		}
		if len(body) > maxFormBytes {
			t.Fatalf("a form of %d bytes was read", len(body))
		}
		want := wellFormed(cookie) && r.PostForm.Get(csrfField) == cookie
		if got := c.valid(r); got != want {
			t.Fatalf("form %q with cookie %q: valid = %v, want %v", body, cookie, got, want)
		}
	})
}
