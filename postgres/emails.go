// The executor's method of the emails' cap whose statement differs per engine.

package postgres

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/pyng/receivables/postgres/internal/dbsqlc"
)

// emailAddressLocks is the class of the advisory locks of LockEmailAddress ("pyng" in ASCII),
// which no other lock of the two-key form uses.
const emailAddressLocks = 0x70796e67

// LockEmailAddress takes the transaction's advisory lock of the address at its site, by the first
// 32 bits of its key (a keyed digest: two pairs share them by chance only, and then wait for each
// other's claims, nothing more).
func (e executor) LockEmailAddress(ctx context.Context, key []byte) error {
	if len(key) < 4 {
		return fmt.Errorf("lock email address: a key of %d bytes", len(key))
	}
	lock := int64(int32(binary.BigEndian.Uint32(key)))
	return e.q.LockEmailAddress(ctx, dbsqlc.LockEmailAddressParams{Class: emailAddressLocks, Key: lock})
}
