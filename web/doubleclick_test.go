package web_test

import (
	"context"
	"encoding/json"
	"net/http"
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
	// On PostgreSQL an event is listed once every transaction older than it has ended (other
	// tests' may delay it): once a later invitation's event is listed, so is every event before.
	marker, _ := f.invite(t)
	var events []billing.Event
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		if events, _, err = f.svc.Events(context.Background(), f.site, billing.EventFilter{Limit: billing.MaxPageSize}); err != nil {
			t.Fatal(err)
		}
		if len(eventsOf(t, events, billing.EventCustomerInvited, marker)) == 1 {
			break
		}
	}
	if n := len(eventsOf(t, events, billing.EventCustomerLinked, l)); n != 1 {
		t.Errorf("%d customer.linked events of %s, want 1", n, l.CustomerReference)
	}
	if got := f.emailJobs(t, l.ID); len(got) != 1 || got[0].Email != billing.EmailSignupConfirmation {
		t.Errorf("email jobs %v, want one signup confirmation", got)
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
