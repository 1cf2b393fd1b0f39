package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/storage/driver"
)

// The sealed columns. Each is the additional data of its values (see seal.Keyring.Seal), so that
// a value copied into another column does not open there.
const (
	sealedName          = "customer_links.customer_name"
	sealedEmail         = "customer_links.customer_email"
	sealedBSB           = "customer_links.customer_bsb"
	sealedAccountNumber = "customer_links.customer_account_number"
	sealedAccountName   = "customer_links.customer_account_name"
	sealedType          = "customer_links.customer_type"
	sealedBusinessName  = "customer_links.customer_business_name"
	sealedABN           = "customer_links.customer_abn"
	sealedSigningKey    = "signing_keys.secret"
)

// sealCustomer seals each of the customer's details.
func (s *Store) sealCustomer(c billing.Customer) (billing.Customer, error) {
	return s.eachDetail(c, s.keys.SealString)
}

// openCustomer opens each of the customer's details, sealed or plaintext.
func (s *Store) openCustomer(c billing.Customer) (billing.Customer, error) {
	return s.eachDetail(c, s.keys.OpenString)
}

func (s *Store) eachDetail(c billing.Customer, fn func(aad, value string) (string, error)) (billing.Customer, error) {
	var errs [8]error
	var typ string
	c.Name, errs[0] = fn(sealedName, c.Name)
	c.Email, errs[1] = fn(sealedEmail, c.Email)
	c.BSB, errs[2] = fn(sealedBSB, c.BSB)
	c.AccountNumber, errs[3] = fn(sealedAccountNumber, c.AccountNumber)
	c.AccountName, errs[4] = fn(sealedAccountName, c.AccountName)
	typ, errs[5] = fn(sealedType, string(c.Type))
	c.Type = billing.CustomerType(typ)
	c.BusinessName, errs[6] = fn(sealedBusinessName, c.BusinessName)
	c.ABN, errs[7] = fn(sealedABN, c.ABN)
	if err := errors.Join(errs[:]...); err != nil {
		return billing.Customer{}, fmt.Errorf("customer details: %w", err)
	}
	return c, nil
}

// openLink opens the customer's details of a link a statement returned.
func (s *Store) openLink(l billing.Link, err error) (billing.Link, error) {
	if err != nil {
		return billing.Link{}, err
	}
	if l.Customer, err = s.openCustomer(l.Customer); err != nil {
		return billing.Link{}, fmt.Errorf("link %s: %w", l.ID, err)
	}
	return l, nil
}

func (s *Store) sealKey(k billing.SigningKey) (billing.SigningKey, error) {
	sealed, err := s.keys.Seal(sealedSigningKey, k.Secret)
	if err != nil {
		return billing.SigningKey{}, fmt.Errorf("signing key %s: %w", k.ID, err)
	}
	k.Secret = []byte(sealed)
	return k, nil
}

// SigningKeyError is the failure to open a stored signing key with the key ring: a ring without
// the key it was sealed with (or with another key under that id).
type SigningKeyError struct {
	KeyID string
	Err   error
}

func (e *SigningKeyError) Error() string { return fmt.Sprintf("signing key %s: %v", e.KeyID, e.Err) }

func (e *SigningKeyError) Unwrap() error { return e.Err }

func (s *Store) openKey(k billing.SigningKey) (billing.SigningKey, error) {
	secret, err := s.keys.Open(sealedSigningKey, string(k.Secret))
	if err != nil {
		return billing.SigningKey{}, &SigningKeyError{KeyID: k.ID, Err: err}
	}
	k.Secret = secret
	return k, nil
}

// SigningKeys returns every signing key, the current (the one that signs) first: the others
// verify the tokens they signed.
func (s *Store) SigningKeys(ctx context.Context) ([]billing.SigningKey, error) {
	keys, err := s.d.Executor().SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	return s.openKeys(keys)
}

// openKeys opens the keys as stored, each with its secret in the clear; a *SigningKeyError for
// the first the key ring cannot open.
func (s *Store) openKeys(keys []billing.SigningKey) ([]billing.SigningKey, error) {
	opened := make([]billing.SigningKey, len(keys))
	for i, k := range keys {
		var err error
		if opened[i], err = s.openKey(k); err != nil {
			return nil, err
		}
	}
	return opened, nil
}

