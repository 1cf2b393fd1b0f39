package web

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/token"
)

// emailLinkForm is the "email me my management link" form: on the management page, on the page
// of a management link that expired, and on the page of a signup link already used. Token is the
// page's token (an agreement or a signup token, expired or not), which names the link.
type emailLinkForm struct {
	Token, CSRF string
	Validity    string
	// Email is the address typed, and Error the message beside it, when it was refused.
	Email, Error string
}

// validity says how long a management link lasts, for the pages.
func validity(ttl time.Duration) string {
	if ttl <= 0 {
		return "until you revoke the agreement"
	}
	return billing.ManagementLinkValidity(ttl)
}

// withEmailLinkForm fills the form of a problem page: the token of the request (of its query or
// form) and a CSRF token.
func (h *handler) withEmailLinkForm(w http.ResponseWriter, r *http.Request, p *problem) {
	if p.EmailLink == nil {
		return
	}
	tok := r.URL.Query().Get("token")
	if r.PostForm != nil && r.PostForm.Get("token") != "" {
		tok = r.PostForm.Get("token")
	}
	p.EmailLink.Token, p.EmailLink.CSRF, p.EmailLink.Validity = tok, h.csrf.token(w, r), validity(h.managementLinkTTL)
}

// linkOfToken is the id of the link an agreement or signup token names, expired or not, and
// which kind of token it is ("agreement" or "signup").
func (h *handler) linkOfToken(tok string) (linkID, kind string, ok bool) {
	if id, err := h.tokens.ParseAgreement(tok); err == nil || errors.Is(err, token.ErrExpired) {
		return id, "agreement", true
	}
	if id, err := h.tokens.ParseSignup(tok); err == nil || errors.Is(err, token.ErrExpired) {
		return id, "signup", true
	}
	return "", "", false
}

// emailLink is POST /agreement/email-link: a new management link is sent to the address the
// customer gave, if the address typed is that one. The answer is the same whether or not it is,
// and whether or not the token names a link that was ever linked: the page tells no one which
// addresses Pyng knows. Each client, each link's agreement token with each address typed, and each
// signup token whatever the address (the partner's asking must not meet what the customer typed),
// may ask only so many times an hour (EmailLinkLimits), known address or not; beyond that the
// answer is a 429 page that says when to try again. Only a genuine token takes from its link's
// bucket, so that requests with a made-up one cannot lock a customer out; and a signup token
// (which the partner holds too) from a bucket apart from an agreement token's (which the customer
// alone holds), so that the partner cannot use up the customer's requests either. An address that
// is not one at all is refused openly, before any limit is taken: no customer could have given it,
// so refusing it tells nothing.
func (h *handler) emailLink(w http.ResponseWriter, r *http.Request) {
	if address := r.PostForm.Get("email"); !billing.ValidEmailAddress(address) {
		h.fail(w, r, invalidLinkAddress(address))
		return
	}
	if wait := h.emailLinkLimits.allowClient(r); wait > 0 {
		h.tooManyLinkRequests(w, r, wait)
		return
	}
	if linkID, kind, ok := h.linkOfToken(r.PostForm.Get("token")); ok {
		if wait := h.emailLinkLimits.allowLink(kind, linkID, r.PostForm.Get("email")); wait > 0 {
			h.tooManyLinkRequests(w, r, wait)
			return
		}
		if err := h.service.RequestManagementLink(r.Context(), linkID, r.PostForm.Get("email")); err != nil {
			h.internal(w, r, "request management link", err)
			return
		}
	}
	h.render(w, r, http.StatusOK, "emaillinksent", &problem{Title: "Check your email"})
}

// tooManyLinkRequests answers a request for a management link beyond the limits: a 429 page
// that says when to try again.
func (h *handler) tooManyLinkRequests(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	retryAfter(w, wait)
	h.render(w, r, http.StatusTooManyRequests, "error", errorPage{problem: tooManyLinkRequestsProblem(wait)})
}

// tooManyLinkRequestsProblem is the page of a request for a management link beyond the limits.
// It does not say that the customer asked already: others may have asked, or the same network.
func tooManyLinkRequestsProblem(wait time.Duration) *problem {
	minutes := int(max(1, (wait+time.Minute-1)/time.Minute))
	when := "in a minute"
	if minutes > 1 {
		when = fmt.Sprintf("in %d minutes", minutes)
	}
	return &problem{Status: http.StatusTooManyRequests, Title: "Too many requests for a new link",
		Message: "A new link to manage your agreement has been asked for too many times in the last hour. Try again " + when + ". Nothing was changed."}
}

// invalidLinkAddress is the page of a request for a management link whose address is not one:
// the form again, with the message beside the field.
func invalidLinkAddress(typed string) *problem {
	return &problem{Status: http.StatusBadRequest, Title: "Check the email address",
		Message:   "We couldn't send a link: enter a whole email address below. Nothing was changed.",
		EmailLink: &emailLinkForm{Email: typed, Error: "Enter the email address you gave when you signed up, like name@example.com."}}
}

func expiredManagementLink() *problem {
	return &problem{Status: http.StatusGone, Title: "This link to your agreement has expired",
		Message:   "For your security, links to manage your agreement last a limited time, and this one has run out. Opening it changed nothing. To get a new link, enter the email address you signed up with below. If your agreement has ended, there is nothing left to manage, and no new link is sent.",
		EmailLink: &emailLinkForm{}}
}
