// Package billing is the domain of Pyng Receivables: organisations and their sites, API clients,
// customer links (invitation → linked → revoked or expired) and debit batches with their execution
// on payment rails. It knows nothing of HTTP or SQL: handlers translate requests into calls on
// Service, and a Store and a BatchStore persist.
package billing

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"time"
)

// Clock tells the time. It is injected so that expiry, retention and deadlines are testable
// without sleeping.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time, truncated to the millisecond precision of the wire and storage.
func (SystemClock) Now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns an identifier with a type prefix, in the style of "site_3kq…": 16 bytes, the
// millisecond it was made (48 bits) and then 80 random bits, in lowercase base32. It is no secret
// (no identifier authorises anything) and cannot be guessed; it starts with its time so that the
// identifiers made together share their beginning, as UUIDv7's do: a B-tree index takes the new
// ones in a few pages (on SQLite, a few pages written to the log per commit) where random ones
// land on a page each.
func NewID(prefix string) string { return NewIDs(prefix, 1)[0] }

// NewIDs returns n identifiers like NewID's, of one millisecond, their random bits taken from one
// read of crypto/rand: a batch's rows get their ids without a read per row.
func NewIDs(prefix string, n int) []string {
	const size, timeBytes = 16, 6
	random := make([]byte, n*size)
	_, _ = rand.Read(random) // crypto/rand.Read never fails on supported platforms.
	var now [8]byte
	binary.BigEndian.PutUint64(now[:], uint64(time.Now().UnixMilli()))
	head := len(prefix) + 1
	buf := make([]byte, head+idEncoding.EncodedLen(size))
	copy(buf, prefix+"_")
	ids := make([]string, n)
	for i := range ids {
		id := random[i*size : (i+1)*size]
		copy(id, now[8-timeBytes:])
		idEncoding.Encode(buf[head:], id)
		ids[i] = string(buf)
	}
	return ids
}

// RandomToken returns n random bytes in lowercase base32.
func RandomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)                 // crypto/rand.Read never fails on supported platforms.
	return idEncoding.EncodeToString(b) // the alphabet is lowercase
}

// Millis converts a time to the wire and storage representation: Unix milliseconds, UTC.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// FromMillis is the inverse of Millis.
func FromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
