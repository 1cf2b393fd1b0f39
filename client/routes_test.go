package client_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/pyng/receivables/api"
	"github.com/pyng/receivables/client"
)

// methods names the method of client.Site that calls each operation of the document's /billing/
// routes (and its iterator where the route is a paged list).
var methods = map[string][]string{
	"inviteCustomer":             {"InviteCustomer"},
	"listCustomers":              {"CustomersPage", "ListCustomers"},
	"getCustomer":                {"GetCustomer"},
	"revokeCustomer":             {"RevokeCustomer"},
	"simulateSignup":             {"SimulateSignup"},
	"simulateCustomerRevocation": {"SimulateCustomerRevocation"},
	"simulateDeadline":           {"SimulateDeadline"},
	"submitBatch":                {"SubmitBatch"},
	"listBatches":                {"BatchesPage", "ListBatches"},
	"getBatch":                   {"GetBatch", "GetBatchCSV"},
	"listEvents":                 {"EventsPage", "ListEvents"},
	"createWebhookEndpoint":      {"CreateWebhookEndpoint"},
	"listWebhookEndpoints":       {"WebhookEndpoints"},
	"getWebhookEndpoint":         {"GetWebhookEndpoint"},
	"updateWebhookEndpoint":      {"UpdateWebhookEndpoint"},
	"deleteWebhookEndpoint":      {"DeleteWebhookEndpoint"},
	"rotateWebhookSecret":        {"RotateWebhookSecret"},
	"listDeliveries":             {"DeliveriesPage", "ListDeliveries"},
	"retryDelivery":              {"RetryDelivery"},
	"simulateWebhookTest":        {"SimulateWebhookTest"},
}

func TestEveryBillingRouteHasAMethod(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	site := reflect.TypeFor[*client.Site]()
	seen := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		if !strings.HasPrefix(path, "/billing/") {
			continue
		}
		for method, op := range item.Operations() {
			seen[op.OperationID] = true
			names, ok := methods[op.OperationID]
			if !ok {
				t.Errorf("%s %s (%s) has no method on client.Site", method, path, op.OperationID)
			}
			for _, name := range names {
				if _, ok := site.MethodByName(name); !ok {
					t.Errorf("client.Site has no method %s for %s", name, op.OperationID)
				}
			}
		}
	}
	for op := range methods {
		if !seen[op] {
			t.Errorf("%s is not an operation of the document's /billing/ routes any more", op)
		}
	}
}
