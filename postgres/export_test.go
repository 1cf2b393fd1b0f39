package postgres

import "io/fs"

// LockID is the advisory lock of the migrations of schema, for tests.
func LockID(schema string) int64 { return lockID(schema) }

// Migrations lists the embedded migration files, for tests.
func Migrations() ([]fs.DirEntry, error) { return fs.ReadDir(migrations, "migrations") }
