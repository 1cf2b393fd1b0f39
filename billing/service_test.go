package billing_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/storage"
)

func TestNewServiceRefusesAMissingDependency(t *testing.T) {
	complete := func() billing.Config {
		return billing.Config{
			Store:         struct{ billing.Store }{},
			Batches:       struct{ billing.BatchStore }{},
			Events:        struct{ billing.EventStore }{},
			Rails:         map[string]rail.Rail{rail.Sandbox: &recordingRail{}},
			Clock:         billing.SystemClock{},
			InvitationTTL: time.Hour,
		}
	}
	cases := []struct {
		name    string
		change  func(c *billing.Config)
		missing string // "" when the service is built
	}{
		{"every dependency given", func(*billing.Config) {}, ""},
		{"no store", func(c *billing.Config) { c.Store = nil }, "Store"},
		{"no batch store", func(c *billing.Config) { c.Batches = nil }, "Batches"},
		{"no rail", func(c *billing.Config) { c.Rails = nil }, "Rails"},
		{"a rail registered as nil", func(c *billing.Config) { c.Rails["other"] = nil }, `Rails["other"]`},
		{"no clock", func(c *billing.Config) { c.Clock = nil }, "Clock"},
		{"no invitation lifetime", func(c *billing.Config) { c.InvitationTTL = 0 }, "InvitationTTL"},
		{"the BECS rail without its user IDs", func(c *billing.Config) { c.Rails[rail.BECS] = &recordingRail{} }, "DebitUserID"},
		{"the BECS rail with its user IDs", func(c *billing.Config) {
			c.Rails[rail.BECS] = &recordingRail{}
			c.DebitUserID = func(context.Context, string) (string, error) { return "301500", nil }
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := complete()
			tc.change(&cfg)
			defer func() {
				got, _ := recover().(string)
				switch {
				case tc.missing == "" && got != "":
					t.Errorf("NewService panicked: %s", got)
				case tc.missing != "" && !strings.Contains(got, "missing "+tc.missing):
					t.Errorf("NewService panicked with %q, want it to name the missing %s", got, tc.missing)
				}
			}()
			if s := billing.NewService(cfg); s == nil {
				t.Error("NewService returned nil")
			}
		})
	}
}

// recordingRail settles every debit at once as a success, and keeps what it was sent.
type recordingRail struct {
	mu     sync.Mutex
	debits []rail.Debit
}

func (r *recordingRail) Submit(_ context.Context, debits []rail.Debit) ([]rail.Outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.debits = append(r.debits, debits...)
	out := make([]rail.Outcome, len(debits))
	for i, d := range debits {
		out[i] = rail.Outcome{Key: d.Key, Settled: true, SettledAt: time.Now().UTC()}
	}
	return out, nil
}

func (r *recordingRail) Outcomes(context.Context, []string) ([]rail.Outcome, error) {
	return nil, nil
}

func (r *recordingRail) sent() []rail.Debit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.debits
}

// onEachEngine runs test, in parallel, on a fresh database of every engine.
func onEachEngine(t *testing.T, test func(t *testing.T, db storage.Database)) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) { test(t, dbtest.Open(t, engine)) })
}

// newService is a service over db with the given rails.
func newService(db storage.Database, rails map[string]rail.Rail) *billing.Service {
	return billing.NewService(billing.Config{Store: db, Batches: db, Events: db, Rails: rails, Clock: billing.SystemClock{}, InvitationTTL: time.Hour, Sandbox: true})
}

