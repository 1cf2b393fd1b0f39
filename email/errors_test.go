package email_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	smtp "github.com/emersion/go-smtp"
	"github.com/riverqueue/river"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/email"
	"github.com/pyng/receivables/jobs"
)

// greylisting is an SMTP server that answers every RCPT TO with 450, as a greylisting or busy
// mail server does: a temporary failure, for the client to try again later.
type greylisting struct{}

func (greylisting) Reset()        {}
func (greylisting) Logout() error { return nil }
func (greylisting) Mail(string, *smtp.MailOptions) error {
	return nil
}
func (greylisting) Rcpt(string, *smtp.RcptOptions) error {
	return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "greylisted, try again later"}
}
func (greylisting) Data(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }

// The server's email queue against an SMTP server that greylists the recipient. The customer's
// email address is sealed at rest and erased with the link's details; the job names the link only,
// so that the queue holds no copy of it. The attempt's error, which River keeps in
// river_job.errors (plaintext, out of reach of keys rotate and of the erasure) and logs, names the
// link and not the address, which go-mail's error quoted.
func TestAnEmailJobsErrorsNeverHoldTheCustomersAddress(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return greylisting{}, nil }))
		srv.Domain = "localhost"
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { srv.Close() })

		service, db := apptest.NewService(t, engine)
		site := apptest.NewSite(t, service, "Acme Online")
		tokens, err := app.Tokens(ctx, db, billing.SystemClock{})
		if err != nil {
			t.Fatal(err)
		}
		sender, err := email.SMTP("smtp://" + ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		mailer := email.New(email.Config{Service: service, Tokens: tokens, PublicURL: "https://pay.example",
			From: "Pyng <no-reply@pyng.example>", Sender: sender})
		cfg := jobs.DefaultConfig
		cfg.PollInterval = 50 * time.Millisecond
		cfg.SendEmailFunc = mailer.Send
		client, err := db.NewJobClient(jobs.NewConfig(service, slog.New(slog.DiscardHandler), cfg))
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.Stop(context.Background()) })

		apptest.LinkedCustomer(t, service, site, "ACME-001") // enqueues the signup confirmation

		deadline := time.Now().Add(30 * time.Second)
		for {
			res, err := client.JobList(ctx, river.NewJobListParams().Kinds(billing.SendEmailJob{}.Kind()))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Jobs) == 1 && len(res.Jobs[0].Errors) > 0 {
				for _, e := range res.Jobs[0].Errors {
					if !strings.Contains(e.Error, "email of link") {
						t.Errorf("river_job.errors holds %q, want the failed send's error", e.Error)
					}
					if strings.Contains(strings.ToLower(e.Error), strings.ToLower(billing.SandboxCustomer.Email)) {
						t.Fatalf("river_job.errors of the email job (args %s) holds the customer's address in plaintext:\n%s",
							res.Jobs[0].EncodedArgs, e.Error)
					}
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the email job was not tried within 30s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}
