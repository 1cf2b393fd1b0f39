package billing

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Code identifies an error on the wire. Every code is a URN under codePrefix.
type Code string

const codePrefix = "urn:pyng:platform:billing:error:"

// Every error code of the server, in the domain and in the transport: this is the one list. Each
// has its HTTP status in the API's table and its entry in the OpenAPI document; tests check both.
const (
	// The rules of the domain.
	CodeSiteNotFound           Code = codePrefix + "site:not-found"
	CodeLinkAlreadyExists      Code = codePrefix + "customer-link:already-exists"
	CodeLinkInvalidReference   Code = codePrefix + "customer-link:invalid-reference"
	CodeLinkNotFound           Code = codePrefix + "customer-link:not-found"
	CodeLinkInvalidState       Code = codePrefix + "customer-link:invalid-state"
	CodeLinkNoActiveInvitation Code = codePrefix + "customer-link:no-active-invitation"
	CodeCustomerInvalidField   Code = codePrefix + "customer:invalid-field"
	// An invalid field of a batch submission; its target names the place, as rows[17].amount.
	CodeBatchInvalidField      Code = codePrefix + "batch:invalid-field"
	CodeBatchReferenceConflict Code = codePrefix + "batch:reference-conflict"
	CodeBatchNotFound          Code = codePrefix + "batch:not-found"
	// A batch submitted to a site that collects no debits: outside the sandbox, one still on the
	// sandbox rail, which moves no money.
	CodeSiteNotCollecting Code = codePrefix + "site:not-collecting"
	// A sandbox simulator asked of a batch of a rail that moves money (BECS).
	CodeBatchNotOnSandboxRail   Code = codePrefix + "batch:not-on-sandbox-rail"
	CodeInvalidField            Code = codePrefix + "request:invalid-field"
	CodeWebhookInvalidURL       Code = codePrefix + "webhook-endpoint:invalid-url"
	CodeWebhookEndpointNotFound Code = codePrefix + "webhook-endpoint:not-found"
	CodeWebhookEndpointLimit    Code = codePrefix + "webhook-endpoint:limit-reached"
	CodeWebhookEndpointDisabled Code = codePrefix + "webhook-endpoint:disabled"
	CodeWebhookDeliveryNotFound Code = codePrefix + "webhook-delivery:not-found"
	CodeWebhookRetryLimit       Code = codePrefix + "webhook-delivery:retry-limit"
	CodeInternal                Code = codePrefix + "internal"
	// The database could not be reached: the request may succeed if sent again shortly.
	CodeUnavailable Code = codePrefix + "unavailable"

	// The request itself rather than what it asks for: authentication, headers, the body's form,
	// the route.
	CodeMissingToken         Code = codePrefix + "auth:missing-token"
	CodeInvalidToken         Code = codePrefix + "auth:invalid-token"
	CodeInsufficientScope    Code = codePrefix + "auth:insufficient-scope"
	CodeRateLimited          Code = codePrefix + "request:rate-limited"
	CodeInvalidAPIVersion    Code = codePrefix + "request:invalid-api-version"
	CodeUnsupportedMediaType Code = codePrefix + "request:unsupported-media-type"
	CodeMalformedJSON        Code = codePrefix + "request:malformed-json"
	CodeUnknownField         Code = codePrefix + "request:unknown-field"
	CodeBodyTooLarge         Code = codePrefix + "request:body-too-large"
	CodeEndpointNotFound     Code = codePrefix + "request:not-found"
	CodeMethodNotAllowed     Code = codePrefix + "request:method-not-allowed"
	CodeNotAcceptable        Code = codePrefix + "request:not-acceptable"
)

var codes = []Code{
	CodeSiteNotFound, CodeSiteNotCollecting, CodeLinkAlreadyExists, CodeLinkInvalidReference, CodeLinkNotFound,
	CodeLinkInvalidState, CodeLinkNoActiveInvitation, CodeCustomerInvalidField,
	CodeBatchInvalidField, CodeBatchReferenceConflict, CodeBatchNotFound, CodeBatchNotOnSandboxRail, CodeInvalidField,
	CodeWebhookInvalidURL, CodeWebhookEndpointNotFound, CodeWebhookEndpointLimit,
	CodeWebhookEndpointDisabled, CodeWebhookDeliveryNotFound, CodeWebhookRetryLimit,
	CodeInternal, CodeUnavailable,
	CodeMissingToken, CodeInvalidToken, CodeInsufficientScope, CodeRateLimited,
	CodeInvalidAPIVersion, CodeUnsupportedMediaType, CodeMalformedJSON, CodeUnknownField,
	CodeBodyTooLarge, CodeEndpointNotFound, CodeMethodNotAllowed, CodeNotAcceptable,
}

