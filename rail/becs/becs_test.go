package becs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/becs/aba"
	"github.com/pyng/receivables/storage"
)

var sydney = func() *time.Location {
	loc, err := time.LoadLocation("Australia/Sydney")
	if err != nil {
		panic(err)
	}
	return loc
}()

// inSydney is the calendar of Sydney, without holidays.
var inSydney = becs.Calendar{Location: sydney}

// User is a valid debit user.
var User = aba.DebitUser{UserID: "123456", UserName: "ACME PTY LTD", Institution: "CBA", Description: "RECEIVABLES",
	TraceBSB: "062-000", TraceAccount: "87654321", Remitter: "ACME"}

// fixture is a service with one site on the BECS rail.
type fixture struct {
	clock   *clocktest.Clock
	service *billing.Service
	url     string // the database's, for a test to open it again as another process would
	db      storage.Database
	rail    *becs.Rail
	site    billing.Site
}

func newFixture(t *testing.T, engine string) fixture {
	t.Helper()
	ctx := context.Background()
	clock := clocktest.New()
	url := dbtest.URL(t, engine)
	db := dbtest.OpenURL(t, url, storage.WithKeyring(dbtest.Keyring()))
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
	return fixture{clock: clock, service: service, url: url, db: db, rail: r, site: site}
}

// replica is the service of another replica of the server over the fixture's database, whose
// BECS rail is r (the fixture's, wrapped to stage a race).
func (f fixture) replica(r rail.Rail) *billing.Service {
	return billing.NewService(billing.Config{Store: f.db, Batches: f.db, Events: f.db, Clock: f.clock,
		Rails: map[string]rail.Rail{rail.BECS: r}, InvitationTTL: billing.DefaultInvitationTTL, DebitUserID: app.BECSUserIDs(f.rail)})
}

// submit links customers C1, C2 and submits batch ref of the amounts, one row each, alternating
// the customers, and executes it once.
func (f fixture) submit(t *testing.T, ref string, amounts ...int64) billing.Batch {
	t.Helper()
	ctx := context.Background()
	for _, c := range []string{"C1", "C2"} {
		if _, err := f.service.Invite(ctx, f.site, c); err == nil {
			if _, err := f.service.SimulateSignup(ctx, f.site, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	rows := make([]billing.RowRequest, len(amounts))
	for i, a := range amounts {
		rows[i] = billing.RowRequest{Reference: fmt.Sprintf("R%d", i), CustomerReference: []string{"C1", "C2"}[i%2], Amount: a}
	}
	b := apptest.SubmitBatch(t, f.service, f.site, ref, rows...)
	f.execute(t, b)
	return b
}

// cutOne cuts the queued debits, which must make one file, and returns it.
func (f fixture) cutOne(t *testing.T) becs.File {
	t.Helper()
	files, err := f.rail.Cut(context.Background(), inSydney)
	if err != nil || len(files) != 1 {
		t.Fatalf("Cut = %+v, %v; want one file", files, err)
	}
	return files[0]
}

// wantNoFileCut cuts, and fails if that made a file: the revoked customer's debit in it.
func (f fixture) wantNoFileCut(t *testing.T) {
	t.Helper()
	files, err := f.rail.Cut(context.Background(), inSydney)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) > 0 {
		t.Errorf("the cut after the revocation put the revoked customer's debit in file %s", files[0].ID)
	}
}

func (f fixture) execute(t *testing.T, b billing.Batch) bool {
	t.Helper()
	done, _, err := f.service.ExecuteBatch(context.Background(), b.ID)
	if err != nil {
		t.Fatalf("ExecuteBatch: %v", err)
	}
	return done
}

// states returns the batch's rows' states, in order.
func (f fixture) rows(t *testing.T, ref string) []billing.Row {
	t.Helper()
	_, _, rows, err := f.service.Batch(context.Background(), f.site, ref, "")
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func states(rows []billing.Row) []string {
	var s []string
	for _, r := range rows {
		s = append(s, string(r.State)+string(r.FailureReason))
	}
	return s
}

func TestACutFileHoldsEveryQueuedDebitOnceAndItsRowsSucceedWhenLodged(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		b := f.submit(t, "B1", 100, 250, 9999)
		if got := states(f.rows(t, "B1")); !slices.Equal(got, []string{"pending", "pending", "pending"}) {
			t.Fatalf("before the cut rows are %v, want pending: queued for the next file", got)
		}
		file := f.cutOne(t)
		if file.Rows != 3 || file.Total != 100+250+9999 || file.SiteID != f.site.ID || file.EarliestDeadline != b.Deadline {
			t.Fatalf("file = %+v", file)
		}
		if again, err := f.rail.Cut(ctx, inSydney); err != nil || len(again) != 0 {
			t.Fatalf("a second Cut = %+v, %v; want no file: every debit is in one already", again, err)
		}
		f.execute(t, b)
		rows := f.rows(t, "B1")
		if got := states(rows); !slices.Equal(got, []string{"inProgress", "inProgress", "inProgress"}) {
			t.Fatalf("after the cut rows are %v, want inProgress", got)
		}

		content, err := f.rail.Content(ctx, file.ID)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := aba.Read(bytes.NewReader(content))
		if err != nil {
			t.Fatalf("the stored file does not read: %v", err)
		}
		if parsed.Totals().Debit != file.Total || len(parsed.Details) != 3 || parsed.UserID != User.UserID {
			t.Fatalf("the file's totals %+v, details %d", parsed.Totals(), len(parsed.Details))
		}
		byRef := map[string]int64{}
		for _, d := range parsed.Details {
			byRef[d.LodgementReference] = d.Amount
			if d.Title != "Sandbox Customer" || d.Account != billing.SandboxCustomer.AccountNumber {
				t.Errorf("detail %+v: want the customer's account and name", d)
			}
		}
		for _, r := range rows {
			if byRef[becs.LodgementReference(r.ID)] != r.Amount {
				t.Errorf("row %s (%d) is not in the file under its lodgement reference: %v", r.ID, r.Amount, byRef)
			}
		}

		dir := t.TempDir()
		delivered, _, err := f.rail.Deliver(ctx, becs.Dir(dir))
		if err != nil || len(delivered) != 1 {
			t.Fatalf("Deliver = %+v, %v", delivered, err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 || entries[0].Name() != file.Name() {
			t.Fatalf("the outbox holds %v, want only %s", entries, file.Name())
		}
		if written, _ := os.ReadFile(filepath.Join(dir, file.Name())); !bytes.Equal(written, content) {
			t.Fatal("the delivered file's bytes differ from the stored file's")
		}
		if again, _, err := f.rail.Deliver(ctx, becs.Dir(dir)); err != nil || len(again) != 0 {
			t.Fatalf("a second Deliver = %+v, %v; want nothing", again, err)
		}
		if got, _ := f.rail.File(ctx, file.ID); got.State(f.clock.Now()) != becs.FileDelivered {
			t.Fatalf("state %s, want delivered", got.State(f.clock.Now()))
		}

		f.clock.Advance(time.Hour)
		lodged, err := f.rail.Lodge(ctx, file.ID)
		if err != nil || lodged.State(f.clock.Now()) != becs.FileLodged {
			t.Fatalf("Lodge = %+v, %v", lodged, err)
		}
		if again, err := f.rail.Lodge(ctx, file.ID); err != nil || !again.LodgedAt.Equal(lodged.LodgedAt) {
			t.Fatalf("lodging again = %+v, %v; want the first lodging, unchanged", again, err)
		}
		if !f.execute(t, b) {
			t.Fatal("the batch is not completed once its file is lodged")
		}
		for _, r := range f.rows(t, "B1") {
			if r.State != billing.RowSucceeded || !r.OutcomeAt.Equal(lodged.LodgedAt) {
				t.Errorf("row %s: %s at %v, want succeeded at the lodging %v", r.ID, r.State, r.OutcomeAt, lodged.LodgedAt)
			}
		}
	})
}

func TestAFileIsPerSiteAndLaterDebitsGoInTheNextFile(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		other := apptest.NewSite(t, f.service, "Other")
		if _, err := f.rail.SetUser(ctx, other.ID, User); err != nil {
			t.Fatal(err)
		}
		apptest.OnRail(t, f.service, other.ID, rail.BECS)
		f.submit(t, "B1", 100)
		g := f
		g.site, _ = f.db.GetSite(ctx, other.ID)
		g.submit(t, "B1", 200)
		files, err := f.rail.Cut(ctx, inSydney)
		if err != nil || len(files) != 2 {
			t.Fatalf("Cut = %+v, %v; want a file per site", files, err)
		}
		f.submit(t, "B2", 300, 400)
		files2, err := f.rail.Cut(ctx, inSydney)
		if err != nil || len(files2) != 1 || files2[0].Total != 700 || files2[0].SiteID != f.site.ID {
			t.Fatalf("the next Cut = %+v, %v; want one file of the new batch", files2, err)
		}
		list, err := f.rail.Files(ctx, f.site.ID)
		if err != nil || len(list) != 2 {
			t.Fatalf("Files = %+v, %v", list, err)
		}
	})
}

func TestLodgingAfterTheDeadlineIsRefusedAndTheRowsExpire(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		b := f.submit(t, "B1", 100, 200)
		file := f.cutOne(t)
		f.clock.Set(b.Deadline.Add(-becs.LodgeMargin))
		_, err := f.rail.Lodge(ctx, file.ID)
		if !errors.Is(err, becs.ErrTooLate) {
			t.Fatalf("Lodge within the margin of the deadline = %v, want ErrTooLate", err)
		}
		got, _ := f.rail.File(ctx, file.ID)
		if !got.LodgedAt.IsZero() || got.State(f.clock.Now()) != becs.FileExpired {
			t.Fatalf("the refused file is %+v (%s), want not lodged, expired", got, got.State(f.clock.Now()))
		}
		f.clock.Set(b.Deadline)
		if n, err := f.service.ExpireOverdue(ctx); err != nil || n != 2 {
			t.Fatalf("ExpireOverdue = %d, %v", n, err)
		}
		if got := states(f.rows(t, "B1")); !slices.Equal(got, []string{"failedexpired", "failedexpired"}) {
			t.Fatalf("rows %v, want failed expired", got)
		}
		if _, err := f.rail.Lodge(ctx, file.ID); !errors.Is(err, becs.ErrTooLate) {
			t.Fatalf("Lodge after the deadline = %v, want ErrTooLate", err)
		}
	})
}

