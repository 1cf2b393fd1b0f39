package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/jobs"
	"github.com/pyng/receivables/storage"
)

// TestReplicasWriteCustomerExpiredOnce runs three replicas' services and job clients on one
// PostgreSQL database, each with its own pool, the expiry sweep every 20ms; once more
// invitations than one sweep step takes have expired, every way of writing customer.expired
// runs at once: the periodic sweeps of the three job clients, each replica's sweep called
// directly, and new invitations of some of the same customers (which expire the old one). Each
// expired invitation has exactly one customer.expired event.
func TestReplicasWriteCustomerExpiredOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t, storage.EnginePostgres)
	clock := clocktest.New()
	const replicas, invitations, reinvited = 3, 700, 60
	services := make([]*billing.Service, replicas)
	cfg := jobs.DefaultConfig
	cfg.PollInterval, cfg.SweepInterval, cfg.RescueAfter = 20*time.Millisecond, 20*time.Millisecond, 10*time.Second
	for i := range services {
		db := dbtest.OpenURL(t, url)
		var err error
		if services[i], _, err = app.NewService(ctx, db, clock, app.ServiceSettings{Sandbox: true}); err != nil {
			t.Fatal(err)
		}
		startJobs(t, db, services[i], cfg)
	}
	site := apptest.NewSite(t, services[0], "Expiring")
	ref := func(i int) string { return fmt.Sprintf("C%04d", i) }
	for i := range invitations {
		if _, err := services[i%replicas].Invite(ctx, site, ref(i)); err != nil {
			t.Fatal(err)
		}
	}

	clock.Advance(billing.DefaultInvitationTTL + time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, replicas+reinvited)
	for _, s := range services {
		wg.Go(func() {
			if _, err := s.ExpireInvitations(ctx); err != nil {
				errs <- err
			}
		})
	}
	for i := range reinvited {
		wg.Go(func() {
			if _, err := services[i%replicas].Invite(ctx, site, ref(i*(invitations/reinvited))); err != nil {
				errs <- fmt.Errorf("invite again %s: %w", ref(i), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// What a direct sweep left to the others (it stops at a short step) the periodic ones and
	// this loop's finish; and on PostgreSQL the events list shows an event once every older transaction has ended.
	expired := map[string]int{}
	count := func() {
		clear(expired)
		var after string
		for {
			events, next, err := services[1].Events(ctx, site, billing.EventFilter{After: after, Type: billing.EventCustomerExpired, Limit: billing.MaxPageSize})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range events {
				var body struct{ Data billing.LinkView }
				if err := json.Unmarshal(e.Body, &body); err != nil {
					t.Fatal(err)
				}
				expired[body.Data.CustomerReference]++
			}
			if next == "" {
				return
			}
			after = next
		}
	}
	waitUntil(t, 60*time.Second, "every invitation's customer.expired listed", func() bool {
		if _, err := services[2].ExpireInvitations(ctx); err != nil {
			t.Fatal(err)
		}
		count()
		return len(expired) == invitations
	})
	// The periodic sweeps go on meanwhile; give them rounds enough to write any duplicate.
	time.Sleep(300 * time.Millisecond)
	count()
	for i := range invitations {
		if n := expired[ref(i)]; n != 1 {
			t.Errorf("%s has %d customer.expired events, want exactly 1", ref(i), n)
		}
	}
	if len(expired) != invitations {
		t.Errorf("customer.expired for %d customers, want the %d invited", len(expired), invitations)
	}
}
