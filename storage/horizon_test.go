package storage_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/storage"
)

// onOwnDatabase is a service, and a site of it, on a PostgreSQL database of the test's own (at
// url): the other tests of this binary share its database, whose transactions would hold this
// one's events back.
func onOwnDatabase(t *testing.T) (url string, db storage.Database, service *billing.Service, site billing.Site) {
	t.Helper()
	url = dbtest.PostgresDatabaseURL(t)
	db = dbtest.OpenURL(t, url, storage.WithKeyring(dbtest.Keyring()))
	service, _ = apptest.ServiceOver(t, db, apptest.ServiceOptions{})
	return url, db, service, apptest.NewSite(t, service, "Acme")
}

// On PostgreSQL the events list shows the events of transactions below the events horizon (see
// migration 00014), so that a partner paging with after never passes an event that commits late.
// A write transaction open in another database of the cluster writes no event here and holds
// nothing back; one open in this database still does, until it ends.
func TestOnlyThisDatabasesOpenTransactionsHoldEventsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL, _, service, site := onOwnDatabase(t)
	openWrite := func(conn *pgx.Conn) pgx.Tx {
		t.Helper()
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tx.Rollback(ctx) })
		if _, err := tx.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil { // an xid, as a write takes
			t.Fatal(err)
		}
		return tx
	}

	// The transaction of the other database stays open throughout, so it would hold the events
	// back for good (invitationListedSoon).
	openWrite(connect(t, dbtest.PostgresDatabaseURL(t)))
	if _, err := service.Invite(ctx, site, "ELSEWHERE"); err != nil {
		t.Fatal(err)
	}
	if !invitationListedSoon(t, service, site, "ELSEWHERE") {
		t.Errorf("a transaction open in another database holds the events list back")
	}

	here := openWrite(connect(t, dbURL))
	if _, err := service.Invite(ctx, site, "HERE"); err != nil {
		t.Fatal(err)
	}
	if invitationListed(t, service, site, "HERE") {
		t.Errorf("an event is listed while a transaction of this database that began before it is open")
	}
	if err := here.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !invitationListedSoon(t, service, site, "HERE") {
		t.Errorf("the event is not listed once the transaction that held it back ended")
	}
}

func connect(t *testing.T, rawURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// invitationListed reports whether the site's events list shows the invitation of ref.
func invitationListed(t *testing.T, service *billing.Service, site billing.Site, ref string) bool {
	t.Helper()
	events, _, err := service.Events(context.Background(), site, billing.EventFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Type == billing.EventCustomerInvited && strings.Contains(string(e.Body), `"customerReference":"`+ref+`"`) {
			return true
		}
	}
	return false
}

// invitationListedSoon reports whether the site's events list shows the invitation of ref within
// 10 s. A transaction of the database's own may hold the list back a moment on PostgreSQL
// (autovacuum's analyze of its new tables takes an xid): the event is awaited, not read once.
func invitationListedSoon(t *testing.T, service *billing.Service, site billing.Site, ref string) bool {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if invitationListed(t, service, site, ref) {
			return true
		}
	}
	return false
}

// inviteListed invites ref at the site and waits until the events list shows the invitation
// (invitationListedSoon): a fan-out before would find no event to give.
func inviteListed(t *testing.T, service *billing.Service, site billing.Site, ref string) {
	t.Helper()
	if _, err := service.Invite(context.Background(), site, ref); err != nil {
		t.Fatal(err)
	}
	if !invitationListedSoon(t, service, site, ref) {
		t.Fatalf("the invitation of %s is not listed after 10 s", ref)
	}
}
