package app_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/becs/aba"
)

// apiLink is a customer's link as GET of the customer and its events show it.
type apiLink struct {
	CustomerReference string
	State             string
	RevokedAt         int64
	RevokedBy         string
}

// apiFailedRow is a row as GET of a batch shows it, with its failure.
type apiFailedRow struct {
	RowReference  string
	State         string
	FailureReason string
}

// lodged executes batch ref's rows of site, cuts them into a file and lodges it: they succeed.
// It returns the rows' lodgement references, in the order of the batch, and the file's content.
func lodged(t *testing.T, srv *apptest.Server, r *becs.Rail, site billing.Site, ref string) ([]string, []byte) {
	t.Helper()
	ctx := context.Background()
	b, _, rows, err := srv.Service.Batch(ctx, site, ref, "")
	if err != nil {
		t.Fatal(err)
	}
	execute := func() {
		t.Helper()
		if _, _, err := srv.Service.ExecuteBatch(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
	}
	execute()
	files, err := r.Cut(ctx, becs.Calendar{})
	if err != nil || len(files) != 1 {
		t.Fatalf("Cut = %+v, %v; want one file", files, err)
	}
	execute()
	if _, err := r.Lodge(ctx, files[0].ID); err != nil {
		t.Fatal(err)
	}
	execute()
	content, err := r.Content(ctx, files[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	refs := make([]string, len(rows))
	for i, row := range rows {
		refs[i] = becs.LodgementReference(row.ID)
	}
	return refs, content
}

// customerRevokedEvents lists the links of the site's customer.revoked events over HTTP, every
// one written before the call (eventsWritten).
func customerRevokedEvents(t *testing.T, srv *apptest.Server, token string, site billing.Site) []apiLink {
	t.Helper()
	listed := eventsWritten(t, srv, token, site, billing.EventCustomerRevoked)
	links := make([]apiLink, len(listed))
	for i, e := range listed {
		var event struct{ Data apiLink }
		if err := json.Unmarshal(e.Body, &event); err != nil {
			t.Fatal(err)
		}
		links[i] = event.Data
	}
	return links
}

// getCustomer reads the customer's link as the partner does.
func getCustomer(t *testing.T, srv *apptest.Server, token, siteID, ref string) apiLink {
	t.Helper()
	res := srv.Do(t, apptest.Request{Method: "GET", Path: "/billing/sites/" + siteID + "/customers/" + ref, Token: token})
	var body struct{ Data apiLink }
	res.JSON(t, &body)
	if res.Status != 200 {
		t.Fatalf("GET the customer %s = %d %s", ref, res.Status, res.Body)
	}
	return body.Data
}

// A return whose reason ends the customer's authority (accountClosed) revokes the customer's link
// by the bank, with a customer.revoked event, and the customer's debits not yet sent (one waiting
// on the rail for its cut-off, one of a batch not started) fail customerNotActive, as after the
// customer's own revocation; a paymentStopped return of another customer's debit changes nothing
// of that customer. Importing the file again revokes nothing more and writes no other event.
func TestBECSReturnThatEndsTheAuthorityRevokesTheCustomerByTheBank(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			srv := apptest.Start(t, engine, apptest.Options{NoJobs: true})
			service := srv.Service
			r, site := onBECS(t, service, srv.Store.Conn(), srv.Clock, srv.Partner.Site)
			apptest.LinkedCustomer(t, service, site, "C1")
			apptest.LinkedCustomer(t, service, site, "C2")
			apptest.SubmitBatch(t, service, site, "B1", billing.RowRequest{Reference: "R1", CustomerReference: "C1", Amount: 100},
				billing.RowRequest{Reference: "R2", CustomerReference: "C2", Amount: 200})
			refs, content := lodged(t, srv, r, site, "B1")

			// B2's debits wait on the rail for the next cut-off; B3 is not started.
			b2 := apptest.SubmitBatch(t, service, site, "B2", billing.RowRequest{Reference: "R3", CustomerReference: "C1", Amount: 300},
				billing.RowRequest{Reference: "R4", CustomerReference: "C2", Amount: 400})
			if _, _, err := service.ExecuteBatch(ctx, b2.ID); err != nil {
				t.Fatal(err)
			}
			b3 := apptest.SubmitBatch(t, service, site, "B3", billing.RowRequest{Reference: "R5", CustomerReference: "C1", Amount: 500})

			returns, err := becs.ReturnsOf(content, map[string]aba.ReturnReason{
				refs[0]: aba.ReturnAccountClosed,
				refs[1]: aba.ReturnPaymentStopped,
			}, srv.Clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			// Within the rows' deadline: B2 and B3 then fail for their customer, not for their age.
			srv.Clock.Advance(time.Hour)
			report, err := app.ImportBECSReturns(ctx, r, service, srv.Clock, returns)
			if err != nil || report.Returned != 2 {
				t.Fatalf("import = %+v, %v; want both rows returned", report, err)
			}
			token := srv.Token(t, srv.Partner)
			revokedAt := billing.Millis(srv.Clock.Now())
			check := func() {
				t.Helper()
				if got := getCustomer(t, srv, token, site.ID, "C1"); got.State != "revoked" || got.RevokedBy != "bank" || got.RevokedAt != revokedAt {
					t.Errorf("C1 = %+v; want revoked by the bank at %d", got, revokedAt)
				}
				if got := getCustomer(t, srv, token, site.ID, "C2"); got.State != "linked" || got.RevokedBy != "" {
					t.Errorf("C2 = %+v; want linked: a stopped payment does not end the authority", got)
				}
				events := customerRevokedEvents(t, srv, token, site)
				if len(events) != 1 || events[0].CustomerReference != "C1" || events[0].RevokedBy != "bank" || events[0].State != "revoked" {
					t.Errorf("customer.revoked events = %+v; want one, of C1 revoked by the bank", events)
				}
			}
			check()

			// The customer's debit waiting for the cut-off was withdrawn with the revocation, before
			// its batch's next step: the cut-off sends only the other customer's. The customer's
			// debits not yet sent fail customerNotActive.
			files, err := r.Cut(ctx, becs.Calendar{})
			if err != nil || len(files) != 1 || files[0].Rows != 1 || files[0].Total != 400 {
				t.Fatalf("Cut = %+v, %v; want one file of C2's debit only", files, err)
			}
			for _, b := range []billing.Batch{b2, b3} {
				if _, _, err := service.ExecuteBatch(ctx, b.ID); err != nil {
					t.Fatal(err)
				}
			}
			rowsOf := func(ref string) []apiFailedRow {
				t.Helper()
				res := srv.Do(t, apptest.Request{Method: "GET", Path: "/billing/sites/" + site.ID + "/batches/" + ref, Token: token})
				var body struct{ Data struct{ Rows []apiFailedRow } }
				res.JSON(t, &body)
				if res.Status != 200 {
					t.Fatalf("GET the batch %s = %d %s", ref, res.Status, res.Body)
				}
				return body.Data.Rows
			}
			if got := rowsOf("B2"); len(got) != 2 || got[0].State != "failed" || got[0].FailureReason != "customerNotActive" || got[1].State == "failed" {
				t.Errorf("B2's rows = %+v; want R3 failed customerNotActive, R4 not failed", got)
			}
			if got := rowsOf("B3"); len(got) != 1 || got[0].State != "failed" || got[0].FailureReason != "customerNotActive" {
				t.Errorf("B3's rows = %+v; want R5 failed customerNotActive", got)
			}

			// The same file again revokes nothing more.
			srv.Clock.Advance(time.Minute)
			again, err := app.ImportBECSReturns(ctx, r, service, srv.Clock, returns)
			if err != nil || again.Returned != 0 || again.AlreadyReturned != 2 {
				t.Fatalf("the second import = %+v, %v", again, err)
			}
			check() // no second event
		})
	}
}

// A return of a debit made under a link the customer has since revoked does not revoke the link
// they made after it (perhaps with another account): that authority is not the one the bank
// ended.
func TestBECSReturnOfADebitOfAnEarlierLinkLeavesTheCustomersNewLink(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			srv := apptest.Start(t, engine, apptest.Options{NoJobs: true})
			service := srv.Service
			r, site := onBECS(t, service, srv.Store.Conn(), srv.Clock, srv.Partner.Site)
			apptest.LinkedCustomer(t, service, site, "C1")
			apptest.SubmitBatch(t, service, site, "B1", billing.RowRequest{Reference: "R1", CustomerReference: "C1", Amount: 100})
			refs, content := lodged(t, srv, r, site, "B1")

			srv.Clock.Advance(time.Hour)
			if _, err := service.RevokeByPartner(ctx, site, "C1"); err != nil {
				t.Fatal(err)
			}
			srv.Clock.Advance(time.Hour)
			relinked := apptest.LinkedCustomer(t, service, site, "C1")

			returns, err := becs.ReturnsOf(content, map[string]aba.ReturnReason{refs[0]: aba.ReturnAccountClosed}, srv.Clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			srv.Clock.Advance(time.Hour)
			if report, err := app.ImportBECSReturns(ctx, r, service, srv.Clock, returns); err != nil || report.Returned != 1 {
				t.Fatalf("import = %+v, %v; want the row returned", report, err)
			}
			token := srv.Token(t, srv.Partner)
			if got := getCustomer(t, srv, token, site.ID, "C1"); got.State != "linked" {
				t.Errorf("C1 = %+v; want the new link still linked", got)
			}
			if l, err := service.Link(ctx, site, "C1"); err != nil || l.ID != relinked.ID || l.StoredState != billing.LinkLinked {
				t.Errorf("C1's link = %+v, %v; want %s linked", l, err, relinked.ID)
			}
			events := customerRevokedEvents(t, srv, token, site)
			if len(events) != 1 || events[0].RevokedBy != "partner" {
				t.Errorf("customer.revoked events = %+v; want only the partner's", events)
			}
		})
	}
}
