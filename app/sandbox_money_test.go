package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/rail/sandbox"
	"github.com/pyng/receivables/storage"
)

// beforeRail runs before(call) before passing each Submit to the sandbox rail it wraps.
type beforeRail struct {
	*sandbox.Rail
	before func(call int)
	calls  int
}

func (b *beforeRail) Submit(ctx context.Context, debits []rail.Debit) ([]rail.Outcome, error) {
	b.calls++
	if b.before != nil {
		b.before(b.calls)
	}
	return b.Rail.Submit(ctx, debits)
}

// sandboxDebit is a service whose sandbox rail is a beforeRail, with a site and a batch of one
// debit of its linked customer C1, accepted, not executed.
type sandboxDebit struct {
	service *billing.Service
	rail    *beforeRail
	db      storage.Database
	site    billing.Site
	batch   billing.Batch
}

// oneSandboxDebit is a sandboxDebit, its ledger reached through conn(the database's Conn) when
// conn is not nil.
func oneSandboxDebit(t *testing.T, engine string, clock billing.Clock, delay time.Duration, conn func(storage.Conn) storage.Conn) sandboxDebit {
	t.Helper()
	ctx := context.Background()
	db := dbtest.Open(t, engine)
	opened, err := app.OpenRails(ctx, db, clock, delay)
	if err != nil {
		t.Fatal(err)
	}
	rails := opened.ByName()
	h := &beforeRail{Rail: opened.Sandbox}
	if conn != nil {
		ledger, err := sandbox.OpenLedger(ctx, conn(db.Conn()))
		if err != nil {
			t.Fatal(err)
		}
		h.Rail = &sandbox.Rail{Ledger: ledger, Clock: clock, SettlementDelay: delay}
	}
	rails[rail.Sandbox] = h
	service := billing.NewService(billing.Config{Store: db, Batches: db, Events: db, Rails: rails, Clock: clock,
		InvitationTTL: billing.DefaultInvitationTTL, Sandbox: true, DebitUserID: app.BECSUserIDs(opened.BECS)})
	site := apptest.NewSite(t, service, "Acme")
	return sandboxDebit{service: service, rail: h, db: db, site: site, batch: apptest.SubmitOneDebit(t, service, site)}
}

// row is the debit's row as it stands, and the sandbox ledger's entries of it.
func (d sandboxDebit) row(t *testing.T) (billing.Row, []sandbox.Entry) {
	t.Helper()
	return rowAndLedger(t, d.service, d.db, d.site, 0)
}

// Two steps of one batch at once (River's rescuer), the customer revoking between the first
// step's read of the pending rows and its call to the rail: the second step fails the row
// customerNotActive, and the sandbox, which withdrew its debit, takes no submission of it
// afterwards. Taken, the row would be told failed while debited, and read retryable once the
// customer linked again: resubmitted, a second debit.
func TestARowFailedForARevocationIsNotDebitedByAStepThatReadItBefore(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := oneSandboxDebit(t, engine, billing.SystemClock{}, 0, nil)
		service, h, site, b := f.service, f.rail, f.site, f.batch
		h.before = func(call int) {
			if call != 1 {
				return
			}
			if _, err := service.RevokeByPartner(ctx, site, "C1"); err != nil {
				t.Error(err)
			}
			// The rescued copy of the job runs a whole step meanwhile.
			if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
				t.Error(err)
			}
		}
		if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		row, entries := f.row(t)
		wantWithdrawn(t, row, entries)
	})
}

// wantWithdrawn fails the test unless the row failed customerNotActive and the sandbox's ledger
// holds its debit withdrawn: nothing debited.
func wantWithdrawn(t *testing.T, row billing.Row, entries []sandbox.Entry) {
	t.Helper()
	if row.State != billing.RowFailed || row.FailureReason != billing.FailureCustomerNotActive {
		t.Errorf("row %s %s; want failed customerNotActive", row.State, row.FailureReason)
	}
	if len(entries) != 1 || entries[0].Amount != 0 || entries[0].WithdrawnAt.IsZero() {
		t.Errorf("ledger %+v; want the row's debit withdrawn, nothing debited", entries)
	}
}

// A batch not started when its customer revokes, the customer linking again before its first
// step: the revocation withdraws its rows, on the sandbox rail as on the BECS rail, and they fail
// customerNotActive rather than be collected under the new agreement.
func TestASandboxBatchOfAnEndedAgreementIsNotCollectedUnderTheNext(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := oneSandboxDebit(t, engine, billing.SystemClock{}, 0, nil)
		service, site, b := f.service, f.site, f.batch
		if _, err := service.RevokeByPartner(ctx, site, "C1"); err != nil {
			t.Fatal(err)
		}
		apptest.LinkedCustomer(t, service, site, "C1")
		if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		row, entries := f.row(t)
		wantWithdrawn(t, row, entries)
	})
}

