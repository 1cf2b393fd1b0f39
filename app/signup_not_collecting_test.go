package app_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/storage"
)

// Outside the sandbox, a signup link minted while its site was on a rail, opened once the site is
// back on the sandbox rail, says the site isn't ready and shows no form; a signup completed then
// is refused and stores nothing. Back on a rail, the link shows its form again.
func TestASignupLinkOfASiteNotCollectingSaysItIsNotReady(t *testing.T) {
	ctx := context.Background()
	s := apptest.Start(t, storage.EngineSQLite, apptest.Options{NoSandbox: true})
	apptest.OnRail(t, s.Service, s.Site.ID, rail.BECS)
	link := signupURL(t, s, "ACME-001")
	open := func() (int, string) {
		t.Helper()
		got, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		defer got.Body.Close()
		body, _ := io.ReadAll(got.Body)
		return got.StatusCode, string(body)
	}

	apptest.OnRail(t, s.Service, s.Site.ID, rail.Sandbox)
	if status, body := open(); status != http.StatusConflict || !strings.Contains(body, "ready for direct debits yet") || strings.Contains(body, `name="consent"`) {
		t.Errorf("the signup link of a site off its rail: %d, want 409 saying it isn't ready, without the form:\n%s", status, body)
	}
	l, err := s.Service.Link(ctx, s.Site, "ACME-001")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Service.CompleteSignup(ctx, l, billing.SandboxCustomer, billing.Declarations{Consent: true, Authorised: true}, "")
	if !billing.HasCode(err, billing.CodeSiteNotCollecting) {
		t.Errorf("a signup completed at a site off its rail: %v, want %s", err, billing.CodeSiteNotCollecting)
	}
	if got, err := s.Service.Link(ctx, s.Site, "ACME-001"); err != nil || got.StoredState != billing.LinkInvited {
		t.Errorf("the link after the refused signup: %+v, %v; want it invited", got, err)
	}

	apptest.OnRail(t, s.Service, s.Site.ID, rail.BECS)
	if status, body := open(); status != http.StatusOK || !strings.Contains(body, `name="consent"`) {
		t.Errorf("the signup link once the site is on a rail again: %d, want 200 with the form:\n%.300s", status, body)
	}
}
