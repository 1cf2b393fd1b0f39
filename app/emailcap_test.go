package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river/rivertype"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/jobs"
	"github.com/pyng/receivables/smtptest"
	"github.com/pyng/receivables/storage"
)

// signUpWith invites ref at site and signs the customer up with the address given, as the signup
// form does (whoever holds the signup link, the partner too, types any address there).
func signUpWith(t *testing.T, service *billing.Service, site billing.Site, ref, address string) billing.Link {
	t.Helper()
	ctx := context.Background()
	l, err := service.Invite(ctx, site, ref)
	if err != nil {
		t.Fatalf("invite %s: %v", ref, err)
	}
	c := billing.SandboxCustomer
	c.Email = address
	terms, err := service.Terms(ctx, site)
	if err != nil {
		t.Fatal(err)
	}
	linked, err := service.CompleteSignup(ctx, l, c, billing.Declarations{Consent: true, Authorised: true, Terms: terms.Version()}, "")
	if err != nil {
		t.Fatalf("sign up %s: %v", ref, err)
	}
	return linked
}

// emailsDone waits until db's queue holds n email jobs, every one completed at its first attempt
// without an error: an email over the cap is not sent, and not tried again.
func emailsDone(t *testing.T, db storage.Database, n int) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("the %d email jobs are not all completed", n), func() bool {
		jobs := emailJobs(t, db)
		for _, j := range jobs {
			if j.State != rivertype.JobStateCompleted {
				return false
			}
		}
		return len(jobs) == n
	})
	for _, j := range emailJobs(t, db) {
		if j.Attempt != 1 || len(j.Errors) != 0 {
			t.Errorf("email job %d: attempt %d, errors %v; want one attempt, no error", j.ID, j.Attempt, j.Errors)
		}
	}
}

// sentTo counts the messages the SMTP server holds for each recipient.
func sentTo(in *smtptest.Server) map[string]int {
	out := map[string]int{}
	for _, m := range in.Messages() {
		for _, to := range m.To {
			out[to]++
		}
	}
	return out
}

// suppressedMetrics reads pyng_customer_emails_suppressed_total by kind from the server's
// metrics as PYNG_METRICS_ADDR serves them (the API's /metrics leaves it out).
func suppressedMetrics(t *testing.T, s *apptest.Server) map[string]string {
	t.Helper()
	families, err := s.OperatorMetrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range families {
		if f.GetName() != "pyng_customer_emails_suppressed_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" {
					out[l.GetValue()] = strconv.FormatFloat(m.GetCounter().GetValue(), 'f', -1, 64)
				}
			}
		}
	}
	return out
}

