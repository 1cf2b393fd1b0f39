package app_test

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/becs/aba"
	"github.com/pyng/receivables/storage"
)

// TestBECSCutOffTaskCutsAndDeliversToTheOutbox runs the BECS tasks that the server's jobs run on
// the settings' schedule.
func TestBECSCutOffTaskCutsAndDeliversToTheOutbox(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		clock, service, _, r, site, _ := queuedDebit(t, engine)

		outbox := t.TempDir()
		tasks, err := app.BECSTasks(r, service, clock, app.Config{BECSCutoffs: "10m", BECSTimezone: "Australia/Sydney", BECSOutbox: outbox},
			slog.New(slog.DiscardHandler))
		if err != nil || len(tasks) != 3 || tasks[0].Name != "becs_cut" || tasks[2].Name != "becs_rematch_returns" {
			t.Fatalf("BECSTasks = %+v, %v", tasks, err)
		}
		if now := clock.Now(); !tasks[0].Next(now).Equal(now.Add(10 * time.Minute)) {
			t.Fatalf("the cut-off's next run after %v is %v, want 10 minutes later", now, tasks[0].Next(now))
		}
		if err := tasks[0].Run(ctx); err != nil {
			t.Fatal(err)
		}
		files, err := r.Files(ctx, site.ID)
		if err != nil || len(files) != 1 || files[0].DeliveredAt.IsZero() {
			t.Fatalf("Files = %+v, %v; want one file, delivered", files, err)
		}
		written, err := os.ReadFile(filepath.Join(outbox, files[0].Name()))
		if err != nil {
			t.Fatal(err)
		}
		if f, err := aba.Read(bytes.NewReader(written)); err != nil || f.Totals().Debit != 100 {
			t.Fatalf("the outbox's file: %+v, %v", f.Totals(), err)
		}
		if err := tasks[1].Run(ctx); err != nil {
			t.Fatalf("the delivery task with nothing to deliver: %v", err)
		}
		if entries, _ := os.ReadDir(outbox); len(entries) != 1 {
			t.Fatalf("the outbox holds %d entries, want the one file", len(entries))
		}
		// The metrics say a file waits in the outbox, and how long until it can no longer be lodged.
		backlog := app.BECSBacklog(r, clock)
		if got := gathered(t, backlog); got["pyng_becs_files_unlodged{state=delivered}"] != 1 || got["pyng_becs_files_unlodged{state=cut}"] != 0 ||
			got["pyng_becs_earliest_lodge_by_seconds"] != files[0].LodgeBy().Sub(clock.Now()).Seconds() {
			t.Errorf("the backlog's metrics with a file in the outbox = %v; want it delivered, lodge-by in %v", got, files[0].LodgeBy().Sub(clock.Now()))
		}
		// Once the file is lodged and its content erased, the delivery task removes its copy from
		// the outbox.
		if _, err := r.Lodge(ctx, files[0].ID); err != nil {
			t.Fatal(err)
		}
		if got := gathered(t, backlog); len(got) != 2 || got["pyng_becs_files_unlodged{state=delivered}"] != 0 {
			t.Errorf("the backlog's metrics once the file is lodged = %v; want no file and no lodge-by", got)
		}
		// The next run sets the lodged file's copy aside, out of the way of the files to upload.
		if err := tasks[1].Run(ctx); err != nil {
			t.Fatal(err)
		}
		if got := filesIn(t, outbox); !slices.Equal(got, []string{"lodged/" + files[0].Name()}) {
			t.Fatalf("the outbox holds %v once the file is lodged, want it in lodged/ alone", got)
		}
		clock.Advance(time.Hour)
		if _, _, err := service.EraseBankDetails(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := tasks[1].Run(ctx); err != nil {
			t.Fatalf("the delivery task after the erasure: %v", err)
		}
		if got := filesIn(t, outbox); len(got) != 0 {
			t.Fatalf("the outbox holds %v after the file's content was erased, want nothing", got)
		}
	})
}

