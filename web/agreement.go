package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/token"
)

// agreementPage is what the agreement page shows: the agreement, and a way to revoke it while it
// is in force.
type agreementPage struct {
	Title        string
	Site         string
	Token        string
	Name         string
	Email        string
	AccountName  string
	Business     bool
	BusinessName string
	ABN          string
	BSB          string
	Account      string
	LinkedAt     string
	Revoked      bool
	RevokedAt    string
	// Erased says that the customer's details were erased, their retention after the revocation
	// past: there is nothing left to show but the agreement's times.
	Erased bool
	// RevokedByCustomer and RevokedByBank say who ended the agreement: the customer here, the
	// customer's bank (it returned a debit for a reason that ends the authority), or the site.
	RevokedByCustomer, RevokedByBank bool
	// ManageURL is this page's address, to keep; RevokeURL the page that asks to confirm a
	// revocation; ServiceAgreement the Direct Debit Request Service Agreement as the customer
	// agreed to it (which still give a customer whose agreement ended the way to dispute a debit).
	ManageURL, RevokeURL, ServiceAgreement string
	// ManageLinkExpires says whether ManageURL stops working, ManageLinkValidity after it was
	// made.
	ManageLinkExpires  bool
	ManageLinkValidity string
	// CSRF protects EmailLink, the form to have a new management link sent.
	CSRF      string
	EmailLink *emailLinkForm
}

// revokePage asks the customer to confirm a revocation before it happens.
type revokePage struct {
	Title, Site, Token, CSRF, ManageURL string
}

// maskAccount shows only the last four digits of an account number: ••••5678.
func maskAccount(n string) string {
	if len(n) > 4 {
		n = n[len(n)-4:]
	}
	return "••••" + n
}

// formatABN shows an ABN the way the ABR prints it: 51 824 753 556.
func formatABN(a string) string {
	if len(a) != 11 {
		return a
	}
	return a[:2] + " " + a[2:5] + " " + a[5:8] + " " + a[8:]
}

// formatBSB shows a BSB the way it is printed on cards and statements: 062-000.
func formatBSB(b string) string {
	if len(b) != 6 {
		return b
	}
	return b[:3] + "-" + b[3:]
}

// agreement resolves an agreement token to its link (linked, or revoked after linking) and site,
// or to the problem to show instead.
func (h *handler) agreement(ctx context.Context, tok string) (billing.Link, billing.Site, *problem, error) {
	if tok == "" {
		return billing.Link{}, billing.Site{}, missingToken(), nil
	}
	linkID, err := h.tokens.ParseAgreement(tok)
	if errors.Is(err, token.ErrExpired) {
		return billing.Link{}, billing.Site{}, expiredManagementLink(), nil
	}
	if err != nil {
		return billing.Link{}, billing.Site{}, invalidAgreementLink(), nil
	}
	l, site, err := h.service.LinkByID(ctx, linkID)
	if billing.HasCode(err, billing.CodeLinkNotFound) {
		return billing.Link{}, billing.Site{}, invalidAgreementLink(), nil
	}
	if err != nil {
		return billing.Link{}, billing.Site{}, nil, err
	}
	if l.LinkedAt.IsZero() { // agreement tokens are issued only on linking
		return billing.Link{}, billing.Site{}, invalidAgreementLink(), nil
	}
	return l, site, nil, nil
}

