package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/jobs"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/becs/aba"
	"github.com/pyng/receivables/storage"
)

// flakyWithdrawer is a BECS rail whose Withdraw fails the calls fail says (counted from 1), as a
// rail down a moment does, and runs after once a call has succeeded.
type flakyWithdrawer struct {
	*becs.Rail
	fail  func(call int) bool
	after func(call int)

	mu    sync.Mutex
	calls int
}

func (f *flakyWithdrawer) Withdraw(ctx context.Context, keys []string) ([]rail.Outcome, error) {
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.mu.Unlock()
	if f.fail(call) {
		return nil, errors.New("the rail is down a moment")
	}
	out, err := f.Rail.Withdraw(ctx, keys)
	if err == nil && f.after != nil {
		f.after(call)
	}
	return out, err
}

// flakyBECS is a service over a fresh database whose BECS rail is f (which fails nothing until a
// test says), with site on it and a linked customer C1; r is the rail opened again, for the test.
// The batches' next steps do not come within a test: the rail has them wait an hour.
type flakyBECS struct {
	clock   *clocktest.Clock
	service *billing.Service
	db      storage.Database
	r       *becs.Rail
	f       *flakyWithdrawer
	site    billing.Site
}

func newFlakyBECS(t *testing.T, engine string) flakyBECS {
	t.Helper()
	clock := clocktest.New()
	db := dbtest.Open(t, engine)
	opened, err := app.OpenRails(context.Background(), db, clock, 0)
	if err != nil {
		t.Fatal(err)
	}
	opened.BECS.Poll = time.Hour
	f := &flakyWithdrawer{Rail: opened.BECS, fail: func(int) bool { return false }}
	rails := opened.ByName()
	rails[rail.BECS] = f
	service := billing.NewService(billing.Config{Store: db, Batches: db, Events: db, Rails: rails, Clock: clock,
		InvitationTTL: billing.DefaultInvitationTTL, Sandbox: true, DebitUserID: app.BECSUserIDs(opened.BECS)})
	r, site := onBECS(t, service, db.Conn(), clock, apptest.NewSite(t, service, "Acme"))
	apptest.LinkedCustomer(t, service, site, "C1")
	return flakyBECS{clock: clock, service: service, db: db, r: r, f: f, site: site}
}

// queue submits a batch of one debit of C1 and runs its first step: the debit waits on the rail.
func (e flakyBECS) queue(t *testing.T, ref string, amount int64) billing.Batch {
	t.Helper()
	b := apptest.SubmitBatch(t, e.service, e.site, ref, billing.RowRequest{Reference: "R-" + ref, CustomerReference: "C1", Amount: amount})
	if _, _, err := e.service.ExecuteBatch(context.Background(), b.ID); err != nil {
		t.Fatal(err)
	}
	return b
}

// A revocation recorded while the rail fails to withdraw the customer's debit waiting for the
// cut-off does not leave the debit to its batch's next step, which the cut-off may come before:
// the job the revocation enqueued with its record asks the rail again, retried by the queue until
// the rail answers, and the debit is withdrawn, never cut into a file; its row fails
// customerNotActive. The partner's revocation and the bank's (a return that ends the authority)
// each find the debit a step queued between their withdrawal before the record and the record.
// (The failed withdrawal was ignored, and the cut-off sent the debit of a customer whose
// authority had ended.)
func TestARevokedCustomersDebitIsWithdrawnByItsJobWhenTheRailFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		// revoke revokes C1 and returns the batch of the debit the job is to withdraw.
		revoke func(t *testing.T, e flakyBECS) billing.Batch
	}{
		{"revoked by the partner, a debit queued during the revocation", revokeDuringAStep},
		{"revoked by the bank, a debit queued during the import", revokeByTheBankDuringAStep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
				ctx := context.Background()
				e := newFlakyBECS(t, engine)
				b := tc.revoke(t, e)
				l, err := e.service.Link(ctx, e.site, "C1")
				if err != nil || l.StoredState != billing.LinkRevoked {
					t.Fatalf("C1's link = %+v, %v; want the revocation recorded", l, err)
				}
				row := func() billing.Row {
					t.Helper()
					_, _, rows, err := e.service.Batch(ctx, e.site, b.Reference, "")
					if err != nil {
						t.Fatal(err)
					}
					return rows[0]
				}
				key := row().ID
				if o, err := e.r.Outcomes(ctx, []string{key}); err != nil || len(o) != 1 || !o[0].Queued {
					t.Fatalf("the debit after the revocation = %+v, %v; want it still queued, the rail having failed", o, err)
				}

				// In a queue of its own, a backlog of batch executions does not hold it up.
				if job := e.workWithdrawal(t, l.ID); job == nil || job.State != rivertype.JobStateCompleted || job.Attempt != 2 ||
					job.Queue != billing.WithdrawalQueue {
					t.Errorf("the revocation's withdrawal job = %+v; want it completed at its second attempt, in queue %q", job, billing.WithdrawalQueue)
				}
				if o, err := e.r.Outcomes(ctx, []string{key}); err != nil || len(o) != 1 || !o[0].Settled || o[0].Failure != rail.FailureWithdrawn {
					t.Errorf("the debit after the job = %+v, %v; want it withdrawn", o, err)
				}
				if files, err := e.r.Cut(ctx, becs.Calendar{}); err != nil || len(files) > 0 {
					t.Errorf("the cut after the revocation = %+v, %v; want no file", files, err)
				}
				e.clock.Advance(time.Minute)
				if _, _, err := e.service.ExecuteBatch(ctx, b.ID); err != nil {
					t.Fatal(err)
				}
				if got := row(); got.State != billing.RowFailed || got.FailureReason != billing.FailureCustomerNotActive {
					t.Errorf("the row = %s %s; want failed customerNotActive", got.State, got.FailureReason)
				}
			})
		})
	}
}

