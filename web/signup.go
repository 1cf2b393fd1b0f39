package web

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/ddr"
	"github.com/pyng/receivables/rail/becs/aba"
	"github.com/pyng/receivables/token"
)

// field is one text input of the signup form.
type field struct {
	Name, Label, Hint, Type, Autocomplete, InputMode string
	MaxLength                                        int
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
	// Authority is the Direct Debit Request the customer makes by signing up (ddr.Terms.Authority).
	Authority string
	// Terms is the version of the terms the form shows (ddr.Terms.Version), sent with it: the
	// signup is completed only if they still stand.
	Terms string
	// ServiceAgreement is the address of the site's Direct Debit Request Service Agreement.
	ServiceAgreement string
	Token            string
	CSRF             string
	// Fields are the text inputs by name.
	Fields map[string]*field
	// Type is the customer type chosen, if any; TypeError the message beside the choice.
	Type      billing.CustomerType
	TypeError string
	// Consent and Authorised are the boxes ticked; their errors are shown beside them.
	Consent, Authorised           bool
	ConsentError, AuthorisedError string
	// Problems lists every message, in the form's order, for the summary at the top of the form.
	Problems []fieldProblem
}

// fieldProblem is one message of the summary, linking to the input (Anchor) it concerns.
type fieldProblem struct{ Field, Anchor, Message string }

// formOrder is the order of the form's inputs, which the summary of problems follows.
var formOrder = []string{"customerType", "name", "email", "businessName", "abn", "accountName", "bsb", "accountNumber", "authorised", "consent"}

// signupFields are the form's text inputs, filled from what the customer typed. The numbers (ABN,
// BSB, account number) have no maxlength: the browser would cut one typed with more spaces or
// dashes short, and an account number cut short may still be one, another's; the server checks
// their digits.
func signupFields(c billing.Customer) map[string]*field {
	fields := []*field{
		{Name: "name", Label: "Your full name", Type: "text", Autocomplete: "name", MaxLength: 100, Value: c.Name},
		{Name: "email", Label: "Email address", Type: "email", Autocomplete: "email", InputMode: "email", MaxLength: 254, Value: c.Email},
		{Name: "businessName", Label: "Business name", Hint: "For a business account only", Type: "text", Autocomplete: "organization", MaxLength: 100, Value: c.BusinessName},
		{Name: "abn", Label: "ABN", Hint: "For a business account only: 11 digits, for example 51 824 753 556", Type: "text", Autocomplete: "off", InputMode: "numeric", Value: c.ABN},
		{Name: "accountName", Label: "Account name", Hint: "As your bank shows it on your statement, up to 32 characters", Type: "text", Autocomplete: "off", MaxLength: billing.MaxAccountName, Value: c.AccountName},
		{Name: "bsb", Label: "BSB", Hint: "6 digits, for example 062-000", Type: "text", Autocomplete: "off", InputMode: "numeric", Value: c.BSB},
		{Name: "accountNumber", Label: "Account number", Hint: "5 to 9 digits", Type: "text", Autocomplete: "off", InputMode: "numeric", Value: c.AccountNumber},
	}
	out := make(map[string]*field, len(fields))
	for _, f := range fields {
		out[f.Name] = f
	}
	return out
}

// signupPage is the form of site, or false when the terms of its service agreement, which its
// authority names, could not be read (answered with the error page). The consent given (d) to
// other terms than the site's now is not carried over: the customer reads the new ones.
func (h *handler) signupPage(w http.ResponseWriter, r *http.Request, site billing.Site, tok, csrfToken string, c billing.Customer,
	d billing.Declarations) (*signupPage, bool) {
	terms, err := h.service.Terms(r.Context(), site)
	if err != nil {
		h.internal(w, r, "service agreement terms", err)
		return nil, false
	}
	if d.Terms != terms.Version() {
		d.Consent = false
	}
	return newSignupPage(site, terms, tok, csrfToken, c, d), true
}

