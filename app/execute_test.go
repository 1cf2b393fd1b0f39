package app_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail/sandbox"
)

// TestConcurrentExecutionsOfABatchDebitEachRowOnce runs one batch's execution in several goroutines
// at once, as two replicas do when River's rescuer hands a slow but living job to another worker:
// the batch completes with the right outcomes and the rail's ledger holds one debit per row. (On
// SQLite its 300 rows execute in two steps, billing.Config.ExecuteChunk.)
func TestConcurrentExecutionsOfABatchDebitEachRowOnce(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		service, db := apptest.NewService(t, engine)
		ledger := apptest.SandboxLedger(t, db)

		site := apptest.NewSite(t, service, "Acme")
		for _, c := range []string{"C1", "C2", "C3"} {
			apptest.LinkedCustomer(t, service, site, c)
		}
		const rows = 300
		var batchRows []billing.RowRequest
		for i := range rows {
			customer := []string{"C1", "C2", "C3", "NOBODY"}[i%4]
			batchRows = append(batchRows, billing.RowRequest{Reference: fmt.Sprintf("R%d", i), CustomerReference: customer, Amount: int64(100 + i)})
		}
		batch := apptest.SubmitBatch(t, service, site, "B1", batchRows...)

		const executors = 8
		var wg sync.WaitGroup
		errs := make([]error, executors)
		for e := range executors {
			wg.Go(func() {
				for {
					done, _, err := service.ExecuteBatch(ctx, batch.ID)
					if err != nil || done {
						errs[e] = err
						return
					}
				}
			})
		}
		wg.Wait()
		for e, err := range errs {
			if err != nil {
				t.Fatalf("executor %d: %v", e, err)
			}
		}

		_, _, stored, err := service.Batch(ctx, site, "B1", "")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for i, r := range stored {
			want, reason := billing.RowSucceeded, billing.FailureReason(sandbox.Outcome(r.Amount))
			if i%4 == 3 {
				reason = billing.FailureCustomerNotActive
			}
			if reason != "" {
				want = billing.RowFailed
			}
			if r.State != want || r.FailureReason != reason {
				t.Errorf("row %s is %s %q, want %s %q", r.Reference, r.State, r.FailureReason, want, reason)
			}
			keys = append(keys, r.ID)
		}
		entries, err := ledger.Entries(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		perKey := map[string]int{}
		for _, e := range entries {
			if !e.WithdrawnAt.IsZero() {
				continue // an unlinked customer's row, withdrawn: nothing debited
			}
			perKey[e.Key]++
			if perKey[e.Key] > 1 {
				t.Errorf("row %s debited %d times", e.Key, perKey[e.Key])
			}
		}
		if want := rows - rows/4; len(perKey) != want {
			t.Errorf("%d rows debited, want the %d rows of linked customers", len(perKey), want)
		}
	})
}
