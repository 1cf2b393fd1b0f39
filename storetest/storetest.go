// Package storetest is the behaviour suite of billing.Store: every method and every outcome its
// documentation promises. storage.Store must pass it on every engine; storage's tests run it on each.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/ddr"
)

// t0 is the suite's "now": millisecond-precise, as the Service's clock is.
var t0 = time.Date(2026, 3, 1, 10, 0, 0, 123_000_000, time.UTC)

// ttl is how long the suite's invitations stay open.
const ttl = 7 * 24 * time.Hour

// Run runs the suite. open returns a fresh, empty store for one test and closes it when the test
// ends; every subtest calls it, and they run in parallel.
func Run(t *testing.T, open func(t *testing.T) billing.Store) {
	s := suite{openFunc: open}
	t.Run("Organisation", s.organisation)
	t.Run("Site", s.site)
	t.Run("Client", s.client)
	t.Run("SigningKey", s.signingKey)
	t.Run("CreateLink", s.createLink)
	t.Run("LinkCustomer", s.linkCustomer)
	t.Run("RevokeLink", s.revokeLink)
	t.Run("ListLinks", s.listLinks)
	t.Run("Operator", s.operator)
	t.Run("Branches", s.branches)
	t.Run("ClaimEmail", s.claimEmail)
}

type suite struct {
	openFunc func(t *testing.T) billing.Store
}

// bundle is a fresh store holding one organisation and its site.
type bundle struct {
	store billing.Store
	org   billing.Organisation
	site  billing.Site
}

func (s suite) setup(t *testing.T) bundle {
	t.Helper()
	b := bundle{store: s.openFunc(t)}
	b.org = createOrganisation(t, b.store)
	b.site = createSite(t, b.store, b.org.ID)
	return b
}

func createOrganisation(t *testing.T, store billing.Store) billing.Organisation {
	t.Helper()
	o := billing.Organisation{ID: billing.NewID("org"), Name: "Acme Pty Ltd", CreatedAt: t0}
	if err := store.CreateOrganisation(context.Background(), o); err != nil {
		t.Fatalf("CreateOrganisation: %v", err)
	}
	return o
}

func createSite(t *testing.T, store billing.Store, orgID string) billing.Site {
	t.Helper()
	site := billing.Site{ID: billing.NewID("site"), OrganisationID: orgID, Name: "Acme Online", Currency: "AUD", Rail: "sandbox", CreatedAt: t0,
		TimeZone: billing.DefaultTimeZone}
	if err := store.CreateSite(context.Background(), site); err != nil {
		t.Fatalf("CreateSite: %v", err)
	}
	return site
}

func createClient(t *testing.T, store billing.Store, orgID string) billing.Client {
	t.Helper()
	c := billing.Client{
		ID:             billing.NewID("cli"),
		OrganisationID: orgID,
		SecretHash:     billing.HashSecret("s3cret"),
		Scopes:         []billing.Scope{billing.ScopeCustomersInvite, billing.ScopeBatchesRead},
		CreatedAt:      t0,
	}
	if err := store.CreateClient(context.Background(), c); err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	return c
}

// newLink is an invitation of ref at site, created at `at`.
func newLink(siteID, ref string, at time.Time) billing.Link {
	return billing.Link{
		ID:                billing.NewID("lnk"),
		SiteID:            siteID,
		CustomerReference: ref,
		StoredState:       billing.LinkInvited,
		CreatedAt:         at,
		ExpiresAt:         at.Add(ttl),
	}
}

func createLink(t *testing.T, store billing.Store, siteID, ref string, at time.Time) billing.Link {
	t.Helper()
	l := newLink(siteID, ref, at)
	if err := store.CreateLink(context.Background(), l); err != nil {
		t.Fatalf("CreateLink(%s at %s): %v", ref, at, err)
	}
	return l
}

var customer = billing.Customer{Name: "Jane Citizen", Email: "jane@example.com", BSB: "062000", AccountNumber: "12345678",
	AccountName: "CITIZEN HOLDINGS PTY LTD", Type: billing.CustomerBusiness, BusinessName: "Citizen Holdings Pty Ltd", ABN: "51824753556"}

// terms are those of the Direct Debit Request the customer agrees to.
var terms = ddr.Terms{Wording: ddr.CurrentWording, Site: "Acme Online", DebitUser: "Acme Pty Ltd", ABN: "51824753556", Phone: "02 9999 0000",
	Email: "accounts@acme.example", Address: "1 George St, Sydney NSW 2000", UserID: "123456"}

func linkCustomer(t *testing.T, store billing.Store, id string, at time.Time) billing.Link {
	t.Helper()
	l, err := store.LinkCustomer(context.Background(), id, customer, terms, "", at)
	if err != nil {
		t.Fatalf("LinkCustomer(%s): %v", id, err)
	}
	return l
}

