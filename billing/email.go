package billing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// EmailKind names an email Pyng sends to a customer, at the address the customer gave on the
// signup page. The partner never gives Pyng a customer's contact details, so no email goes to a
// customer before they sign up.
type EmailKind string

// The emails to a customer.
const (
	// EmailSignupConfirmation confirms a signup: what was agreed, the service agreement and the
	// management link.
	EmailSignupConfirmation EmailKind = "signupConfirmation"
	// EmailRevocationConfirmation confirms that the agreement ended (by the customer or the site).
	EmailRevocationConfirmation EmailKind = "revocationConfirmation"
	// EmailManagementLink sends a new management link, at the customer's request.
	EmailManagementLink EmailKind = "managementLink"
	// EmailNone sends nothing: RequestManagementLink enqueues it when the address asked for is not
	// the customer's, so that asking does the same work, in the same time, whether or not it is
	// (the partner holds the signup link, whose page offers the form: the time of the answer
	// would tell it whether a guessed address is its customer's).
	EmailNone EmailKind = "none"
)

// SendEmailJob sends one email to the customer of a link. It is enqueued in the transaction of
// the change it tells of (the store's LinkCustomer and RevokeLink, or RequestManagementLink). It
// carries the link's id and the kind of email, never the address or anything else of what the
// customer told Pyng: a job's arguments are kept in plaintext, the customer's details only
// sealed. The worker reads them from the store when it sends.
type SendEmailJob struct {
	LinkID string    `json:"linkId"`
	Email  EmailKind `json:"email"`
}

// Kind is the job's name in the queue.
func (SendEmailJob) Kind() string { return "send_email" }

// MaxAttempts is how often a failed send is tried (River's backoff between: about three days
// in all).
func (SendEmailJob) MaxAttempts() int { return 20 }

// EmailQueue is the queue of the emails: a queue of their own, with workers of their own, so that
// neither a backlog of emails (the confirmations of many signups) nor an SMTP server that is slow
// or down ever holds up the execution of batches.
const EmailQueue = "emails"

// Queue names the job's queue.
func (SendEmailJob) Queue() string { return EmailQueue }

// EmailKey is an email address as RequestManagementLink compares it, without regard to case or
// surrounding spaces; the web pages' limit per address counts requests by it, so that no other
// spelling of a customer's address (strings.EqualFold would take "ſ" for "s") escapes the limit
// and still sends to them.
func EmailKey(address string) string { return strings.ToLower(strings.TrimSpace(address)) }

// MailboxKey is an email address as the cap of emails to one address (ClaimEmail) counts it: the
// mailbox it reaches. It is EmailKey less any subaddress (the "+tag" of the local part, which
// most providers deliver to the mailbox without it) and, at Gmail, less the dots of the local
// part, which Gmail ignores. Otherwise whoever types addresses into signup forms would send one
// mailbox the cap again with each new tag or dot. Two mailboxes of a provider that tells them
// apart only by these share a cap: a cap too strict for a rare customer, never one bypassed.
func MailboxKey(address string) string {
	key := EmailKey(address)
	at := strings.LastIndexByte(key, '@')
	if at <= 0 {
		return key
	}
	local, domain := key[:at], key[at+1:]
	if plus := strings.IndexByte(local, '+'); plus > 0 {
		local = local[:plus]
	}
	if domain == "gmail.com" || domain == "googlemail.com" {
		local, domain = strings.ReplaceAll(local, ".", ""), "gmail.com"
	}
	return local + "@" + domain
}

// ValidEmailAddress reports whether address, around its spaces, is an email address as the
// signup form takes one: what a form asking for the customer's address can refuse openly, as it
// tells nothing of whether the address is known.
func ValidEmailAddress(address string) bool { return validEmail(strings.TrimSpace(address)) }