// newOrganisation stores an organisation and returns its id.
func newOrganisation(t *testing.T, db storage.Database) string {
	t.Helper()
	org := billing.Organisation{ID: billing.NewID("org"), Name: "Acme", CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if err := db.CreateOrganisation(context.Background(), org); err != nil {
		t.Fatal(err)
	}
	return org.ID
}

func TestDebitsGoToTheRailOfTheirSiteInItsCurrency(t *testing.T) {
	onEachEngine(t, func(t *testing.T, db storage.Database) {
		ctx := context.Background()
		site := billing.Site{ID: billing.NewID("site"), OrganisationID: newOrganisation(t, db), Name: "Kiwi",
			Currency: "NZD", Rail: rail.Sandbox, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
		if err := db.CreateSite(ctx, site); err != nil {
			t.Fatal(err)
		}
		sandbox, other := &recordingRail{}, &recordingRail{}
		service := newService(db, map[string]rail.Rail{rail.Sandbox: sandbox, "other": other})
		b := apptest.SubmitOneDebit(t, service, site)
		done, _, err := service.ExecuteBatch(ctx, b.ID)
		if err != nil || !done {
			t.Fatalf("ExecuteBatch = %v, %v; want done", done, err)
		}
		if sent := sandbox.sent(); len(sent) != 1 || sent[0].Currency != "NZD" || sent[0].Amount != 100 {
			t.Errorf("the site's rail was sent %+v, want one debit of 100 NZD", sent)
		}
		if sent := other.sent(); len(sent) != 0 {
			t.Errorf("another rail was sent %+v, want nothing", sent)
		}
	})
}

// queueingRail holds every debit for a later cut-off (as the BECS rail does), and keeps what it
// was sent.
type queueingRail struct{ recordingRail }

func (r *queueingRail) Submit(ctx context.Context, debits []rail.Debit) ([]rail.Outcome, error) {
	if _, err := r.recordingRail.Submit(ctx, debits); err != nil {
		return nil, err
	}
	out := make([]rail.Outcome, len(debits))
	for i, d := range debits {
		out[i] = rail.Outcome{Key: d.Key, Queued: true, SettlesAt: time.Now().Add(time.Hour)}
	}
	return out, nil
}

// TestASiteMovedToAnotherRailLeavesItsEarlierBatchesOnTheirs: a debit the first rail holds for its
// cut-off must not be sent to the second rail as well (it would be collected twice); the batches
// accepted after the move go to the second.
func TestASiteMovedToAnotherRailLeavesItsEarlierBatchesOnTheirs(t *testing.T) {
	onEachEngine(t, func(t *testing.T, db storage.Database) {
		ctx := context.Background()
		files, other := &queueingRail{}, &recordingRail{}
		service := newService(db, map[string]rail.Rail{"files": files, "other": other})
		site, err := service.CreateSite(ctx, newOrganisation(t, db), "Acme")
		if err != nil {
			t.Fatal(err)
		}
		site = apptest.OnRail(t, service, site.ID, "files")
		before := apptest.SubmitOneDebit(t, service, site)
		if done, _, err := service.ExecuteBatch(ctx, before.ID); err != nil || done {
			t.Fatalf("ExecuteBatch = %v, %v; want the debit held by its rail", done, err)
		}
		if _, err := service.SetSiteRail(ctx, site.ID, "other"); err != nil {
			t.Fatal(err)
		}
		if done, _, err := service.ExecuteBatch(ctx, before.ID); err != nil || done {
			t.Fatalf("ExecuteBatch after the move = %v, %v; want the debit still held by its rail", done, err)
		}
		if sent := files.sent(); len(sent) != 2 || sent[0].Key != sent[1].Key {
			t.Errorf("the first rail was sent %+v, want the one debit, once a step", sent)
		}
		if sent := other.sent(); len(sent) != 0 {
			t.Fatalf("the second rail was sent %+v of a batch accepted before the move", sent)
		}

		after := apptest.SubmitBatch(t, service, site, "B2", billing.RowRequest{Reference: "R1", CustomerReference: "C1", Amount: 100})
		if after.Rail != "other" {
			t.Errorf("a batch accepted after the move is on %q, want other", after.Rail)
		}
		if done, _, err := service.ExecuteBatch(ctx, after.ID); err != nil || !done {
			t.Fatalf("ExecuteBatch of a batch accepted after the move = %v, %v; want done", done, err)
		}
		if sent := other.sent(); len(sent) != 1 {
			t.Errorf("the second rail was sent %+v, want the later batch's debit", sent)
		}
	})
}

// sendingRail sends each debit it is given (neither queued nor settled), and reports them settled,
// succeeded, once lodged (as the BECS rail does when a file is lodged).
type sendingRail struct {
	recordingRail
	lodged atomic.Bool
}

func (r *sendingRail) Submit(ctx context.Context, debits []rail.Debit) ([]rail.Outcome, error) {
	if _, err := r.recordingRail.Submit(ctx, debits); err != nil {
		return nil, err
	}
	return r.Outcomes(ctx, keysOf(debits))
}

func (r *sendingRail) Outcomes(_ context.Context, keys []string) ([]rail.Outcome, error) {
	out := make([]rail.Outcome, len(keys))
	for i, k := range keys {
		out[i] = rail.Outcome{Key: k, SettlesAt: time.Now().Add(time.Hour)}
		if r.lodged.Load() {
			out[i] = rail.Outcome{Key: k, Settled: true, SettledAt: time.Now().UTC()}
		}
	}
	return out, nil
}

func keysOf(debits []rail.Debit) []string {
	keys := make([]string, len(debits))
	for i, d := range debits {
		keys[i] = d.Key
	}
	return keys
}

// TestADebitSettledBeforeItsDeadlineIsNeverToldExpired: the rail settled the debit (its file
// lodged) but no step of the batch recorded it before the deadline; whichever expires the batch,
// its next step or the periodic sweep, asks the rail first, so the row succeeds.
func TestADebitSettledBeforeItsDeadlineIsNeverToldExpired(t *testing.T) {
	for _, expire := range []struct {
		name string
		run  func(ctx context.Context, service *billing.Service, b billing.Batch) error
	}{
		{"the batch's step", func(ctx context.Context, service *billing.Service, b billing.Batch) error {
			_, _, err := service.ExecuteBatch(ctx, b.ID)
			return err
		}},
		{"the sweep", func(ctx context.Context, service *billing.Service, _ billing.Batch) error {
			_, err := service.ExpireOverdue(ctx)
			return err
		}},
	} {
		t.Run(expire.name, func(t *testing.T) {
			onEachEngine(t, func(t *testing.T, db storage.Database) {
				ctx := context.Background()
				clock := clocktest.New()
				files := &sendingRail{}
				service := billing.NewService(billing.Config{Store: db, Batches: db, Events: db, Rails: map[string]rail.Rail{"files": files},
					Clock: clock, InvitationTTL: time.Hour, Sandbox: true})
				site, err := service.CreateSite(ctx, newOrganisation(t, db), "Acme")
				if err != nil {
					t.Fatal(err)
				}
				site = apptest.OnRail(t, service, site.ID, "files")
				b := apptest.SubmitOneDebit(t, service, site)
				if done, _, err := service.ExecuteBatch(ctx, b.ID); err != nil || done {
					t.Fatalf("ExecuteBatch = %v, %v; want the debit sent, not settled", done, err)
				}
				files.lodged.Store(true) // and no step runs before the deadline
				clock.Set(b.Deadline)
				if err := expire.run(ctx, service, b); err != nil {
					t.Fatal(err)
				}
				_, _, rows, err := service.Batch(ctx, site, b.Reference, "")
				if err != nil || len(rows) != 1 || rows[0].State != billing.RowSucceeded {
					t.Fatalf("rows = %+v, %v; want the debit succeeded, as its rail settled it", rows, err)
				}
			})
		})
	}
}

func TestExecutionFailsWhenTheSiteRailIsNotRegistered(t *testing.T) {
	onEachEngine(t, func(t *testing.T, db storage.Database) {
		ctx := context.Background()
		other := &recordingRail{}
		service := newService(db, map[string]rail.Rail{"other": other})
		site, err := service.CreateSite(ctx, newOrganisation(t, db), "Acme") // on the sandbox rail
		if err != nil {
			t.Fatal(err)
		}
		b := apptest.SubmitOneDebit(t, service, site)
		done, _, err := service.ExecuteBatch(ctx, b.ID)
		if done || err == nil || billing.AsErrors(err) != nil {
			t.Fatalf("ExecuteBatch = %v, %v; want an internal error", done, err)
		}
		for _, want := range []string{site.ID, `"sandbox"`, "not registered"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %s", err, want)
			}
		}
		if sent := other.sent(); len(sent) != 0 {
			t.Errorf("a rail the site does not name was sent %+v", sent)
		}
	})
}

// The operators' commands name the field of an unknown id, as every other error does.
func TestUnknownIDsOfOperatorCommandsNameTheirField(t *testing.T) {
	onEachEngine(t, func(t *testing.T, db storage.Database) {
		ctx := context.Background()
		service := newService(db, map[string]rail.Rail{rail.Sandbox: &recordingRail{}})
		for _, tc := range []struct {
			name   string
			call   func() error
			target string
		}{
			{"a site of an unknown organisation", func() error {
				_, err := service.CreateSite(ctx, "org_missing", "Acme")
				return err
			}, "organisationId"},
			{"a client of an unknown organisation", func() error {
				_, _, err := service.CreateClient(ctx, "org_missing", billing.AllScopes)
				return err
			}, "organisationId"},
			{"the revocation of an unknown client", func() error {
				_, err := service.RevokeClient(ctx, "cli_missing")
				return err
			}, "clientId"},
		} {
			errs := billing.AsErrors(tc.call())
			if len(errs) != 1 || errs[0].Code != billing.CodeInvalidField || errs[0].Target != tc.target {
				t.Errorf("%s: errors %v, want one invalid-field with target %s", tc.name, errs, tc.target)
			}
		}
	})
}

// siteReadCounter counts the sites its store reads.
type siteReadCounter struct {
	billing.Store
	reads atomic.Int64
}

func (c *siteReadCounter) GetSite(ctx context.Context, id string) (billing.Site, error) {
	c.reads.Add(1)
	return c.Store.GetSite(ctx, id)
}

// TestAnotherOrganisationsSiteCostsWhatAMissingSiteCosts checks that Service.Site does the same
// store reads for a site of another organisation as for a site that does not exist, however often
// it is asked, so that neither the answer nor the time it takes tells a prober which sites exist;
// the owner's site is still read once and then served from the cache.
func TestAnotherOrganisationsSiteCostsWhatAMissingSiteCosts(t *testing.T) {
	onEachEngine(t, func(t *testing.T, db storage.Database) {
		ctx := context.Background()
		store := &siteReadCounter{Store: db}
		service := billing.NewService(billing.Config{Store: store, Batches: db, Events: db, Rails: map[string]rail.Rail{rail.Sandbox: &recordingRail{}},
			Clock: billing.SystemClock{}, InvitationTTL: time.Hour})
		site, err := service.CreateSite(ctx, newOrganisation(t, db), "Acme")
		if err != nil {
			t.Fatal(err)
		}
		owner := billing.Caller{OrganisationID: site.OrganisationID}
		prober := billing.Caller{OrganisationID: newOrganisation(t, db)}
		reads := func(caller billing.Caller, siteID string) (int64, error) {
			before := store.reads.Load()
			_, err := service.Site(ctx, caller, siteID)
			return store.reads.Load() - before, err
		}
		if _, err := reads(owner, site.ID); err != nil {
			t.Fatalf("the owner's site: %v", err)
		}
		for i := range 3 {
			foreign, errForeign := reads(prober, site.ID)
			missing, errMissing := reads(prober, "site_doesnotexist")
			if foreign != missing || foreign == 0 {
				t.Errorf("request %d: another organisation's site took %d store reads, a missing site %d; want the same, at least one", i+1, foreign, missing)
			}
			if errForeign == nil || errMissing == nil || errForeign.Error() != errMissing.Error() {
				t.Errorf("request %d: another organisation's site answers %v, a missing site %v; want the same not-found", i+1, errForeign, errMissing)
			}
			if n, err := reads(owner, site.ID); n != 0 || err != nil {
				t.Errorf("request %d: the owner's cached site took %d store reads (%v), want none", i+1, n, err)
			}
		}
	})
}

// A customer's name needs a letter, of any script, and may hold no character that reorders the
// text around it, nor a web or email address that a mail client would make a link of (the emails
// greet the customer by the name typed, and whoever holds a signup link may type it).
func TestValidateCustomerName(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, typed string
		wantError   string // "" when the name is accepted
	}{
		{name: "a Latin name", typed: "Ada Lovelace"},
		{name: "accents and apostrophes", typed: "Zoë O’Brien"},
		{name: "another script", typed: "李小龍"},
		{name: "a right-to-left script", typed: "محمد"},
		{name: "zero-width spaces only", typed: "\u200b\u200b", wantError: "at least one letter"},
		{name: "digits only", typed: "42", wantError: "at least one letter"},
		{name: "a right-to-left override", typed: "Ada\u202e", wantError: "change the direction of text"},
		{name: "a left-to-right embedding", typed: "\u202aAda", wantError: "change the direction of text"},
		{name: "a first-strong isolate", typed: "\u2068Ada\u2069", wantError: "change the direction of text"},
		{name: "an apostrophe", typed: "O'Brien"},
		{name: "an ampersand and abbreviations", typed: "Smith & Sons Pty Ltd"},
		{name: "initials", typed: "J.R.R. Tolkien"},
		{name: "Vietnamese", typed: "Nguyễn Văn A"},
		{name: "an abbreviation with its full stop", typed: "St. John"},
		{name: "initials of a business", typed: "A.B.C. Holdings"},
		{name: "a hyphen", typed: "Mary-Jane Watson"},
		{name: "a dot between digits", typed: "Unit 1.5 Holdings"},
		{name: "a URL", typed: "Visit http://evil.example/claim", wantError: "without a web or email address"},
		{name: "a scheme in capitals", typed: "HTTPS://EVIL.EXAMPLE", wantError: "without a web or email address"},
		{name: "www.", typed: "www.evil.example", wantError: "without a web or email address"},
		{name: "an email address", typed: "me@evil.example", wantError: "without a web or email address"},
		{name: "a domain and a path", typed: "evil.example/claim", wantError: "without a web or email address"},
		{name: "a domain of a short top-level domain, mid-sentence", typed: "go to bit.ly now", wantError: "Put a space after each full stop"},
		{name: "a domain at the end", typed: "Refunds at evil.example", wantError: "Put a space after each full stop"},
		{name: "a domain and a port", typed: "Ada evil.example:8080", wantError: "Put a space after each full stop"},
		{name: "a domain of another script", typed: "Ада пример.рф", wantError: "Put a space after each full stop"},
		{name: "full-width characters", typed: "me\uff20evil\uff0eexample", wantError: "without a web or email address"},
		{name: "a full-width full stop", typed: "go to bit\uff0ely now", wantError: "Put a space after each full stop"},
		{name: "initials without their space", typed: "J.Smith", wantError: "Put a space after each full stop in your name, as in J. Smith"},
		{name: "initials with their space", typed: "J. Smith"},
		{name: "a single name", typed: "Cher"},
		{name: "a phone number", typed: "Ring 1300 555 123 re your refund", wantError: "without a phone number"},
		{name: "a phone number of full-width digits", typed: "Ring \uff11\uff13\uff10\uff10 555 123", wantError: "without a phone number"},
		{name: "a few digits", typed: "Ada Lovelace 2nd", wantError: ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := billing.Customer{Name: tt.typed, Email: "ada@example.com", AccountName: "A LOVELACE", Type: billing.CustomerIndividual,
				BSB: "062000", AccountNumber: "12345678"}
			_, err := billing.ValidateCustomer(c, billing.Declarations{Consent: true, Authorised: true})
			errs := billing.AsErrors(err)
			switch {
			case tt.wantError == "" && err != nil:
				t.Errorf("ValidateCustomer(%q): %v, want it accepted", tt.typed, err)
			case tt.wantError != "" && (len(errs) != 1 || errs[0].Target != "name" || !strings.Contains(errs[0].Message, tt.wantError)):
				t.Errorf("ValidateCustomer(%q): %v, want one error of the name saying %q", tt.typed, err, tt.wantError)
			}
		})
	}
}