func revokeLink(t *testing.T, store billing.Store, id string, at time.Time) billing.Link {
	t.Helper()
	l, err := store.RevokeLink(context.Background(), id, billing.RevokedByPartner, at)
	if err != nil {
		t.Fatalf("RevokeLink(%s): %v", id, err)
	}
	return l
}

func getLink(t *testing.T, store billing.Store, id string) billing.Link {
	t.Helper()
	l, err := store.GetLink(context.Background(), id)
	if err != nil {
		t.Fatalf("GetLink(%s): %v", id, err)
	}
	return l
}

func getCurrentLink(t *testing.T, store billing.Store, siteID, ref string) billing.Link {
	t.Helper()
	l, err := store.GetCurrentLink(context.Background(), siteID, ref)
	if err != nil {
		t.Fatalf("GetCurrentLink(%s): %v", ref, err)
	}
	return l
}

// wantErr fails unless err is (or wraps) want; a nil want means no error.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: unexpected error %v", what, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// wantEqual fails unless got and want hold the same values, comparing times as instants and
// requiring got's times to be in UTC.
func wantEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if loc := nonUTC(reflect.ValueOf(got)); loc != "" {
		t.Errorf("%s: time in %s, want UTC: %+v", what, loc, got)
	}
	g, w := normalise(got), normalise(want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

var timeType = reflect.TypeFor[time.Time]()

// normalise returns a copy of v with every time.Time field in UTC, so that equal instants compare
// equal with reflect.DeepEqual.
func normalise[T any](v T) T {
	rv := reflect.ValueOf(&v).Elem()
	walkTimes(rv, func(f reflect.Value) { f.Set(reflect.ValueOf(f.Interface().(time.Time).UTC())) })
	return v
}

func nonUTC(v reflect.Value) (loc string) {
	walkTimes(v, func(f reflect.Value) {
		if tm := f.Interface().(time.Time); !tm.IsZero() && tm.Location() != time.UTC {
			loc = tm.Location().String()
		}
	})
	return loc
}

func walkTimes(v reflect.Value, fn func(reflect.Value)) {
	switch {
	case v.Type() == timeType:
		fn(v)
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			walkTimes(v.Field(i), fn)
		}
	case v.Kind() == reflect.Slice:
		for i := range v.Len() {
			walkTimes(v.Index(i), fn)
		}
	}
}

func (s suite) organisation(t *testing.T) {
	t.Run("count is zero in an empty store", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		n, err := store.CountOrganisations(context.Background())
		wantErr(t, "CountOrganisations", err, nil)
		if n != 0 {
			t.Fatalf("CountOrganisations = %d, want 0", n)
		}
	})
	t.Run("count counts every organisation", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		for range 3 {
			createOrganisation(t, store)
		}
		n, err := store.CountOrganisations(context.Background())
		wantErr(t, "CountOrganisations", err, nil)
		if n != 3 {
			t.Fatalf("CountOrganisations = %d, want 3", n)
		}
	})
	t.Run("a second organisation with the same id is a duplicate", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		o := createOrganisation(t, store)
		err := store.CreateOrganisation(context.Background(), o)
		wantErr(t, "CreateOrganisation again", err, billing.ErrDuplicate)
	})
}

func (s suite) site(t *testing.T) {
	t.Run("a site round-trips", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		got, err := b.store.GetSite(context.Background(), b.site.ID)
		wantErr(t, "GetSite", err, nil)
		wantEqual(t, "GetSite", got, b.site)
	})
	t.Run("a site's rail is stored and read back", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		for _, rail := range []string{"sandbox", "another-rail"} {
			site := billing.Site{ID: billing.NewID("site"), OrganisationID: b.org.ID, Name: "x", Currency: "AUD", Rail: rail, CreatedAt: t0}
			wantErr(t, "CreateSite", b.store.CreateSite(context.Background(), site), nil)
			got, err := b.store.GetSite(context.Background(), site.ID)
			wantErr(t, "GetSite", err, nil)
			if got.Rail != rail {
				t.Errorf("rail of a site created on %q reads back %q", rail, got.Rail)
			}
		}
	})
	t.Run("a site's debit user and time zone are stored and read back", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		d := billing.DebitUser{Name: "Acme Pty Ltd", ABN: "51824753556", Phone: "02 9999 0000", Email: "billing@acme.example",
			Address: "1 George St, Sydney NSW 2000"}
		wantErr(t, "UpdateSiteDebitUser", b.store.UpdateSiteDebitUser(context.Background(), b.site.ID, d, "Australia/Perth"), nil)
		got, err := b.store.GetSite(context.Background(), b.site.ID)
		wantErr(t, "GetSite", err, nil)
		want := b.site
		want.DebitUser, want.TimeZone = d, "Australia/Perth"
		wantEqual(t, "GetSite", got, want)
		wantErr(t, "UpdateSiteDebitUser of an unknown site", b.store.UpdateSiteDebitUser(context.Background(), "site_nope", d, "UTC"), billing.ErrNotFound)
	})
	t.Run("a site of a missing organisation is not found", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		site := billing.Site{ID: billing.NewID("site"), OrganisationID: "org_missing", Name: "x", Currency: "AUD", CreatedAt: t0}
		wantErr(t, "CreateSite", store.CreateSite(context.Background(), site), billing.ErrNotFound)
	})
	t.Run("an unknown site is not found", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		_, err := store.GetSite(context.Background(), "site_missing")
		wantErr(t, "GetSite", err, billing.ErrNotFound)
	})
	t.Run("a second site with the same id is a duplicate", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		wantErr(t, "CreateSite again", b.store.CreateSite(context.Background(), b.site), billing.ErrDuplicate)
	})
}

