package web

import (
	"net/http"
	"strings"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/ddr"
)

// serviceAgreementPage is a site's Direct Debit Request Service Agreement.
type serviceAgreementPage struct {
	Title string
	Site  string
	// AgreedAt is when the customer agreed to it, for the agreement a customer made; empty for
	// the site's as it stands.
	AgreedAt string
	Sections []ddr.Section
}

// serviceAgreementPath is the address of a site's service agreement.
func serviceAgreementPath(siteID string) string { return "/service-agreement/" + siteID }

// showServiceAgreement is GET /service-agreement/{siteId}: the site's service agreement, read
// fresh (an operator may have just changed its debit user).
func (h *handler) showServiceAgreement(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("siteId")
	if !strings.HasPrefix(id, "site_") {
		h.fail(w, r, pageNotFound())
		return
	}
	site, err := h.service.SiteByID(r.Context(), id)
	if billing.AsErrors(err) != nil {
		h.fail(w, r, pageNotFound())
		return
	}
	if err != nil {
		h.internal(w, r, "service agreement", err)
		return
	}
	terms, err := h.service.Terms(r.Context(), site)
	if err != nil {
		h.internal(w, r, "service agreement", err)
		return
	}
	h.render(w, r, http.StatusOK, "serviceagreement", newServiceAgreementPage(site, terms, ""))
}

// showAgreedServiceAgreement is GET /agreement/service-agreement?token=...: the service agreement
// the customer of the agreement agreed to at signup, as it stood then (the agreement page links
// it), whatever the site's is now. For a link linked before the terms agreed were kept, the
// site's as they stand.
func (h *handler) showAgreedServiceAgreement(w http.ResponseWriter, r *http.Request) {
	l, site, p, err := h.agreement(r.Context(), r.URL.Query().Get("token"))
	if !h.usable(w, r, "agreement", p, err) {
		return
	}
	terms, err := h.service.AgreedTerms(r.Context(), l, site)
	if err != nil {
		h.internal(w, r, "agreed service agreement", err)
		return
	}
	h.render(w, r, http.StatusOK, "serviceagreement", newServiceAgreementPage(site, terms, formatTime(site, l.LinkedAt)))
}

func newServiceAgreementPage(site billing.Site, terms ddr.Terms, agreedAt string) *serviceAgreementPage {
	return &serviceAgreementPage{Title: ddr.Title + " · " + site.Name, Site: terms.Site, AgreedAt: agreedAt, Sections: ddr.Sections(terms)}
}
