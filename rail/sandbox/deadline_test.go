package sandbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
)

// A batch whose debits the sandbox does not take (they would settle after their deadline) waits
// for the deadline, rather than asking again and again: such a debit had no answer, so its batch's
// step was called again every 50 ms until the deadline.
func TestABatchWhoseDebitsTheSandboxRefusesWaitsForTheirDeadline(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		clock := clocktest.New()
		service, _ := apptest.NewService(t, engine, apptest.ServiceOptions{Clock: clock, SettlementDelay: 25 * time.Hour})
		site := apptest.NewSite(t, service, "Acme")
		b := apptest.SubmitOneDebit(t, service, site)
		for i := range 3 {
			done, wait, err := service.ExecuteBatch(ctx, b.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !done && wait < time.Second {
				t.Errorf("step %d: ExecuteBatch = not done, wait %v: the job polls the batch every %v until its deadline", i, wait, wait)
			}
			clock.Advance(wait)
		}
	})
}
