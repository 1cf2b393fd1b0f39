package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
)

// window is the rolling period of the cases' caps, as the Service gives it.
const window = billing.EmailCapWindow

// claimSite is the site of the cases' emails, but for those that name another.
const claimSite = "site_1"

// claim claims the email e, counted at e.At, against a cap of limit in the window before it.
func claim(t *testing.T, store billing.Store, e billing.SentEmail, limit int) bool {
	t.Helper()
	ok, err := store.ClaimEmail(context.Background(), e, e.At.Add(-window), limit)
	if err != nil {
		t.Fatalf("ClaimEmail(%+v): %v", e, err)
	}
	return ok
}

// claimCase is an email claimed at `at`, and whether it should be.
type claimCase struct {
	id, address string
	at          time.Time
	want        bool
}

// wantClaims claims each email of claimSite in turn and fails unless each is claimed as want says.
func wantClaims(t *testing.T, store billing.Store, limit int, claims ...claimCase) {
	t.Helper()
	wantSiteClaims(t, store, claimSite, limit, claims...)
}

// wantSiteClaims is wantClaims of the emails of site.
func wantSiteClaims(t *testing.T, store billing.Store, site string, limit int, claims ...claimCase) {
	t.Helper()
	for _, c := range claims {
		e := billing.SentEmail{ID: c.id, SiteID: site, Address: c.address, At: c.at}
		if got := claim(t, store, e, limit); got != c.want {
			t.Fatalf("ClaimEmail(%s to %q of %s at +%s) = %v, want %v", c.id, c.address, e.SiteID, c.at.Sub(t0), got, c.want)
		}
	}
}

func (s suite) claimEmail(t *testing.T) {
	t.Run("an address gets up to the limit in any window, then one more as each leaves it", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		wantClaims(t, store, 2,
			claimCase{"e1", "jane@example.com", t0, true},
			claimCase{"e2", "jane@example.com", t0.Add(time.Hour), true},
			claimCase{"e3", "jane@example.com", t0.Add(2 * time.Hour), false},
			claimCase{"e4", "jane@example.com", t0.Add(window - time.Millisecond), false},
			claimCase{"e5", "jane@example.com", t0.Add(window), true}, // e1 is a window old
			claimCase{"e6", "jane@example.com", t0.Add(window + time.Minute), false},
			claimCase{"e7", "jane@example.com", t0.Add(window + time.Hour), true}, // and now e2
		)
	})

	t.Run("an address in other case and around spaces is the same address; another is not", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		wantClaims(t, store, 2,
			claimCase{"e1", "jane@example.com", t0, true},
			claimCase{"e2", " Jane@EXAMPLE.com ", t0, true},
			claimCase{"e3", "JANE@example.com", t0, false},
			claimCase{"e4", "john@example.com", t0, true},
			claimCase{"e5", "jane@example.org", t0, true},
		)
	})

	t.Run("a site's emails to an address are counted apart from another site's", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		wantClaims(t, store, 2,
			claimCase{"e1", "jane@example.com", t0, true},
			claimCase{"e2", "jane@example.com", t0, true},
			claimCase{"e3", "jane@example.com", t0, false},
		)
		wantSiteClaims(t, store, "site_2", 2,
			claimCase{"e4", "jane@example.com", t0, true},
			claimCase{"e5", "Jane+2@example.com", t0, true},
			claimCase{"e6", "jane@example.com", t0, false},
		)
		wantClaims(t, store, 2, claimCase{"e7", "jane@example.com", t0.Add(time.Minute), false})
	})

	t.Run("an address with a subaddress, or at Gmail with dots, is its mailbox's address", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		wantClaims(t, store, 2,
			claimCase{"e1", "jane@example.com", t0, true},
			claimCase{"e2", "jane+1@example.com", t0, true},
			claimCase{"e3", "Jane+2@Example.com", t0, false},
			claimCase{"e4", "jane.doe@gmail.com", t0, true},
			claimCase{"e5", "janedoe+x@googlemail.com", t0, true},
			claimCase{"e6", "j.a.n.e.d.o.e@gmail.com", t0, false},
			claimCase{"e7", "jane.doe@example.com", t0, true}, // dots count elsewhere
		)
	})

	t.Run("an email claimed again counts once, even over the limit", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		wantClaims(t, store, 2,
			claimCase{"e1", "jane@example.com", t0, true},
			claimCase{"e1", "jane@example.com", t0.Add(time.Minute), true},
			claimCase{"e2", "jane@example.com", t0.Add(time.Minute), true},
			claimCase{"e1", "jane@example.com", t0.Add(2 * time.Minute), true},
			claimCase{"e3", "jane@example.com", t0.Add(2 * time.Minute), false},
		)
	})

	t.Run("a released email no longer counts, and is claimed anew", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		wantClaims(t, store, 1, claimCase{"e1", "jane@example.com", t0, true}, claimCase{"e2", "jane@example.com", t0, false})
		if err := store.ReleaseEmail(context.Background(), "e1"); err != nil {
			t.Fatalf("ReleaseEmail: %v", err)
		}
		if err := store.ReleaseEmail(context.Background(), "e1"); err != nil {
			t.Fatalf("ReleaseEmail of an email not counted: %v", err)
		}
		wantClaims(t, store, 1, claimCase{"e2", "jane@example.com", t0, true}, claimCase{"e1", "jane@example.com", t0, false})
	})

	t.Run("forgetting removes the emails counted at or before the time given, and no others", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		ctx := context.Background()
		wantClaims(t, store, 10,
			claimCase{"e1", "jane@example.com", t0, true},
			claimCase{"e2", "john@example.com", t0, true},
			claimCase{"e3", "jane@example.com", t0.Add(time.Millisecond), true},
		)
		for _, tc := range []struct {
			before time.Time
			want   int
		}{{t0.Add(-time.Millisecond), 0}, {t0, 2}, {t0, 0}, {t0.Add(time.Hour), 1}} {
			if n, err := store.ForgetSentEmails(ctx, tc.before); err != nil || n != tc.want {
				t.Fatalf("ForgetSentEmails(+%s) = %d, %v; want %d", tc.before.Sub(t0), n, err, tc.want)
			}
		}
		// Forgotten, e1 counts no more: claimed again, it counts anew.
		wantClaims(t, store, 1, claimCase{"e1", "jane@example.com", t0.Add(2 * time.Hour), true}, claimCase{"e4", "jane@example.com", t0.Add(2 * time.Hour), false})
	})

	t.Run("of claims at once for one address, no more than the limit succeed", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		const n, limit = 16, 3
		claimed := make([]bool, n)
		errs := make([]error, n)
		concurrently(n, func(i int) {
			// Spelt differently, the address is one address.
			address := []string{"jane@example.com", "JANE@example.com", " jane@Example.com"}[i%3]
			claimed[i], errs[i] = store.ClaimEmail(context.Background(), billing.SentEmail{ID: fmt.Sprintf("e%d", i), SiteID: claimSite, Address: address, At: t0},
				t0.Add(-window), limit)
		})
		got := 0
		for i := range n {
			wantErr(t, fmt.Sprintf("claim %d", i), errs[i], nil)
			if claimed[i] {
				got++
			}
		}
		if got != limit {
			t.Fatalf("%d of %d claims at once succeeded, want the limit, %d", got, n, limit)
		}
	})
}
