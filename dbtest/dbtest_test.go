package dbtest_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/storage"
)

// fatalTB records a test's Fatalf instead of failing it, and stops the goroutine as Fatalf does.
type fatalTB struct {
	testing.TB
	fatal string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// Engines must be every engine storage opens, each URL must open the engine it was asked for, and
// a name that is no engine must fail the test rather than fall back to one.
func TestURLOpensEachEngineAndRefusesOthers(t *testing.T) {
	if got, want := dbtest.Engines(), []string{storage.EngineSQLite, storage.EnginePostgres}; !slices.Equal(got, want) {
		t.Fatalf("Engines() = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		engine string
		fatal  string // in the test's failure; empty when URL succeeds
	}{
		{engine: storage.EngineSQLite},
		{engine: storage.EnginePostgres},
		{engine: "mysql", fatal: `unknown engine "mysql"`},
	} {
		t.Run(tc.engine, func(t *testing.T) {
			t.Parallel()
			tb := &fatalTB{TB: t}
			var url string
			done := make(chan struct{})
			go func() {
				defer close(done)
				url = dbtest.URL(tb, tc.engine)
			}()
			<-done
			if tc.fatal != "" {
				if !strings.Contains(tb.fatal, tc.fatal) {
					t.Fatalf("URL(%q) failed the test with %q, want %q", tc.engine, tb.fatal, tc.fatal)
				}
				return
			}
			if tb.fatal != "" {
				t.Fatalf("URL(%q) failed the test: %s", tc.engine, tb.fatal)
			}
			db, err := storage.Open(context.Background(), url)
			if err != nil {
				t.Fatalf("Open(%s): %v", url, err)
			}
			defer db.Close()
			if got := db.Engine(); got != tc.engine {
				t.Fatalf("URL(%q) opens a %s database", tc.engine, got)
			}
		})
	}
}

func TestEachTestGetsItsOwnEmptyDatabase(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			if a, b := dbtest.URL(t, engine), dbtest.URL(t, engine); a == b {
				t.Fatalf("two calls gave the same URL %s", a)
			}
			ctx := context.Background()
			first := dbtest.Open(t, engine)
			if got := first.Engine(); got != engine {
				t.Fatalf("Engine() = %q, want %q", got, engine)
			}
			o := billing.Organisation{ID: "org_1", Name: "Acme", CreatedAt: billing.FromMillis(0)}
			if err := first.CreateOrganisation(ctx, o); err != nil {
				t.Fatalf("CreateOrganisation: %v", err)
			}
			second := dbtest.Open(t, engine)
			if n, err := second.CountOrganisations(ctx); err != nil || n != 0 {
				t.Fatalf("second database has %d organisations (%v), want 0", n, err)
			}
		})
	}
}
