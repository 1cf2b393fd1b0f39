package becs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/sshdtest"
)

// A delivery to the outbox cut short between its mark and its rename (a crash), with the server
// back only after the file's lodge-by time, does not publish the file: its rows fail expired, and
// an operator who uploads what the outbox holds must not find it there. Its staged copy goes.
// The hook is the package's, so the engines run one at a time.
func TestAFileStagedInTimeIsNotPublishedAfterItsLodgeBy(t *testing.T) {
	type crash struct{}
	onEachEngineInTurn(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		b := f.submit(t, "B1", 100, 250)
		file := f.cutOne(t)
		outbox := t.TempDir()
		becs.BeforePublish = func() { panic(crash{}) }
		func() {
			defer func() {
				if p := recover(); p != (crash{}) {
					t.Fatalf("the delivery ended with %v, want the simulated crash", p)
				}
			}()
			_, _, _ = f.rail.Deliver(ctx, becs.Dir(outbox))
		}()
		becs.BeforePublish = nil
		// The server comes back after the file's lodge-by time (and the rows' deadline).
		f.clock.Set(file.EarliestDeadline.Add(time.Minute))
		f.execute(t, b) // the rows expire
		if _, _, err := f.rail.Deliver(ctx, becs.Dir(outbox)); err != nil {
			t.Fatal(err)
		}
		rows := states(f.rows(t, "B1"))
		if entries, _ := os.ReadDir(outbox); len(entries) != 0 {
			t.Errorf("the outbox holds %v after the lodge-by time %v of %s, while its rows are %v",
				entries, file.LodgeBy(), file.Name(), rows)
		}
	})
}

// failingPublish is a destination whose renames fail.
type failingPublish struct{ becs.Destination }

func (d failingPublish) Publish(context.Context, string) error { return errors.New("rename refused") }

// A file is lodged with its publication on the bank's server, not before: while the rename fails
// the rows are not told succeeded.
func TestRowsSucceedOnlyOnceTheBankHasTheFile(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		b := f.submit(t, "B1", 100)
		file := f.cutOne(t)
		dir := t.TempDir()
		dest := failingPublish{lodgingDir{becs.Dir(dir)}}
		_, _, err := f.rail.Deliver(ctx, dest)
		if err == nil {
			t.Fatal("Deliver succeeded; want the publication's error")
		}
		f.execute(t, b)
		got := states(f.rows(t, "B1"))
		if _, err := os.Stat(filepath.Join(dir, file.Name())); err != nil && got[0] == "succeeded" {
			t.Errorf("rows %v while the destination holds no %s (only its staged copy): the partner is told the money moved", got, file.Name())
		}
	})
}

// lodgingDir is a directory standing for the bank's server: what is published there is lodged.
type lodgingDir struct{ becs.Dir }

func (lodgingDir) Lodges() bool { return true }

// SetAside does nothing, as the bank's server's does: what it was given is the bank's.
func (lodgingDir) SetAside(context.Context, string) error { return nil }

// blockingRail is the BECS rail of another replica's execution of a batch, paused in Submit
// after it read the rows (the customer linked) and before the debits reach the rail.
type blockingRail struct {
	inner   *becs.Rail
	reached chan struct{}
	release chan struct{}
}

func (r blockingRail) Submit(ctx context.Context, d []rail.Debit) ([]rail.Outcome, error) {
	close(r.reached)
	<-r.release
	return r.inner.Submit(ctx, d)
}
func (r blockingRail) Outcomes(ctx context.Context, k []string) ([]rail.Outcome, error) {
	return r.inner.Outcomes(ctx, k)
}
func (r blockingRail) Withdraw(ctx context.Context, k []string) ([]rail.Outcome, error) {
	return r.inner.Withdraw(ctx, k)
}

func pausedExecution(t *testing.T, f fixture) (blockingRail, *billing.Service) {
	r := blockingRail{inner: f.rail, reached: make(chan struct{}), release: make(chan struct{})}
	return r, f.replica(r)
}

// A revocation while an execution of the batch submits its debit: the revocation comes before the
// debit is queued and withdraws nothing (and, in the second case, another execution reads the
// customer revoked, withdraws nothing and fails the row customerNotActive). The execution finds
// the customer revoked once the rail answers and withdraws the debit, so the cut-off before the
// batch's next step does not send it: the customer is not debited for a row told failed.
func TestARevocationDuringASubmissionStopsTheNextCut(t *testing.T) {
	for _, another := range []bool{false, true} {
		t.Run(fmt.Sprintf("anotherExecution=%t", another), func(t *testing.T) {
			dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
				ctx := context.Background()
				f := newFixture(t, engine)
				b := apptest.SubmitOneDebit(t, f.service, f.site)
				paused, other := pausedExecution(t, f)
				done := make(chan error, 1)
				go func() { _, _, err := other.ExecuteBatch(ctx, b.ID); done <- err }()
				<-paused.reached
				if _, err := f.service.RevokeByPartner(ctx, f.site, "C1"); err != nil {
					t.Fatal(err)
				}
				if another {
					f.execute(t, b)
				}
				close(paused.release)
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				f.wantNoFileCut(t) // the cut-off, before the batch's next step
				if got := states(f.rows(t, "B1")); !slices.Equal(got, []string{"failedcustomerNotActive"}) {
					t.Errorf("row %v, want failed customerNotActive", got)
				}
			})
		})
	}
}

