package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail/becs"
)

// The sandbox's deadline simulator refuses a batch of a site on the BECS rail (a sandbox server
// may have one, to try the rail), changing nothing: the rows it would fail expired have debits
// queued for a cut or in a file the bank may still collect, and money must never move for a row
// told expired. Before the cut, the debit is still cut into the next file; after it, the file can
// still be lodged and the row succeeds.
func TestTheDeadlineSimulatorRefusesABECSBatch(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		for _, cutFirst := range []bool{false, true} {
			ctx := context.Background()
			srv, r, site, b := becsBatchOfOneRow(t, engine)
			service := srv.Service
			execute := func() {
				t.Helper()
				if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
					t.Fatal(err)
				}
			}
			execute() // the debit is queued for the next cut
			cut := func() {
				t.Helper()
				files, err := r.Cut(ctx, becs.Calendar{})
				if err != nil || len(files) != 1 || files[0].Rows != 1 || files[0].Total != 100 {
					t.Fatalf("Cut = %+v, %v; want the row's debit in one file", files, err)
				}
				if _, err := r.Lodge(ctx, files[0].ID); err != nil {
					t.Fatal(err)
				}
			}
			if cutFirst {
				cut()
			}

			res := srv.Do(t, apptest.Request{Method: http.MethodPost, Path: "/billing/sites/" + site.ID + "/sandbox/batches/B1/deadline",
				Token: srv.Token(t, srv.Partner)})
			if res.Status != http.StatusConflict || !strings.Contains(string(res.Body), string(billing.CodeBatchNotOnSandboxRail)) {
				t.Fatalf("the deadline simulator on a BECS batch (cut first: %v): %d %s; want 409 %s", cutFirst, res.Status, res.Body, billing.CodeBatchNotOnSandboxRail)
			}
			if !cutFirst {
				cut()
			}
			execute()
			if _, _, rows, err := service.Batch(ctx, site, "B1", ""); err != nil || rows[0].State != billing.RowSucceeded {
				t.Errorf("after the refusal and the file lodged (cut first: %v): rows %+v, %v; want R1 succeeded", cutFirst, rows, err)
			}
		}
	})
}