func (s suite) client(t *testing.T) {
	t.Run("a client round-trips", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := createClient(t, b.store, b.org.ID)
		got, err := b.store.GetClient(context.Background(), c.ID)
		wantErr(t, "GetClient", err, nil)
		wantEqual(t, "GetClient", got, c)
		if got.Revoked() {
			t.Fatal("new client is revoked")
		}
	})
	t.Run("a client without scopes round-trips", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := billing.Client{ID: billing.NewID("cli"), OrganisationID: b.org.ID, SecretHash: []byte{1, 2, 3}, CreatedAt: t0}
		wantErr(t, "CreateClient", b.store.CreateClient(context.Background(), c), nil)
		got, err := b.store.GetClient(context.Background(), c.ID)
		wantErr(t, "GetClient", err, nil)
		if len(got.Scopes) != 0 {
			t.Fatalf("Scopes = %q, want none", got.Scopes)
		}
	})
	t.Run("every scope round-trips in order", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := billing.Client{ID: billing.NewID("cli"), OrganisationID: b.org.ID, SecretHash: []byte{1}, Scopes: slices.Clone(billing.AllScopes), CreatedAt: t0}
		slices.Reverse(c.Scopes)
		wantErr(t, "CreateClient", b.store.CreateClient(context.Background(), c), nil)
		got, err := b.store.GetClient(context.Background(), c.ID)
		wantErr(t, "GetClient", err, nil)
		wantEqual(t, "GetClient", got, c)
	})
	t.Run("a client of a missing organisation is not found", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		c := billing.Client{ID: billing.NewID("cli"), OrganisationID: "org_missing", SecretHash: []byte{1}, CreatedAt: t0}
		wantErr(t, "CreateClient", store.CreateClient(context.Background(), c), billing.ErrNotFound)
	})
	t.Run("an unknown client is not found", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		_, err := store.GetClient(context.Background(), "cli_missing")
		wantErr(t, "GetClient", err, billing.ErrNotFound)
	})
	t.Run("revoking a client records the time", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := createClient(t, b.store, b.org.ID)
		at := t0.Add(time.Hour)
		got, err := b.store.RevokeClient(context.Background(), c.ID, at)
		wantErr(t, "RevokeClient", err, nil)
		want := c
		want.RevokedAt = at
		wantEqual(t, "RevokeClient", got, want)
		stored, err := b.store.GetClient(context.Background(), c.ID)
		wantErr(t, "GetClient", err, nil)
		wantEqual(t, "GetClient after revoke", stored, want)
	})
	t.Run("revoking a revoked client keeps the first time", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := createClient(t, b.store, b.org.ID)
		first := t0.Add(time.Hour)
		if _, err := b.store.RevokeClient(context.Background(), c.ID, first); err != nil {
			t.Fatalf("RevokeClient: %v", err)
		}
		got, err := b.store.RevokeClient(context.Background(), c.ID, first.Add(time.Hour))
		wantErr(t, "RevokeClient again", err, nil)
		if !got.RevokedAt.Equal(first) {
			t.Fatalf("RevokedAt = %s, want the first revocation %s", got.RevokedAt, first)
		}
	})
	t.Run("revoking an unknown client is not found", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		_, err := store.RevokeClient(context.Background(), "cli_missing", t0)
		wantErr(t, "RevokeClient", err, billing.ErrNotFound)
	})
}

func signingKey(n int) billing.SigningKey {
	return billing.SigningKey{
		ID:        billing.NewID("key"),
		Secret:    []byte(fmt.Sprintf("secret number %d, 32 bytes long!", n)),
		CreatedAt: t0.Add(time.Duration(n) * time.Millisecond),
	}
}