// TestEmailsToOneAddressAreCappedADay runs the server with its job workers, an SMTP server on
// loopback and a cap of 2 emails an address a day from one site: a signup and its revocation are
// sent; the signup again of the same address (typed in other case, between spaces) is not, nor
// tried again; another address is not held back by it, and gets its own 2, management links
// included; nor is the address's signup at another site (whoever spent the cap on one site's
// links holds back no other site's confirmation). Each email not sent is counted in the metrics
// by kind, and logged with its link, never its address.
func TestEmailsToOneAddressAreCappedADay(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		inbox := smtptest.Start(t)
		var log apptest.LogBuffer
		s := apptest.Start(t, engine, apptest.Options{SMTPURL: inbox.URL(), EmailsPerAddressPerDay: 2, Logger: log.Logger()})

		signUpWith(t, s.Service, s.Site, "C1", "jane@example.com")
		emailsDone(t, s.Store, 1)
		if _, err := s.Service.RevokeByPartner(ctx, s.Site, "C1"); err != nil {
			t.Fatal(err)
		}
		emailsDone(t, s.Store, 2)
		again := signUpWith(t, s.Service, s.Site, "C1", "  JANE@Example.COM ")
		emailsDone(t, s.Store, 3)
		john := signUpWith(t, s.Service, s.Site, "C2", "john@example.com")
		emailsDone(t, s.Store, 4)
		for range 2 { // john's second email is sent, his third is not
			if err := s.Service.RequestManagementLink(ctx, john.ID, "john@example.com"); err != nil {
				t.Fatal(err)
			}
		}
		emailsDone(t, s.Store, 6)
		signUpWith(t, s.Service, apptest.NewSite(t, s.Service, "Bolt"), "C1", "jane@example.com")
		emailsDone(t, s.Store, 7)

		if got := sentTo(inbox); len(got) != 2 || got["jane@example.com"] != 3 || got["john@example.com"] != 2 {
			t.Errorf("sent: %v; want 3 to jane@example.com (her third of the first site held back, not the other site's) and 2 to john@example.com", got)
		}
		want := map[string]string{"signupConfirmation": "1", "revocationConfirmation": "0", "managementLink": "1"}
		if got := suppressedMetrics(t, s); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("pyng_customer_emails_suppressed_total = %v, want %v", got, want)
		}
		logged := log.String()
		for _, line := range []string{
			`level=WARN msg="email to a customer not sent: its address was sent PYNG_EMAILS_PER_ADDRESS_PER_DAY emails from its site in the last 24 hours" link=` + again.ID + ` kind=signupConfirmation limit=2`,
			`level=WARN msg="email to a customer not sent: its address was sent PYNG_EMAILS_PER_ADDRESS_PER_DAY emails from its site in the last 24 hours" link=` + john.ID + ` kind=managementLink limit=2`,
		} {
			if !strings.Contains(logged, line) {
				t.Errorf("the log lacks %q:\n%s", line, logged)
			}
		}
		if lower := strings.ToLower(logged); strings.Contains(lower, "jane@") || strings.Contains(lower, "john@") {
			t.Errorf("the log names a customer's address:\n%s", logged)
		}
	})
}

// TestTwoReplicasSendNoMoreThanTheCap runs two replicas' job workers (each its own database
// pool and mailer) on one PostgreSQL database, with twenty signup confirmations to one address
// waiting when they start and a cap of 3: the replicas' workers claim them at once, and exactly 3
// are sent; the others are counted as held back, by one replica or the other.
func TestTwoReplicasSendNoMoreThanTheCap(t *testing.T) {
	ctx := context.Background()
	url := dbtest.URL(t, storage.EnginePostgres)
	inbox := smtptest.Start(t)
	const signups, limit = 20, 3
	var db storage.Database
	var registries []*prometheus.Registry
	for replica := range 2 {
		rdb := dbtest.OpenURL(t, url, storage.WithKeyring(dbtest.Keyring()))
		service, _, err := app.NewService(ctx, rdb, billing.SystemClock{}, app.ServiceSettings{Sandbox: true})
		if err != nil {
			t.Fatal(err)
		}
		tokens, err := app.Tokens(ctx, rdb, billing.SystemClock{})
		if err != nil {
			t.Fatal(err)
		}
		registry := prometheus.NewRegistry()
		registries = append(registries, registry)
		mailer, err := app.Mailer(app.Config{SMTPURL: inbox.URL(), PublicURL: "https://pay.example", MailFrom: "Pyng <no-reply@pyng.test>",
			EmailsPerAddressPerDay: limit}, service, tokens, slog.New(slog.DiscardHandler), registry)
		if err != nil {
			t.Fatal(err)
		}
		if replica == 0 {
			db = rdb
			site := apptest.NewSite(t, service, "Acme")
			for i := range signups {
				signUpWith(t, service, site, fmt.Sprintf("C%d", i), "jane@example.com")
			}
		}
		cfg := jobs.DefaultConfig
		cfg.PollInterval, cfg.EmailWorkers, cfg.SendEmailFunc = 20*time.Millisecond, 10, mailer.Send
		startJobs(t, rdb, service, cfg)
	}
	emailsDone(t, db, signups)
	if got := len(inbox.Messages()); got != limit {
		t.Errorf("the replicas sent %d emails to one address, want the cap, %d", got, limit)
	}
	suppressed := 0.0
	for _, r := range registries {
		families, err := r.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == "pyng_customer_emails_suppressed_total" {
				for _, m := range f.GetMetric() {
					suppressed += m.GetCounter().GetValue()
				}
			}
		}
	}
	if suppressed != signups-limit {
		t.Errorf("the replicas counted %v emails held back, want %d", suppressed, signups-limit)
	}
}
