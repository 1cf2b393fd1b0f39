package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
)

// signedUpCookie is the cookie named pyng-signed-up that p sets, if any.
func signedUpCookie(p page) *http.Cookie {
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		if c.Name == "pyng-signed-up" {
			return c
		}
	}
	return nil
}

// linkedOnce fails the test unless the link was linked once: one customer.linked event and one
// signup confirmation email.
func (f *fixture) linkedOnce(t *testing.T, l billing.Link) {
	t.Helper()
	if n := len(eventsOf(t, f.events(t), billing.EventCustomerLinked, l)); n != 1 {
		t.Errorf("%d customer.linked events of %s, want 1", n, l.CustomerReference)
	}
	if got := f.emailJobs(t, l.ID); len(got) != 1 || got[0].Email != billing.EmailSignupConfirmation {
		t.Errorf("email jobs %v, want one signup confirmation", got)
	}
}

// events are the site's events, every one written before the call among them.
func (f *fixture) events(t *testing.T) []billing.Event {
	t.Helper()
	// On PostgreSQL an event is listed once every transaction older than it has ended (other
	// tests' may delay it): once a later invitation's event is listed, so is every event before.
	marker, _ := f.invite(t)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		events, _, err := f.svc.Events(context.Background(), f.site, billing.EventFilter{Limit: billing.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		if len(eventsOf(t, events, billing.EventCustomerInvited, marker)) == 1 || time.Now().After(deadline) {
			return events
		}
	}
}

// eventsOf are the events of type typ of link l.
func eventsOf(t *testing.T, events []billing.Event, typ billing.EventType, l billing.Link) []billing.Event {
	t.Helper()
	var out []billing.Event
	for _, e := range events {
		if e.Type != typ {
			continue
		}
		var body struct {
			Data billing.LinkView `json:"data"`
		}
		if err := json.Unmarshal(e.Body, &body); err != nil {
			t.Fatal(err)
		}
		if body.Data.CustomerReference == l.CustomerReference {
			out = append(out, e)
		}
	}
	return out
}

// wantOwnAgreement fails the test unless p sends its browser to the agreement page of linkID
// and gives it the signed-up cookie.
func (f *fixture) wantOwnAgreement(t *testing.T, p page, linkID string) {
	t.Helper()
	if id, err := f.tokens.ParseAgreement(agreementToken(t, p)); err != nil || id != linkID {
		t.Errorf("sent to the agreement page of %q (%v), want %q", id, err, linkID)
	}
	if signedUpCookie(p) == nil {
		t.Errorf("no signed-up cookie; headers %v", p.Header)
	}
}

// A confirmation clicked twice: the browser abandons the first request, whose answer would have
// set the signed-up cookie, and shows the second's. The server sees the second arrive after the
// first completed, with the same cookies and nothing more (here at another replica): it answers
// as the first was answered, with the agreement page, and links nothing again. Another browser
// sending the same form (the partner, who holds the signup link) is told the link was used, and
// nothing of the customer.
func TestADoubleClickedConfirmationLeadsToTheAgreementPage(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		replica := f.replica(t)
		l, tok := f.invite(t)
		s := f.openForm(t, tok)
		f.wantOwnAgreement(t, f.post(t, "/signup", validForm(tok), s, nil), l.ID)
		linked := f.link(t, l.ID)

		f.wantOwnAgreement(t, replica.post(t, "/signup", validForm(tok), s, nil), l.ID)
		f.unchanged(t, linked)
		f.linkedOnce(t, l)

		other := replica.post(t, "/signup", validForm(tok), f.session(t), nil)
		other.status(t, http.StatusConflict)
		other.contains(t, "This link has already been used")
		other.lacks(t, "Ada Lovelace", "ada@example.com", "A LOVELACE", "062", "12345678", "/agreement?token=")
		if signedUpCookie(other) != nil {
			t.Errorf("another browser was given the signed-up cookie")
		}

		// Once the signed-up cookie would have expired, the same browser is told the link was used.
		f.clock.Advance(billing.SignupRepeatWindow)
		f.post(t, "/signup", validForm(tok), s, nil).status(t, http.StatusConflict)
		f.unchanged(t, linked)
	})
}