func (s suite) signingKey(t *testing.T) {
	t.Run("the first candidate is stored", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		k := signingKey(1)
		got, err := store.EnsureSigningKey(context.Background(), k)
		wantErr(t, "EnsureSigningKey", err, nil)
		wantEqual(t, "EnsureSigningKey", got, k)
	})
	t.Run("a later candidate gets the stored key", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		first := signingKey(1)
		if _, err := store.EnsureSigningKey(context.Background(), first); err != nil {
			t.Fatalf("EnsureSigningKey: %v", err)
		}
		got, err := store.EnsureSigningKey(context.Background(), signingKey(2))
		wantErr(t, "EnsureSigningKey again", err, nil)
		wantEqual(t, "EnsureSigningKey again", got, first)
	})
	t.Run("concurrent callers all get the same key", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		const n = 10
		keys := make([]billing.SigningKey, n)
		errs := make([]error, n)
		concurrently(n, func(i int) {
			keys[i], errs[i] = store.EnsureSigningKey(context.Background(), signingKey(i))
		})
		for i := range n {
			wantErr(t, fmt.Sprintf("EnsureSigningKey #%d", i), errs[i], nil)
			wantEqual(t, fmt.Sprintf("EnsureSigningKey #%d", i), keys[i], keys[0])
		}
		candidates := make([]string, n)
		for i := range n {
			candidates[i] = string(signingKey(i).Secret)
		}
		if !slices.Contains(candidates, string(keys[0].Secret)) {
			t.Fatalf("stored secret %q is none of the candidates", keys[0].Secret)
		}
	})
}

