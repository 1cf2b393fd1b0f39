package client

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Timestamp is an instant on the wire: a Unix timestamp in milliseconds, UTC. Zero means absent.
type Timestamp int64

// Time is the instant as a time.Time in UTC; the zero time when t is zero.
func (t Timestamp) Time() time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(t)).UTC()
}

// LinkState is the state of a customer link.
type LinkState string

// The states of a customer link.
const (
	LinkInvited LinkState = "invited"
	LinkLinked  LinkState = "linked"
	LinkExpired LinkState = "expired"
	LinkRevoked LinkState = "revoked"
)

// InvitationRequest is an invitation to mint.
type InvitationRequest struct {
	CustomerReference string `json:"customerReference"`
	// Metadata is the partner's own keys and values for the customer (at most 20 keys of up to
	// 40 characters, values up to 500 characters), returned with the customer and in its events.
	// It is for the partner's own identifiers, not for the customer's contact details.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Invitation is a new invitation: the customer's signup link and when it expires.
type Invitation struct {
	CustomerReference string `json:"customerReference"`
	// SignupURL is the URL to deliver to the customer.
	SignupURL string    `json:"signupUrl"`
	ExpiresAt Timestamp `json:"expiresAt"`
	State     LinkState `json:"state"`
}

// RevokedBy says who revoked a link.
type RevokedBy string

// Who revokes a link.
const (
	RevokedByCustomer RevokedBy = "customer"
	RevokedByPartner  RevokedBy = "partner"
	// RevokedByBank: the customer's bank returned a debit made under the link for a reason that
	// ends the authority (the account closed or not found, the customer deceased).
	RevokedByBank RevokedBy = "bank"
)

// Link is a customer's link. LinkedAt is set once the customer signed up, RevokedAt and RevokedBy
// once revoked, SignupURL only while invited.
type Link struct {
	CustomerReference string    `json:"customerReference"`
	State             LinkState `json:"state"`
	CreatedAt         Timestamp `json:"createdAt"`
	ExpiresAt         Timestamp `json:"expiresAt"`
	LinkedAt          Timestamp `json:"linkedAt,omitempty"`
	RevokedAt         Timestamp `json:"revokedAt,omitempty"`
	RevokedBy         RevokedBy `json:"revokedBy,omitempty"`
	SignupURL         string    `json:"signupUrl,omitempty"`
	// Metadata is the partner's own, as given with the invitation.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// BatchState is the state of a batch.
type BatchState string

// The states of a batch.
const (
	BatchAccepted   BatchState = "accepted"
	BatchInProgress BatchState = "inProgress"
	BatchCompleted  BatchState = "completed"
)

// RowState is the state of a row of a batch.
type RowState string

// The states of a row.
const (
	RowPending    RowState = "pending"
	RowInProgress RowState = "inProgress"
	RowSucceeded  RowState = "succeeded"
	RowFailed     RowState = "failed"
)

// FailureReason says why a row failed.
type FailureReason string

// The reasons a row fails.
const (
	FailureCustomerNotActive FailureReason = "customerNotActive"
	FailureInsufficientFunds FailureReason = "insufficientFunds"
	FailureAccountClosed     FailureReason = "accountClosed"
	FailureExpired           FailureReason = "expired"
)

// BatchRequest is a batch submission: 1 to 1000 debits.
type BatchRequest struct {
	// BatchReference is the partner's identifier of the batch, unique within the site for 90
	// days; the submission is idempotent on it.
	BatchReference string       `json:"batchReference"`
	Rows           []RowRequest `json:"rows"`
}

// RowRequest is one debit of a submission. Amount is in cents.
type RowRequest struct {
	RowReference      string `json:"rowReference"`
	CustomerReference string `json:"customerReference"`
	Amount            int64  `json:"amount"`
}

// BatchReceipt is the receipt of a submission.
type BatchReceipt struct {
	BatchReference string     `json:"batchReference"`
	State          BatchState `json:"state"`
	RowCount       int        `json:"rowCount"`
	TotalAmount    int64      `json:"totalAmount"`
	SubmittedAt    Timestamp  `json:"submittedAt"`
	// Replayed says that the answer replays the receipt of an earlier identical submission
	// (Idempotent-Replayed: true). That submission may be this call's own: when the server
	// accepted the batch but its answer was lost (a 5xx of a gateway, a broken connection), the
	// client sends it again and gets the replay.
	Replayed bool `json:"-"`
}

// Batch is a batch as it stands, without its rows, as lists give it.
type Batch struct {
	BatchReference string     `json:"batchReference"`
	State          BatchState `json:"state"`
	RowCount       int        `json:"rowCount"`
	TotalAmount    int64      `json:"totalAmount"`
	SubmittedAt    Timestamp  `json:"submittedAt"`
	CompletedAt    Timestamp  `json:"completedAt,omitempty"`
}

// BatchWithSummary is a batch with the totals of its rows in each state: the data of the batch.*
// events.
type BatchWithSummary struct {
	Batch
	Summary BatchSummary `json:"summary"`
}

// BatchDetail is a batch with the totals of its rows in each state and its rows.
type BatchDetail struct {
	BatchWithSummary
	Rows []Row `json:"rows"`
}

// BatchSummary is the number and amount of a batch's rows in each state.
type BatchSummary struct {
	Pending    StateTotal `json:"pending"`
	InProgress StateTotal `json:"inProgress"`
	Succeeded  StateTotal `json:"succeeded"`
	Failed     StateTotal `json:"failed"`
}

// StateTotal is a number of rows and the sum of their amounts, in cents.
type StateTotal struct {
	Count  int   `json:"count"`
	Amount int64 `json:"amount"`
}

// ReturnReason says why the customer's bank returned a debit that had succeeded (on the BECS
// rail, for a few business days after it succeeded).
type ReturnReason string

// The reasons a bank returns a debit. Only ReturnReferToCustomer is retryable.
const (
	ReturnInvalidBSB         ReturnReason = "invalidBsb"
	ReturnPaymentStopped     ReturnReason = "paymentStopped"
	ReturnAccountClosed      ReturnReason = "accountClosed"
	ReturnCustomerDeceased   ReturnReason = "customerDeceased"
	ReturnInvalidAccount     ReturnReason = "invalidAccount"
	ReturnReferToCustomer    ReturnReason = "referToCustomer"
	ReturnDeleted            ReturnReason = "deleted"
	ReturnInvalidUserID      ReturnReason = "invalidUserId"
	ReturnTechnicallyInvalid ReturnReason = "technicallyInvalid"
)

// Row is one debit of a batch and its outcome. FailureReason is set when the row failed;
// OutcomeAt once it succeeded or failed; FileID once a rail that sends files (BECS) put it in
// one; ReturnedAt and ReturnReason when the customer's bank returned it after it succeeded.
// Retryable, set when the row failed or was returned, says whether the same debit may succeed
// if submitted again.
type Row struct {
	RowReference      string        `json:"rowReference"`
	CustomerReference string        `json:"customerReference"`
	Amount            int64         `json:"amount"`
	State             RowState      `json:"state"`
	FailureReason     FailureReason `json:"failureReason,omitempty"`
	Retryable         *bool         `json:"retryable,omitempty"`
	OutcomeAt         Timestamp     `json:"outcomeAt,omitempty"`
	FileID            string        `json:"fileId,omitempty"`
	ReturnedAt        Timestamp     `json:"returnedAt,omitempty"`
	ReturnReason      ReturnReason  `json:"returnReason,omitempty"`
}

// IsRetryable reports whether the row failed or was returned and the same debit may succeed if
// submitted again.
func (r Row) IsRetryable() bool { return r.Retryable != nil && *r.Retryable }

// RowEvent is the data of a debit.* event: the row as GET of its batch shows it, and the
// batch's reference.
type RowEvent struct {
	BatchReference string `json:"batchReference"`
	Row
}

// EventType names a kind of event.
type EventType string

// The event types.
const (
	EventCustomerInvited         EventType = "customer.invited"
	EventCustomerLinked          EventType = "customer.linked"
	EventCustomerRevoked         EventType = "customer.revoked"
	EventCustomerExpired         EventType = "customer.expired"
	EventBatchAccepted           EventType = "batch.accepted"
	EventBatchCompleted          EventType = "batch.completed"
	EventWebhookEndpointDisabled EventType = "webhookEndpoint.disabled"
	// EventDebitReturned is a succeeded debit returned by the customer's bank (BECS rail).
	EventDebitReturned EventType = "debit.returned"
	// EventWebhookTest is the sandbox's test of an endpoint, sent to that endpoint alone.
	EventWebhookTest EventType = "webhook.test"
	// EventAll subscribes an endpoint to every type, including types added later.
	EventAll EventType = "*"
)

// EventTypes lists every event type above but EventAll. Not all of them can be subscribed to:
// EventWebhookTest is sent only to the endpoint tested, and an endpoint's EventTypes holding it
// is refused (400 CodeInvalidField).
func EventTypes() []EventType {
	return []EventType{
		EventCustomerInvited, EventCustomerLinked, EventCustomerRevoked, EventCustomerExpired,
		EventBatchAccepted, EventBatchCompleted, EventDebitReturned, EventWebhookEndpointDisabled, EventWebhookTest,
	}
}

// Event is a change of state, as the events list gives it and as webhooks deliver it. Data is
// the resource as it stood then; LinkData, BatchData and EndpointData decode it by Type.
type Event struct {
	EventID   string          `json:"eventId"`
	Type      EventType       `json:"type"`
	CreatedAt Timestamp       `json:"createdAt"`
	SiteID    string          `json:"siteId"`
	Data      json.RawMessage `json:"data"`
	// Raw is the event as the server sent it: byte for byte the body of its webhook deliveries.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the event and keeps its bytes in Raw.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*e = Event(p)
	e.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// LinkData is the data of a customer.* event: the link (without its signup URL).
func (e Event) LinkData() (*Link, error) {
	return eventData[Link](e, "customer.")
}

// BatchData is the data of a batch.* event: the batch and its summary, without rows.
func (e Event) BatchData() (*BatchWithSummary, error) {
	return eventData[BatchWithSummary](e, "batch.")
}

// RowData is the data of a debit.* event: the row and its batch's reference.
func (e Event) RowData() (*RowEvent, error) {
	return eventData[RowEvent](e, "debit.")
}

// EndpointData is the data of a webhookEndpoint.disabled or webhook.test event: the endpoint.
func (e Event) EndpointData() (*WebhookEndpoint, error) {
	return eventData[WebhookEndpoint](e, "webhook")
}

func eventData[T any](e Event, prefix string) (*T, error) {
	if !strings.HasPrefix(string(e.Type), prefix) {
		return nil, fmt.Errorf("pyng client: a %s event does not carry a %T", e.Type, *new(T))
	}
	var v T
	if err := json.Unmarshal(e.Data, &v); err != nil {
		return nil, fmt.Errorf("pyng client: the data of %s event %s: %w", e.Type, e.EventID, err)
	}
	return &v, nil
}

// EndpointState is the state of a webhook endpoint.
type EndpointState string

// The states of a webhook endpoint.
const (
	EndpointEnabled  EndpointState = "enabled"
	EndpointDisabled EndpointState = "disabled"
)

// DisabledReason says why an endpoint is disabled.
type DisabledReason string

// The reasons an endpoint is disabled.
const (
	DisabledByPartner DisabledReason = "partner" // the partner disabled it
	DisabledFailing   DisabledReason = "failing" // every delivery failed for five days
)

// WebhookEndpoint is a URL the site's events are sent to. DisabledReason is set while it is
// disabled.
type WebhookEndpoint struct {
	EndpointID     string         `json:"endpointId"`
	URL            string         `json:"url"`
	EventTypes     []EventType    `json:"eventTypes"`
	CreatedAt      Timestamp      `json:"createdAt"`
	State          EndpointState  `json:"state"`
	DisabledReason DisabledReason `json:"disabledReason,omitempty"`
}

// WebhookEndpointWithSecret is an endpoint with its signing secret, given only when the endpoint
// is made and when its secret is rotated.
type WebhookEndpointWithSecret struct {
	WebhookEndpoint
	// Secret (whsec_...) verifies the endpoint's deliveries: pass it as it is to a Standard
	// Webhooks library.
	Secret string `json:"secret"`
}

// WebhookEndpointRequest makes an endpoint.
type WebhookEndpointRequest struct {
	// URL receives the events, by POST: https (also http in a sandbox on the developer's machine).
	URL string `json:"url"`
	// EventTypes are the types sent to it; every type (EventAll) when nil. An empty list that is
	// not nil is sent, and refused: a filter that ends up empty subscribes to nothing rather than
	// to everything.
	EventTypes []EventType `json:"eventTypes,omitzero"`
}

// WebhookEndpointUpdate changes an endpoint: only the fields set change (EventTypes when not
// nil; an empty list is sent, and refused).
type WebhookEndpointUpdate struct {
	URL        string        `json:"url,omitempty"`
	EventTypes []EventType   `json:"eventTypes,omitzero"`
	State      EndpointState `json:"state,omitempty"`
}

// DeliveryState is where a delivery stands.
type DeliveryState string

// The states of a delivery.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliverySucceeded DeliveryState = "succeeded"
	DeliveryFailed    DeliveryState = "failed"
)

// Delivery is the sending of one event to one endpoint, over one or more attempts.
type Delivery struct {
	DeliveryID string            `json:"deliveryId"`
	EventID    string            `json:"eventId"`
	EventType  EventType         `json:"eventType"`
	State      DeliveryState     `json:"state"`
	CreatedAt  Timestamp         `json:"createdAt"`
	Attempts   []DeliveryAttempt `json:"attempts"`
}

// DeliveryAttempt is one request of a delivery: Status when the endpoint answered, Error when
// it did not answer 2xx.
type DeliveryAttempt struct {
	AttemptedAt Timestamp `json:"attemptedAt"`
	Status      int       `json:"status,omitempty"`
	Error       string    `json:"error,omitempty"`
	DurationMs  int64     `json:"durationMs"`
}

// Duration is how long the attempt took.
func (a DeliveryAttempt) Duration() time.Duration {
	return time.Duration(a.DurationMs) * time.Millisecond
}
