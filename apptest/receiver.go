package apptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Receiver is a partner's webhook endpoint on a fixed loopback address. It verifies every
// delivery with the official Standard Webhooks library alone (the partner's side, not ours),
// keeps the body of each message it accepted, and can be stopped and started again on the same
// address, as a partner's server that goes down and comes back.
type Receiver struct {
	// URL is the endpoint's URL, the same across Stop and Start.
	URL  string
	addr string

	mu       sync.Mutex
	srv      *http.Server
	verifier *standardwebhooks.Webhook
	status   int
	delay    time.Duration
	// accepted holds, by webhook-id, the body of the messages answered 2xx; received counts the
	// requests of each id that were answered 2xx.
	accepted map[string][]byte
	received map[string]int
	requests int
	inFlight int
	problems []string
}

// NewReceiver starts a receiver on a free loopback port that answers 200 at once; it is closed
// when the test ends. Give it the endpoint's secret with SetSecret before events are sent.
func NewReceiver(t testing.TB) *Receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{addr: ln.Addr().String(), status: http.StatusOK, accepted: map[string][]byte{}, received: map[string]int{}}
	r.URL = "http://" + r.addr + "/webhooks"
	r.serve(ln)
	t.Cleanup(r.Stop)
	return r
}

// SetSecret sets the endpoint's signing secret (whsec_...), as the partner keeps it.
func (r *Receiver) SetSecret(t testing.TB, secret string) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("standardwebhooks.NewWebhook(%q): %v", secret, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verifier = wh
}

// SetAnswer makes the receiver answer each verified delivery with status, after delay (a slow
// partner). A delivery whose signature does not verify is answered 400.
func (r *Receiver) SetAnswer(status int, delay time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.delay = status, delay
}

