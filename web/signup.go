package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/token"
)

// field is one text input of the signup form.
type field struct {
	Name, Label, Hint, Type, Autocomplete, InputMode string
	Value, Error                                     string
}

// DescribedBy lists the ids of the hint and the error message that describe the input.
func (f field) DescribedBy() string {
	var ids []string
	if f.Hint != "" {
		ids = append(ids, f.Name+"-hint")
	}
	if f.Error != "" {
		ids = append(ids, f.Name+"-error")
	}
	return strings.Join(ids, " ")
}

// signupPage is what the signup form shows.
type signupPage struct {
	Title string
	Site  string
	// ServiceAgreement is the address of the site's Direct Debit Request Service Agreement.
	ServiceAgreement string
	Token            string
	CSRF             string
	Fields           []field
	Consent          bool
	// ConsentError is the message beside the consent box, if any.
	ConsentError string
	// Problems lists every message, for the summary at the top of the form.
	Problems []fieldProblem
}

type fieldProblem struct{ Field, Message string }

// signupFields are the form's inputs, in order, filled from what the customer typed.
func signupFields(c billing.Customer) []field {
	return []field{
		{Name: "name", Label: "Full name", Type: "text", Autocomplete: "name", Value: c.Name},
		{Name: "email", Label: "Email address", Type: "email", Autocomplete: "email", InputMode: "email", Value: c.Email},
		{Name: "bsb", Label: "BSB", Hint: "6 digits, for example 062-000", Type: "text", Autocomplete: "off", InputMode: "numeric", Value: c.BSB},
		{Name: "accountNumber", Label: "Account number", Hint: "5 to 9 digits", Type: "text", Autocomplete: "off", InputMode: "numeric", Value: c.AccountNumber},
	}
}

func newSignupPage(site billing.Site, tok, csrfToken string, c billing.Customer, consent bool) *signupPage {
	return &signupPage{
		Title: "Set up payments to " + site.Name,
		Site:  site.Name,
		Token: tok,

		ServiceAgreement: serviceAgreementPath(site.ID),
		CSRF:             csrfToken,
		Fields:           signupFields(c),
		Consent:          consent,
	}
}

// withErrors puts each message beside its field. It reports false when no message concerns a
// field of the form.
func (p *signupPage) withErrors(errs billing.Errors) bool {
	for _, e := range errs {
		if e.Target == "consent" {
			p.ConsentError = e.Message
		} else if !p.setFieldError(e.Target, e.Message) {
			continue
		}
		p.Problems = append(p.Problems, fieldProblem{Field: e.Target, Message: e.Message})
	}
	return len(p.Problems) > 0
}

func (p *signupPage) setFieldError(name, message string) bool {
	for i := range p.Fields {
		if p.Fields[i].Name == name {
			p.Fields[i].Error = message
			return true
		}
	}
	return false
}

// invitation resolves a signup token to its link and site, or to the problem the customer sees
// instead: a forged or unknown token, or an invitation that is expired, revoked or already used.
func (h *handler) invitation(ctx context.Context, tok string) (billing.Link, billing.Site, *problem, error) {
	if tok == "" {
		return billing.Link{}, billing.Site{}, missingToken(), nil
	}
	linkID, err := h.tokens.ParseSignup(tok)
	tokenExpired := errors.Is(err, token.ErrExpired)
	if err != nil && !tokenExpired {
		return billing.Link{}, billing.Site{}, invalidSignupLink(), nil
	}
	l, site, err := h.service.LinkByID(ctx, linkID)
	if billing.HasCode(err, billing.CodeLinkNotFound) {
		return billing.Link{}, billing.Site{}, invalidSignupLink(), nil
	}
	if err != nil {
		return billing.Link{}, billing.Site{}, nil, err
	}
	switch l.StateAt(h.service.Now()) {
	case billing.LinkInvited:
		if tokenExpired {
			return l, site, expiredSignupLink(site.Name), nil
		}
		return l, site, nil, nil
	case billing.LinkExpired:
		return l, site, expiredSignupLink(site.Name), nil
	case billing.LinkRevoked:
		return l, site, revokedSignupLink(site.Name), nil
	default: // linked: say so, and nothing of who signed up
		return l, site, usedSignupLink(site.Name), nil
	}
}

// showSignup is GET /signup?token=...: the form, or why it cannot be used.
func (h *handler) showSignup(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if _, site, p, err := h.invitation(r.Context(), tok); h.usable(w, r, "signup link", p, err) {
		h.render(w, r, http.StatusOK, "signup", newSignupPage(site, tok, h.csrf.token(w, r), billing.Customer{}, false))
	}
}

// submitSignup is POST /signup: link the customer, then show the agreement page; or show the form
// again with a message beside each field to correct.
func (h *handler) submitSignup(w http.ResponseWriter, r *http.Request) {
	form := signupFormOf(r.PostForm)
	tok, c, consent := form.token, form.customer, form.consent
	l, site, p, err := h.invitation(r.Context(), tok)
	if !h.usable(w, r, "signup link", p, err) {
		return
	}
	linked, err := h.service.CompleteSignup(r.Context(), l, c, consent)
	if err != nil {
		page := newSignupPage(site, tok, r.PostForm.Get(csrfField), c, consent)
		switch errs := billing.AsErrors(err); {
		case errs == nil:
			h.internal(w, r, "complete signup", err)
		case page.withErrors(errs):
			h.render(w, r, http.StatusBadRequest, "signup", page)
		default: // the invitation moved on while the form was being sent (used, revoked or expired)
			h.showSignupProblem(w, r, tok)
		}
		return
	}
	agreement, err := h.tokens.Agreement(linked)
	if err != nil {
		h.internal(w, r, "agreement token", err)
		return
	}
	http.Redirect(w, r, "/agreement?token="+url.QueryEscape(agreement), http.StatusSeeOther)
}

// showSignupProblem reads the invitation again and shows why it can no longer be used.
func (h *handler) showSignupProblem(w http.ResponseWriter, r *http.Request, tok string) {
	if _, site, p, err := h.invitation(r.Context(), tok); h.usable(w, r, "signup link", p, err) {
		h.fail(w, r, usedSignupLink(site.Name))
	}
}
