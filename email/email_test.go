package email_test

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/ddr"
	"github.com/pyng/receivables/email"
	"github.com/pyng/receivables/rail/becs/aba"
	"github.com/pyng/receivables/smtptest"
	"github.com/pyng/receivables/storage"
	"github.com/pyng/receivables/token"
)

func TestEmailsToTheCustomerArriveThroughSMTP(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		in := smtptest.Start(t)
		db := dbtest.Open(t, engine)
		service, rails := apptest.ServiceOver(t, db, apptest.ServiceOptions{})
		site := apptest.NewSite(t, service, "Acme Online")
		abn, name, tz := "51824753556", "Acme Pty Ltd", "Australia/Perth"
		if _, err := service.UpdateSite(ctx, site.ID, billing.SiteUpdate{LegalName: &name, ABN: &abn, TimeZone: &tz}); err != nil {
			t.Fatal(err)
		}
		if _, err := rails.BECS.SetUser(ctx, site.ID, aba.DebitUser{UserID: "123456", UserName: "ACME PTY LTD", Institution: "CBA",
			Description: "RECEIVABLES", TraceBSB: "062-000", TraceAccount: "87654321", Remitter: "ACME"}); err != nil {
			t.Fatal(err)
		}
		l := apptest.LinkedCustomer(t, service, site, "ACME-001")
		// The agreement mailed is the one agreed, not the site's as it stands when the email goes.
		other := "Acme Holdings Pty Ltd"
		if _, err := service.UpdateSite(ctx, site.ID, billing.SiteUpdate{LegalName: &other}); err != nil {
			t.Fatal(err)
		}
		mailer, tokens := smtpMailer(t, service, db, in, 30*24*time.Hour)

		// EmailNone, the job of a request for a management link with another address, sends nothing.
		if err := mailer.Send(ctx, 1, billing.SendEmailJob{LinkID: l.ID, Email: billing.EmailNone}); err != nil || len(in.Messages()) != 0 {
			t.Fatalf("send %s: %v, %d messages; want none sent", billing.EmailNone, err, len(in.Messages()))
		}
		for i, kind := range []billing.EmailKind{billing.EmailSignupConfirmation, billing.EmailManagementLink, billing.EmailRevocationConfirmation} {
			if kind == billing.EmailRevocationConfirmation {
				if _, err := service.RevokeByCustomer(ctx, l.ID); err != nil {
					t.Fatal(err)
				}
			}
			if err := mailer.Send(ctx, int64(i+2), billing.SendEmailJob{LinkID: l.ID, Email: kind}); err != nil {
				t.Fatalf("send %s: %v", kind, err)
			}
			got := in.Messages()
			if len(got) != i+1 {
				t.Fatalf("after sending %s the server has %d messages, want %d", kind, len(got), i+1)
			}
			m := got[i]
			if m.From != "no-reply@pyng.example" || len(m.To) != 1 || m.To[0] != billing.SandboxCustomer.Email {
				t.Errorf("%s: from %s to %v; want the address the customer gave, %s", kind, m.From, m.To, billing.SandboxCustomer.Email)
			}
			p := m.MustRead(t)
			subject, text, html, files := p.Subject, p.Text, p.HTML, p.Files
			if !strings.Contains(subject, "Acme Online") || text == "" || html == "" {
				t.Errorf("%s: subject %q, text %d bytes, html %d bytes; want both parts", kind, subject, len(text), len(html))
			}
			if strings.Contains(text, billing.SandboxCustomer.AccountNumber) {
				t.Errorf("%s shows the whole account number", kind)
			}
			switch kind {
			case billing.EmailSignupConfirmation:
				agreement := files["direct-debit-request-service-agreement.txt"]
				for _, want := range []string{"Direct Debit Request Service Agreement", "Acme Pty Ltd (trading as Acme Online)", "ABN 51 824 753 556", "user ID 123456"} {
					if !strings.Contains(agreement, want) || !strings.Contains(html, strings.ReplaceAll(want, "(", "(")) {
						t.Errorf("the attached or inline agreement lacks %q", want)
					}
				}
				if !strings.Contains(text, "BSB 062-000") || !strings.Contains(text, "AWST") {
					t.Errorf("the confirmation does not say what was agreed, in the site's time zone:\n%s", text)
				}
				fallthrough
			case billing.EmailManagementLink:
				manage := p.Link(t, "https://pay.example/agreement?token=")
				u, _ := url.Parse(manage)
				if id, err := tokens.ParseAgreement(u.Query().Get("token")); err != nil || id != l.ID {
					t.Errorf("%s: the management link %s names %q (%v), want %s", kind, manage, id, err, l.ID)
				}
				if !strings.Contains(text, "30 days") {
					t.Errorf("%s does not say how long the link lasts", kind)
				}
			case billing.EmailRevocationConfirmation:
				if !strings.Contains(text, "when you revoked it") || strings.Contains(text, "/agreement?token=") {
					t.Errorf("the revocation confirmation:\n%s", text)
				}
				// The agreement attached is the one agreed, which says how to dispute a debit.
				if agreement := files["direct-debit-request-service-agreement.txt"]; !strings.Contains(agreement, "Acme Pty Ltd (trading as Acme Online)") ||
					strings.Contains(agreement, other) {
					t.Errorf("the revocation confirmation's attached agreement is not the one agreed:\n%s", agreement)
				}
			}
		}
	})
}

