// Package email writes and sends Pyng's emails to a customer, at the address the customer gave on
// the signup page: the signup confirmation (what was agreed, the Direct Debit Request Service
// Agreement, the management link), the revocation confirmation and a new management link. Each is
// sent by a billing.SendEmailJob, which names the link and the kind of email only; Mailer.Send
// reads the rest (sealed at rest) from the service when it sends. Messages have a plain-text and
// an HTML part and are built and sent with github.com/wneessen/go-mail.
package email

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/ddr"
	"github.com/pyng/receivables/internal/redact"
	"github.com/pyng/receivables/token"
)

// Sender sends a message.
type Sender interface {
	Send(ctx context.Context, m *mail.Msg) error
}

// smtpSender sends through an SMTP server.
type smtpSender struct{ client *mail.Client }

// SMTP returns the Sender of an SMTP URL: smtp://[user:password@]host[:port] (port 587 by
// default, STARTTLS when the server offers it; add ?tls=required to insist on it) or
// smtps://[user:password@]host[:port] (TLS from the start, port 465 by default).
func SMTP(rawURL string) (Sender, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" || (u.Scheme != "smtp" && u.Scheme != "smtps") {
		return nil, fmt.Errorf("%q is not an smtp:// or smtps:// URL with a host", redact.URL(rawURL))
	}
	// A parameter misspelt (tls=requried, TLS=required) would leave STARTTLS optional, unseen; so
	// would one u.Query drops as unreadable (tls=required;, a bad %-escape).
	query, err := url.ParseQuery(u.RawQuery)
	if err != nil || len(query) > 1 || len(query) == 1 && !slices.Equal(query["tls"], []string{"required"}) {
		return nil, fmt.Errorf("%q: the only parameter is tls=required", redact.URL(rawURL))
	}
	opts := []mail.Option{mail.WithTimeout(30 * time.Second)}
	port := 587
	if u.Scheme == "smtps" {
		port = 465
		opts = append(opts, mail.WithSSL())
	} else if query.Get("tls") == "required" {
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	} else {
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("%q: the port is not a number from 1 to 65535", redact.URL(rawURL))
		}
	}
	opts = append(opts, mail.WithPort(port))
	if u.User != nil {
		password, _ := u.User.Password()
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername(u.User.Username()), mail.WithPassword(password))
	}
	c, err := mail.NewClient(u.Hostname(), opts...)
	if err != nil {
		return nil, err
	}
	return smtpSender{client: c}, nil
}

// Send sends m in a connection of its own. Once the server has accepted the message (its 250 at
// the end of DATA), the message is sent: a failure of the QUIT that follows (the connection cut,
// the server restarting) is no failure of the send, which would have the job tried again and the
// customer sent the same email once more at each attempt. go-mail's DialAndSend reports it as one.
func (s smtpSender) Send(ctx context.Context, m *mail.Msg) error {
	client, err := s.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return fmt.Errorf("dial failed: %w", err)
	}
	if err := s.client.SendWithSMTPClient(client, m); err != nil {
		if s.client.CloseWithSMTPClient(client) != nil {
			_ = client.Close()
		}
		return fmt.Errorf("send failed: %w", err)
	}
	if s.client.CloseWithSMTPClient(client) != nil {
		_ = client.Close() // a failed QUIT leaves the connection open
	}
	return nil
}

// logSender writes each message to the log instead of sending it: the sandbox's sender when no
// SMTP server is configured.
type logSender struct{ logger *slog.Logger }

// Log returns the Sender that writes messages to logger.
func Log(logger *slog.Logger) Sender { return logSender{logger: logger} }

func (s logSender) Send(ctx context.Context, m *mail.Msg) error {
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		return err
	}
	s.logger.InfoContext(ctx, "email (no SMTP server configured: written to the log, not sent)",
		"to", strings.Join(m.GetToString(), ", "), "subject", strings.Join(m.GetGenHeader(mail.HeaderSubject), ""), "message", buf.String())
	return nil
}

// Config is what a Mailer needs.
type Config struct {
	Service *billing.Service
	Tokens  *token.Issuer
	// PublicURL is the server's external base URL, of the links in the emails.
	PublicURL string
	// From is the sender's address, such as "Pyng <no-reply@example.com>".
	From   string
	Sender Sender
	// ManagementLinkTTL is how long a management link lasts (0: it does not expire).
	ManagementLinkTTL time.Duration
	// EmailsPerAddress caps the emails to one address in any billing.EmailCapWindow, whatever
	// their kind (billing.Service.ClaimEmail; 0: no cap).
	EmailsPerAddress int
	// SuppressedFunc, when set, is told of each email not sent for the cap of its address, by
	// its link and kind (never its address).
	SuppressedFunc func(ctx context.Context, linkID string, kind billing.EmailKind)
}

