package main

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/client"
)

func TestWebhookEndpointCommands(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		url, got := receiver(t, http.StatusOK)
		ep := one[client.WebhookEndpointWithSecret](t, ok(t, s, "webhooks", "create", "--endpoint-url", url, "--events", "customer.invited,customer.linked").stdout)
		if !strings.HasPrefix(ep.Secret, "whsec_") || ep.URL != url ||
			!slices.Equal(ep.EventTypes, []client.EventType{client.EventCustomerInvited, client.EventCustomerLinked}) {
			t.Fatalf("webhooks create = %+v", ep)
		}
		table := ok(t, s, "webhooks", "list", "--json=false").stdout
		if !regexp.MustCompile(`(?m)^` + ep.EndpointID + ` +` + regexp.QuoteMeta(url) + ` +customer\.invited,customer\.linked +enabled `).MatchString(table) {
			t.Errorf("webhooks list as a table:\n%s", table)
		}
		if list := decode[client.WebhookEndpoint](t, ok(t, s, "webhooks", "list").stdout); len(list) != 1 || list[0].EndpointID != ep.EndpointID {
			t.Errorf("webhooks list = %+v", list)
		}
		if shown := one[client.WebhookEndpoint](t, ok(t, s, "webhooks", "show", ep.EndpointID).stdout); shown.EndpointID != ep.EndpointID || shown.URL != url {
			t.Errorf("webhooks show = %+v", shown)
		}

		d := one[client.Delivery](t, ok(t, s, "sandbox", "webhook-test", ep.EndpointID).stdout)
		if d.EventType != client.EventWebhookTest {
			t.Errorf("sandbox webhook-test = %+v", d)
		}
		var deliveries []client.Delivery
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			deliveries = decode[client.Delivery](t, ok(t, s, "webhooks", "deliveries", ep.EndpointID).stdout)
			if len(deliveries) == 1 && deliveries[0].State == client.DeliverySucceeded {
				break
			}
		}
		if len(deliveries) != 1 || deliveries[0].DeliveryID != d.DeliveryID || deliveries[0].State != client.DeliverySucceeded {
			t.Fatalf("webhooks deliveries = %+v", deliveries)
		}
		retried := one[client.Delivery](t, ok(t, s, "webhooks", "retry", ep.EndpointID, d.DeliveryID).stdout)
		if retried.DeliveryID != d.DeliveryID || retried.State != client.DeliveryPending {
			t.Errorf("webhooks retry = %+v", retried)
		}
		for deadline := time.Now().Add(30 * time.Second); len(got()) < 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		}
		if n := len(got()); n != 2 {
			t.Errorf("the receiver got %d requests, want the test and its retry", n)
		}

		rotated := one[client.WebhookEndpointWithSecret](t, ok(t, s, "webhooks", "rotate-secret", ep.EndpointID).stdout)
		if rotated.Secret == ep.Secret || !strings.HasPrefix(rotated.Secret, "whsec_") {
			t.Errorf("rotated secret %q", rotated.Secret)
		}
		disabled := one[client.WebhookEndpoint](t, ok(t, s, "webhooks", "update", ep.EndpointID, "--disable").stdout)
		if disabled.State != client.EndpointDisabled || disabled.DisabledReason != "partner" {
			t.Errorf("webhooks update --disable = %+v", disabled)
		}
		if r := cli(t, s, "webhooks", "retry", ep.EndpointID, d.DeliveryID); r.code != 1 || !strings.Contains(r.stderr, string(client.CodeWebhookEndpointDisabled)) {
			t.Errorf("retry to a disabled endpoint: exit %d, stderr %q", r.code, r.stderr)
		}
		enabled := one[client.WebhookEndpoint](t, ok(t, s, "webhooks", "update", ep.EndpointID, "--enable", "--events", "*").stdout)
		if enabled.State != client.EndpointEnabled || !slices.Equal(enabled.EventTypes, []client.EventType{client.EventAll}) {
			t.Errorf("webhooks update --enable --events '*' = %+v", enabled)
		}
		if deleted := one[client.WebhookEndpoint](t, ok(t, s, "webhooks", "delete", ep.EndpointID).stdout); deleted.EndpointID != ep.EndpointID {
			t.Errorf("webhooks delete = %+v", deleted)
		}
		if r := cli(t, s, "webhooks", "show", ep.EndpointID); r.code != 1 || !strings.Contains(r.stderr, string(client.CodeWebhookEndpointNotFound)) || !traceID.MatchString(r.stderr) {
			t.Errorf("show after delete: exit %d, stderr %q", r.code, r.stderr)
		}
	})
}
