package client

import (
	"context"
	"net/http"
)

// Response is what a call's answer says beside its data, recorded for the calls made with a
// context from [WithResponse]: the answer a call ended with, after any retries (an error answer
// too, whose [*Error] carries the same TraceID), or none (the zero Response) when its last
// attempt got no answer. A Response is for one call at a time.
type Response struct {
	StatusCode int
	// TraceID identifies the request at Pyng (the Pyng-Trace-Id header): log it beside what the
	// call did, and quote it to Pyng support.
	TraceID string
	// Header is the answer's header (Location, Idempotent-Replayed, Retry-After...).
	Header http.Header
}

type responseKey struct{}

// WithResponse returns a context that makes each call made with it record its answer in r (as
// net/http/httptrace does with a ClientTrace): the way to read a successful answer's traceId.
//
//	var resp client.Response
//	inv, err := site.InviteCustomer(client.WithResponse(ctx, &resp), "ACME-001")
//	log.Printf("invited ACME-001 (traceId %s)", resp.TraceID)
func WithResponse(ctx context.Context, r *Response) context.Context {
	return context.WithValue(ctx, responseKey{}, r)
}

// recordResponse records the answer of an attempt (nil: none) for the call whose context asked
// for it, replacing an earlier attempt's.
func recordResponse(ctx context.Context, resp *http.Response) {
	r, ok := ctx.Value(responseKey{}).(*Response)
	switch {
	case !ok || r == nil:
	case resp == nil:
		*r = Response{}
	default:
		*r = Response{StatusCode: resp.StatusCode, TraceID: resp.Header.Get("Pyng-Trace-Id"), Header: resp.Header.Clone()}
	}
}
