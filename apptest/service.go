package apptest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail/sandbox"
	"github.com/pyng/receivables/storage"
)

// ServiceOptions change how NewService builds the service.
type ServiceOptions struct {
	// Clock is the service's and the sandbox rail's clock (nil: the system's).
	Clock billing.Clock
	// SettlementDelay is how long the sandbox rail takes to settle, on Clock.
	SettlementDelay time.Duration
	// NoSandbox applies the rules outside the sandbox (webhook URLs: https, public hosts).
	NoSandbox bool
}

// NewService builds the server's billing service, with the rails it offers, over a fresh
// database of engine, for tests that call the domain without HTTP.
func NewService(t testing.TB, engine string, opts ...ServiceOptions) (*billing.Service, storage.Database) {
	t.Helper()
	var o ServiceOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	db := dbtest.Open(t, engine)
	service, _ := ServiceOver(t, db, o)
	return service, db
}

// ServiceOver builds the server's billing service over db, and gives the rails it opened.
func ServiceOver(t testing.TB, db storage.Database, o ServiceOptions) (*billing.Service, app.Rails) {
	t.Helper()
	if o.Clock == nil {
		o.Clock = billing.SystemClock{}
	}
	service, rails, err := app.NewService(context.Background(), db, o.Clock, app.ServiceSettings{SettlementDelay: o.SettlementDelay,
		Sandbox: !o.NoSandbox, PrivateWebhooks: !o.NoSandbox})
	if err != nil {
		t.Fatalf("service: %v", err)
	}
	return service, rails
}

// SandboxLedger opens the sandbox rail's ledger in db again, for a test to read what the service's
// own rail recorded there.
func SandboxLedger(t testing.TB, db storage.Database) *sandbox.Ledger {
	t.Helper()
	ledger, err := sandbox.OpenLedger(context.Background(), db.Conn())
	if err != nil {
		t.Fatalf("sandbox ledger: %v", err)
	}
	return ledger
}

// NewSite creates an organisation named name with one site of the same name.
func NewSite(t testing.TB, service *billing.Service, name string) billing.Site {
	t.Helper()
	ctx := context.Background()
	org, err := service.CreateOrganisation(ctx, name)
	if err != nil {
		t.Fatalf("create organisation: %v", err)
	}
	site, err := service.CreateSite(ctx, org.ID, name)
	if err != nil {
		t.Fatalf("create site: %v", err)
	}
	return site
}

// OnRail moves the site to the named rail, first setting its debit user (a legal name and an
// email) as a rail that collects needs it, and returns the site as it now is.
func OnRail(t testing.TB, service *billing.Service, siteID, railName string) billing.Site {
	t.Helper()
	ctx := context.Background()
	name, email := "Acme Pty Ltd", "accounts@acme.example"
	if _, err := service.UpdateSite(ctx, siteID, billing.SiteUpdate{LegalName: &name, Email: &email}); err != nil {
		t.Fatalf("set the debit user of site %s: %v", siteID, err)
	}
	site, err := service.SetSiteRail(ctx, siteID, railName)
	if err != nil || site.Rail != railName {
		t.Fatalf("put site %s on the %s rail = %+v, %v", siteID, railName, site, err)
	}
	return site
}

// LinkedCustomer invites the customer of reference ref at site and signs them up through the
// sandbox, so that their debits go to the rail.
func LinkedCustomer(t testing.TB, service *billing.Service, site billing.Site, ref string) billing.Link {
	t.Helper()
	ctx := context.Background()
	if _, err := service.Invite(ctx, site, ref); err != nil {
		t.Fatalf("invite %s: %v", ref, err)
	}
	link, err := service.SimulateSignup(ctx, site, ref)
	if err != nil {
		t.Fatalf("sign up %s: %v", ref, err)
	}
	return link
}

// SubmitBatch submits at site a new batch of reference ref with rows, ready to execute.
func SubmitBatch(t testing.TB, service *billing.Service, site billing.Site, ref string, rows ...billing.RowRequest) billing.Batch {
	t.Helper()
	b, replayed, err := service.SubmitBatch(context.Background(), site, billing.BatchRequest{Reference: ref, Rows: rows})
	if err != nil || replayed {
		t.Fatalf("submit batch %s = replayed %v, %v; want a new batch", ref, replayed, err)
	}
	return b
}

// SubmitOneDebit links the customer "C1" at site and submits batch "B1" of one row, "R1", debiting
// them 100: the smallest batch that reaches the rail.
func SubmitOneDebit(t testing.TB, service *billing.Service, site billing.Site) billing.Batch {
	t.Helper()
	LinkedCustomer(t, service, site, "C1")
	return SubmitBatch(t, service, site, "B1", billing.RowRequest{Reference: "R1", CustomerReference: "C1", Amount: 100})
}

// SyncBuffer collects what a server writes, its logs or its banner, while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