// concurrently calls fn(0) … fn(n-1) in n goroutines released at once, and waits for them.
func concurrently(n int, fn func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			fn(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

func (s suite) createLink(t *testing.T) {
	t.Run("a new link round-trips as the current link", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		l := createLink(t, b.store, b.site.ID, "cust-1", t0)
		wantEqual(t, "GetCurrentLink", getCurrentLink(t, b.store, b.site.ID, "cust-1"), l)
		wantEqual(t, "GetLink", getLink(t, b.store, l.ID), l)
	})
	t.Run("timestamps round-trip at millisecond precision in UTC", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		sydney := time.FixedZone("AEDT", 11*60*60)
		created := time.Date(2026, 3, 1, 21, 0, 0, 987_000_000, sydney)
		l := billing.Link{
			ID: billing.NewID("lnk"), SiteID: b.site.ID, CustomerReference: "cust-1", StoredState: billing.LinkInvited,
			CreatedAt: created, ExpiresAt: created.Add(ttl + time.Millisecond),
		}
		wantErr(t, "CreateLink", b.store.CreateLink(context.Background(), l), nil)
		got := getLink(t, b.store, l.ID)
		if got.CreatedAt.Location() != time.UTC || got.ExpiresAt.Location() != time.UTC {
			t.Fatalf("times in %s and %s, want UTC", got.CreatedAt.Location(), got.ExpiresAt.Location())
		}
		if !got.CreatedAt.Equal(created) || !got.ExpiresAt.Equal(l.ExpiresAt) {
			t.Fatalf("CreatedAt, ExpiresAt = %s, %s, want %s, %s", got.CreatedAt, got.ExpiresAt, created, l.ExpiresAt)
		}
		linkedAt := created.Add(time.Hour + 7*time.Millisecond)
		linked := linkCustomer(t, b.store, l.ID, linkedAt)
		if linked.LinkedAt.Location() != time.UTC || !linked.LinkedAt.Equal(linkedAt) {
			t.Fatalf("LinkedAt = %s, want %s in UTC", linked.LinkedAt, linkedAt)
		}
		revokedAt := linkedAt.Add(time.Hour + 3*time.Millisecond)
		revoked := revokeLink(t, b.store, l.ID, revokedAt)
		if revoked.RevokedAt.Location() != time.UTC || !revoked.RevokedAt.Equal(revokedAt) {
			t.Fatalf("RevokedAt = %s, want %s in UTC", revoked.RevokedAt, revokedAt)
		}
	})
	t.Run("a pair without links has no current link", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		_, err := b.store.GetCurrentLink(context.Background(), b.site.ID, "cust-1")
		wantErr(t, "GetCurrentLink", err, billing.ErrNotFound)
	})
	t.Run("an unknown link is not found", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		_, err := b.store.GetLink(context.Background(), "lnk_missing")
		wantErr(t, "GetLink", err, billing.ErrNotFound)
	})

	// Each case prepares the pair's current link with prepare, then invites the pair again at
	// t0+at; want is the outcome.
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, store billing.Store, l billing.Link)
		at      time.Duration
		want    error
	}{
		{
			name: "an unexpired invitation blocks a new one",
			at:   ttl - time.Millisecond,
			want: billing.ErrDuplicate,
		},
		{
			name: "an invitation expired by time allows a new one",
			at:   ttl + time.Hour,
		},
		{
			name: "an invitation expires at its ExpiresAt exactly",
			at:   ttl,
		},
		{
			name: "a linked link blocks a new invitation",
			prepare: func(t *testing.T, store billing.Store, l billing.Link) {
				linkCustomer(t, store, l.ID, t0.Add(time.Hour))
			},
			at:   ttl + time.Hour, // a linked link never expires
			want: billing.ErrDuplicate,
		},
		{
			name: "a revoked invitation allows a new one",
			prepare: func(t *testing.T, store billing.Store, l billing.Link) {
				revokeLink(t, store, l.ID, t0.Add(time.Hour))
			},
			at: 2 * time.Hour,
		},
		{
			name: "a revoked linked link allows a new invitation",
			prepare: func(t *testing.T, store billing.Store, l billing.Link) {
				linkCustomer(t, store, l.ID, t0.Add(time.Hour))
				revokeLink(t, store, l.ID, t0.Add(2*time.Hour))
			},
			at: 3 * time.Hour,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := s.setup(t)
			old := createLink(t, b.store, b.site.ID, "cust-1", t0)
			if tc.prepare != nil {
				tc.prepare(t, b.store, old)
			}
			before := getLink(t, b.store, old.ID)
			l := newLink(b.site.ID, "cust-1", t0.Add(tc.at))
			err := b.store.CreateLink(context.Background(), l)
			wantErr(t, "CreateLink", err, tc.want)
			if tc.want != nil {
				wantEqual(t, "old link after refused CreateLink", getLink(t, b.store, old.ID), before)
				wantEqual(t, "current link after refused CreateLink", getCurrentLink(t, b.store, b.site.ID, "cust-1"), before)
				return
			}
			wantEqual(t, "current link", getCurrentLink(t, b.store, b.site.ID, "cust-1"), l)
			wantOld := before
			if before.StoredState == billing.LinkInvited {
				wantOld.StoredState = billing.LinkExpired
			}
			wantEqual(t, "old link", getLink(t, b.store, old.ID), wantOld)
			listed, err := b.store.ListLinks(context.Background(), b.site.ID, billing.LinkFilter{Limit: 10}, t0.Add(tc.at))
			wantErr(t, "ListLinks", err, nil)
			wantEqual(t, "ListLinks lists only the current link", listed, []billing.Link{l})
		})
	}

	t.Run("the same reference under another site is independent", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := createSite(t, b.store, b.org.ID)
		l1 := createLink(t, b.store, b.site.ID, "cust-1", t0)
		l2 := createLink(t, b.store, other.ID, "cust-1", t0)
		wantEqual(t, "current link of site 1", getCurrentLink(t, b.store, b.site.ID, "cust-1"), l1)
		wantEqual(t, "current link of site 2", getCurrentLink(t, b.store, other.ID, "cust-1"), l2)
		revokeLink(t, b.store, l2.ID, t0.Add(time.Hour))
		wantEqual(t, "site 1's link after revoking site 2's", getLink(t, b.store, l1.ID), l1)
	})
	t.Run("a reference differing only in case is another customer", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		createLink(t, b.store, b.site.ID, "cust-a", t0)
		createLink(t, b.store, b.site.ID, "CUST-A", t0)
	})
	t.Run("several invitations of one pair over time keep one current", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		var ids []string
		at := t0
		for range 3 {
			l := createLink(t, b.store, b.site.ID, "cust-1", at)
			ids = append(ids, l.ID)
			at = at.Add(ttl)
		}
		if got := getCurrentLink(t, b.store, b.site.ID, "cust-1"); got.ID != ids[2] {
			t.Fatalf("current link %s, want the newest %s", got.ID, ids[2])
		}
		for _, id := range ids[:2] {
			if got := getLink(t, b.store, id); got.StoredState != billing.LinkExpired {
				t.Fatalf("superseded link %s stored as %s, want expired", id, got.StoredState)
			}
		}
	})

	for _, tc := range []struct {
		name     string
		previous bool // the pair has an invitation, expired by the time of the concurrent calls
	}{
		{name: "of concurrent invitations of a new pair exactly one succeeds"},
		{name: "of concurrent invitations after an expired one exactly one succeeds", previous: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := s.setup(t)
			at := t0
			if tc.previous {
				createLink(t, b.store, b.site.ID, "cust-1", t0)
				at = t0.Add(ttl + time.Hour)
			}
			const n = 10
			links := make([]billing.Link, n)
			errs := make([]error, n)
			for i := range n {
				links[i] = newLink(b.site.ID, "cust-1", at)
			}
			concurrently(n, func(i int) { errs[i] = b.store.CreateLink(context.Background(), links[i]) })
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("CreateLink #%d and #%d both succeeded", winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, billing.ErrDuplicate):
					t.Fatalf("CreateLink #%d: error %v, want nil or ErrDuplicate", i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("no CreateLink succeeded: %v", errs)
			}
			wantEqual(t, "current link", getCurrentLink(t, b.store, b.site.ID, "cust-1"), links[winner])
			for i, l := range links {
				if _, err := b.store.GetLink(context.Background(), l.ID); i != winner && !errors.Is(err, billing.ErrNotFound) {
					t.Fatalf("refused link #%d: GetLink error %v, want ErrNotFound", i, err)
				}
			}
		})
	}
}