// README step 5: "A file must be lodged at least 15 minutes before the earliest 24-hour deadline
// of its rows. Later, files lodged is refused": a millisecond before the lodge-by time the file is
// lodged (its rows succeed, not expire at their deadline); at it, refused, and files list says
// expired. The file's lodge-by is that of its earliest row, whatever batch it came from.
func TestLodgeByIsTheEarliestRowsDeadlineLessTheMargin(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		b1 := f.submit(t, "B1", 100)
		f.clock.Advance(3 * time.Hour)
		b2 := f.submit(t, "B2", 200)
		file := f.cutOne(t)
		if !file.EarliestDeadline.Equal(b1.Deadline) || !file.LodgeBy().Equal(b1.Deadline.Add(-becs.LodgeMargin)) || file.Rows != 2 {
			t.Fatalf("file %+v; want the earliest deadline %v (B1's)", file, b1.Deadline)
		}
		f.clock.Set(file.LodgeBy().Add(-time.Millisecond))
		if got, _ := f.rail.File(ctx, file.ID); got.State(f.clock.Now()) == becs.FileExpired {
			t.Fatal("expired a millisecond before its lodge-by")
		}
		if _, err := f.rail.Lodge(ctx, file.ID); err != nil {
			t.Fatalf("Lodge a millisecond before the lodge-by: %v", err)
		}
		f.clock.Set(b2.Deadline)
		if _, err := f.service.ExpireOverdue(ctx); err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{"B1", "B2"} {
			if got := states(f.rows(t, ref)); len(got) != 1 || got[0] != "succeeded" {
				t.Errorf("%s rows %v; want succeeded: the file was lodged in time", ref, got)
			}
		}
	})
}

func TestADebitTooCloseToItsDeadlineIsNotCut(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		b := f.submit(t, "B1", 100)
		f.clock.Set(b.Deadline.Add(-becs.LodgeMargin))
		if files, err := f.rail.Cut(ctx, inSydney); err != nil || len(files) != 0 {
			t.Fatalf("Cut = %+v, %v; want no file: it could not be lodged in time", files, err)
		}
	})
}

// TestConcurrentCutsPutEachDebitInOneFile cuts from several Rails on one database at once, as
// replicas would.
func TestConcurrentCutsPutEachDebitInOneFile(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		var total int64
		for i := range 5 {
			amounts := []int64{int64(100 + i), int64(200 + i), int64(300 + i)}
			f.submit(t, fmt.Sprintf("B%d", i), amounts...)
			total += amounts[0] + amounts[1] + amounts[2]
		}
		const cutters = 4
		var wg sync.WaitGroup
		results := make([][]becs.File, cutters)
		errs := make([]error, cutters)
		for i := range cutters {
			r, err := becs.Open(ctx, f.db.Conn(), f.clock)
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() { results[i], errs[i] = r.Cut(ctx, inSydney) })
		}
		wg.Wait()
		var files []becs.File
		for i := range cutters {
			if errs[i] != nil {
				t.Fatalf("cutter %d: %v", i, errs[i])
			}
			files = append(files, results[i]...)
		}
		if len(files) != 1 || files[0].Rows != 15 || files[0].Total != total {
			t.Fatalf("the cutters cut %+v; want one file of all 15 debits, %d", files, total)
		}
	})
}

