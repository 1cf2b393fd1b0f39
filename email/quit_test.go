package email_test

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/email"
	"github.com/pyng/receivables/storage"
)

// droppingQUIT is an SMTP server that accepts every message (250 at the end of DATA) and then
// drops the connection when the client says QUIT, as a server restarting, or a connection cut
// by a load balancer after the message was queued, does. It counts the messages it accepted.
type droppingQUIT struct {
	mu       sync.Mutex
	accepted int
}

func (s *droppingQUIT) serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.session(conn)
		}
	}()
	return "smtp://" + ln.Addr().String()
}

func (s *droppingQUIT) session(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	reply := func(line string) { _, _ = conn.Write([]byte(line + "\r\n")) }
	reply("220 localhost ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			reply("250 localhost")
		case cmd == "DATA":
			reply("354 go ahead")
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			s.mu.Lock()
			s.accepted++
			s.mu.Unlock()
			reply("250 2.0.0 queued")
		case cmd == "QUIT":
			return // the connection drops before the 221
		default:
			reply("250 OK")
		}
	}
}

func (s *droppingQUIT) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// An email the SMTP server accepted (250 at the end of DATA) is sent: a failure of the QUIT that
// follows does not unsend it, so the job must not fail, to be tried again and send the customer the
// same email once more at each attempt (nor uncount it from its address's cap).
func TestAnEmailAcceptedIsNotSentAgainWhenQUITFails(t *testing.T) {
	ctx := context.Background()
	in := &droppingQUIT{}
	url := in.serve(t)
	service, db := apptest.NewService(t, storage.EngineSQLite)
	site := apptest.NewSite(t, service, "Acme Online")
	l := apptest.LinkedCustomer(t, service, site, "ACME-001")
	tokens, err := app.Tokens(ctx, db, billing.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	sender, err := email.SMTP(url)
	if err != nil {
		t.Fatal(err)
	}
	mailer := email.New(email.Config{Service: service, Tokens: tokens, PublicURL: "https://pay.example",
		From: "Pyng <no-reply@pyng.example>", Sender: sender, EmailsPerAddress: 5})
	job := billing.SendEmailJob{LinkID: l.ID, Email: billing.EmailSignupConfirmation}
	// The job queue tries a job again while it fails: at most a few times here.
	attempts := 0
	for attempts < 3 {
		attempts++
		if err = mailer.Send(ctx, 42, job); err == nil {
			break
		}
	}
	if err != nil || in.count() != 1 {
		t.Fatalf("after %d attempts (last: %v) the server accepted the email %d times, want once and the job done", attempts, err, in.count())
	}
}
