package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/sandbox"
	"github.com/pyng/receivables/storage"
)

// A customer's revocation withdraws at once the BECS debits the rail holds queued, before the
// cut-off: no cut sends them, even one before the batch's next step, and that step fails their rows
// customerNotActive, even when the customer linked again before it (the debit is not collected
// under the new agreement: a partner who saw the row's customer revoke may have submitted it
// again).
// A debit of a batch not started yet at the revocation is withdrawn too: the batch was submitted
// under the agreement the customer ended, and its first step, after the customer linked again,
// would otherwise collect it under the new one, beside the row the partner submitted again. (It
// was: the revocation withdrew the rows of started batches only.)
// A debit already in a file that was lodged before the revocation is collected: the step records
// its row succeeded. (The step used to fail the row in both cases without asking the rail, and left
// the queued debit to be lodged: the customer was debited while the partner was told it failed.)
func TestARevocationWithdrawsTheBECSDebitsNotSentAndKeepsThoseSent(t *testing.T) {
	for _, tc := range []struct {
		name         string
		notStarted   bool // the batch's first step comes after the revocation
		lodgedBefore bool // the debit is cut and its file lodged before the revocation
		relinked     bool // the customer links again after the revocation, before the batch's next step
		want         string
	}{
		{"queued for the cut-off", false, false, false, "failed customerNotActive"},
		{"queued, the customer linked again", false, false, true, "failed customerNotActive"},
		{"of a batch not started", true, false, false, "failed customerNotActive"},
		{"of a batch not started, the customer linked again", true, false, true, "failed customerNotActive"},
		{"in a file lodged", false, true, false, "succeeded "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
				ctx := context.Background()
				// The first step queued the debit on the rail; the row stays pending.
				prepare := queuedDebit
				if tc.notStarted {
					prepare = acceptedDebit
				}
				clock, service, _, r, site, b := prepare(t, engine)
				var lodged []becs.File
				if tc.lodgedBefore {
					lodged = cutAndLodge(t, r)
				}
				if _, err := service.RevokeByPartner(ctx, site, "C1"); err != nil {
					t.Fatal(err)
				}
				// A cut-off right after the revocation, before the batch's next step, sends nothing.
				files, err := r.Cut(ctx, becs.Calendar{})
				if err != nil {
					t.Fatal(err)
				}
				if len(files) > 0 {
					t.Errorf("the cut after the revocation put the debit in file %s (%d debits, %d cents)", files[0].ID, files[0].Rows, files[0].Total)
				}
				if tc.relinked {
					signUpWith(t, service, site, "C1", "jane@example.com")
				}
				clock.Advance(time.Minute)
				if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
					t.Fatal(err)
				}
				if files, err := r.Cut(ctx, becs.Calendar{}); err != nil || len(files) > 0 {
					t.Errorf("the cut after the batch's next step = %+v, %v; want no file", files, err)
				}
				_, _, rows, err := service.Batch(ctx, site, "B1", "")
				if err != nil {
					t.Fatal(err)
				}
				if got := string(rows[0].State) + " " + string(rows[0].FailureReason); got != tc.want {
					t.Errorf("row after the revocation = %q, want %q", got, tc.want)
				}
				if tc.lodgedBefore && len(lodged) != 1 {
					t.Errorf("lodged before the revocation: %+v, want one file", lodged)
				}
			})
		})
	}
}

