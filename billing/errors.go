package billing

import (
	"errors"
	"strings"
)

// Code identifies an error on the wire. Every code is a URN under codePrefix.
type Code string

const codePrefix = "urn:pyng:platform:billing:error:"

// Domain error codes. Transport-level codes (malformed JSON, authentication, ...) live beside the
// transport, but follow the same scheme.
const (
	CodeSiteNotFound           Code = codePrefix + "site:not-found"
	CodeLinkAlreadyExists      Code = codePrefix + "customer-link:already-exists"
	CodeLinkInvalidReference   Code = codePrefix + "customer-link:invalid-reference"
	CodeLinkNotFound           Code = codePrefix + "customer-link:not-found"
	CodeLinkInvalidState       Code = codePrefix + "customer-link:invalid-state"
	CodeLinkNoActiveInvitation Code = codePrefix + "customer-link:no-active-invitation"
	CodeInvalidField           Code = codePrefix + "request:invalid-field"
	CodeInternal               Code = codePrefix + "internal"
)

// CodeOf builds a code from its suffix, for packages that define their own codes.
func CodeOf(suffix string) Code { return Code(codePrefix + suffix) }

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

// Sentinel errors a Store returns; the Service turns them into coded errors with messages.
var (
	// ErrNotFound: no row matched.
	ErrNotFound = errors.New("not found")
	// ErrDuplicate: a uniqueness rule of the database refused the write.
	ErrDuplicate = errors.New("duplicate")
	// ErrStale: a conditional update matched no row because the state had moved on.
	ErrStale = errors.New("state changed")
)
