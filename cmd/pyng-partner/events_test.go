package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/client"
)

// running is the binary running in the background.
type running struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	lines  chan string // stderr, a line at a time
	stderr strings.Builder
	mu     sync.Mutex
}

// start starts the binary with args against the server and waits for the first line of its
// stderr that matches ready, which it returns.
func start(t *testing.T, s *apptest.Server, ready string, args ...string) (*running, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	r := &running{cmd: exec.CommandContext(ctx, binary, args...), lines: make(chan string, 100)}
	r.cmd.Env = environ(s)
	r.cmd.Stdout = &r.stdout
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			r.mu.Lock()
			r.stderr.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			r.lines <- sc.Text()
		}
		close(r.lines)
	}()
	return r, r.waitFor(t, ready)
}

// waitFor waits for the next line of the binary's stderr that matches re, and returns what
// matched.
func (r *running) waitFor(t *testing.T, re string) string {
	t.Helper()
	want := regexp.MustCompile(re)
	for line := range r.lines {
		if m := want.FindString(line); m != "" {
			return m
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Fatalf("pyng-partner %v ended without printing %s: %s", r.cmd.Args[1:], re, r.stderr.String())
	return ""
}

// wait waits for the binary to end and returns what it gave.
func (r *running) wait(t *testing.T, s *apptest.Server, args ...string) result {
	t.Helper()
	for range r.lines { // drain stderr
	}
	err := r.cmd.Wait()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	res := result{code: r.cmd.ProcessState.ExitCode(), stdout: r.stdout.String(), stderr: r.stderr.String()}
	recordRun(s, args, res.code)
	return res
}

func TestEventsCommands(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		site, old := siteWithAnEvent(t, s)
		ctx := context.Background()

		t.Run("tail from now prints the new events only, as the server sent them", func(t *testing.T) {
			args := []string{"events", "tail", "--limit", "2", "--interval", "20ms", "--max-interval", "100ms"}
			tail, _ := start(t, s, "^Following the events of site .* from now on", args...)
			for _, ref := range []string{"NEW-1", "NEW-2"} {
				if _, err := site.InviteCustomer(ctx, ref); err != nil {
					t.Fatal(err)
				}
			}
			r := tail.wait(t, s, args...)
			events := decode[client.Event](t, r.stdout)
			if r.code != 0 || len(events) != 2 {
				t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			listed := waitForEvents(t, site, 3)
			for i, e := range events {
				if l, err := e.LinkData(); err != nil || l.CustomerReference != []string{"NEW-1", "NEW-2"}[i] {
					t.Errorf("event %d = %s", i, e.Raw)
				}
				if string(e.Raw) != string(listed[i+1].Raw) {
					t.Errorf("tail printed %s, the list has %s", e.Raw, listed[i+1].Raw)
				}
			}
		})

		t.Run("tail from --after, as a table, of one type", func(t *testing.T) {
			r := ok(t, s, "events", "tail", "--after", old.EventID, "--type", "customer.invited", "--limit", "2", "--json=false")
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			if len(lines) != 2 || !regexp.MustCompile(`customer\.invited +evt_[a-z2-7]+ +customer NEW-1 invited$`).MatchString(lines[0]) {
				t.Errorf("tail --after as a table:\n%s", r.stdout)
			}
		})

		t.Run("list", func(t *testing.T) {
			all := decode[client.Event](t, ok(t, s, "events", "list").stdout)
			if len(all) != 3 || all[0].EventID != old.EventID {
				t.Errorf("events list = %+v", all)
			}
			after := decode[client.Event](t, ok(t, s, "events", "list", "--after", old.EventID, "--type", "customer.invited").stdout)
			if len(after) != 2 {
				t.Errorf("events list --after = %+v", after)
			}
		})

		t.Run("every event type of the server is a --type", func(t *testing.T) {
			for _, typ := range billing.EventTypes {
				if r := cli(t, s, "events", "list", "--type", string(typ)); r.code != 0 {
					t.Errorf("events list --type %s: exit %d, stderr %q", typ, r.code, r.stderr)
				}
			}
		})

		// The server may know types this program does not: --type is its to refuse.
		t.Run("a type the server does not know is refused by the server, exit 1", func(t *testing.T) {
			for _, args := range [][]string{{"events", "list"}, {"events", "tail", "--limit", "1"}} {
				r := cli(t, s, append(args, "--type", "batch.exploded")...)
				if r.code != 1 || !strings.Contains(r.stderr, "error 400 "+string(client.CodeInvalidField)+" (type): type must be one of") {
					t.Errorf("%v --type batch.exploded: exit %d, stderr %q; want 1 and the server's refusal", args, r.code, r.stderr)
				}
			}
		})

		t.Run("an after of no event exits 1", func(t *testing.T) {
			r := cli(t, s, "events", "tail", "--after", "evt_nothing", "--limit", "1")
			if r.code != 1 || !strings.Contains(r.stderr, string(client.CodeInvalidField)+" (after)") {
				t.Errorf("exit %d, stderr %q", r.code, r.stderr)
			}
		})
	})
}

// The events list keeps 30 days: a follower of a rare type reads on from an event that is then
// purged, and the list refuses it as after. The follower reads the list again from its start,
// missing none of the events that came meanwhile and giving none of those it read twice: here
// the event listed before the purged one but created after it (the list orders events by their
// transactions, a createdAt is taken before), which outlives the purge.
func TestFollowersGoOnAcrossThePurgeOfTheEventTheyReadOnFrom(t *testing.T) {
	tests := []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"events tail", func(*testing.T) []string { return []string{"events", "tail"} }},
		{"webhooks listen", func(t *testing.T) []string {
			url, _ := receiver(t, http.StatusNoContent)
			return []string{"webhooks", "listen", "--forward-to", url}
		}},
	}
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		site := siteOf(t, s)
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ref := func(name string) string { return fmt.Sprintf("%s-%d", name, i) }
				now := s.Clock.Now()
				s.Clock.Set(now.Add(time.Minute))
				outlives := link(t, site, ref("OUTLIVES"))
				s.Clock.Set(now)
				purged := link(t, site, ref("PURGED"))
				listed := eventsOfType(t, site, client.EventCustomerLinked)
				if n := len(listed); n < 2 || listed[n-2].EventID != outlives || listed[n-1].EventID != purged {
					t.Fatalf("the list of customer.linked ends %v; want %s and then %s, created before it", listed, outlives, purged)
				}

				args := append(tt.args(t), "--type", "customer.linked", "--limit", "2", "--interval", "20ms", "--max-interval", "100ms")
				follower, _ := start(t, s, "^Following the events of site .* from now on", args...)
				// Held still, so that its next read is after the purge and the event that follows it.
				sendSignal(t, follower, syscall.SIGSTOP)
				s.Clock.Advance(billing.EventRetention + 30*time.Second)
				if _, err := s.Service.PurgeEvents(t.Context()); err != nil {
					t.Fatal(err)
				}
				if left := eventsOfType(t, site, client.EventCustomerLinked); len(left) != 1 || left[0].EventID != outlives {
					t.Fatalf("after the purge the list of customer.linked is %v; want %s alone", left, outlives)
				}
				meanwhile := link(t, site, ref("MEANWHILE"))
				sendSignal(t, follower, syscall.SIGCONT)
				follower.waitFor(t, "^pyng-partner: event "+purged+" is no longer listed")
				after := link(t, site, ref("AFTER"))

				r := follower.wait(t, s, args...)
				var got []string
				for _, ev := range decode[struct {
					EventID string `json:"eventId"`
				}](t, r.stdout) {
					got = append(got, ev.EventID)
				}
				if want := []string{meanwhile, after}; r.code != 0 || !slices.Equal(got, want) {
					t.Errorf("exit %d, gave %v; want %v (outlived the purge: %s)\nstderr: %s", r.code, got, want, outlives, r.stderr)
				}
			})
		}
	})
}

