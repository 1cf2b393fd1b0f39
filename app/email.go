package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/email"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/token"
)

// Mailer is the sender of the emails to customers that cfg configures: through PYNG_SMTP_URL;
// without it, in the sandbox, to the log; and otherwise none (nil), with a warning: the emails
// then wait in the queue until an SMTP server is configured. It sends an address at most
// PYNG_EMAILS_PER_ADDRESS_PER_DAY emails in any 24 hours (0 in cfg: no cap); one more is not sent,
// and is logged and counted in metrics (pyng_customer_emails_suppressed_total; nil: none).
func Mailer(cfg Config, service *billing.Service, tokens *token.Issuer, logger *slog.Logger,
	metrics prometheus.Registerer) (*email.Mailer, error) {
	suppressed := newSuppressedEmails()
	if metrics != nil {
		metrics.MustRegister(suppressed)
	}
	var sender email.Sender
	switch {
	case cfg.SMTPURL != "":
		var err error
		if sender, err = email.SMTP(cfg.SMTPURL); err != nil {
			return nil, fmt.Errorf("-smtp-url (PYNG_SMTP_URL): %w", err)
		}
	case cfg.Sandbox:
		sender = email.Log(logger)
	default:
		logger.Warn("no SMTP server is configured (PYNG_SMTP_URL): the emails to customers (signup and revocation confirmations, management links) wait in the queue until one is")
		return nil, nil
	}
	return email.New(email.Config{Service: service, Tokens: tokens, PublicURL: cfg.PublicURL, From: cfg.MailFrom, Sender: sender,
		ManagementLinkTTL: cfg.ManagementLinkTTL, EmailsPerAddress: cfg.EmailsPerAddressPerDay,
		SuppressedFunc: func(ctx context.Context, linkID string, kind billing.EmailKind) {
			suppressed.WithLabelValues(string(kind)).Inc()
			// Never the address: the log is read by more people than the customers' details are.
			logger.WarnContext(ctx, "email to a customer not sent: its address was sent PYNG_EMAILS_PER_ADDRESS_PER_DAY emails from its site in the last 24 hours",
				"link", linkID, "kind", string(kind), "limit", cfg.EmailsPerAddressPerDay)
		}}), nil
}

// BECSUserIDs returns the function that gives a site's BECS user ID ("" when the site has no BECS
// debit user), for its service agreement (billing.Config.DebitUserID).
func BECSUserIDs(r *becs.Rail) func(context.Context, string) (string, error) {
	return func(ctx context.Context, siteID string) (string, error) {
		u, err := r.User(ctx, siteID)
		if errors.Is(err, becs.ErrNotFound) {
			return "", nil
		}
		return u.UserID, err
	}
}
