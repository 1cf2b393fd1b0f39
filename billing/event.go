package billing

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// EventType names a kind of event.
type EventType string

// The event types. Every change of state a partner can see writes one, in the transaction of the
// change (package storage), so no change is without its event and no event without its change.
const (
	EventCustomerInvited EventType = "customer.invited"
	EventCustomerLinked  EventType = "customer.linked"
	EventCustomerRevoked EventType = "customer.revoked"
	EventCustomerExpired EventType = "customer.expired"
	EventBatchAccepted   EventType = "batch.accepted"
	EventBatchCompleted  EventType = "batch.completed"
	// EventDebitReturned: a succeeded debit was returned by the customer's bank (a rail whose
	// debits can be, such as BECS).
	EventDebitReturned           EventType = "debit.returned"
	EventWebhookEndpointDisabled EventType = "webhookEndpoint.disabled"
	// EventWebhookTest is sent only to the endpoint a partner tests (the sandbox simulator).
	EventWebhookTest EventType = "webhook.test"
)

// EventTypes lists every event type, in a stable order.
var EventTypes = []EventType{
	EventCustomerInvited, EventCustomerLinked, EventCustomerRevoked, EventCustomerExpired,
	EventBatchAccepted, EventBatchCompleted, EventDebitReturned, EventWebhookEndpointDisabled, EventWebhookTest,
}

// Valid reports whether t is one of EventTypes.
func (t EventType) Valid() bool {
	for _, known := range EventTypes {
		if t == known {
			return true
		}
	}
	return false
}

// Scope is the scope a caller needs, beside ScopeEventsRead, to read events of the type in the
// events list: the events about a webhook endpoint carry the endpoint (its URL, its event types),
// which only a caller that may manage the endpoints reads.
func (t EventType) Scope() Scope {
	if t == EventWebhookEndpointDisabled || t == EventWebhookTest {
		return ScopeWebhooksManage
	}
	return ScopeEventsRead
}

// EventRetention is how long events are kept (and listed) after they were written.
const EventRetention = 30 * 24 * time.Hour

// Event is a change of state as a partner learns of it: from the events list, and as the body
// of a webhook. Body is the event's JSON, made once when the event is written and kept as those
// exact bytes, so the list and every delivery carry the same bytes and a signature over them
// stays valid.
type Event struct {
	ID        string
	Type      EventType
	SiteID    string
	CreatedAt time.Time
	Body      []byte
}

// eventJSON is an event's body: data is the object that GET of the resource answered with at
// that moment (for a batch, without its rows).
type eventJSON struct {
	EventID   string    `json:"eventId"`
	Type      EventType `json:"type"`
	CreatedAt int64     `json:"createdAt"`
	SiteID    string    `json:"siteId"`
	Data      any       `json:"data"`
}

// NewEvent makes an event of the site at `at` with data as its data.
func NewEvent(t EventType, siteID string, at time.Time, data any) (Event, error) {
	e := Event{ID: NewID("evt"), Type: t, SiteID: siteID, CreatedAt: at}
	body, err := json.Marshal(eventJSON{EventID: e.ID, Type: t, CreatedAt: Millis(at), SiteID: siteID, Data: data})
	if err != nil {
		return Event{}, fmt.Errorf("event %s: %w", t, err)
	}
	e.Body = body
	return e, nil
}

// LinkEvent is an event of a customer link, with the link as it stands at `at`. The signup URL,
// a credential, is not part of it (the partner has it from the invitation).
func LinkEvent(t EventType, l Link, at time.Time) (Event, error) {
	return NewEvent(t, l.SiteID, at, ViewLink(l, at))
}

// BatchEvent is an event of a batch, with the batch and its summary.
func BatchEvent(t EventType, b Batch, s BatchSummary, at time.Time) (Event, error) {
	return NewEvent(t, b.SiteID, at, BatchSummaryView{BatchView: ViewBatch(b), Summary: ViewSummary(s)})
}

// RowEvent is an event of a row of a batch, with the row as GET of the batch shows it and the
// batch's reference.
func RowEvent(t EventType, r ReturnedRow, at time.Time) (Event, error) {
	return NewEvent(t, r.SiteID, at, BatchRowView{BatchReference: r.BatchReference, RowView: ViewRow(r.Row)})
}

// EventFilter selects a page of a site's events, oldest first: up to Limit of those written
// after the event After (all when empty) and created after Since, only of Type unless empty.
// Service.Events sets Since to EventRetention ago, so that the list holds what the partner is
// told is kept, whether or not the hourly purge has run.
type EventFilter struct {
	After string
	Type  EventType
	Limit int
	Since time.Time
	// Scopes are the caller's, when it is a partner's API client: the events whose type needs a
	// scope it lacks (EventType.Scope) are left out. Nil: every event.
	Scopes []Scope
}

// shows reports whether the filter's caller may read events of type t.
func (f EventFilter) shows(t EventType) bool {
	return f.Scopes == nil || slices.Contains(f.Scopes, t.Scope())
}

// Hidden are the event types the filter's caller may not read, which the list leaves out.
func (f EventFilter) Hidden() []EventType {
	var hidden []EventType
	for _, t := range EventTypes {
		if !f.shows(t) {
			hidden = append(hidden, t)
		}
	}
	return hidden
}