func newSignupPage(site billing.Site, terms ddr.Terms, tok, csrfToken string, c billing.Customer, d billing.Declarations) *signupPage {
	return &signupPage{
		Title:     "Set up payments to " + site.Name,
		Site:      site.Name,
		Authority: terms.Authority(),
		Terms:     terms.Version(),
		Token:     tok,

		ServiceAgreement: serviceAgreementPath(site.ID),
		CSRF:             csrfToken,
		Fields:           signupFields(c),
		Type:             c.Type,
		Consent:          d.Consent,
		Authorised:       d.Authorised,
	}
}

// withErrors puts each message beside its input, and lists them in the form's order. It reports
// false when no message concerns an input of the form.
func (p *signupPage) withErrors(errs billing.Errors) bool {
	for _, e := range errs {
		anchor := e.Target
		switch e.Target {
		case "consent":
			p.ConsentError = e.Message
		case "authorised":
			p.AuthorisedError = e.Message
		case "customerType":
			p.TypeError = e.Message
			anchor = "customerType-individual"
		default:
			f, ok := p.Fields[e.Target]
			if !ok {
				continue
			}
			f.Error = e.Message
		}
		p.Problems = append(p.Problems, fieldProblem{Field: e.Target, Anchor: anchor, Message: e.Message})
	}
	slices.SortStableFunc(p.Problems, func(a, b fieldProblem) int {
		return slices.Index(formOrder, a.Field) - slices.Index(formOrder, b.Field)
	})
	return len(p.Problems) > 0
}

// reviewPage is the "check your details" step: what the customer typed, as it will be kept,
// before anything is stored.
type reviewPage struct {
	Title string
	Site  string
	// Authority is the Direct Debit Request that confirming makes (ddr.Terms.Authority), shown
	// again beside the button that makes it.
	Authority string
	CSRF      string
	Customer  billing.Customer
	Business  bool
	// BSB and ABN are shown as they are printed: 062-000, 51 824 753 556.
	BSB, ABN string
	// Bank and Branch name the BSB's branch when the BSB directory lists it.
	Bank, Branch string
	// Hidden are the form's fields, carried to the confirmation or back to the form.
	Hidden []hiddenField
}

type hiddenField struct{ Name, Value string }

func newReviewPage(site billing.Site, terms ddr.Terms, csrfToken string, f signupForm, branch billing.Branch) *reviewPage {
	p := &reviewPage{
		Title:     "Check your details",
		Site:      site.Name,
		Authority: terms.Authority(),
		CSRF:      csrfToken,
		Customer:  f.customer,
		Business:  f.customer.Type == billing.CustomerBusiness,
		BSB:       formatBSB(f.customer.BSB),
		ABN:       formatABN(f.customer.ABN),
	}
	if branch.BSB != "" {
		p.Bank, p.Branch = bankName(branch.Mnemonic), branchName(branch)
	}
	values := f.values()
	for _, name := range slices.Sorted(maps.Keys(values)) {
		p.Hidden = append(p.Hidden, hiddenField{Name: name, Value: values.Get(name)})
	}
	return p
}

// banks names the financial institutions of the commonest mnemonics of APCA's BSB directory;
// others are shown by their mnemonic.
var banks = map[string]string{
	"ANZ": "ANZ", "CBA": "Commonwealth Bank", "WBC": "Westpac", "NAB": "National Australia Bank",
	"STG": "St.George Bank", "BOM": "Bank of Melbourne", "BSA": "BankSA", "BQL": "Bank of Queensland",
	"BEN": "Bendigo Bank", "MBL": "Macquarie Bank", "ING": "ING", "SUN": "Suncorp Bank", "HBS": "Heritage Bank",
	"AMP": "AMP Bank", "CTI": "Citibank", "HSB": "HSBC", "UBS": "UBS", "BWA": "Bankwest", "ADL": "Adelaide Bank",
}

func bankName(mnemonic string) string {
	if name, ok := banks[mnemonic]; ok {
		return name
	}
	return mnemonic
}

