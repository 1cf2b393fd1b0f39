package becs_test

import (
	"bytes"
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/becs/aba"
)

// firstRowReturned submits batch B1 of two debits, cuts them in a file and returns it, with a
// returns file of the first row's debit (paymentStopped); the rows are inProgress.
func (f fixture) firstRowReturned(t *testing.T) (becs.File, []byte) {
	t.Helper()
	b := f.submit(t, "B1", 100, 200)
	file := f.cutOne(t)
	f.execute(t, b)
	content, err := f.rail.Content(context.Background(), file.ID)
	if err != nil {
		t.Fatal(err)
	}
	first := becs.LodgementReference(f.rows(t, "B1")[0].ID)
	returns, err := becs.ReturnsOf(content, map[string]aba.ReturnReason{first: aba.ReturnPaymentStopped}, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return file, returns
}

// README: "An item that matches no row that can be returned (... a row that did not succeed ...)
// is printed on stderr and kept (`returns unmatched`), never dropped; importing the file again
// once its row can be returned records it." And KeepUnmatched forgets the item then.
func TestAnItemKeptBeforeItsRowSucceededIsRecordedOnReimport(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		file, returns := f.firstRowReturned(t)
		first, err := app.ImportBECSReturns(ctx, f.rail, f.service, f.clock, returns)
		if err != nil || first.Returned != 0 || len(first.Unmatched) != 1 {
			t.Fatalf("import while the row is inProgress = %+v, %v; want the item unmatched", first, err)
		}
		if kept, _ := f.rail.Unmatched(ctx); len(kept) != 1 {
			t.Fatalf("kept %d, want 1", len(kept))
		}
		if _, err := f.rail.Lodge(ctx, file.ID); err != nil {
			t.Fatal(err)
		}
		keys, _ := f.rail.Keys(ctx, file.ID)
		if _, err := f.service.RecordRailOutcomes(ctx, rail.BECS, keys); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Hour)
		again, err := app.ImportBECSReturns(ctx, f.rail, f.service, f.clock, returns)
		if err != nil || again.Returned != 1 || len(again.Unmatched) != 0 {
			t.Fatalf("import once the row succeeded = %+v, %v; want it returned", again, err)
		}
		if kept, _ := f.rail.Unmatched(ctx); len(kept) != 0 {
			t.Fatalf("kept %+v after the item matched; want it forgotten", kept)
		}
		got := f.rows(t, "B1")
		if got[0].State != billing.RowSucceeded || got[0].ReturnReason != "paymentStopped" || got[0].Retryable() || got[0].FileID != file.ID {
			t.Fatalf("row 0 = %+v", got[0])
		}
		if got[1].Returned() {
			t.Fatalf("row 1 returned: %+v", got[1])
		}
	})
}

// A bank's returns files may overlap: the next day's repeats an item of the day before. An item
// kept unmatched from the first file (its row not yet succeeded) that the second file's same item
// then returns is no longer listed as unmatched: its row is returned, and an operator working
// through returns unmatched would chase a return already recorded. (It stayed listed: only an
// import of the same file forgot its items.)
func TestAnItemKeptFromOneFileIsForgottenOnceAnotherFileReturnsItsRow(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		file, returns := f.firstRowReturned(t)
		if first, err := app.ImportBECSReturns(ctx, f.rail, f.service, f.clock, returns); err != nil || len(first.Unmatched) != 1 {
			t.Fatalf("import while the row is inProgress = %+v, %v; want the item unmatched", first, err)
		}
		if _, err := f.rail.Lodge(ctx, file.ID); err != nil {
			t.Fatal(err)
		}
		keys, _ := f.rail.Keys(ctx, file.ID)
		if _, err := f.service.RecordRailOutcomes(ctx, rail.BECS, keys); err != nil {
			t.Fatal(err)
		}
		// The next day's file: the same item again, another processing date, so another file.
		f.clock.Advance(24 * time.Hour)
		content, err := f.rail.Content(ctx, file.ID)
		if err != nil {
			t.Fatal(err)
		}
		first := becs.LodgementReference(f.rows(t, "B1")[0].ID)
		next, err := becs.ReturnsOf(content, map[string]aba.ReturnReason{first: aba.ReturnPaymentStopped}, f.clock.Now())
		if err != nil || bytes.Equal(next, returns) {
			t.Fatalf("ReturnsOf the next day: %v (the same bytes: %v)", err, bytes.Equal(next, returns))
		}
		if report, err := app.ImportBECSReturns(ctx, f.rail, f.service, f.clock, next); err != nil || report.Returned != 1 || len(report.Unmatched) != 0 {
			t.Fatalf("import of the next day's file = %+v, %v; want the row returned", report, err)
		}
		if kept, _ := f.rail.Unmatched(ctx); len(kept) != 0 {
			t.Errorf("returns unmatched after the row was returned: %+v; want none", kept)
		}
	})
}

