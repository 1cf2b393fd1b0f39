package client_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/client"
	"github.com/pyng/receivables/dbtest"
)

// onEachEngine runs test, in parallel, against a fresh server of every storage engine, with a
// client of the server's partner whose every answer is checked against the OpenAPI document.
func onEachEngine(t *testing.T, test func(t *testing.T, s *apptest.Server, site *client.Site), opts ...apptest.Options) {
	t.Helper()
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := apptest.Start(t, engine, opts...)
			test(t, s, newClient(t, s, s.Partner).Site(s.Site.ID))
		})
	}
}

// newClient is a client of the partner that sends through the server's validating HTTP client.
func newClient(t testing.TB, s *apptest.Server, p apptest.Partner, scopes ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{BaseURL: s.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret, Scopes: scopes, HTTPClient: s.HTTP})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// must(call)(t) is the result of call, failing t when it returned an error.
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// collect reads a whole list.
func collect[T any](t testing.TB, seq func(yield func(T, error) bool)) []T {
	t.Helper()
	var items []T
	for item, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, item)
	}
	return items
}

func TestInvitationMetadataThroughTheClient(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, site *client.Site) {
		ctx := context.Background()
		meta := map[string]string{"accountId": "8841", "plan": "pro"}
		must(site.Invite(ctx, client.InvitationRequest{CustomerReference: "META-1", Metadata: meta}))(t)
		l := must(site.GetCustomer(ctx, "META-1"))(t)
		if !maps.Equal(l.Metadata, meta) {
			t.Errorf("metadata = %v, want %v", l.Metadata, meta)
		}
		_, err := site.Invite(ctx, client.InvitationRequest{CustomerReference: "META-2", Metadata: map[string]string{"note": strings.Repeat("x", 501)}})
		var e *client.Error
		if !errors.As(err, &e) || e.Target != "metadata.note" {
			t.Errorf("a 501-character value: %v, want an error with target metadata.note", err)
		}
		must(site.RevokeCustomer(ctx, "META-1"))(t)
	})
}

func TestCustomerLinksThroughTheClient(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, site *client.Site) {
		ctx := context.Background()
		refs := []string{"C-1", "C-2", "C-3", "C-4", "C-5"}
		for _, ref := range refs {
			inv := must(site.InviteCustomer(ctx, ref))(t)
			if inv.CustomerReference != ref || inv.State != client.LinkInvited || !strings.Contains(inv.SignupURL, "/signup?token=") ||
				inv.ExpiresAt.Time().Before(s.Clock.Now()) {
				t.Fatalf("invitation = %+v", inv)
			}
		}

		t.Run("the iterator follows every page in order", func(t *testing.T) {
			links := collect(t, site.ListCustomers(ctx, client.ListCustomersOptions{Limit: 2}))
			var got []string
			for _, l := range links {
				got = append(got, l.CustomerReference)
			}
			if !slices.Equal(got, refs) {
				t.Errorf("listed %v, want %v", got, refs)
			}
			page := must(site.CustomersPage(ctx, client.ListCustomersOptions{Limit: 2}))(t)
			if len(page.Items) != 2 || page.NextCursor == "" || page.TraceID == "" {
				t.Errorf("first page = %+v, want 2 links, a cursor and a traceId", page)
			}
			rest := collect(t, site.ListCustomers(ctx, client.ListCustomersOptions{Limit: 2, Cursor: page.NextCursor}))
			if len(rest) != 3 || rest[0].CustomerReference != "C-3" {
				t.Errorf("from the first page's cursor = %+v, want C-3 to C-5", rest)
			}
		})

		t.Run("breaking out of the iterator stops it", func(t *testing.T) {
			n := 0
			for _, err := range site.ListCustomers(ctx, client.ListCustomersOptions{Limit: 1}) {
				if err != nil {
					t.Fatal(err)
				}
				if n++; n == 2 {
					break
				}
			}
			if n != 2 {
				t.Errorf("read %d links, want 2", n)
			}
		})

		t.Run("signup, filter by state, revocations", func(t *testing.T) {
			l := must(site.SimulateSignup(ctx, "C-1"))(t)
			if l.State != client.LinkLinked || l.LinkedAt == 0 || l.SignupURL != "" {
				t.Errorf("after signup: %+v", l)
			}
			must(site.SimulateSignup(ctx, "C-2"))(t)
			linked := collect(t, site.ListCustomers(ctx, client.ListCustomersOptions{State: client.LinkLinked}))
			if len(linked) != 2 || linked[0].CustomerReference != "C-1" || linked[1].CustomerReference != "C-2" {
				t.Errorf("linked = %+v, want C-1 and C-2", linked)
			}
			l = must(site.RevokeCustomer(ctx, "C-1"))(t)
			if l.State != client.LinkRevoked || l.RevokedBy != "partner" || l.RevokedAt == 0 {
				t.Errorf("after the partner's revocation: %+v", l)
			}
			l = must(site.SimulateCustomerRevocation(ctx, "C-2"))(t)
			if l.State != client.LinkRevoked || l.RevokedBy != "customer" {
				t.Errorf("after the customer's revocation: %+v", l)
			}
			if got := must(site.GetCustomer(ctx, "C-2"))(t); !reflect.DeepEqual(got, l) {
				t.Errorf("GetCustomer = %+v, want %+v", got, l)
			}
		})
	})
}

