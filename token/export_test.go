package token

// AccessCacheSize and CachedAccess let the tests see the access token cache from outside.
const AccessCacheSize = accessCacheSize

// CachedAccess reports how many access tokens i remembers, and whether s is one of them.
func CachedAccess(i *Issuer, s string) (n int, cached bool) {
	_, cached = i.access.get(s)
	return i.access.len(), cached
}