// RotateSigningKey stores candidate as the current signing key and keeps the earlier ones, or,
// with retireOthers, deletes them in the same transaction and returns how many it deleted. Of
// two rotations at the same moment, one fails with billing.ErrDuplicate. It refuses, with a
// *SigningKeyError and writing nothing, when the key ring cannot open every key stored: a ring
// other than the servers', whose current key, sealed with it, they could not open.
func (s *Store) RotateSigningKey(ctx context.Context, candidate billing.SigningKey, retireOthers bool) (retired int, err error) {
	sealed, err := s.sealKey(candidate)
	if err != nil {
		return 0, err
	}
	tx, err := s.d.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx) // a no-op once committed
	stored, err := tx.SigningKeys(ctx)
	if err != nil {
		return 0, err
	}
	if _, err := s.openKeys(stored); err != nil {
		return 0, err
	}
	if err := tx.AddSigningKey(ctx, sealed); err != nil {
		return 0, fmt.Errorf("add signing key: %w", interpret(err))
	}
	if retireOthers {
		if retired, err = tx.DeleteSigningKeysExcept(ctx, candidate.ID); err != nil {
			return 0, fmt.Errorf("delete earlier signing keys: %w", err)
		}
	}
	return retired, tx.Commit(ctx)
}

// ResealSigningKeys seals again, with the current key of the ring, every signing key's secret
// that is plaintext or sealed with another key, and returns how many it sealed. A secret that
// changed meanwhile is left to its writer.
func (s *Store) ResealSigningKeys(ctx context.Context) (int, error) {
	e := s.d.Executor()
	keys, err := e.SigningKeys(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		if !s.keys.Stale(string(k.Secret)) {
			continue
		}
		opened, err := s.openKey(k)
		if err != nil {
			return n, err
		}
		sealed, err := s.sealKey(opened)
		if err != nil {
			return n, err
		}
		updated, err := e.UpdateSigningKeySecret(ctx, k.ID, k.Secret, sealed.Secret)
		if err != nil {
			return n, fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		if updated {
			n++
		}
	}
	return n, nil
}

// ResealLinks seals again, with the current key of the ring, the customer's details of every
// link that holds any in plaintext or sealed with another key, and returns how many links it
// sealed. It pages through the links by id, batchSize at a time, each page in a transaction of
// its own, so that the server keeps serving meanwhile. A link whose details changed between the
// read and the write (signed up, erased) is left as its writer left it.
func (s *Store) ResealLinks(ctx context.Context, batchSize int) (int, error) {
	if batchSize < 1 {
		return 0, fmt.Errorf("reseal links: batch size %d", batchSize)
	}
	total, after := 0, ""
	for {
		n, last, err := s.resealLinkPage(ctx, after, batchSize)
		total += n
		if err != nil || last == "" {
			return total, err
		}
		after = last
	}
}

// resealLinkPage reseals the page of links after `after`, and returns how many it sealed and the
// id of the page's last link ("" when the page was the last).
func (s *Store) resealLinkPage(ctx context.Context, after string, size int) (n int, last string, err error) {
	tx, err := s.d.Begin(ctx)
	if err != nil {
		return 0, "", err
	}
	defer tx.Rollback(ctx) // a no-op once committed
	page, err := tx.LinkDetailsAfter(ctx, after, size)
	if err != nil {
		return 0, "", fmt.Errorf("read links after %q: %w", after, err)
	}
	if beforeResealWrite != nil {
		beforeResealWrite()
	}
	for _, old := range page {
		c := old.Customer
		if !s.staleCustomer(c) {
			continue
		}
		opened, err := s.openCustomer(c)
		if err != nil {
			return 0, "", fmt.Errorf("link %s: %w", old.LinkID, err)
		}
		sealed, err := s.sealCustomer(opened)
		if err != nil {
			return 0, "", fmt.Errorf("link %s: %w", old.LinkID, err)
		}
		updated, err := tx.UpdateLinkDetails(ctx, old, driver.LinkDetails{LinkID: old.LinkID, Customer: sealed})
		if err != nil {
			return 0, "", fmt.Errorf("link %s: %w", old.LinkID, err)
		}
		if updated {
			n++
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, "", err
	}
	if len(page) < size {
		return n, "", nil
	}
	return n, page[len(page)-1].LinkID, nil
}

// staleCustomer reports whether any of the customer's details, as stored, should be sealed again.
func (s *Store) staleCustomer(c billing.Customer) bool {
	for _, v := range []string{c.Name, c.Email, c.BSB, c.AccountNumber, c.AccountName, string(c.Type), c.BusinessName, c.ABN} {
		if s.keys.Stale(v) {
			return true
		}
	}
	return false
}

// beforeResealWrite, when set by a test, runs between the read of a page and its writes.
var beforeResealWrite func()

// eraseBatch is how many links one statement of EraseBankDetails erases, so that no statement
// holds many rows' locks for long.
const eraseBatch = 1000

// EraseBankDetails erases the customer's details of the links revoked at or before endedBefore,
// a batch at a time, and returns how many links it erased.
func (s *Store) EraseBankDetails(ctx context.Context, endedBefore time.Time) (int, error) {
	total := 0
	for {
		n, err := s.d.Executor().EraseBankDetails(ctx, endedBefore, eraseBatch)
		total += n
		if err != nil || n < eraseBatch {
			return total, err
		}
	}
}