// A cut-off that passes while no replica runs (a deploy at 15:00), or whose cut fails its
// attempts, is made up by the delivery task, every minute, rather than left to the next
// cut-off: River does not run a missed periodic job when it starts. A debit queued since the last
// cut-off waits for the next.
func TestTheDeliveryTaskMakesUpAMissedCutOff(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		clock, service, _, r, site, b := queuedDebit(t, engine)
		outbox := t.TempDir()
		tasks, err := app.BECSTasks(r, service, clock, app.Config{BECSCutoffs: "10m", BECSTimezone: "Australia/Sydney", BECSOutbox: outbox},
			slog.New(slog.DiscardHandler))
		if err != nil || tasks[1].Name != "becs_deliver" {
			t.Fatalf("BECSTasks = %+v, %v", tasks, err)
		}
		for _, step := range []struct {
			advance time.Duration
			files   int
		}{
			{9*time.Minute + 59*time.Second, 0}, // queued since the last cut-off: it waits for the next
			{time.Second, 1},                    // the next passed without its cut (becs_cut never ran)
			{time.Minute, 1},                    // nothing left queued
		} {
			clock.Advance(step.advance)
			if err := tasks[1].Run(ctx); err != nil {
				t.Fatal(err)
			}
			files, err := r.Files(ctx, site.ID)
			if err != nil || len(files) != step.files || (step.files > 0 && files[0].DeliveredAt.IsZero()) {
				t.Fatalf("%v after the debit was queued, the delivery task left files %+v, %v; want %d, delivered",
					clock.Now().Sub(b.SubmittedAt), files, err, step.files)
			}
		}
	})
}

// Without an outbox or an SFTP server, a file cut is delivered nowhere: the cut says so, at WARN,
// rather than leave the file to expire unseen.
func TestAFileCutWithNowhereToGoIsAWarning(t *testing.T) {
	ctx := context.Background()
	clock, service, _, r, _, _ := queuedDebit(t, "sqlite")
	var log apptest.LogBuffer
	tasks, err := app.BECSTasks(r, service, clock, app.Config{BECSCutoffs: "10m", BECSTimezone: "Australia/Sydney"}, log.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := tasks[0].Run(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), `level=WARN msg="BECS file cut and delivered nowhere`) {
		t.Errorf("the cut logged:\n%s\nwant a warning that the file goes nowhere", log.String())
	}
}