func TestBatchesThroughTheClient(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, site *client.Site) {
		ctx := context.Background()
		must(site.InviteCustomer(ctx, "ACME-001"))(t)
		must(site.SimulateSignup(ctx, "ACME-001"))(t)
		submission := client.BatchRequest{BatchReference: "B-1", Rows: []client.RowRequest{
			{RowReference: "R1", CustomerReference: "ACME-001", Amount: 12000},
			{RowReference: "R2", CustomerReference: "ACME-001", Amount: 4552},
			{RowReference: "R3", CustomerReference: "NOBODY", Amount: 9900},
		}}
		receipt := must(site.SubmitBatch(ctx, submission))(t)
		if receipt.BatchReference != "B-1" || receipt.State != client.BatchAccepted || receipt.RowCount != 3 ||
			receipt.TotalAmount != 26452 || receipt.SubmittedAt.Time() != s.Clock.Now() || receipt.Replayed {
			t.Errorf("receipt = %+v", receipt)
		}
		if again := must(site.SubmitBatch(ctx, submission))(t); !again.Replayed || again.SubmittedAt != receipt.SubmittedAt {
			t.Errorf("the same submission again = %+v, want the receipt replayed", again)
		}

		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		b := must(site.AwaitBatch(ctx, "B-1", 20*time.Millisecond))(t)
		want := []client.Row{
			{RowReference: "R1", CustomerReference: "ACME-001", Amount: 12000, State: client.RowSucceeded},
			{RowReference: "R2", CustomerReference: "ACME-001", Amount: 4552, State: client.RowFailed, FailureReason: client.FailureAccountClosed, Retryable: new(false)},
			{RowReference: "R3", CustomerReference: "NOBODY", Amount: 9900, State: client.RowFailed, FailureReason: client.FailureCustomerNotActive, Retryable: new(false)},
		}
		for i := range b.Rows {
			if b.Rows[i].OutcomeAt == 0 {
				t.Errorf("row %s has no outcomeAt", b.Rows[i].RowReference)
			}
			b.Rows[i].OutcomeAt = 0
		}
		if !reflect.DeepEqual(b.Rows, want) || b.CompletedAt == 0 ||
			b.Summary != (client.BatchSummary{Succeeded: client.StateTotal{Count: 1, Amount: 12000}, Failed: client.StateTotal{Count: 2, Amount: 14452}}) {
			t.Errorf("completed batch = %+v\nwant rows %+v", b, want)
		}

		failed := must(site.GetBatch(ctx, "B-1", client.GetBatchOptions{RowState: client.RowFailed}))(t)
		if len(failed.Rows) != 2 || failed.Summary != b.Summary {
			t.Errorf("rowState=failed gave %+v", failed)
		}

		data := must(site.GetBatchCSV(ctx, "B-1", client.GetBatchOptions{}))(t)
		records, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil || len(records) != 4 || records[0][0] != "rowReference" || records[2][4] != "accountClosed" {
			t.Errorf("CSV = %q (%v)", data, err)
		}

		must(site.SubmitBatch(ctx, client.BatchRequest{BatchReference: "B-2", Rows: submission.Rows[:1]}))(t)
		must(site.SubmitBatch(ctx, client.BatchRequest{BatchReference: "B-3", Rows: submission.Rows[:1]}))(t)
		var refs []string
		for _, b := range collect(t, site.ListBatches(ctx, client.ListBatchesOptions{Limit: 2})) {
			refs = append(refs, b.BatchReference)
		}
		// All three were submitted at the same instant of the test's clock, so their order is
		// the server's tie-break; each is listed once.
		if slices.Sort(refs); !slices.Equal(refs, []string{"B-1", "B-2", "B-3"}) {
			t.Errorf("listed batches %v, want B-1 to B-3 once each", refs)
		}
	})
}

