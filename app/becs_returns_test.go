package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/becs/aba"
	"github.com/pyng/receivables/sshdtest"
)

// apiRow is a row as GET of a batch shows it.
type apiRow struct {
	RowReference string
	State        string
	Retryable    *bool
	FileID       string
	ReturnedAt   int64
	ReturnReason string
}

// TestBECSReturnsImportReturnsSucceededRowsOnce cuts and lodges a file of three debits, imports
// a returns file of two of them and of two items that match none, and reads the rows and the
// debit.returned events over HTTP (every answer checked against the API document).
func TestBECSReturnsImportReturnsSucceededRowsOnce(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			srv := apptest.Start(t, engine, apptest.Options{NoJobs: true})
			service, site := srv.Service, srv.Partner.Site
			r, site := onBECS(t, service, srv.Store.Conn(), srv.Clock, site)
			apptest.LinkedCustomer(t, service, site, "C1")
			b := apptest.SubmitBatch(t, service, site, "B1", billing.RowRequest{Reference: "R1", CustomerReference: "C1", Amount: 100},
				billing.RowRequest{Reference: "R2", CustomerReference: "C1", Amount: 200},
				billing.RowRequest{Reference: "R3", CustomerReference: "C1", Amount: 300})
			execute := func() {
				t.Helper()
				if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
					t.Fatal(err)
				}
			}
			execute()
			files, err := r.Cut(ctx, becs.Calendar{})
			if err != nil || len(files) != 1 {
				t.Fatalf("Cut = %+v, %v", files, err)
			}
			file := files[0]
			execute()
			token := srv.Token(t, srv.Partner)
			getRows := func() []apiRow {
				t.Helper()
				res := srv.Do(t, apptest.Request{Method: "GET", Path: "/billing/sites/" + site.ID + "/batches/B1", Token: token})
				var body struct{ Data struct{ Rows []apiRow } }
				res.JSON(t, &body)
				if res.Status != 200 || len(body.Data.Rows) != 3 {
					t.Fatalf("GET the batch = %d %s", res.Status, res.Body)
				}
				return body.Data.Rows
			}
			for _, row := range getRows() {
				if row.State != "inProgress" || row.FileID != file.ID {
					t.Fatalf("after the cut, row %+v; want inProgress in %s", row, file.ID)
				}
			}
			if _, err := r.Lodge(ctx, file.ID); err != nil {
				t.Fatal(err)
			}
			execute()

			_, _, rows, err := service.Batch(ctx, site, "B1", "")
			if err != nil {
				t.Fatal(err)
			}
			content, err := r.Content(ctx, file.ID)
			if err != nil {
				t.Fatal(err)
			}
			returns, err := becs.ReturnsOf(content, map[string]aba.ReturnReason{
				becs.LodgementReference(rows[0].ID): aba.ReturnReferToCustomer,
				becs.LodgementReference(rows[1].ID): aba.ReturnAccountClosed,
			}, srv.Clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			// The bank's file holds two more blocks (lines 5-6 and 7-11): a nil one, and two items
			// that match no row (a reference of no debit, and a debit's reference with another
			// amount) and R2's item again, which returns its row once.
			returns = withBlocks(t, returns, nil, []aba.Return{
				{Entry: entry("PYNOSUCHDEBIT", 500), Reason: aba.ReturnPaymentStopped, OriginalDay: 1, OriginalUserID: "123456"},
				{Entry: entry(becs.LodgementReference(rows[2].ID), 301), Reason: aba.ReturnInvalidAccount, OriginalDay: 1, OriginalUserID: "123456"},
				{Entry: entry(becs.LodgementReference(rows[1].ID), 200), Reason: aba.ReturnAccountClosed, OriginalDay: 1, OriginalUserID: "123456"}})

			srv.Clock.Advance(48 * time.Hour)
			report, err := app.ImportBECSReturns(ctx, r, service, srv.Clock, returns)
			if err != nil {
				t.Fatal(err)
			}
			// R2's second item is counted already returned: every item is in one count.
			if report.Items != 5 || report.Returned != 2 || report.AlreadyReturned != 1 || len(report.Unmatched) != 2 {
				t.Fatalf("import = %+v", report)
			}
			returnedAt := billing.Millis(srv.Clock.Now())
			token = srv.Token(t, srv.Partner) // the first expired with the clock's advance
			want := []struct {
				reason    string
				retryable bool
			}{{"referToCustomer", true}, {"accountClosed", false}, {"", false}}
			check := func() {
				t.Helper()
				for i, row := range getRows() {
					w := want[i]
					if row.State != "succeeded" || row.FileID != file.ID || row.ReturnReason != w.reason {
						t.Errorf("row %d = %+v; want succeeded, in %s, returned for %q", i, row, file.ID, w.reason)
					}
					if w.reason != "" && (row.ReturnedAt != returnedAt || row.Retryable == nil || *row.Retryable != w.retryable) {
						t.Errorf("row %d = %+v; want returned at %d, retryable %v", i, row, returnedAt, w.retryable)
					}
					if w.reason == "" && (row.ReturnedAt != 0 || row.Retryable != nil) {
						t.Errorf("row %d = %+v; want no return", i, row)
					}
				}
			}
			check()
			events := returnedEvents(t, srv, token, site)
			if len(events) != 2 || events[0].Data.BatchReference != "B1" || events[0].Data.RowReference != "R1" ||
				events[0].Data.ReturnReason != "referToCustomer" || events[1].Data.RowReference != "R2" {
				t.Fatalf("debit.returned events = %+v", events)
			}

			// The same file again changes nothing.
			srv.Clock.Advance(time.Minute)
			again, err := app.ImportBECSReturns(ctx, r, service, srv.Clock, returns)
			if err != nil || again.Returned != 0 || again.AlreadyReturned != 3 || len(again.Unmatched) != 2 {
				t.Fatalf("the second import = %+v, %v", again, err)
			}
			check()
			kept, err := r.Unmatched(ctx)
			if err != nil || len(kept) != 2 || kept[0].LodgementReference != "PYNOSUCHDEBIT" || kept[0].Line != 8 || kept[1].Line != 9 ||
				!strings.Contains(kept[1].Problem, "amount") {
				t.Fatalf("Unmatched = %+v, %v; want the two items, once", kept, err)
			}

			// A malformed file, and a direct-entry file, change nothing at all.
			bad := []byte(strings.Replace(string(returns), "PYNOSUCHDEBIT", "PYNOSUCHDEBIT\u00e9", 1))
			var fields aba.Errors
			if _, err := app.ImportBECSReturns(ctx, r, service, srv.Clock, bad); !errors.As(err, &fields) {
				t.Fatalf("a malformed file: %v; want the format's errors", err)
			}
			if _, err := app.ImportBECSReturns(ctx, r, service, srv.Clock, content); !errors.Is(err, becs.ErrNotReturns) {
				t.Fatalf("a direct-entry file: %v; want ErrNotReturns", err)
			}
			// A nil returns file (some banks send one on a day without returns) is imported: it
			// has nothing to return.
			nilReturns, err := becs.ReturnsOf(content, nil, srv.Clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if report, err := app.ImportBECSReturns(ctx, r, service, srv.Clock, nilReturns); err != nil || report.Items != 0 ||
				report.Returned != 0 || len(report.Unmatched) != 0 {
				t.Fatalf("a nil returns file: %+v, %v; want imported, with nothing to return", report, err)
			}
			check()
			if kept, _ := r.Unmatched(ctx); len(kept) != 2 {
				t.Fatalf("Unmatched after the bad files: %d, want 2", len(kept))
			}
			if events := returnedEvents(t, srv, token, site); len(events) != 2 {
				t.Fatalf("debit.returned events after importing again: %d, want 2", len(events))
			}
		})
	}
}

