// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp's) on a loopback port for
// a test, keeping every message it accepts, so that the emails to customers are tested as they
// arrive and not through a fake sender. It can refuse messages for a while, as a server that is
// busy does (451), to see them retried.
package smtptest

import (
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	smtp "github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	From string
	To   []string
	Data string
}

// Server is a running SMTP server.
type Server struct {
	// Addr is its address, 127.0.0.1:port.
	Addr string

	mu       sync.Mutex
	messages []Message
	refuse   int // how many more messages to refuse
	refused  int
}

// Start runs a server on loopback, stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return s
}

// URL is the server's smtp:// URL, as PYNG_SMTP_URL takes it.
func (s *Server) URL() string { return "smtp://" + s.Addr }

// RefuseNext makes the server answer the next n messages with 451 (a temporary failure: try
// again later) and keep none of them.
func (s *Server) RefuseNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = n
}

// Refused is how many messages the server refused.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Wait waits up to timeout for the server to hold n messages and returns them, or fails the test.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.Messages()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the SMTP server holds %d messages after %s, want %d", len(got), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type session struct {
	s   *Server
	msg Message
}

func (ss *session) Reset()        { ss.msg = Message{} }
func (ss *session) Logout() error { return nil }
func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if ss.s.refuse > 0 {
		ss.s.refuse--
		ss.s.refused++
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "busy: try again later"}
	}
	ss.msg.From = from
	return nil
}
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.msg.To = append(ss.msg.To, to)
	return nil
}
func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.msg.Data = string(b)
	ss.s.mu.Lock()
	ss.s.messages = append(ss.s.messages, ss.msg)
	ss.s.mu.Unlock()
	return nil
}

// Parts is a message read: its header, its text and HTML parts, and its attachments by file name.
type Parts struct {
	Header     mail.Header
	Subject    string
	Text, HTML string
	Files      map[string]string
}

// Read reads the parts of a multipart message.
func (m Message) Read() (Parts, error) {
	msg, err := mail.ReadMessage(strings.NewReader(m.Data))
	if err != nil {
		return Parts{}, fmt.Errorf("read message: %w", err)
	}
	p := Parts{Header: msg.Header, Files: map[string]string{}}
	p.Subject, _ = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	var walk func(ct string, body io.Reader) error
	walk = func(ct string, body io.Reader) error {
		media, params, err := mime.ParseMediaType(ct)
		if err != nil {
			return fmt.Errorf("content type %q: %w", ct, err)
		}
		if !strings.HasPrefix(media, "multipart/") {
			return fmt.Errorf("a non-multipart body of %s", media)
		}
		r := multipart.NewReader(body, params["boundary"])
		for {
			part, err := r.NextPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			pct := part.Header.Get("Content-Type")
			pm, _, _ := mime.ParseMediaType(pct)
			b, err := io.ReadAll(part) // multipart.Part decodes quoted-printable
			if err != nil {
				return err
			}
			switch {
			case strings.HasPrefix(pm, "multipart/"):
				if err := walk(pct, strings.NewReader(string(b))); err != nil {
					return err
				}
			case part.FileName() != "":
				if strings.EqualFold(part.Header.Get("Content-Transfer-Encoding"), "base64") {
					if b, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(b)), "")); err != nil {
						return fmt.Errorf("attachment %s: %w", part.FileName(), err)
					}
				}
				p.Files[part.FileName()] = string(b)
			case pm == "text/plain":
				p.Text = string(b)
			case pm == "text/html":
				p.HTML = string(b)
			}
		}
	}
	return p, walk(msg.Header.Get("Content-Type"), msg.Body)
}

// MustRead is Read, failing the test on error.
func (m Message) MustRead(t testing.TB) Parts {
	t.Helper()
	p, err := m.Read()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Link returns the first word of the text part that starts with prefix (a URL), or fails the test.
func (p Parts) Link(t testing.TB, prefix string) string {
	t.Helper()
	for _, f := range strings.Fields(p.Text) {
		if strings.HasPrefix(f, prefix) {
			return f
		}
	}
	t.Fatalf("no link starting %s in:\n%s", prefix, p.Text)
	return ""
}