// linkStates prepares a link of each kind, for the cases of LinkCustomer and RevokeLink. Each
// returns the link, as stored, created at t0 (it expires at t0+ttl).
var linkStates = map[string]func(t *testing.T, store billing.Store, siteID string) billing.Link{
	"invited": func(t *testing.T, store billing.Store, siteID string) billing.Link {
		return createLink(t, store, siteID, "cust-1", t0)
	},
	"linked": func(t *testing.T, store billing.Store, siteID string) billing.Link {
		l := createLink(t, store, siteID, "cust-1", t0)
		return linkCustomer(t, store, l.ID, t0.Add(time.Hour))
	},
	"revoked": func(t *testing.T, store billing.Store, siteID string) billing.Link {
		l := createLink(t, store, siteID, "cust-1", t0)
		return revokeLink(t, store, l.ID, t0.Add(time.Hour))
	},
	"stored expired": func(t *testing.T, store billing.Store, siteID string) billing.Link {
		l := createLink(t, store, siteID, "cust-1", t0)
		createLink(t, store, siteID, "cust-1", t0.Add(ttl)) // marks l expired
		return getLink(t, store, l.ID)
	},
}

func (s suite) linkCustomer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state string
		at    time.Duration
		want  error
	}{
		{name: "an open invitation becomes linked", state: "invited", at: time.Hour},
		{name: "an invitation can be accepted in its last millisecond", state: "invited", at: ttl - time.Millisecond},
		{name: "an invitation past its expiry is stale", state: "invited", at: ttl, want: billing.ErrStale},
		{name: "a linked link is stale", state: "linked", at: 2 * time.Hour, want: billing.ErrStale},
		{name: "a revoked link is stale", state: "revoked", at: 2 * time.Hour, want: billing.ErrStale},
		{name: "a link stored as expired is stale", state: "stored expired", at: ttl + time.Hour, want: billing.ErrStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := s.setup(t)
			before := linkStates[tc.state](t, b.store, b.site.ID)
			at := t0.Add(tc.at)
			got, err := b.store.LinkCustomer(context.Background(), before.ID, customer, terms, "", at)
			wantErr(t, "LinkCustomer", err, tc.want)
			if tc.want != nil {
				wantEqual(t, "link after refused LinkCustomer", getLink(t, b.store, before.ID), before)
				return
			}
			want := before
			want.StoredState = billing.LinkLinked
			want.LinkedAt = at
			want.Customer = customer
			want.Terms = terms
			wantEqual(t, "LinkCustomer", got, want)
			wantEqual(t, "GetLink after LinkCustomer", getLink(t, b.store, before.ID), want)
		})
	}
	t.Run("an unknown link is not found", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		_, err := b.store.LinkCustomer(context.Background(), "lnk_missing", customer, terms, "", t0)
		wantErr(t, "LinkCustomer", err, billing.ErrNotFound)
	})
	t.Run("a customer with unusual characters round-trips", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		l := createLink(t, b.store, b.site.ID, "cust-1", t0)
		c := billing.Customer{Name: "Zoë O'Brien-Nguyễn 🦘", Email: "zoë+billing@example.com.au", BSB: "000000", AccountNumber: "000123456789"}
		got, err := b.store.LinkCustomer(context.Background(), l.ID, c, terms, "", t0.Add(time.Minute))
		wantErr(t, "LinkCustomer", err, nil)
		wantEqual(t, "Customer", getLink(t, b.store, got.ID).Customer, c)
	})
	t.Run("the browser a link was linked from is known again, and no other", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		ctx := context.Background()
		fromBrowser := createLink(t, b.store, b.site.ID, "cust-1", t0)
		if _, err := b.store.LinkCustomer(ctx, fromBrowser.ID, customer, terms, "browser-a", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		// The same browser's signup of another customer, and a link linked from no browser.
		sameBrowser := createLink(t, b.store, b.site.ID, "cust-2", t0)
		if _, err := b.store.LinkCustomer(ctx, sameBrowser.ID, customer, terms, "browser-b", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		noBrowser := linkCustomer(t, b.store, createLink(t, b.store, b.site.ID, "cust-3", t0).ID, t0.Add(time.Minute))
		for _, tc := range []struct {
			id, browser string
			want        bool
		}{
			{fromBrowser.ID, "browser-a", true},
			{fromBrowser.ID, "browser-b", false},
			{fromBrowser.ID, "", false},
			{sameBrowser.ID, "browser-a", false},
			{noBrowser.ID, "", false},
			{noBrowser.ID, "browser-a", false},
			{"lnk_missing", "browser-a", false},
		} {
			got, err := b.store.SignedUpFrom(ctx, tc.id, tc.browser)
			wantErr(t, "SignedUpFrom", err, nil)
			if got != tc.want {
				t.Errorf("SignedUpFrom(%s, %q) = %v, want %v", tc.id, tc.browser, got, tc.want)
			}
		}
	})
}

