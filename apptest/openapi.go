package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"golang.org/x/oauth2"

	"github.com/pyng/receivables/api"
)

// oauth2HTTPClient is the context key through which the OAuth 2.0 library takes its HTTP client.
var oauth2HTTPClient = oauth2.HTTPClient

// LoadDocument parses and validates the OpenAPI document api.OpenAPI.
func LoadDocument() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("load api/openapi.yaml: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("api/openapi.yaml is not a valid OpenAPI document: %w", err)
	}
	return doc, nil
}

// contract is the document and a router over it, made once for every test.
var contract = sync.OnceValues(func() (*contractRouter, error) {
	doc, err := LoadDocument()
	if err != nil {
		return nil, err
	}
	// The customer's pages answer HTML, a string to the document.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	// The document names the public servers; the tests' server is on loopback, so route by path.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &contractRouter{doc: doc, router: router}, nil
})

type contractRouter struct {
	doc    *openapi3.T
	router routers.Router
}

// validating wraps next so that every response is checked against the OpenAPI document: its
// status must be documented for the operation, its documented headers present and well-formed,
// its body of the documented media type and schema, and a body's traceId equal to the
// Pyng-Trace-Id header. A request to a path or method the document does not describe must be
// answered 404 or 405 with the error envelope. Requests are not required to be valid (tests send
// invalid ones on purpose), but a request the server accepted (2xx) must be valid by the
// document, so that the server accepts nothing the document rules out. Mismatches fail t.
func validating(t testing.TB, next http.RoundTripper) http.RoundTripper {
	c, err := contract()
	if err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	return &validator{t: t, next: next, contract: c}
}

type validator struct {
	t        testing.TB
	next     http.RoundTripper
	contract *contractRouter
}

func (v *validator) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		var err error
		reqBody, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := v.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := v.contract.check(req, reqBody, resp, body); err != nil {
		v.t.Errorf("%s %s answered %d, which api/openapi.yaml does not allow: %v\nresponse body: %s",
			req.Method, req.URL.RequestURI(), resp.StatusCode, err, body)
	}
	return resp, nil
}

// check validates one exchange against the document.
func (c *contractRouter) check(req *http.Request, reqBody []byte, resp *http.Response, body []byte) error {
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return c.checkUnrouted(resp, body)
	}
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{
		Request:    withBody(req, reqBody),
		PathParams: params,
		Route:      route,
		Options:    &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			return fmt.Errorf("the server accepted a request that the document says is invalid: %w", err)
		}
	}
	return sameTraceID(resp, body)
}

// checkUnrouted checks the answer to a request for a path or method the document does not
// describe: it must be refused as such, with the error envelope.
func (c *contractRouter) checkUnrouted(resp *http.Response, body []byte) error {
	want := map[int]string{
		http.StatusNotFound:         "urn:pyng:platform:billing:error:request:not-found",
		http.StatusMethodNotAllowed: "urn:pyng:platform:billing:error:request:method-not-allowed",
	}[resp.StatusCode]
	if want == "" {
		return fmt.Errorf("the document describes no such operation, yet the server answered %d", resp.StatusCode)
	}
	if resp.StatusCode == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "" {
		return fmt.Errorf("405 without an Allow header")
	}
	if resp.Header.Get("Pyng-Trace-Id") == "" {
		return fmt.Errorf("no Pyng-Trace-Id header")
	}
	var value any
	if err := json.Unmarshal(body, &value); err != nil {
		return fmt.Errorf("the body is not JSON: %w", err)
	}
	schema := c.doc.Components.Schemas["ErrorResponse"].Value
	if err := schema.VisitJSON(value, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("the body is not an ErrorResponse: %w", err)
	}
	var envelope struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	_ = json.Unmarshal(body, &envelope)
	if !slices.ContainsFunc(envelope.Errors, func(e struct{ Code string }) bool { return e.Code == want }) {
		return fmt.Errorf("an unknown operation must answer the code %s", want)
	}
	return nil
}

// sameTraceID checks that a body's traceId, when it has one, is the Pyng-Trace-Id header's.
func sameTraceID(resp *http.Response, body []byte) error {
	var withTrace struct {
		TraceID *string `json:"traceId"`
	}
	if json.Unmarshal(body, &withTrace) != nil || withTrace.TraceID == nil {
		return nil
	}
	if header := resp.Header.Get("Pyng-Trace-Id"); *withTrace.TraceID != header {
		return fmt.Errorf("body traceId %q differs from the Pyng-Trace-Id header %q", *withTrace.TraceID, header)
	}
	return nil
}

// withBody returns a copy of req that reads body.
func withBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(body))
	return r
}

// CheckWebhook checks a webhook delivery the server sent against the document's webhooks: the
// event's type is one the document describes, the body matches its schema and the documented
// headers are present and well-formed.
func CheckWebhook(header http.Header, body []byte) error {
	c, err := contract()
	if err != nil {
		return err
	}
	var value any
	if err := json.Unmarshal(body, &value); err != nil {
		return fmt.Errorf("webhook body: %w", err)
	}
	typ, _ := value.(map[string]any)["type"].(string)
	item := c.doc.Webhooks[typ]
	if item == nil || item.Post == nil {
		return fmt.Errorf("api/openapi.yaml describes no webhook %q", typ)
	}
	var errs []error
	for _, p := range item.Post.Parameters {
		got := header.Get(p.Value.Name)
		if got == "" {
			errs = append(errs, fmt.Errorf("webhook %s: no %s header", typ, p.Value.Name))
			continue
		}
		if err := p.Value.Schema.Value.VisitJSON(got, openapi3.EnableJSONSchema2020()); err != nil {
			errs = append(errs, fmt.Errorf("webhook %s: header %s %q: %w", typ, p.Value.Name, got, err))
		}
	}
	schema := item.Post.RequestBody.Value.Content.Get("application/json").Schema.Value
	if err := schema.VisitJSON(value, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		errs = append(errs, fmt.Errorf("webhook %s: body %s: %w", typ, body, err))
	}
	return errors.Join(errs...)
}
