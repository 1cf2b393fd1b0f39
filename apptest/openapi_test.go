package apptest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pyng/receivables/api"
	"github.com/pyng/receivables/dbtest"
)

func TestDocumentIsValidOpenAPI31(t *testing.T) {
	doc, err := LoadDocument()
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi = %q, want 3.1", doc.OpenAPI)
	}
	if _, err := contract(); err != nil {
		t.Fatalf("router: %v", err)
	}
}

func TestServerServesTheDocument(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := Start(t, engine)
			r := s.Do(t, Request{Method: http.MethodGet, Path: "/openapi.yaml"})
			if r.Status != http.StatusOK || !bytes.Equal(r.Body, api.OpenAPI) {
				t.Fatalf("GET /openapi.yaml = %d, %d bytes; want 200 and the %d bytes of api/openapi.yaml", r.Status, len(r.Body), len(api.OpenAPI))
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/yaml" {
				t.Errorf("Content-Type = %q, want application/yaml", ct)
			}
		})
	}
}

// recorder is a testing.TB that keeps the failures reported to it.
type recorder struct {
	testing.TB
	failures []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

// canned answers every request with one response.
type canned struct {
	status int
	header http.Header
	body   string
}

func (c canned) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: c.status, Header: c.header, Body: io.NopCloser(strings.NewReader(c.body)), Request: req}, nil
}

func TestValidatorRejectsWhatTheDocumentDoesNot(t *testing.T) {
	const trace = "9ae2e340-b983-4274-b400-c974a9ab40ab"
	jsonHeader := func(extra ...string) http.Header {
		h := http.Header{"Content-Type": {"application/json;charset=UTF-8"}, "Pyng-Trace-Id": {trace}, "Cache-Control": {"no-store"}}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return h
	}
	invitation := `{"data":{"customerReference":"ACME-001","signupUrl":"https://x.test/signup?token=abc","expiresAt":1778457600000,"state":"invited"%s},"traceId":"` + trace + `"}`
	invite := func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/billing/sites/s1/customers/invitations", strings.NewReader(`{"customerReference":"ACME-001"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Pyng-Api-Version", APIVersion)
		return req
	}
	tests := []struct {
		name   string
		req    func() *http.Request
		resp   canned
		passes bool
	}{
		{"a documented 201 passes", invite, canned{201, jsonHeader(), fmt.Sprintf(invitation, "")}, true},
		{"an extra field fails", invite, canned{201, jsonHeader(), fmt.Sprintf(invitation, `,"extra":1`)}, false},
		{"an undocumented status fails", invite, canned{202, jsonHeader(), fmt.Sprintf(invitation, "")}, false},
		{"a missing Pyng-Trace-Id header fails", invite, canned{201, http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}}, fmt.Sprintf(invitation, "")}, false},
		{"a /billing/ answer without Cache-Control: no-store fails", invite, canned{201, jsonHeader("Cache-Control", "private"), fmt.Sprintf(invitation, "")}, false},
		{"a traceId unlike the header fails", invite, canned{201, jsonHeader("Pyng-Trace-Id", "1ae2e340-b983-4274-b400-c974a9ab40ab"), fmt.Sprintf(invitation, "")}, false},
		{"an unknown error code fails", invite, canned{409, jsonHeader(), `{"errors":[{"code":"nope","displayMessage":"x"}],"traceId":"` + trace + `"}`}, false},
		{"a 401 without WWW-Authenticate fails", invite, canned{401, jsonHeader(), `{"errors":[{"code":"urn:pyng:platform:billing:error:auth:missing-token","displayMessage":"x"}],"traceId":"` + trace + `"}`}, false},
		{"a 2xx to a request the document rules out fails", func() *http.Request {
			req := invite()
			req.Header.Del("Pyng-Api-Version")
			return req
		}, canned{201, jsonHeader(), fmt.Sprintf(invitation, "")}, false},
		{"an undocumented route answered 200 fails", func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/nowhere", nil)
			return req
		}, canned{200, jsonHeader(), `{}`}, false},
		{"an undocumented route answered 404 request:not-found passes", func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/nowhere", nil)
			return req
		}, canned{404, jsonHeader(), `{"errors":[{"code":"urn:pyng:platform:billing:error:request:not-found","displayMessage":"x"}],"traceId":"` + trace + `"}`}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			client := &http.Client{Transport: validating(rec, tt.resp)}
			resp, err := client.Do(tt.req())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if passed := len(rec.failures) == 0; passed != tt.passes {
				t.Errorf("passed = %v, want %v; failures: %v", passed, tt.passes, rec.failures)
			}
		})
	}
}

func TestCheckWebhookRefusesWhatTheDocumentDoesNot(t *testing.T) {
	header := http.Header{}
	header.Set("webhook-id", "evt_abc")
	header.Set("webhook-timestamp", "1764500000")
	header.Set("webhook-signature", "v1,c2lnbmF0dXJl")
	body := `{"eventId":"evt_abc","type":"customer.invited","createdAt":1764500000000,"siteId":"site_x",` +
		`"data":{"customerReference":"A-1","state":"invited","createdAt":1764500000000,"expiresAt":1765100000000}}`
	if err := CheckWebhook(header, []byte(body)); err != nil {
		t.Fatalf("a valid delivery: %v", err)
	}
	noID := header.Clone()
	noID.Del("webhook-id")
	for name, tc := range map[string]struct {
		header http.Header
		body   string
	}{
		"unknown type":      {header, strings.Replace(body, "customer.invited", "customer.exploded", 1)},
		"missing header":    {noID, body},
		"signupUrl in data": {header, strings.Replace(body, `"state":"invited"`, `"state":"invited","signupUrl":"https://x/signup?token=a"`, 1)},
		"batch data":        {header, strings.Replace(body, "customer.invited", "batch.accepted", 1)},
	} {
		if err := CheckWebhook(tc.header, []byte(tc.body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