// RequestManagementLink sends a new management link to the customer of the link, if email is the
// address the customer gave (compared without regard to case) and the link is linked: a revoked
// agreement leaves nothing to manage, and its details are erased after their retention. It
// answers the same either way, and does the same work (an email job, EmailNone when it sends
// nothing), so that it tells no one whether an address is known or an agreement revoked.
func (s *Service) RequestManagementLink(ctx context.Context, linkID, email string) error {
	l, err := s.store.GetLink(ctx, linkID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get link: %w", err)
	}
	kind := EmailManagementLink
	if l.StoredState != LinkLinked || l.Customer.Email == "" || EmailKey(l.Customer.Email) != EmailKey(email) {
		kind = EmailNone
	}
	if err := s.store.EnqueueEmail(ctx, SendEmailJob{LinkID: l.ID, Email: kind}); err != nil {
		return fmt.Errorf("enqueue email: %w", err)
	}
	return nil
}

// EmailCapWindow is the rolling period over which the emails to one address are counted against
// its cap (ClaimEmail): any 24 hours.
const EmailCapWindow = 24 * time.Hour

// SentEmail is an email counted against the cap of its address at its site: ID names the email
// (its job in the queue, so that its attempts count once), SiteID is the site of the link it
// tells of, Address is where it goes, At when it was counted.
type SentEmail struct {
	ID      string
	SiteID  string
	Address string
	At      time.Time
}

// ClaimEmail counts the email id to address, of a link of siteID, against the cap of limit emails
// to one address from one site (the address compared as MailboxKey: in any case, around any
// spaces, whatever its subaddress) in any EmailCapWindow, and reports whether it may be sent:
// false when limit emails to the address from the site were counted in the last EmailCapWindow;
// true, counting nothing more, when this one was counted already (a retry, or a replica that took
// the job over). Whoever signs up gives the address, the partner too (it holds the signup link):
// without a cap, Pyng's sender would write to any address as often as the API allows. The cap is
// a site's, so that a partner who spends an address's cap on its own links holds back no email of
// another site's (the confirmation of the customer's real signup elsewhere). Of claims at once,
// on any replica, no more than limit succeed.
func (s *Service) ClaimEmail(ctx context.Context, id, siteID, address string, limit int) (bool, error) {
	now := s.now()
	ok, err := s.store.ClaimEmail(ctx, SentEmail{ID: id, SiteID: siteID, Address: address, At: now}, now.Add(-EmailCapWindow), limit)
	if err != nil {
		return false, fmt.Errorf("claim email: %w", err)
	}
	return ok, nil
}

// ReleaseEmail uncounts the email id, which ClaimEmail counted but could not be sent: its next
// attempt claims again.
func (s *Service) ReleaseEmail(ctx context.Context, id string) error {
	if err := s.store.ReleaseEmail(ctx, id); err != nil {
		return fmt.Errorf("release email: %w", err)
	}
	return nil
}

// ForgetSentEmails removes the count of the emails sent EmailCapWindow ago or earlier, which no
// longer count against any cap (the hourly erasure job), and returns how many it removed.
func (s *Service) ForgetSentEmails(ctx context.Context) (int, error) {
	n, err := s.store.ForgetSentEmails(ctx, s.now().Add(-EmailCapWindow))
	if err != nil {
		return n, fmt.Errorf("forget sent emails: %w", err)
	}
	return n, nil
}

// ManagementLinkValidity says how long a management link of ttl lasts, in words for the
// customer: "30 days", "12 hours", "1 day and 6 hours", "1 minute and 30 seconds"; to the minute, or to the
// second under an hour. It is "" for a link that does not expire (ttl 0).
func ManagementLinkValidity(ttl time.Duration) string {
	if ttl <= 0 {
		return ""
	}
	units := []struct {
		name string
		size time.Duration
	}{{"day", 24 * time.Hour}, {"hour", time.Hour}, {"minute", time.Minute}, {"second", time.Second}}
	if ttl >= time.Hour {
		ttl = ttl.Round(time.Minute)
	} else {
		ttl = max(ttl.Round(time.Second), time.Second)
	}
	var parts []string
	for _, u := range units {
		n := ttl / u.size
		ttl -= n * u.size
		switch {
		case n == 1:
			parts = append(parts, "1 "+u.name)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %ss", n, u.name))
		}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}
