package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/ddr"
	"github.com/pyng/receivables/storage"
)

// Migration 00018's Down and then its Up again, over links of every kind, keep each link as it
// was, its sealed bank details, metadata, agreed terms and browser digest included; a link the
// bank revoked reads, after the Down, as revoked by the partner, which the older schema knows. On
// SQLite, which makes customer_links anew (a CHECK cannot be changed in place), the table keeps
// its indexes too.
func TestMigration18KeepsEveryLinkDownAndUp(t *testing.T) {
	dbtest.OnEachEngine(t, testMigration18KeepsEveryLinkDownAndUp)
}

func testMigration18KeepsEveryLinkDownAndUp(t *testing.T, engine string) {
	ctx := context.Background()
	db := dbtest.Open(t, engine)
	org := billing.Organisation{ID: billing.NewID("org"), Name: "Acme", CreatedAt: time.Now()}
	site := billing.Site{ID: billing.NewID("site"), OrganisationID: org.ID, Name: "Acme", Currency: "AUD", Rail: "sandbox", CreatedAt: time.Now()}
	if err := db.CreateOrganisation(ctx, org); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSite(ctx, site); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Truncate(time.Millisecond)
	terms := ddr.Terms{Site: "Acme", DebitUser: "Acme Pty Ltd", UserID: "123456"}
	link := func(ref string, metadata map[string]string) billing.Link {
		l := billing.Link{ID: billing.NewID("lnk"), SiteID: site.ID, CustomerReference: ref, StoredState: billing.LinkInvited,
			CreatedAt: at, ExpiresAt: at.Add(time.Hour), Metadata: metadata}
		if err := db.CreateLink(ctx, l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	invited := link("INVITED", map[string]string{"plan": "pro"})
	linked := link("LINKED", nil)
	if _, err := db.LinkCustomer(ctx, linked.ID, billing.SandboxCustomer, terms, "a browser", at); err != nil {
		t.Fatal(err)
	}
	byBank := link("BY-BANK", nil)
	if _, err := db.LinkCustomer(ctx, byBank.ID, billing.SandboxCustomer, terms, "", at); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RevokeLink(ctx, byBank.ID, billing.RevokedByBank, at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	ids := []string{invited.ID, linked.ID, byBank.ID}
	read := func() []billing.Link {
		t.Helper()
		var links []billing.Link
		for _, id := range ids {
			l, err := db.GetLink(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			links = append(links, l)
		}
		return links
	}
	before := read()
	if before[2].RevokedBy != billing.RevokedByBank || before[1].Terms != terms || before[1].Customer != billing.SandboxCustomer {
		t.Fatalf("the links before the migration: %+v", before)
	}
	migration, err := os.ReadFile(filepath.Join("..", engine, "migrations", "00018_revoked_by_bank.sql"))
	if err != nil {
		t.Fatal(err)
	}
	up, down, ok := strings.Cut(string(migration), "-- +goose Down")
	if !ok {
		t.Fatal("the migration has no Down")
	}
	run := func(part string) {
		t.Helper()
		for statement := range strings.SplitSeq(part, ";") {
			if strings.TrimSpace(statement) == "" {
				continue
			}
			if _, err := db.Conn().Exec(ctx, statement); err != nil {
				t.Fatalf("%s: %v", strings.TrimSpace(statement), err)
			}
		}
	}
	run(down)
	run(up)
	after := read()
	want := before
	want[2].RevokedBy = billing.RevokedByPartner
	for i := range want {
		if !reflect.DeepEqual(after[i], want[i]) {
			t.Errorf("link %s after the Down and the Up:\n%+v\nwant\n%+v", want[i].CustomerReference, after[i], want[i])
		}
	}
	// The Up takes the bank again.
	if _, err := db.Conn().Exec(ctx, `UPDATE customer_links SET revoked_by = 'bank' WHERE id = '`+byBank.ID+`'`); err != nil {
		t.Errorf("revoked_by = 'bank' after the Up: %v", err)
	}
	if engine != storage.EngineSQLite {
		return
	}
	var indexes []string
	err = db.Conn().Query(ctx, `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'customer_links' AND sql IS NOT NULL ORDER BY name`, nil,
		func(row storage.Scanner) error {
			var name string
			err := row.Scan(&name)
			indexes = append(indexes, name)
			return err
		})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(indexes, " "); got != "customer_links_active customer_links_current customer_links_details_revoked customer_links_invited_expiry" {
		t.Errorf("customer_links' indexes after the Up: %s", got)
	}
}
