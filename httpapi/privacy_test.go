package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
)

// privCustomer is what a customer types on Pyng's signup page: never to be shown to the partner.
type privCustomer struct {
	name, email, accountName, bsb, account, business, abn string
}

// secrets are the strings of the customer's details that no partner-visible output may hold,
// in the spellings they could take.
func (c privCustomer) secrets() []string {
	out := []string{c.name, c.email, c.accountName, c.account, strings.ReplaceAll(c.bsb, "-", ""), c.bsb}
	out = append(out, strings.Fields(c.name)...)
	out = append(out, strings.SplitN(c.email, "@", 2)[0])
	if c.business != "" {
		out = append(out, c.business, c.abn, strings.ReplaceAll(c.abn, " ", ""))
	}
	return out
}

var (
	privCSRF  = regexp.MustCompile(`name="csrf" value="([^"]*)"`)
	privTerms = regexp.MustCompile(`name="terms" value="([^"]*)"`)
)

// privPagesClient is a browser without cookies of its own or redirects followed.
var privPagesClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// privGetPage opens a customer's page and returns its body and CSRF cookie and field.
func privGetPage(t *testing.T, rawURL string) (body string, cookie *http.Cookie, csrf string) {
	t.Helper()
	resp, err := privPagesClient.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := privCSRF.FindStringSubmatch(string(b)); m != nil {
		csrf = m[1]
	}
	for _, c := range resp.Cookies() {
		cookie = c
	}
	return string(b), cookie, csrf
}

func privPostPage(t *testing.T, rawURL string, form url.Values, cookie *http.Cookie) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := privPagesClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// privSignUpOnPages signs the customer up on Pyng's pages with the signup link the partner was
// given, as the customer would, and returns the management page's token.
func privSignUpOnPages(t *testing.T, s *apptest.Server, signupURL string, c privCustomer) string {
	t.Helper()
	page, cookie, csrf := privGetPage(t, signupURL)
	terms := privTerms.FindStringSubmatch(page)
	if terms == nil {
		t.Fatalf("the signup page has no terms field:\n%s", page)
	}
	u, _ := url.Parse(signupURL)
	form := url.Values{"token": {u.Query().Get("token")}, "step": {"confirm"}, "name": {c.name}, "email": {c.email},
		"accountName": {c.accountName}, "bsb": {c.bsb}, "accountNumber": {c.account}, "authorised": {"yes"}, "consent": {"yes"},
		"csrf": {csrf}, "terms": {terms[1]}}
	if c.business != "" {
		form.Set("customerType", "business")
		form.Set("businessName", c.business)
		form.Set("abn", c.abn)
		form.Set("authorised", "yes")
	} else {
		form.Set("customerType", "individual")
	}
	resp := privPostPage(t, s.URL+"/signup", form, cookie)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/agreement" {
		t.Fatalf("signup answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query().Get("token")
}

// privRevokeOnPages revokes the agreement on the management page, as the customer would.
func privRevokeOnPages(t *testing.T, s *apptest.Server, agreement string) {
	t.Helper()
	_, cookie, csrf := privGetPage(t, s.URL+"/agreement/revoke?token="+url.QueryEscape(agreement))
	resp := privPostPage(t, s.URL+"/agreement/revoke", url.Values{"token": {agreement}, "confirm": {"yes"}, "csrf": {csrf}}, cookie)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revocation answered %d", resp.StatusCode)
	}
}

// privOutputs collects everything a partner was shown, each with where it came from.
type privOutputs struct {
	items []string
}