func TestSetUserChecksEveryField(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		bad := User
		bad.UserID, bad.Remitter = "12", "ÄCME"
		_, err := f.rail.SetUser(ctx, f.site.ID, bad)
		var errs aba.Errors
		if !errors.As(err, &errs) || len(errs) != 2 {
			t.Fatalf("SetUser(bad) = %v, want the two problems", err)
		}
		if _, err := f.rail.SetUser(ctx, f.site.ID, aba.DebitUser{TraceBSB: "06200"}); err == nil {
			t.Fatal("a bad trace BSB was accepted")
		}
		if u, err := f.rail.User(ctx, f.site.ID); err != nil || u != User {
			t.Fatalf("User = %+v, %v; want the first, unchanged", u, err)
		}
	})
}

func TestTitle(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"Jane Citizen", "Jane Citizen"},
		{"  Zoë  O'Brien-Smith ", "Zoe O'Brien-Smith"},
		// A letter with an accent keeps its letter, rather than splitting the name where it was.
		{"José Müller", "Jose Muller"},
		{"Ångström Œuvre Søren Straße", "Angstrom OEuvre Soren Strasse"},
		// What a phone's keyboard types for ' and -.
		{"O’Brien–Smith", "O'Brien-Smith"},
		{"", "ACCOUNT HOLDER"},
		{"™™", "ACCOUNT HOLDER"},
		{"A Very Long Name Indeed Of Someone Important", "A Very Long Name Indeed Of Someo"},
	} {
		if got := becs.Title(c.name); got != c.want || !aba.ValidText(got) || len(got) > aba.MaxTitle {
			t.Errorf("Title(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestSchedule(t *testing.T) {
	s, err := becs.ParseSchedule("15:00, 09:00", sydney)
	if err != nil {
		t.Fatal(err)
	}
	at := func(day, h, m int) time.Time { return time.Date(2026, 4, day, h, m, 0, 0, sydney) }
	for _, c := range []struct{ now, want time.Time }{
		{at(1, 8, 0), at(1, 9, 0)},
		{at(1, 9, 0), at(1, 15, 0)},
		{at(1, 16, 0), at(2, 9, 0)},
		// 5 April 2026: daylight saving ends in Sydney at 03:00; 09:00 is still 09:00 local.
		{at(4, 15, 30), at(5, 9, 0)},
	} {
		if got := s.Next(c.now); !got.Equal(c.want) {
			t.Errorf("Next(%v) = %v, want %v", c.now, got, c.want)
		}
	}
	if s, err := becs.ParseSchedule("10m", sydney); err != nil || s.Next(at(1, 0, 0)) != at(1, 0, 10) {
		t.Fatalf("interval: %+v, %v", s, err)
	}
	for _, bad := range []string{"", "9", "25:00", "09:00,09:00", "0s"} {
		if _, err := becs.ParseSchedule(bad, sydney); err == nil {
			t.Errorf("ParseSchedule(%q) accepted", bad)
		}
	}
}

// A debit queued just after a cut-off waits for the next: LongestGap is that wait at its longest,
// in real time, so that the server can refuse cut-offs too far apart for the 24-hour deadline.
func TestTheLongestGapBetweenCutoffsCountsTheNightTheClocksGoBack(t *testing.T) {
	brisbane, err := time.LoadLocation("Australia/Brisbane") // no daylight saving
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		cutoffs string
		loc     *time.Location
		want    time.Duration
	}{
		{"09:00,15:00", brisbane, 18 * time.Hour},
		// Sydney's clocks go back an hour on the night of 4-5 April 2027: 15:00 to 09:00 is 19 hours.
		{"09:00,15:00", sydney, 19 * time.Hour},
		{"09:00", sydney, 25 * time.Hour},
		{"00:30,06:00,12:00,18:00", time.UTC, 6*time.Hour + 30*time.Minute},
		{"10m", sydney, 10 * time.Minute},
	} {
		s, err := becs.ParseSchedule(c.cutoffs, c.loc)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.LongestGap(from); got != c.want {
			t.Errorf("LongestGap of %q in %v = %v, want %v", c.cutoffs, c.loc, got, c.want)
		}
	}
}

// Issue 12: PYNG_BECS_CUTOFFS is "a list of local times such as 09:00,15:00 in
// PYNG_BECS_TIMEZONE, default Australia/Sydney, or an interval such as 10m for testing".
func TestScheduleTimesAreLocalToTheZoneWhateverTheCallersZone(t *testing.T) {
	s, err := becs.ParseSchedule(" 15:00 ,09:00", sydney)
	if err != nil {
		t.Fatal(err)
	}
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, sydney) }
	for _, c := range []struct{ now, want time.Time }{
		// Given in UTC: 2026-06-01 00:30 UTC is 10:30 in Sydney (AEST, +10).
		{time.Date(2026, 6, 1, 0, 30, 0, 0, time.UTC), at(2026, 6, 1, 15, 0)},
		// 23:30 UTC on 1 June is 09:30 on 2 June in Sydney.
		{time.Date(2026, 6, 1, 23, 30, 0, 0, time.UTC), at(2026, 6, 2, 15, 0)},
		// Daylight saving starts in Sydney on 4 October 2026 at 02:00: 09:00 is 09:00 AEDT (+11).
		{at(2026, 10, 3, 15, 30), at(2026, 10, 4, 9, 0)},
		// New year.
		{at(2026, 12, 31, 15, 0), at(2027, 1, 1, 9, 0)},
	} {
		got := s.Next(c.now)
		if !got.Equal(c.want) {
			t.Errorf("Next(%v) = %v, want %v", c.now, got, c.want)
		}
		if l := got.In(sydney); l.Hour() != c.want.Hour() || l.Minute() != 0 {
			t.Errorf("Next(%v) = %v local; want %02d:00 local", c.now, l, c.want.Hour())
		}
	}
	if off := func() int { _, o := at(2026, 10, 4, 9, 0).Zone(); return o }(); off != 11*3600 {
		t.Fatalf("offset %d", off)
	}
	iv, err := becs.ParseSchedule("10m", sydney)
	if err != nil || !iv.Next(at(2026, 1, 1, 0, 0)).Equal(at(2026, 1, 1, 0, 10)) {
		t.Fatalf("interval 10m: %+v, %v", iv, err)
	}
	for _, bad := range []string{"25:00", "09:60", "-10m", "10", "09:00;15:00", "09:00,", "9am", "1d"} {
		if _, err := becs.ParseSchedule(bad, sydney); err == nil {
			t.Errorf("ParseSchedule(%q) accepted", bad)
		}
	}
}

