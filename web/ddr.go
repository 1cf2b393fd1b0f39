package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/ddr"
)

// serviceAgreementPage is a site's Direct Debit Request Service Agreement.
type serviceAgreementPage struct {
	Title    string
	Site     string
	Sections []ddr.Section
}

// Terms are the facts of a site's service agreement: its debit user as an operator set it, and
// its BECS user ID when userID (Config.DebitUserIDFunc) knows one. The signup confirmation email
// is written from the same terms.
func Terms(ctx context.Context, site billing.Site, userID func(ctx context.Context, siteID string) (string, error)) (ddr.Terms, error) {
	t := ddr.Terms{Site: site.Name, DebitUser: site.DebitUser.Name, ABN: site.DebitUser.ABN, Phone: site.DebitUser.Phone,
		Email: site.DebitUser.Email, Address: site.DebitUser.Address}
	if userID != nil {
		id, err := userID(ctx, site.ID)
		if err != nil {
			return ddr.Terms{}, err
		}
		t.UserID = id
	}
	return t, nil
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
	terms, err := Terms(r.Context(), site, h.debitUserID)
	if err != nil {
		h.internal(w, r, "service agreement", err)
		return
	}
	h.render(w, r, http.StatusOK, "serviceagreement", &serviceAgreementPage{Title: ddr.Title + " · " + site.Name, Site: site.Name,
		Sections: ddr.Sections(terms)})
}