func (s suite) revokeLink(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state string
		by    billing.RevokedBy
		at    time.Duration
		want  error
	}{
		{name: "an open invitation is revoked", state: "invited", by: billing.RevokedByPartner, at: 2 * time.Hour},
		{name: "an invitation can be revoked in its last millisecond", state: "invited", by: billing.RevokedByPartner, at: ttl - time.Millisecond},
		{name: "a linked link is revoked, keeping its customer", state: "linked", by: billing.RevokedByCustomer, at: 2 * time.Hour},
		{name: "a linked link is revoked after the invitation's expiry", state: "linked", by: billing.RevokedByPartner, at: ttl + time.Hour},
		{name: "an invitation past its expiry is stale", state: "invited", by: billing.RevokedByPartner, at: ttl, want: billing.ErrStale},
		{name: "a revoked link is stale", state: "revoked", by: billing.RevokedByCustomer, at: 2 * time.Hour, want: billing.ErrStale},
		{name: "a link stored as expired is stale", state: "stored expired", by: billing.RevokedByPartner, at: ttl + time.Hour, want: billing.ErrStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := s.setup(t)
			before := linkStates[tc.state](t, b.store, b.site.ID)
			at := t0.Add(tc.at)
			got, err := b.store.RevokeLink(context.Background(), before.ID, tc.by, at)
			wantErr(t, "RevokeLink", err, tc.want)
			if tc.want != nil {
				wantEqual(t, "link after refused RevokeLink", getLink(t, b.store, before.ID), before)
				return
			}
			want := before
			want.StoredState = billing.LinkRevoked
			want.RevokedAt = at
			want.RevokedBy = tc.by
			wantEqual(t, "RevokeLink", got, want)
			wantEqual(t, "GetLink after RevokeLink", getLink(t, b.store, before.ID), want)
		})
	}
	t.Run("an unknown link is not found", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		_, err := b.store.RevokeLink(context.Background(), "lnk_missing", billing.RevokedByPartner, t0)
		wantErr(t, "RevokeLink", err, billing.ErrNotFound)
	})
}

func refs(links []billing.Link) []string {
	out := make([]string, len(links))
	for i, l := range links {
		out[i] = l.CustomerReference
	}
	return out
}