// The copies of an erased file in the outbox go, the temporary ones an earlier release left
// (".NAME.RANDOM.tmp", from a crash while it wrote) too: they hold bank details in plaintext.
func TestAnErasedFilesEarlierTemporaryCopiesAreRemoved(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		f.submit(t, "B1", 100)
		file := f.cutOne(t)
		dir := t.TempDir()
		old := filepath.Join(dir, "."+file.Name()+".123456.tmp") // left by the old writeAtomically
		if err := os.WriteFile(old, []byte("bank details"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.rail.Deliver(ctx, becs.Dir(dir)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.rail.Lodge(ctx, file.ID); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Hour)
		if _, _, err := f.service.EraseBankDetails(ctx, time.Nanosecond); err != nil {
			t.Fatal(err)
		}
		if n, err := f.rail.RemoveErasedCopies(ctx, becs.Dir(dir)); err != nil || n != 1 {
			t.Fatalf("RemoveErasedCopies = %d, %v", n, err)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			t.Errorf("after the erasure and RemoveErasedCopies the outbox still holds %s", e.Name())
		}
	})
}

// A file staged on the bank's server whose deadline passes before it is published is not
// published, and its staged copy is removed: it holds bank details, for a file no one may lodge.
// The hook is the package's, so the engines run one at a time.
func TestAStagedCopyTooLateToPublishIsRemovedFromTheBanksServer(t *testing.T) {
	sshd := sshdtest.Start(t)
	onEachEngineInTurn(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		f.submit(t, "B1", 100)
		file := f.cutOne(t)
		d := destinations(t, sshd)["sftp"]
		becs.BeforeDeliveredMark = func() { f.clock.Set(file.EarliestDeadline) }
		_, _, err := f.rail.Deliver(ctx, d.dest)
		becs.BeforeDeliveredMark = nil
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Hour)
		for range 2 {
			if _, _, err := f.rail.Deliver(ctx, d.dest); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := f.service.EraseBankDetails(ctx, time.Nanosecond); err != nil {
			t.Fatal(err)
		}
		if _, err := f.rail.RemoveErasedCopies(ctx, d.dest); err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(d.dir)
		for _, e := range entries {
			t.Errorf("the bank's server still holds %s (plaintext bank details of an expired file)", e.Name())
		}
	})
}

// onEachEngineInTurn runs test on each engine, one after the other: for tests that set the
// package's hooks.
func onEachEngineInTurn(t *testing.T, test func(t *testing.T, engine string)) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) { test(t, engine) })
	}
}

// interruptedWithdrawal is the BECS rail of a replica revoking a customer, in which another
// replica's step of the batch runs (step) once the revocation's withdrawal is done and before the
// revocation is recorded.
type interruptedWithdrawal struct {
	*becs.Rail
	step func()
}

func (r interruptedWithdrawal) Withdraw(ctx context.Context, k []string) ([]rail.Outcome, error) {
	o, err := r.Rail.Withdraw(ctx, k)
	r.step()
	return o, err
}

// A step of the batch between a revocation's withdrawal of the customer's queued debit and the
// record of the revocation reads the customer linked, so it queues the debit again and lets it
// stand. The revocation must still stop it: the cut-off before the batch's next step does not
// send it, and the row fails customerNotActive, for the customer cancelled before the file was
// cut.
func TestAStepBetweenARevocationsWithdrawalAndItsRecordDoesNotSendTheDebit(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		b := apptest.SubmitOneDebit(t, f.service, f.site)
		f.execute(t, b) // the debit is queued for the next cut-off
		revoking := f.replica(interruptedWithdrawal{Rail: f.rail, step: func() { f.execute(t, b) }})
		if _, err := revoking.RevokeByPartner(ctx, f.site, "C1"); err != nil {
			t.Fatal(err)
		}
		f.wantNoFileCut(t) // the cut-off, before the batch's next step
		f.execute(t, b)
		if got := states(f.rows(t, "B1")); !slices.Equal(got, []string{"failedcustomerNotActive"}) {
			t.Errorf("row %v, want failed customerNotActive", got)
		}
	})
}

// cancelledAfterRecord is the BECS rail of a replica revoking a customer for a request whose
// client goes away once the revocation is recorded: the first withdrawal runs another replica's
// step after it (step), and the context is cancelled (cancel) before the second.
type cancelledAfterRecord struct {
	*becs.Rail
	step, cancel func()
	calls        *int
}

