package web_test

import (
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/storage"
	"github.com/pyng/receivables/token"
	"github.com/pyng/receivables/web"
)

// TestEmailMeMyManagementLinkIsRateLimited: the form cannot flood an inbox. An address may be
// asked for three times an hour and a client may ask twenty times, whether or not the address is
// the customer's: a known and an unknown address are refused alike, with the same page.
func TestEmailMeMyManagementLinkIsRateLimited(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		l, agreement := f.linked(t)
		s := sessionFrom(t, f.get(t, "/agreement?token="+url.QueryEscape(agreement)))
		ask := func(address string) page {
			t.Helper()
			return f.post(t, "/agreement/email-link", url.Values{"token": {agreement}, "email": {address}}, s, nil)
		}
		// refused checks a refusal that says to wait minutes: an address's bucket fills again by
		// one every 20 minutes, a client's every 3.
		refused := func(p page, minutes int) {
			t.Helper()
			p.status(t, http.StatusTooManyRequests)
			p.contains(t, "Too many requests for a new link", "Try again in "+strconv.Itoa(minutes)+" minutes")
			if secs, err := strconv.Atoi(p.Header.Get("Retry-After")); err != nil || secs <= (minutes-1)*60 || secs > minutes*60 {
				t.Errorf("Retry-After = %q, want about %d minutes", p.Header.Get("Retry-After"), minutes)
			}
		}
		managementLinks := func() int {
			n := 0
			for _, j := range f.emailJobs(t, l.ID) {
				if j.Email == billing.EmailManagementLink {
					n++
				}
			}
			return n
		}

		for range web.DefaultEmailLinkLimits.PerLinkAndAddress {
			ask("ada@example.com").status(t, http.StatusOK)
			ask("someone@example.com").status(t, http.StatusOK)
		}
		known, unknown := ask("ada@example.com"), ask("someone@example.com")
		refused(known, 20)
		refused(unknown, 20)
		if known.Body != unknown.Body {
			t.Errorf("the refusal differs for a known and an unknown address:\n%s\n---\n%s", known.Body, unknown.Body)
		}
		refused(ask("  ADA@Example.COM "), 20) // the same address, however typed
		if n := managementLinks(); n != web.DefaultEmailLinkLimits.PerLinkAndAddress {
			t.Errorf("%d management links queued, want %d", n, web.DefaultEmailLinkLimits.PerLinkAndAddress)
		}

		// One address a third of an hour later may ask once more.
		f.clock.Advance(20 * time.Minute)
		ask("ada@example.com").status(t, http.StatusOK)
		refused(ask("ada@example.com"), 20)
		if n := managementLinks(); n != web.DefaultEmailLinkLimits.PerLinkAndAddress+1 {
			t.Errorf("%d management links queued, want %d", n, web.DefaultEmailLinkLimits.PerLinkAndAddress+1)
		}

		// The client: after its twentieth request in the hour (counting the refused ones, which
		// spent its bucket too), a fresh address is refused; another client is not.
		f.clock.Advance(time.Hour) // full buckets again
		for i := range web.DefaultEmailLinkLimits.PerClient {
			ask("customer"+strconv.Itoa(i)+"@example.org").status(t, http.StatusOK)
		}
		refused(ask("fresh@example.org"), 3)
		other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext},
			CheckRedirect: f.client.CheckRedirect}
		f.client = other
		ask("fresh@example.org").status(t, http.StatusOK)
	})
}

// The limit per address of "email me my management link" counts every spelling of the address
// that sends to it: the service used to send when strings.EqualFold matched, which takes "ſ"
// (U+017F) for "s", while the limit counted strings.ToLower's spelling, so each spelling with "ſ"
// had a limit of its own and still sent to the customer.
func TestEmailMeMyManagementLinkIsLimitedPerAddressWhateverItsSpelling(t *testing.T) {
	t.Parallel()
	f := setup(t, storage.EngineSQLite)
	l, tok := f.invite(t)
	form := validForm(tok)
	form.Set("email", "jess@sassy.example")
	agreement := agreementToken(t, f.signUp(t, tok, form))
	s := sessionFrom(t, f.get(t, "/agreement?token="+url.QueryEscape(agreement)))

	variants := []string{"jess@sassy.example", "jeſs@sassy.example", "jesſ@sassy.example", "jeſſ@sassy.example",
		"jess@ſassy.example", "jess@saſsy.example"}
	accepted := 0
	for _, v := range variants {
		for range web.DefaultEmailLinkLimits.PerLinkAndAddress {
			p := f.post(t, "/agreement/email-link", url.Values{"token": {agreement}, "email": {v}}, s, nil)
			if p.Status == http.StatusOK {
				accepted++
			}
		}
	}
	n := 0
	for _, j := range f.emailJobs(t, l.ID) {
		if j.Email == billing.EmailManagementLink {
			n++
		}
	}
	if n > web.DefaultEmailLinkLimits.PerLinkAndAddress {
		t.Errorf("%d management-link emails queued to the one address %q in an hour (%d requests accepted), want at most %d; variants: %s",
			n, "jess@sassy.example", accepted, web.DefaultEmailLinkLimits.PerLinkAndAddress, strings.Join(variants, " "))
	}
}