// Issue 12: cut-offs are local times in PYNG_BECS_TIMEZONE; the file's processing date (columns
// 75-80 of its descriptive record, DDMMYY) is the day of the cut in that zone, not in UTC, or the
// next business day after a cut on a weekend or a holiday of PYNG_BECS_HOLIDAYS, when BECS
// processes nothing (a bank may refuse such a date).
func TestTheProcessingDateIsTheCutsBusinessDayInTheZone(t *testing.T) {
	// Christmas 2026 is a Friday, Boxing Day a Saturday, its substitute holiday Monday the 28th;
	// Australia Day 2027 a Tuesday.
	holidays, err := becs.ParseHolidays("2026-12-25, 2026-12-28,2027-01-01,2027-01-26")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		cut      time.Time
		holidays becs.Holidays
		want     string
	}{
		// 23:30 UTC on 1 June 2026 is 09:30 on Tuesday 2 June in Sydney.
		{"a Tuesday in Sydney, a Monday in UTC", time.Date(2026, 6, 1, 23, 30, 0, 0, time.UTC), nil, "020626"},
		{"a Saturday in Sydney, a Friday in UTC", time.Date(2026, 6, 5, 23, 30, 0, 0, time.UTC), nil, "080626"},
		{"a Sunday in Sydney", time.Date(2026, 6, 6, 23, 30, 0, 0, time.UTC), nil, "080626"},
		{"a Friday in Sydney", time.Date(2026, 6, 4, 23, 30, 0, 0, time.UTC), nil, "050626"},
		{"a holiday not listed", time.Date(2026, 12, 24, 23, 30, 0, 0, time.UTC), nil, "251226"},
		{"Christmas, a Friday, then a weekend and a holiday", time.Date(2026, 12, 24, 23, 30, 0, 0, time.UTC), holidays, "291226"},
		{"the Sunday before a holiday", time.Date(2026, 12, 26, 23, 30, 0, 0, time.UTC), holidays, "291226"},
		{"the day before a holiday", time.Date(2026, 12, 30, 23, 30, 0, 0, time.UTC), holidays, "311226"},
		{"New Year's Day, a Friday", time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC), holidays, "040127"},
		// 14:00 UTC on Monday 25 January 2027 is 01:00 on Tuesday 26 in Sydney: the holiday is
		// Sydney's day, not UTC's.
		{"a holiday in Sydney, the day before in UTC", time.Date(2027, 1, 25, 14, 0, 0, 0, time.UTC), holidays, "270127"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
				ctx := context.Background()
				f := newFixture(t, engine)
				f.clock.Set(tc.cut)
				f.submit(t, "B1", 100)
				files, err := f.rail.Cut(ctx, becs.Calendar{Location: sydney, Holidays: tc.holidays})
				if err != nil || len(files) != 1 {
					t.Fatalf("Cut = %+v, %v; want one file", files, err)
				}
				content, err := f.rail.Content(ctx, files[0].ID)
				if err != nil {
					t.Fatal(err)
				}
				if got := string(content[74:80]); got != tc.want {
					t.Errorf("processing date %q, want %s", got, tc.want)
				}
			})
		})
	}
}

func TestHolidaysAreDatesNamedOnce(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "", want: nil},
		{in: "  ", want: nil},
		{in: "2026-12-25", want: []string{"2026-12-25"}},
		{in: " 2026-12-25 ,2026-12-28", want: []string{"2026-12-25", "2026-12-28"}},
		{in: "25/12/2026", err: `"25/12/2026" is not a date (YYYY-MM-DD)`},
		{in: "2026-02-30", err: `"2026-02-30" is not a date`},
		{in: "2026-12-25,", err: `"" is not a date`},
		{in: "2026-12-25,2026-12-25", err: "names 2026-12-25 twice"},
	} {
		h, err := becs.ParseHolidays(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseHolidays(%q) = %v, %v; want an error saying %s", tc.in, h, err, tc.err)
			}
			continue
		}
		got := slices.Sorted(maps.Keys(h))
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseHolidays(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestACalendarKnowsWhetherItHasHolidaysInTheYearAhead(t *testing.T) {
	h, err := becs.ParseHolidays("2026-12-25,2027-12-27")
	if err != nil {
		t.Fatal(err)
	}
	cal := becs.Calendar{Location: sydney, Holidays: h}
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2026, 1, 1, 0, 0, 0, 0, sydney), true},
		{time.Date(2026, 12, 25, 12, 0, 0, 0, sydney), false}, // the day itself is past; the next is a year and two days on
		{time.Date(2026, 12, 27, 12, 0, 0, 0, sydney), true},
		{time.Date(2027, 12, 27, 12, 0, 0, 0, sydney), false},
	} {
		if got := cal.KnowsHolidaysAfter(tc.at); got != tc.want {
			t.Errorf("KnowsHolidaysAfter(%v) = %v, want %v", tc.at, got, tc.want)
		}
	}
	if (becs.Calendar{}).KnowsHolidaysAfter(time.Now()) {
		t.Error("a calendar without holidays knows one")
	}
}

func TestAccountTitleIsTheAccountNameWhenGiven(t *testing.T) {
	for _, c := range []struct {
		account rail.Account
		want    string
	}{
		{rail.Account{Name: "Jane Citizen", Title: "CITIZEN HOLDINGS PTY LTD"}, "CITIZEN HOLDINGS PTY LTD"},
		{rail.Account{Name: "Jane Citizen"}, "Jane Citizen"},
		{rail.Account{Name: "Jane Citizen", Title: "   "}, "Jane Citizen"},
	} {
		if got := becs.AccountTitle(c.account); got != c.want {
			t.Errorf("AccountTitle(%+v) = %q, want %q", c.account, got, c.want)
		}
	}
}

// countingDir is an outbox directory that counts the stages of each file and is slow to stage,
// so that deliverers running at once overlap.
type countingDir struct {
	becs.Dir
	mu     sync.Mutex
	stages map[string]int
}

func (d *countingDir) Stage(ctx context.Context, name string, content []byte) error {
	d.mu.Lock()
	d.stages[name]++
	d.mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	return d.Dir.Stage(ctx, name, content)
}

func TestConcurrentDeliveriesPutEachFileOnce(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		for i := range 3 {
			f.submit(t, fmt.Sprintf("B%d", i), int64(100+i), int64(200+i))
			if _, err := f.rail.Cut(ctx, inSydney); err != nil {
				t.Fatal(err)
			}
		}
		dest := &countingDir{Dir: becs.Dir(t.TempDir()), stages: map[string]int{}}
		const deliverers = 4
		var wg sync.WaitGroup
		delivered := make([][]becs.File, deliverers)
		errs := make([]error, deliverers)
		for i := range deliverers {
			r, err := becs.Open(ctx, f.db.Conn(), f.clock) // as a replica's rail
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() { delivered[i], _, errs[i] = r.Deliver(ctx, dest) })
		}
		wg.Wait()
		files, err := f.rail.Files(ctx, f.site.ID)
		if err != nil || len(files) != 3 {
			t.Fatalf("Files = %d files, %v; want 3", len(files), err)
		}
		byDeliverer := map[string]int{}
		for i := range deliverers {
			if errs[i] != nil {
				t.Fatalf("deliverer %d: %v", i, errs[i])
			}
			for _, d := range delivered[i] {
				byDeliverer[d.ID]++
			}
		}
		for _, file := range files {
			if dest.stages[file.Name()] != 1 || byDeliverer[file.ID] != 1 || file.DeliveredAt.IsZero() {
				t.Errorf("file %s was staged %d times and reported delivered by %d deliverers (delivered at %v); want once",
					file.ID, dest.stages[file.Name()], byDeliverer[file.ID], file.DeliveredAt)
			}
		}
	})
}