// showAgreement is GET /agreement?token=...: the agreement and, while it is in force, the way to
// revoke it.
func (h *handler) showAgreement(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	l, site, p, err := h.agreement(r.Context(), tok)
	if !h.usable(w, r, "agreement", p, err) {
		return
	}
	c := l.Customer
	page := &agreementPage{
		Title:              "Your agreement with " + site.Name,
		Site:               site.Name,
		Token:              tok,
		Name:               c.Name,
		Email:              c.Email,
		AccountName:        c.AccountName,
		Business:           c.Type == billing.CustomerBusiness,
		BusinessName:       c.BusinessName,
		ABN:                formatABN(c.ABN),
		BSB:                formatBSB(c.BSB),
		Account:            maskAccount(c.AccountNumber),
		LinkedAt:           formatTime(site, l.LinkedAt),
		Revoked:            l.StoredState == billing.LinkRevoked,
		RevokedByCustomer:  l.RevokedBy == billing.RevokedByCustomer,
		RevokedByBank:      l.RevokedBy == billing.RevokedByBank,
		ManageURL:          h.publicURL + "/agreement?token=" + url.QueryEscape(tok),
		ManageLinkExpires:  h.managementLinkTTL > 0,
		ManageLinkValidity: validity(h.managementLinkTTL),
		RevokeURL:          "/agreement/revoke?token=" + url.QueryEscape(tok),
		ServiceAgreement:   "/agreement/service-agreement?token=" + url.QueryEscape(tok),
	}
	if page.Revoked {
		page.RevokedAt = formatTime(site, l.RevokedAt)
		page.Erased = c.BSB == "" // a linked customer always has one; the erasure removes it
	} else {
		page.CSRF = h.csrf.token(w, r)
		page.EmailLink = &emailLinkForm{Token: tok, CSRF: page.CSRF, Validity: validity(h.managementLinkTTL)}
	}
	h.render(w, r, http.StatusOK, "agreement", page)
}

// confirmRevocation is GET /agreement/revoke?token=...: the second page, which asks the customer
// to confirm before the agreement is revoked.
func (h *handler) confirmRevocation(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	l, site, p, err := h.agreement(r.Context(), tok)
	if !h.usable(w, r, "agreement", p, err) {
		return
	}
	if l.StoredState == billing.LinkRevoked {
		h.fail(w, r, alreadyRevoked(site, l.RevokedAt))
		return
	}
	h.render(w, r, http.StatusOK, "revoke", &revokePage{
		Title:     "Revoke your agreement with " + site.Name + "?",
		Site:      site.Name,
		Token:     tok,
		CSRF:      h.csrf.token(w, r),
		ManageURL: "/agreement?token=" + url.QueryEscape(tok),
	})
}

// revokeAgreement is POST /agreement/revoke, from the confirmation page: the customer ends the
// agreement, then sees it revoked. A post without the confirmation (confirm=yes) shows the
// confirmation page and changes nothing. The confirmation sent again once the customer's
// revocation is done (a double click, a reload, another tab) leads to the agreement page as the
// first did, rather than to an error: what the customer asked for is done.
func (h *handler) revokeAgreement(w http.ResponseWriter, r *http.Request) {
	tok := r.PostForm.Get("token")
	l, site, p, err := h.agreement(r.Context(), tok)
	if !h.usable(w, r, "agreement", p, err) {
		return
	}
	confirmed := r.PostForm.Get("confirm") == "yes"
	switch {
	case l.StoredState == billing.LinkRevoked:
		h.revoked(w, r, tok, site, l, confirmed)
		return
	case !confirmed:
		http.Redirect(w, r, "/agreement/revoke?token="+url.QueryEscape(tok), http.StatusSeeOther)
		return
	}
	if _, err := h.service.RevokeByCustomer(r.Context(), l.ID); err != nil {
		if billing.AsErrors(err) == nil {
			h.internal(w, r, "revoke agreement", err)
			return
		}
		// Revoked in the meantime (by the site, or from another tab).
		if l, _, _, err := h.agreement(r.Context(), tok); err == nil && l.StoredState == billing.LinkRevoked {
			h.revoked(w, r, tok, site, l, confirmed)
			return
		}
		h.internal(w, r, "revoke agreement", err)
		return
	}
	http.Redirect(w, r, "/agreement?token="+url.QueryEscape(tok), http.StatusSeeOther)
}

// revoked answers a revocation of an agreement revoked already: confirmed by the customer who
// revoked it, with the agreement page, as their revocation was answered; otherwise with when it
// was revoked.
func (h *handler) revoked(w http.ResponseWriter, r *http.Request, tok string, site billing.Site, l billing.Link, confirmed bool) {
	if confirmed && l.RevokedBy == billing.RevokedByCustomer {
		http.Redirect(w, r, "/agreement?token="+url.QueryEscape(tok), http.StatusSeeOther)
		return
	}
	h.fail(w, r, alreadyRevoked(site, l.RevokedAt))
}
