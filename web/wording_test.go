package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/storage"
)

// Every page that says what revoking does says what the revocation page and the README say: it
// stops the debits not yet sent to the bank, and one already sent may still be collected.
func TestPagesSayThatADebitAlreadySentMayStillBeCollected(t *testing.T) {
	t.Parallel()
	f := setup(t, storage.EngineSQLite)
	_, signup := f.invite(t)
	inForce, agreement := f.linked(t)
	confirmation := f.get(t, "/agreement/revoke?token="+url.QueryEscape(agreement))
	if _, err := f.svc.RevokeByCustomer(context.Background(), inForce.ID); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		page page
		says string
	}{
		{name: "the signup form", page: f.get(t, "/signup?token="+url.QueryEscape(signup)),
			says: "Revoking stops every debit not yet sent to my bank; a debit already sent may still be collected."},
		{name: "the page that asks to confirm a revocation", page: confirmation,
			says: "Debits already sent to your bank may still be collected."},
		{name: "the page of a revoked agreement", page: f.get(t, "/agreement?token="+url.QueryEscape(agreement)),
			says: "No new debits will be sent to your bank under it; a debit sent before it ended may still be collected."},
		{name: "the page of a revocation asked for again", page: f.get(t, "/agreement/revoke?token="+url.QueryEscape(agreement)),
			says: "No new debits will be sent to your bank under it; a debit sent before it ended may still be collected."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.page.contains(t, tt.says)
			tt.page.lacks(t, "further debits")
		})
	}
}

// The agreement page says how long its address works, in words, or that it does not expire;
// the expired link's page is true of an agreement in force and of a revoked one alike.
func TestPagesSayHowLongAManagementLinkLasts(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		ttl  time.Duration
		says string
	}{
		{name: "the default, in days", ttl: 30 * 24 * time.Hour, says: "This address works for 30 days from when you were given it. After that, it opens a page where you can ask for a new one by email"},
		{name: "hours", ttl: 12 * time.Hour, says: "This address works for 12 hours from when you were given it."},
		{name: "a minute", ttl: time.Minute, says: "This address works for 1 minute from when you were given it."},
		{name: "a link that does not expire", ttl: 0, says: "This address works until you revoke the agreement."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setupWith(t, storage.EngineSQLite, setupOptions{managementLinkTTL: tt.ttl})
			_, agreement := f.linked(t)
			p := f.get(t, "/agreement?token="+url.QueryEscape(agreement))
			p.status(t, http.StatusOK)
			p.contains(t, tt.says)
			p.lacks(t, "h0m0s", "m0s") // time.Duration's own spelling
		})
	}

	t.Run("the expired link's page", func(t *testing.T) {
		t.Parallel()
		f := setupWith(t, storage.EngineSQLite, setupOptions{managementLinkTTL: time.Hour})
		f.tokens.SetAgreementTTL(time.Hour)
		_, inForce := f.linked(t)
		revoked, ofRevoked := f.linked(t)
		if _, err := f.svc.RevokeByCustomer(context.Background(), revoked.ID); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Hour)
		for name, tok := range map[string]string{"of an agreement in force": inForce, "of a revoked agreement": ofRevoked} {
			t.Run(name, func(t *testing.T) {
				p := f.get(t, "/agreement?token="+url.QueryEscape(tok))
				p.status(t, http.StatusGone)
				p.contains(t, "Opening it changed nothing.", "If your agreement has ended, there is nothing left to manage, and no new link is sent.",
					"Links to manage your agreement last 1 hour.")
				p.lacks(t, "Your agreement itself has not changed", "1h0m0s")
			})
		}
	})
}

// A page that says something went wrong says so first, in its title (what a screen reader
// announces on arrival): an error page, and the signup form shown again with problems to correct.
func TestPagesThatSayAnErrorBeginTheirTitleWithError(t *testing.T) {
	t.Parallel()
	f := setup(t, storage.EngineSQLite)
	_, tok := f.invite(t)
	_, agreement := f.linked(t)
	incomplete := validForm(tok)
	incomplete.Del("consent")
	for _, tt := range []struct {
		name  string
		page  page
		title string
	}{
		{name: "a page not found", page: f.get(t, "/nowhere"), title: "Error: Page not found · Pyng"},
		{name: "a signup link that is not valid", page: f.get(t, "/signup?token=forged"), title: "Error: This signup link isn&#39;t valid · Pyng"},
		{name: "the signup form with a problem", page: f.signUp(t, tok, incomplete), title: "Error: Set up payments to "},
		{name: "the signup form", page: f.get(t, "/signup?token="+url.QueryEscape(tok)), title: "<title>Set up payments to "},
		{name: "the agreement page", page: f.get(t, "/agreement?token="+url.QueryEscape(agreement)), title: "<title>Your agreement with "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.page.contains(t, tt.title)
			if !strings.HasPrefix(tt.title, "Error: ") {
				tt.page.lacks(t, "<title>Error: ")
			}
		})
	}
}

// The link to the service agreement from the signup form opens a new tab, and says so.
func TestTheServiceAgreementLinkSaysItOpensANewTab(t *testing.T) {
	t.Parallel()
	f := setup(t, storage.EngineSQLite)
	_, tok := f.invite(t)
	f.get(t, "/signup?token="+url.QueryEscape(tok)).contains(t,
		`target="_blank" rel="noopener">Direct Debit Request Service Agreement (opens in a new tab)</a>`)
}