func TestSimulateDeadlineExpiresTheOpenRows(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, site *client.Site) {
		ctx := context.Background()
		must(site.SubmitBatch(ctx, client.BatchRequest{BatchReference: "D-1", Rows: []client.RowRequest{
			{RowReference: "R1", CustomerReference: "ACME-001", Amount: 5000},
		}}))(t)
		b := must(site.SimulateDeadline(ctx, "D-1"))(t)
		if b.State != client.BatchCompleted || len(b.Rows) != 1 || b.Rows[0].FailureReason != client.FailureExpired || !b.Rows[0].IsRetryable() {
			t.Errorf("after the deadline: %+v", b)
		}
	}, apptest.Options{NoJobs: true})
}

// uuid is the form of a traceId.
var uuid = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestErrorsCarryCodeTargetAndTraceID(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server, site *client.Site) {
		ctx := context.Background()
		must(site.SubmitBatch(ctx, client.BatchRequest{BatchReference: "TAKEN", Rows: []client.RowRequest{
			{RowReference: "R1", CustomerReference: "ACME-001", Amount: 100},
		}}))(t)
		readOnly := newClient(t, s, s.Partner, string(billing.ScopeCustomersRead)).Site(s.Site.ID)
		tests := []struct {
			name   string
			call   func() error
			status int
			code   client.Code
			target string
			more   int
		}{
			{"every problem of a refused batch, each with its target", func() error {
				_, err := site.SubmitBatch(ctx, client.BatchRequest{BatchReference: "B-1", Rows: []client.RowRequest{
					{RowReference: "R1", CustomerReference: "ACME-001", Amount: 0},
					{RowReference: "R1", CustomerReference: "ACME 002", Amount: 100},
				}})
				return err
			}, http.StatusBadRequest, client.CodeBatchInvalidField, "rows[0].amount", 3},
			{"a reference taken by another batch", func() error {
				_, err := site.SubmitBatch(ctx, client.BatchRequest{BatchReference: "TAKEN", Rows: []client.RowRequest{
					{RowReference: "R1", CustomerReference: "ACME-001", Amount: 200},
				}})
				return err
			}, http.StatusConflict, client.CodeBatchReferenceConflict, "batchReference", 0},
			{"an unknown batch", func() error {
				_, err := site.GetBatch(ctx, "NOPE", client.GetBatchOptions{})
				return err
			}, http.StatusNotFound, client.CodeBatchNotFound, "batchReference", 0},
			{"a site of nobody", func() error {
				_, err := newClient(t, s, s.Partner).Site("site_nobody").GetCustomer(ctx, "ACME-001")
				return err
			}, http.StatusNotFound, client.CodeSiteNotFound, "siteId", 0},
			{"a token without the scope", func() error {
				_, err := readOnly.InviteCustomer(ctx, "ACME-003")
				return err
			}, http.StatusForbidden, client.CodeInsufficientScope, "Authorization", 0},
			{"an invalid reference", func() error {
				_, err := site.InviteCustomer(ctx, "no spaces")
				return err
			}, http.StatusBadRequest, client.CodeLinkInvalidReference, "customerReference", 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.call()
				var apiErr *client.Error
				if !errors.As(err, &apiErr) {
					t.Fatalf("error = %v (%T), want a *client.Error", err, err)
				}
				if apiErr.StatusCode != tt.status || apiErr.Code != tt.code || apiErr.Target != tt.target || !uuid.MatchString(apiErr.TraceID) {
					t.Errorf("error = %+v, want %d %s target %q and a traceId", apiErr, tt.status, tt.code, tt.target)
				}
				if tt.more > 0 && len(apiErr.Problems) != tt.more {
					t.Errorf("problems = %+v, want %d", apiErr.Problems, tt.more)
				}
				if !errors.Is(err, tt.code) || errors.Is(err, client.CodeInternal) {
					t.Errorf("errors.Is does not match the answer's code alone: %v", err)
				}
				if !strings.Contains(err.Error(), apiErr.TraceID) {
					t.Errorf("the message %q does not quote the traceId", err)
				}
			})
		}
	})
}