// The deadline simulated while the sandbox's debit of a row settles (taken, settling in 3s): the
// debit settles now and the row is told its outcome, as at the real deadline, not expired while
// the ledger settles it succeeded.
func TestASimulatedDeadlineTellsATakenDebitItsOutcome(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		clock := clocktest.New()
		f := oneSandboxDebit(t, engine, clock, 3*time.Second, nil)
		service, site, b := f.service, f.site, f.batch
		if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := service.SimulateDeadline(ctx, site, "B1"); err != nil {
			t.Fatal(err)
		}
		row, entries := f.row(t)
		if row.State != billing.RowSucceeded || len(entries) != 1 || entries[0].SettlesAt.After(clock.Now()) {
			t.Errorf("row %s %s, ledger %+v; want the debit settled now and the row succeeded", row.State, row.FailureReason, entries)
		}
	})
}

// stallConn runs hook before the sandbox ledger's INSERT.
type stallConn struct {
	storage.Conn
	hook func()
}

func (c stallConn) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	if strings.HasPrefix(q, "INSERT INTO sandbox_ledger") && c.hook != nil {
		c.hook()
	}
	return c.Conn.Exec(ctx, q, args...)
}

// A step of the batch that read its rows pending, and the customer linked, submits a debit of a
// row the deadline's simulation has expired at the sandbox but not yet in the batch: the sandbox
// does not take it, and tells the step it expired, as the simulation then tells the row.
func TestAStepRacingASimulatedDeadlineIsToldItsRowExpired(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := oneSandboxDebit(t, engine, billing.SystemClock{}, 0, nil)
		service, h, site, b := f.service, f.rail, f.site, f.batch
		_, _, rows, err := service.Batch(ctx, site, b.Reference, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.SimulateDeadline(ctx, []string{rows[0].ID}); err != nil { // the simulation's call to the rail
			t.Fatal(err)
		}
		if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil { // the step, before the batch expires
			t.Fatal(err)
		}
		row, entries := f.row(t)
		if row.State != billing.RowFailed || row.FailureReason != billing.FailureExpired || len(entries) != 1 || entries[0].Amount != 0 {
			t.Errorf("row %s %s, ledger %+v; want failed expired, nothing debited", row.State, row.FailureReason, entries)
		}
	})
}

// The deadline sweep asks the sandbox what it took of a row before expiring it. A step that read
// the clock just before the deadline could record its debit after that question, had it stalled
// meanwhile: the row told expired, the ledger holding its debit. The sandbox takes no debit that
// settles within sandbox.DeadlineMargin of its deadline, so that a step would have to stall longer
// than that; one that stalls up to it records its debit before the deadline, and its row is told
// its outcome.
func TestTheSandboxTakesNoDebitTheDeadlineSweepCouldExpireFirst(t *testing.T) {
	const delay = 3 * time.Second
	for _, tc := range []struct {
		name        string
		before      time.Duration // how long before the deadline the step reads the clock
		stall       time.Duration // how long it then stalls before its record
		wantDebited bool
		wantState   billing.RowState
		wantFailure billing.FailureReason
	}{
		{"a debit that would settle within the margin is not taken", 5 * time.Second, 6 * time.Second, false, billing.RowFailed, billing.FailureExpired},
		{"a step stalled for the margin records its debit in time", sandbox.DeadlineMargin + delay + time.Second, sandbox.DeadlineMargin, true, billing.RowSucceeded, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
				ctx := context.Background()
				clock := clocktest.New()
				var hook func()
				f := oneSandboxDebit(t, engine, clock, delay, func(c storage.Conn) storage.Conn {
					return stallConn{Conn: c, hook: func() {
						if h := hook; h != nil {
							hook = nil
							h()
						}
					}}
				})
				service, b := f.service, f.batch
				clock.Advance(billing.RowDeadline - tc.before)
				sweep := func() {
					if _, err := service.ExpireOverdue(ctx); err != nil {
						t.Error(err)
					}
				}
				hook = func() { clock.Advance(tc.stall); sweep() }
				if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
					t.Fatal(err)
				}
				if now := clock.Now(); now.Before(b.Deadline) {
					clock.Advance(b.Deadline.Sub(now))
				}
				sweep()
				row, entries := f.row(t)
				debited := len(entries) == 1 && entries[0].WithdrawnAt.IsZero()
				if row.State != tc.wantState || row.FailureReason != tc.wantFailure || debited != tc.wantDebited {
					t.Errorf("row %s %s, ledger %+v; want %s %s, debited %t", row.State, row.FailureReason, entries,
						tc.wantState, tc.wantFailure, tc.wantDebited)
				}
			})
		})
	}
}

// Giving a sandbox site a BECS user ID (set-rail) stops the debits of the customers whose
// agreement does not name it on the rails that need it named, not on the sandbox's, which debits
// whoever is linked: a sandbox batch waiting for its step is collected as before.
func TestAUserIDGivenLeavesTheSandboxsDebitsOfLinkedCustomers(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := oneSandboxDebit(t, engine, billing.SystemClock{}, 0, nil)
		service, site, b := f.service, f.site, f.batch
		if n, err := service.StopDebitsNotAuthorised(ctx, site, "654321"); err != nil || n != 1 {
			t.Fatalf("StopDebitsNotAuthorised = %d, %v; want C1 counted", n, err)
		}
		if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		row, entries := f.row(t)
		if row.State != billing.RowSucceeded || len(entries) != 1 || !entries[0].WithdrawnAt.IsZero() {
			t.Errorf("row %s %s, ledger %+v; want the debit taken and the row succeeded", row.State, row.FailureReason, entries)
		}
	})
}
