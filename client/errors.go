package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Code identifies an error of the API; every code is a URN under
// urn:pyng:platform:billing:error:. A Code is an error, so that
//
//	errors.Is(err, client.CodeBatchNotFound)
//
// reports whether an answer carried it.
type Code string

func (c Code) Error() string { return string(c) }

const codePrefix = "urn:pyng:platform:billing:error:"

// The codes of the API, as its document lists them.
const (
	CodeMissingToken         Code = codePrefix + "auth:missing-token"
	CodeInvalidToken         Code = codePrefix + "auth:invalid-token"
	CodeInsufficientScope    Code = codePrefix + "auth:insufficient-scope"
	CodeRateLimited          Code = codePrefix + "request:rate-limited"
	CodeInvalidAPIVersion    Code = codePrefix + "request:invalid-api-version"
	CodeUnsupportedMediaType Code = codePrefix + "request:unsupported-media-type"
	CodeMalformedJSON        Code = codePrefix + "request:malformed-json"
	CodeUnknownField         Code = codePrefix + "request:unknown-field"
	CodeInvalidField         Code = codePrefix + "request:invalid-field"
	CodeBodyTooLarge         Code = codePrefix + "request:body-too-large"
	CodeEndpointNotFound     Code = codePrefix + "request:not-found"
	CodeMethodNotAllowed     Code = codePrefix + "request:method-not-allowed"
	CodeNotAcceptable        Code = codePrefix + "request:not-acceptable"
	CodeSiteNotFound         Code = codePrefix + "site:not-found"
	// CodeSiteNotCollecting refuses a batch to a site that collects no debits yet: Pyng has not
	// put it on a payment rail.
	CodeSiteNotCollecting      Code = codePrefix + "site:not-collecting"
	CodeLinkInvalidReference   Code = codePrefix + "customer-link:invalid-reference"
	CodeLinkAlreadyExists      Code = codePrefix + "customer-link:already-exists"
	CodeLinkNotFound           Code = codePrefix + "customer-link:not-found"
	CodeLinkInvalidState       Code = codePrefix + "customer-link:invalid-state"
	CodeLinkNoActiveInvitation Code = codePrefix + "customer-link:no-active-invitation"
	CodeCustomerInvalidField   Code = codePrefix + "customer:invalid-field"
	CodeBatchInvalidField      Code = codePrefix + "batch:invalid-field"
	CodeBatchReferenceConflict Code = codePrefix + "batch:reference-conflict"
	CodeBatchNotFound          Code = codePrefix + "batch:not-found"
	CodeBatchNotOnSandboxRail  Code = codePrefix + "batch:not-on-sandbox-rail"
	CodeInternal               Code = codePrefix + "internal"
	// CodeUnavailable is a 503: Pyng's database could not be reached (or a batch's site was being
	// moved between payment rails); the request may succeed if sent again shortly.
	CodeUnavailable             Code = codePrefix + "unavailable"
	CodeWebhookInvalidURL       Code = codePrefix + "webhook-endpoint:invalid-url"
	CodeWebhookEndpointNotFound Code = codePrefix + "webhook-endpoint:not-found"
	CodeWebhookEndpointLimit    Code = codePrefix + "webhook-endpoint:limit-reached"
	CodeWebhookEndpointDisabled Code = codePrefix + "webhook-endpoint:disabled"
	CodeWebhookDeliveryNotFound Code = codePrefix + "webhook-delivery:not-found"
	CodeWebhookRetryLimit       Code = codePrefix + "webhook-delivery:retry-limit"
)

// Codes lists every code above.
func Codes() []Code {
	return []Code{
		CodeMissingToken, CodeInvalidToken, CodeInsufficientScope, CodeRateLimited,
		CodeInvalidAPIVersion, CodeUnsupportedMediaType, CodeMalformedJSON, CodeUnknownField,
		CodeInvalidField, CodeBodyTooLarge, CodeEndpointNotFound, CodeMethodNotAllowed,
		CodeNotAcceptable, CodeSiteNotFound, CodeSiteNotCollecting, CodeLinkInvalidReference, CodeLinkAlreadyExists,
		CodeLinkNotFound, CodeLinkInvalidState, CodeLinkNoActiveInvitation,
		CodeCustomerInvalidField, CodeBatchInvalidField, CodeBatchReferenceConflict,
		CodeBatchNotFound, CodeBatchNotOnSandboxRail, CodeInternal, CodeUnavailable, CodeWebhookInvalidURL, CodeWebhookEndpointNotFound,
		CodeWebhookEndpointLimit, CodeWebhookEndpointDisabled, CodeWebhookDeliveryNotFound, CodeWebhookRetryLimit,
	}
}

// Problem is one error of an error answer.
type Problem struct {
	Code Code `json:"code"`
	// Target names the field, parameter or header concerned (rows[17].amount); empty when none.
	Target string `json:"target,omitempty"`
	// DisplayMessage is a message fit to show a person.
	DisplayMessage string `json:"displayMessage"`
}

// Error is an error answer of the API ({errors, traceId}). Code, Target and Message are those of
// its first problem; a refused batch lists every problem of its body in Problems. An answer of
// the token endpoint, when the client obtains an access token, is an Error too: its Code is the
// OAuth 2.0 error (invalid_client, slow_down, ...), its Message the error_description.
type Error struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	Code       Code
	Target     string
	Message    string
	// TraceID identifies the request at Pyng: quote it to Pyng support.
	TraceID  string
	Problems []Problem
	// RetryAfter is the wait the answer asked for (Retry-After), if any.
	RetryAfter time.Duration
	// beforeRequest says that the answer is the token endpoint's: the request itself was not
	// sent, so sending it again is safe whatever it is.
	beforeRequest bool
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pyng: %d", e.StatusCode)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", strings.TrimPrefix(string(e.Code), codePrefix))
	}
	if e.Target != "" {
		fmt.Fprintf(&b, " (%s)", e.Target)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if n := len(e.Problems); n > 1 {
		fmt.Fprintf(&b, " (and %d more problems)", n-1)
	}
	if e.TraceID != "" {
		fmt.Fprintf(&b, " [traceId %s]", e.TraceID)
	}
	return b.String()
}