func (s suite) listLinks(t *testing.T) {
	t.Run("links are ordered by customerReference in byte order", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		// In byte order: '-' < '0' < 'B' < 'Z' < '_' < 'a'; a linguistic collation would differ.
		for _, ref := range []string{"a", "_x", "Z", "B", "0", "-x", "ab", "aB", "a_"} {
			createLink(t, b.store, b.site.ID, ref, t0)
		}
		got, err := b.store.ListLinks(context.Background(), b.site.ID, billing.LinkFilter{Limit: 100}, t0)
		wantErr(t, "ListLinks", err, nil)
		want := []string{"-x", "0", "B", "Z", "_x", "a", "aB", "a_", "ab"}
		if !slices.Equal(refs(got), want) {
			t.Fatalf("ListLinks = %q, want %q", refs(got), want)
		}
	})
	t.Run("pages follow After and Limit", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		all := []string{"c01", "c02", "c03", "c04", "c05", "c06", "c07"}
		for _, ref := range all {
			createLink(t, b.store, b.site.ID, ref, t0)
		}
		var seen []string
		after := ""
		for page := 0; ; page++ {
			got, err := b.store.ListLinks(context.Background(), b.site.ID, billing.LinkFilter{After: after, Limit: 3}, t0)
			wantErr(t, "ListLinks", err, nil)
			if len(got) > 3 {
				t.Fatalf("page %d has %d links, want at most 3", page, len(got))
			}
			if len(got) == 0 {
				break
			}
			seen = append(seen, refs(got)...)
			after = got[len(got)-1].CustomerReference
		}
		if !slices.Equal(seen, all) {
			t.Fatalf("pages = %q, want %q", seen, all)
		}
	})
	t.Run("After need not be a stored reference", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		for _, ref := range []string{"a", "b", "c"} {
			createLink(t, b.store, b.site.ID, ref, t0)
		}
		got, err := b.store.ListLinks(context.Background(), b.site.ID, billing.LinkFilter{After: "aa", Limit: 10}, t0)
		wantErr(t, "ListLinks", err, nil)
		if want := []string{"b", "c"}; !slices.Equal(refs(got), want) {
			t.Fatalf("ListLinks = %q, want %q", refs(got), want)
		}
	})
	t.Run("an empty site lists nothing", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		got, err := b.store.ListLinks(context.Background(), b.site.ID, billing.LinkFilter{Limit: 10}, t0)
		wantErr(t, "ListLinks", err, nil)
		if len(got) != 0 {
			t.Fatalf("ListLinks = %q, want none", refs(got))
		}
	})
	t.Run("links of other sites are not listed", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := createSite(t, b.store, b.org.ID)
		createLink(t, b.store, b.site.ID, "mine", t0)
		createLink(t, b.store, other.ID, "theirs", t0)
		got, err := b.store.ListLinks(context.Background(), b.site.ID, billing.LinkFilter{Limit: 10}, t0)
		wantErr(t, "ListLinks", err, nil)
		if want := []string{"mine"}; !slices.Equal(refs(got), want) {
			t.Fatalf("ListLinks = %q, want %q", refs(got), want)
		}
	})

	t.Run("by state", func(t *testing.T) {
		t.Parallel()
		// One site with a current link in each state at now = t0+ttl+1h, and superseded links
		// that must never be listed, shared by the parallel cases below (this test's cleanup
		// closes the store after they all end).
		now := t0.Add(ttl + time.Hour)
		b := s.setup(t)
		store, site := b.store, b.site.ID
		links := map[string]billing.Link{
			// Created an hour before now: open.
			"invited": createLink(t, store, site, "invited", now.Add(-time.Hour)),
			// Created at t0: past its expiry at now, still stored as invited.
			"expired": createLink(t, store, site, "expired", t0),
			"linked":  linkCustomer(t, store, createLink(t, store, site, "linked", t0).ID, t0.Add(time.Hour)),
			"revoked": revokeLink(t, store, createLink(t, store, site, "revoked", t0).ID, t0.Add(time.Hour)),
		}
		// A revoked link superseded by an open invitation: only the invitation is listed.
		revokeLink(t, store, createLink(t, store, site, "reinvited", t0).ID, t0.Add(time.Hour))
		links["reinvited"] = createLink(t, store, site, "reinvited", now.Add(-time.Hour))
		// An invitation superseded by another once expired; the second is expired by now too.
		createLink(t, store, site, "reexpired", t0.Add(-ttl))
		links["reexpired"] = createLink(t, store, site, "reexpired", t0)

		for _, tc := range []struct {
			name  string
			state billing.LinkState
			now   time.Time
			want  []string
		}{
			{name: "no state lists every current link", now: now,
				want: []string{"expired", "invited", "linked", "reexpired", "reinvited", "revoked"}},
			{name: "invited excludes invitations past expiry", state: billing.LinkInvited, now: now,
				want: []string{"invited", "reinvited"}},
			{name: "expired includes invitations past expiry still stored as invited", state: billing.LinkExpired, now: now,
				want: []string{"expired", "reexpired"}},
			{name: "linked lists linked links", state: billing.LinkLinked, now: now, want: []string{"linked"}},
			{name: "revoked lists revoked links", state: billing.LinkRevoked, now: now, want: []string{"revoked"}},
			{name: "an invitation is invited until its ExpiresAt", state: billing.LinkInvited, now: t0.Add(ttl - time.Millisecond),
				want: []string{"expired", "invited", "reexpired", "reinvited"}},
			{name: "an invitation is expired from its ExpiresAt", state: billing.LinkExpired, now: t0.Add(ttl),
				want: []string{"expired", "reexpired"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				got, err := b.store.ListLinks(context.Background(), b.site.ID, billing.LinkFilter{State: tc.state, Limit: 100}, tc.now)
				wantErr(t, "ListLinks", err, nil)
				if !slices.Equal(refs(got), tc.want) {
					t.Fatalf("ListLinks(%q at %s) = %q, want %q", tc.state, tc.now, refs(got), tc.want)
				}
				for _, l := range got {
					want := links[l.CustomerReference]
					want.Customer = billing.Customer{} // a list is the partner's: no customer's details
					wantEqual(t, "listed "+l.CustomerReference, l, want)
				}
			})
		}
		t.Run("a state filter pages with After and Limit", func(t *testing.T) {
			t.Parallel()
			f := billing.LinkFilter{State: billing.LinkExpired, After: "expired", Limit: 1}
			got, err := b.store.ListLinks(context.Background(), b.site.ID, f, now)
			wantErr(t, "ListLinks", err, nil)
			if want := []string{"reexpired"}; !slices.Equal(refs(got), want) {
				t.Fatalf("ListLinks = %q, want %q", refs(got), want)
			}
		})
	})
}
