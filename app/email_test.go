package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/smtptest"
	"github.com/pyng/receivables/storage"
)

// emailJobs lists the send_email jobs in db's queue.
func emailJobs(t *testing.T, db storage.Database) []*rivertype.JobRow {
	t.Helper()
	queue, err := db.NewJobClient(&river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := queue.JobList(context.Background(), river.NewJobListParams().Kinds(billing.SendEmailJob{}.Kind()).First(1000))
	if err != nil {
		t.Fatal(err)
	}
	return res.Jobs
}

// waitFor polls cond every 20ms for up to timeout, failing the test with what if it never holds.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEmailJobsSendThroughSMTP runs the whole server with its job workers and an SMTP server on
// loopback: a signup in the sandbox makes the confirmation arrive, a revocation the revocation
// email, both sent by the send_email job through River; an SMTP server that answers 451 makes
// the job fail and River retry it, and the email arrives on the next attempt.
func TestEmailJobsSendThroughSMTP(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		inbox := smtptest.Start(t)
		s := apptest.Start(t, engine, apptest.Options{SMTPURL: inbox.URL()})
		tok := s.Token(t, s.Partner)
		sites := "/billing/sites/" + s.Site.ID
		call := func(path string, body any, want int) {
			t.Helper()
			if resp := s.Do(t, apptest.Request{Method: http.MethodPost, Path: sites + path, Token: tok, Body: body}); resp.Status != want {
				t.Fatalf("POST %s: status %d, want %d: %s", path, resp.Status, want, resp.Body)
			}
		}
		signUp := func(ref string) {
			t.Helper()
			call("/customers/invitations", map[string]string{"customerReference": ref}, http.StatusCreated)
			call("/sandbox/customers/"+ref+"/signup", nil, http.StatusOK)
		}
		arrives := func(n int, subject string) smtptest.Parts {
			t.Helper()
			m := inbox.Wait(t, n, 30*time.Second)[n-1]
			p := m.MustRead(t)
			if len(m.To) != 1 || m.To[0] != billing.SandboxCustomer.Email || p.Subject != subject {
				t.Errorf("email %d: to %v, subject %q; want to %s, %q", n, m.To, p.Subject, billing.SandboxCustomer.Email, subject)
			}
			return p
		}

		signUp("ACME-001")
		confirmation := arrives(1, "Your direct debit agreement with "+s.Site.Name)
		confirmation.Link(t, s.URL+"/agreement?token=")
		call("/sandbox/customers/ACME-001/customer-revocation", nil, http.StatusOK)
		arrives(2, "Your direct debit agreement with "+s.Site.Name+" has ended")

		inbox.RefuseNext(1)
		signUp("ACME-002")
		arrives(3, "Your direct debit agreement with "+s.Site.Name)
		if inbox.Refused() != 1 {
			t.Errorf("the SMTP server refused %d messages, want 1", inbox.Refused())
		}
		waitFor(t, 10*time.Second, "the email jobs are not all completed", func() bool {
			for _, j := range emailJobs(t, s.Store) {
				if j.State != rivertype.JobStateCompleted {
					return false
				}
			}
			return true
		})
		var retried bool
		for _, j := range emailJobs(t, s.Store) {
			if len(j.Errors) == 1 && j.Attempt == 2 && strings.Contains(j.Errors[0].Error, "451") {
				retried = true
			}
		}
		if !retried {
			t.Error("no email job failed with the 451 once and succeeded on its second attempt")
		}
		if got := len(inbox.Messages()); got != 3 {
			t.Errorf("the SMTP server holds %d messages, want 3 (none twice)", got)
		}
	})
}

// TestSandboxWithoutSMTPWritesEmailsToTheLog: in the sandbox, with no SMTP server, the job
// completes by writing the email to the server's log.
func TestSandboxWithoutSMTPWritesEmailsToTheLog(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		var log apptest.LogBuffer
		s := apptest.Start(t, engine, apptest.Options{Emails: true, Logger: log.Logger()})
		apptest.LinkedCustomer(t, s.Service, s.Site, "ACME-001")
		waitFor(t, 30*time.Second, "no email in the log", func() bool {
			return strings.Contains(log.String(), "email (no SMTP server configured: written to the log, not sent)")
		})
		line := ""
		for l := range strings.Lines(log.String()) {
			if strings.Contains(l, "no SMTP server configured") {
				line = l
			}
		}
		for _, want := range []string{"to=<" + billing.SandboxCustomer.Email + ">", `subject="Your direct debit agreement with ` + s.Site.Name + `"`,
			"/agreement?token", "Direct Debit Request Service Agreement"} {
			if !strings.Contains(line, want) {
				t.Errorf("the logged email lacks %q", want)
			}
		}
		if strings.Contains(line, billing.SandboxCustomer.AccountNumber) {
			t.Error("the logged email shows the whole account number")
		}
		waitFor(t, 10*time.Second, "the email job is not completed", func() bool {
			jobs := emailJobs(t, s.Store)
			return len(jobs) == 1 && jobs[0].State == rivertype.JobStateCompleted
		})
	})
}