// Issue: "an item that matches no row is reported ... and kept in a table, never dropped".
// An item of the same file naming the same row twice (the bank repeating a line) is accounted
// for: every item of the file is either returned, already returned or unmatched, so that the
// report adds up (README's example: items 3 = returned 2 + alreadyReturned 0 + unmatched 1).
func TestEveryItemOfAReturnsFileIsAccountedFor(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		b := f.submit(t, "B1", 100, 200)
		file := f.cutOne(t)
		if _, err := f.rail.Lodge(ctx, file.ID); err != nil {
			t.Fatal(err)
		}
		f.execute(t, b)
		rows := f.rows(t, "B1")
		content, _ := f.rail.Content(ctx, file.ID)
		returns, err := becs.ReturnsOf(content, map[string]aba.ReturnReason{becs.LodgementReference(rows[0].ID): aba.ReturnReferToCustomer}, f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := aba.Read(bytes.NewReader(returns))
		if err != nil {
			t.Fatal(err)
		}
		dup := parsed.Returns[0]
		dup.Reason = aba.ReturnAccountClosed // the same debit, another reason
		parsed.Returns = append(parsed.Returns, dup)
		returns, err = parsed.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		rep, err := app.ImportBECSReturns(ctx, f.rail, f.service, f.clock, returns)
		if err != nil {
			t.Fatal(err)
		}
		if sum := rep.Returned + rep.AlreadyReturned + len(rep.Unmatched); sum != rep.Items {
			t.Errorf("report %+v: returned+alreadyReturned+unmatched = %d of %d items: an item (line 3, accountClosed) is in none",
				rep, sum, rep.Items)
		}
	})
}

// A returns file imported again after an editor saved it (a byte order mark, a blank line after
// the end, a DOS end-of-file mark, which the reader lets pass, or the CRLF its last record
// lacked), or after a transfer in text mode left its records ended by LF alone, is the same file:
// an item kept unmatched by the first import is forgotten once the second records it, and an item
// still unmatched is kept once.
func TestAReturnsFileSavedByAnEditorIsTheSameFile(t *testing.T) {
	for _, tc := range []struct {
		name       string
		bank, edit func(returns []byte) []byte
	}{
		{"a byte order mark, a blank line and Ctrl-Z added", slices.Clone[[]byte],
			func(returns []byte) []byte { return append(append([]byte("\ufeff"), returns...), "\r\n\x1a"...) }},
		// The reader lets the last record lack its CRLF; an editor that ends the last line adds it.
		{"the last record's CRLF added", func(returns []byte) []byte { return bytes.TrimSuffix(returns, []byte("\r\n")) },
			slices.Clone[[]byte]},
		{"its records ended by LF alone", slices.Clone[[]byte],
			func(returns []byte) []byte { return bytes.ReplaceAll(returns, []byte("\r\n"), []byte("\n")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
				aReturnsFileSavedByAnEditorIsTheSameFile(t, engine, tc.bank, tc.edit)
			})
		})
	}
}

// aReturnsFileSavedByAnEditorIsTheSameFile imports bank(returns), then edit(returns).
func aReturnsFileSavedByAnEditorIsTheSameFile(t *testing.T, engine string, bank, edit func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t, engine)
	file, returns := f.firstRowReturned(t)
	if _, err := app.ImportBECSReturns(ctx, f.rail, f.service, f.clock, bank(returns)); err != nil {
		t.Fatal(err)
	}
	edited := edit(returns)
	if _, err := app.ImportBECSReturns(ctx, f.rail, f.service, f.clock, edited); err != nil {
		t.Fatal(err)
	}
	if kept, _ := f.rail.Unmatched(ctx); len(kept) != 1 {
		t.Fatalf("kept %d items after importing the file twice, want 1", len(kept))
	}
	if _, err := f.rail.Lodge(ctx, file.ID); err != nil {
		t.Fatal(err)
	}
	keys, _ := f.rail.Keys(ctx, file.ID)
	if _, err := f.service.RecordRailOutcomes(ctx, rail.BECS, keys); err != nil {
		t.Fatal(err)
	}
	again, err := app.ImportBECSReturns(ctx, f.rail, f.service, f.clock, edited)
	if err != nil || again.Returned != 1 {
		t.Fatalf("import once the row succeeded = %+v, %v; want it returned", again, err)
	}
	if kept, _ := f.rail.Unmatched(ctx); len(kept) != 0 {
		t.Fatalf("kept %+v after the item was returned; want it forgotten", kept)
	}
}