func (o *privOutputs) add(where string, r *apptest.Response) {
	var hdr strings.Builder
	for k, vs := range r.Header {
		if k == "Date" {
			continue
		}
		hdr.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	o.items = append(o.items, where+"\n"+hdr.String()+string(r.Body))
}

func (o *privOutputs) addText(where, text string) { o.items = append(o.items, where+"\n"+text) }

// find reports every output holding one of secrets.
func (o *privOutputs) find(t *testing.T, secrets []string) {
	t.Helper()
	for _, item := range o.items {
		where, body, _ := strings.Cut(item, "\n")
		for _, s := range secrets {
			if s != "" && strings.Contains(strings.ToLower(body), strings.ToLower(s)) {
				t.Errorf("%s shows the customer's %q:\n%.2000s", where, s, body)
			}
		}
	}
}

// The customer's identity is never shown to the partner: everything a partner can be shown after its customers signed up on Pyng's
// pages (an individual and a business), were debited, and revoked (one on Pyng's page, one by the
// partner) holds nothing of what the customers typed: every route's JSON and headers, the batch
// as CSV, error answers, the events list, the webhooks' bodies and headers and the deliveries
// list.
func TestPartnerOutputsHoldNothingTheCustomerGave(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		rc := newReceiver(t)
		failing := newReceiver(t)
		failing.answer(http.StatusInternalServerError)
		e := p.createEndpoint(t, map[string]any{"url": rc.srv.URL + "/hooks"})
		fe := p.createEndpoint(t, map[string]any{"url": failing.srv.URL + "/failing"})

		person := privCustomer{name: "Xanthippe Marlowe-Briggs", email: "xanthippe.mb@private-mail.example", accountName: "XANTHIPPE MARLOWE",
			bsb: "633-108", account: "71234569"}
		company := privCustomer{name: "Octavius Pemberton", email: "octavius@pemberton-holdings.example", accountName: "PEMBERTON HOLDINGS PTY LTD",
			bsb: "082-917", account: "45098817", business: "Pemberton Quarry Holdings Pty Ltd", abn: "33 051 775 556"}
		var out privOutputs
		inv := p.do(t, http.MethodPost, "/customers/invitations", map[string]any{"customerReference": "C-PERSON", "metadata": map[string]string{"accountId": "A-77"}})
		wantStatus(t, inv, http.StatusCreated)
		personSignup := dataOf[invitation](t, inv).SignupURL
		companySignup := p.mustInvite(t, "C-COMPANY").SignupURL
		personAgreement := privSignUpOnPages(t, s, personSignup, person)
		privSignUpOnPages(t, s, companySignup, company)

		// The used signup links, which the partner holds, open pages that show neither.
		for _, u := range []string{personSignup, companySignup} {
			body, _, _ := privGetPage(t, u)
			out.addText("the used signup link's page "+u, body)
		}

		// Debits: one that succeeds, one for lack of funds, one of a closed account, each customer.
		p.mustSubmit(t, batchRequest("B-1",
			debit{"R1", "C-PERSON", 12000}, debit{"R2", "C-PERSON", 4551}, debit{"R3", "C-COMPANY", 4552}, debit{"R4", "C-COMPANY", 999}, debit{"R5", "C-NOBODY", 100}))
		p.awaitCompleted(t, "B-1")

		// The partner looks at everything, then the person revokes on Pyng's page and the
		// partner revokes the company.
		read := func(when string) {
			for _, path := range []string{"/customers", "/customers?state=linked", "/customers?state=revoked", "/customers/C-PERSON", "/customers/C-COMPANY",
				"/batches", "/batches/B-1", "/batches/B-1?rowState=failed", "/events?limit=100", "/webhook-endpoints",
				"/webhook-endpoints/" + e.EndpointID + "/deliveries?limit=100", "/webhook-endpoints/" + fe.EndpointID + "/deliveries?limit=100"} {
				out.add(when+" GET "+path, p.do(t, http.MethodGet, path, nil))
			}
			out.add(when+" GET /batches/B-1 as CSV", p.getBatch(t, "B-1", "", "Accept", "text/csv"))
		}
		read("linked:")
		privRevokeOnPages(t, s, personAgreement)
		out.add("partner revokes C-COMPANY", p.post(t, "/customers/C-COMPANY/revoke"))
		// Errors naming the customers.
		out.add("revoke C-PERSON again", p.post(t, "/customers/C-PERSON/revoke"))
		out.add("sandbox signup of a revoked customer", p.post(t, "/sandbox/customers/C-PERSON/signup"))
		out.add("sandbox customer revocation of a revoked customer", p.post(t, "/sandbox/customers/C-COMPANY/customer-revocation"))
		out.add("a different batch under B-1", p.submit(t, batchRequest("B-1", debit{"R1", "C-PERSON", 1})))
		out.add("a batch for the revoked customers", p.submit(t, batchRequest("B-2", debit{"R1", "C-PERSON", 100}, debit{"R2", "C-COMPANY", 100})))
		p.awaitCompleted(t, "B-2")
		p.eventsUntil(t, "batch.completed")
		read("revoked:")
		// A re-invitation of the person: the new link, and its events.
		out.add("re-invite C-PERSON", p.invite(t, "C-PERSON"))
		out.add("invite C-PERSON again", p.invite(t, "C-PERSON"))
		read("re-invited:")

		// Every webhook the receiver was sent, bodies and headers.
		time.Sleep(300 * time.Millisecond)
		for i, d := range rc.await(8) {
			var hdr strings.Builder
			for k, vs := range d.header {
				hdr.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
			}
			out.addText(fmt.Sprintf("webhook %d", i), hdr.String()+string(d.body))
		}

		// The outputs are real: they name the customers by their references.
		all := strings.Join(out.items, "\n")
		if len(out.items) < 40 || !strings.Contains(all, "C-PERSON") || !strings.Contains(all, "C-COMPANY") || !strings.Contains(all, "customer.revoked") {
			t.Fatalf("only %d outputs were collected, or they do not name the customers", len(out.items))
		}
		secrets := append(person.secrets(), company.secrets()...)
		out.find(t, secrets)
	})
}

