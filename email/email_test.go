package email_test

import (
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	smtp "github.com/emersion/go-smtp"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/email"
)

// received is one message the test's SMTP server accepted.
type received struct {
	from string
	to   []string
	data string
}

// inbox is an SMTP server on loopback (go-smtp's) that keeps every message it accepts.
type inbox struct {
	mu       sync.Mutex
	messages []received
	addr     string
}

type session struct {
	in  *inbox
	msg received
}

func (s *session) Reset()                                      { s.msg = received{} }
func (s *session) Logout() error                               { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error { s.msg.from = from; return nil }
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.to = append(s.msg.to, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = string(b)
	s.in.mu.Lock()
	s.in.messages = append(s.in.messages, s.msg)
	s.in.mu.Unlock()
	return nil
}

func startInbox(t *testing.T) *inbox {
	t.Helper()
	in := &inbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{in: in}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return in
}

func (in *inbox) all() []received {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]received(nil), in.messages...)
}

// parts reads a message's text and HTML parts and its attachments by file name.
func parts(t *testing.T, data string) (header mail.Header, text, html string, files map[string]string) {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(data))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	files = map[string]string{}
	var walk func(ct string, body io.Reader)
	walk = func(ct string, body io.Reader) {
		media, params, err := mime.ParseMediaType(ct)
		if err != nil {
			t.Fatalf("content type %q: %v", ct, err)
		}
		if !strings.HasPrefix(media, "multipart/") {
			t.Fatalf("a non-multipart body of %s", media)
		}
		r := multipart.NewReader(body, params["boundary"])
		for {
			p, err := r.NextPart()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pct := p.Header.Get("Content-Type")
			pm, _, _ := mime.ParseMediaType(pct)
			b, _ := io.ReadAll(p) // multipart.Part decodes quoted-printable
			switch {
			case strings.HasPrefix(pm, "multipart/"):
				walk(pct, strings.NewReader(string(b)))
			case p.FileName() != "":
				files[p.FileName()] = decodeBase64(t, p.Header.Get("Content-Transfer-Encoding"), b)
			case pm == "text/plain":
				text = string(b)
			case pm == "text/html":
				html = string(b)
			}
		}
	}
	walk(m.Header.Get("Content-Type"), m.Body)
	return m.Header, text, html, files
}

func TestEmailsToTheCustomerArriveThroughSMTP(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		in := startInbox(t)
		service, db := apptest.NewService(t, engine)
		site := apptest.NewSite(t, service, "Acme Online")
		abn, name, tz := "51824753556", "Acme Pty Ltd", "Australia/Perth"
		if _, err := service.UpdateSite(ctx, site.ID, billing.SiteUpdate{LegalName: &name, ABN: &abn, TimeZone: &tz}); err != nil {
			t.Fatal(err)
		}
		l := apptest.LinkedCustomer(t, service, site, "ACME-001")
		tokens, err := app.Tokens(ctx, db, billing.SystemClock{})
		if err != nil {
			t.Fatal(err)
		}
		tokens.SetAgreementTTL(30 * 24 * time.Hour)
		sender, err := email.SMTP("smtp://" + in.addr)
		if err != nil {
			t.Fatal(err)
		}
		mailer := email.New(email.Config{Service: service, Tokens: tokens, PublicURL: "https://pay.example", From: "Pyng <no-reply@pyng.example>",
			Sender: sender, ManagementLinkTTL: 30 * 24 * time.Hour,
			DebitUserIDFunc: func(context.Context, string) (string, error) { return "123456", nil }})

		for i, kind := range []billing.EmailKind{billing.EmailSignupConfirmation, billing.EmailManagementLink, billing.EmailRevocationConfirmation} {
			if kind == billing.EmailRevocationConfirmation {
				if _, err := service.RevokeByCustomer(ctx, l.ID); err != nil {
					t.Fatal(err)
				}
			}
			if err := mailer.Send(ctx, billing.SendEmailJob{LinkID: l.ID, Email: kind}); err != nil {
				t.Fatalf("send %s: %v", kind, err)
			}
			got := in.all()
			if len(got) != i+1 {
				t.Fatalf("after sending %s the server has %d messages, want %d", kind, len(got), i+1)
			}
			m := got[i]
			if m.from != "no-reply@pyng.example" || len(m.to) != 1 || m.to[0] != billing.SandboxCustomer.Email {
				t.Errorf("%s: from %s to %v; want the address the customer gave, %s", kind, m.from, m.to, billing.SandboxCustomer.Email)
			}
			header, text, html, files := parts(t, m.data)
			subject, _ := new(mime.WordDecoder).DecodeHeader(header.Get("Subject"))
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
				manage := managementURL(t, text)
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
			}
		}
	})
}

func managementURL(t *testing.T, text string) string {
	t.Helper()
	for _, f := range strings.Fields(text) {
		if strings.HasPrefix(f, "https://pay.example/agreement?token=") {
			return f
		}
	}
	t.Fatalf("no management link in:\n%s", text)
	return ""
}

func decodeBase64(t *testing.T, encoding string, b []byte) string {
	t.Helper()
	if !strings.EqualFold(encoding, "base64") {
		return string(b)
	}
	out, err := base64Decode(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}