func branchName(b billing.Branch) string {
	name := b.Name
	if b.Suburb != "" && !strings.EqualFold(b.Suburb, b.Name) {
		name += ", " + b.Suburb
	}
	if b.State != "" {
		name += " " + b.State
	}
	return name
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
		if h.service.TakesSignups(site) != nil {
			return l, site, notTakingSignups(site.Name), nil
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
	l, site, p, err := h.invitation(r.Context(), tok)
	if h.toOwnAgreement(w, r, l, site, nil) {
		return
	}
	if h.usable(w, r, "signup link", p, err) {
		if page, ok := h.signupPage(w, r, site, tok, h.csrf.token(w, r), billing.Customer{}, billing.Declarations{}); ok {
			h.render(w, r, http.StatusOK, "signup", page)
		}
	}
}

// submitSignup is POST /signup. The form is checked and shown for review ("check your
// details"), or again with a message beside each field to correct; nothing is stored. From the
// review, the customer goes back to change the details, or confirms them: the customer is linked,
// and sees the agreement page.
func (h *handler) submitSignup(w http.ResponseWriter, r *http.Request) {
	form := signupFormOf(r.PostForm)
	l, site, p, err := h.invitation(r.Context(), form.token)
	if h.toOwnAgreement(w, r, l, site, &form) {
		return
	}
	if !h.usable(w, r, "signup link", p, err) {
		return
	}
	csrfToken := r.PostForm.Get(csrfField)
	if form.step == stepEdit {
		if page, ok := h.signupPage(w, r, site, form.token, csrfToken, form.customer, form.declarations); ok {
			h.render(w, r, http.StatusOK, "signup", page)
		}
		return
	}
	c, branch, err := h.check(r.Context(), form)
	if err != nil {
		h.refused(w, r, site, form, err)
		return
	}
	form.customer = c
	if form.step != stepConfirm {
		terms, err := h.service.ConsentedTerms(r.Context(), site.ID, form.declarations)
		if err != nil {
			h.refused(w, r, site, form, err)
			return
		}
		h.render(w, r, http.StatusOK, "review", newReviewPage(site, terms, csrfToken, form, branch))
		return
	}
	// The CSRF token is the browser's secret: its confirmation sent again finds the link linked
	// from it (toOwnAgreement).
	linked, err := h.service.CompleteSignup(r.Context(), l, c, form.declarations, csrfToken)
	if err != nil {
		h.refused(w, r, site, form, err)
		return
	}
	h.toSignedUpAgreement(w, r, linked)
}

// toSignedUpAgreement sends the browser that signed up with l to its agreement page, and gives it
// the signedUp cookie.
func (h *handler) toSignedUpAgreement(w http.ResponseWriter, r *http.Request, l billing.Link) {
	agreement, err := h.giveSignedUp(w, l)
	if err != nil {
		h.internal(w, r, "agreement token", err)
		return
	}
	toAgreement(w, r, agreement)
}

// giveSignedUp gives the browser that signed up with l the signedUp cookie, and returns the token
// of l's agreement page that it holds.
func (h *handler) giveSignedUp(w http.ResponseWriter, l billing.Link) (string, error) {
	agreement, err := h.tokens.Agreement(l)
	if err == nil {
		h.signedUp.set(w, agreement)
	}
	return agreement, err
}

func toAgreement(w http.ResponseWriter, r *http.Request, agreement string) {
	http.Redirect(w, r, "/agreement?token="+url.QueryEscape(agreement), http.StatusSeeOther)
}

// signedUp is the cookie that holds, for billing.SignupRepeatWindow after a signup, the token of
// the agreement page the browser was sent to. The signup form of the invitation used, opened or
// sent again from that browser (the back button, a reload, a confirmation sent twice), leads to
// that page rather than to "this link has already been used". Only that browser has it, and it
// holds nothing its address bar did not.
type signedUp struct {
	cookie string
	secure bool
}

func newSignedUp(secure bool) signedUp {
	return signedUp{cookie: cookieName("pyng-signed-up", secure), secure: secure}
}

func (s signedUp) set(w http.ResponseWriter, agreement string) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookie,
		Value:    agreement,
		Path:     "/",
		MaxAge:   int(billing.SignupRepeatWindow / time.Second),
		HttpOnly: true,
		Secure:   s.secure,
		// Lax, so that the signup link opened again from the customer's email (a navigation from
		// another site) carries it; it only sends this browser to a page of this origin.
		SameSite: http.SameSiteLaxMode,
	})
}