// TestWithoutSMTPOutsideTheSandboxEmailsWaitUntilOneIsConfigured: a server outside the sandbox
// with no SMTP server warns at start; its email jobs wait in the queue (snoozed, not failed, no
// attempt spent). Restarted with PYNG_SMTP_URL, the server sends the waiting emails at once.
func TestWithoutSMTPOutsideTheSandboxEmailsWaitUntilOneIsConfigured(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		settings := map[string]string{"database-url": dbtest.URL(t, engine), "encryption-key": dbtest.KeyRing, "sandbox": "false",
			"public-url": "https://pay.example.com", "job-poll-interval": "20ms"}
		var log apptest.LogBuffer
		stop := runServer(t, settings, log.Logger()).stop
		if !strings.Contains(log.String(), "level=WARN msg=\"no SMTP server is configured (PYNG_SMTP_URL)") {
			t.Errorf("no warning at start:\n%s", log.String())
		}

		db := dbtest.OpenURL(t, settings["database-url"], storage.WithKeyring(dbtest.Keyring()))
		service, _, err := app.NewService(ctx, db, billing.SystemClock{}, app.ServiceSettings{})
		if err != nil {
			t.Fatal(err)
		}
		// Outside the sandbox, a site on the sandbox rail takes no invitation.
		site := apptest.OnRail(t, service, apptest.NewSite(t, service, "Acme Online").ID, rail.BECS)
		l := apptest.LinkedCustomer(t, service, site, "ACME-001")
		// Tried and put back: River records a snooze a moment after the worker returns, later
		// still on a loaded machine, so the test waits for it rather than for a fixed time.
		waitFor(t, 30*time.Second, "the email job was not tried and put back", func() bool {
			jobs := emailJobs(t, db)
			return len(jobs) == 1 && jobs[0].AttemptedAt != nil && jobs[0].State == rivertype.JobStateScheduled
		})
		if !strings.Contains(log.String(), "smtp=none becsOutbox=none becsSftp=none metrics=none") { // the serving line, logged by then
			t.Errorf("the serving line does not say where emails, BECS files and metrics go:\n%s", log.String())
		}
		time.Sleep(time.Second) // a while, with the queue polled every 20ms: it stays put back
		jobs := emailJobs(t, db)
		if len(jobs) != 1 || jobs[0].State != rivertype.JobStateScheduled || len(jobs[0].Errors) != 0 || jobs[0].Attempt != 0 {
			t.Fatalf("the email job while no SMTP server is configured: %+v; want it scheduled again, with no attempt spent and no error", jobs[0])
		}
		var args billing.SendEmailJob
		if err := json.Unmarshal(jobs[0].EncodedArgs, &args); err != nil || args.LinkID != l.ID || args.Email != billing.EmailSignupConfirmation {
			t.Errorf("the job's args = %s (%v)", jobs[0].EncodedArgs, err)
		}
		// The operator sees the email waiting, and for how long, in the metrics.
		backlog := gathered(t, app.JobBacklog(db))
		if waited := time.Since(jobs[0].CreatedAt).Seconds(); backlog["pyng_jobs_waiting{queue=emails}"] != 1 ||
			backlog["pyng_jobs_oldest_waiting_seconds{queue=emails}"] < waited-1 || backlog["pyng_jobs_oldest_waiting_seconds{queue=emails}"] > waited+5 {
			t.Errorf("the metrics of the waiting email: %v; want 1 email waiting for about %.1fs", backlog, waited)
		}
		stop()

		inbox := smtptest.Start(t)
		settings["smtp-url"] = inbox.URL()
		var log2 apptest.LogBuffer
		runServer(t, settings, log2.Logger())
		m := inbox.Wait(t, 1, 10*time.Second)[0]
		if p := m.MustRead(t); m.To[0] != billing.SandboxCustomer.Email || p.Subject != "Your direct debit agreement with Acme Online" {
			t.Errorf("the email that waited: to %v, subject %q", m.To, p.Subject)
		}
		if !strings.Contains(log2.String(), "sending the emails that waited for an SMTP server") || strings.Contains(log2.String(), "no SMTP server is configured") {
			t.Errorf("the restarted server's log:\n%s", log2.String())
		}
		waitFor(t, 10*time.Second, "the email job is not completed", func() bool {
			jobs := emailJobs(t, db)
			return len(jobs) == 1 && jobs[0].State == rivertype.JobStateCompleted
		})
		if backlog := gathered(t, app.JobBacklog(db)); backlog["pyng_jobs_waiting{queue=emails}"] != 0 || backlog["pyng_jobs_oldest_waiting_seconds{queue=emails}"] != 0 {
			t.Errorf("the metrics once the email is sent: %v; want none waiting", backlog)
		}
	})
}