// TestASiteWhoseDebitsExceedAFilesTotalIsCutIntoSeveralFiles queues more than a file's ten-digit
// amount fields hold (9,999,999,999 cents) for one site: the cut makes as many files as keep
// each file's totals within them, rather than failing the site's cut at every cut-off.
func TestASiteWhoseDebitsExceedAFilesTotalIsCutIntoSeveralFiles(t *testing.T) {
	for _, selfBalancing := range []bool{false, true} {
		t.Run(fmt.Sprintf("selfBalancing=%t", selfBalancing), func(t *testing.T) {
			dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
				ctx := context.Background()
				f := newFixture(t, engine)
				u := User
				u.SelfBalancing = selfBalancing
				if _, err := f.rail.SetUser(ctx, f.site.ID, u); err != nil {
					t.Fatal(err)
				}
				amounts := []int64{100}
				for range 25 {
					amounts = append(amounts, billing.MaxAmount)
				}
				f.submit(t, "B1", amounts...)
				files, err := f.rail.Cut(ctx, inSydney)
				if err != nil || len(files) != 3 {
					t.Fatalf("Cut = %d files, %v; want 3: at most 9 debits of %d in each", len(files), err, billing.MaxAmount)
				}
				rows, total := 0, int64(0)
				for _, file := range files {
					rows, total = rows+file.Rows, total+file.Total
					content, err := f.rail.Content(ctx, file.ID)
					if err != nil {
						t.Fatal(err)
					}
					parsed, err := aba.Read(bytes.NewReader(content))
					if err != nil {
						t.Fatalf("file %s does not read: %v", file.ID, err)
					}
					want := aba.Totals{Net: file.Total, Debit: file.Total, Count: file.Rows}
					if selfBalancing {
						want = aba.Totals{Net: 0, Credit: file.Total, Debit: file.Total, Count: file.Rows + 1}
					}
					if got := parsed.Totals(); got != want || file.Total > 9_999_999_999 {
						t.Errorf("file %s: totals %+v, want %+v within 9,999,999,999", file.ID, got, want)
					}
				}
				if rows != len(amounts) || total != 100+25*billing.MaxAmount {
					t.Fatalf("the files hold %d debits, %d cents; want every debit once: %d, %d", rows, total, len(amounts), 100+25*billing.MaxAmount)
				}
				if again, err := f.rail.Cut(ctx, inSydney); err != nil || len(again) != 0 {
					t.Fatalf("a second Cut = %+v, %v; want nothing left", again, err)
				}
			})
		})
	}
}

// Two executions of a batch at once (a job and its rescue, or the deadline's settling) submit the
// same debits together: each is recorded once and both submissions succeed. On PostgreSQL the
// later insert used to meet the earlier's lodgement reference before its key and fail.
func TestConcurrentSubmissionsOfTheSameDebitsRecordEachOnce(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		const rounds, perRound, submitters = 40, 2, 6 // the race is won or lost by a hair: run it often
		debits := make([]rail.Debit, rounds*perRound)
		var total int64
		for i := range debits {
			debits[i] = rail.Debit{Key: billing.NewID("row"), Amount: int64(100 + i), Currency: "AUD", Site: f.site.ID,
				Account: rail.Account{BSB: "062-000", Number: "12345678", Name: "J CITIZEN"}, Deadline: f.clock.Now().Add(24 * time.Hour)}
			total += debits[i].Amount
		}
		rails := make([]*becs.Rail, submitters)
		for i := range rails {
			r, err := becs.Open(ctx, f.db.Conn(), f.clock)
			if err != nil {
				t.Fatal(err)
			}
			rails[i] = r
		}
		for round := range rounds {
			batch := debits[round*perRound : (round+1)*perRound]
			start := make(chan struct{})
			var wg sync.WaitGroup
			errs := make([]error, submitters)
			for i, r := range rails {
				wg.Go(func() {
					<-start
					outcomes, err := r.Submit(ctx, batch)
					if err == nil && len(outcomes) != len(batch) {
						err = fmt.Errorf("%d outcomes, want %d", len(outcomes), len(batch))
					}
					errs[i] = err
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("round %d, submitter %d: %v", round, i, err)
				}
			}
		}
		file := f.cutOne(t)
		if file.Rows != len(debits) || file.Total != total {
			t.Errorf("the file holds %d debits, %d cents; want each of the %d once, %d", file.Rows, file.Total, len(debits), total)
		}
	})
}

// Unlodged is what the bank has yet to be given: a file cut and not delivered, then delivered
// and not lodged, until it is lodged or too late to be (its lodge-by passed).
func TestUnlodgedListsTheFilesTheBankHasYetToBeGiven(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		f.submit(t, "B1", 1234)
		file := f.cutOne(t)
		unlodged := func() []becs.File {
			t.Helper()
			files, err := f.rail.Unlodged(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return files
		}
		if got := unlodged(); len(got) != 1 || got[0].ID != file.ID || got[0].State(f.clock.Now()) != becs.FileCut {
			t.Errorf("Unlodged after the cut = %+v; want the file, cut", got)
		}
		if _, _, err := f.rail.Deliver(ctx, becs.Dir(t.TempDir())); err != nil {
			t.Fatal(err)
		}
		if got := unlodged(); len(got) != 1 || got[0].State(f.clock.Now()) != becs.FileDelivered {
			t.Errorf("Unlodged after the delivery = %+v; want the file, delivered", got)
		}
		f.clock.Set(file.LodgeBy())
		if got := unlodged(); len(got) != 0 {
			t.Errorf("Unlodged at the file's lodge-by = %+v; want none (too late to lodge)", got)
		}
	})
}

// A debit that reached the rail late (its batch's steps delayed for hours), its deadline less
// than LodgeWindow past the lodging margin, goes in a file apart with the other such debits of
// its site, so that it does not make the site's other debits' file expire with it.
func TestALateDebitDoesNotShortenTheOthersTimeToLodge(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		f := newFixture(t, engine)
		f.submit(t, "LATE", 100, 250)
		f.clock.Advance(billing.RowDeadline - becs.LodgeMargin - becs.LodgeWindow + time.Minute) // 59 minutes to lodge it
		f.submit(t, "FRESH", 1000)
		files, err := f.rail.Cut(context.Background(), inSydney)
		if err != nil || len(files) != 2 {
			t.Fatalf("Cut = %+v, %v; want the late debits' file and the fresh one's", files, err)
		}
		now := f.clock.Now()
		for i, want := range []struct {
			total   int64
			lodgeBy time.Duration
		}{{350, becs.LodgeWindow - time.Minute}, {1000, billing.RowDeadline - becs.LodgeMargin}} {
			if files[i].Total != want.total || files[i].LodgeBy().Sub(now) != want.lodgeBy {
				t.Errorf("file %d holds %d cents, to be lodged within %v; want %d within %v", i, files[i].Total, files[i].LodgeBy().Sub(now), want.total, want.lodgeBy)
			}
		}
	})
}