// Mailer writes and sends the emails to customers.
type Mailer struct{ cfg Config }

// New returns the Mailer of cfg.
func New(cfg Config) *Mailer {
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	return &Mailer{cfg: cfg}
}

// Send writes and sends the email of job, whose id in the queue is id. A link whose customer's
// details were erased (long after it ended), or that no longer exists, gets no email and no
// error; nor does a request for a management link whose agreement was revoked since: nothing is
// left to manage. Nor does an email over the cap of its address (Config.EmailsPerAddress), which
// is not tried again: it is counted when it is sent, once whatever its attempts (by id), and
// uncounted if it could not be.
func (m *Mailer) Send(ctx context.Context, id int64, job billing.SendEmailJob) error {
	if m.cfg.Sender == nil {
		return ErrNotConfigured // EmailNone too, so that it waits in the queue as the others do
	}
	if job.Email == billing.EmailNone {
		return nil
	}
	l, _, err := m.cfg.Service.LinkByID(ctx, job.LinkID)
	if billing.HasCode(err, billing.CodeLinkNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Customer.Email == "" || (job.Email == billing.EmailManagementLink && l.StoredState == billing.LinkRevoked) {
		return nil
	}
	site, err := m.cfg.Service.SiteByID(ctx, l.SiteID) // read fresh: its debit user may have changed
	if err != nil {
		return err
	}
	msg, err := m.Message(ctx, job.Email, l, site)
	if err != nil {
		return err
	}
	// The job's id names the email. River deletes a completed job a day after, and the hourly
	// purge removes its claim a day after it was made: a job given the id again (River's SQLite
	// ids may be reused once deleted) may find the claim for up to an hour, and its email is then
	// sent uncounted, one email over the cap at most.
	emailID := strconv.FormatInt(id, 10)
	if m.cfg.EmailsPerAddress > 0 {
		ok, err := m.cfg.Service.ClaimEmail(ctx, emailID, l.SiteID, l.Customer.Email, m.cfg.EmailsPerAddress)
		if err != nil {
			return err
		}
		if !ok {
			if m.cfg.SuppressedFunc != nil {
				m.cfg.SuppressedFunc(ctx, l.ID, job.Email)
			}
			return nil
		}
	}
	if err := m.cfg.Sender.Send(ctx, msg); err != nil {
		// The job queue keeps the error, in plaintext, and logs it: it names the link, never the
		// customer's address, which SMTP servers' refusals and go-mail's errors quote.
		err = fmt.Errorf("send the %s email of link %s: %s", job.Email, l.ID, withoutAddress(err.Error(), l.Customer.Email))
		if m.cfg.EmailsPerAddress > 0 {
			// Not sent, it does not count: released even when the job's time is up (the likely
			// cause of the failure), for a few seconds more. If the release fails all the same,
			// the email counts once, whatever its attempts.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
			err = errors.Join(err, m.cfg.Service.ReleaseEmail(rctx, emailID))
			cancel()
		}
		return err
	}
	return nil
}

// releaseTimeout bounds the release of an email's claim after its send failed.
const releaseTimeout = 5 * time.Second

// withoutAddress is text with every occurrence of the address, in any case, replaced. A
// case-insensitive regular expression matches on the text as it is: lower-casing the text first
// would move the bytes of some characters (invalid UTF-8, "İ"), and cut the text in the wrong
// places.
func withoutAddress(text, address string) string {
	if address == "" {
		return text
	}
	return regexp.MustCompile("(?i)"+regexp.QuoteMeta(address)).ReplaceAllLiteralString(text, "(the customer's address)")
}

// content is what the templates of an email show.
type content struct {
	Kind                billing.EmailKind
	Site, Name          string
	BSB, Account        string
	LinkedAt, RevokedAt string
	RevokedByCustomer   bool
	RevokedByBank       bool // a return of a debit ended the customer's authority
	ManageURL           string
	AgreementURL        string
	// Contact says how to reach the business. No email is answered to it (none has a Reply-To):
	// a reply would quote what the email holds, the customer's name and bank details, or the
	// private management link, to the business, which is never shown them.
	Contact string
	// Amounts is what the customer authorised to be collected, in the wording they agreed to.
	Amounts   string
	Validity  string
	Agreement []ddr.Section
}

// Message writes the email of kind to the customer of l, a link of site.
func (m *Mailer) Message(ctx context.Context, kind billing.EmailKind, l billing.Link, site billing.Site) (*mail.Msg, error) {
	when := func(t time.Time) string { return t.In(site.Location()).Format("2 January 2006 at 3:04 pm MST") }
	// The agreement the customer agreed to, not the site's as it may stand when the job runs.
	terms, err := m.cfg.Service.AgreedTerms(ctx, l, site)
	if err != nil {
		return nil, err
	}
	c := content{Kind: kind, Site: site.Name, Name: l.Customer.Name, BSB: formatBSB(l.Customer.BSB), Account: maskAccount(l.Customer.AccountNumber),
		LinkedAt: when(l.LinkedAt), RevokedByCustomer: l.RevokedBy == billing.RevokedByCustomer,
		RevokedByBank: l.RevokedBy == billing.RevokedByBank,
		AgreementURL:  m.cfg.PublicURL + "/service-agreement/" + site.ID, Validity: billing.ManagementLinkValidity(m.cfg.ManagementLinkTTL),
		Contact: ddr.Terms{Site: site.Name, Phone: site.DebitUser.Phone, Email: site.DebitUser.Email, Address: site.DebitUser.Address}.Contact(),
		Amounts: terms.Amounts()}
	if !l.RevokedAt.IsZero() {
		c.RevokedAt = when(l.RevokedAt)
	}
	var subject string
	switch kind {
	case billing.EmailSignupConfirmation:
		subject = "Your direct debit agreement with " + site.Name
		c.Agreement = ddr.Sections(terms)
	case billing.EmailRevocationConfirmation:
		subject = "Your direct debit agreement with " + site.Name + " has ended"
	case billing.EmailManagementLink:
		if l.StoredState == billing.LinkRevoked {
			return nil, fmt.Errorf("no management link for link %s: its agreement is revoked", l.ID)
		}
		subject = "Your link to manage your agreement with " + site.Name
	default:
		return nil, fmt.Errorf("unknown email %q", kind)
	}
	// No link to manage a revoked agreement: a signup confirmation sent after the revocation
	// goes without one.
	if kind != billing.EmailRevocationConfirmation && l.StoredState != billing.LinkRevoked {
		tok, err := m.cfg.Tokens.Agreement(l)
		if err != nil {
			return nil, err
		}
		c.ManageURL = m.cfg.PublicURL + "/agreement?token=" + url.QueryEscape(tok)
	}
	var text, html bytes.Buffer
	if err := textTemplate.Execute(&text, c); err != nil {
		return nil, err
	}
	if err := htmlTemplate.Execute(&html, c); err != nil {
		return nil, err
	}
	msg := mail.NewMsg()
	if err := msg.From(m.cfg.From); err != nil {
		return nil, fmt.Errorf("the sender's address %q: %w", m.cfg.From, err)
	}
	if err := msg.To(l.Customer.Email); err != nil {
		return nil, fmt.Errorf("the customer's address: %w", err)
	}
	msg.Subject(subject)
	msg.SetBodyString(mail.TypeTextPlain, text.String())
	msg.AddAlternativeString(mail.TypeTextHTML, html.String())
	// The agreement as the customer agreed to it goes with the confirmations of its start and of its
	// end: it says how to dispute a debit, which the revocation confirmation points to, and the
	// site's page shows the agreement as it stands now, which may have changed since.
	if kind == billing.EmailSignupConfirmation || kind == billing.EmailRevocationConfirmation {
		if err := msg.AttachReader("direct-debit-request-service-agreement.txt", strings.NewReader(ddr.Text(terms)),
			mail.WithFileContentType(mail.TypeTextPlain)); err != nil {
			return nil, err
		}
	}
	return msg, nil
}

// ErrNotConfigured is returned by a Mailer without a Sender.
var ErrNotConfigured = errors.New("email: no SMTP server is configured")

func maskAccount(n string) string {
	if len(n) > 4 {
		n = n[len(n)-4:]
	}
	return "••••" + n
}

func formatBSB(b string) string {
	if len(b) != 6 {
		return b
	}
	return b[:3] + "-" + b[3:]
}
