package jobs_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/jobs"
	"github.com/pyng/receivables/webhook/deliver"
)

func TestDeliveriesFollowTheRetryScheduleThenFail(t *testing.T) {
	schedule := []time.Duration{time.Second, time.Minute, time.Hour}
	w := jobs.DeliverWebhookWorker(nil, nil, schedule)
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: time.Minute, 3: time.Hour, 4: time.Hour} {
		job := &river.Job[billing.DeliverWebhookJob]{JobRow: &rivertype.JobRow{Attempt: attempt}}
		if got := time.Until(w.NextRetry(job)); got < want-time.Second || got > want {
			t.Errorf("after attempt %d: retry in %v, want %v", attempt, got, want)
		}
	}

	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		service, _ := apptest.NewService(t, engine)
		site := apptest.NewSite(t, service, "Acme")
		var answered atomic.Int32
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			answered.Add(1)
			w.WriteHeader(http.StatusBadGateway)
		}))
		t.Cleanup(receiver.Close)
		url := receiver.URL
		e, err := service.CreateWebhookEndpoint(ctx, site, billing.WebhookEndpointRequest{URL: &url})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := service.Invite(ctx, site, "cust-1"); err != nil {
			t.Fatal(err)
		}
		ds, _, err := service.Deliveries(ctx, site, e.ID, billing.DeliveryFilter{Limit: 10})
		if err != nil || len(ds) != 1 {
			t.Fatalf("deliveries = %v, %v", ds, err)
		}
		w := jobs.DeliverWebhookWorker(service, deliver.New(deliver.Options{AllowPrivate: true}), schedule)
		for attempt := 1; attempt <= len(schedule)+1; attempt++ {
			job := &river.Job[billing.DeliverWebhookJob]{JobRow: &rivertype.JobRow{Attempt: attempt}, Args: billing.DeliverWebhookJob{DeliveryID: ds[0].ID}}
			err := w.Work(ctx, job)
			final := attempt == len(schedule)+1
			if final != (err == nil) {
				t.Fatalf("attempt %d: Work = %v; want an error (a retry) before the last attempt and none after it", attempt, err)
			}
			d, _, _ := service.Deliveries(ctx, site, e.ID, billing.DeliveryFilter{Limit: 10})
			wantState := billing.DeliveryPending
			if final {
				wantState = billing.DeliveryFailed
			}
			if d[0].State != wantState || len(d[0].Attempts) != attempt || d[0].Attempts[attempt-1].Status != http.StatusBadGateway {
				t.Fatalf("after attempt %d: %+v, want %s with %d attempts answered 502", attempt, d[0], wantState, attempt)
			}
		}
		if n := answered.Load(); n != int32(len(schedule)+1) {
			t.Errorf("the receiver was sent %d requests, want %d", n, len(schedule)+1)
		}

		// A delivery to an endpoint disabled since is failed without a request.
		if _, err := service.Invite(ctx, site, "cust-2"); err != nil {
			t.Fatal(err)
		}
		disabled := billing.EndpointDisabled
		if _, err := service.UpdateWebhookEndpoint(ctx, site, e.ID, billing.WebhookEndpointRequest{State: &disabled}); err != nil {
			t.Fatal(err)
		}
		d, _, _ := service.Deliveries(ctx, site, e.ID, billing.DeliveryFilter{Limit: 10})
		job := &river.Job[billing.DeliverWebhookJob]{JobRow: &rivertype.JobRow{Attempt: 1}, Args: billing.DeliverWebhookJob{DeliveryID: d[0].ID}}
		if err := w.Work(ctx, job); err != nil {
			t.Fatalf("Work for a disabled endpoint = %v", err)
		}
		d, _, _ = service.Deliveries(ctx, site, e.ID, billing.DeliveryFilter{Limit: 10})
		if d[0].State != billing.DeliveryFailed || len(d[0].Attempts) != 1 || d[0].Attempts[0].Status != 0 || answered.Load() != int32(len(schedule)+1) {
			t.Errorf("a delivery to a disabled endpoint: %+v", d[0])
		}
	})
}
