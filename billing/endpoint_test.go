package billing_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/storage"
)

// endpointUnderChange is a site with an endpoint, and patch, which changes the endpoint's URL
// through the service from workers goroutines, over and over, until the function it returns is
// called.
type endpointUnderChange struct {
	service  *billing.Service
	site     billing.Site
	endpoint billing.WebhookEndpoint
}

func newEndpointUnderChange(t *testing.T, db storage.Database) endpointUnderChange {
	t.Helper()
	ctx := context.Background()
	site := billing.Site{ID: billing.NewID("site"), OrganisationID: newOrganisation(t, db), Name: "Acme",
		Currency: "AUD", Rail: rail.Sandbox, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if err := db.CreateSite(ctx, site); err != nil {
		t.Fatal(err)
	}
	service := newService(db, map[string]rail.Rail{rail.Sandbox: &recordingRail{}})
	url := "https://example.com/hooks"
	e, err := service.CreateWebhookEndpoint(ctx, site, billing.WebhookEndpointRequest{URL: &url})
	if err != nil {
		t.Fatal(err)
	}
	return endpointUnderChange{service: service, site: site, endpoint: e}
}

func (c endpointUnderChange) patch(t *testing.T, workers int) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				url := fmt.Sprintf("https://example.com/hooks/%d/%d", w, i)
				if _, err := c.service.UpdateWebhookEndpoint(context.Background(), c.site, c.endpoint.ID, billing.WebhookEndpointRequest{URL: &url}); err != nil {
					t.Errorf("UpdateWebhookEndpoint: %v", err)
					return
				}
			}
		})
	}
	return func() { close(done); wg.Wait() }
}

func (c endpointUnderChange) stored(t *testing.T, db storage.Database) billing.WebhookEndpoint {
	t.Helper()
	e, err := db.WebhookEndpoint(context.Background(), c.endpoint.ID)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A rotation of an endpoint's secret made while the endpoint's URL is changed is kept: the secret
// stored (which signs the deliveries) is the one the last rotation gave the partner, never one a
// change of the URL read before it and wrote back.
func TestRotationsDuringChangesOfTheURLAreKept(t *testing.T) {
	onEachEngine(t, func(t *testing.T, db storage.Database) {
		c := newEndpointUnderChange(t, db)
		stop := c.patch(t, 4)
		var last billing.WebhookEndpoint
		for range 30 {
			var err error
			if last, err = c.service.RotateWebhookSecret(context.Background(), c.site, c.endpoint.ID); err != nil {
				t.Fatalf("RotateWebhookSecret: %v", err)
			}
		}
		stop()
		if got := c.stored(t, db); got.Secret.Reveal() != last.Secret.Reveal() || got.PreviousSecret.Reveal() != last.PreviousSecret.Reveal() {
			t.Errorf("the stored secret is not the one the last rotation answered with (nor its previous one the one it replaced)")
		}
	})
}

// An endpoint the delivery run disables for failing while its URL is changed stays disabled: a
// change of the URL that read the endpoint before never enables it again.
func TestAnEndpointDisabledDuringChangesOfTheURLStaysDisabled(t *testing.T) {
	onEachEngine(t, func(t *testing.T, db storage.Database) {
		ctx := context.Background()
		c := newEndpointUnderChange(t, db)
		d, err := c.service.SendTestEvent(ctx, c.site, c.endpoint.ID)
		if err != nil {
			t.Fatal(err)
		}
		enabled := billing.EndpointEnabled
		for round := range 10 {
			if _, err := c.service.UpdateWebhookEndpoint(ctx, c.site, c.endpoint.ID, billing.WebhookEndpointRequest{State: &enabled}); err != nil {
				t.Fatal(err)
			}
			fail := func(at time.Time) error { // the delivery's last attempt, which may disable the endpoint
				return c.service.RecordDeliveryAttempts(ctx, c.endpoint.ID, []billing.DeliveryOutcome{{DeliveryID: d.ID,
					Attempt: billing.DeliveryAttempt{At: at, Error: "refused"}, State: billing.DeliveryFailed}})
			}
			now := time.Now().UTC()
			if err := fail(now.Add(-billing.EndpointFailureLimit)); err != nil { // failing since
				t.Fatalf("RecordDeliveryAttempts: %v", err)
			}
			stop := c.patch(t, 4)
			time.Sleep(5 * time.Millisecond)
			err := fail(now) // failing for the limit: disabled
			time.Sleep(5 * time.Millisecond)
			stop()
			if err != nil {
				t.Fatalf("RecordDeliveryAttempts: %v", err)
			}
			if got := c.stored(t, db); got.State != billing.EndpointDisabled || got.DisabledReason != billing.DisabledFailing || got.FailingSince.IsZero() {
				t.Fatalf("round %d: after the delivery run disabled the endpoint: state %s (%s), failing since %v; want disabled for failing",
					round, got.State, got.DisabledReason, got.FailingSince)
			}
		}
	})
}