// lodged records the file lodged and its rows succeeded, as `pyng admin becs files lodged` does
// before it matches the items kept unmatched again.
func (f fixture) lodged(t *testing.T, file becs.File) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.rail.Lodge(ctx, file.ID); err != nil {
		t.Fatal(err)
	}
	keys, err := f.rail.Keys(ctx, file.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.service.RecordRailOutcomes(ctx, rail.BECS, keys); err != nil {
		t.Fatal(err)
	}
}

// returnedEvents is the number of the site's debit.returned events, once at least want are
// listed or after a few seconds (on PostgreSQL an event is listed once the transactions that
// began writing before it have ended, the other tests' included).
func (f fixture) returnedEvents(t *testing.T, want int) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		events, _, err := f.service.Events(context.Background(), f.site, billing.EventFilter{Type: billing.EventDebitReturned, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) >= want || time.Now().After(deadline) {
			return len(events)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Issue: a returned item imported before its row is recorded succeeded (the operator lodged the
// file at the bank, the bank's returns file was imported before `files lodged`) is kept
// unmatched, then matched by itself once the file is recorded lodged: its row returned once, with
// one debit.returned event, the item no longer kept, and importing the file again changes
// nothing. Another site's file recorded lodged matches none of the site's items, and the items
// that match no row (an unknown reference, another amount) stay kept.
func TestAnItemKeptBeforeItsFileWasRecordedLodgedIsMatchedOnce(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		file, returns := f.firstRowReturned(t)
		parsed, err := aba.Read(bytes.NewReader(returns))
		if err != nil {
			t.Fatal(err)
		}
		stray, otherAmount := parsed.Returns[0], parsed.Returns[0]
		stray.LodgementReference = "PYNOSUCHDEBIT"
		otherAmount.LodgementReference, otherAmount.Amount = becs.LodgementReference(f.rows(t, "B1")[1].ID), 201
		parsed.Returns = append(parsed.Returns, stray, otherAmount)
		if returns, err = parsed.MarshalText(); err != nil {
			t.Fatal(err)
		}
		first, err := app.ImportBECSReturns(ctx, f.rail, f.service, f.clock, returns)
		if err != nil || first.Returned != 0 || len(first.Unmatched) != 3 {
			t.Fatalf("import before the file is recorded lodged = %+v, %v; want the 3 items unmatched", first, err)
		}
		rematch := func(want app.BECSReturnsReport) {
			t.Helper()
			got, err := app.MatchKeptBECSReturns(ctx, f.rail, f.service, f.clock)
			if err != nil || got.Items != want.Items || got.Returned != want.Returned || got.AlreadyReturned != want.AlreadyReturned ||
				len(got.Unmatched) != len(want.Unmatched) {
				t.Fatalf("MatchKeptBECSReturns = %+v, %v; want %d items, %d returned, %d already, %d unmatched", got, err,
					want.Items, want.Returned, want.AlreadyReturned, len(want.Unmatched))
			}
		}
		wantKept := func(refs ...string) {
			t.Helper()
			kept, err := f.rail.Unmatched(ctx)
			var got []string
			for _, k := range kept {
				got = append(got, k.LodgementReference)
			}
			if err != nil || !slices.Equal(got, refs) {
				t.Fatalf("kept %v, %v; want %v", got, err, refs)
			}
		}
		rematch(app.BECSReturnsReport{}) // no file recorded lodged: nothing to look at
		wantKept(parsed.Returns[0].LodgementReference, "PYNOSUCHDEBIT", otherAmount.LodgementReference)

		// Another site's file, recorded lodged, does not touch this site's items.
		other := apptest.NewSite(t, f.service, "Other")
		if _, err := f.rail.SetUser(ctx, other.ID, User); err != nil {
			t.Fatal(err)
		}
		g := f
		g.site = apptest.OnRail(t, f.service, other.ID, rail.BECS)
		b := g.submit(t, "B1", 100, 200)
		otherFile := g.cutOne(t)
		g.execute(t, b)
		g.lodged(t, otherFile)
		rematch(app.BECSReturnsReport{})
		wantKept(parsed.Returns[0].LodgementReference, "PYNOSUCHDEBIT", otherAmount.LodgementReference)

		f.clock.Advance(time.Hour)
		f.lodged(t, file)
		// The item of the first row matches; the item of the second row's debit, of another
		// amount, is looked at (its debit's file is lodged) and stays kept.
		rematch(app.BECSReturnsReport{Items: 2, Returned: 1, Unmatched: make([]becs.ReturnedItem, 1)})
		wantKept("PYNOSUCHDEBIT", otherAmount.LodgementReference)
		got := f.rows(t, "B1")
		if got[0].State != billing.RowSucceeded || got[0].ReturnReason != "paymentStopped" || !got[0].ReturnedAt.Equal(f.clock.Now()) {
			t.Fatalf("row 0 = %+v; want succeeded, returned paymentStopped now", got[0])
		}
		if got[1].Returned() {
			t.Fatalf("row 1 returned: %+v", got[1])
		}
		for _, row := range g.rows(t, "B1") {
			if row.Returned() {
				t.Fatalf("the other site's row returned: %+v", row)
			}
		}
		if n := f.returnedEvents(t, 1); n != 1 {
			t.Fatalf("%d debit.returned events, want 1", n)
		}

		// Again, and the file imported again: nothing changes.
		f.clock.Advance(time.Hour)
		rematch(app.BECSReturnsReport{Items: 1, Unmatched: make([]becs.ReturnedItem, 1)})
		again, err := app.ImportBECSReturns(ctx, f.rail, f.service, f.clock, returns)
		if err != nil || again.Returned != 0 || again.AlreadyReturned != 1 || len(again.Unmatched) != 2 {
			t.Fatalf("the file imported again = %+v, %v; want its item already returned, the 2 others unmatched", again, err)
		}
		wantKept("PYNOSUCHDEBIT", otherAmount.LodgementReference)
		if got := f.rows(t, "B1")[0]; !got.ReturnedAt.Equal(f.clock.Now().Add(-time.Hour)) {
			t.Fatalf("row 0 returned at %v, want at its first record", got.ReturnedAt)
		}
		if n := f.returnedEvents(t, 1); n != 1 {
			t.Fatalf("%d debit.returned events, want 1", n)
		}

		// A day past its debit's deadline, the item of another amount, which can no longer match,
		// is no longer looked at, and stays kept for the operator.
		b1, _, _, err := f.service.Batch(ctx, f.site, "B1", "")
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Set(b1.Deadline.Add(becs.KeptMatchWindow + time.Minute))
		rematch(app.BECSReturnsReport{})
		wantKept("PYNOSUCHDEBIT", otherAmount.LodgementReference)
	})
}

// A kept item whose return was recorded (by another replica, or by a run that crashed before
// forgetting it) is forgotten by the next run, its row returned once.
func TestAKeptItemWhoseReturnWasRecordedIsForgottenOnce(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		file, returns := f.firstRowReturned(t)
		if _, err := app.ImportBECSReturns(ctx, f.rail, f.service, f.clock, returns); err != nil {
			t.Fatal(err)
		}
		f.lodged(t, file)
		row := f.rows(t, "B1")[0]
		if _, err := f.service.ReturnRows(ctx, []billing.RowReturn{{RowID: row.ID, Reason: "paymentStopped", At: f.clock.Now()}}); err != nil {
			t.Fatal(err)
		}
		got, err := app.MatchKeptBECSReturns(ctx, f.rail, f.service, f.clock)
		if err != nil || got.Items != 1 || got.Returned != 0 || got.AlreadyReturned != 1 || len(got.Unmatched) != 0 {
			t.Fatalf("MatchKeptBECSReturns = %+v, %v; want the item already returned", got, err)
		}
		if kept, _ := f.rail.Unmatched(ctx); len(kept) != 0 {
			t.Fatalf("kept %+v; want the item forgotten", kept)
		}
		if n := f.returnedEvents(t, 1); n != 1 {
			t.Fatalf("%d debit.returned events, want 1", n)
		}
	})
}

// ReturnsOf writes each returned item as a bank does, going back: to the debit's trace account (the
// user's), from the account it was drawn on (the customer's, in the item's trace fields).
func TestReturnsOfWritesEachItemGoingBack(t *testing.T) {
	content, err := os.ReadFile("aba/testdata/debit.aba")
	if err != nil {
		t.Fatal(err)
	}
	debits, err := aba.Read(bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	d := debits.Details[0]
	b, err := becs.ReturnsOf(content, map[string]aba.ReturnReason{d.LodgementReference: aba.ReturnAccountClosed}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	returns, err := aba.Read(bytes.NewReader(b))
	if err != nil || len(returns.Returns) != 1 {
		t.Fatalf("the returns file: %+v, %v; want one item", returns, err)
	}
	got := returns.Returns[0]
	if got.BSB != d.TraceBSB || got.Account != d.TraceAccount || got.TraceBSB != d.BSB || got.TraceAccount != d.Account ||
		got.LodgementReference != d.LodgementReference || got.Amount != d.Amount || got.Reason != aba.ReturnAccountClosed {
		t.Errorf("returned item %+v of debit %+v: want it going back to %s %s from %s %s", got, d, d.TraceBSB, d.TraceAccount, d.BSB, d.Account)
	}
}