// queueDuringARevocation queues B1's debit of C1, and sets the rail so that during the revocation
// to come a step of a batch queues a debit of C1 between the withdrawal before the record (call 1,
// of B1's debit) and the record: B2's, reading the customer still linked; the withdrawal after
// the record (call 2) and the job's first attempt (call 3) fail. It returns where B2 will be.
func (e flakyBECS) queueDuringARevocation(t *testing.T) *billing.Batch {
	t.Helper()
	e.queue(t, "B1", 100)
	b2 := new(billing.Batch)
	e.f.fail = func(call int) bool { return call == 2 || call == 3 }
	e.f.after = func(call int) {
		if call == 1 {
			*b2 = e.queue(t, "B2", 200)
		}
	}
	return b2
}

// revokeDuringAStep has the partner revoke C1 as queueDuringARevocation says. It returns B2.
func revokeDuringAStep(t *testing.T, e flakyBECS) billing.Batch {
	t.Helper()
	b2 := e.queueDuringARevocation(t)
	if _, err := e.service.RevokeByPartner(context.Background(), e.site, "C1"); err != nil {
		t.Fatal(err)
	}
	return *b2
}

// The job of a revocation retried after the customer linked again withdraws the debits made under
// the agreement that ended, and leaves those of the batches submitted under the new one.
func TestARevocationsJobAfterTheCustomerLinkedAgainLeavesTheNewAgreementsDebits(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		e := newFlakyBECS(t, engine)
		revoked, err := e.service.Link(ctx, e.site, "C1")
		if err != nil {
			t.Fatal(err)
		}
		ended := revokeDuringAStep(t, e)
		e.clock.Advance(time.Minute)
		apptest.LinkedCustomer(t, e.service, e.site, "C1")
		e.clock.Advance(time.Minute)
		current := e.queue(t, "B3", 300)

		if job := e.workWithdrawal(t, revoked.ID); job == nil || job.State != rivertype.JobStateCompleted {
			t.Fatalf("the revocation's withdrawal job = %+v; want it completed", job)
		}
		for _, b := range []billing.Batch{ended, current} {
			_, _, rows, err := e.service.Batch(ctx, e.site, b.Reference, "")
			if err != nil {
				t.Fatal(err)
			}
			o, err := e.r.Outcomes(ctx, []string{rows[0].ID})
			if err != nil || len(o) != 1 {
				t.Fatalf("%s's debit: %+v, %v", b.Reference, o, err)
			}
			if withdrawn := o[0].Failure == rail.FailureWithdrawn; withdrawn != (b.ID == ended.ID) {
				t.Errorf("%s's debit after the job = %+v; want it withdrawn only if made under the agreement that ended", b.Reference, o[0])
			}
		}
		if files, err := e.r.Cut(ctx, becs.Calendar{}); err != nil || len(files) != 1 || files[0].Total != 300 {
			t.Errorf("the cut after the job = %+v, %v; want one file of the new agreement's debit", files, err)
		}
	})
}

// workWithdrawal works the queue, the batches' next steps held back (their jobs cancelled, so
// that a cut-off comes first), and returns the revoked link's withdrawal job once it has ended.
func (e flakyBECS) workWithdrawal(t *testing.T, linkID string) *rivertype.JobRow {
	t.Helper()
	queue := cancelJobs(t, e.db, billing.ExecuteBatchJob{}.Kind())
	cfg := jobs.DefaultConfig
	cfg.PollInterval = 20 * time.Millisecond
	startJobs(t, e.db, e.service, cfg)
	return withdrawalJob(t, queue, linkID)
}

