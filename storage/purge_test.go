package storage_test

import (
	"context"
	"testing"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/storage"
)

// The purge of events removes those written 30 days ago or more, and keeps the newer ones.
func TestPurgeEventsRemovesEventsPastTheirRetention(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		clock := clocktest.New()
		service, db := apptest.NewService(t, engine, apptest.ServiceOptions{Clock: clock})
		site := apptest.NewSite(t, service, "Acme")
		apptest.LinkedCustomer(t, service, site, "C1")
		clock.Advance(billing.EventRetention)
		apptest.LinkedCustomer(t, service, site, "C2")
		count := func() (n int) {
			if err := db.Conn().Query(ctx, `SELECT count(*) FROM events`, nil, func(row storage.Scanner) error { return row.Scan(&n) }); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := count()
		n, err := service.PurgeEvents(ctx)
		if err != nil || n == 0 || count() != before-n || count() == 0 {
			t.Fatalf("PurgeEvents = %d, %v; events %d before, %d after", n, err, before, count())
		}
	})
}