// Two confirmations at once from one browser (a double click, the first still unanswered; here
// to two replicas): one links, and both lead to its agreement page. From two browsers, one links
// and the other is told the link was used.
func TestConfirmationsSentAtOnce(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		replica := f.replica(t)
		// send posts tok's confirmation from the two sessions at once, the second to to.
		send := func(tok string, s session, to *fixture, s2 session) [2]page {
			var pages [2]page
			var wg sync.WaitGroup
			wg.Go(func() { pages[0] = f.post(t, "/signup", validForm(tok), s, nil) })
			wg.Go(func() { pages[1] = to.post(t, "/signup", validForm(tok), s2, nil) })
			wg.Wait()
			return pages
		}
		t.Run("from one browser", func(t *testing.T) {
			t.Parallel()
			for range 5 {
				l, tok := f.invite(t)
				s := f.openForm(t, tok)
				for _, p := range send(tok, s, replica, s) {
					f.wantOwnAgreement(t, p, l.ID)
				}
				if got := f.link(t, l.ID); got.StoredState != billing.LinkLinked {
					t.Errorf("link is %s, want linked", got.StoredState)
				}
				f.linkedOnce(t, l)
			}
		})
		t.Run("from two browsers", func(t *testing.T) {
			t.Parallel()
			l, tok := f.invite(t)
			pages := send(tok, f.openForm(t, tok), f, f.openForm(t, tok))
			if !(pages[0].Status == http.StatusSeeOther && pages[1].Status == http.StatusConflict) &&
				!(pages[0].Status == http.StatusConflict && pages[1].Status == http.StatusSeeOther) {
				t.Errorf("statuses %d and %d, want one 303 and one 409", pages[0].Status, pages[1].Status)
			}
			f.linkedOnce(t, l)
		})
	})
}

// A revocation confirmed twice at once (a double click, the first still unanswered; here to two
// replicas) revokes once, and both confirmations lead to the agreement page: the customer asked
// for what is done. A customer confirming an agreement the site revoked meanwhile is told so.
func TestARevocationConfirmedTwiceAtOnceRevokesOnce(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := setup(t, engine)
		replica := f.replica(t)
		confirm := func(to *fixture, agreement string, s session) page {
			return to.post(t, "/agreement/revoke", url.Values{"token": {agreement}, "confirm": {"yes"}}, s, nil)
		}
		wantAgreementPage := func(p page, agreement string) {
			t.Helper()
			p.status(t, http.StatusSeeOther)
			if got, want := p.Header.Get("Location"), "/agreement?token="+url.QueryEscape(agreement); got != want {
				t.Errorf("Location %q, want the agreement page %q", got, want)
			}
		}
		wantRevokedOnce := func(l billing.Link, by billing.RevokedBy) billing.Link {
			t.Helper()
			got := f.link(t, l.ID)
			if got.StoredState != billing.LinkRevoked || got.RevokedBy != by {
				t.Errorf("link is %s by %q, want revoked by %q", got.StoredState, got.RevokedBy, by)
			}
			if n := len(eventsOf(t, f.events(t), billing.EventCustomerRevoked, l)); n != 1 {
				t.Errorf("%d customer.revoked events, want 1", n)
			}
			return got
		}

		t.Run("at once", func(t *testing.T) {
			for range 5 {
				l, agreement := f.linked(t)
				s := sessionFrom(t, f.get(t, "/agreement/revoke?token="+url.QueryEscape(agreement)))
				var pages [2]page
				var wg sync.WaitGroup
				wg.Go(func() { pages[0] = confirm(f, agreement, s) })
				wg.Go(func() { pages[1] = confirm(replica, agreement, s) })
				wg.Wait()
				for _, p := range pages {
					wantAgreementPage(p, agreement)
				}
				wantRevokedOnce(l, billing.RevokedByCustomer)
			}
		})
		t.Run("revoked by the site", func(t *testing.T) {
			l, agreement := f.linked(t)
			s := sessionFrom(t, f.get(t, "/agreement/revoke?token="+url.QueryEscape(agreement)))
			if _, err := f.svc.RevokeByPartner(context.Background(), f.site, l.CustomerReference); err != nil {
				t.Fatal(err)
			}
			revoked := wantRevokedOnce(l, billing.RevokedByPartner)
			p := confirm(f, agreement, s)
			p.status(t, http.StatusConflict)
			p.contains(t, "This agreement is already revoked", sydneyTime(revoked.RevokedAt))
			f.unchanged(t, revoked)
		})
	})
}