// A debit withdrawn before any cut took it is never sent: the cut leaves it out, Submit of its key
// again (its batch's next step, the customer linked anew) leaves it withdrawn, and every answer
// of the rail reports it failed, at the time of its withdrawal, its account erased. A debit in a
// file is not withdrawn: it is reported as it stands. A key never submitted is withdrawn too, and
// stays so when it is submitted afterwards.
func TestAWithdrawnDebitStaysWithdrawnAndIsNeverSent(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		debit := func(amount int64) rail.Debit {
			return rail.Debit{Key: billing.NewID("row"), Amount: amount, Currency: "AUD", Site: f.site.ID,
				Account: rail.Account{BSB: "062000", Number: "12345678", Name: "J CITIZEN"}, Deadline: f.clock.Now().Add(24 * time.Hour)}
		}
		filed, withdrawn := debit(100), debit(200)
		if _, err := f.rail.Submit(ctx, []rail.Debit{filed}); err != nil {
			t.Fatal(err)
		}
		f.cutOne(t)
		if _, err := f.rail.Submit(ctx, []rail.Debit{withdrawn}); err != nil {
			t.Fatal(err)
		}
		at := f.clock.Now().UTC()
		wantFailed := rail.Outcome{Key: withdrawn.Key, Settled: true, Failure: rail.FailureWithdrawn, SettledAt: at}
		unsent := debit(300)
		wantUnsent := rail.Outcome{Key: unsent.Key, Settled: true, Failure: rail.FailureWithdrawn, SettledAt: at}
		got, err := f.rail.Withdraw(ctx, []string{filed.Key, withdrawn.Key, unsent.Key})
		if err != nil || len(got) != 3 {
			t.Fatalf("Withdraw = %+v, %v; want the three debits", got, err)
		}
		for _, o := range got {
			if o.Key == filed.Key && (o.Settled || o.Queued || o.FileID == "") {
				t.Errorf("the debit in a file, withdrawn: %+v; want it in its file, not settled", o)
			}
			if o.Key == withdrawn.Key && o != wantFailed {
				t.Errorf("the debit withdrawn: %+v; want %+v", o, wantFailed)
			}
			if o.Key == unsent.Key && o != wantUnsent {
				t.Errorf("the debit never submitted, withdrawn: %+v; want %+v", o, wantUnsent)
			}
		}
		if got, err := f.rail.Submit(ctx, []rail.Debit{unsent}); err != nil || len(got) != 1 || got[0] != wantUnsent {
			t.Errorf("Submit of the debit withdrawn before it was submitted = %+v, %v; want %+v", got, err, wantUnsent)
		}
		f.clock.Advance(time.Minute)
		for name, answer := range map[string]func() ([]rail.Outcome, error){
			"Withdraw again": func() ([]rail.Outcome, error) { return f.rail.Withdraw(ctx, []string{withdrawn.Key}) },
			"Submit again":   func() ([]rail.Outcome, error) { return f.rail.Submit(ctx, []rail.Debit{withdrawn}) },
			"Outcomes":       func() ([]rail.Outcome, error) { return f.rail.Outcomes(ctx, []string{withdrawn.Key}) },
		} {
			if got, err := answer(); err != nil || len(got) != 1 || got[0] != wantFailed {
				t.Errorf("%s = %+v, %v; want %+v", name, got, err, wantFailed)
			}
		}
		if files, err := f.rail.Cut(ctx, inSydney); err != nil || len(files) != 0 {
			t.Errorf("Cut = %+v, %v; want no file", files, err)
		}
		if overdue, err := f.rail.CutOverdue(ctx, becs.Schedule{Interval: time.Second, Location: time.UTC}); err != nil || overdue {
			t.Errorf("CutOverdue = %v, %v; want false: nothing is left to cut", overdue, err)
		}
		var account string
		if err := f.db.Conn().Query(ctx, fmt.Sprintf(`SELECT bsb || account_number || title FROM becs_debits WHERE idempotency_key = '%s'`, withdrawn.Key),
			nil, func(row storage.Scanner) error { return row.Scan(&account) }); err != nil || account != "" {
			t.Errorf("the withdrawn debit's account = %q, %v; want it erased", account, err)
		}
	})
}

// Every row is terminal within 24 hours of submission (the specification), to the millisecond: a
// batch whose debits wait for a cut-off steps again at its deadline at the latest, not at its
// next minute's poll, and the rows still open then expire at the deadline, whether its step or
// the minute's sweep finds them; the batch completes at it too. Their batch.completed events are
// dated when they were written, after it.
func TestRowsStillOpenExpireAtTheirDeadline(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		stepped, swept := f.submit(t, "B1", 100), f.submit(t, "B2", 200) // queued for the cut-off
		f.clock.Set(stepped.Deadline.Add(-10 * time.Second))
		if done, wait, err := f.service.ExecuteBatch(ctx, stepped.ID); err != nil || done || wait > 10*time.Second {
			t.Fatalf("a step 10 s before the deadline = %v, %s, %v; want the next within 10 s", done, wait, err)
		}
		f.clock.Set(stepped.Deadline.Add(30 * time.Second))
		if !f.execute(t, stepped) {
			t.Fatal("the step after the deadline left the batch open")
		}
		f.clock.Advance(30 * time.Second)
		if _, err := f.service.ExpireOverdue(ctx); err != nil {
			t.Fatal(err)
		}
		// Listed once below the events horizon, which another database's transaction (another
		// package's tests) may hold back for a moment.
		var events []billing.Event
		var err error
		for deadline := time.Now().Add(5 * time.Second); len(events) < 2 && err == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			events, _, err = f.service.Events(ctx, f.site, billing.EventFilter{Type: billing.EventBatchCompleted, Limit: 10})
		}
		if err != nil || len(events) != 2 || !events[0].CreatedAt.Equal(stepped.Deadline.Add(30*time.Second)) ||
			!events[1].CreatedAt.Equal(swept.Deadline.Add(time.Minute)) {
			t.Errorf("batch.completed events %+v, %v; want the step's at the deadline and 30 s, the sweep's at a minute", events, err)
		}
		for _, b := range []billing.Batch{stepped, swept} {
			got, _, rows, err := f.service.Batch(ctx, f.site, b.Reference, "")
			if err != nil {
				t.Fatal(err)
			}
			if !got.CompletedAt.Equal(b.Deadline) || len(rows) != 1 || rows[0].FailureReason != billing.FailureExpired || !rows[0].OutcomeAt.Equal(b.Deadline) {
				t.Errorf("batch %s completed at %s, rows %+v; want completed and its row expired at the deadline, %s", b.Reference, got.CompletedAt, rows, b.Deadline)
			}
		}
	})
}