// link invites the customer and signs them up, and returns the customer.linked event, once it is
// listed.
func link(t *testing.T, site *client.Site, ref string) string {
	t.Helper()
	ctx := t.Context()
	if _, err := site.InviteCustomer(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := site.SimulateSignup(ctx, ref); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, ev := range eventsOfType(t, site, client.EventCustomerLinked) {
			if l, err := ev.LinkData(); err == nil && l.CustomerReference == ref {
				return ev.EventID
			}
		}
	}
	t.Fatalf("the customer.linked event of %s is not listed", ref)
	return ""
}

// eventsOfType lists the site's events of type typ.
func eventsOfType(t *testing.T, site *client.Site, typ client.EventType) []client.Event {
	t.Helper()
	var events []client.Event
	for ev, err := range site.ListEvents(t.Context(), client.ListEventsOptions{Type: typ}) {
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	return events
}

// sendSignal sends sig to the running binary.
func sendSignal(t *testing.T, r *running, sig syscall.Signal) {
	t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// waitForEvents waits until the site lists n events (on PostgreSQL an event is listed once every
// older transaction has ended) and returns them.
// siteWithAnEvent is the server's site, with its first event (the invitation of "OLD-1") listed.
func siteWithAnEvent(t *testing.T, s *apptest.Server) (*client.Site, client.Event) {
	t.Helper()
	site := siteOf(t, s)
	if _, err := site.InviteCustomer(context.Background(), "OLD-1"); err != nil {
		t.Fatal(err)
	}
	return site, waitForEvents(t, site, 1)[0]
}

func waitForEvents(t *testing.T, site *client.Site, n int) []client.Event {
	t.Helper()
	var events []client.Event
	for deadline := time.Now().Add(30 * time.Second); len(events) < n && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		events = events[:0]
		for e, err := range site.ListEvents(context.Background(), client.ListEventsOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			events = append(events, e)
		}
	}
	if len(events) < n {
		t.Fatalf("%d events listed, want %d", len(events), n)
	}
	return events
}

// delivered is a request a receiver got.
type delivered struct {
	header http.Header
	body   []byte
}

// receiver is a webhook receiver on loopback that answers status and keeps what it got.
func receiver(t *testing.T, status int) (string, func() []delivered) {
	t.Helper()
	var mu sync.Mutex
	var got []delivered
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, delivered{r.Header.Clone(), body})
		mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/webhooks", func() []delivered {
		mu.Lock()
		defer mu.Unlock()
		return append([]delivered(nil), got...)
	}
}