// No email carries a link to manage a revoked agreement: a new management link asked for before
// the revocation and sent after it is not sent, and a signup confirmation sent after it goes
// without one.
func TestNoManagementLinkIsMailedForARevokedAgreement(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		in := smtptest.Start(t)
		service, db := apptest.NewService(t, engine)
		site := apptest.NewSite(t, service, "Acme Online")
		mailer, _ := smtpMailer(t, service, db, in, 30*24*time.Hour)
		for i, tt := range []struct {
			kind     billing.EmailKind
			wantSent bool
		}{
			{kind: billing.EmailManagementLink, wantSent: false},
			{kind: billing.EmailSignupConfirmation, wantSent: true},
		} {
			t.Run(string(tt.kind), func(t *testing.T) {
				l := apptest.LinkedCustomer(t, service, site, "ACME-00"+strconv.Itoa(i))
				if _, err := service.RevokeByCustomer(ctx, l.ID); err != nil {
					t.Fatal(err)
				}
				before := len(in.Messages())
				if err := mailer.Send(ctx, 1, billing.SendEmailJob{LinkID: l.ID, Email: tt.kind}); err != nil {
					t.Fatalf("send %s: %v", tt.kind, err)
				}
				got := in.Messages()[before:]
				if sent := len(got) == 1; sent != tt.wantSent || len(got) > 1 {
					t.Fatalf("%d messages sent, want sent %v", len(got), tt.wantSent)
				}
				for _, m := range got {
					if p := m.MustRead(t); strings.Contains(p.Text, "/agreement?token=") || strings.Contains(p.HTML, "/agreement?token=") {
						t.Errorf("the %s of a revoked agreement has a management link:\n%s", tt.kind, p.Text)
					}
				}
			})
		}
	})
}