// toOwnAgreement sends the browser that signed up with l to its agreement page, and reports
// whether it answered: when l is linked and the request's signedUp cookie holds a valid agreement
// token of l, or when it is a form posted with the CSRF token l was linked from, within
// billing.SignupRepeatWindow (a confirmation sent twice before the first was answered: the
// browser shows the second answer, and the first's cookie never reached it). A confirmation
// (form) of other details than l holds, from another tab of that browser, is told that they were
// not saved, rather than sent to the page as if they were.
func (h *handler) toOwnAgreement(w http.ResponseWriter, r *http.Request, l billing.Link, site billing.Site, form *signupForm) bool {
	if l.ID == "" || l.StateAt(h.service.Now()) != billing.LinkLinked {
		return false
	}
	token := ""
	if ck, err := r.Cookie(h.signedUp.cookie); err == nil {
		if linkID, err := h.tokens.ParseAgreement(ck.Value); err == nil && linkID == l.ID {
			token = ck.Value
		}
	}
	if token == "" && r.Method == http.MethodPost { // the CSRF token is checked only on a form posted
		from, err := h.service.SignedUpFrom(r.Context(), l, r.PostForm.Get(csrfField))
		if err != nil {
			h.internal(w, r, "signed up from", err)
			return true
		}
		if !from {
			return false
		}
		if token, err = h.giveSignedUp(w, l); err != nil {
			h.internal(w, r, "agreement token", err)
			return true
		}
	}
	if token == "" {
		return false
	}
	if form != nil && form.step == stepConfirm {
		if c, _, err := h.check(r.Context(), *form); err == nil && c != l.Customer {
			h.fail(w, r, signedUpWithOtherDetails(site.Name))
			return true
		}
	}
	toAgreement(w, r, token)
	return true
}

// check checks the form as the service does, and the account name against the BECS character
// set (it goes into direct-entry files).
func (h *handler) check(ctx context.Context, f signupForm) (billing.Customer, billing.Branch, error) {
	c, branch, err := h.service.CheckSignup(ctx, f.customer, f.declarations)
	errs := billing.AsErrors(err)
	if err != nil && errs == nil {
		return billing.Customer{}, billing.Branch{}, err
	}
	named := slices.ContainsFunc(errs, func(e *billing.Error) bool { return e.Target == "accountName" })
	if !named && !aba.ValidText(c.AccountName) {
		errs = append(errs, billing.Errorf(billing.CodeCustomerInvalidField, "accountName",
			"Write the account name in English letters, digits, spaces and common punctuation (no accents), as your bank statement shows it."))
	}
	return c, branch, errs.Err()
}

// refused shows the form again with the problems of err beside their fields, or why the
// invitation can no longer be used.
func (h *handler) refused(w http.ResponseWriter, r *http.Request, site billing.Site, form signupForm, err error) {
	errs := billing.AsErrors(err)
	if errs == nil {
		h.internal(w, r, "complete signup", err)
		return
	}
	page, ok := h.signupPage(w, r, site, form.token, r.PostForm.Get(csrfField), form.customer, form.declarations)
	switch {
	case !ok: // answered
	case page.withErrors(errs):
		h.render(w, r, http.StatusBadRequest, "signup", page)
	default: // the invitation moved on while the form was being sent (used, revoked or expired)
		h.showSignupProblem(w, r, form.token)
	}
}

// showSignupProblem reads the invitation again and shows why it can no longer be used, unless
// this browser has just used it (a confirmation sent twice at once: the other one linked).
func (h *handler) showSignupProblem(w http.ResponseWriter, r *http.Request, tok string) {
	l, site, p, err := h.invitation(r.Context(), tok)
	if h.toOwnAgreement(w, r, l, site, nil) {
		return
	}
	if h.usable(w, r, "signup link", p, err) {
		h.fail(w, r, usedSignupLink(site.Name))
	}
}