func entry(ref string, amount int64) aba.Entry {
	return aba.Entry{BSB: "062-000", Account: "12345678", Code: aba.CodeDebit, Amount: amount, Title: "SOMEONE",
		LodgementReference: ref, TraceBSB: "062-000", TraceAccount: "1234567", Remitter: "ACME"}
}

// withBlocks adds to a returns file of one block a block of each list of items, of the same
// descriptive record, as a bank that sends a block for each user ID or day does.
func withBlocks(t *testing.T, content []byte, blocks ...[]aba.Return) []byte {
	t.Helper()
	f, err := aba.Read(strings.NewReader(string(content)))
	if err != nil {
		t.Fatal(err)
	}
	out := content
	for _, items := range blocks {
		f.Returns = items
		b, err := f.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

type returnedEvent struct {
	Type string
	Data struct {
		BatchReference string
		apiRow
	}
}

// returnedEvents lists the site's debit.returned events over HTTP, every one written before the
// call (eventsWritten).
func returnedEvents(t *testing.T, srv *apptest.Server, token string, site billing.Site) []returnedEvent {
	t.Helper()
	listed := eventsWritten(t, srv, token, site, billing.EventDebitReturned)
	events := make([]returnedEvent, len(listed))
	for i, e := range listed {
		if err := json.Unmarshal(e.Body, &events[i]); err != nil {
			t.Fatal(err)
		}
	}
	return events
}

// eventsWritten lists the site's events of the type over HTTP once every event written before the
// call is listed, so that a check that an event did not come needs no wait for it: it invites a
// customer (a customer.invited event, the marker) and reads the list until the marker is in it.
// On PostgreSQL an event is listed once every transaction that began writing before it has ended,
// and the other tests' schemas share this one's database: under load that is seconds.
func eventsWritten(t *testing.T, srv *apptest.Server, token string, site billing.Site, eventType billing.EventType) []apptest.Event {
	t.Helper()
	marker, err := srv.Service.Invite(context.Background(), site, fmt.Sprintf("MARKER-%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	var listed []apptest.Event
	waitFor(t, 30*time.Second, "the marker event listed", func() bool {
		listed = srv.Events(t, apptest.Partner{Site: site}, token)
		return slices.ContainsFunc(listed, func(e apptest.Event) bool {
			return e.Type == string(billing.EventCustomerInvited) && strings.Contains(string(e.Body), `"customerReference":"`+marker.CustomerReference+`"`)
		})
	})
	return slices.DeleteFunc(listed, func(e apptest.Event) bool { return e.Type != string(eventType) })
}

// TestBECSTasksDeliverBySFTPAndImportTheReturnsDirectory runs the BECS tasks against a real
// OpenSSH server: the cut-off uploads the file, which lodges it (its rows succeed at once), and
// the returns task imports the returns file the bank put in its directory, then moves it aside.
// The bank's upload of the file stalls mid-record for longer than the settle time: the task warns
// of the incomplete file at each look and leaves it in place until the upload resumes and ends,
// and imports it once unchanged for the wait for an incomplete file (a file cut at the end of one
// of its blocks reads whole). Another upload, which never resumes, is rejected then, with an
// error that says so.
func TestBECSTasksDeliverBySFTPAndImportTheReturnsDirectory(t *testing.T) {
	sshd := sshdtest.Start(t)
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := clocktest.New()
			service, db := apptest.NewService(t, engine, apptest.ServiceOptions{Clock: clock})
			site := apptest.NewSite(t, service, "Acme")
			r, site := onBECS(t, service, db.Conn(), clock, site)
			b := apptest.SubmitOneDebit(t, service, site)
			if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			out, returnsDir := filepath.Join(sshd.Dir, engine, "out"), filepath.Join(sshd.Dir, engine, "returns")
			for _, d := range []string{out, returnsDir} {
				if err := os.MkdirAll(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			var log apptest.LogBuffer
			const settle, incompleteWait = 100 * time.Millisecond, 1500 * time.Millisecond
			tasks, err := app.BECSTasks(r, service, clock, app.Config{BECSCutoffs: "10m", BECSTimezone: "Australia/Sydney",
				BECSSFTPURL: sshd.URL(engine + "/out"), BECSSFTPKeyFile: sshd.KeyFile, BECSSFTPKnownHosts: sshd.KnownHosts,
				BECSSFTPReturnsDir: returnsDir, BECSSFTPReturnsSettle: settle, BECSSFTPReturnsIncompleteWait: incompleteWait}, log.Logger())
			if err != nil || len(tasks) != 4 || tasks[2].Name != "becs_returns" || tasks[3].Name != "becs_rematch_returns" {
				t.Fatalf("BECSTasks = %+v, %v; want the cut, the delivery, the returns and their match again", tasks, err)
			}
			if err := tasks[0].Run(ctx); err != nil {
				t.Fatal(err)
			}
			_, _, rows, err := service.Batch(ctx, site, b.Reference, "")
			if err != nil || len(rows) != 1 || rows[0].State != billing.RowSucceeded || rows[0].FileID == "" {
				t.Fatalf("rows %+v, %v; want succeeded once the file is uploaded", rows, err)
			}
			content, err := os.ReadFile(filepath.Join(out, rows[0].FileID+".aba"))
			if err != nil {
				t.Fatalf("the file is not on the server: %v", err)
			}
			returns, err := becs.ReturnsOf(content, map[string]aba.ReturnReason{becs.LodgementReference(rows[0].ID): aba.ReturnPaymentStopped}, clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			runReturns := func(times int) { // the first run after a change notes the file, the next finds it settled
				t.Helper()
				for range times {
					if err := tasks[2].Run(ctx); err != nil {
						t.Fatal(err)
					}
					time.Sleep(settle + 50*time.Millisecond)
				}
			}
			const stalledAt = 122 + 50 // within the returned item
			for _, name := range []string{"RET001.aba", "RET002.aba"} {
				if err := os.WriteFile(filepath.Join(returnsDir, name), returns[:stalledAt], 0o600); err != nil {
					t.Fatal(err)
				}
			}
			runReturns(3)
			for _, name := range []string{"RET001.aba", "RET002.aba"} {
				if _, err := os.Stat(filepath.Join(returnsDir, name)); err != nil {
					t.Fatalf("the incomplete file %s was not left in place: %v", name, err)
				}
				warning := fmt.Sprintf(`level=WARN msg="BECS returns file incomplete, as one still being uploaded is`+
					`: left in place, read again every minute, and rejected if it stays unchanged for PYNG_BECS_SFTP_RETURNS_INCOMPLETE_WAIT" file=%s size=%d unchanged=`, name, stalledAt)
				if n := strings.Count(log.String(), warning); n != 2 {
					t.Fatalf("the log warns %d times of %s, want at each of the 2 looks that read it:\n%s", n, name, log.String())
				}
			}
			if err := os.WriteFile(filepath.Join(returnsDir, "RET001.aba"), returns, 0o600); err != nil { // the upload resumed and ended
				t.Fatal(err)
			}
			runReturns(2)
			_, _, rows, _ = service.Batch(ctx, site, b.Reference, "")
			if _, err := os.Stat(filepath.Join(returnsDir, "RET001.aba")); err != nil || rows[0].ReturnReason != "" {
				t.Fatalf("the file that reads whole was not left in place until the wait (%v), or its return was recorded: %+v", err, rows[0])
			}
			time.Sleep(incompleteWait)
			runReturns(1)
			_, _, rows, _ = service.Batch(ctx, site, b.Reference, "")
			if rows[0].ReturnReason != "paymentStopped" || rows[0].State != billing.RowSucceeded {
				t.Fatalf("row %+v; want returned, paymentStopped", rows[0])
			}
			if _, err := os.Stat(filepath.Join(returnsDir, "imported", "RET001.aba")); err != nil {
				t.Fatalf("the returns file was not moved to imported/: %v", err)
			}
			if _, err := os.Stat(filepath.Join(returnsDir, "rejected", "RET002.aba")); err != nil {
				t.Fatalf("the file whose upload never resumed was not moved to rejected/: %v", err)
			}
			rejected := `level=ERROR msg="BECS returns file rejected, nothing imported; moved to rejected/" file=RET002.aba err="incomplete, and unchanged for `
			if !strings.Contains(log.String(), rejected) {
				t.Fatalf("the log does not say the file was rejected as incomplete, and for how long unchanged:\n%s", log.String())
			}
		})
	}
}

// TestBECSTasksDeliverToTheOutboxAndBySFTPTogether sets both PYNG_BECS_OUTBOX and
// PYNG_BECS_SFTP_URL (the "to a directory, and/or by SFTP"): the cut-off writes the file
// to the outbox, whole, and uploads it to a real OpenSSH server, which lodges it (its row
// succeeds at once); the delivery task puts it nowhere again; the returns task is there.
func TestBECSTasksDeliverToTheOutboxAndBySFTPTogether(t *testing.T) {
	sshd := sshdtest.Start(t)
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := clocktest.New()
			service, db := apptest.NewService(t, engine, apptest.ServiceOptions{Clock: clock})
			site := apptest.NewSite(t, service, "Acme")
			r, site := onBECS(t, service, db.Conn(), clock, site)
			b := apptest.SubmitOneDebit(t, service, site)
			if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			outbox, onServer, returnsDir := t.TempDir(), filepath.Join(sshd.Dir, engine, "out"), filepath.Join(sshd.Dir, engine, "returns")
			for _, d := range []string{onServer, returnsDir} {
				if err := os.MkdirAll(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			var log strings.Builder
			tasks, err := app.BECSTasks(r, service, clock, app.Config{BECSCutoffs: "10m", BECSTimezone: "Australia/Sydney", BECSOutbox: outbox,
				BECSSFTPURL: sshd.URL(engine + "/out"), BECSSFTPKeyFile: sshd.KeyFile, BECSSFTPKnownHosts: sshd.KnownHosts,
				BECSSFTPReturnsDir: returnsDir}, slog.New(slog.NewTextHandler(&log, nil)))
			if err != nil || len(tasks) != 4 || tasks[1].Name != "becs_deliver" || tasks[2].Name != "becs_returns" {
				t.Fatalf("BECSTasks = %+v, %v; want the cut, the delivery, the returns and their match again", tasks, err)
			}
			if err := tasks[0].Run(ctx); err != nil {
				t.Fatal(err)
			}
			_, _, rows, err := service.Batch(ctx, site, b.Reference, "")
			if err != nil || len(rows) != 1 || rows[0].State != billing.RowSucceeded || rows[0].FileID == "" {
				t.Fatalf("rows %+v, %v; want succeeded once the file is uploaded", rows, err)
			}
			file, err := r.File(ctx, rows[0].FileID)
			if err != nil || file.DeliveredAt.IsZero() || file.LodgedAt.IsZero() {
				t.Fatalf("File = %+v, %v; want delivered and lodged", file, err)
			}
			content, _ := r.Content(ctx, file.ID)
			if err := tasks[1].Run(ctx); err != nil {
				t.Fatalf("the delivery task with nothing to deliver: %v", err)
			}
			// The outbox's copy of a file lodged (by the server) is set aside in lodged/, out of the
			// way of the files to upload.
			for _, dir := range []string{filepath.Join(outbox, "lodged"), onServer} {
				entries, _ := os.ReadDir(dir)
				if len(entries) != 1 || entries[0].Name() != file.Name() {
					t.Fatalf("%s holds %v, want only %s", dir, entries, file.Name())
				}
				if got, _ := os.ReadFile(filepath.Join(dir, file.Name())); string(got) != string(content) {
					t.Fatalf("%s's file differs from the stored file", dir)
				}
			}
			if !strings.Contains(log.String(), "do not lodge the copy") || !strings.Contains(log.String(), outbox+" and sftp://") {
				t.Fatalf("the log does not say the file was lodged with a copy in the outbox:\n%s", log.String())
			}
		})
	}
}

// The periodic task matches again, every minute, the returned items kept unmatched whose rows
// succeeded since by a way other than `files lodged`: here the file is recorded lodged without
// its rows (the record that follows a lodgement failed), and the batch's next step records them
// succeeded. The partner sees the row returned, with one debit.returned event; the item is no
// longer kept, and a second run, or the file imported again, changes nothing.
func TestBECSRematchTaskReturnsRowsThatSucceededAfterTheirReturnsCame(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			srv, r, site, b := becsBatchOfOneRow(t, engine)
			service := srv.Service
			if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			files, err := r.Cut(ctx, becs.Calendar{})
			if err != nil || len(files) != 1 {
				t.Fatalf("Cut = %+v, %v", files, err)
			}
			_, _, rows, err := service.Batch(ctx, site, "B1", "")
			if err != nil {
				t.Fatal(err)
			}
			content, err := r.Content(ctx, files[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			returns, err := becs.ReturnsOf(content, map[string]aba.ReturnReason{becs.LodgementReference(rows[0].ID): aba.ReturnReferToCustomer}, srv.Clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if report, err := app.ImportBECSReturns(ctx, r, service, srv.Clock, returns); err != nil || len(report.Unmatched) != 1 {
				t.Fatalf("import before the row succeeded = %+v, %v; want the item kept", report, err)
			}
			var log apptest.LogBuffer
			tasks, err := app.BECSTasks(r, service, srv.Clock, app.Config{BECSCutoffs: "10m", BECSTimezone: "Australia/Sydney"}, log.Logger())
			if err != nil || len(tasks) != 3 || tasks[2].Name != "becs_rematch_returns" {
				t.Fatalf("BECSTasks = %+v, %v; want the cut, the delivery and the match again of the kept returns", tasks, err)
			}
			if now := srv.Clock.Now(); !tasks[2].Next(now).Equal(now.Add(time.Minute)) {
				t.Fatalf("the task's next run after %v is %v, want a minute later", now, tasks[2].Next(now))
			}
			if _, err := r.Lodge(ctx, files[0].ID); err != nil {
				t.Fatal(err)
			}
			if err := tasks[2].Run(ctx); err != nil { // the row is not recorded succeeded yet
				t.Fatal(err)
			}
			if kept, _ := r.Unmatched(ctx); len(kept) != 1 {
				t.Fatalf("kept %+v before the row succeeded; want the item", kept)
			}
			if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil { // the batch's next step
				t.Fatal(err)
			}
			srv.Clock.Advance(time.Minute)
			if err := tasks[2].Run(ctx); err != nil {
				t.Fatal(err)
			}
			returnedAt := billing.Millis(srv.Clock.Now())
			if !strings.Contains(log.String(), `level=INFO msg="BECS returned items kept unmatched match their rows now`) ||
				!strings.Contains(log.String(), "items=1 returned=1 alreadyReturned=0") {
				t.Fatalf("the task logged:\n%s\nwant the item matched", log.String())
			}
			if kept, _ := r.Unmatched(ctx); len(kept) != 0 {
				t.Fatalf("kept %+v after the row was returned; want nothing", kept)
			}
			srv.Clock.Advance(time.Minute)
			if err := tasks[2].Run(ctx); err != nil {
				t.Fatal(err)
			}
			again, err := app.ImportBECSReturns(ctx, r, service, srv.Clock, returns)
			if err != nil || again.Returned != 0 || again.AlreadyReturned != 1 || len(again.Unmatched) != 0 {
				t.Fatalf("the file imported again = %+v, %v; want its item already returned", again, err)
			}

			token := srv.Token(t, srv.Partner)
			res := srv.Do(t, apptest.Request{Method: "GET", Path: "/billing/sites/" + site.ID + "/batches/B1", Token: token})
			var body struct{ Data struct{ Rows []apiRow } }
			res.JSON(t, &body)
			if res.Status != 200 || len(body.Data.Rows) != 1 {
				t.Fatalf("GET the batch = %d %s", res.Status, res.Body)
			}
			if row := body.Data.Rows[0]; row.State != "succeeded" || row.ReturnReason != "referToCustomer" || row.ReturnedAt != returnedAt {
				t.Fatalf("row %+v; want succeeded, returned referToCustomer at %d", row, returnedAt)
			}
			events := returnedEvents(t, srv, token, site)
			if len(events) != 1 || events[0].Data.RowReference != "R1" || events[0].Data.ReturnReason != "referToCustomer" {
				t.Fatalf("debit.returned events = %+v; want R1's, once", events)
			}
		})
	}
}