// Is reports whether target is a Code that one of the problems carries, or ErrNotSent for the
// token endpoint's answer.
func (e *Error) Is(target error) bool {
	if target == ErrNotSent {
		return e.beforeRequest
	}
	code, ok := target.(Code)
	return ok && slices.ContainsFunc(e.Problems, func(p Problem) bool { return p.Code == code })
}

// Temporary reports whether the same request may succeed if sent again later: a 429 (refused
// before the server acted on it), or a 500, 502, 503 or 504. Whether sending it again is safe is
// the caller's to know: a batch is (the same batchReference is answered with its receipt), an
// invitation may have been minted. The client has retried such answers already where that is
// safe (Config.MaxRetries).
func (e *Error) Temporary() bool {
	return e.retryable(true)
}

// Temporary reports whether err, the error of a call, may pass if the call is made again later,
// after the client's own retries (Config.MaxRetries): an *Error that is Temporary (a 429, or a
// 500, 502, 503 or 504), or no answer at all (ErrNoAnswer, a net.Error), or no access token for
// want of an answer of the token endpoint (ErrNotSent). Not a refusal: a 4xx other than 429,
// the token endpoint's included (which is ErrNotSent too: it will refuse again). A call cut
// short by the end of its context got no answer either: check the context first. Whether making
// the call again is safe is the caller's to know, as for Error.Temporary; AwaitBatch reads the
// batch again through these.
func Temporary(err error) bool {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.Temporary()
	}
	var netErr net.Error
	return errors.Is(err, ErrNoAnswer) || errors.Is(err, ErrNotSent) || errors.As(err, &netErr)
}

// retryable reports whether the request may be sent again after this answer: a 429 always (the
// server refused it before acting on it), a 5xx when sending the request again is safe.
func (e *Error) retryable(safe bool) bool {
	switch e.StatusCode {
	case http.StatusTooManyRequests:
		return true
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return safe || e.beforeRequest
	}
	return false
}

// tokenError is the error of obtaining an access token: an *Error for an answer of the token
// endpoint ({error, error_description}, RFC 6749 §5.2), whose Code is the OAuth 2.0 error code
// (invalid_client, slow_down, ...), with its status, traceId and Retry-After.
func tokenError(err error, now time.Time) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return &noAnswerError{err: fmt.Errorf("obtain an access token: %w", err), beforeRequest: true}
	}
	e := errorOf(re.Response, re.Body, now) // its status, traceId and Retry-After
	e.Code, e.Message, e.beforeRequest = Code(re.ErrorCode), re.ErrorDescription, true
	if e.Message == "" {
		e.Message = "the token endpoint answered " + http.StatusText(re.Response.StatusCode)
	}
	if e.Code != "" { // so that errors.Is(err, client.Code("invalid_client")) holds, as for the API's codes
		e.Problems = []Problem{{Code: e.Code, DisplayMessage: e.Message}}
	}
	return e
}

// errorOf reads an error answer. An answer that is not the API's envelope (a proxy's page) is an
// Error without problems.
func errorOf(resp *http.Response, body []byte, now time.Time) *Error {
	e := &Error{StatusCode: resp.StatusCode, TraceID: resp.Header.Get("Pyng-Trace-Id"), RetryAfter: retryAfter(resp.Header, now)}
	var envelope struct {
		Errors  []Problem `json:"errors"`
		TraceID string    `json:"traceId"`
	}
	if json.Unmarshal(body, &envelope) == nil && len(envelope.Errors) > 0 {
		e.Problems = envelope.Errors
		e.Code, e.Target, e.Message = envelope.Errors[0].Code, envelope.Errors[0].Target, envelope.Errors[0].DisplayMessage
		if envelope.TraceID != "" {
			e.TraceID = envelope.TraceID
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// ErrOutcomeUnknown is what AwaitBatch's error is (errors.Is) when the wait ended without the
// batch's outcome: a read of it was refused, or the context ended. The batch was accepted and
// executes all the same: read it again later (GetBatch, or the batch.completed event), and do
// not submit its rows again under another batchReference, which would debit its customers twice.
var ErrOutcomeUnknown = errors.New("pyng client: the batch was accepted, but its outcome is unknown")

// outcomeUnknownError ends AwaitBatch without the batch's outcome: ErrOutcomeUnknown, and its
// cause for errors.Is and errors.As.
type outcomeUnknownError struct {
	batchReference string
	cause          error // the refusal of a read, or the context's error
	// lastFailure is the failure of the last read when the context ended after it: told, not
	// wrapped, as it did not end the wait.
	lastFailure error
}

func (e *outcomeUnknownError) Error() string {
	msg := fmt.Sprintf("pyng client: batch %s was accepted and executes, but its outcome is unknown: the wait for it ended: %v",
		e.batchReference, e.cause)
	if e.lastFailure != nil {
		msg += fmt.Sprintf(" (the last read failed: %v)", e.lastFailure)
	}
	return msg
}

func (e *outcomeUnknownError) Is(target error) bool { return target == ErrOutcomeUnknown }
func (e *outcomeUnknownError) Unwrap() error        { return e.cause }
