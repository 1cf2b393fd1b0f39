package billing

import (
	"context"
	"time"

	"github.com/pyng/receivables/ddr"
)

// Store persists the domain. It is implemented once, by package storage over each engine's
// driver (package sqlite, package postgres), and checked on every engine by one behaviour suite
// (package storetest). Methods
// return ErrNotFound, ErrDuplicate or ErrStale (wrapped or not) for the outcomes the Service acts
// on; any other error is an internal failure.
type Store interface {
	CreateOrganisation(ctx context.Context, o Organisation) error
	CountOrganisations(ctx context.Context) (int, error)
	// CreateSite returns ErrNotFound when the organisation does not exist.
	CreateSite(ctx context.Context, s Site) error
	GetSite(ctx context.Context, id string) (Site, error)
	// SetSiteRail names the rail the site's debits go to; ErrNotFound when there is no such site.
	SetSiteRail(ctx context.Context, id, rail string) error
	// UpdateSiteDebitUser sets the site's debit user and time zone; ErrNotFound when there is no
	// such site.
	UpdateSiteDebitUser(ctx context.Context, id string, d DebitUser, timeZone string) error
	// CreateClient returns ErrNotFound when the organisation does not exist.
	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	// RevokeClient sets RevokedAt once; revoking a revoked client keeps the first time.
	RevokeClient(ctx context.Context, id string, at time.Time) (Client, error)
	// EnsureSigningKey stores candidate unless a signing key exists already, and returns the
	// stored key, so that replicas starting together agree on one key.
	EnsureSigningKey(ctx context.Context, candidate SigningKey) (SigningKey, error)

	// CreateLink inserts l (state invited) as the current link of its (site, customerReference).
	// In the same transaction it marks invitations of the pair that expired by l.CreatedAt as
	// expired and the pair's earlier links as no longer current. It returns ErrDuplicate while the
	// pair has an active link (invited and unexpired, or linked); the database enforces this, so
	// of two concurrent calls exactly one succeeds.
	CreateLink(ctx context.Context, l Link) error
	// GetCurrentLink returns the newest link of the pair, or ErrNotFound.
	GetCurrentLink(ctx context.Context, siteID, customerReference string) (Link, error)
	GetLink(ctx context.Context, id string) (Link, error)
	// ListLinks returns up to f.Limit current links of the site ordered by customerReference,
	// those after f.After, with f.State (if set) compared with each link's state at now. The
	// links are without their customer's details: a list is the partner's, which never sees them.
	ListLinks(ctx context.Context, siteID string, f LinkFilter, now time.Time) ([]Link, error)
	// LinkCustomer moves an invited link that has not expired at `at` to linked, recording the
	// customer, the terms agreed, and the browser the signup was confirmed from (a secret only that browser holds,
	// "" for none; kept only as a keyed digest), and enqueues the customer's
	// EmailSignupConfirmation in the same transaction; otherwise ErrStale (ErrNotFound if there
	// is no such link).
	LinkCustomer(ctx context.Context, id string, c Customer, terms ddr.Terms, browser string, at time.Time) (Link, error)
	// SignedUpFrom reports whether link id was linked by LinkCustomer from browser (never for "").
	SignedUpFrom(ctx context.Context, id, browser string) (bool, error)
	// RevokeLink moves an active link (invited and unexpired at `at`, or linked) to revoked, and
	// enqueues in the same transaction the WithdrawUnsentJob of its customer's debits and, for a
	// link a customer signed up with, their EmailRevocationConfirmation; otherwise ErrStale
	// (ErrNotFound if there is no such link).
	RevokeLink(ctx context.Context, id string, by RevokedBy, at time.Time) (Link, error)
	// EnqueueEmail enqueues job (its own transaction).
	EnqueueEmail(ctx context.Context, job SendEmailJob) error
	// ClaimEmail counts e against the cap of its address at its site and reports true, unless
	// limit emails to the address from the site were counted after since: then it counts nothing
	// and reports false. An email whose ID is counted already reports true and counts nothing
	// more. Addresses are compared as MailboxKey gives them, and never kept as they are (only a
	// keyed digest). The count and the addition are one operation: of claims at once for one
	// address and site, no more than limit succeed.
	ClaimEmail(ctx context.Context, e SentEmail, since time.Time, limit int) (bool, error)
	// ReleaseEmail removes the count of the email id, if any.
	ReleaseEmail(ctx context.Context, id string) error
	// ForgetSentEmails removes the counts of the emails counted at or before `before`, and
	// returns how many.
	ForgetSentEmails(ctx context.Context, before time.Time) (int, error)
	// EraseBankDetails erases the Customer of every link revoked at or before endedBefore (an
	// invitation that expired never had one); the links keep their states and times. It returns
	// how many links it erased.
	EraseBankDetails(ctx context.Context, endedBefore time.Time) (int, error)

	// The operator's listings and the rotation of a client's secret (admin.go).
	OperatorStore
	// The BSB directory (bsb.go).
	BranchStore
}

