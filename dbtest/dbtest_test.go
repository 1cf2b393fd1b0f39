package dbtest_test

import (
	"context"
	"slices"
	"testing"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
)

func TestEnginesAreSQLiteAndPostgres(t *testing.T) {
	if got, want := dbtest.Engines(), []string{"sqlite", "postgres"}; !slices.Equal(got, want) {
		t.Fatalf("Engines() = %q, want %q", got, want)
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