// cancelJobs cancels the jobs of the kind in db's queue, and returns a client of the queue that
// works nothing, to read it.
func cancelJobs(t *testing.T, db storage.Database, kind string) storage.JobClient {
	t.Helper()
	ctx := context.Background()
	queue, err := db.NewJobClient(&river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := queue.JobList(ctx, river.NewJobListParams().Kinds(kind).First(100))
	if err != nil {
		t.Fatal(err)
	}
	canceller, ok := queue.(interface {
		JobCancel(ctx context.Context, id int64) (*rivertype.JobRow, error)
	})
	if !ok {
		t.Fatalf("the queue's client %T cannot cancel a job", queue)
	}
	for _, j := range res.Jobs {
		if _, err := canceller.JobCancel(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
	}
	return queue
}

// startJobs works db's queue with service, configured by cfg, until the test ends.
func startJobs(t *testing.T, db storage.Database, service *billing.Service, cfg jobs.Config) {
	t.Helper()
	stop, err := app.StartJobs(context.Background(), db, service, slog.New(slog.DiscardHandler), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = stop(ctx)
	})
}

// withdrawalJob is the withdraw_unsent job of the link in the queue once it has ended, or as it
// stands after a few seconds; nil if there is none.
func withdrawalJob(t *testing.T, queue storage.JobClient, linkID string) *rivertype.JobRow {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := queue.JobList(context.Background(), river.NewJobListParams().Kinds(billing.WithdrawUnsentJob{}.Kind()).First(100))
		if err != nil {
			t.Fatal(err)
		}
		var job *rivertype.JobRow
		for _, j := range res.Jobs {
			var args billing.WithdrawUnsentJob
			if err := json.Unmarshal(j.EncodedArgs, &args); err != nil {
				t.Fatal(err)
			}
			if args.LinkID == linkID {
				job = j
			}
		}
		if job == nil || job.FinalizedAt != nil || time.Now().After(deadline) {
			return job
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lodgedDebit queues a debit of C1 in batch ref, cuts it into a file, lodges the file and records
// the row succeeded; it returns the row's lodgement reference and the file's content.
func (e flakyBECS) lodgedDebit(t *testing.T, ref string) (string, []byte) {
	t.Helper()
	ctx := context.Background()
	b := e.queue(t, ref, 50)
	files := cutAndLodge(t, e.r)
	if _, _, err := e.service.ExecuteBatch(ctx, b.ID); err != nil || len(files) != 1 {
		t.Fatalf("%s lodged in %+v, its step: %v", ref, files, err)
	}
	content, err := e.r.Content(ctx, files[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	_, _, rows, err := e.service.Batch(ctx, e.site, ref, "")
	if err != nil || rows[0].State != billing.RowSucceeded {
		t.Fatalf("%s's rows = %+v, %v; want succeeded", ref, rows, err)
	}
	return becs.LodgementReference(rows[0].ID), content
}

// returnsClosing is a returns file of the debit of lodgement reference ref in content, returned
// accountClosed: a return that ends the customer's authority.
func (e flakyBECS) returnsClosing(t *testing.T, ref string, content []byte) []byte {
	t.Helper()
	returns, err := becs.ReturnsOf(content, map[string]aba.ReturnReason{ref: aba.ReturnAccountClosed}, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return returns
}

// revokeByTheBankDuringAStep has a return of B0's lodged debit end C1's authority, as
// queueDuringARevocation says. It returns B2.
func revokeByTheBankDuringAStep(t *testing.T, e flakyBECS) billing.Batch {
	t.Helper()
	lodged, content := e.lodgedDebit(t, "B0")
	returns := e.returnsClosing(t, lodged, content)
	b2 := e.queueDuringARevocation(t)
	if report, err := app.ImportBECSReturns(context.Background(), e.r, e.service, e.clock, returns); err != nil || report.Returned != 1 {
		t.Fatalf("import = %+v, %v; want B0's row returned", report, err)
	}
	return *b2
}

// A return that ends the customer's authority (accountClosed) comes while a later debit of theirs
// waits for the cut-off. The rail withdraws it before the return is recorded, as a customer's
// revocation does: a withdrawal only after the record could fail (its job retrying within a
// minute) and a cut-off in between would send the debit to the closed account. A withdrawal that
// fails before the record fails the import, which records nothing; imported again, the file
// returns the row and revokes the customer. Either way no file is cut of the later debit, and its
// row fails customerNotActive.
func TestABankReturnEndingTheAuthorityWithdrawsTheCustomersQueuedDebitsFirst(t *testing.T) {
	for _, tc := range []struct {
		name string
		// fail says, during the import, whether a withdrawal fails, by whether the return is
		// recorded and whether a withdrawal failed before.
		fail func(recorded, failedBefore bool) bool
	}{
		{"the withdrawal after the record fails", func(recorded, _ bool) bool { return recorded }},
		{"the withdrawal before the record fails, then the import is made again", func(recorded, failedBefore bool) bool {
			return !recorded && !failedBefore
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
				ctx := context.Background()
				e := newFlakyBECS(t, engine)
				lodged, content := e.lodgedDebit(t, "B0")
				returns := e.returnsClosing(t, lodged, content)
				b1 := e.queue(t, "B1", 300) // waits for the next cut-off
				returned := func() bool {
					t.Helper()
					_, _, rows, err := e.service.Batch(ctx, e.site, "B0", "")
					if err != nil {
						t.Fatal(err)
					}
					return rows[0].Returned()
				}
				failed := false
				e.f.fail = func(int) bool {
					fail := tc.fail(returned(), failed)
					failed = failed || fail
					return fail
				}
				report, err := app.ImportBECSReturns(ctx, e.r, e.service, e.clock, returns)
				if tc.fail(false, false) {
					if err == nil {
						t.Fatalf("import with the withdrawal failing = %+v; want its error", report)
					}
					if returned() {
						t.Fatal("B0's row returned by an import that failed")
					}
					if l, err := e.service.Link(ctx, e.site, "C1"); err != nil || l.StoredState != billing.LinkLinked {
						t.Fatalf("C1 after an import that failed = %+v, %v; want still linked", l, err)
					}
					report, err = app.ImportBECSReturns(ctx, e.r, e.service, e.clock, returns)
				}
				e.f.fail = func(int) bool { return false }
				if err != nil || report.Returned != 1 || report.Revoked != 1 {
					t.Fatalf("import = %+v, %v; want B0's row returned and C1 revoked", report, err)
				}
				// The cut-off, before the withdraw_unsent job's retry.
				if files, err := e.r.Cut(ctx, becs.Calendar{}); err != nil || len(files) != 0 {
					t.Errorf("Cut after the bank ended C1's authority = %+v, %v; want no file", files, err)
				}
				if _, _, err := e.service.ExecuteBatch(ctx, b1.ID); err != nil {
					t.Fatal(err)
				}
				if _, _, rows, _ := e.service.Batch(ctx, e.site, "B1", ""); rows[0].State != billing.RowFailed || rows[0].FailureReason != billing.FailureCustomerNotActive {
					t.Errorf("B1's row = %s %s; want failed customerNotActive", rows[0].State, rows[0].FailureReason)
				}
			})
		})
	}
}

// Returns that name a row twice, first with a reason that leaves the customer's authority
// (paymentStopped), then with one that ends it: the first is the one recorded, so the customer
// stays linked, and their debit waiting for the cut-off is not withdrawn but cut.
func TestTheFirstReturnOfARowDecidesWhetherItsCustomersDebitsAreWithdrawn(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		e := newFlakyBECS(t, engine)
		e.lodgedDebit(t, "B0")
		_, _, rows, err := e.service.Batch(ctx, e.site, "B0", "")
		if err != nil {
			t.Fatal(err)
		}
		e.queue(t, "B1", 300)
		report, err := e.service.ReturnRows(ctx, []billing.RowReturn{
			{RowID: rows[0].ID, Reason: "paymentStopped", At: e.clock.Now()},
			{RowID: rows[0].ID, Reason: "accountClosed", EndsAuthority: true, At: e.clock.Now()},
		})
		if err != nil || len(report.Returned) != 1 || report.Returned[0].ReturnReason != "paymentStopped" || len(report.Revoked) != 0 {
			t.Fatalf("ReturnRows = %+v, %v; want the row returned paymentStopped, no link revoked", report, err)
		}
		if l, err := e.service.Link(ctx, e.site, "C1"); err != nil || l.StoredState != billing.LinkLinked {
			t.Fatalf("C1 = %+v, %v; want still linked", l, err)
		}
		if files, err := e.r.Cut(ctx, becs.Calendar{}); err != nil || len(files) != 1 || files[0].Total != 300 {
			t.Errorf("Cut = %+v, %v; want B1's debit in a file", files, err)
		}
	})
}
