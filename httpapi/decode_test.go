package httpapi

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pyng/receivables/billing"
)

// jsonRequest is a POST of body with the given Content-Type ("" for none).
func jsonRequest(contentType string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/billing/sites/site_1/customers/invitations", bytes.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func TestDecodeJSONQuotesLongNamesCut(t *testing.T) {
	long := strings.Repeat("n", 1000)
	tests := []struct {
		body, target string
	}{
		{`{"customerReference":"A","` + long + `":1}`, strings.Repeat("n", 64) + "…"},
		{`{"` + strings.Repeat("é", 100) + `":1}`, strings.Repeat("é", 32) + "…"},
		{`{"email":1}`, "email"},
	}
	for _, tt := range tests {
		var req invitationRequest
		errs := billing.AsErrors(decodeJSON(discard{}, jsonRequest("application/json", []byte(tt.body)), &req, bodyRequired))
		if len(errs) != 1 || errs[0].Code != billing.CodeUnknownField || errs[0].Target != tt.target ||
			errs[0].Message != tt.target+" is not a field of this request." {
			t.Errorf("%.40s...: %v, want the unknown field %s", tt.body, errs, tt.target)
		}
	}
}

// Bounds of a problem of decodeJSON, whatever the body.
const maxDecodeMessage = 256

// FuzzDecodeJSON reads bodies as the invitation and the bodiless actions do: a refusal is one
// short problem of the documented kinds, and a body accepted holds exactly what it decoded to.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []struct{ contentType, body string }{
		{"application/json", `{"customerReference":"ACME-001"}`},
		{"application/json; charset=UTF-8", ` {"customerReference" : "ACME\u002d001"} `},
		{"application/json", `{"customerReference":null}`},
		{"application/json", `{"customerReference":1}`},
		{"application/json", `{"customerReference":{"id":"A"}}`},
		{"application/json", `{"customerReference":"A","customerReference":"B"}`},
		{"application/json", `{"CustomerReference":"A"}`},
		{"application/json", `{"5":1}`},
		{"application/json", `{"":1}`},
		{"application/json", `{"customerReference":"\ud800"}`},
		{"application/json", "{\"customerReference\":\"\xff\"}"},
		{"application/json", `[]`},
		{"application/json", `null`},
		{"application/json", `{} {}`},
		{"application/json", ``},
		{"application/json", `{}`},
		{"application/json", strings.Repeat("[", 10001)},
		{"application/json; charset=latin1", `{}`},
		{"text/plain", `{}`},
		{"", `{}`},
	} {
		f.Add(seed.contentType, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		check := func(err error) bool {
			if err == nil {
				return true
			}
			errs := billing.AsErrors(err)
			if len(errs) != 1 {
				t.Fatalf("refused with %v, want one problem", err)
			}
			e := errs[0]
			status := statusOf[e.Code]
			if status < 400 || status > 499 || e.Message == "" || len(e.Target) > maxProblemTarget || len(e.Message) > maxDecodeMessage {
				t.Fatalf("refused with %+v, want a short problem of the request", e)
			}
			return false
		}

		var req invitationRequest
		if check(decodeJSON(discard{}, jsonRequest(contentType, body), &req, bodyRequired)) {
			again := invitationRequest{CustomerReference: "not read"}
			written, _ := json.Marshal(req)
			if err := decodeJSON(discard{}, jsonRequest("application/json", written), &again, bodyRequired); err != nil || again.CustomerReference != req.CustomerReference || !maps.Equal(again.Metadata.m, req.Metadata.m) {
				t.Fatalf("%+v written again reads %+v, %v", req, again, err)
			}
		}

		var empty struct{}
		if check(decodeJSON(discard{}, jsonRequest(contentType, body), &empty, bodyOptional)) {
			var members map[string]any
			if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && (json.Unmarshal(trimmed, &members) != nil || len(members) != 0) {
				t.Fatalf("a body with no member to take accepted %q", body)
			}
		}
	})
}