// filesIn lists the files under dir, by their paths below it.
func filesIn(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// queuedDebit is a service over a database of engine, its time clock's, with a site on the BECS
// rail (r, opened on db) and one debit of batch b queued on the rail (its first step done).
func queuedDebit(t *testing.T, engine string) (clock *clocktest.Clock, service *billing.Service, db storage.Database, r *becs.Rail,
	site billing.Site, b billing.Batch) {
	t.Helper()
	clock, service, db, r, site, b = acceptedDebit(t, engine)
	if _, _, err := service.ExecuteBatch(context.Background(), b.ID); err != nil {
		t.Fatal(err)
	}
	return clock, service, db, r, site, b
}

// acceptedDebit is queuedDebit before the first step: batch b is accepted, not started.
func acceptedDebit(t *testing.T, engine string) (clock *clocktest.Clock, service *billing.Service, db storage.Database, r *becs.Rail,
	site billing.Site, b billing.Batch) {
	t.Helper()
	clock = clocktest.New()
	service, db = apptest.NewService(t, engine, apptest.ServiceOptions{Clock: clock})
	r, site = onBECS(t, service, db.Conn(), clock, apptest.NewSite(t, service, "Acme"))
	return clock, service, db, r, site, apptest.SubmitOneDebit(t, service, site)
}

// becsBatchOfOneRow starts a server without jobs whose partner's site is on the BECS rail, with
// a linked customer C1 and a batch B1 of one row, R1 of 100 cents, accepted.
func becsBatchOfOneRow(t *testing.T, engine string) (*apptest.Server, *becs.Rail, billing.Site, billing.Batch) {
	t.Helper()
	srv := apptest.Start(t, engine, apptest.Options{NoJobs: true})
	r, site := onBECS(t, srv.Service, srv.Store.Conn(), srv.Clock, srv.Partner.Site)
	apptest.LinkedCustomer(t, srv.Service, site, "C1")
	b := apptest.SubmitBatch(t, srv.Service, site, "B1", billing.RowRequest{Reference: "R1", CustomerReference: "C1", Amount: 100})
	return srv, r, site, b
}

// onBECS puts the site on the BECS rail, with a debit user, and returns the rail (opened on conn)
// and the site as it now is.
func onBECS(t *testing.T, service *billing.Service, conn storage.Conn, clock becs.Clock, site billing.Site) (*becs.Rail, billing.Site) {
	t.Helper()
	ctx := context.Background()
	r, err := becs.Open(ctx, conn, clock)
	if err != nil {
		t.Fatal(err)
	}
	setDebitUser(t, r, site.ID, "123456")
	site = apptest.OnRail(t, service, site.ID, rail.BECS)
	return r, site
}

// setDebitUser sets the site's BECS debit user, of user ID userID, as set-rail does.
func setDebitUser(t *testing.T, r *becs.Rail, siteID, userID string) {
	t.Helper()
	if _, err := r.SetUser(context.Background(), siteID, aba.DebitUser{UserID: userID, UserName: "ACME", Institution: "CBA",
		Description: "DEBITS", TraceBSB: "062000", TraceAccount: "1234567", Remitter: "ACME"}); err != nil {
		t.Fatal(err)
	}
}

// userIDChangedAfterSubmit is the BECS rail of a server whose site's debit user ID an operator
// changes (change) just after the rail took the debits of a submission, the first only.
type userIDChangedAfterSubmit struct {
	*becs.Rail
	change func()
}

func (r *userIDChangedAfterSubmit) Submit(ctx context.Context, debits []rail.Debit) ([]rail.Outcome, error) {
	out, err := r.Rail.Submit(ctx, debits)
	if r.change != nil {
		r.change()
		r.change = nil
	}
	return out, err
}

// An operator changes the site's BECS user ID while a batch executes, its rows read before the
// change: the chunk submitted after it fails customerNotActive, its customer's Direct Debit
// Request naming the ID before, and the debit the rail queued before it is withdrawn by the
// batch's next step. No debit is left for a cut-off to lodge under the ID its customer did not
// authorise.
func TestAChangeOfTheDebitUserIDWhileABatchExecutesStopsItsDebits(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		clock := clocktest.New()
		operator, db := apptest.NewService(t, engine, apptest.ServiceOptions{Clock: clock})
		r, site := onBECS(t, operator, db.Conn(), clock, apptest.NewSite(t, operator, "Acme"))
		apptest.LinkedCustomer(t, operator, site, "C1")
		b := apptest.SubmitBatch(t, operator, site, "B1",
			billing.RowRequest{Reference: "R1", CustomerReference: "C1", Amount: 100},
			billing.RowRequest{Reference: "R2", CustomerReference: "C1", Amount: 200})

		opened, err := app.OpenRails(ctx, db, clock, 0)
		if err != nil {
			t.Fatal(err)
		}
		rails := opened.ByName()
		rails[rail.BECS] = &userIDChangedAfterSubmit{Rail: opened.BECS, change: func() { setDebitUser(t, r, site.ID, "654321") }}
		server := billing.NewService(billing.Config{Store: db, Batches: db, Events: db, Rails: rails, Clock: clock,
			InvitationTTL: billing.DefaultInvitationTTL, DebitUserID: app.BECSUserIDs(opened.BECS), ExecuteChunk: 1})
		step := func() []billing.Row {
			t.Helper()
			if _, _, err := server.ExecuteBatch(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			_, _, rows, err := server.Batch(ctx, site, "B1", "")
			if err != nil {
				t.Fatal(err)
			}
			return rows
		}
		rows := step()
		if rows[0].State != billing.RowPending || rows[1].State != billing.RowFailed || rows[1].FailureReason != billing.FailureCustomerNotActive {
			t.Fatalf("after the step the ID changed in: R1 %s, R2 %s %s; want R1 queued (pending), R2 failed customerNotActive",
				rows[0].State, rows[1].State, rows[1].FailureReason)
		}
		if rows = step(); rows[0].State != billing.RowFailed || rows[0].FailureReason != billing.FailureCustomerNotActive {
			t.Errorf("after the next step: R1 %s %s; want failed customerNotActive", rows[0].State, rows[0].FailureReason)
		}
		if files, err := r.Cut(ctx, becs.Calendar{}); err != nil || len(files) != 0 {
			t.Errorf("Cut = %+v, %v; want no file", files, err)
		}
	})
}