func TestWebhooksListenForwardsSignedEvents(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		site := siteOf(t, s)
		ctx := context.Background()
		url, got := receiver(t, http.StatusNoContent)
		args := []string{"webhooks", "listen", "--forward-to", url, "--limit", "2", "--interval", "20ms", "--max-interval", "100ms"}
		listen, secret := start(t, s, `whsec_[A-Za-z0-9+/]+=*`, args...)
		// The secret comes before the follower reads "now"; wait for that too.
		for line := range listen.lines {
			if strings.HasPrefix(line, "Following the events") {
				break
			}
		}
		if _, err := site.InviteCustomer(ctx, "ACME-001"); err != nil {
			t.Fatal(err)
		}
		if _, err := site.SimulateSignup(ctx, "ACME-001"); err != nil {
			t.Fatal(err)
		}
		r := listen.wait(t, s, args...)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		reports := decode[forwarded](t, r.stdout)
		deliveries := got()
		if len(reports) != 2 || len(deliveries) != 2 {
			t.Fatalf("reported %+v, the receiver got %d requests", reports, len(deliveries))
		}
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		listed := waitForEvents(t, site, 2)
		for i, d := range deliveries {
			if err := wh.Verify(d.body, d.header); err != nil {
				t.Errorf("delivery %d does not verify with the printed secret: %v", i, err)
			}
			if string(d.body) != string(listed[i].Raw) || d.header.Get("webhook-id") != listed[i].EventID {
				t.Errorf("delivery %d: %s (id %s), want the event %s", i, d.body, d.header.Get("webhook-id"), listed[i].Raw)
			}
			if reports[i].EventID != listed[i].EventID || reports[i].Status != http.StatusNoContent || reports[i].Error != "" {
				t.Errorf("report %d = %+v", i, reports[i])
			}
		}
		if wrong, _ := standardwebhooks.NewWebhook("whsec_" + strings.Repeat("A", 43) + "="); wrong.Verify(deliveries[0].body, deliveries[0].header) == nil {
			t.Error("a delivery verifies with another secret")
		}

		t.Run("a secret of one's own, not printed, and a receiver that fails is reported", func(t *testing.T) {
			failing, got := receiver(t, http.StatusInternalServerError)
			const own = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
			listed := waitForEvents(t, site, 2)
			r := ok(t, s, "webhooks", "listen", "--forward-to", failing, "--secret", own, "--after", listed[0].EventID, "--limit", "1")
			report := one[forwarded](t, r.stdout)
			if report.Status != 500 || report.Error == "" || strings.Contains(r.stderr, own) ||
				!strings.Contains(r.stderr, "Webhook signing secret: the one given with --secret") {
				t.Errorf("report = %+v, stderr %q", report, r.stderr)
			}
			wh, _ := standardwebhooks.NewWebhook(own)
			if d := got(); len(d) != 1 || wh.Verify(d[0].body, d[0].header) != nil {
				t.Errorf("the receiver got %d requests, or one that does not verify with --secret", len(d))
			}
		})
	})
}

// A fake API for the events commands: tokens, and the events list answered by events (n counts
// its requests, from 1), after --after evt_0.
func fakeEvents(t *testing.T, token, events func(w http.ResponseWriter, n int)) string {
	t.Helper()
	var tokens, reads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/oauth2/token" {
			if n := int(tokens.Add(1)); token != nil {
				token(w, n)
				return
			}
			_, _ = w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":3600}`))
			return
		}
		events(w, int(reads.Add(1)))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// futureEvent is an event as a later server may send it: of a type, and with a member, this
// program does not know.
const futureEvent = `{"eventId":"evt_1","type":"batch.paused","createdAt":1764500000000,"siteId":"site_x","livemode":false,"data":{"batchReference":"B-1"}}`

