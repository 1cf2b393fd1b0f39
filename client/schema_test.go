package client_test

import (
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/pyng/receivables/api"
	"github.com/pyng/receivables/client"
)

func auditDocument(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// auditMember is a JSON member of a Go struct as encoding/json writes it.
type auditMember struct {
	omitted bool // omitempty or omitzero: absent when zero
	typ     reflect.Type
}

// auditMembers lists the JSON members of struct type typ, embedded structs flattened.
func auditMembers(typ reflect.Type) map[string]auditMember {
	members := map[string]auditMember{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for n, m := range auditMembers(f.Type) {
				members[n] = m
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		members[name] = auditMember{omitted: strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero"), typ: f.Type}
	}
	return members
}

// Each schema of the document the client decodes or sends, member by member against the client's
// struct: every member of the schema is a member of the struct; a member the schema requires is
// never left out for being zero; a member the schema may leave out (or does not have) is left
// out by the client when zero, so that an absent member is not re-encoded as null, 0 or "".
func TestSchemasMemberByMember(t *testing.T) {
	doc := auditDocument(t)
	pairs := []struct {
		schema string
		typ    reflect.Type
	}{
		{"Invitation", reflect.TypeFor[client.Invitation]()},
		{"InvitationRequest", reflect.TypeFor[client.InvitationRequest]()},
		{"Link", reflect.TypeFor[client.Link]()},
		{"LinkEventData", reflect.TypeFor[client.Link]()},
		{"BatchRequest", reflect.TypeFor[client.BatchRequest]()},
		{"RowRequest", reflect.TypeFor[client.RowRequest]()},
		{"BatchReceipt", reflect.TypeFor[client.BatchReceipt]()},
		{"Batch", reflect.TypeFor[client.Batch]()},
		{"BatchDetail", reflect.TypeFor[client.BatchDetail]()},
		{"BatchEventData", reflect.TypeFor[client.BatchWithSummary]()}, // what Event.BatchData gives
		{"BatchSummary", reflect.TypeFor[client.BatchSummary]()},
		{"StateTotal", reflect.TypeFor[client.StateTotal]()},
		{"Row", reflect.TypeFor[client.Row]()},
		{"RowEventData", reflect.TypeFor[client.RowEvent]()},
		{"Event", reflect.TypeFor[client.Event]()},
		{"WebhookEndpoint", reflect.TypeFor[client.WebhookEndpoint]()},
		{"WebhookEndpointWithSecret", reflect.TypeFor[client.WebhookEndpointWithSecret]()},
		{"WebhookEndpointRequest", reflect.TypeFor[client.WebhookEndpointRequest]()},
		{"WebhookEndpointUpdate", reflect.TypeFor[client.WebhookEndpointUpdate]()},
		{"Delivery", reflect.TypeFor[client.Delivery]()},
		{"DeliveryAttempt", reflect.TypeFor[client.DeliveryAttempt]()},
		{"Error", reflect.TypeFor[client.Problem]()},
		{"LinkPage", reflect.TypeFor[client.Page[client.Link]]()},
		{"BatchPage", reflect.TypeFor[client.Page[client.Batch]]()},
		{"EventPage", reflect.TypeFor[client.Page[client.Event]]()},
		{"DeliveryPage", reflect.TypeFor[client.Page[client.Delivery]]()},
		{"WebhookEndpointList", reflect.TypeFor[client.Page[client.WebhookEndpoint]]()},
	}
	for _, p := range pairs {
		ref := doc.Components.Schemas[p.schema]
		if ref == nil || ref.Value == nil {
			t.Errorf("the document has no schema %s", p.schema)
			continue
		}
		s := ref.Value
		ours := auditMembers(p.typ)
		for name := range s.Properties {
			m, ok := ours[name]
			switch {
			case !ok:
				t.Errorf("%s.%s: client.%s has no such member", p.schema, name, p.typ.Name())
			case slices.Contains(s.Required, name) && m.omitted && m.typ.Kind() != reflect.Pointer:
				t.Errorf("%s.%s is required, but client.%s leaves it out when zero", p.schema, name, p.typ.Name())
			case !slices.Contains(s.Required, name) && !m.omitted:
				t.Errorf("%s.%s may be absent, but client.%s writes it when zero (as %s)", p.schema, name, p.typ.Name(), zeroJSON(m.typ))
			}
		}
		for name, m := range ours {
			if _, ok := s.Properties[name]; !ok && !m.omitted {
				t.Errorf("client.%s writes %q, which %s does not have (as %s when absent)", p.typ.Name(), name, p.schema, zeroJSON(m.typ))
			}
		}
	}
}

func zeroJSON(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface:
		return "null"
	case reflect.String:
		return `""`
	case reflect.Bool:
		return "false"
	case reflect.Struct:
		return "{...}"
	}
	return "0"
}

// auditEnum is the values of an enum of the document.
func auditEnum(t *testing.T, s *openapi3.Schema) []string {
	t.Helper()
	var values []string
	for _, v := range s.Enum {
		values = append(values, v.(string))
	}
	sort.Strings(values)
	return values
}

func auditStrings[S ~string](values ...S) []string {
	var out []string
	for _, v := range values {
		out = append(out, string(v))
	}
	sort.Strings(out)
	return out
}

// Every enum of the document is a type of the client with a constant for each value.
func TestEnumsHaveConstants(t *testing.T) {
	doc := auditDocument(t)
	schema := func(name string) *openapi3.Schema { return doc.Components.Schemas[name].Value }
	enums := []struct {
		name  string
		doc   *openapi3.Schema
		field reflect.Type // the type of the client's field that holds it
		ours  []string     // the client's constants
	}{
		{"LinkState", schema("LinkState"), reflect.TypeFor[client.LinkState](),
			auditStrings(client.LinkInvited, client.LinkLinked, client.LinkExpired, client.LinkRevoked)},
		{"BatchState", schema("BatchState"), reflect.TypeFor[client.BatchState](),
			auditStrings(client.BatchAccepted, client.BatchInProgress, client.BatchCompleted)},
		{"RowState", schema("RowState"), reflect.TypeFor[client.RowState](),
			auditStrings(client.RowPending, client.RowInProgress, client.RowSucceeded, client.RowFailed)},
		{"FailureReason", schema("FailureReason"), reflect.TypeFor[client.FailureReason](),
			auditStrings(client.FailureCustomerNotActive, client.FailureInsufficientFunds, client.FailureAccountClosed, client.FailureExpired)},
		{"ReturnReason", schema("ReturnReason"), reflect.TypeFor[client.ReturnReason](),
			auditStrings(client.ReturnInvalidBSB, client.ReturnPaymentStopped, client.ReturnAccountClosed, client.ReturnCustomerDeceased,
				client.ReturnInvalidAccount, client.ReturnReferToCustomer, client.ReturnDeleted, client.ReturnInvalidUserID, client.ReturnTechnicallyInvalid)},
		{"EventType", schema("EventType"), reflect.TypeFor[client.EventType](), auditStrings(client.EventTypes()...)},
		{"EndpointState", schema("EndpointState"), reflect.TypeFor[client.EndpointState](),
			auditStrings(client.EndpointEnabled, client.EndpointDisabled)},
		{"DeliveryState", schema("DeliveryState"), reflect.TypeFor[client.DeliveryState](),
			auditStrings(client.DeliveryPending, client.DeliverySucceeded, client.DeliveryFailed)},
		{"ErrorCode", schema("ErrorCode"), reflect.TypeFor[client.Code](), auditStrings(client.Codes()...)},
		{"RevokedBy (Link.revokedBy)", schema("RevokedBy"), auditFieldType[client.Link]("RevokedBy"),
			auditStrings(client.RevokedByCustomer, client.RevokedByPartner, client.RevokedByBank)},
		{"WebhookEndpoint.disabledReason", schema("WebhookEndpoint").Properties["disabledReason"].Value,
			auditFieldType[client.WebhookEndpoint]("DisabledReason"), auditStrings(client.DisabledByPartner, client.DisabledFailing)},
	}
	for _, e := range enums {
		want := auditEnum(t, e.doc)
		if e.field == reflect.TypeFor[string]() {
			t.Errorf("%s is an enum of the document (%v), but the client's field is a plain string with no constants", e.name, want)
			continue
		}
		if !slices.Equal(e.ours, want) {
			t.Errorf("%s: the client's constants are %v, the document's values %v", e.name, e.ours, want)
		}
	}
}

func auditFieldType[T any](name string) reflect.Type {
	f, ok := reflect.TypeFor[T]().FieldByName(name)
	if !ok {
		return nil
	}
	return f.Type
}
