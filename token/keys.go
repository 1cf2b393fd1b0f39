package token

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pyng/receivables/billing"
)

// KeySource reads the signing keys, the current (the one that signs) first; the others verify
// the tokens they signed until these expire.
type KeySource func(ctx context.Context) ([]billing.SigningKey, error)

// keySet is the keys an Issuer holds at one time.
type keySet struct {
	current billing.SigningKey
	signer  *signer
	secrets map[string][]byte // every key's secret by id (kid)
}

func newKeySet(keys []billing.SigningKey) (*keySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("token: no signing key")
	}
	s := &keySet{current: keys[0], signer: newSigner(keys[0]), secrets: make(map[string][]byte, len(keys))}
	for _, k := range keys {
		if len(k.Secret) == 0 {
			return nil, fmt.Errorf("token: signing key %s has no secret", k.ID)
		}
		s.secrets[k.ID] = slices.Clone(k.Secret)
	}
	return s, nil
}

// unknownKeyReloadGap is how soon after a reload a token signed by a key the Issuer does not hold
// has it read the keys again: another replica may sign with a key added since, and a forger must
// not make every request read the database.
const unknownKeyReloadGap = 5 * time.Second

// reloader reads the keys again from the source, at most once per unknownKeyReloadGap on behalf
// of unknown keys.
type reloader struct {
	source KeySource
	mu     sync.Mutex
	last   time.Time // of the last reload, by the Issuer's clock
}

// NewIssuerFrom returns an Issuer of the keys source reads now, reading the time from now. It
// reads them again on Reload, and when it meets a token signed by a key it does not hold.
func NewIssuerFrom(ctx context.Context, source KeySource, now func() time.Time) (*Issuer, error) {
	i := &Issuer{nowFn: now, access: newAccessCache(accessCacheSize), reload: &reloader{source: source}}
	if err := i.Reload(ctx); err != nil {
		return nil, err
	}
	return i, nil
}

// Reload reads the keys from the Issuer's source: it signs with the current one from then on,
// and stops accepting tokens signed by a key no longer there, even those it verified before. An
// Issuer of one key (NewIssuer) has nothing to reload.
func (i *Issuer) Reload(ctx context.Context) error {
	if i.reload == nil {
		return nil
	}
	i.reload.mu.Lock()
	defer i.reload.mu.Unlock()
	return i.reloadLocked(ctx)
}

func (i *Issuer) reloadLocked(ctx context.Context) error {
	keys, err := i.reload.source(ctx)
	if err != nil {
		return fmt.Errorf("token: read signing keys: %w", err)
	}
	set, err := newKeySet(keys)
	if err != nil {
		return err
	}
	i.keys.Store(set)
	i.reload.last = i.nowFn()
	return nil
}

// ReloadEvery calls Reload every interval until ctx is done, reporting each failure to onError
// (the Issuer keeps its keys meanwhile).
func (i *Issuer) ReloadEvery(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := i.Reload(ctx); err != nil && ctx.Err() == nil {
				onError(err)
			}
		}
	}
}

// secret returns the secret of the key kid, reading the keys again first if the Issuer does not
// hold it and has not read them in the last unknownKeyReloadGap.
func (i *Issuer) secret(kid string) ([]byte, bool) {
	if s, ok := i.keys.Load().secrets[kid]; ok {
		return s, true
	}
	if i.reload == nil || kid == "" {
		return nil, false
	}
	i.reload.mu.Lock()
	defer i.reload.mu.Unlock()
	if s, ok := i.keys.Load().secrets[kid]; ok { // read meanwhile by another caller
		return s, true
	}
	if i.nowFn().Sub(i.reload.last) < unknownKeyReloadGap {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := i.reloadLocked(ctx); err != nil {
		i.reload.last = i.nowFn() // a failing source is not asked again at once either
		return nil, false
	}
	s, ok := i.keys.Load().secrets[kid]
	return s, ok
}

// holds reports whether the Issuer holds the key kid.
func (i *Issuer) holds(kid string) bool {
	_, ok := i.keys.Load().secrets[kid]
	return ok
}

// KeyID is the id of the key the Issuer signs with.
func (i *Issuer) KeyID() string { return i.keys.Load().current.ID }
