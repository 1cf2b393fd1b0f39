package becs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/becs/aba"
	"github.com/pyng/receivables/storage"
)

// fixtureOn is newFixture over the database db.
func fixtureOn(t *testing.T, db storage.Database) fixture {
	t.Helper()
	ctx := context.Background()
	clock := clocktest.New()
	service, rails, err := app.NewService(ctx, db, clock, app.ServiceSettings{Sandbox: true})
	if err != nil {
		t.Fatal(err)
	}
	r := rails.BECS
	site := apptest.NewSite(t, service, "Acme")
	if _, err := r.SetUser(ctx, site.ID, User); err != nil {
		t.Fatal(err)
	}
	site = apptest.OnRail(t, service, site.ID, rail.BECS)
	return fixture{clock: clock, service: service, db: db, rail: r, site: site}
}

// lodgedFileWithAStrayReturn submits batch ref of two debits, cuts, delivers and lodges its
// file, and imports a returns file of an item that matches no debit (kept unmatched); it returns
// the file and its content.
func lodgedFileWithAStrayReturn(t *testing.T, f fixture, ref string) (becs.File, []byte) {
	t.Helper()
	ctx := context.Background()
	f.submit(t, ref, 1234, 5678)
	file := f.cutOne(t)
	if _, _, err := f.rail.Deliver(ctx, becs.Dir(t.TempDir())); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rail.Lodge(ctx, file.ID); err != nil {
		t.Fatal(err)
	}
	content, err := f.rail.Content(ctx, file.ID)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := f.rail.Keys(ctx, file.ID)
	returns, err := becs.ReturnsOf(content, map[string]aba.ReturnReason{becs.LodgementReference(keys[0]): aba.ReturnAccountClosed}, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := aba.Read(bytes.NewReader(returns))
	if err != nil {
		t.Fatal(err)
	}
	parsed.Returns[0].LodgementReference = "PYSTRAY" + ref
	if returns, err = parsed.MarshalText(); err != nil {
		t.Fatal(err)
	}
	matched, err := f.rail.MatchReturns(ctx, returns)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.rail.KeepUnmatched(ctx, matched.Source, matched.Items); err != nil || n != 1 {
		t.Fatalf("KeepUnmatched = %d, %v; want the stray item kept", n, err)
	}
	return file, content
}

// stored returns the values of a column of the rail's tables as stored, by the row's key.
func stored(t *testing.T, conn storage.Conn, query string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := conn.Query(context.Background(), query, nil, func(row storage.Scanner) error {
		var k, v string
		err := row.Scan(&k, &v)
		out[k] = v
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var sealedColumns = []string{
	`SELECT idempotency_key, bsb FROM becs_debits`,
	`SELECT idempotency_key, account_number FROM becs_debits`,
	`SELECT idempotency_key, title FROM becs_debits`,
	`SELECT id, content FROM becs_files`,
	`SELECT lodgement_reference, record FROM becs_unmatched_returns`,
}

func TestErasureKeepsTheRecordOfWhatWasDebitedAndNoBankDetails(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		file, content := lodgedFileWithAStrayReturn(t, f, "B1")
		erasedKeys, _ := f.rail.Keys(ctx, file.ID)
		f.clock.Advance(time.Hour)
		f.submit(t, "B2", 4321) // queued, its deadline a day away: it must stay whole

		// The erasure job's work, with a retention that has just ended for B1.
		links, erased, err := f.service.EraseBankDetails(ctx, time.Minute)
		if want := (rail.Erased{Debits: 2, Files: 1, Returns: 1}); err != nil || erased != want || links != 0 {
			t.Fatalf("EraseBankDetails = %d links, %+v, %v; want B1's 2 debits, its file and the stray returned item, %+v", links, erased, err, want)
		}
		for _, q := range sealedColumns {
			for k, v := range stored(t, f.db.Conn(), q) {
				erased := k == file.ID || strings.HasPrefix(k, "PYSTRAY")
				for _, e := range erasedKeys {
					erased = erased || k == e
				}
				if erased != (v == "") {
					t.Errorf("%s: %s holds %q; want it erased: %v", q, k, v, erased)
				}
			}
		}
		// What was debited stays: the file's record, its debits' outcomes, and returns match.
		if got, err := f.rail.File(ctx, file.ID); err != nil || got.Rows != 2 || got.Total != 1234+5678 || got.Checksum != file.Checksum || got.LodgedAt.IsZero() {
			t.Errorf("File after the erasure = %+v, %v; want its record as before", got, err)
		}
		if _, err := f.rail.Content(ctx, file.ID); !errors.Is(err, becs.ErrErased) || !strings.Contains(err.Error(), file.Checksum) {
			t.Errorf("Content of an erased file = %v; want ErrErased with its checksum", err)
		}
		outcomes, err := f.rail.Outcomes(ctx, erasedKeys)
		if err != nil || len(outcomes) != 2 || !outcomes[0].Settled || outcomes[0].Failure != "" {
			t.Errorf("Outcomes after the erasure = %+v, %v; want succeeded", outcomes, err)
		}
		returns, err := becs.ReturnsOf(content, map[string]aba.ReturnReason{becs.LodgementReference(erasedKeys[1]): aba.ReturnPaymentStopped}, f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if m, err := f.rail.MatchReturns(ctx, returns); err != nil || m.Items[0].Key != erasedKeys[1] {
			t.Errorf("a return of an erased debit matches %+v, %v; want its debit", m.Items, err)
		}
		// The queued debit is cut and delivered with its account; the erased file is not delivered.
		files, err := f.rail.Cut(ctx, inSydney)
		if err != nil || len(files) != 1 || files[0].Total != 4321 {
			t.Fatalf("Cut after the erasure = %+v, %v", files, err)
		}
		if delivered, _, err := f.rail.Deliver(ctx, becs.Dir(t.TempDir())); err != nil || len(delivered) != 1 || delivered[0].ID != files[0].ID {
			t.Fatalf("Deliver after the erasure = %+v, %v; want the new file", delivered, err)
		}
		if _, again, err := f.service.EraseBankDetails(ctx, 2*time.Hour); err != nil || again != (rail.Erased{}) {
			t.Errorf("EraseBankDetails of nothing older = %+v, %v", again, err)
		}
	})
}

// A file delivered to the outbox but not yet lodged is the operator's to upload: a retention
// shorter than the time to its lodge-by (PYNG_BANK_DETAILS_RETENTION=0, say) erases neither its
// content nor its outbox copy until it is lodged, or too late to be.
func TestAFileNotYetLodgedIsNotErased(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		f.submit(t, "B1", 1234)
		file := f.cutOne(t)
		outbox := t.TempDir()
		if _, _, err := f.rail.Deliver(ctx, becs.Dir(outbox)); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute)
		if _, _, err := f.service.EraseBankDetails(ctx, 0); err != nil {
			t.Fatal(err)
		}
		if n, err := f.rail.RemoveErasedCopies(ctx, becs.Dir(outbox)); err != nil || n != 0 {
			t.Errorf("RemoveErasedCopies = %d, %v; want none", n, err)
		}
		if _, err := f.rail.Content(ctx, file.ID); err != nil {
			t.Errorf("Content of a file delivered, not lodged, after the erasure = %v; want it whole", err)
		}
		if _, err := os.Stat(outbox + "/" + file.Name()); err != nil {
			t.Errorf("the outbox copy of a file not lodged: %v; want it kept", err)
		}
		if _, err := f.rail.Lodge(ctx, file.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.service.EraseBankDetails(ctx, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := f.rail.Content(ctx, file.ID); !errors.Is(err, becs.ErrErased) {
			t.Errorf("Content of a lodged file after the erasure = %v; want ErrErased", err)
		}
	})
}

func TestRotationResealsTheRailsBankDetails(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		url := dbtest.URL(t, engine)
		f := fixtureOn(t, dbtest.OpenURL(t, url, storage.WithKeyring(dbtest.KeyringOf(t, "k1"))))
		file, content := lodgedFileWithAStrayReturn(t, f, "B1")
		f.submit(t, "B2", 4321)

		rotated := dbtest.OpenURL(t, url, storage.WithKeyring(dbtest.KeyringOf(t, "k2", "k1")))
		r, err := becs.Open(ctx, rotated.Conn(), f.clock)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.ResealTables(ctx, 1)
		want := map[string]int{"becs_debits": 3, "becs_files": 1, "becs_unmatched_returns": 1}
		if err != nil || len(got) != len(want) || got["becs_debits"] != 3 || got["becs_files"] != 1 || got["becs_unmatched_returns"] != 1 {
			t.Fatalf("ResealTables = %v, %v; want %v", got, err, want)
		}
		for _, q := range sealedColumns {
			for k, v := range stored(t, rotated.Conn(), q) {
				if !strings.HasPrefix(v, "v1.k2.") {
					t.Errorf("%s: %s holds %q; want it sealed with k2", q, k, v)
				}
			}
		}
		if again, err := r.ResealTables(ctx, 1000); err != nil || again["becs_debits"]+again["becs_files"]+again["becs_unmatched_returns"] != 0 {
			t.Errorf("ResealTables again = %v, %v; want nothing", again, err)
		}

		// k1 dropped: the file reads whole, and the queued debit is cut with its account.
		only := dbtest.OpenURL(t, url, storage.WithKeyring(dbtest.KeyringOf(t, "k2")))
		r, err = becs.Open(ctx, only.Conn(), f.clock)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := r.Content(ctx, file.ID); err != nil || !bytes.Equal(got, content) {
			t.Fatalf("Content with k2 alone = %v; want the file's bytes", err)
		}
		files, err := r.Cut(ctx, inSydney)
		if err != nil || len(files) != 1 || files[0].Total != 4321 {
			t.Fatalf("Cut with k2 alone = %+v, %v", files, err)
		}
		if _, err := r.Content(ctx, files[0].ID); err != nil {
			t.Fatal(err)
		}
	})
}