func TestCodesAreTheServers(t *testing.T) {
	var server []string
	for _, c := range billing.Codes() {
		server = append(server, string(c))
	}
	var ours []string
	for _, c := range client.Codes() {
		ours = append(ours, string(c))
	}
	slices.Sort(server)
	slices.Sort(ours)
	if !slices.Equal(ours, server) {
		t.Errorf("client.Codes() = %v\nbilling.Codes() = %v", ours, server)
	}
}

func TestEventTypesAreTheServers(t *testing.T) {
	var server, ours []string
	for _, e := range billing.EventTypes {
		server = append(server, string(e))
	}
	for _, e := range client.EventTypes() {
		ours = append(ours, string(e))
	}
	slices.Sort(server)
	slices.Sort(ours)
	if !slices.Equal(ours, server) {
		t.Errorf("client.EventTypes() = %v\nbilling.EventTypes = %v", ours, server)
	}
}

// flaky is a loopback API that answers each /billing/ request with the next of its answers (then
// with the last one), and issues tokens.
// flakySite is the site site_1 of a client configured as cfg, of a server that gives the
// answers in turn, with the context of a call: one that ends after timeout, unless it is zero.
func flakySite(t *testing.T, answers []answer, cfg client.Config, timeout time.Duration) (context.Context, *client.Site, *flaky) {
	t.Helper()
	f := &flaky{answers: answers}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg.BaseURL, cfg.ClientID, cfg.ClientSecret, cfg.HTTPClient = srv.URL, "cli", "sec", srv.Client()
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		t.Cleanup(cancel)
	}
	return ctx, c.Site("site_1"), f
}

type flaky struct {
	answers []answer

	mu       sync.Mutex
	requests []seen
}

type answer struct {
	status     int
	retryAfter string
	// retryDate, when set, makes Retry-After the HTTP date this long after the answer (which
	// drops the fraction of its second).
	retryDate time.Duration
}

type seen struct {
	at      time.Time
	body    string
	version string
	auth    string
	// notBefore is the earliest instant the answer's Retry-After allowed the next request.
	notBefore time.Time
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/oauth2/token" {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"tok","token_type":"Bearer","expires_in":3600,"scope":""}`)
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	n := len(f.requests)
	a := f.answers[min(n, len(f.answers)-1)]
	req := seen{at: time.Now(), body: string(body), version: r.Header.Get("Pyng-Api-Version"), auth: r.Header.Get("Authorization")}
	const trace = "9ae2e340-b983-4274-b400-c974a9ab40ab"
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Pyng-Trace-Id", trace)
	switch {
	case a.retryAfter != "":
		w.Header().Set("Retry-After", a.retryAfter)
		secs, _ := strconv.Atoi(a.retryAfter)
		req.notBefore = req.at.Add(time.Duration(secs) * time.Second)
	case a.retryDate != 0:
		// The date the header can say: the instant it names, to the second.
		req.notBefore = time.Now().Add(a.retryDate).Truncate(time.Second)
		w.Header().Set("Retry-After", req.notBefore.UTC().Format(http.TimeFormat))
	}
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	w.WriteHeader(a.status)
	switch {
	case a.status == http.StatusOK:
		fmt.Fprintf(w, `{"data":{"batchReference":"B-1","state":"completed","rowCount":1,"totalAmount":100,"submittedAt":1,"summary":{},"rows":[]},"traceId":%q}`, trace)
	case a.status == http.StatusAccepted:
		fmt.Fprintf(w, `{"data":{"batchReference":"B-1","state":"accepted","rowCount":1,"totalAmount":100,"submittedAt":1},"traceId":%q}`, trace)
	case a.status == http.StatusCreated:
		fmt.Fprintf(w, `{"data":{"customerReference":"C-1","signupUrl":"http://x/signup?token=t","expiresAt":1,"state":"invited"},"traceId":%q}`, trace)
	case a.status == http.StatusTooManyRequests:
		fmt.Fprintf(w, `{"errors":[{"code":"urn:pyng:platform:billing:error:request:rate-limited","displayMessage":"slow down"}],"traceId":%q}`, trace)
	default:
		fmt.Fprintf(w, `{"errors":[{"code":"urn:pyng:platform:billing:error:internal","displayMessage":"sorry"}],"traceId":%q}`, trace)
	}
}

