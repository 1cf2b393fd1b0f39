package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/storage"
)

// A sandbox's customer's pages say, on every page, that it is a test server where no money is
// taken and made-up details belong: a partner that sends its customers a sandbox's signup link
// by mistake must not have them give it their real bank details, on pages that looked like a
// real server's. Another server's pages say nothing of it.
func TestTheCustomersPagesOfASandboxSayItIsOne(t *testing.T) {
	t.Parallel()
	const notice = `id="sandbox"><strong>Test server.</strong>`
	for _, tt := range []struct {
		name    string
		sandbox bool
	}{
		{"a sandbox", true},
		{"a server that is not a sandbox", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := apptest.Start(t, storage.EngineSQLite, apptest.Options{NoSandbox: !tt.sandbox})
			if !tt.sandbox { // there a site on the sandbox rail takes no invitation
				apptest.OnRail(t, s.Service, s.Site.ID, rail.BECS)
			}
			for _, page := range []string{signupURL(t, s, "ACME-001"), s.URL + "/service-agreement/" + s.Site.ID, s.URL + "/signup?token=forged"} {
				got, err := http.Get(page)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(got.Body)
				got.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if says := strings.Contains(string(body), notice); says != tt.sandbox {
					t.Errorf("%s: the page says it is a sandbox's: %t, want %t", page, says, tt.sandbox)
				}
			}
		})
	}
}

// signupURL invites the customer ref at s's site, as its partner, and gives the signupUrl.
func signupURL(t *testing.T, s *apptest.Server, ref string) string {
	t.Helper()
	resp := s.Do(t, apptest.Request{Method: http.MethodPost, Path: "/billing/sites/" + s.Site.ID + "/customers/invitations",
		Token: s.Token(t, s.Partner), Body: map[string]string{"customerReference": ref}})
	if resp.Status != http.StatusCreated {
		t.Fatalf("invite: status %d: %s", resp.Status, resp.Body)
	}
	var invitation struct {
		Data struct {
			SignupURL string `json:"signupUrl"`
		} `json:"data"`
	}
	resp.JSON(t, &invitation)
	return invitation.Data.SignupURL
}