// Stop closes the receiver and every connection to it: deliveries are refused until Start.
func (r *Receiver) Stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Start listens again on the receiver's address.
func (r *Receiver) Start(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err := net.Listen("tcp", r.addr)
		if err == nil {
			r.serve(ln)
			return
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			t.Fatalf("receiver: listen on %s again: %v", r.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *Receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 10 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (r *Receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	r.mu.Lock()
	r.requests++
	id := req.Header.Get("webhook-id")
	status, delay := r.status, r.delay
	switch {
	case err != nil:
		// The sender went away mid-request (killed): nothing was received.
		r.mu.Unlock()
		return
	case req.Method != http.MethodPost || req.URL.Path != "/webhooks":
		r.problemf("%s %s: want POST /webhooks", req.Method, req.URL.Path)
		status = http.StatusNotFound
	case r.verifier == nil:
		r.problemf("message %s arrived before the receiver had the secret", id)
		status = http.StatusBadRequest
	default:
		if err := r.verifier.Verify(body, req.Header); err != nil {
			r.problemf("message %s does not verify with the Standard Webhooks library: %v", id, err)
			status = http.StatusBadRequest
		}
	}
	r.inFlight++
	r.mu.Unlock()
	// A message counts as received once answered; a sender that goes away before the answer
	// (killed mid-delivery) has to send it again.
	select {
	case <-time.After(delay):
	case <-req.Context().Done():
	}
	r.mu.Lock()
	r.inFlight--
	if req.Context().Err() == nil && status/100 == 2 {
		if prev, ok := r.accepted[id]; ok && !bytes.Equal(prev, body) {
			r.problemf("message %s arrived twice with different bodies:\n%s\n%s", id, prev, body)
		}
		r.accepted[id] = body
		r.received[id]++
	}
	r.mu.Unlock()
	w.WriteHeader(status)
}

// problemf records something the receiver saw that no delivery may do; the lock is held.
func (r *Receiver) problemf(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// Accepted returns, by webhook-id, the body of every message the receiver answered 2xx (to a
// sender still there to read the answer), and how many times it did (more than once when a
// message was sent again).
func (r *Receiver) Accepted() (bodies map[string][]byte, times map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	bodies, times = make(map[string][]byte, len(r.accepted)), make(map[string]int, len(r.received))
	for id, b := range r.accepted {
		bodies[id] = b
	}
	for id, n := range r.received {
		times[id] = n
	}
	return bodies, times
}

// Requests is how many requests the receiver has read.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// InFlight is how many requests the receiver has read and not yet answered.
func (r *Receiver) InFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inFlight
}

// Problems are the deliveries that broke a rule: a signature the library refused, one message id
// with two bodies, a request to another path.
func (r *Receiver) Problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.problems)
}

// CheckEvents fails the test unless the messages the receiver accepted are exactly the events,
// each with the same bytes as the events list has it, under a webhook-id that is its eventId; and
// unless no delivery broke a rule (Problems).
func (r *Receiver) CheckEvents(t testing.TB, events []Event) {
	t.Helper()
	for _, p := range r.Problems() {
		t.Error(p)
	}
	got, _ := r.Accepted()
	for _, e := range events {
		body, ok := got[e.ID]
		switch {
		case !ok:
			t.Errorf("event %s (%s) was never received", e.ID, e.Type)
		case !bytes.Equal(body, e.Body):
			t.Errorf("event %s was received as\n%s\nbut the events list has\n%s", e.ID, body, e.Body)
		}
		delete(got, e.ID)
	}
	for id, body := range got {
		t.Errorf("received message %s that is not in the events list: %s", id, body)
	}
}

// AwaitEvents reads the events list with list until it has want events and the receiver has
// accepted exactly them (on PostgreSQL the list shows an event only once every older transaction
// has ended, so a webhook may come before its event is listed, or after), then checks them with
// CheckEvents; it fails the test after limit. It returns the events list.
func (r *Receiver) AwaitEvents(t testing.TB, limit time.Duration, want int, list func() []Event) []Event {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		events := list()
		got, _ := r.Accepted()
		same := len(events) == want && len(got) == len(events)
		for _, e := range events {
			if _, ok := got[e.ID]; !ok {
				same = false
				break
			}
		}
		if same || time.Now().After(deadline) {
			if !same {
				t.Errorf("after %s the receiver has %d messages, the events list %d events, want %d", limit, len(got), len(events), want)
			}
			r.CheckEvents(t, events)
			return events
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Event is an item of the events list: its id and type, and its exact bytes.
type Event struct {
	ID, Type string
	Body     []byte
}

// ListEvents reads the whole events list of a site, page after page, oldest first. get answers
// the body of GET /billing/sites/{siteId}/events with the query it is given.
func ListEvents(t testing.TB, get func(query string) []byte) []Event {
	t.Helper()
	var events []Event
	query := "?limit=100"
	for {
		var page struct {
			Data       []json.RawMessage
			NextCursor string
		}
		body := get(query)
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("events list: %v\n%s", err, body)
		}
		for _, raw := range page.Data {
			var e struct{ EventID, Type string }
			if err := json.Unmarshal(raw, &e); err != nil || e.EventID == "" {
				t.Fatalf("events list item without an eventId: %v\n%s", err, raw)
			}
			events = append(events, Event{ID: e.EventID, Type: e.Type, Body: bytes.Clone(raw)})
		}
		if page.NextCursor == "" {
			return events
		}
		query = "?limit=100&after=" + url.QueryEscape(page.NextCursor)
	}
}

// Events reads the partner's whole events list through the validating client.
func (s *Server) Events(t testing.TB, p Partner, token string) []Event {
	t.Helper()
	return ListEvents(t, func(query string) []byte {
		resp := s.Do(t, Request{Method: http.MethodGet, Path: "/billing/sites/" + p.Site.ID + "/events" + query, Token: token})
		if resp.Status != http.StatusOK {
			t.Fatalf("GET events%s: %d %s", query, resp.Status, resp.Body)
		}
		return resp.Body
	})
}