// Once a file's content is erased, its copy in the outbox goes too, once: Pyng keeps no copy of
// bank details past their retention. A file not erased keeps its copy.
func TestTheOutboxCopyOfAnErasedFileIsRemoved(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		outbox := becs.Dir(t.TempDir())
		f.submit(t, "B1", 1234)
		old := f.cutOne(t)
		f.clock.Advance(time.Hour)
		f.submit(t, "B2", 4321)
		recent := f.cutOne(t)
		if delivered, _, err := f.rail.Deliver(ctx, outbox); err != nil || len(delivered) != 2 {
			t.Fatalf("Deliver = %+v, %v; want both files", delivered, err)
		}
		for _, file := range []becs.File{old, recent} { // uploaded by the operator (see TestAFileNotYetLodgedIsNotErased)
			if _, err := f.rail.Lodge(ctx, file.ID); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := f.service.EraseBankDetails(ctx, 30*time.Minute); err != nil { // B1's retention ended, B2's not
			t.Fatal(err)
		}
		removed, err := f.rail.RemoveErasedCopies(ctx, outbox)
		if err != nil || removed != 1 {
			t.Fatalf("RemoveErasedCopies = %d, %v; want the erased file's", removed, err)
		}
		entries, _ := os.ReadDir(string(outbox))
		if len(entries) != 1 || entries[0].Name() != recent.Name() {
			t.Errorf("the outbox holds %v; want only %s, not the erased %s", entries, recent.Name(), old.Name())
		}
		if again, err := f.rail.RemoveErasedCopies(ctx, outbox); err != nil || again != 0 {
			t.Errorf("RemoveErasedCopies again = %d, %v; want nothing", again, err)
		}
	})
}
