package billing_test

import (
	"slices"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/webhook"
)

func TestARotatedSecretSignsBesideTheNewOneFor24Hours(t *testing.T) {
	old, _ := webhook.NewSecret()
	current, _ := webhook.NewSecret()
	rotatedAt := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	e := billing.WebhookEndpoint{Secret: current, PreviousSecret: old, PreviousSecretUntil: rotatedAt.Add(billing.SecretRotationOverlap)}
	for _, tc := range []struct {
		at   time.Time
		want []webhook.Secret
	}{
		{rotatedAt, []webhook.Secret{current, old}},
		{rotatedAt.Add(billing.SecretRotationOverlap - time.Millisecond), []webhook.Secret{current, old}},
		{rotatedAt.Add(billing.SecretRotationOverlap), []webhook.Secret{current}},
		{rotatedAt.Add(48 * time.Hour), []webhook.Secret{current}},
	} {
		got := e.SecretsAt(tc.at)
		if !slices.EqualFunc(got, tc.want, func(a, b webhook.Secret) bool { return a.Reveal() == b.Reveal() }) {
			t.Errorf("at %v: %d secrets, want %d", tc.at, len(got), len(tc.want))
		}
	}
	if got := (billing.WebhookEndpoint{Secret: current}).SecretsAt(rotatedAt); len(got) != 1 {
		t.Errorf("a never rotated endpoint signs with %d secrets", len(got))
	}
}

func TestSubscriptions(t *testing.T) {
	for _, tc := range []struct {
		types []billing.EventType
		event billing.EventType
		want  bool
	}{
		{[]billing.EventType{billing.AllEventTypes}, billing.EventBatchCompleted, true},
		{[]billing.EventType{billing.AllEventTypes}, billing.EventType("customer.future"), true},
		{[]billing.EventType{billing.EventCustomerLinked}, billing.EventCustomerLinked, true},
		{[]billing.EventType{billing.EventCustomerLinked}, billing.EventCustomerRevoked, false},
	} {
		if got := (billing.WebhookEndpoint{EventTypes: tc.types}).Subscribes(tc.event); got != tc.want {
			t.Errorf("%v subscribes to %s: %v, want %v", tc.types, tc.event, got, tc.want)
		}
	}
}