// Organisations apart: a partner naming another organisation's ids under its own site,
// or the other organisation's site with its own token, reaches nothing: every route answers as for
// a missing resource, lists and events show nothing of the other's, its webhook endpoint is sent
// none of the other's events, and a batch naming the other's linked customer debits nobody.
func TestAnotherOrganisationsIdsReachNothing(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		victim := newAuditSite(t, s)
		vEvents, _, _ := victim.events(t, "?limit=100")
		var firstEvent event
		if err := json.Unmarshal(vEvents[0], &firstEvent); err != nil {
			t.Fatal(err)
		}
		before := victim.state(t)

		attacker := newPartner(t, s)
		arc := newReceiver(t)
		ae := attacker.createEndpoint(t, map[string]any{"url": arc.srv.URL})
		attacker.mustInvite(t, "A-OWN")
		secondSite, err := s.Service.CreateSite(context.Background(), attacker.p.Organisation.ID, "Attacker's second site")
		if err != nil {
			t.Fatal(err)
		}
		sibling := partner{s: s, p: attacker.p, token: attacker.token, site: secondSite.ID}
		theirs := partner{s: s, p: attacker.p, token: attacker.token, site: victim.site}
		missing := partner{s: s, p: attacker.p, token: attacker.token, site: "site_" + strings.Repeat("a", 26)}

		// 1. The victim's site with the attacker's token: every route, as a missing site.
		for _, rt := range victim.routes() {
			a := theirs.do(t, rt.method, rt.path, rt.body)
			m := missing.do(t, rt.method, rt.path, rt.body)
			ea := wantError(t, a, http.StatusNotFound, "site:not-found", "siteId")
			em := wantError(t, m, http.StatusNotFound, "site:not-found", "siteId")
			if ea != em {
				t.Errorf("%s %s: the victim's site answers %+v, a missing one %+v", rt.method, rt.path, ea, em)
			}
			for _, h := range []string{"Location", "Idempotent-Replayed", "Vary", "Retry-After"} {
				if a.Header.Get(h) != m.Header.Get(h) {
					t.Errorf("%s %s: header %s %q, a missing site's %q", rt.method, rt.path, h, a.Header.Get(h), m.Header.Get(h))
				}
			}
		}

		// 2. The victim's ids under the attacker's own site, and under its second site.
		vbase := "/webhook-endpoints/" + victim.endpoint.EndpointID
		for _, caller := range []partner{attacker, sibling} {
			for _, tc := range []struct {
				method, path string
				body         any
				status       int
				code, target string
				header       []string
			}{
				{http.MethodGet, "/customers/C-LINKED", nil, 404, "customer-link:not-found", "customerReference", nil},
				{http.MethodPost, "/customers/C-LINKED/revoke", nil, 404, "customer-link:not-found", "customerReference", nil},
				{http.MethodPost, "/sandbox/customers/C-INV/signup", nil, 409, "customer-link:no-active-invitation", "customerReference", nil},
				{http.MethodPost, "/sandbox/customers/C-LINKED/customer-revocation", nil, 404, "customer-link:not-found", "customerReference", nil},
				{http.MethodGet, "/batches/B-OPEN", nil, 404, "batch:not-found", "batchReference", nil},
				{http.MethodGet, "/batches/B-OPEN", nil, 404, "batch:not-found", "batchReference", []string{"Accept", "text/csv"}},
				{http.MethodPost, "/sandbox/batches/B-OPEN/deadline", nil, 404, "batch:not-found", "batchReference", nil},
				{http.MethodGet, "/events?after=" + firstEvent.EventID, nil, 400, "request:invalid-field", "after", nil},
				{http.MethodGet, vbase, nil, 404, "webhook-endpoint:not-found", "endpointId", nil},
				{http.MethodPatch, vbase, map[string]string{"url": arc.srv.URL + "/stolen"}, 404, "webhook-endpoint:not-found", "endpointId", nil},
				{http.MethodPost, vbase + "/secret-rotation", nil, 404, "webhook-endpoint:not-found", "endpointId", nil},
				{http.MethodGet, vbase + "/deliveries", nil, 404, "webhook-endpoint:not-found", "endpointId", nil},
				{http.MethodPost, vbase + "/deliveries/" + victim.delivery + "/retry", nil, 404, "webhook-endpoint:not-found", "endpointId", nil},
				{http.MethodPost, "/sandbox/webhook-endpoints/" + victim.endpoint.EndpointID + "/test", nil, 404, "webhook-endpoint:not-found", "endpointId", nil},
				{http.MethodDelete, vbase, nil, 404, "webhook-endpoint:not-found", "endpointId", nil},
				{http.MethodGet, "/webhook-endpoints/" + ae.EndpointID + "/deliveries?cursor=" + cursorOf(victim.delivery), nil, 400, "request:invalid-field", "cursor", nil},
				{http.MethodPost, "/webhook-endpoints/" + ae.EndpointID + "/deliveries/" + victim.delivery + "/retry", nil, 404, "webhook-delivery:not-found", "deliveryId", nil},
			} {
				if caller.site == secondSite.ID && strings.HasPrefix(tc.path, "/webhook-endpoints/"+ae.EndpointID) {
					tc.code, tc.target = "webhook-endpoint:not-found", "endpointId" // the attacker's endpoint is of its first site
					if tc.status == 400 {
						tc.status = 404
					}
				}
				r := caller.do(t, tc.method, tc.path, tc.body, tc.header...)
				wantError(t, r, tc.status, tc.code, tc.target)
				if strings.Contains(string(r.Body), victim.site) || strings.Contains(string(r.Body), victim.p.Organisation.ID) {
					t.Errorf("%s %s names the victim's site or organisation: %s", tc.method, tc.path, r.Body)
				}
			}
		}

		// 3. The attacker's lists hold nothing of the victim's.
		for _, path := range []string{"/customers?limit=100", "/batches?limit=100", "/events?limit=100", "/webhook-endpoints"} {
			r := attacker.do(t, http.MethodGet, path, nil)
			wantStatus(t, r, http.StatusOK)
			for _, v := range []string{"C-LINKED", "C-INV", "B-OPEN", victim.site, victim.endpoint.EndpointID} {
				if strings.Contains(string(r.Body), v) {
					t.Errorf("the attacker's %s shows the victim's %s: %s", path, v, r.Body)
				}
			}
		}

		// 4. A batch of the attacker's (and of its second site) naming the victim's linked
		// customer debits nobody: the row fails customerNotActive.
		attacker.mustSubmit(t, batchRequest("B-STEAL", debit{"R0", "C-LINKED", 100}))
		b := attacker.awaitCompleted(t, "B-STEAL")
		if b.Rows[0].State != "failed" || b.Rows[0].FailureReason != "customerNotActive" {
			t.Errorf("the attacker's debit of the victim's customer is %+v, want failed customerNotActive", b.Rows[0])
		}
		attacker.link(t, "A-LINKED")
		sibling.mustSubmit(t, batchRequest("B-SIBLING", debit{"R0", "A-LINKED", 100}))
		if b := sibling.awaitCompleted(t, "B-SIBLING"); b.Rows[0].FailureReason != "customerNotActive" {
			t.Errorf("a debit on the second site of a customer linked on the first is %+v, want failed customerNotActive", b.Rows[0])
		}

		// 5. The attacker's endpoint was sent its own site's events alone.
		victim.mustInvite(t, "C-LATER")
		time.Sleep(300 * time.Millisecond)
		for _, d := range arc.await(1) {
			var ev event
			if err := json.Unmarshal(d.body, &ev); err != nil || ev.SiteID != attacker.site {
				t.Errorf("the attacker's endpoint was sent %s", d.body)
			}
		}
		// The victim's site changed only by the later invitation (its events and deliveries).
		after := victim.state(t)
		for _, line := range strings.Split(before, "\n") {
			if strings.HasPrefix(line, "/customers/C-LINKED ") || strings.HasPrefix(line, "/batches/B-OPEN ") ||
				strings.HasPrefix(line, "secret ") || strings.HasPrefix(line, "/webhook-endpoints ") || strings.HasPrefix(line, "/customers/C-INV ") {
				if !strings.Contains(after, line) {
					t.Errorf("the victim's %q changed", strings.SplitN(line, " ", 2)[0])
				}
			}
		}
	}, apptest.Options{SettlementDelay: time.Hour})
}
