package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pyng/receivables/apptest"
)

func TestRequestBodyRules(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		tests := []struct {
			name        string
			path        string
			contentType string // "-" for none
			body        string
			status      int
			code        string
			target      string
		}{
			{name: "no Content-Type is 415", contentType: "-", body: `{"customerReference":"ACME-001"}`,
				status: 415, code: "request:unsupported-media-type", target: "Content-Type"},
			{name: "text/plain is 415", contentType: "text/plain", body: `{"customerReference":"ACME-001"}`,
				status: 415, code: "request:unsupported-media-type", target: "Content-Type"},
			{name: "a charset other than UTF-8 is 415", contentType: "application/json; charset=latin1", body: `{"customerReference":"ACME-001"}`,
				status: 415, code: "request:unsupported-media-type", target: "Content-Type"},
			{name: "malformed JSON is 400", body: `{"customerReference":`, status: 400, code: "request:malformed-json"},
			{name: "an empty body is 400", body: ``, status: 400, code: "request:malformed-json"},
			{name: "a JSON array is 400", body: `[{"customerReference":"ACME-001"}]`, status: 400, code: "request:malformed-json"},
			{name: "JSON null is 400", body: `null`, status: 400, code: "request:malformed-json"},
			{name: "trailing data after the object is 400", body: `{"customerReference":"ACME-001"} x`, status: 400, code: "request:malformed-json"},
			{name: "a second object after the first is 400", body: `{"customerReference":"ACME-001"}{}`, status: 400, code: "request:malformed-json"},
			{name: "a repeated member is 400", body: `{"customerReference":"ACME-001","customerReference":"ACME-002"}`, status: 400, code: "request:malformed-json"},
			{name: "invalid UTF-8 is 400", body: "{\"customerReference\":\"\xff\"}", status: 400, code: "request:malformed-json"},
			{name: "an unknown field is 400 with the field as target", body: `{"customerReference":"ACME-001","email":"a@example.com"}`,
				status: 400, code: "request:unknown-field", target: "email"},
			{name: "member names are case-sensitive", body: `{"CustomerReference":"ACME-001"}`,
				status: 400, code: "request:unknown-field", target: "CustomerReference"},
			{name: "a number for customerReference is the specification's invalid reference", body: `{"customerReference":1}`,
				status: 400, code: "customer-link:invalid-reference", target: "customerReference"},
			{name: "an object for customerReference is the specification's invalid reference", body: `{"customerReference":{"id":"ACME-001"}}`,
				status: 400, code: "customer-link:invalid-reference", target: "customerReference"},
			{name: "a number for metadata is 400 with the field as target", body: `{"customerReference":"ACME-001","metadata":1}`,
				status: 400, code: "request:invalid-field", target: "metadata"},
			{name: "a body over 64 KiB is 413", body: `{"customerReference":"` + strings.Repeat("a", 64<<10) + `"}`,
				status: 413, code: "request:body-too-large"},
			{name: "a revocation body with a field is 400", path: "/customers/ACME-001/revoke", body: `{"reason":"x"}`,
				status: 400, code: "request:unknown-field", target: "reason"},
			{name: "a revocation body that is not JSON is 415", path: "/customers/ACME-001/revoke", contentType: "text/plain", body: `x`,
				status: 415, code: "request:unsupported-media-type", target: "Content-Type"},
		}
		t.Run("rules", func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					ct := tt.contentType
					if ct == "" {
						ct = "application/json"
					}
					path := tt.path
					if path == "" {
						path = "/customers/invitations"
					}
					wantError(t, p.do(t, http.MethodPost, path, tt.body, "Content-Type", ct), tt.status, tt.code, tt.target)
				})
			}
		})
		t.Run("no refused request changed anything", func(t *testing.T) {
			if pg := p.mustList(t, ""); len(pg.Data) != 0 {
				t.Errorf("customers = %v, want none", refs(pg.Data))
			}
		})
		t.Run("application/json with charset=UTF-8 is accepted", func(t *testing.T) {
			r := p.do(t, http.MethodPost, "/customers/invitations", `{"customerReference":"ACME-001"}`,
				"Content-Type", "application/json; charset=UTF-8")
			wantStatus(t, r, http.StatusCreated)
		})
	})
}
