package storage_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/storage"
)

// README: "Events written while it is disabled are not sent to it". A fan-out of the endpoint's
// deliveries that read its position before the partner disabled and enabled it again must not
// write that older position over the one the enabling set: the events written while it was
// disabled would then be given deliveries.
func TestAFanOutDoesNotUndoTheEnablingOfItsEndpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL, db, service, site := onOwnDatabase(t)
	url := "https://example.com/hook"
	e, err := service.CreateWebhookEndpoint(ctx, site, billing.WebhookEndpointRequest{URL: &url})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := service.Invite(ctx, site, "BEFORE"); err != nil {
		t.Fatal(err)
	}
	var before string
	if err := db.Conn().Query(ctx, `SELECT id FROM events WHERE type = 'customer.invited'`, nil,
		func(row storage.Scanner) error { return row.Scan(&before) }); err != nil || before == "" {
		t.Fatalf("the invitation's event: %q, %v", before, err)
	}

	// The fan-out reads the endpoint and the event, then waits to write the event's delivery while
	// another transaction holds the deliveries' table.
	holder, err := connect(t, dbURL).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	if _, err := holder.Exec(ctx, `LOCK TABLE webhook_deliveries IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	fannedOut := make(chan error, 1)
	go func() {
		_, err := service.DueWebhooks(ctx, e.ID, billing.DueDelivery{}, 100, nil)
		fannedOut <- err
	}()
	time.Sleep(500 * time.Millisecond)

	// Meanwhile the partner disables the endpoint, a change writes an event, and the partner
	// enables the endpoint again.
	state := func(s billing.EndpointState) {
		t.Helper()
		if _, err := service.UpdateWebhookEndpoint(ctx, site, e.ID, billing.WebhookEndpointRequest{State: &s}); err != nil {
			t.Fatal(err)
		}
	}
	state(billing.EndpointDisabled)
	if _, err := service.Invite(ctx, site, "WHILE-DISABLED"); err != nil {
		t.Fatal(err)
	}
	state(billing.EndpointEnabled)
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-fannedOut; err != nil {
		t.Fatal(err)
	}

	// The next runs give the endpoint deliveries of what comes after the enabling alone.
	if _, err := service.DueWebhooks(ctx, e.ID, billing.DueDelivery{}, 100, nil); err != nil {
		t.Fatal(err)
	}
	ds, _, err := service.Deliveries(ctx, site, e.ID, billing.DeliveryFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		ev, err := db.GetEvent(ctx, d.EventID)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(ev.Body), `"customerReference":"WHILE-DISABLED"`) {
			t.Errorf("the endpoint was given a delivery of %s, an event written while it was disabled", ev.Body)
		}
	}
}

// A run records the attempts of its round while the partner deletes the endpoint (its deliveries
// with it) in a transaction that commits meanwhile: the attempt's insert saw its delivery, and its
// foreign key check, waiting for the deletion, then finds it gone. The recording leaves the
// attempts of the deliveries gone out, as it does those already gone, rather than fail the run
// (logged at ERROR, the rest of its round unrecorded).
func TestTheAttemptsOfDeliveriesDeletedMeanwhileAreLeftOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL, _, service, site := onOwnDatabase(t)
	url := "https://example.com/hook"
	e, err := service.CreateWebhookEndpoint(ctx, site, billing.WebhookEndpointRequest{URL: &url})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := service.Invite(ctx, site, "A"); err != nil {
		t.Fatal(err)
	}
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
