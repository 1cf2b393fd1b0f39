package sqlite_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/sqlite"
)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenConfiguresTheConnection(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "pyng.db"))
	for _, tc := range []struct {
		pragma string
		want   string
	}{
		{pragma: "journal_mode", want: "wal"},
		{pragma: "foreign_keys", want: "1"},
		{pragma: "busy_timeout", want: "10000"},
		{pragma: "synchronous", want: "2"}, // FULL: a commit survives a power loss (see sqlite.DSN)
		{pragma: "temp_store", want: "2"},  // MEMORY
		{pragma: "cache_size", want: "-16384"},
	} {
		var got string
		if err := s.DB().QueryRow("PRAGMA " + tc.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %q, want %q", tc.pragma, got, tc.want)
		}
	}
	if n := s.DB().Stats().MaxOpenConnections; n != 1 {
		t.Errorf("MaxOpenConnections = %d, want 1", n)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestReopeningKeepsDataAndMigratesOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "pyng.db")
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	o := billing.Organisation{ID: "org_1", Name: "Acme", CreatedAt: time.UnixMilli(1).UTC()}
	if err := s.Executor().CreateOrganisation(ctx, o); err != nil {
		t.Fatalf("CreateOrganisation: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t, path)
	if n, err := s.Executor().CountOrganisations(ctx); err != nil || n != 1 {
		t.Fatalf("CountOrganisations after reopening = %d, %v; want 1", n, err)
	}
	var applied int
	if err := s.DB().QueryRow("SELECT count(*) FROM river_migration").Scan(&applied); err != nil {
		t.Fatalf("count applied River migrations: %v", err)
	}
	m, err := rivermigrate.New(riversqlite.New(s.DB()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(m.AllVersions()); applied != want {
		t.Fatalf("%d River migrations recorded, want %d (each once)", applied, want)
	}
}

func TestOpenRefusesBadPaths(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		name   string
		path   string
		want   string
		absent string // a path that must not exist after Open
	}{
		{name: "a missing directory is an error and is not created", path: filepath.Join(missing, "pyng.db"),
			want: "unable to open database file", absent: missing},
		{name: "an empty path is an error", path: "", want: "invalid database path"},
		{name: "a path with a query is an error", path: "pyng.db?mode=ro", want: "invalid database path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := sqlite.Open(context.Background(), tc.path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tc.path)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
				t.Fatalf("Open(%q) error %q, want it to name the path and contain %q", tc.path, err, tc.want)
			}
			if _, err := os.Stat(tc.absent); tc.absent != "" && !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s exists after Open (%v); creating directories is the caller's choice", tc.absent, err)
			}
		})
	}
}
