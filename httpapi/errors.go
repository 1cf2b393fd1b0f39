package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/pyng/receivables/billing"
)

// statusOf is the one table from error code to HTTP status. A code missing from it is a
// programming error, answered as a 500 and logged.
var statusOf = map[billing.Code]int{
	billing.CodeSiteNotFound:            http.StatusNotFound,
	billing.CodeLinkAlreadyExists:       http.StatusConflict,
	billing.CodeLinkInvalidReference:    http.StatusBadRequest,
	billing.CodeLinkNotFound:            http.StatusNotFound,
	billing.CodeLinkInvalidState:        http.StatusConflict,
	billing.CodeLinkNoActiveInvitation:  http.StatusConflict,
	billing.CodeInvalidField:            http.StatusBadRequest,
	billing.CodeCustomerInvalidField:    http.StatusBadRequest,
	billing.CodeBatchInvalidField:       http.StatusBadRequest,
	billing.CodeBatchReferenceConflict:  http.StatusConflict,
	billing.CodeBatchNotFound:           http.StatusNotFound,
	billing.CodeBatchNotOnSandboxRail:   http.StatusConflict,
	billing.CodeSiteNotCollecting:       http.StatusConflict,
	billing.CodeWebhookInvalidURL:       http.StatusBadRequest,
	billing.CodeWebhookEndpointNotFound: http.StatusNotFound,
	billing.CodeWebhookEndpointLimit:    http.StatusConflict,
	billing.CodeWebhookEndpointDisabled: http.StatusConflict,
	billing.CodeWebhookDeliveryNotFound: http.StatusNotFound,
	billing.CodeWebhookRetryLimit:       http.StatusConflict,
	billing.CodeInternal:                http.StatusInternalServerError,
	billing.CodeUnavailable:             http.StatusServiceUnavailable,
	billing.CodeMissingToken:            http.StatusUnauthorized,
	billing.CodeInvalidToken:            http.StatusUnauthorized,
	billing.CodeInsufficientScope:       http.StatusForbidden,
	billing.CodeRateLimited:             http.StatusTooManyRequests,
	billing.CodeInvalidAPIVersion:       http.StatusBadRequest,
	billing.CodeUnsupportedMediaType:    http.StatusUnsupportedMediaType,
	billing.CodeMalformedJSON:           http.StatusBadRequest,
	billing.CodeUnknownField:            http.StatusBadRequest,
	billing.CodeBodyTooLarge:            http.StatusRequestEntityTooLarge,
	billing.CodeEndpointNotFound:        http.StatusNotFound,
	billing.CodeMethodNotAllowed:        http.StatusMethodNotAllowed,
	billing.CodeNotAcceptable:           http.StatusNotAcceptable,
}

// errorJSON is one problem in the error envelope.
type errorJSON struct {
	Code           billing.Code `json:"code"`
	DisplayMessage string       `json:"displayMessage"`
	Target         string       `json:"target,omitempty"`
}

// errorEnvelope is the body of every error answer of the API (the token endpoint excepted, which
// answers as RFC 6749 §5.2 says).
type errorEnvelope struct {
	Errors  []errorJSON `json:"errors"`
	TraceID string      `json:"traceId"`
}

// dataEnvelope is the body of every successful /billing/ answer.
type dataEnvelope struct {
	Data       any    `json:"data"`
	NextCursor string `json:"nextCursor,omitempty"`
	TraceID    string `json:"traceId"`
}

const contentTypeJSON = "application/json;charset=UTF-8"

// writeJSON writes v as the JSON body of an answer with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false) // messages quote "<token>"; nothing here is embedded in HTML
	if err := enc.Encode(v); err != nil {
		// Every value written here is made of plain fields; failing to encode one is a bug.
		panic("httpapi: encode response: " + err.Error())
	}
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(status)
	_, _ = w.Write(body.Bytes())
}

// unavailableRetryAfter is the Retry-After of a 503, in seconds: a replica reconnects to the
// database at the next request, so a few seconds is the shortest useful.
const unavailableRetryAfter = "5"

// unreachable reports whether err is the database's being out of reach (Config.Unreachable).
func (a *server) unreachable(err error) bool {
	return a.cfg.Unreachable != nil && a.cfg.Unreachable(err)
}

// writeError answers with the error envelope. err is a coded billing error (or list of them); any
// other error is an internal failure: it is logged with the trace id and answered as a 500 that
// shows nothing of it. A request whose client has gone away, which is why it failed, is answered
// nothing: there is nobody to read it.
func (a *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if ctx := r.Context(); ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return
	}
	traceID := traceIDOf(r.Context())
	errs := billing.AsErrors(err)
	status, known := 0, false
	if len(errs) > 0 {
		status, known = statusOf[errs[0].Code]
	}
	switch {
	case !known && a.unreachable(err):
		a.log.ErrorContext(r.Context(), "database unreachable", "traceId", traceID, "method", billing.Quoted(r.Method),
			"path", r.URL.Path, "error", err)
		status = http.StatusServiceUnavailable
		errs = billing.Errors{billing.Errorf(billing.CodeUnavailable, "",
			"Pyng cannot reach its database to serve this request now. Try again shortly; a batch sent again with its batchReference is answered with its receipt if it was stored.")}
	case !known:
		a.log.ErrorContext(r.Context(), "internal error", "traceId", traceID, "method", billing.Quoted(r.Method),
			"path", r.URL.Path, "error", err)
		status = http.StatusInternalServerError
		errs = billing.Errors{billing.Errorf(billing.CodeInternal, "",
			"Something went wrong on our side. Try again later; if it persists, contact Pyng support with the traceId.")}
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", unavailableRetryAfter)
	}
	body := errorEnvelope{TraceID: traceID}
	for _, e := range errs {
		body.Errors = append(body.Errors, errorJSON{Code: e.Code, DisplayMessage: e.Message, Target: e.Target})
	}
	writeJSON(w, status, body)
}

// notFound is the answer for a path the API does not serve (and the sandbox paths when the
// sandbox is off).
func notFound() error {
	return billing.Errorf(billing.CodeEndpointNotFound, "", "There is no such endpoint. See /openapi.yaml for the endpoints of this API.")
}
