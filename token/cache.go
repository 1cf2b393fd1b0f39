package token

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pyng/receivables/billing"
)

// accessCacheSize bounds the access tokens an Issuer remembers. A partner uses one token at a
// time for its lifetime, so this is far more than the clients of one process; past it, entries
// are dropped and their tokens simply verified again.
const accessCacheSize = 4096

// accessCache remembers the access tokens already verified, by their text, so that a partner's
// every request does not decode and HMAC-verify the same token again. An entry is made only
// after the token passed every check of ParseAccess, and is used only until the token's expiry.
// Revocation is not its concern: the API checks the token's client on every request.
type accessCache struct {
	mu      sync.RWMutex
	max     int
	entries map[string]verifiedAccess
}

type verifiedAccess struct {
	caller  billing.Caller
	expires time.Time
	kid     string // the key that signed it
}

// callerCopy is the cached caller with scopes of its own, so that no caller can change another's.
func (v verifiedAccess) callerCopy() billing.Caller {
	c := v.caller
	c.Scopes = slices.Clone(c.Scopes)
	return c
}

func newAccessCache(max int) *accessCache {
	return &accessCache{max: max, entries: make(map[string]verifiedAccess)}
}

func (c *accessCache) get(s string) (verifiedAccess, bool) {
	c.mu.RLock()
	v, ok := c.entries[s]
	c.mu.RUnlock()
	return v, ok
}

func (c *accessCache) remove(s string) {
	c.mu.Lock()
	delete(c.entries, s)
	c.mu.Unlock()
}

// put remembers a verified token. When the cache is full it drops the expired entries, then,
// if that was not enough, arbitrary ones (map order), down to seven eighths of the bound, so
// that the sweep runs once per many insertions rather than on each.
func (c *accessCache) put(s string, v verifiedAccess, now time.Time) {
	s = strings.Clone(s) // s may be part of a larger string; keep the token alone
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[s]; !ok && len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max-c.max/8 {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[s] = v
}

func (c *accessCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