// cutAndLodge cuts the rail's queued debits and lodges the files.
func cutAndLodge(t *testing.T, r *becs.Rail) []becs.File {
	t.Helper()
	ctx := context.Background()
	files, err := r.Cut(ctx, becs.Calendar{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, err := r.Lodge(ctx, f.ID); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// hookRail wraps a rail: after runs once the rail took each Submit's debits, and failAfter says
// whether the Submit then fails (a crash between the rail call and the recording).
type hookRail struct {
	rail.Rail
	after     func(call int)
	failAfter func(call int) bool
	calls     int
}

func (h *hookRail) Submit(ctx context.Context, debits []rail.Debit) ([]rail.Outcome, error) {
	h.calls++
	out, err := h.Rail.Submit(ctx, debits)
	if err == nil && h.after != nil {
		h.after(h.calls)
	}
	if err == nil && h.failAfter != nil && h.failAfter(h.calls) {
		return nil, errors.New("crash after the rail took the debits")
	}
	return out, err
}

// serviceWithHookedSandbox builds the server's service over a fresh database with its sandbox
// rail wrapped in a hookRail, submitting chunk rows a step.
func serviceWithHookedSandbox(t *testing.T, engine string, clock billing.Clock, chunk int) (*billing.Service, *hookRail, storage.Database) {
	t.Helper()
	ctx := context.Background()
	db := dbtest.Open(t, engine)
	opened, err := app.OpenRails(ctx, db, clock, 0)
	if err != nil {
		t.Fatal(err)
	}
	rails := opened.ByName()
	h := &hookRail{Rail: rails[rail.Sandbox]}
	rails[rail.Sandbox] = h
	service := billing.NewService(billing.Config{Store: db, Batches: db, Events: db, Rails: rails, Clock: clock,
		InvitationTTL: billing.DefaultInvitationTTL, Sandbox: true, ExecuteChunk: chunk, DebitUserID: app.BECSUserIDs(opened.BECS)})
	return service, h, db
}

// The rail took a row's debit, the step crashed before recording it, and the customer revoked
// before the job ran again: the retry records the rail's outcome of the debit rather than failing
// the row customerNotActive (a partner told it failed would debit the customer again).
func TestADebitTheRailTookBeforeACrashAndARevocationKeepsItsOutcome(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		service, h, db := serviceWithHookedSandbox(t, engine, billing.SystemClock{}, 0)
		site := apptest.NewSite(t, service, "Acme")
		b := apptest.SubmitOneDebit(t, service, site)
		h.failAfter = func(call int) bool { return call == 1 }
		if _, _, err := service.ExecuteBatch(ctx, b.ID); err == nil {
			t.Fatal("the first step did not fail")
		}
		if _, err := service.RevokeByPartner(ctx, site, "C1"); err != nil {
			t.Fatal(err)
		}
		// The job runs again.
		if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		row, entries := rowAndLedger(t, service, db, site, 0)
		if len(entries) == 1 && row.State == billing.RowFailed {
			t.Errorf("row %s is failed %s, yet the rail's ledger holds its debit of %d (submitted %s)", row.Reference,
				row.FailureReason, entries[0].Amount, entries[0].SubmittedAt)
		}
	})
}

// A batch of two rows for one customer, executed a row a chunk; the customer revokes (committed)
// after the first chunk was sent and before the second is: the second row's debit is not sent.
// (The step used to read every pending row's link once, before its first chunk. A revocation
// between a chunk's check and its call to the rail, a moment, is after the debit was sent.)
func TestARevocationDuringAnExecutionStopsItsLaterDebits(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		service, h, db := serviceWithHookedSandbox(t, engine, billing.SystemClock{}, 1)
		site := apptest.NewSite(t, service, "Acme")
		apptest.LinkedCustomer(t, service, site, "C1")
		apptest.SubmitBatch(t, service, site, "B1",
			billing.RowRequest{Reference: "R1", CustomerReference: "C1", Amount: 100},
			billing.RowRequest{Reference: "R2", CustomerReference: "C1", Amount: 200})
		b, err := db.GetBatch(ctx, site.ID, "B1")
		if err != nil {
			t.Fatal(err)
		}
		var revokedAt time.Time
		h.after = func(call int) {
			if call == 1 {
				if _, err := service.RevokeByPartner(ctx, site, "C1"); err != nil {
					t.Error(err)
				}
				revokedAt = time.Now()
			}
		}
		if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		row, entries := rowAndLedger(t, service, db, site, 1)
		if len(entries) == 1 {
			t.Errorf("row R2's debit (%d) was sent to the rail after its customer's revocation had committed (at %s); the row is now %s %s",
				entries[0].Amount, revokedAt.Format(time.RFC3339Nano), row.State, row.FailureReason)
		}
	})
}

// rowAndLedger reads row i of batch B1 and the sandbox ledger's entries of its debit.
func rowAndLedger(t *testing.T, service *billing.Service, db storage.Database, site billing.Site, i int) (billing.Row, []sandbox.Entry) {
	t.Helper()
	ctx := context.Background()
	_, _, rows, err := service.Batch(ctx, site, "B1", "")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := apptest.SandboxLedger(t, db).Entries(ctx, []string{rows[i].ID})
	if err != nil {
		t.Fatal(err)
	}
	return rows[i], entries
}
