package web_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/pyng/receivables/billing"
)

// The customer's details shown on one customer's agreement page are never on another's, nor on
// any page reachable with the signup link (which the partner holds), nor on the revocation
// pages; a management token of one customer acts on that customer's link alone.
func TestOneCustomersPagesNeverShowAnothersDetails(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		la, signupA := f.invite(t)
		formA := businessForm(signupA)
		formA.Set("name", "Zelda Quixote")
		formA.Set("email", "zelda.q@private.example")
		formA.Set("accountName", "ZELDA Q TRADING")
		formA.Set("businessName", "Quixote Windmills Pty Ltd")
		formA.Set("bsb", "083-170")
		formA.Set("accountNumber", "987654321")
		formA.Set("abn", "33 051 775 556")
		agreementA := agreementToken(t, f.signUp(t, signupA, formA))
		lb, signupB := f.invite(t)
		agreementB := agreementToken(t, f.signUp(t, signupB, validForm(signupB))) // Ada Lovelace

		secretsA := []string{"Zelda", "Quixote", "zelda.q@private.example", "ZELDA Q TRADING", "083-170", "083170", "987654321", "4321", "33 051 775 556", "33051775556"}
		secretsB := []string{"Ada Lovelace", "ada@example.com", "A LOVELACE", "12345678", "5678"}

		pageA := f.get(t, "/agreement?token="+url.QueryEscape(agreementA))
		pageA.status(t, http.StatusOK)
		pageA.contains(t, "Zelda Quixote")
		pageA.lacks(t, secretsB...)
		pageB := f.get(t, "/agreement?token="+url.QueryEscape(agreementB))
		pageB.status(t, http.StatusOK)
		pageB.lacks(t, secretsA...)

		// The pages the partner can open with the signup link it holds show nothing of either.
		all := append(slices.Clone(secretsA), secretsB...)
		all = slices.DeleteFunc(all, func(s string) bool { return s == "4321" || s == "5678" })
		for _, tok := range []string{signupA, signupB} {
			p := f.get(t, "/signup?token="+url.QueryEscape(tok))
			p.lacks(t, all...)
			s := sessionFrom(t, p)
			for _, addr := range []string{"zelda.q@private.example", "ada@example.com", "x@example.com"} {
				q := f.post(t, "/agreement/email-link", url.Values{"token": {tok}, "email": {addr}}, s, nil)
				q.lacks(t, all...)
			}
			// Nor does signing up again with it, nor its review step.
			again := validForm(tok)
			again.Set("step", "review")
			f.post(t, "/signup", again, s, nil).lacks(t, secretsA...)
		}
		// A signup token is not a management token.
		f.get(t, "/agreement?token="+url.QueryEscape(signupA)).status(t, http.StatusNotFound)
		f.get(t, "/agreement/revoke?token="+url.QueryEscape(signupA)).status(t, http.StatusNotFound)

		// The revocation's confirmation page of A shows nothing of B (nor A's bank details).
		conf := f.get(t, "/agreement/revoke?token="+url.QueryEscape(agreementA))
		conf.status(t, http.StatusOK)
		conf.lacks(t, secretsB...)
		// Revoking with A's token revokes A alone.
		s := sessionFrom(t, conf)
		f.post(t, "/agreement/revoke", url.Values{"token": {agreementA}, "confirm": {"yes"}}, s, nil).status(t, http.StatusSeeOther)
		if got := f.link(t, la.ID).StoredState; got != billing.LinkRevoked {
			t.Errorf("A is %s, want revoked", got)
		}
		if got := f.link(t, lb.ID).StoredState; got != billing.LinkLinked {
			t.Errorf("B is %s after A revoked, want linked", got)
		}
		// A's revoked page still shows A's, not B's.
		after := f.get(t, "/agreement?token="+url.QueryEscape(agreementA))
		after.lacks(t, secretsB...)

		// A re-invitation of the same reference: its signup form is empty, not A's details.
		re, err := f.svc.Invite(context.Background(), f.site, la.CustomerReference)
		if err != nil {
			t.Fatal(err)
		}
		reTok, err := f.tokens.Signup(re)
		if err != nil {
			t.Fatal(err)
		}
		form := f.get(t, "/signup?token="+url.QueryEscape(reTok))
		form.status(t, http.StatusOK)
		form.lacks(t, all...)
		// The old agreement token names the old link, not the new one.
		if strings.Contains(f.get(t, "/agreement?token="+url.QueryEscape(agreementA)).Body, "Revoke your agreement") {
			t.Error("A's old management link offers to revoke again after a re-invitation")
		}
	})
}