// set-rail changes the site's user ID in two steps: it writes the new ID, then withdraws the
// queued debits of the customers who did not authorise it (StopDebitsNotAuthorised). A cut-off
// between the two (another replica's) takes none of those debits: a file goes under the ID it
// names, and takes only the debits authorised under it. The debit is withdrawn by the second step
// and its row fails customerNotActive; a debit queued after the change, of a customer who
// authorised the new ID, is cut.
func TestACutOffDuringAChangeOfTheUserIDTakesNoDebitAuthorisedUnderTheOldOne(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		clock, service, _, r, site, b := queuedDebit(t, engine) // C1 authorised 123456
		setDebitUser(t, r, site.ID, "654321")                   // set-rail's first step
		if files, err := r.Cut(ctx, becs.Calendar{}); err != nil || len(files) != 0 {
			t.Fatalf("the cut-off between set-rail's steps = %+v, %v; want no file", files, err)
		}
		if overdue, err := r.CutOverdue(ctx, becs.Schedule{Interval: time.Minute}); err != nil || overdue {
			t.Errorf("CutOverdue = %v, %v; want false: the debit waiting is not one a cut would take", overdue, err)
		}
		if n, err := service.StopDebitsNotAuthorised(ctx, site, "654321"); err != nil || n != 1 {
			t.Fatalf("StopDebitsNotAuthorised = %d, %v; want C1 counted", n, err)
		}
		clock.Advance(time.Minute)
		if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		_, _, rows, err := service.Batch(ctx, site, b.Reference, "")
		if err != nil || rows[0].State != billing.RowFailed || rows[0].FailureReason != billing.FailureCustomerNotActive {
			t.Fatalf("the row = %+v, %v; want failed customerNotActive", rows, err)
		}

		// C2 signs up under the new ID; their debit is cut under it.
		apptest.LinkedCustomer(t, service, site, "C2")
		b2 := apptest.SubmitBatch(t, service, site, "B2", billing.RowRequest{Reference: "R1", CustomerReference: "C2", Amount: 700})
		if _, _, err := service.ExecuteBatch(ctx, b2.ID); err != nil {
			t.Fatal(err)
		}
		files, err := r.Cut(ctx, becs.Calendar{})
		if err != nil || len(files) != 1 || files[0].Rows != 1 || files[0].Total != 700 {
			t.Fatalf("the cut of C2's debit = %+v, %v; want one file of it", files, err)
		}
		content, err := r.Content(ctx, files[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if f, err := aba.Read(bytes.NewReader(content)); err != nil || f.UserID != "654321" {
			t.Errorf("the file's user ID = %q, %v; want 654321", f.UserID, err)
		}
	})
}

// gathered collects c's metrics, by name and labels (name{label=value}).
func gathered(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			out[name] = m.GetGauge().GetValue()
		}
	}
	return out
}

// siteBeingMoved is a site on the BECS rail, the operator's service that moves it, and what the
// service of a server sharing the database is made of.
type siteBeingMoved struct {
	clock    *clocktest.Clock
	operator *billing.Service
	db       storage.Database
	site     billing.Site
	rails    map[string]rail.Rail
	becs     *becs.Rail
}

func newSiteBeingMoved(t *testing.T, engine string) siteBeingMoved {
	t.Helper()
	clock := clocktest.New()
	operator, db := apptest.NewService(t, engine, apptest.ServiceOptions{Clock: clock})
	_, site := onBECS(t, operator, db.Conn(), clock, apptest.NewSite(t, operator, "Acme"))
	opened, err := app.OpenRails(context.Background(), db, clock, 0)
	if err != nil {
		t.Fatal(err)
	}
	return siteBeingMoved{clock: clock, operator: operator, db: db, site: site, rails: opened.ByName(), becs: opened.BECS}
}

// setRail is the operator's move of the site to the named rail.
func (m siteBeingMoved) setRail(t *testing.T, to string) func() {
	return func() {
		if _, err := m.operator.SetSiteRail(context.Background(), m.site.ID, to); err != nil {
			t.Error(err)
		}
	}
}

