package api_test

import (
	"encoding/json"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/pyng/receivables/api"
)

// TestSchemasForbidMembersOutsideTheirState checks the rules by which a member is present only in
// some states (a Link's linkedAt, revokedAt and revokedBy, a batch's completedAt, a row's outcome
// members): the document says them with `not: {required: [...]}`, which code generators read,
// and they must forbid what the document has always forbidden.
func TestSchemasForbidMembersOutsideTheirState(t *testing.T) {
	t.Parallel()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	const (
		link    = `"customerReference":"ACME-001","createdAt":1,"expiresAt":2`
		signup  = `"signupUrl":"https://x.test/signup?token=abc"`
		batch   = `"batchReference":"B-1","rowCount":1,"totalAmount":100,"submittedAt":1`
		summary = `"summary":{"pending":{"count":0,"amount":0},"inProgress":{"count":0,"amount":0},"succeeded":{"count":1,"amount":100},"failed":{"count":0,"amount":0}},"rows":[]`
		row     = `"rowReference":"R1","customerReference":"ACME-001","amount":100`
	)
	tests := []struct {
		name, schema, value string
		valid               bool
	}{
		{"an invited link with its signupUrl is valid", "Link", `{` + link + `,"state":"invited",` + signup + `}`, true},
		{"an invited link with linkedAt is invalid", "Link", `{` + link + `,"state":"invited",` + signup + `,"linkedAt":3}`, false},
		{"an expired link with linkedAt is invalid", "Link", `{` + link + `,"state":"expired","linkedAt":3}`, false},
		{"a linked link with linkedAt is valid", "Link", `{` + link + `,"state":"linked","linkedAt":3}`, true},
		{"a linked link with revokedAt is invalid", "Link", `{` + link + `,"state":"linked","linkedAt":3,"revokedAt":4}`, false},
		{"a linked link with revokedBy is invalid", "Link", `{` + link + `,"state":"linked","linkedAt":3,"revokedBy":"partner"}`, false},
		{"a revoked link with revokedAt and revokedBy is valid", "Link", `{` + link + `,"state":"revoked","linkedAt":3,"revokedAt":4,"revokedBy":"partner"}`, true},
		{"a revoked link without revokedBy is invalid", "Link", `{` + link + `,"state":"revoked","revokedAt":4}`, false},
		{"an accepted batch is valid", "Batch", `{` + batch + `,"state":"accepted"}`, true},
		{"an accepted batch with completedAt is invalid", "Batch", `{` + batch + `,"state":"accepted","completedAt":2}`, false},
		{"a completed batch with completedAt is valid", "Batch", `{` + batch + `,"state":"completed","completedAt":2}`, true},
		{"a completed batch without completedAt is invalid", "Batch", `{` + batch + `,"state":"completed"}`, false},
		{"an in-progress batch's detail with completedAt is invalid", "BatchDetail", `{` + batch + `,` + summary + `,"state":"inProgress","completedAt":2}`, false},
		{"a completed batch's detail with completedAt is valid", "BatchDetail", `{` + batch + `,` + summary + `,"state":"completed","completedAt":2}`, true},
		{"a pending row is valid", "Row", `{` + row + `,"state":"pending"}`, true},
		{"a pending row with outcomeAt is invalid", "Row", `{` + row + `,"state":"pending","outcomeAt":2}`, false},
		{"an in-progress row with outcomeAt is invalid", "Row", `{` + row + `,"state":"inProgress","outcomeAt":2}`, false},
		{"a succeeded row with outcomeAt is valid", "Row", `{` + row + `,"state":"succeeded","outcomeAt":2}`, true},
		{"a succeeded row with failureReason is invalid", "Row", `{` + row + `,"state":"succeeded","outcomeAt":2,"failureReason":"expired"}`, false},
		{"a succeeded row with retryable is invalid", "Row", `{` + row + `,"state":"succeeded","outcomeAt":2,"retryable":false}`, false},
		{"a failed row with its reason is valid", "Row", `{` + row + `,"state":"failed","outcomeAt":2,"failureReason":"expired","retryable":true}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := doc.Components.Schemas[tt.schema]
			if ref == nil || ref.Value == nil {
				t.Fatalf("no schema %s", tt.schema)
			}
			var value any
			if err := json.Unmarshal([]byte(tt.value), &value); err != nil {
				t.Fatal(err)
			}
			err := ref.Value.VisitJSON(value, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors())
			if valid := err == nil; valid != tt.valid {
				t.Errorf("valid = %v, want %v (%v)", valid, tt.valid, err)
			}
		})
	}
}