func TestRetriesHonourRetryAfterWhereSafe(t *testing.T) {
	t.Parallel()
	submit := func(ctx context.Context, site *client.Site) error {
		_, err := site.SubmitBatch(ctx, client.BatchRequest{BatchReference: "B-1", Rows: []client.RowRequest{{RowReference: "R1", CustomerReference: "C-1", Amount: 100}}})
		return err
	}
	invite := func(ctx context.Context, site *client.Site) error {
		_, err := site.InviteCustomer(ctx, "C-1")
		return err
	}
	get := func(ctx context.Context, site *client.Site) error {
		_, err := site.GetBatch(ctx, "B-1", client.GetBatchOptions{})
		return err
	}
	tests := []struct {
		name       string
		call       func(context.Context, *client.Site) error
		answers    []answer
		maxRetries int
		maxWait    time.Duration
		timeout    time.Duration
		requests   int
		wantStatus int           // 0: success
		minElapsed time.Duration // the least time from the first request to the last
	}{
		{"a batch submission is sent again after 429 and 503, waiting as asked", submit,
			[]answer{{status: 429, retryAfter: "1"}, {status: 503, retryAfter: "1"}, {status: 202}}, 0, 0, 0, 3, 0, 2 * time.Second},
		{"an invitation is sent again after 429: the server refused it before acting", invite,
			[]answer{{status: 429, retryAfter: "1"}, {status: 201}}, 0, 0, 0, 2, 0, time.Second},
		{"an invitation is not sent again after a 503: it may have been minted", invite,
			[]answer{{status: 503, retryAfter: "1"}, {status: 201}}, 0, 0, 0, 1, 503, 0},
		{"a 500 is retried without Retry-After after a short backoff (250 ms, then 500, each less up to half)", get,
			[]answer{{status: 500}, {status: 500}, {status: 202}}, 0, 0, 0, 3, 0, 375 * time.Millisecond},
		{"the retries stop at MaxRetries and return the last answer", get,
			[]answer{{status: 503}}, 2, 0, 0, 3, 503, 0},
		{"a negative MaxRetries turns retries off", submit,
			[]answer{{status: 429, retryAfter: "1"}, {status: 202}}, -1, 0, 0, 1, 429, 0},
		{"a Retry-After beyond MaxRetryWait is returned at once", submit,
			[]answer{{status: 429, retryAfter: "120"}, {status: 202}}, 0, 0, 0, 1, 429, 0},
		{"a Retry-After of more seconds than a duration holds is beyond MaxRetryWait too", submit,
			[]answer{{status: 503, retryAfter: "9223372037"}, {status: 202}}, 0, 0, 0, 1, 503, 0},
		{"a Retry-After beyond the context's deadline is returned at once", submit,
			[]answer{{status: 503, retryAfter: "5"}, {status: 202}}, 0, 0, 2 * time.Second, 1, 503, 0},
		// The date is 1 to 2 s after the answer (it has no fraction of a second); each retry is
		// checked against the instant the date names.
		{"a Retry-After as an HTTP date is honoured", submit,
			[]answer{{status: 503, retryDate: 2 * time.Second}, {status: 202}}, 0, 0, 0, 2, 0, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, site, f := flakySite(t, tt.answers, client.Config{MaxRetries: tt.maxRetries, MaxRetryWait: tt.maxWait}, tt.timeout)
			err := tt.call(ctx, site)
			var apiErr *client.Error
			switch {
			case tt.wantStatus == 0 && err != nil:
				t.Fatalf("error = %v, want success", err)
			case tt.wantStatus != 0 && (!errors.As(err, &apiErr) || apiErr.StatusCode != tt.wantStatus):
				t.Fatalf("error = %v, want the %d answer", err, tt.wantStatus)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.requests) != tt.requests {
				t.Fatalf("the server saw %d requests, want %d", len(f.requests), tt.requests)
			}
			for _, r := range f.requests {
				if r.body != f.requests[0].body || r.version != client.APIVersion || r.auth != "Bearer tok" {
					t.Errorf("request %+v differs from the first %+v or lacks the version or token", r, f.requests[0])
				}
			}
			for i := 1; i < len(f.requests); i++ {
				if prev := f.requests[i-1]; !prev.notBefore.IsZero() && f.requests[i].at.Before(prev.notBefore) {
					t.Errorf("request %d came at %v, before the %v the previous answer's Retry-After named",
						i+1, f.requests[i].at.Format(time.RFC3339Nano), prev.notBefore.Format(time.RFC3339Nano))
				}
			}
			if elapsed := f.requests[len(f.requests)-1].at.Sub(f.requests[0].at); elapsed < tt.minElapsed {
				t.Errorf("the retries came %v after the first request, want at least %v", elapsed, tt.minElapsed)
			}
		})
	}
}

