package storage_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

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

// The emails counted against the cap of their address are kept a day: the purge removes those
// counted 24 hours ago or more, and keeps the newer ones. What is kept names no address: a keyed
// digest, the same for the address in any case.
func TestForgetSentEmailsRemovesThoseOlderThanADay(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		clock := clocktest.New()
		service, db := apptest.NewService(t, engine, apptest.ServiceOptions{Clock: clock})
		claim := func(id, address string) {
			t.Helper()
			if ok, err := service.ClaimEmail(ctx, id, "site_1", address, 10); err != nil || !ok {
				t.Fatalf("ClaimEmail(%s) = %v, %v", id, ok, err)
			}
		}
		claim("1", "jane@example.com")
		clock.Advance(time.Hour)
		claim("2", "Jane@Example.com")
		rows := func() (keys [][]byte) {
			t.Helper()
			if err := db.Conn().Query(ctx, `SELECT address_key FROM customer_emails_sent ORDER BY id`, nil, func(row storage.Scanner) error {
				var k []byte
				keys = append(keys, k)
				return row.Scan(&keys[len(keys)-1])
			}); err != nil {
				t.Fatal(err)
			}
			return keys
		}
		keys := rows()
		if len(keys) != 2 || len(keys[0]) != 32 || !bytes.Equal(keys[0], keys[1]) || bytes.Contains(bytes.ToLower(keys[0]), []byte("jane")) {
			t.Fatalf("the addresses kept: %q; want one 32-byte digest for both spellings, not the address", keys)
		}
		clock.Advance(billing.EmailCapWindow - time.Hour - time.Millisecond)
		if n, err := service.ForgetSentEmails(ctx); err != nil || n != 0 || len(rows()) != 2 {
			t.Fatalf("ForgetSentEmails a millisecond before the first is a day old = %d, %v; %d kept, want 0 removed, 2 kept", n, err, len(rows()))
		}
		clock.Advance(time.Millisecond)
		if n, err := service.ForgetSentEmails(ctx); err != nil || n != 1 || len(rows()) != 1 {
			t.Fatalf("ForgetSentEmails once the first is a day old = %d, %v; %d kept, want 1 removed, 1 kept", n, err, len(rows()))
		}
	})
}

// A purge deletes what is due a chunk at a time, each chunk a statement of its own, until none is
// left: a backlog is deleted whole (here 5 or more due, in chunks of 2), and what is not due is
// kept.
func TestPurgesDeleteEverythingDueInChunks(t *testing.T) {
	storage.SetPurgeChunks(t, 2)
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		clock := clocktest.New()
		service, db := apptest.NewService(t, engine, apptest.ServiceOptions{Clock: clock})
		site := apptest.NewSite(t, service, "Acme")
		apptest.LinkedCustomer(t, service, site, "C1")
		row := billing.RowRequest{Reference: "R1", CustomerReference: "C1", Amount: 100}
		claim := func(id string) {
			t.Helper()
			if ok, err := service.ClaimEmail(ctx, id, site.ID, id+"@example.com", 10); err != nil || !ok {
				t.Fatalf("ClaimEmail(%s) = %v, %v", id, ok, err)
			}
		}
		for i := range 5 {
			apptest.SubmitBatch(t, service, site, fmt.Sprintf("B%d", i), row)
			claim(fmt.Sprintf("c%d", i))
		}
		clock.Advance(billing.BatchRetention) // past the retention of each
		apptest.SubmitBatch(t, service, site, "LATER", row)
		claim("later")

		count := func(table string) (n int) {
			t.Helper()
			if err := db.Conn().Query(ctx, `SELECT count(*) FROM `+table, nil, func(row storage.Scanner) error { return row.Scan(&n) }); err != nil {
				t.Fatal(err)
			}
			return n
		}
		for _, p := range []struct {
			table string
			purge func(context.Context) (int, error)
		}{
			{"batches", service.PurgeBatches},
			{"events", service.PurgeEvents},
			{"customer_emails_sent", service.ForgetSentEmails},
		} {
			before := count(p.table)
			n, err := p.purge(ctx)
			if after := count(p.table); err != nil || n < 5 || n != before-1 || after != 1 {
				t.Errorf("the purge of %s = %d, %v; %d rows before, %d after; want all but the later one purged", p.table, n, err, before, after)
			}
		}
	})
}