// server is the service of a server outside the sandbox whose batches are stored through batches.
func (m siteBeingMoved) server(batches billing.BatchStore) *billing.Service {
	return billing.NewService(billing.Config{Store: m.db, Batches: batches, Events: m.db, Rails: m.rails, Clock: m.clock,
		InvitationTTL: billing.DefaultInvitationTTL, DebitUserID: app.BECSUserIDs(m.becs)})
}

// railMovedWhileStoring is the batch store of a server whose site an operator moves (move) after
// the service read the site's rail and before the batch's transaction.
type railMovedWhileStoring struct {
	billing.BatchStore
	move func()
}

func (m railMovedWhileStoring) CreateBatch(ctx context.Context, b billing.Batch, rows []billing.Row) (billing.Batch, bool, error) {
	m.move()
	return m.BatchStore.CreateBatch(ctx, b, rows)
}

// Outside the sandbox, a site an operator moves from the BECS rail to the sandbox rail while a
// batch is being accepted takes no batch: the batch would be stored on the sandbox rail, and its
// rows would succeed with no money moved. The submission is refused site:not-collecting, as after
// the move, and nothing is stored.
func TestABatchIsNotStoredOnTheSandboxRailItsSiteMovedToWhileItWasAccepted(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		m := newSiteBeingMoved(t, engine)
		operator, site := m.operator, m.site
		server := m.server(railMovedWhileStoring{BatchStore: m.db, move: m.setRail(t, rail.Sandbox)})
		_, _, err := server.SubmitBatch(ctx, site, billing.BatchRequest{Reference: "B1",
			Rows: []billing.RowRequest{{Reference: "R1", CustomerReference: "C1", Amount: 100}}})
		if errs := billing.AsErrors(err); len(errs) != 1 || errs[0].Code != billing.CodeSiteNotCollecting {
			t.Fatalf("SubmitBatch while the site moved to the sandbox rail = %v, want site:not-collecting", err)
		}
		if _, _, _, err := operator.Batch(ctx, site, "B1", ""); len(billing.AsErrors(err)) != 1 || billing.AsErrors(err)[0].Code != billing.CodeBatchNotFound {
			t.Errorf("the batch after the refusal: %v, want batch:not-found", err)
		}
	})
}

// railMovedBackWhileStoring is the batch store of a server whose site an operator moves (away)
// after the service read the site's rail and before a batch's transaction, and moves again (back)
// once that transaction has ended: for the first *times transactions.
type railMovedBackWhileStoring struct {
	billing.BatchStore
	away, back func()
	times      *int
}

func (m railMovedBackWhileStoring) CreateBatch(ctx context.Context, b billing.Batch, rows []billing.Row) (billing.Batch, bool, error) {
	if *m.times == 0 {
		return m.BatchStore.CreateBatch(ctx, b, rows)
	}
	*m.times--
	m.away()
	defer m.back()
	return m.BatchStore.CreateBatch(ctx, b, rows)
}

// movedBackWhileStoring is railMovedBackWhileStoring of m's site, moved to the sandbox rail and
// back to the BECS rail around each of the first times transactions.
func (m siteBeingMoved) movedBackWhileStoring(t *testing.T, times int) railMovedBackWhileStoring {
	return railMovedBackWhileStoring{BatchStore: m.db, away: m.setRail(t, rail.Sandbox), back: m.setRail(t, rail.BECS), times: &times}
}

