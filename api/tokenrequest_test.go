package api_test

import (
	"encoding/json"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/pyng/receivables/api"
)

// TestTokenRequestSchemaIsRFC6749s checks the document's token request against RFC 6749 §3.2,
// which the token endpoint follows: an unrecognised parameter is ignored, not refused (a client
// library may send one, such as RFC 8707's resource), and a parameter without a value counts as
// omitted. A client generated from the document must not be told otherwise.
func TestTokenRequestSchemaIsRFC6749s(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	schema := doc.Components.Schemas["TokenRequest"]
	if schema == nil || schema.Value == nil {
		t.Fatal("no schema TokenRequest")
	}
	tests := []struct {
		name, value string
		valid       bool
	}{
		{"the grant type alone is valid", `{"grant_type":"client_credentials"}`, true},
		{"an unrecognised parameter is valid (ignored)", `{"grant_type":"client_credentials","resource":"https://sample.pyng.com.au"}`, true},
		{"an empty scope is valid (omitted)", `{"grant_type":"client_credentials","scope":""}`, true},
		{"another grant type is invalid", `{"grant_type":"password"}`, false},
		{"no grant type is invalid", `{"scope":"billing:batches:read"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var value any
			if err := json.Unmarshal([]byte(tt.value), &value); err != nil {
				t.Fatal(err)
			}
			err := schema.Value.VisitJSON(value, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors())
			if valid := err == nil; valid != tt.valid {
				t.Errorf("valid = %v, want %v (%v)", valid, tt.valid, err)
			}
		})
	}
}