// EventStore persists events, webhook endpoints and their deliveries. Like Store, it is
// implemented once over each engine's driver. The events themselves are written by the Store and
// BatchStore operations that make the changes, in the same transaction; with each, a delivery
// for every enabled endpoint of the site that subscribes to it.
type EventStore interface {
	// ListEvents returns up to f.Limit of the site's events in order, those after the event
	// f.After (ErrNotFound when the site has no such event), only of f.Type unless empty.
	ListEvents(ctx context.Context, siteID string, f EventFilter) ([]Event, error)
	GetEvent(ctx context.Context, id string) (Event, error)
	// ExpireInvitations marks expired up to limit of the invitations that expired by now, with a
	// customer.expired event each, and returns how many. Of replicas running it at once, each link
	// is expired (and its event written) by one.
	ExpireInvitations(ctx context.Context, now time.Time, limit int) (int, error)
	// PurgeEvents deletes the events written at or before `before`, with their deliveries.
	PurgeEvents(ctx context.Context, before time.Time) (int, error)

	// CreateWebhookEndpoint inserts e unless its site has limit endpoints or more, and reports
	// whether it did. The count and the insert are one operation: of creations at once, no more
	// than the limit allows are made.
	CreateWebhookEndpoint(ctx context.Context, e WebhookEndpoint, limit int) (bool, error)
	// WebhookEndpoints returns the site's endpoints, oldest first.
	WebhookEndpoints(ctx context.Context, siteID string) ([]WebhookEndpoint, error)
	// WebhookEndpoint returns the endpoint with its secrets, or ErrNotFound.
	WebhookEndpoint(ctx context.Context, id string) (WebhookEndpoint, error)
	// UpdateWebhookEndpoint reads the endpoint with its secrets, lets change change it, and writes
	// what change leaves of it (but its ID, SiteID and CreatedAt), in one transaction that no other
	// change of the endpoint interleaves with (another update, a rotation of its secret, the
	// delivery run marking it failing or disabling it): each change is made to the endpoint as the
	// one before left it, and none is lost. It returns the endpoint as written; ErrNotFound if there
	// is none; change's error as it is, with nothing written.
	UpdateWebhookEndpoint(ctx context.Context, id string, change func(*WebhookEndpoint) error) (WebhookEndpoint, error)
	// DeleteWebhookEndpoint deletes the site's endpoint and its deliveries; ErrNotFound if there is
	// none.
	DeleteWebhookEndpoint(ctx context.Context, siteID, id string) error

	// SendTestEvent writes e and one delivery of it, to the endpoint only.
	SendTestEvent(ctx context.Context, e Event, endpointID string) (Delivery, error)
	// Deliveries returns up to f.Limit of the endpoint's deliveries with their attempts, newest
	// first, those before the delivery f.Before (ErrNotFound when the endpoint has no such one).
	Deliveries(ctx context.Context, endpointID string, f DeliveryFilter) ([]Delivery, error)
	// Delivery returns the delivery with its attempts, or ErrNotFound.
	Delivery(ctx context.Context, id string) (Delivery, error)
	// RetryDelivery makes the delivery pending again, due at now, at the start of its schedule,
	// and counts the retry (Delivery.Retries): the outcome of an attempt in flight is recorded
	// without moving the delivery (see RecordAttempts). ErrNotFound when there is no such
	// delivery, or it was retried maxRetries times already.
	RetryDelivery(ctx context.Context, id string, now time.Time, maxRetries int) error
	// FanOutDeliveries gives the endpoint, if enabled, a pending delivery, due at its event's
	// time, of each of up to limit of its site's events that it has not been given or passed,
	// in their order, of those it subscribes to; and returns how many events it took. An event's
	// deliveries are made here, by the run that holds the endpoint, rather than in the event's
	// transaction: the change that writes an event pays nothing for the site's endpoints. An
	// endpoint is given the events written after it was made or last enabled.
	FanOutDeliveries(ctx context.Context, endpointID string, limit int) (int, error)
	// ScheduleDeliveries enqueues a DeliverWebhooksJob for each endpoint with deliveries due by
	// now or events to be given (FanOutDeliveries), of the round of now in period, unless that one
	// waits or runs; and returns how many endpoints have some.
	ScheduleDeliveries(ctx context.Context, now time.Time, period time.Duration) (int, error)
	// LeaseEndpoint gives holder the endpoint's deliveries until `until` (or renews its lease),
	// unless another holder has them past now, and reports whether holder has them. Of holders
	// asking at once, one has them.
	LeaseEndpoint(ctx context.Context, endpointID, holder string, now, until time.Time) (bool, error)
	// ReleaseEndpoint ends holder's lease of the endpoint, if it has it.
	ReleaseEndpoint(ctx context.Context, endpointID, holder string) error
	// DueDeliveries returns up to limit of the endpoint's pending deliveries due by now (without
	// their attempts), in the order they came due (Due, then id), those after `after`, each with
	// its event's body; only those whose events ListEvents shows, so that no delivery (not even
	// one made in its event's transaction, as SendTestEvent's) is sent of an event that an event
	// committed later may precede in the list.
	DueDeliveries(ctx context.Context, endpointID string, now time.Time, after DueDelivery, limit int) ([]DueDelivery, error)
	// RecordAttempts adds each outcome's attempt to its delivery (one that is gone is left out)
	// and moves the delivery to the outcome's state, unless the delivery was retried since its
	// outcome's Retries were read: then it stays as the retry left it. The endpoint is marked by
	// the latest of the attempts: a success clears its failing mark; failures after it mark it
	// failing since the first of them unless it was already, and disable it (with a
	// webhookEndpoint.disabled event) when it has been failing for failureLimit or longer.
	RecordAttempts(ctx context.Context, endpointID string, outcomes []DeliveryOutcome, failureLimit time.Duration) error
	// SkipDeliveries records attempt a, which sent nothing, of each delivery and fails it unless
	// it was retried since it was read (as RecordAttempts); the endpoint is left as it is.
	SkipDeliveries(ctx context.Context, ds []Delivery, a DeliveryAttempt) error
}
