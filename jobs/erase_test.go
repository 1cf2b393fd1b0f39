package jobs_test

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/jobs"
	"github.com/pyng/receivables/storage"
)

const retention = 90 * 24 * time.Hour

// revokedCustomer gives a fresh database of engine a customer who signed up, was debited once
// through the sandbox rail and revoked; it returns the database, the service, the link and the row
// debited.
func revokedCustomer(t *testing.T, engine string, clock *clocktest.Clock) (storage.Database, *billing.Service, billing.Link, string) {
	t.Helper()
	ctx := context.Background()
	service, db := apptest.NewService(t, engine, apptest.ServiceOptions{Clock: clock})
	site := apptest.NewSite(t, service, "Acme")
	b := apptest.SubmitOneDebit(t, service, site)
	if done, _, err := service.ExecuteBatch(ctx, b.ID); err != nil || !done {
		t.Fatalf("ExecuteBatch = %v, %v", done, err)
	}
	_, _, rows, err := service.Batch(ctx, site, "B1", "")
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	l, err := service.RevokeByPartner(ctx, site, "C1")
	if err != nil {
		t.Fatal(err)
	}
	return db, service, l, rows[0].ID
}

// erased reports whether the link, and the ledger's entry of the row, hold no bank details.
func erased(t *testing.T, db storage.Database, linkID, rowID string) (link, entry bool) {
	t.Helper()
	ctx := context.Background()
	l, err := db.GetLink(ctx, linkID)
	if err != nil {
		t.Fatal(err)
	}
	es, err := apptest.SandboxLedger(t, db).Entries(ctx, []string{rowID})
	if err != nil || len(es) != 1 {
		t.Fatalf("the ledger's entry of %s: %+v, %v", rowID, es, err)
	}
	return l.Customer == billing.Customer{}, es[0].BSB == "" && es[0].AccountNumber == ""
}

// TestEraseBankDetailsAfterTheRetention runs the job at times around the retention: the debit was
// submitted an hour before the link was revoked.
func TestEraseBankDetailsAfterTheRetention(t *testing.T) {
	cases := []struct {
		rule                 string
		after                time.Duration // since the revocation
		wantLink, wantLedger bool
		wantLog              string // the job's log line, "" for none
	}{
		{"a millisecond before the retention has passed since the debit nothing is erased", retention - time.Hour - time.Millisecond, false, false, ""},
		{"once it has, the ledger's copy of the account is erased", retention - time.Hour, false, true,
			`msg="bank details erased after their retention" links=0 railDebits=1 railFiles=0 railReturnedItems=0 retention=`},
		{"a millisecond before the retention has passed since the revocation the link keeps its details", retention - time.Millisecond, false, true,
			`msg="bank details erased after their retention" links=0 railDebits=1 railFiles=0 railReturnedItems=0 retention=`},
		{"once it has, the link's details are erased", retention, true, true,
			`msg="bank details erased after their retention" links=1 railDebits=1 railFiles=0 railReturnedItems=0 retention=`},
	}
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		for _, tc := range cases {
			t.Run(tc.rule, func(t *testing.T) {
				t.Parallel()
				clock := clocktest.New()
				db, service, l, rowID := revokedCustomer(t, engine, clock)
				clock.Set(l.RevokedAt.Add(tc.after))
				var log strings.Builder
				w := jobs.EraseBankDetailsWorker(service, retention, slog.New(slog.NewTextHandler(&log, nil)))
				if err := w.Work(context.Background(), &river.Job[jobs.EraseBankDetails]{}); err != nil {
					t.Fatal(err)
				}
				if got := log.String(); (tc.wantLog == "") != (got == "") || !strings.Contains(got, tc.wantLog) {
					t.Errorf("the job logged %q; want %q", got, tc.wantLog)
				}
				if link, ledger := erased(t, db, l.ID, rowID); link != tc.wantLink || ledger != tc.wantLedger {
					t.Fatalf("erased: the link's details %v, the ledger's copy %v; want %v and %v", link, ledger, tc.wantLink, tc.wantLedger)
				}
				after, err := db.GetLink(context.Background(), l.ID)
				if err != nil {
					t.Fatal(err)
				}
				after.Customer = l.Customer
				if !reflect.DeepEqual(after, l) {
					t.Fatalf("the link changed beyond its details:\n got %+v\nwant %+v", after, l)
				}
			})
		}
	})
}

// TestEraseBankDetailsRunsPeriodicallyOnEveryReplicaWithoutHarm starts two River clients of the
// server's configuration on one database, as two replicas do: the periodic job runs on start and
// erases what is due; the workers of both, run again at once, find nothing left and fail nothing.
func TestEraseBankDetailsRunsPeriodicallyOnEveryReplicaWithoutHarm(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		clock := clocktest.New()
		db, service, l, rowID := revokedCustomer(t, engine, clock)
		clock.Set(l.RevokedAt.Add(retention))
		cfg := jobs.DefaultConfig
		cfg.PollInterval = 50 * time.Millisecond
		cfg.BankDetailsRetention = retention
		for range 2 {
			client, err := db.NewJobClient(jobs.NewConfig(service, slog.New(slog.DiscardHandler), cfg))
			if err != nil {
				t.Fatal(err)
			}
			if err := client.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = client.Stop(context.Background()) })
		}
		deadline := time.Now().Add(30 * time.Second)
		for link, ledger := erased(t, db, l.ID, rowID); !link || !ledger; link, ledger = erased(t, db, l.ID, rowID) {
			if time.Now().After(deadline) {
				t.Fatal("the bank details were not erased within 30s of the replicas' start")
			}
			time.Sleep(50 * time.Millisecond)
		}
		var wg sync.WaitGroup
		for range 2 {
			w := jobs.EraseBankDetailsWorker(service, retention, slog.New(slog.DiscardHandler))
			wg.Go(func() {
				if err := w.Work(ctx, &river.Job[jobs.EraseBankDetails]{}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	})
}

// The hourly erasure job also forgets the emails to customers counted a day ago or more: they
// count against no cap any more. Those of the last day still count.
func TestEraseBankDetailsForgetsTheEmailsSentADayAgo(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		clock := clocktest.New()
		service, _ := apptest.NewService(t, engine, apptest.ServiceOptions{Clock: clock})
		claim := func(id string, limit int) bool {
			t.Helper()
			ok, err := service.ClaimEmail(ctx, id, "site_1", "jane@example.com", limit)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		claim("1", 2)
		clock.Advance(time.Hour)
		claim("2", 2)
		clock.Advance(billing.EmailCapWindow - time.Hour)
		var log strings.Builder
		w := jobs.EraseBankDetailsWorker(service, retention, slog.New(slog.NewTextHandler(&log, nil)))
		if err := w.Work(ctx, &river.Job[jobs.EraseBankDetails]{}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log.String(), `msg="emails to customers forgotten a day after they were sent (the cap of emails an address)" emails=1`) {
			t.Errorf("the job logged %q", log.String())
		}
		// The second, an hour younger, still counts: one more fits under a cap of 2, not two.
		if !claim("3", 2) || claim("4", 2) {
			t.Error("after the job, the address's count is not the email of the last day")
		}
	})
}