// Requests that name a customer's address cannot use up the customer's own requests for a new
// link unless they carry the customer's link: the limit of an address is per link, and taken
// only for a genuine token. Whatever the others sent, the customer may still ask, and is still
// limited.
func TestEmailMeMyManagementLinkCannotBeLockedOutByOthers(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		// The others ask from a client address of their own, so that the client limit is not
		// what this test sees.
		others := *f
		others.client = &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext},
			CheckRedirect: f.client.CheckRedirect}
		otherKey := token.NewIssuer(billing.SigningKey{ID: "key_other", Secret: []byte(billing.RandomToken(32))}, f.clock.Now)
		for _, tt := range []struct {
			name string
			// token is what the others send, given the customer's link.
			token func(t *testing.T, customer billing.Link) string
			// sent is how many management links the others' requests send the customer.
			sent int
		}{
			{name: "a made-up token", token: func(*testing.T, billing.Link) string { return "garbage" }},
			{name: "the customer's link signed with another key", token: func(t *testing.T, customer billing.Link) string {
				tok, err := otherKey.Agreement(customer)
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}},
			{name: "the management link of another customer", token: func(t *testing.T, _ billing.Link) string {
				_, agreement := f.linked(t)
				return agreement
			}},
			{name: "the signup link of another invitation", token: func(t *testing.T, _ billing.Link) string {
				_, signup := f.invite(t)
				return signup
			}},
			// The partner holds the customer's signup link, and may know the address: it can have
			// links sent to the customer, never use up the requests of the customer's own token.
			{name: "the customer's own signup link, which the partner holds", token: func(t *testing.T, customer billing.Link) string {
				tok, err := f.tokens.Signup(customer)
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}, sent: web.DefaultEmailLinkLimits.PerLinkAndAddress},
		} {
			t.Run(tt.name, func(t *testing.T) {
				customer, agreement := f.linked(t)
				s := sessionFrom(t, f.get(t, "/agreement?token="+url.QueryEscape(agreement)))
				lockout := url.Values{"token": {tt.token(t, customer)}, "email": {"ada@example.com"}}
				// As many as would have used up the address's requests, and one more (refused, with
				// the token of a link, by that link's own limit).
				for range web.DefaultEmailLinkLimits.PerLinkAndAddress + 1 {
					if p := others.post(t, "/agreement/email-link", lockout, s, nil); p.Status != http.StatusOK && p.Status != http.StatusTooManyRequests {
						t.Fatalf("a request of the others: status %d:\n%s", p.Status, p.Body)
					}
				}

				ask := url.Values{"token": {agreement}, "email": {"ada@example.com"}}
				for range web.DefaultEmailLinkLimits.PerLinkAndAddress {
					f.post(t, "/agreement/email-link", ask, s, nil).status(t, http.StatusOK)
				}
				refused := f.post(t, "/agreement/email-link", ask, s, nil)
				refused.status(t, http.StatusTooManyRequests)
				refused.lacks(t, "If you asked already")
				if got, want := f.managementLinks(t, customer.ID), tt.sent+web.DefaultEmailLinkLimits.PerLinkAndAddress; got != want {
					t.Errorf("%d management links queued to the customer, want %d", got, want)
				}
			})
		}
	})
}

// The partner holds the customer's signup link, and may guess the customer's address: the limit
// it meets with the signup link must not depend on what the customer typed with it. The limit of
// a signup link was per address typed, so a customer who had asked with their address left that
// address one request fewer, and the partner, asking with a guessed address until refused, was
// refused one request sooner when the guess was what the customer had typed.
func TestEmailMeMyManagementLinkWithTheSignupLinkTellsNothingOfWhatTheCustomerTyped(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		// Two customers who gave the same address; each asks once with the signup link (its page
		// offers the form), one with that address, the other with another.
		answers := func(typed string) []string {
			t.Helper()
			_, tok := f.invite(t)
			agreementToken(t, f.signUp(t, tok, validForm(tok)))
			s := sessionFrom(t, f.get(t, "/signup?token="+url.QueryEscape(tok)))
			f.post(t, "/agreement/email-link", url.Values{"token": {tok}, "email": {typed}}, s, nil).status(t, http.StatusOK)
			// The partner asks with its guess until refused.
			var got []string
			for range web.DefaultEmailLinkLimits.PerLinkAndAddress + 1 {
				p := f.post(t, "/agreement/email-link", url.Values{"token": {tok}, "email": {"ada@example.com"}}, s, nil)
				got = append(got, strconv.Itoa(p.Status)+" Retry-After "+p.Header.Get("Retry-After"))
			}
			return got
		}
		typedTheGuess, typedAnother := answers("ada@example.com"), answers("ada.lovelace@example.com")
		if !slices.Equal(typedTheGuess, typedAnother) {
			t.Errorf("the partner's answers with a guessed address differ by whether the customer typed it:\n"+
				"customer typed the guess:   %v\ncustomer typed another one: %v", typedTheGuess, typedAnother)
		}
	})
}