// eventsPage answers a page of futureEvent.
func eventsPage(w http.ResponseWriter, _ int) {
	_, _ = w.Write([]byte(`{"data":[` + futureEvent + `],"traceId":"t"}`))
}

// Following the events goes on through what the client calls temporary (client.Temporary): an answer cut
// short (ErrNoAnswer, io.ErrUnexpectedEOF: no net.Error), a token endpoint that does not answer
// (ErrNotSent), after the client's own retries. A token refused ends it.
func TestFollowersGoOnThroughTransientErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		token, events func(w http.ResponseWriter, n int)
		code          int
		stderr        string
	}{
		{"an answer cut short", nil, func(w http.ResponseWriter, n int) {
			if n <= 4 { // the client's first attempt and its 3 retries
				cutShort(w)
				return
			}
			eventsPage(w, n)
		}, 0, "unexpected EOF (trying again)"},
		{"a token endpoint that does not answer", func(w http.ResponseWriter, n int) {
			if n <= 4 {
				panic(http.ErrAbortHandler)
			}
			_, _ = w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":3600}`))
		}, eventsPage, 0, "obtain an access token"},
		{"a token refused", func(w http.ResponseWriter, _ int) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
		}, eventsPage, 1, "error 401 invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := fakeEvents(t, tt.token, tt.events)
			r := cliFake(t, url, 0, "events", "tail", "--after", "evt_0", "--limit", "1", "--interval", "10ms", "--max-interval", "50ms")
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d, and %q", r.code, r.stderr, tt.code, tt.stderr)
			}
			if tt.code == 0 && r.stdout != futureEvent+"\n" {
				t.Errorf("stdout %q, want the event", r.stdout)
			}
		})
	}
}

// events list writes each event as the server sent it, as events tail does: a member this
// program does not know is kept.
func TestEventsListWritesTheEventsAsTheServerSentThem(t *testing.T) {
	t.Parallel()
	url := fakeEvents(t, nil, eventsPage)
	for _, args := range [][]string{{"events", "list"}, {"events", "tail", "--after", "evt_0", "--limit", "1"}} {
		if r := cliFake(t, url, 0, args...); r.code != 0 || r.stdout != futureEvent+"\n" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %s", args, r.code, r.stdout, r.stderr, futureEvent)
		}
	}
}

// events tail --cursor-file keeps where it is in a file, and run again goes on from there, whatever
// its --after: the events that came while no follower ran are given, none twice. Its first run
// starts from now on, and keeps now before any event comes.
func TestEventsTailWithACursorFileGoesOnWhereItsLastRunStopped(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		site, old := siteWithAnEvent(t, s)
		ctx := context.Background()
		cursor := filepath.Join(t.TempDir(), "cursor")
		kept := func() string {
			t.Helper()
			b, err := os.ReadFile(cursor)
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(string(b))
		}
		args := []string{"events", "tail", "--cursor-file", cursor, "--type", "customer.invited", "--interval", "20ms", "--max-interval", "100ms"}
		// Its first run starts from now on, and keeps now in the file before any event comes.
		first := append(slices.Clone(args), "--limit", "1")
		tail, _ := start(t, s, "^Following the events of site .* from now on", first...)
		if kept() != old.EventID {
			t.Errorf("the cursor file holds %q before any event; want the newest event's id", kept())
		}
		invite := func(refs ...string) {
			t.Helper()
			for _, ref := range refs {
				if _, err := site.InviteCustomer(ctx, ref); err != nil {
					t.Fatal(err)
				}
			}
		}
		invite("CUR-1")
		r := tail.wait(t, s, first...)
		if got := decode[client.Event](t, r.stdout); r.code != 0 || len(got) != 1 || kept() != got[0].EventID {
			t.Fatalf("first run: exit %d, stdout %q, stderr %q; cursor %q", r.code, r.stdout, r.stderr, kept())
		}
		// The events that come while none runs are the next run's, whatever its --after.
		invite("CUR-2", "CUR-3")
		r = ok(t, s, append(slices.Clone(args), "--limit", "2", "--after", old.EventID)...)
		got := decode[client.Event](t, r.stdout)
		if len(got) != 2 || !strings.Contains(r.stderr, "after "+waitForEvents(t, site, 2)[1].EventID) || kept() != got[1].EventID {
			t.Fatalf("second run: stdout %q, stderr %q; cursor %q", r.stdout, r.stderr, kept())
		}
		for i, e := range got {
			if l, err := e.LinkData(); err != nil || l.CustomerReference != []string{"CUR-2", "CUR-3"}[i] {
				t.Errorf("second run's event %d = %s; want CUR-2 then CUR-3", i, e.Raw)
			}
		}
	})
}
