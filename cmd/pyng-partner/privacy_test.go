package main

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/client"
)

var (
	privCSRF  = regexp.MustCompile(`name="csrf" value="([^"]*)"`)
	privTerms = regexp.MustCompile(`name="terms" value="([^"]*)"`)
)

// privSignUp signs a customer up on Pyng's pages with the partner's signupUrl, as the customer
// would.
func privSignUp(t *testing.T, s *apptest.Server, signupURL string, fields url.Values) {
	t.Helper()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(signupURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m, terms := privCSRF.FindStringSubmatch(string(body)), privTerms.FindStringSubmatch(string(body))
	if m == nil || terms == nil || len(resp.Cookies()) == 0 {
		t.Fatalf("signup page %d without a form", resp.StatusCode)
	}
	u, _ := url.Parse(signupURL)
	fields.Set("token", u.Query().Get("token"))
	fields.Set("csrf", m[1])
	fields.Set("terms", terms[1])
	fields.Set("step", "confirm")
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/signup", strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(resp.Cookies()[0])
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("signup answered %d", resp.StatusCode)
	}
}

// The customer's identity is never shown to the partner: what pyng-partner prints (JSON and tables, stdout and stderr) of a customer who
// signed up on Pyng's pages holds nothing the customer gave.
func TestTheCLIShowsNothingTheCustomerGave(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		inv := one[client.Invitation](t, ok(t, s, "customers", "invite", "C-WEB").stdout)
		privSignUp(t, s, inv.SignupURL, url.Values{"customerType": {"business"}, "name": {"Philippa Quennell"},
			"email": {"pq@quennell-private.example"}, "accountName": {"QUENNELL TIMBERS PTY LTD"}, "bsb": {"484-799"},
			"accountNumber": {"30456781"}, "businessName": {"Quennell Timbers Pty Ltd"}, "abn": {"33 051 775 556"},
			"authorised": {"yes"}, "consent": {"yes"}})
		e := one[client.WebhookEndpointWithSecret](t, ok(t, s, "webhooks", "create", "--endpoint-url", "http://127.0.0.1:9/none").stdout)
		var all strings.Builder
		run := func(args ...string) {
			r := cli(t, s, args...)
			all.WriteString(strings.Join(args, " ") + "\n" + r.stdout + r.stderr + "\n")
		}
		_ = cliIn(t, s, "R1,C-WEB,12000\nR2,C-WEB,4551\n", "batches", "submit", "-", "--reference", "B-2", "--cents", "--wait")
		for _, json := range []string{"--json=true", "--json=false"} {
			run("customers", "list", json)
			run("customers", "show", "C-WEB", json)
			run("events", "list", json)
			run("batches", "list", json)
			run("batches", "show", "B-2", json)
			run("webhooks", "deliveries", e.EndpointID, json)
		}
		run("batches", "show", "B-2", "--csv")
		run("customers", "revoke", "C-WEB")
		run("customers", "revoke", "C-WEB")
		run("events", "list")
		out := strings.ToLower(all.String())
		if !strings.Contains(out, "c-web") {
			t.Fatalf("the commands printed nothing of C-WEB:\n%s", all.String())
		}
		for _, secret := range []string{"Philippa", "Quennell", "pq@", "quennell-private", "484-799", "484799", "30456781", "33 051 775 556", "33051775556"} {
			if strings.Contains(out, strings.ToLower(secret)) {
				t.Errorf("pyng-partner printed the customer's %q:\n%s", secret, all.String())
			}
		}
	})
}