func (r cancelledAfterRecord) Withdraw(ctx context.Context, k []string) ([]rail.Outcome, error) {
	*r.calls++
	if *r.calls == 1 {
		o, err := r.Rail.Withdraw(ctx, k)
		r.step()
		return o, err
	}
	r.cancel()
	return r.Rail.Withdraw(ctx, k)
}

// The second withdrawal of a revocation is not the request's to cancel: the revocation is
// recorded, and a client that goes away then (its timeout, a dropped connection) must not leave
// the debit that a step submitted for the first time between the withdrawal and the record (of
// a batch the first withdrawal found not started) to the cut-off before that batch's next step.
func TestARevocationRecordedWithdrawsAgainThoughItsRequestIsCancelled(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		f := newFixture(t, engine)
		f.execute(t, apptest.SubmitOneDebit(t, f.service, f.site)) // B1's debit is queued: the first withdrawal has one
		b := apptest.SubmitBatch(t, f.service, f.site, "B2", billing.RowRequest{Reference: "R1", CustomerReference: "C1", Amount: 200})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		calls := 0
		revoking := f.replica(cancelledAfterRecord{Rail: f.rail, step: func() { f.execute(t, b) }, cancel: cancel, calls: &calls})
		if _, err := revoking.RevokeByPartner(ctx, f.site, "C1"); err != nil {
			t.Fatal(err)
		}
		files, err := f.rail.Cut(context.Background(), inSydney) // the cut-off, before the batch's next step
		if err != nil {
			t.Fatal(err)
		}
		if len(files) > 0 {
			t.Errorf("the cut after the revocation put the revoked customer's debit in file %s (%d cents)", files[0].ID, files[0].Total)
		}
	})
}

// failingWithdrawal is blockingRail whose withdrawals fail (the database out of reach for a
// moment, or the replica killed, after the submission).
type failingWithdrawal struct{ blockingRail }

func (failingWithdrawal) Withdraw(context.Context, []string) ([]rail.Outcome, error) {
	return nil, errors.New("connection reset by peer")
}

// An execution of the batch paused in Submit (it read the customer linked), a revocation, and
// another execution that reads the customer revoked and fails the row customerNotActive, the
// rail holding no debit of it yet. The first then submits the debit and stops before it withdraws
// it (its withdrawal fails); run again, it finds the row terminal and submits nothing. The debit
// must not be left queued for the cut-off: the customer would be debited for a row told failed.
func TestADebitQueuedAfterItsRowFailedCustomerNotActiveIsNotSent(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		b := apptest.SubmitOneDebit(t, f.service, f.site)
		paused := failingWithdrawal{blockingRail{inner: f.rail, reached: make(chan struct{}), release: make(chan struct{})}}
		other := f.replica(paused)
		done := make(chan error, 1)
		go func() { _, _, err := other.ExecuteBatch(ctx, b.ID); done <- err }()
		<-paused.reached
		if _, err := f.service.RevokeByPartner(ctx, f.site, "C1"); err != nil {
			t.Fatal(err)
		}
		f.execute(t, b) // the other execution: the row fails customerNotActive
		close(paused.release)
		<-done          // fails at its withdrawal, unless the rail answers the debit withdrawn already
		f.execute(t, b) // its job run again
		f.wantNoFileCut(t)
		if got := states(f.rows(t, "B1")); !slices.Equal(got, []string{"failedcustomerNotActive"}) {
			t.Errorf("row %v, want failed customerNotActive", got)
		}
	})
}

// failingSubmission is the BECS rail whose Submit fails, as a database out of reach does.
type failingSubmission struct{ blockingRail }

func (failingSubmission) Submit(context.Context, []rail.Debit) ([]rail.Outcome, error) {
	return nil, errors.New("connection reset by peer")
}

// A started batch whose row the rail never took (its step failing until the deadline) and whose
// customer revokes after the deadline, before the sweep: the row expires at the deadline, as a
// debit past its deadline does, rather than failing customerNotActive after it.
func TestARowRevokedPastItsDeadlineBeforeItsDebitWasSubmittedExpires(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		b := apptest.SubmitOneDebit(t, f.service, f.site)
		failing := f.replica(failingSubmission{blockingRail{inner: f.rail}})
		if _, _, err := failing.ExecuteBatch(ctx, b.ID); err == nil {
			t.Fatal("the execution whose submission fails succeeded")
		}
		f.clock.Advance(billing.RowDeadline + time.Minute)
		if _, err := f.service.RevokeByPartner(ctx, f.site, "C1"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.service.ExpireOverdue(ctx); err != nil {
			t.Fatal(err)
		}
		rows := f.rows(t, "B1")
		if got := states(rows); !slices.Equal(got, []string{"failedexpired"}) {
			t.Errorf("row %v, want failed expired", got)
		}
		if len(rows) == 1 && !rows[0].OutcomeAt.Equal(b.Deadline) {
			t.Errorf("row's outcome at %s, want its deadline %s", rows[0].OutcomeAt, b.Deadline)
		}
	})
}