// Migration 00005's Down, run by an operator who takes the rail back to the version before it,
// leaves no withdrawn debit behind as a queued one: that version knows no withdrawn_at, and would
// take the debit, its account erased, into its next cut (which fails on the empty account, and
// with it the site's every cut until the debit's deadline). It removes them, as that version's
// Withdraw did; the debits queued and not withdrawn stay.
func TestTheWithdrawnMigrationsDownLeavesNoWithdrawnDebitToCut(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := withdrawnFixture(t, engine)
		migration, err := os.ReadFile(filepath.Join("migrations", engine, "00005_withdrawn.sql"))
		if err != nil {
			t.Fatal(err)
		}
		_, down, ok := strings.Cut(string(migration), "-- +goose Down")
		if !ok {
			t.Fatal("the migration has no Down")
		}
		for statement := range strings.SplitSeq(down, ";") {
			if strings.TrimSpace(statement) == "" {
				continue
			}
			if _, err := f.db.Conn().Exec(ctx, statement); err != nil {
				t.Fatalf("%s: %v", strings.TrimSpace(statement), err)
			}
		}
		var erased, queued int
		err = f.db.Conn().Query(ctx, `SELECT count(CASE WHEN bsb = '' THEN 1 END), count(*) FROM becs_debits WHERE file_id IS NULL`, nil,
			func(row storage.Scanner) error { return row.Scan(&erased, &queued) })
		if err != nil || erased != 0 || queued != 1 {
			t.Errorf("after the Down, debits queued = %d, of them with their account erased %d (%v); want C2's only, its account whole", queued, erased, err)
		}
	})
}

// A revocation in the moment after a batch's deadline, before its step or the sweep expires the
// rows, withdraws nothing: the debit can no longer be cut, and its row expires at the deadline
// (as every row open then does), not customerNotActive at the revocation, after the batch's
// completedAt.
func TestARevocationAfterTheDeadlineLeavesTheRowToExpireAtIt(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		b := f.submit(t, "B1", 100) // C1's debit queued for the cut-off
		f.clock.Set(b.Deadline.Add(30 * time.Second))
		if _, err := f.service.RevokeByPartner(ctx, f.site, "C1"); err != nil {
			t.Fatal(err)
		}
		if !f.execute(t, b) {
			t.Fatal("the step after the deadline left the batch open")
		}
		got, _, rows, err := f.service.Batch(ctx, f.site, "B1", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].FailureReason != billing.FailureExpired || !rows[0].OutcomeAt.Equal(b.Deadline) || !got.CompletedAt.Equal(b.Deadline) {
			t.Errorf("batch completed at %s, rows %+v; want its row expired at the deadline, %s, and the batch completed then", got.CompletedAt, rows, b.Deadline)
		}
	})
}

// A withdrawn debit is not one the rail's version before migration 00005 would cut: a replica of
// it runs beside the new ones during a rolling upgrade, and is the one a rollback deploys again
// (docs/operations.md: an expand-only migration's rollback runs the previous binary on the new
// schema). That version knows no withdrawn_at: it cuts every debit of no file whose deadline is
// more than LodgeMargin away, and a withdrawn debit among them, its account erased, would fail the
// site's every cut (its file refused for the empty BSB) until that deadline.
func TestTheVersionBeforeWithdrawnAtCutsNoWithdrawnDebit(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := withdrawnFixture(t, engine)
		for _, at := range []time.Time{f.clock.Now(), f.clock.Now().Add(time.Hour)} {
			// The condition of that version's Cut, CutOverdue and cutSite.
			query := `SELECT count(*), count(CASE WHEN bsb = '' THEN 1 END) FROM becs_debits WHERE file_id IS NULL AND deadline > $1`
			if engine == storage.EngineSQLite {
				query = strings.ReplaceAll(query, "$", "?")
			}
			var cut, erased int
			err := f.db.Conn().Query(ctx, query, []any{at.Add(becs.LodgeMargin).UnixMilli()},
				func(row storage.Scanner) error { return row.Scan(&cut, &erased) })
			if err != nil || cut != 1 || erased != 0 {
				t.Errorf("at %s the version before would cut %d debits, %d of them with their account erased (%v); want C2's only", at, cut, erased, err)
			}
		}
	})
}

// withdrawnFixture is a fixture whose batch B1 has C1's and C2's debits queued, C1's withdrawn by
// C1's revocation.
func withdrawnFixture(t *testing.T, engine string) fixture {
	t.Helper()
	f := newFixture(t, engine)
	f.submit(t, "B1", 100, 200)
	if _, err := f.service.RevokeByPartner(context.Background(), f.site, "C1"); err != nil {
		t.Fatal(err)
	}
	return f
}

// A cut and a withdrawal of some of the same debits at once (a revocation at the cut-off) both
// succeed on PostgreSQL, each debit withdrawn or in the file: the cut's UPDATE locked the rows in
// the order it scanned the table and the withdrawal in the order of its keys, and the two
// deadlocked (SQLSTATE 40P01), failing the site's cut at its cut-off.
func TestACutAndAWithdrawalAtOnceDoNotDeadlock(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, storage.EnginePostgres)
	other := dbtest.OpenURL(t, f.url, storage.WithKeyring(dbtest.Keyring()))
	withdrawer, err := becs.Open(ctx, other.Conn(), f.clock)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		debits := make([]rail.Debit, 2000)
		for i := range debits {
			debits[i] = rail.Debit{Key: billing.NewID("row"), Amount: int64(100 + i), Currency: "AUD", Site: f.site.ID,
				Account: rail.Account{Name: "X", BSB: "062000", Number: "12345678"}, Deadline: f.clock.Now().Add(24 * time.Hour)}
		}
		if _, err := f.rail.Submit(ctx, debits); err != nil {
			t.Fatal(err)
		}
		var keys []string // every second debit, last first
		for i := len(debits) - 1; i >= 0; i -= 2 {
			keys = append(keys, debits[i].Key)
		}
		var wg sync.WaitGroup
		var files []becs.File
		var outcomes []rail.Outcome
		var cutErr, withdrawErr error
		wg.Go(func() { files, cutErr = f.rail.Cut(ctx, inSydney) })
		wg.Go(func() { outcomes, withdrawErr = withdrawer.Withdraw(ctx, keys) })
		wg.Wait()
		if cutErr != nil || withdrawErr != nil {
			t.Fatalf("round %d: cut: %v; withdrawal: %v", round, cutErr, withdrawErr)
		}
		rows := 0
		for _, file := range files {
			rows += file.Rows
		}
		withdrawn := 0
		for _, o := range outcomes {
			if o.Failure == rail.FailureWithdrawn {
				withdrawn++
			}
		}
		if rows+withdrawn != len(debits) {
			t.Fatalf("round %d: %d debits cut and %d withdrawn, of %d", round, rows, withdrawn, len(debits))
		}
	}
}