// Codes lists every error code, for the tests that check each is answered and documented.
func Codes() []Code { return slices.Clone(codes) }

// Error is a problem a caller can act on: a code, a message fit to show a person, and the field
// or parameter it concerns, if any.
type Error struct {
	Code    Code
	Message string
	Target  string
}

func (e *Error) Error() string {
	if e.Target != "" {
		return string(e.Code) + " (" + e.Target + "): " + e.Message
	}
	return string(e.Code) + ": " + e.Message
}

// Errorf is a shorthand for a new *Error.
func Errorf(code Code, target, message string) *Error {
	return &Error{Code: code, Target: target, Message: message}
}

// Errors is a list of problems reported together, for validation that reports every problem at
// once. It is never empty when returned as an error.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Err returns es as an error, or nil when it holds no problem.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// AsErrors returns the caller-facing problems err carries (one for *Error, all for Errors), or
// nil when err is not such an error (an internal failure).
func AsErrors(err error) Errors {
	var list Errors
	if errors.As(err, &list) {
		return list
	}
	var one *Error
	if errors.As(err, &one) {
		return Errors{one}
	}
	return nil
}

// HasCode reports whether err carries a problem with code.
func HasCode(err error, code Code) bool {
	return slices.ContainsFunc(AsErrors(err), func(e *Error) bool { return e.Code == code })
}

// Sentinel errors a Store returns; the Service turns them into coded errors with messages.
var (
	// ErrNotFound: no row matched.
	ErrNotFound = errors.New("not found")
	// ErrDuplicate: a uniqueness rule of the database refused the write.
	ErrDuplicate = errors.New("duplicate")
	// ErrStale: a conditional update matched no row because the state had moved on.
	ErrStale = errors.New("state changed")
)

// ErrInvalidClient is the one answer for an unknown client, a wrong secret and a revoked client.
var ErrInvalidClient = errors.New("invalid client")

// siteNotFound is one answer for a site that does not exist and a site of another organisation,
// so that nobody can probe for other organisations' sites.
func siteNotFound() *Error {
	return Errorf(CodeSiteNotFound, "siteId", "No site with this siteId exists for your organisation.")
}

func linkNotFound() *Error {
	return Errorf(CodeLinkNotFound, "customerReference", "No customer link exists for this customerReference.")
}

// linkIDNotFound is the answer for a link id that a token named but that no link has.
func linkIDNotFound() *Error {
	return Errorf(CodeLinkNotFound, "", "No customer link has this id.")
}

func batchNotFound() *Error {
	return Errorf(CodeBatchNotFound, "batchReference", "No batch with this batchReference exists for this site.")
}

// referenceMessage states the rule of every partner reference (ValidReference) for field.
func referenceMessage(field string) string {
	return field + " must be 1–64 characters and contain only alphanumeric characters, hyphens, and underscores."
}

func invalidCustomerReference() *Error {
	return Errorf(CodeLinkInvalidReference, "customerReference", referenceMessage("customerReference"))
}

func invalidPageSize() *Error {
	return Errorf(CodeInvalidField, "limit", fmt.Sprintf("limit must be an integer from 1 to %d.", MaxPageSize))
}

func invalidLinkState() *Error {
	return Errorf(CodeInvalidField, "state", "state must be one of invited, linked, expired, revoked.")
}

func invalidRowState() *Error {
	return Errorf(CodeInvalidField, "rowState", "rowState must be one of pending, inProgress, succeeded, failed.")
}

func unknownOrganisation() *Error {
	return Errorf(CodeInvalidField, "organisationId", "No organisation with this id exists.")
}

func unknownClient() *Error {
	return Errorf(CodeInvalidField, "clientId", "No client with this id exists.")
}

// MaxQuoted bounds how much of a name or value sent by a client an error quotes: a longer one is
// cut, and ends with an ellipsis, so that a long input cannot make a long answer.
const MaxQuoted = 64

// Quoted is s as an error quotes it: cut, at a character, when longer than MaxQuoted bytes.
func Quoted(s string) string {
	if len(s) <= MaxQuoted {
		return s
	}
	cut := MaxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
