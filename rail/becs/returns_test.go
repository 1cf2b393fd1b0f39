package becs_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/pyng/receivables/app"
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
// lacked) is the same file: an item kept
// unmatched by the first import is forgotten once the second records it, and an item still
// unmatched is kept once.
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
