package postgres

import "io/fs"

// Migrations lists the embedded migration files, for tests.
func Migrations() ([]fs.DirEntry, error) { return fs.ReadDir(migrations, "migrations") }