// The emails name the account once ("BSB 062-000, account ••••5678"), say what a revocation
// does as the pages do, and say how long a link lasts in words.
func TestEmailsWording(t *testing.T) {
	ctx := context.Background()
	in := smtptest.Start(t)
	service, db := apptest.NewService(t, storage.EngineSQLite)
	site := apptest.NewSite(t, service, "Acme Online")
	l := apptest.LinkedCustomer(t, service, site, "ACME-001")
	mailer, _ := smtpMailer(t, service, db, in, 12*time.Hour)
	account := "(BSB 062-000, account ••••5678)"
	for i, tt := range []struct {
		kind        billing.EmailKind
		says, lacks []string
	}{
		{kind: billing.EmailSignupConfirmation, says: []string{account, "lasts 12 hours"}, lacks: []string{"account BSB", "12h0m0s"}},
		{kind: billing.EmailManagementLink, says: []string{"lasts 12 hours"}, lacks: []string{"12h0m0s"}},
		{kind: billing.EmailRevocationConfirmation, says: []string{account,
			"No new debits will be sent to your bank under it; a debit sent before it ended may still be",
			// A debit made before the end can still be disputed: the email says how.
			"you can still dispute it, as its", "Direct Debit Request Service Agreement says: it is attached to this email, as you agreed to it."},
			lacks: []string{"account BSB", "further debits", "https://pay.example/service-agreement/"}},
	} {
		t.Run(string(tt.kind), func(t *testing.T) {
			if tt.kind == billing.EmailRevocationConfirmation {
				if _, err := service.RevokeByCustomer(ctx, l.ID); err != nil {
					t.Fatal(err)
				}
			}
			if err := mailer.Send(ctx, 1, billing.SendEmailJob{LinkID: l.ID, Email: tt.kind}); err != nil {
				t.Fatalf("send %s: %v", tt.kind, err)
			}
			p := in.Wait(t, i+1, 10*time.Second)[i].MustRead(t)
			wantParts(t, p, tt.says, tt.lacks)
		})
	}
}

// No email is answered to the business that debits the customer (none has a Reply-To): a reply
// would quote to it what the email holds, the customer's name and bank details or the private
// management link, which the business is never shown. Each email says how to reach the business
// instead, and one that carries the link says that it is private.
func TestNoEmailIsAnsweredToTheBusiness(t *testing.T) {
	ctx := context.Background()
	in := smtptest.Start(t)
	service, db := apptest.NewService(t, storage.EngineSQLite)
	mailer, _ := smtpMailer(t, service, db, in, 12*time.Hour)
	const (
		reply   = "Reply to this email"
		private = "Keep this email to yourself: its link is private to you."
		contact = "Questions about your debits? Contact Acme Online by email to accounts@acme.example."
		unknown = "Questions about your debits? Contact Acme Online through the contact details Acme Online has given you."
	)
	sent := 0
	for _, tt := range []struct {
		name, siteEmail string
		kind            billing.EmailKind
		says, lacks     []string
	}{
		{"a revocation confirmation of a site with an address", "accounts@acme.example", billing.EmailRevocationConfirmation,
			[]string{contact}, []string{reply, private}},
		{"a revocation confirmation of a site without one", "", billing.EmailRevocationConfirmation, []string{unknown}, []string{reply, private}},
		{"a signup confirmation", "accounts@acme.example", billing.EmailSignupConfirmation, []string{private, contact}, []string{reply}},
		{"a management link", "accounts@acme.example", billing.EmailManagementLink, []string{private, contact}, []string{reply}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			site := apptest.NewSite(t, service, "Acme Online")
			if tt.siteEmail != "" {
				var err error
				if site, err = service.UpdateSite(ctx, site.ID, billing.SiteUpdate{Email: &tt.siteEmail}); err != nil {
					t.Fatal(err)
				}
			}
			l := apptest.LinkedCustomer(t, service, site, "ACME-001")
			if tt.kind == billing.EmailRevocationConfirmation {
				if _, err := service.RevokeByCustomer(ctx, l.ID); err != nil {
					t.Fatal(err)
				}
			}
			sent++
			if err := mailer.Send(ctx, int64(sent), billing.SendEmailJob{LinkID: l.ID, Email: tt.kind}); err != nil {
				t.Fatal(err)
			}
			m := in.Wait(t, sent, 10*time.Second)[sent-1]
			p := m.MustRead(t)
			if got := p.Header.Get("Reply-To"); got != "" {
				t.Errorf("Reply-To %q, want none", got)
			}
			if m.From != "no-reply@pyng.example" {
				t.Errorf("from %s, want the configured sender", m.From)
			}
			wantParts(t, p, tt.says, tt.lacks)
		})
	}
}

