package web

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"time"
	_ "time/tzdata" // the pages show times in Australian zones whatever the host has installed

	"github.com/pyng/receivables/billing"
)

//go:embed templates
var files embed.FS

// style is the one stylesheet, inlined in every page and allowed by its hash, so that the
// Content-Security-Policy needs neither 'unsafe-inline' nor a stylesheet route.
var style = mustRead("templates/style.css")

// contentSecurityPolicy allows nothing but the inline stylesheet and forms posted to this origin.
var contentSecurityPolicy = "default-src 'none'; style-src '" + styleHash(style) + "'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func styleHash(css string) string {
	sum := sha256.Sum256([]byte(css))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// pages are the templates by name, each with the layout, as a server that is not a sandbox shows
// them; sandboxPages are those of a sandbox, whose layout says that it is one.
var pages, sandboxPages = parsePages(false), parsePages(true)

func parsePages(sandbox bool) map[string]*template.Template {
	funcs := template.FuncMap{
		// style is trusted: it is our own embedded file, and the CSP hash is computed over its bytes.
		"style":    func() template.CSS { return template.CSS(style) }, //nolint:gosec // our own file
		"hasError": hasError,
		"sandbox":  func() bool { return sandbox },
	}
	out := map[string]*template.Template{}
	for _, name := range []string{"signup", "review", "agreement", "revoke", "error", "serviceagreement", "emaillinksent"} {
		out[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/emaillink.html", "templates/"+name+".html"))
	}
	return out
}

// hasError reports whether a page says something went wrong: an error page, or the signup form
// shown again with problems to correct. Its title then starts with "Error: ", the first thing a
// screen reader announces of a page (as GOV.UK's pages do).
func hasError(page any) bool {
	switch p := page.(type) {
	case errorPage:
		return true
	case *signupPage:
		return len(p.Problems) > 0
	}
	return false
}

func mustRead(name string) string {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// formatTime shows a moment the way the pages do: in the site's time zone, named, as in
// "2 March 2026 at 3:04 pm AEDT". Every time a page shows goes through it.
func formatTime(site billing.Site, t time.Time) string {
	return t.In(site.Location()).Format("2 January 2006 at 3:04 pm MST")
}

// problem is what the error page shows: a status, a heading and what the customer can do.
type problem struct {
	Status  int
	Title   string
	Message string
	// EmailLink, when not nil, shows the "email me my management link" form (see emailLinkForm).
	EmailLink *emailLinkForm
}

// errorPage is what the error page shows: the problem, and of an unexpected failure its traceId
// (Reference), for the customer to give support.
type errorPage struct {
	*problem
	Reference string
}

func pageNotFound() *problem {
	return &problem{http.StatusNotFound, "Page not found", "There is no page at this address. Check the link you were given.", nil}
}

func methodNotAllowed() *problem {
	return &problem{http.StatusMethodNotAllowed, "That didn't work", "This page can't be used that way. Go back and use the page's own buttons.", nil}
}

func forbidden() *problem {
	return &problem{http.StatusForbidden, "We couldn't accept this form",
		"For your security, we only accept forms sent from this site's own pages in the same browser session, and this one could not be checked. Nothing was changed. Go back, reload the page and try again.", nil}
}

func badForm() *problem {
	return &problem{http.StatusBadRequest, "We couldn't read this form", "Nothing was changed. Go back, reload the page and try again.", nil}
}

func internalError() *problem {
	return &problem{http.StatusInternalServerError, "Something went wrong on our side",
		"Nothing has been lost. Please try again in a few minutes.", nil}
}

func missingToken() *problem {
	return &problem{http.StatusBadRequest, "This link is incomplete",
		"The address is missing part of the link you were sent. Open the link again, copying all of it.", nil}
}

func invalidSignupLink() *problem {
	return &problem{http.StatusNotFound, "This signup link isn't valid",
		"We couldn't recognise this link. Check that you copied all of it, or ask the business that sent it for a new one. Nothing was changed.", nil}
}

func expiredSignupLink(site string) *problem {
	return &problem{http.StatusGone, "This invitation has expired",
		"Signup links are valid for a limited time, and this one has run out. Ask " + site + " to send you a new link. Nothing was changed.", nil}
}

func revokedSignupLink(site string) *problem {
	return &problem{http.StatusGone, "This invitation has been cancelled",
		"This signup link can no longer be used. If you still want to set up payments, ask " + site + " for a new link. Nothing was changed.", nil}
}

func usedSignupLink(site string) *problem {
	return &problem{http.StatusConflict, "This link has already been used",
		"Someone has already signed up with this link, so it can't be used again. If that was you, you're all set: manage your agreement from the page you saw after signing up, or get a new link to it by email below. If it wasn't you, contact " + site + ". Nothing was changed.",
		&emailLinkForm{}}
}

// signedUpWithOtherDetails is the page of a signup confirmed from a tab of the browser that
// signed up a moment ago, from another tab, with other details.
func signedUpWithOtherDetails(site string) *problem {
	return &problem{http.StatusConflict, "You have already signed up",
		"You set up your direct debit agreement with " + site + " a moment ago, from another tab or window, with other details than these: these were not saved. The page you saw after signing up shows the details your agreement holds (get a new link to it by email below). To change them, revoke the agreement there and ask " + site + " for a new signup link.",
		&emailLinkForm{}}
}

// notTakingSignups is the page of a signup link whose site does not collect debits (yet, or any
// more): billing.Service.TakesSignups.
func notTakingSignups(site string) *problem {
	return &problem{http.StatusConflict, site + " isn't ready for direct debits yet",
		site + " can't set up direct debits through Pyng yet. Nothing was saved: try this link again later, or contact " + site + ".", nil}
}

func invalidAgreementLink() *problem {
	return &problem{http.StatusNotFound, "We couldn't find this agreement",
		"We couldn't recognise this link. Use the link to the page you saw after signing up, copying all of it.", nil}
}

func alreadyRevoked(site billing.Site, at time.Time) *problem {
	return &problem{http.StatusConflict, "This agreement is already revoked",
		"Your direct debit agreement with " + site.Name + " was revoked on " + formatTime(site, at) + ", so there is nothing more to do. No new debits will be sent to your bank under it; a debit sent before it ended may still be collected.", nil}
}
