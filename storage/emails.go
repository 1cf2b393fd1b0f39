package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/storage/driver"
)

// emailAddressKey is the purpose of the keyed digests of the addresses of customer_emails_sent
// (see seal.Keyring.MAC): its table and column.
const emailAddressKey = "customer_emails_sent.address_key"

// addressKey is how customer_emails_sent names an address at a site, whose emails to it are
// counted apart from other sites': the HMAC of the site's id and billing.MailboxKey(address)
// under a key derived from the key ring's current key. It matches the same mailbox in any case,
// around any spaces and whatever its subaddress, and tells whoever reads the table without the
// key nor the address, nor whether a guessed address is there. After a key rotation the addresses
// counted before are no longer matched: their counts start again (at worst twice the cap in the
// 24 hours around it).
func (s *Store) addressKey(siteID, address string) ([]byte, error) {
	// A site's id holds no NUL: the pair is one string only one way.
	key, err := s.keys.MAC(emailAddressKey, []byte(siteID+"\x00"+billing.MailboxKey(address)))
	if err != nil {
		return nil, fmt.Errorf("the key of an email address: %w", err)
	}
	return key, nil
}

// ClaimEmail counts e against the cap of its address at its site in one transaction that holds
// the pair (LockEmailAddress): the claims of several replicas for one address are counted one
// after the other, each seeing what the ones before it added, so that no two both take the last
// email allowed.
func (s *Store) ClaimEmail(ctx context.Context, e billing.SentEmail, since time.Time, limit int) (bool, error) {
	key, err := s.addressKey(e.SiteID, e.Address)
	if err != nil {
		return false, err
	}
	claimed := false
	err = s.inTx(ctx, func(tx driver.ExecutorTx) error {
		if err := tx.LockEmailAddress(ctx, key); err != nil {
			return fmt.Errorf("lock the address: %w", err)
		}
		counted, err := tx.EmailCounted(ctx, e.ID)
		if err != nil || counted {
			claimed = counted
			return err
		}
		n, err := tx.CountEmailsSent(ctx, key, since)
		if err != nil || n >= limit {
			return err
		}
		if err := tx.InsertEmailSent(ctx, e.ID, key, e.At); err != nil {
			return interpret(err)
		}
		claimed = true
		return nil
	})
	return claimed && err == nil, err
}

func (s *Store) ReleaseEmail(ctx context.Context, id string) error {
	return s.d.Executor().DeleteEmailSent(ctx, id)
}

func (s *Store) ForgetSentEmails(ctx context.Context, before time.Time) (int, error) {
	return inChunks(purgeChunks.emails, func(limit int) (int, error) { return s.d.Executor().ForgetSentEmails(ctx, before, limit) })
}