// A call an earlier attempt of which may have reached the server (a 5xx) is ErrNoAnswer however
// its last attempt ends: a 429 says that the server refused that attempt before acting, not the
// first, which may have stored the batch. Its error is still the last answer's *Error.
func TestACallAnEarlierAttemptOfWhichMayHaveActedIsNoAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		answers    []answer
		maxRetries int
		timeout    time.Duration
		requests   int
		wantStatus int
		noAnswer   bool
		read       bool // GetBatch rather than SubmitBatch
	}{
		{"a 502, then a 429 whose Retry-After is beyond MaxRetryWait",
			[]answer{{status: 502}, {status: 429, retryAfter: "3600"}}, 0, 0, 2, 429, true, false},
		{"a 504, then a 429 once the retries are spent",
			[]answer{{status: 504}, {status: 429}}, 1, 0, 2, 429, true, false},
		{"a 503, then a 429 whose Retry-After is beyond the context's deadline",
			[]answer{{status: 503}, {status: 429, retryAfter: "5"}}, 0, 2 * time.Second, 2, 429, true, false},
		{"a 502 each time, the retries spent",
			[]answer{{status: 502}}, 1, 0, 2, 502, true, false},
		{"a 429 alone: the server refused the request before acting on it",
			[]answer{{status: 429, retryAfter: "3600"}}, 0, 0, 1, 429, false, false},
		{"a 429, then a 503 beyond MaxRetryWait: the one attempt that may have acted is the last",
			[]answer{{status: 429}, {status: 503, retryAfter: "3600"}}, 0, 0, 2, 503, false, false},
		{"a read: a 502, then a 429 whose Retry-After is beyond MaxRetryWait (a read acts on nothing)",
			[]answer{{status: 502}, {status: 429, retryAfter: "3600"}}, 0, 0, 2, 429, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, site, f := flakySite(t, tt.answers, client.Config{MaxRetries: tt.maxRetries}, tt.timeout)
			var err error
			if tt.read {
				_, err = site.GetBatch(ctx, "B-1", client.GetBatchOptions{})
			} else {
				_, err = site.SubmitBatch(ctx, client.BatchRequest{BatchReference: "B-1",
					Rows: []client.RowRequest{{RowReference: "R1", CustomerReference: "C-1", Amount: 100}}})
			}
			var apiErr *client.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.wantStatus {
				t.Errorf("error = %v, want the last answer's *client.Error, %d", err, tt.wantStatus)
			}
			if errors.Is(err, client.ErrNoAnswer) != tt.noAnswer || errors.Is(err, client.ErrNotSent) {
				t.Errorf("error = %v: errors.Is ErrNoAnswer is %v, want %v (and never ErrNotSent)", err, !tt.noAnswer, tt.noAnswer)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.requests) != tt.requests {
				t.Errorf("the server saw %d requests, want %d", len(f.requests), tt.requests)
			}
		})
	}
}