// A site an operator moves off the BECS rail while a batch is being stored, and back on it before
// the service checks it again, takes the batch on the BECS rail, as a submission after the moves
// would: the partner is not answered an internal error for a batch it may submit as it is. A
// batch whose reference an expired batch held is stored too, that batch deleted once only.
func TestABatchIsStoredOnTheRailItsSiteIsBackOnAfterMovesWhileItWasAccepted(t *testing.T) {
	for _, tc := range []struct {
		name    string
		expired bool // the reference held by a batch past its retention
	}{
		{"a new reference", false},
		{"a reference an expired batch held", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
				ctx := context.Background()
				m := newSiteBeingMoved(t, engine)
				clock, operator, site := m.clock, m.operator, m.site
				req := billing.BatchRequest{Reference: "B1", Rows: []billing.RowRequest{{Reference: "R1", CustomerReference: "C1", Amount: 100}}}
				if tc.expired {
					if _, _, err := operator.SubmitBatch(ctx, site, billing.BatchRequest{Reference: "B1",
						Rows: []billing.RowRequest{{Reference: "R0", CustomerReference: "C0", Amount: 50}}}); err != nil {
						t.Fatal(err)
					}
					clock.Set(clock.Now().Add(billing.BatchRetention + time.Minute))
				}
				server := m.server(m.movedBackWhileStoring(t, 1))
				b, replayed, err := server.SubmitBatch(ctx, site, req)
				if err != nil || replayed || b.Rail != rail.BECS {
					t.Fatalf("SubmitBatch while the site moved away and back = %+v, %v, %v; want accepted on the BECS rail", b, replayed, err)
				}
				if got, _, rows, err := operator.Batch(ctx, site, "B1", ""); err != nil || got.ID != b.ID || got.Rail != rail.BECS || len(rows) != 1 || rows[0].Reference != "R1" {
					t.Errorf("the batch stored: %+v, %+v, %v; want %s on the BECS rail, its one row R1", got, rows, err, b.ID)
				}
				if again, replayed, err := server.SubmitBatch(ctx, site, req); err != nil || !replayed || again.ID != b.ID {
					t.Errorf("the same submission again = %s, %v, %v; want it replayed", again.ID, replayed, err)
				}
			})
		})
	}
}

// A site an operator keeps moving off the BECS rail and back on it while a batch is being stored
// takes no batch: after three tries the submission is answered unavailable (a 503, to be sent
// again), not an internal error, and nothing is stored; sent again, it is accepted.
func TestABatchWhoseSiteKeepsMovingBetweenRailsIsAnsweredUnavailable(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		m := newSiteBeingMoved(t, engine)
		req := billing.BatchRequest{Reference: "B1", Rows: []billing.RowRequest{{Reference: "R1", CustomerReference: "C1", Amount: 100}}}
		server := m.server(m.movedBackWhileStoring(t, 3))
		_, _, err := server.SubmitBatch(ctx, m.site, req)
		if errs := billing.AsErrors(err); len(errs) != 1 || errs[0].Code != billing.CodeUnavailable {
			t.Fatalf("SubmitBatch while the site kept moving = %v, want unavailable", err)
		}
		if _, _, _, err := m.operator.Batch(ctx, m.site, "B1", ""); !billing.HasCode(err, billing.CodeBatchNotFound) {
			t.Errorf("the batch after the refusal: %v, want batch:not-found", err)
		}
		if b, replayed, err := server.SubmitBatch(ctx, m.site, req); err != nil || replayed || b.Rail != rail.BECS {
			t.Errorf("the same submission again = %+v, %v, %v; want accepted on the BECS rail", b, replayed, err)
		}
	})
}

// A server warns at start of each site on a rail that collects without its debit user's legal
// name and contact (put there before SetSiteRail required them), and of no other.
func TestTheServerWarnsOfASiteCollectingWithoutItsDebitUser(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		url := dbtest.URL(t, engine)
		db := dbtest.OpenURL(t, url, storage.WithKeyring(dbtest.Keyring()))
		service, _ := apptest.ServiceOver(t, db, apptest.ServiceOptions{})
		earlier := apptest.NewSite(t, service, "Earlier")
		if err := db.SetSiteRail(ctx, earlier.ID, rail.BECS); err != nil { // as a version before the check did
			t.Fatal(err)
		}
		ready := apptest.OnRail(t, service, apptest.NewSite(t, service, "Ready").ID, rail.BECS)
		sandbox := apptest.NewSite(t, service, "Sandbox")
		var log apptest.LogBuffer
		runServer(t, map[string]string{"database-url": url, "encryption-key": dbtest.KeyRing}, log.Logger())
		const warning = `level=WARN msg="site on a rail that collects without its debit user's legal name and contact`
		logged := log.String()
		if !strings.Contains(logged, warning) || !strings.Contains(logged, "site="+earlier.ID+" rail=becs") {
			t.Errorf("no warning of site %s:\n%s", earlier.ID, logged)
		}
		if strings.Count(logged, warning) != 1 || strings.Contains(logged, ready.ID) || strings.Contains(logged, sandbox.ID) {
			t.Errorf("warnings of other sites than %s:\n%s", earlier.ID, logged)
		}
	})
}
