package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/token"
)

// agreementPage is what the agreement page shows: the agreement, and a way to revoke it while it
// is in force.
type agreementPage struct {
	Title     string
	Site      string
	Token     string
	CSRF      string
	Name      string
	Email     string
	BSB       string
	Account   string
	LinkedAt  time.Time
	Revoked   bool
	RevokedAt time.Time
	// RevokedByCustomer says who ended the agreement: the customer here, or the site.
	RevokedByCustomer bool
	// ManageURL is this page's address, to keep.
	ManageURL string
	// EmailLink is the form to have a new management link sent.
	EmailLink *emailLinkForm
}

// maskAccount shows only the last four digits of an account number: ••••5678.
func maskAccount(n string) string {
	if len(n) > 4 {
		n = n[len(n)-4:]
	}
	return "••••" + n
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

// showAgreement is GET /agreement?token=...: the agreement and, while it is in force, the form to
// revoke it.
func (h *handler) showAgreement(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	l, site, p, err := h.agreement(r.Context(), tok)
	if !h.usable(w, r, "agreement", p, err) {
		return
	}
	page := &agreementPage{
		Title:             "Your agreement with " + site.Name,
		Site:              site.Name,
		Token:             tok,
		Name:              l.Customer.Name,
		Email:             l.Customer.Email,
		BSB:               formatBSB(l.Customer.BSB),
		Account:           maskAccount(l.Customer.AccountNumber),
		LinkedAt:          l.LinkedAt,
		Revoked:           l.StoredState == billing.LinkRevoked,
		RevokedAt:         l.RevokedAt,
		RevokedByCustomer: l.RevokedBy == billing.RevokedByCustomer,
		ManageURL:         h.publicURL + "/agreement?token=" + url.QueryEscape(tok),
	}
	if !page.Revoked {
		page.CSRF = h.csrf.token(w, r)
		page.EmailLink = &emailLinkForm{Token: tok, CSRF: page.CSRF, Validity: validity(h.managementLinkTTL)}
	}
	h.render(w, r, http.StatusOK, "agreement", page)
}

// revokeAgreement is POST /agreement/revoke: the customer ends the agreement, then sees it
// revoked.
func (h *handler) revokeAgreement(w http.ResponseWriter, r *http.Request) {
	tok := r.PostForm.Get("token")
	l, site, p, err := h.agreement(r.Context(), tok)
	if !h.usable(w, r, "agreement", p, err) {
		return
	}
	if l.StoredState == billing.LinkRevoked {
		h.fail(w, r, alreadyRevoked(site.Name, l.RevokedAt))
		return
	}
	if _, err := h.service.RevokeByCustomer(r.Context(), l.ID); err != nil {
		if billing.AsErrors(err) == nil {
			h.internal(w, r, "revoke agreement", err)
			return
		}
		// Revoked in the meantime (by the site, or from another tab): say when.
		if l, _, _, err := h.agreement(r.Context(), tok); err == nil && l.StoredState == billing.LinkRevoked {
			h.fail(w, r, alreadyRevoked(site.Name, l.RevokedAt))
			return
		}
		h.internal(w, r, "revoke agreement", err)
		return
	}
	http.Redirect(w, r, "/agreement?token="+url.QueryEscape(tok), http.StatusSeeOther)
}
