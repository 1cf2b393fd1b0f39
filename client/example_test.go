package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/client"
	"github.com/pyng/receivables/storage"
)

// The values a sandbox prints on its first start (go run ./cmd/pyng serve). TestMain starts a
// real sandbox server on loopback for the examples and sets them.
var baseURL, siteID, clientID, clientSecret string

// TestMain starts the sandbox server the examples run against. Its answers are checked against
// the OpenAPI document: http.DefaultTransport, which the examples' clients use, is apptest's
// validating transport while the tests run, and a mismatch fails the run.
func TestMain(m *testing.M) {
	tb := &mainTB{}
	code := func() int {
		defer tb.cleanup()
		s := apptest.Start(tb, storage.EngineSQLite)
		baseURL, siteID, clientID, clientSecret = s.URL, s.Site.ID, s.ClientID, s.ClientSecret
		direct := http.DefaultTransport
		http.DefaultTransport = s.HTTP.Transport
		defer func() { http.DefaultTransport = direct }()
		return m.Run()
	}()
	if tb.Failed() && code == 0 {
		code = 1
	}
	os.Exit(code)
}

// The walkthrough of the README, through the client: invite a customer, let the sandbox sign
// them up, see them linked, submit a batch and read its outcome.
func Example() {
	ctx := context.Background()
	// 1. The client obtains its access token itself, on the first call.
	c, err := client.New(client.Config{BaseURL: baseURL, ClientID: clientID, ClientSecret: clientSecret})
	if err != nil {
		log.Fatal(err)
	}
	site := c.Site(siteID)

	// 2. Invite a customer: send them the signupUrl.
	inv, err := site.InviteCustomer(ctx, "ACME-001")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(inv.CustomerReference, inv.State, inv.SignupURL != "")

	// 3. In the sandbox, sign the customer up as they would.
	if _, err := site.SimulateSignup(ctx, "ACME-001"); err != nil {
		log.Fatal(err)
	}

	// 4. The customer is now linked.
	for link, err := range site.ListCustomers(ctx, client.ListCustomersOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(link.CustomerReference, link.State)
	}

	// 5. Submit a batch: a debit that succeeds, one that fails for lack of funds (an amount
	// ending in 51 cents) and one for a customer who never linked.
	receipt, err := site.SubmitBatch(ctx, client.BatchRequest{
		BatchReference: "2026-11-INV",
		Rows: []client.RowRequest{
			{RowReference: "INV-1", CustomerReference: "ACME-001", Amount: 12000},
			{RowReference: "INV-2", CustomerReference: "ACME-001", Amount: 4551},
			{RowReference: "INV-3", CustomerReference: "NOBODY", Amount: 9900},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(receipt.BatchReference, receipt.State, receipt.RowCount, receipt.TotalAmount)

	// 6. Poll until the batch is completed.
	batch, err := site.AwaitBatch(ctx, "2026-11-INV", 50*time.Millisecond)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(batch.State, batch.Summary.Succeeded.Count, "succeeded,", batch.Summary.Failed.Count, "failed")
	for _, row := range batch.Rows {
		fmt.Println(row.RowReference, row.State, row.FailureReason, row.IsRetryable())
	}
	// Output:
	// ACME-001 invited true
	// ACME-001 linked
	// 2026-11-INV accepted 3 26451
	// completed 1 succeeded, 2 failed
	// INV-1 succeeded  false
	// INV-2 failed insufficientFunds true
	// INV-3 failed customerNotActive false
}

// An error answer is an *client.Error with the code, target and traceId of the answer, and
// errors.Is matches its codes.
func ExampleError() {
	ctx := context.Background()
	c, err := client.New(client.Config{BaseURL: baseURL, ClientID: clientID, ClientSecret: clientSecret})
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Site(siteID).SubmitBatch(ctx, client.BatchRequest{
		BatchReference: "BAD-1",
		Rows:           []client.RowRequest{{RowReference: "R1", CustomerReference: "ACME-001", Amount: 0}},
	})
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Code)
		fmt.Println(apiErr.Target)
		fmt.Println(apiErr.TraceID != "")
	}
	fmt.Println(errors.Is(err, client.CodeBatchInvalidField))
	// Output:
	// 400 urn:pyng:platform:billing:error:batch:invalid-field
	// rows[0].amount
	// true
	// true
}

// mainTB is the testing.TB that TestMain gives apptest.Start: failures are printed and fail the
// run, cleanups run when the run ends.
type mainTB struct {
	testing.TB // nil: a method apptest does not use panics
	mu         sync.Mutex
	cleanups   []func()
	failed     bool
	dirs       []string
}

func (tb *mainTB) Helper()      {}
func (tb *mainTB) Name() string { return "TestMain" }
func (tb *mainTB) Failed() bool {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.failed
}
func (tb *mainTB) Cleanup(f func()) { tb.cleanups = append(tb.cleanups, f) }
func (tb *mainTB) Log(args ...any)  { fmt.Fprintln(os.Stderr, args...) }
func (tb *mainTB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
func (tb *mainTB) Error(args ...any) { tb.Errorf("%s", fmt.Sprintln(args...)) }
func (tb *mainTB) Errorf(format string, args ...any) {
	tb.mu.Lock()
	tb.failed = true
	tb.mu.Unlock()
	tb.Logf(format, args...)
}
func (tb *mainTB) Fatal(args ...any) { tb.Error(args...); tb.cleanup(); os.Exit(1) }
func (tb *mainTB) Fatalf(format string, args ...any) {
	tb.Errorf(format, args...)
	tb.cleanup()
	os.Exit(1)
}
func (tb *mainTB) TempDir() string {
	dir, err := os.MkdirTemp("", "pyng-client-example-")
	if err != nil {
		tb.Fatalf("temp dir: %v", err)
	}
	tb.dirs = append(tb.dirs, dir)
	return dir
}

// cleanup runs the cleanups, last registered first, and removes the temporary directories.
func (tb *mainTB) cleanup() {
	for len(tb.cleanups) > 0 {
		f := tb.cleanups[len(tb.cleanups)-1]
		tb.cleanups = tb.cleanups[:len(tb.cleanups)-1]
		f()
	}
	for _, dir := range tb.dirs {
		os.RemoveAll(dir)
	}
	tb.dirs = nil
}
