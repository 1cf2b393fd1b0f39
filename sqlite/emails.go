// The executor's method of the emails' cap whose statement differs per engine.

package sqlite

import "context"

// LockEmailAddress runs no statement: a transaction on SQLite begins IMMEDIATE, holding the
// database's write lock, so no other claim counts until it ends.
func (executor) LockEmailAddress(context.Context, []byte) error { return nil }