// A withdrawal locks only the debits it withdraws: a debit past its deadline, which it leaves as
// it is, may be locked meanwhile by another writer (EraseAccounts erases the bank details of such
// debits, locking them in the order it scans them), and the withdrawal neither waits for it nor,
// locking it too in another order, deadlocks with it.
func TestAWithdrawalDoesNotLockTheDebitsPastTheirDeadlineItLeaves(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, storage.EnginePostgres)
	debit := func(deadline time.Duration) rail.Debit {
		return rail.Debit{Key: billing.NewID("row"), Amount: 100, Currency: "AUD", Site: f.site.ID,
			Account: rail.Account{Name: "X", BSB: "062000", Number: "12345678"}, Deadline: f.clock.Now().Add(deadline)}
	}
	expired, queued := debit(time.Hour), debit(48*time.Hour)
	expired.Key, queued.Key = "a_"+expired.Key, "b_"+queued.Key // the one left first in key order
	if _, err := f.rail.Submit(ctx, []rail.Debit{expired, queued}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour)
	other := dbtest.OpenURL(t, f.url, storage.WithKeyring(dbtest.Keyring()))
	locked := make(chan struct{})
	release := make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- other.Conn().InTx(ctx, func(tx storage.Statements) error {
			if _, err := tx.Exec(ctx, `UPDATE becs_debits SET title = title WHERE idempotency_key = $1`, expired.Key); err != nil {
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	withdrawing, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	outcomes, err := f.rail.Withdraw(withdrawing, []string{expired.Key, queued.Key})
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatalf("the withdrawal waited for the lock of a debit it leaves: %v", err)
	}
	for _, o := range outcomes {
		if withdrawn := o.Failure == rail.FailureWithdrawn; withdrawn != (o.Key == queued.Key) {
			t.Errorf("%s: %+v", o.Key, o)
		}
	}
}

// unanswering is the BECS rail unable to answer for the debits of some keys (a statement
// timing out, the database out of reach for a moment).
type unanswering struct {
	*becs.Rail
	keys map[string]bool
}

func (r unanswering) Outcomes(ctx context.Context, keys []string) ([]rail.Outcome, error) {
	for _, k := range keys {
		if r.keys[k] {
			return nil, errors.New("canceling statement due to statement timeout")
		}
	}
	return r.Rail.Outcomes(ctx, keys)
}

// A file lodged in time whose lodgement no step recorded (the command's record failed, the
// batch's job was held up): the sweep at the deadline cannot ask the rail about its debits. It
// leaves that batch open rather than telling the partner the debits expired, and expires the
// others; the next sweep finds the debits succeeded. A rail that still cannot answer once the
// grace has passed has the batch expired all the same: every row is terminal soon after its
// deadline.
func TestTheSweepDoesNotExpireABatchWhoseRailCannotBeAsked(t *testing.T) {
	for _, c := range []struct {
		name  string
		after time.Duration // past the deadline, of the sweep that cannot ask the rail
		want  []string      // the lodged batch's rows after it
	}{
		{"within the grace", time.Second, []string{"inProgress", "inProgress"}},
		{"past the grace", time.Hour, []string{"failedexpired", "failedexpired"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
				ctx := context.Background()
				f := newFixture(t, engine)
				lodged := f.submit(t, "B1", 100, 250)
				file := f.cutOne(t)
				f.execute(t, lodged) // its rows inProgress, in the file
				if _, err := f.rail.Lodge(ctx, file.ID); err != nil {
					t.Fatal(err)
				}
				queued := f.submit(t, "B2", 300) // no file: expires at its deadline
				keys := map[string]bool{}
				for _, r := range f.rows(t, "B1") {
					keys[r.ID] = true
				}
				sweeping := f.replica(unanswering{f.rail, keys})
				f.clock.Set(queued.Deadline.Add(c.after))
				if _, err := sweeping.ExpireOverdue(ctx); err == nil {
					t.Error("the sweep that could not ask the rail returned no error")
				}
				if got := states(f.rows(t, "B1")); !slices.Equal(got, c.want) {
					t.Errorf("the lodged batch's rows after the sweep %v past the deadline: %v; want %v", c.after, got, c.want)
				}
				if got := states(f.rows(t, "B2")); !slices.Equal(got, []string{"failedexpired"}) {
					t.Errorf("the other batch's rows %v; want failed expired", got)
				}
				if _, err := f.service.ExpireOverdue(ctx); err != nil {
					t.Fatal(err)
				}
				want := []string{"succeeded", "succeeded"}
				if c.after > time.Minute {
					want = c.want
				}
				if got := states(f.rows(t, "B1")); !slices.Equal(got, want) {
					t.Errorf("the lodged batch's rows after the next sweep: %v; want %v", got, want)
				}
			})
		})
	}
}

// While the sweep leaves open a batch whose rail cannot be asked, the other overdue batches
// expire all the same: a batch not started too (its job held up), whose rows no rail has.
func TestTheSweepExpiresABatchNotStartedWhileItLeavesAnotherOpen(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		f.submit(t, "B1", 100)
		notStarted := apptest.SubmitBatch(t, f.service, f.site, "B2", billing.RowRequest{Reference: "R1", CustomerReference: "C1", Amount: 300})
		keys := map[string]bool{}
		for _, r := range f.rows(t, "B1") {
			keys[r.ID] = true
		}
		sweeping := f.replica(unanswering{f.rail, keys})
		f.clock.Set(notStarted.Deadline.Add(time.Second))
		if _, err := sweeping.ExpireOverdue(ctx); err == nil {
			t.Error("the sweep that could not ask the rail returned no error")
		}
		if got := states(f.rows(t, "B1")); !slices.Equal(got, []string{"pending"}) {
			t.Errorf("the batch whose rail cannot be asked: %v; want it left open", got)
		}
		if got := states(f.rows(t, "B2")); !slices.Equal(got, []string{"failedexpired"}) {
			t.Errorf("the batch not started: %v; want failed expired", got)
		}
	})
}

// A withdrawal of keys a submission is inserting at that moment (a revocation while a step of
// the batch submits the customer's debits, each listing the keys in its own order): both succeed,
// rather than deadlocking on PostgreSQL (each waiting for a key the other inserted), and every
// debit ends withdrawn, whichever came first. Run often: the race is won or lost by a hair.
func TestAWithdrawalAndASubmissionOfTheSameKeysAtOnceBothSucceed(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		for round := range 20 {
			debits := make([]rail.Debit, 300)
			keys := make([]string, len(debits))
			for i := range debits {
				debits[i] = rail.Debit{Key: billing.NewID("row"), Amount: int64(100 + i), Currency: "AUD", Site: f.site.ID,
					Account: rail.Account{BSB: "062000", Number: "12345678", Name: "J CITIZEN"}, Deadline: f.clock.Now().Add(24 * time.Hour)}
				keys[i] = debits[i].Key
			}
			slices.Reverse(keys)
			var submitErr, withdrawErr error
			var wg sync.WaitGroup
			wg.Go(func() { _, submitErr = f.rail.Submit(ctx, debits) })
			wg.Go(func() { _, withdrawErr = f.rail.Withdraw(ctx, keys) })
			wg.Wait()
			if submitErr != nil || withdrawErr != nil {
				t.Fatalf("round %d: Submit: %v; Withdraw: %v", round, submitErr, withdrawErr)
			}
			outcomes, err := f.rail.Outcomes(ctx, keys)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range outcomes {
				if !o.Settled || o.Failure != rail.FailureWithdrawn {
					t.Fatalf("round %d: debit %s %+v; want it withdrawn", round, o.Key, o)
				}
			}
		}
	})
}