// AwaitBatch with an interval of 0 polls every second, not without a pause.
func TestAwaitBatchWithoutIntervalPausesASecond(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var reads []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/oauth2/token" {
			fmt.Fprint(w, `{"access_token":"tok","token_type":"Bearer","expires_in":3600,"scope":""}`)
			return
		}
		mu.Lock()
		reads = append(reads, time.Now())
		state := "inProgress"
		if len(reads) > 1 {
			state = "completed"
		}
		mu.Unlock()
		fmt.Fprintf(w, `{"data":{"batchReference":"B-1","state":%q,"rowCount":0,"totalAmount":0,"submittedAt":1,"summary":{},"rows":[]},"traceId":"t"}`, state)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(client.Config{BaseURL: srv.URL, ClientID: "cli", ClientSecret: "sec", HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Site("site_1").AwaitBatch(context.Background(), "B-1", 0)
	if err != nil || b.State != client.BatchCompleted {
		t.Fatalf("AwaitBatch = %+v, %v; want the completed batch", b, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reads) != 2 || reads[1].Sub(reads[0]) < 900*time.Millisecond {
		t.Errorf("reads at %v; want two, a second apart", reads)
	}
}

// Each attempt has Config.Timeout: one the server does not answer in time got no answer, and is
// sent again where that is safe, as a connection that failed is; never an invitation.
func TestAnAttemptTheServerDoesNotAnswerInTimeIsSentAgainWhereSafe(t *testing.T) {
	t.Parallel()
	get := func(ctx context.Context, site *client.Site) error {
		_, err := site.GetBatch(ctx, "B-1", client.GetBatchOptions{})
		return err
	}
	invite := func(ctx context.Context, site *client.Site) error {
		_, err := site.InviteCustomer(ctx, "C-1")
		return err
	}
	tests := []struct {
		name       string
		call       func(context.Context, *client.Site) error
		maxRetries int
		hung       int // the first requests the server holds past the timeout
		wantErr    bool
		requests   int
	}{
		{"a read held once is read again", get, 0, 1, false, 2},
		{"a read held every time fails after its retries", get, 2, 5, true, 3},
		{"a read held once fails without retries", get, -1, 1, true, 1},
		{"an invitation held once is not sent again: it may have been minted", invite, 0, 1, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			requests := 0
			ended := make(chan struct{}) // a request held is let go at the test's end at the latest
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/oauth2/token" {
					w.Header().Set("Content-Type", "application/json")
					fmt.Fprint(w, `{"access_token":"tok","token_type":"Bearer","expires_in":3600}`)
					return
				}
				mu.Lock()
				requests++
				hold := requests <= tt.hung
				mu.Unlock()
				if hold {
					select {
					case <-r.Context().Done():
					case <-ended:
					case <-time.After(10 * time.Second):
					}
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
				fmt.Fprint(w, `{"data":{"batchReference":"B-1","state":"completed","rowCount":0,"totalAmount":0,"submittedAt":1,"rows":[]},"traceId":"t"}`)
			}))
			t.Cleanup(srv.Close)
			t.Cleanup(func() { close(ended) }) // before srv.Close, which waits for the handlers
			c, err := client.New(client.Config{BaseURL: srv.URL, ClientID: "cli", ClientSecret: "sec",
				HTTPClient: srv.Client(), MaxRetries: tt.maxRetries, Timeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = tt.call(t.Context(), c.Site("site_1"))
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("the call took %v: an attempt was not bounded by the timeout", elapsed)
			}
			switch {
			case tt.wantErr && !errors.Is(err, context.DeadlineExceeded):
				t.Errorf("error = %v, want one that is context.DeadlineExceeded", err)
			case !tt.wantErr && err != nil:
				t.Errorf("error = %v, want success", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if requests != tt.requests {
				t.Errorf("the server saw %d requests, want %d", requests, tt.requests)
			}
		})
	}
}