// A site takes a rail that collects only once its debit user is set as its customers' Direct
// Debit Request needs it: a legal name and a way to reach it (a phone number, an email or a postal
// address). The sandbox rail, which debits nobody, needs neither.
func TestASiteTakesARailThatCollectsOnlyWithItsDebitUser(t *testing.T) {
	onEachEngine(t, func(t *testing.T, db storage.Database) {
		ctx := context.Background()
		service := newService(db, map[string]rail.Rail{"files": &queueingRail{}, rail.Sandbox: &recordingRail{}})
		text := func(s string) *string { return &s }
		for _, tc := range []struct {
			name   string
			update billing.SiteUpdate
			ok     bool
		}{
			{"nothing set", billing.SiteUpdate{}, false},
			{"a legal name alone", billing.SiteUpdate{LegalName: text("Acme Pty Ltd"), ABN: text("51824753556")}, false},
			{"a contact without a legal name", billing.SiteUpdate{Email: text("accounts@acme.example")}, false},
			{"a legal name and a phone number", billing.SiteUpdate{LegalName: text("Acme Pty Ltd"), Phone: text("02 9999 0000")}, true},
			{"a legal name and an email", billing.SiteUpdate{LegalName: text("Acme Pty Ltd"), Email: text("accounts@acme.example")}, true},
			{"a legal name and an address", billing.SiteUpdate{LegalName: text("Acme Pty Ltd"), Address: text("1 George St, Sydney NSW 2000")}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				site, err := service.CreateSite(ctx, newOrganisation(t, db), "Acme")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := service.UpdateSite(ctx, site.ID, tc.update); err != nil {
					t.Fatal(err)
				}
				moved, err := service.SetSiteRail(ctx, site.ID, "files")
				errs := billing.AsErrors(err)
				switch {
				case tc.ok && (err != nil || moved.Rail != "files"):
					t.Errorf("SetSiteRail = %+v, %v; want the site on the rail", moved.Rail, err)
				case !tc.ok && (len(errs) != 1 || errs[0].Target != "site" || !strings.Contains(errs[0].Message, "debit user is not set")):
					t.Errorf("SetSiteRail = %v; want refused, the debit user not set", err)
				}
				if got, err := service.SiteByID(ctx, site.ID); err != nil || got.Rail != map[bool]string{true: "files", false: rail.Sandbox}[tc.ok] {
					t.Errorf("the site's rail = %q, %v", got.Rail, err)
				}
				if _, err := service.SetSiteRail(ctx, site.ID, rail.Sandbox); err != nil {
					t.Errorf("SetSiteRail to the sandbox rail = %v", err)
				}
			})
		}
	})
}
