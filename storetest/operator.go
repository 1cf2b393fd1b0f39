package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
)

// The operator's listings and the rotation of a client's secret (billing.OperatorStore).

// listAll reads a listing to its end, limit rows a page, following the cursor as the Service does.
func listAll[T any](t *testing.T, p billing.OperatorPage, limit int, list func(context.Context, billing.OperatorPage) ([]T, error),
	of func(T) (time.Time, string)) []T {
	t.Helper()
	p.Limit = limit
	var out []T
	for {
		page, err := list(context.Background(), p)
		wantErr(t, "list", err, nil)
		out = append(out, page...)
		if len(page) < limit {
			return out
		}
		p.AfterCreatedAt, p.AfterID = of(page[len(page)-1])
	}
}

func orgKey(o billing.Organisation) (time.Time, string) { return o.CreatedAt, o.ID }
func siteKey(s billing.Site) (time.Time, string)        { return s.CreatedAt, s.ID }
func clientKey(c billing.Client) (time.Time, string)    { return c.CreatedAt, c.ID }

func ids[T any](list []T, key func(T) (time.Time, string)) []string {
	out := make([]string, len(list))
	for i, v := range list {
		_, out[i] = key(v)
	}
	return out
}

func (s suite) operator(t *testing.T) {
	t.Run("organisations are listed in the order they were created, a page at a time", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		ctx := context.Background()
		var want []string
		// Two created at the same millisecond are ordered by id; the later ones after.
		for i, at := range []time.Time{t0, t0, t0.Add(time.Millisecond), t0.Add(time.Second), t0.Add(time.Second)} {
			o := billing.Organisation{ID: billing.NewID("org"), Name: "Org", CreatedAt: at}
			if err := store.CreateOrganisation(ctx, o); err != nil {
				t.Fatal(err)
			}
			want = append(want, o.ID)
			if i == 1 && want[0] > want[1] {
				want[0], want[1] = want[1], want[0]
			}
			if i == 4 && want[3] > want[4] {
				want[3], want[4] = want[4], want[3]
			}
		}
		for _, limit := range []int{1, 2, 5, 10} {
			got := listAll(t, billing.OperatorPage{}, limit, store.ListOrganisations, orgKey)
			wantEqual(t, "organisations listed", ids(got, orgKey), want)
		}
		got, err := store.GetOrganisation(ctx, want[2])
		wantErr(t, "GetOrganisation", err, nil)
		wantEqual(t, "GetOrganisation", got, billing.Organisation{ID: want[2], Name: "Org", CreatedAt: t0.Add(time.Millisecond)})
	})
	t.Run("an empty store lists no organisation", func(t *testing.T) {
		t.Parallel()
		got := listAll(t, billing.OperatorPage{}, 10, s.openFunc(t).ListOrganisations, orgKey)
		if len(got) != 0 {
			t.Fatalf("listed %d organisations in an empty store", len(got))
		}
	})
	t.Run("a missing organisation is not found", func(t *testing.T) {
		t.Parallel()
		_, err := s.openFunc(t).GetOrganisation(context.Background(), "org_missing")
		wantErr(t, "GetOrganisation", err, billing.ErrNotFound)
	})
	t.Run("sites are listed of one organisation or of all", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := createOrganisation(t, b.store)
		second := createSite(t, b.store, b.org.ID)
		theirs := createSite(t, b.store, other.ID)
		mine := listAll(t, billing.OperatorPage{OrganisationID: b.org.ID}, 1, b.store.ListSites, siteKey)
		if len(mine) != 2 || !sameIDs(ids(mine, siteKey), b.site.ID, second.ID) {
			t.Fatalf("sites of the organisation: %v, want %s and %s", ids(mine, siteKey), b.site.ID, second.ID)
		}
		for _, got := range mine {
			if got.ID == b.site.ID {
				wantEqual(t, "listed site", got, b.site)
			}
		}
		every := listAll(t, billing.OperatorPage{}, 2, b.store.ListSites, siteKey)
		if !sameIDs(ids(every, siteKey), b.site.ID, second.ID, theirs.ID) {
			t.Fatalf("every site: %v", ids(every, siteKey))
		}
		none := listAll(t, billing.OperatorPage{OrganisationID: "org_missing"}, 2, b.store.ListSites, siteKey)
		if len(none) != 0 {
			t.Fatalf("sites of a missing organisation: %v", ids(none, siteKey))
		}
	})
	t.Run("clients are listed of one organisation or of all, revoked ones included", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := createOrganisation(t, b.store)
		active := createClient(t, b.store, b.org.ID)
		revoked := createClient(t, b.store, b.org.ID)
		revokedAt, err := b.store.RevokeClient(context.Background(), revoked.ID, t0.Add(time.Hour))
		wantErr(t, "RevokeClient", err, nil)
		theirs := createClient(t, b.store, other.ID)
		mine := listAll(t, billing.OperatorPage{OrganisationID: b.org.ID}, 1, b.store.ListClients, clientKey)
		if !sameIDs(ids(mine, clientKey), active.ID, revoked.ID) {
			t.Fatalf("clients of the organisation: %v, want %s and %s", ids(mine, clientKey), active.ID, revoked.ID)
		}
		for _, got := range mine {
			switch got.ID {
			case active.ID:
				wantEqual(t, "listed active client", got, active)
			case revoked.ID:
				wantEqual(t, "listed revoked client", got, revokedAt)
			}
		}
		every := listAll(t, billing.OperatorPage{}, 10, b.store.ListClients, clientKey)
		if !sameIDs(ids(every, clientKey), active.ID, revoked.ID, theirs.ID) {
			t.Fatalf("every client: %v", ids(every, clientKey))
		}
	})
	t.Run("a client's secret is replaced; a revoked or missing client's is not", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		ctx := context.Background()
		c := createClient(t, b.store, b.org.ID)
		next := billing.HashSecret("n3w")
		got, err := b.store.SetClientSecret(ctx, c.ID, next)
		wantErr(t, "SetClientSecret", err, nil)
		want := c
		want.SecretHash = next
		wantEqual(t, "SetClientSecret", got, want)
		stored, err := b.store.GetClient(ctx, c.ID)
		wantErr(t, "GetClient", err, nil)
		if !stored.SecretMatches("n3w") || stored.SecretMatches("s3cret") {
			t.Fatal("the stored client does not hold the new secret alone")
		}

		_, err = b.store.SetClientSecret(ctx, "cli_missing", next)
		wantErr(t, "SetClientSecret of a missing client", err, billing.ErrNotFound)

		r := createClient(t, b.store, b.org.ID)
		if _, err := b.store.RevokeClient(ctx, r.ID, t0); err != nil {
			t.Fatal(err)
		}
		_, err = b.store.SetClientSecret(ctx, r.ID, next)
		wantErr(t, "SetClientSecret of a revoked client", err, billing.ErrStale)
		stored, err = b.store.GetClient(ctx, r.ID)
		wantErr(t, "GetClient", err, nil)
		if !stored.SecretMatches("s3cret") {
			t.Fatal("a revoked client's secret changed")
		}
	})
}

// sameIDs reports whether got holds exactly want, in any order.
func sameIDs(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for _, id := range want {
		if seen[id] != 1 {
			return false
		}
	}
	return true
}