// A customer who agreed to the first wording of the agreement is told, in the confirmation, what
// that wording let the business collect, not what a later one does: the email says what the
// attachment says, whenever it is sent.
func TestTheConfirmationSaysWhatTheWordingAgreedToAllows(t *testing.T) {
	ctx := context.Background()
	in := smtptest.Start(t)
	service, db := apptest.NewService(t, storage.EngineSQLite)
	mailer, _ := smtpMailer(t, service, db, in, 12*time.Hour)
	site := apptest.NewSite(t, service, "Acme Online")
	l, err := service.Invite(ctx, site, "ACME-001")
	if err != nil {
		t.Fatal(err)
	}
	if l, err = db.LinkCustomer(ctx, l.ID, billing.SandboxCustomer, ddr.Terms{Site: site.Name}, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := mailer.Send(ctx, 1, billing.SendEmailJob{LinkID: l.ID, Email: billing.EmailSignupConfirmation}); err != nil {
		t.Fatal(err)
	}
	wantParts(t, in.Wait(t, 1, 10*time.Second)[0].MustRead(t),
		[]string{"Acme Online may collect the amounts it asks Pyng to collect from you"},
		[]string{"before each debit", "we will repay the amount"})
}

// wantParts checks that the text and the HTML parts of p, their spaces collapsed, each say every
// one of says and none of lacks.
func wantParts(t *testing.T, p smtptest.Parts, says, lacks []string) {
	t.Helper()
	for part, body := range map[string]string{"text": strings.Join(strings.Fields(p.Text), " "), "HTML": strings.Join(strings.Fields(p.HTML), " ")} {
		for _, s := range says {
			if !strings.Contains(body, s) {
				t.Errorf("the %s part lacks %q:\n%s", part, s, body)
			}
		}
		for _, s := range lacks {
			if strings.Contains(body, s) {
				t.Errorf("the %s part says %q:\n%s", part, s, body)
			}
		}
	}
}

// smtpMailer is the server's mailer over service, sending through the test SMTP server in, its
// management links lasting ttl; and its token issuer.
func smtpMailer(t *testing.T, service *billing.Service, db storage.Database, in *smtptest.Server, ttl time.Duration) (*email.Mailer, *token.Issuer) {
	t.Helper()
	tokens, err := app.Tokens(context.Background(), db, billing.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	tokens.SetAgreementTTL(ttl)
	sender, err := email.SMTP(in.URL())
	if err != nil {
		t.Fatal(err)
	}
	return email.New(email.Config{Service: service, Tokens: tokens, PublicURL: "https://pay.example", From: "Pyng <no-reply@pyng.example>",
		Sender: sender, ManagementLinkTTL: ttl}), tokens
}

// The revocation confirmation says who ended the agreement: the customer, the site, or the
// customer's bank (a returned debit ended the authority), never the site for the bank.
func TestRevocationConfirmationSaysWhoEndedTheAgreement(t *testing.T) {
	ctx := context.Background()
	in := smtptest.Start(t)
	service, db := apptest.NewService(t, storage.EngineSQLite)
	site := apptest.NewSite(t, service, "Acme Online")
	mailer, _ := smtpMailer(t, service, db, in, 12*time.Hour)
	for i, tt := range []struct {
		by          billing.RevokedBy
		says, lacks string
	}{
		{billing.RevokedByCustomer, "when you revoked it", "Acme Online ended it"},
		{billing.RevokedByPartner, "Acme Online ended it", "your bank returned"},
		{billing.RevokedByBank, "your bank returned a debit made under it, saying the account cannot be debited", "Acme Online ended it"},
	} {
		t.Run(string(tt.by), func(t *testing.T) {
			l := apptest.LinkedCustomer(t, service, site, "ACME-"+string(tt.by))
			if _, err := db.RevokeLink(ctx, l.ID, tt.by, time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := mailer.Send(ctx, 1, billing.SendEmailJob{LinkID: l.ID, Email: billing.EmailRevocationConfirmation}); err != nil {
				t.Fatal(err)
			}
			wantParts(t, in.Wait(t, i+1, 10*time.Second)[i].MustRead(t), []string{tt.says}, []string{tt.lacks})
		})
	}
}
