package storage_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/sqlite"
	"github.com/pyng/receivables/storage"
)

// README: "Events written while it is disabled are not sent to it". A fan-out of the endpoint's
// deliveries that read its position before the partner disabled and enabled it again must not
// write that older position over the one the enabling set: the events written while it was
// disabled would then be given deliveries. Here the fan-out reads the endpoint and the event,
// then waits to write while another transaction holds the endpoints' table; that transaction
// moves the endpoint's position as an enabling moves it, and commits.
func TestAFanOutDoesNotUndoTheEnablingOfItsEndpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL, db, service, site := onOwnDatabase(t)
	e := endpointWithAnEvent(t, service, site)

	holder, err := connect(t, dbURL).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	// SHARE lets the fan-out read the endpoint, not write it.
	if _, err := holder.Exec(ctx, `LOCK TABLE webhook_endpoints IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	fannedOut := make(chan error, 1)
	go func() {
		_, err := service.DueWebhooks(ctx, e.ID, billing.DueDelivery{}, 100, nil)
		fannedOut <- err
	}()
	time.Sleep(500 * time.Millisecond) // the fan-out has read the event and waits to write
	var moved string
	if err := holder.QueryRow(ctx, `UPDATE webhook_endpoints SET sent_txid = pg_current_xact_id(), sent_seq = 0 WHERE id = $1
RETURNING CAST(sent_txid AS TEXT)`, e.ID).Scan(&moved); err != nil {
		t.Fatal(err)
	}
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-fannedOut; err != nil {
		t.Fatal(err)
	}

	ds, _, err := service.Deliveries(ctx, site, e.ID, billing.DeliveryFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 0 {
		t.Errorf("the fan-out wrote %d deliveries after the endpoint's position moved; want none", len(ds))
	}
	var sent string
	if err := db.Conn().Query(ctx, `SELECT CAST(sent_txid AS TEXT) FROM webhook_endpoints WHERE id = $1`, []any{e.ID},
		func(row storage.Scanner) error { return row.Scan(&sent) }); err != nil {
		t.Fatal(err)
	}
	if sent != moved {
		t.Errorf("the endpoint's position is %s after the fan-out; want %s, where it was moved", sent, moved)
	}
}

// A run records the attempts of its round while the partner deletes the endpoint (its deliveries
// with it) in a transaction that commits meanwhile: the recording waits for the deletion, then
// finds the endpoint gone. It records nothing, as it leaves out the attempts of deliveries already
// gone, rather than fail the run (logged at ERROR, the rest of its round unrecorded).
func TestTheAttemptsOfDeliveriesDeletedMeanwhileAreLeftOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL, _, service, site := onOwnDatabase(t)
	e := anEndpoint(t, service, site)
	inviteListed(t, service, site, "A")
	due, err := service.DueWebhooks(ctx, e.ID, billing.DueDelivery{}, 100, nil)
	if err != nil || len(due) != 1 {
		t.Fatalf("DueWebhooks = %d deliveries, %v; want the invitation's", len(due), err)
	}

	deleting, err := connect(t, dbURL).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer deleting.Rollback(ctx)
	if _, err := deleting.Exec(ctx, `DELETE FROM webhook_endpoints WHERE id = $1`, e.ID); err != nil {
		t.Fatal(err)
	}
	recorded := make(chan error, 1)
	go func() {
		attempt := billing.DeliveryAttempt{At: time.Now(), Status: 200, Duration: time.Millisecond}
		recorded <- service.RecordDeliveryAttempts(ctx, e.ID, []billing.DeliveryOutcome{
			{DeliveryID: due[0].Delivery.ID, Attempt: attempt, State: billing.DeliverySucceeded}})
	}()
	time.Sleep(300 * time.Millisecond) // the attempt's foreign key check waits for the deletion
	if err := deleting.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-recorded; err != nil {
		t.Errorf("recording the attempt of a delivery deleted meanwhile: %v; want it left out", err)
	}
}

// The same on SQLite, where the fan-out's transaction waits for the write transaction of another
// process on the file (a replica, an admin command) in which the endpoint's position moved, as
// the partner's enabling moves it: the fan-out writes neither its deliveries nor its older
// position.
func TestAFanOutOnSQLiteDoesNotWriteOverAPositionMovedMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.URL(t, storage.EngineSQLite)
	db := dbtest.OpenURL(t, dbURL, storage.WithKeyring(dbtest.Keyring()))
	service, _ := apptest.ServiceOver(t, db, apptest.ServiceOptions{})
	site := apptest.NewSite(t, service, "Acme")
	e := endpointWithAnEvent(t, service, site)

	other, err := sql.Open("sqlite", sqlite.DSN(strings.TrimPrefix(dbURL, "sqlite://")))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	holder, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	fannedOut := make(chan error, 1)
	go func() {
		_, err := service.DueWebhooks(ctx, e.ID, billing.DueDelivery{}, 100, nil)
		fannedOut <- err
	}()
	time.Sleep(500 * time.Millisecond) // the fan-out has read the event and waits to write
	const moved = 1 << 40
	if _, err := holder.ExecContext(ctx, "UPDATE webhook_endpoints SET sent_seq = ? WHERE id = ?", moved, e.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := <-fannedOut; err != nil {
		t.Fatal(err)
	}

	ds, _, err := service.Deliveries(ctx, site, e.ID, billing.DeliveryFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 0 {
		t.Errorf("the fan-out wrote %d deliveries after the endpoint's position moved; want none", len(ds))
	}
	var sent int64
	if err := db.Conn().Query(ctx, "SELECT sent_seq FROM webhook_endpoints WHERE id = ?", []any{e.ID},
		func(row storage.Scanner) error { return row.Scan(&sent) }); err != nil {
		t.Fatal(err)
	}
	if sent != moved {
		t.Errorf("the endpoint's position is %d after the fan-out; want %d, where it was moved", sent, moved)
	}
}

// endpointWithAnEvent makes an endpoint of the site, then an event after it (the invitation of
// BEFORE, once listed), which the endpoint's next fan-out gives it a delivery of.
func endpointWithAnEvent(t *testing.T, service *billing.Service, site billing.Site) billing.WebhookEndpoint {
	t.Helper()
	e := anEndpoint(t, service, site)
	inviteListed(t, service, site, "BEFORE")
	return e
}

// anEndpoint makes an endpoint of the site, subscribed to every event.
func anEndpoint(t *testing.T, service *billing.Service, site billing.Site) billing.WebhookEndpoint {
	t.Helper()
	url := "https://example.com/hook"
	e, err := service.CreateWebhookEndpoint(context.Background(), site, billing.WebhookEndpointRequest{URL: &url})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// On PostgreSQL an endpoint's run gives it the events below the events horizon only: an event
// committed while an older transaction is still open waits, as the events list does, so that an
// event that transaction writes, which the list shows before, is never passed by a delivery (the
// last delivery processed is a safe `after`). The partner disabling the endpoint meanwhile gives
// it the same: deliveries of the events the list shows, no other. The event is in the list, after
// the endpoint's last delivery, once the older transaction ends.
func TestAnEndpointDisabledWhileAnOlderTransactionIsOpenIsGivenWhatTheListShows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL, _, service, site := onOwnDatabase(t)
	e := anEndpoint(t, service, site)
	inviteListed(t, service, site, "BELOW-THE-HORIZON")
	older, err := connect(t, dbURL).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer older.Rollback(ctx)
	if _, err := older.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil { // an xid, as a write takes
		t.Fatal(err)
	}
	if _, err := service.Invite(ctx, site, "ABOVE-THE-HORIZON"); err != nil {
		t.Fatal(err)
	}
	disabled := billing.EndpointDisabled
	if _, err := service.UpdateWebhookEndpoint(ctx, site, e.ID, billing.WebhookEndpointRequest{State: &disabled}); err != nil {
		t.Fatal(err)
	}
	listed := func() map[string]bool {
		t.Helper()
		events, _, err := service.Events(ctx, site, billing.EventFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, ev := range events {
			ids[ev.ID] = true
		}
		return ids
	}
	shown := listed()
	ds, _, err := service.Deliveries(ctx, site, e.ID, billing.DeliveryFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || len(shown) != 1 {
		t.Errorf("%d deliveries, %d events listed; want the first invitation's alone", len(ds), len(shown))
	}
	for _, d := range ds {
		if !shown[d.EventID] {
			t.Errorf("delivery %s is of event %s, which the events list does not show yet", d.ID, d.EventID)
		}
	}
	if err := older.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(listed()); n != 2 {
		t.Errorf("%d events listed once the older transaction ended; want both invitations", n)
	}
}

// A run records a failed attempt (which marks its endpoint failing) while the partner disables
// or deletes the endpoint. The partner's transaction locks the endpoint, then writes or removes
// deliveries (disabling gives the endpoint the deliveries it is owed, of which the sandbox's
// webhook.test is one already; deleting removes them all); the recording must not hold a delivery
// while it waits for the endpoint, or each waits for the other and PostgreSQL aborts one. Here a
// third transaction holds the endpoint until both wait for it, the partner's first.
func TestRecordingAttemptsWhileThePartnerChangesTheEndpointDoesNotDeadlock(t *testing.T) {
	t.Parallel()
	disabled := billing.EndpointDisabled
	for _, tc := range []struct {
		name   string
		change func(*billing.Service, billing.Site, string) error
	}{
		{"disable", func(service *billing.Service, site billing.Site, id string) error {
			_, err := service.UpdateWebhookEndpoint(context.Background(), site, id, billing.WebhookEndpointRequest{State: &disabled})
			return err
		}},
		{"delete", func(service *billing.Service, site billing.Site, id string) error {
			return service.DeleteWebhookEndpoint(context.Background(), site, id)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dbURL, _, service, site := onOwnDatabase(t)
			e := anEndpoint(t, service, site)
			d, err := service.SendTestEvent(ctx, site, e.ID)
			if err != nil {
				t.Fatal(err)
			}
			watcher := connect(t, dbURL)
			waitForWaiters := func(n int) {
				t.Helper()
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					var waiting int
					if err := watcher.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
						t.Fatal(err)
					}
					if waiting >= n {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("%d transactions wait for a lock; want %d", waiting, n)
					}
				}
			}

			holder, err := connect(t, dbURL).Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Rollback(ctx)
			if _, err := holder.Exec(ctx, `SELECT 1 FROM webhook_endpoints WHERE id = $1 FOR UPDATE`, e.ID); err != nil {
				t.Fatal(err)
			}
			changed, recorded := make(chan error, 1), make(chan error, 1)
			go func() { changed <- tc.change(service, site, e.ID) }()
			waitForWaiters(1)
			go func() {
				attempt := billing.DeliveryAttempt{At: time.Now(), Status: 500, Duration: time.Millisecond}
				recorded <- service.RecordDeliveryAttempts(ctx, e.ID, []billing.DeliveryOutcome{
					{DeliveryID: d.ID, Attempt: attempt, State: billing.DeliveryPending}})
			}()
			waitForWaiters(2)
			if err := holder.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-changed; err != nil {
				t.Errorf("the partner's change: %v", err)
			}
			if err := <-recorded; err != nil {
				t.Errorf("recording the attempt: %v", err)
			}
		})
	}
}
