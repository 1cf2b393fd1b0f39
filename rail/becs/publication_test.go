package becs_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/clocktest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/storage"
)

// promptly runs fn, which must be done within a second, with a context that ends after five.
func promptly(t *testing.T, what string, fn func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err := fn(ctx)
	if took := time.Since(start); err != nil || took > time.Second {
		t.Errorf("%s while a publication waits for the bank's server took %v (%v); want it done at once", what, took, err)
	}
}

// A publication holds nothing the API needs while it waits for the bank's server (which may hang
// until its timeout, at every delivery run): on SQLite the process has one connection to the
// database, which a transaction held across the rename would keep from every other statement.
// Here the rename hangs; reading the file, a write of the API's, and Lodge (refused at once, the
// file being published) are done at once on the same storage.Conn.
func TestAPublicationDoesNotHoldTheDatabase(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		f.submit(t, "B1", 100)
		file := f.cutOne(t)
		dest := pausedPublish{lodgingDir{becs.Dir(t.TempDir())}, make(chan struct{}), make(chan struct{})}
		delivering := make(chan error, 1)
		go func() {
			_, _, err := f.rail.Deliver(ctx, dest)
			delivering <- err
		}()
		<-dest.reached
		func() {
			defer close(dest.release)
			promptly(t, "reading the file", func(ctx context.Context) error {
				got, err := f.rail.File(ctx, file.ID)
				if err == nil && (got.DeliveredAt.IsZero() || !got.PublishedAt.IsZero()) {
					t.Errorf("during its rename the file is %+v; want delivered, not published", got)
				}
				return err
			})
			promptly(t, "an invitation (the API's write)", func(ctx context.Context) error {
				_, err := f.service.Invite(ctx, f.site, "C9")
				return err
			})
			promptly(t, "files lodged", func(ctx context.Context) error {
				if _, err := f.rail.Lodge(ctx, file.ID); !errors.Is(err, becs.ErrBeingPublished) {
					t.Errorf("files lodged during the rename = %v; want ErrBeingPublished", err)
				}
				return nil
			})
		}()
		if err := <-delivering; err != nil {
			t.Fatal(err)
		}
		if got, err := f.rail.File(ctx, file.ID); err != nil || got.PublishedAt.IsZero() || got.LodgedAt.IsZero() {
			t.Fatalf("after the rename the file is %+v, %v; want published and lodged", got, err)
		}
	})
}

// publishCrash is the panic of crashingPublish: the process dies there.
type publishCrash struct{}

// crashingPublish is the bank's server, with the process that delivers to it dying during a
// publication: before the rename, or after it and before its record.
type crashingPublish struct {
	lodgingDir
	afterRename bool
}

func (d crashingPublish) Publish(ctx context.Context, name string) error {
	if d.afterRename {
		if err := d.lodgingDir.Publish(ctx, name); err != nil {
			return err
		}
	}
	panic(publishCrash{})
}

// deliverAndCrash delivers the fixture's files to the bank's server, the directory bank, the
// process dying during the publication (before the rename, or after it and before its record).
func deliverAndCrash(t *testing.T, f fixture, bank string, afterRename bool) {
	t.Helper()
	defer func() {
		if p := recover(); p != (publishCrash{}) {
			t.Fatalf("the delivery ended with %v; want the simulated crash", p)
		}
	}()
	_, _, _ = f.rail.Deliver(context.Background(), crashingPublish{lodgingDir{becs.Dir(bank)}, afterRename})
}

// On SQLite a publication claims its file (no transaction held), and a delivery cut short during
// it (a crash, before the rename or after it) leaves the claim: files lodged is refused
// (ErrBeingPublished), at first as for a publication under way, and once the claim is older than
// a publication lasts, saying the server's next delivery run finishes it. The next run does: the
// bank's server holds the file once, lodged by its publication, and files lodged then finds it
// lodged. It is never recorded lodged otherwise while the rename may have happened.
func TestAPublicationCutShortIsFinishedByTheNextRunAndLodgeIsRefusedMeanwhile(t *testing.T) {
	for _, c := range []struct {
		name        string
		afterRename bool
	}{{"before its rename", false}, {"after its rename", true}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFixture(t, storage.EngineSQLite)
			b := f.submit(t, "B1", 100, 250)
			file := f.cutOne(t)
			bank := t.TempDir()
			deliverAndCrash(t, f, bank, c.afterRename)

			if _, err := f.rail.Lodge(ctx, file.ID); !errors.Is(err, becs.ErrBeingPublished) ||
				!strings.Contains(err.Error(), "run the command again in a minute") {
				t.Errorf("files lodged just after the crash = %v; want ErrBeingPublished, to be run again in a minute", err)
			}
			f.clock.Advance(10 * time.Minute) // the server is down for a while
			if _, err := f.rail.Lodge(ctx, file.ID); !errors.Is(err, becs.ErrBeingPublished) ||
				!strings.Contains(err.Error(), "next delivery run") {
				t.Errorf("files lodged 10 minutes after the crash = %v; want ErrBeingPublished, saying the next delivery run finishes it", err)
			}
			if got, err := f.rail.File(ctx, file.ID); err != nil || !got.LodgedAt.IsZero() || !got.PublishedAt.IsZero() {
				t.Fatalf("after the crash the file is %+v, %v; want neither lodged nor published", got, err)
			}

			delivered, _, err := f.rail.Deliver(ctx, lodgingDir{becs.Dir(bank)}) // the next run
			if err != nil || len(delivered) != 1 || delivered[0].ID != file.ID || delivered[0].LodgedAt.IsZero() {
				t.Fatalf("the next run delivered %+v, %v; want the file, lodged by its publication", delivered, err)
			}
			var names []string
			entries, _ := os.ReadDir(bank)
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if !slices.Equal(names, []string{file.Name()}) {
				t.Fatalf("the bank's server holds %v; want %s once", names, file.Name())
			}
			got, err := f.rail.Lodge(ctx, file.ID)
			if err != nil || !got.LodgedAt.Equal(delivered[0].LodgedAt) {
				t.Fatalf("files lodged after the next run = %+v, %v; want the file as its publication lodged it", got, err)
			}
			f.execute(t, b)
			if got := states(f.rows(t, "B1")); !slices.Equal(got, []string{"succeeded", "succeeded"}) {
				t.Errorf("rows %v; want succeeded", got)
			}
		})
	}
}

// A publication that fails (the bank's server down) does not keep the file from being lodged
// otherwise, through the bank's portal during the outage: files lodged records it (on SQLite the
// publication's claim released), and the next delivery, the server back, does not rename it: its
// staged copy goes.
func TestAFileWhosePublicationFailedCanBeLodgedOtherwise(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		f.submit(t, "B1", 100)
		file := f.cutOne(t)
		bank := t.TempDir()
		if _, _, err := f.rail.Deliver(ctx, failingPublish{lodgingDir{becs.Dir(bank)}}); err == nil {
			t.Fatal("Deliver succeeded; want the rename's error")
		}
		got, err := f.rail.Lodge(ctx, file.ID) // the operator, after uploading it through the portal
		if err != nil || got.LodgedAt.IsZero() {
			t.Fatalf("files lodged after the failed rename = %+v, %v; want the file lodged", got, err)
		}
		delivered, _, err := f.rail.Deliver(ctx, lodgingDir{becs.Dir(bank)})
		if err != nil || len(delivered) != 0 {
			t.Fatalf("Deliver with the server back = %+v, %v; want nothing delivered", delivered, err)
		}
		if entries, _ := os.ReadDir(bank); len(entries) != 0 {
			t.Errorf("the bank's server holds %v; want nothing: the file was lodged through the portal", entries)
		}
		if got, err := f.rail.File(ctx, file.ID); err != nil || !got.PublishedAt.IsZero() || got.LodgedAt.IsZero() {
			t.Errorf("the file is %+v, %v; want lodged, never published", got, err)
		}
	})
}

// On SQLite a delivery cut short after its rename on the bank's server leaves its claim, and
// files lodged is refused until the next run records the publication. On PostgreSQL the same crash
// releases the row lock and leaves nothing: files lodged succeeds although the bank's server has
// the file (the operator who also uploaded it through the portal has it collected twice).
func TestLodgeAfterACrashPostRenameIsRefusedOnEachEngine(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, engine)
			f.submit(t, "B1", 100)
			file := f.cutOne(t)
			bank := t.TempDir()
			deliverAndCrash(t, f, bank, true)
			// The operator's command, another process.
			other, err := becs.Open(ctx, dbtest.OpenURL(t, f.url, storage.WithKeyring(dbtest.Keyring())).Conn(), f.clock)
			if err != nil {
				t.Fatal(err)
			}
			got, err := other.Lodge(ctx, file.ID)
			if !errors.Is(err, becs.ErrBeingPublished) {
				t.Errorf("files lodged after a crash that followed the rename = %+v, %v; want ErrBeingPublished (the bank's server has the file)", got.LodgedAt, err)
			}
		})
	}
}

// On PostgreSQL a BECS publication holds a transaction with a row lock (so an xid) open while
// it waits for the bank's server (up to the SFTP timeout). The events list and the webhook
// deliveries show only events of transactions below the events horizon: every site's events, other
// organisations' too, are held back for as long as the rename takes.
func TestAPublicationDoesNotHoldBackOtherSitesEvents(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, storage.EnginePostgres)
	f.submit(t, "B1", 100)
	f.cutOne(t)
	other := apptest.NewSite(t, f.service, "Other") // another site, on the sandbox rail
	dest := pausedPublish{lodgingDir{becs.Dir(t.TempDir())}, make(chan struct{}), make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, _, err := f.rail.Deliver(ctx, dest)
		done <- err
	}()
	<-dest.reached
	defer func() { close(dest.release); <-done }()
	if _, err := f.service.Invite(ctx, other, "X1"); err != nil {
		t.Fatal(err)
	}
	// Listed within seconds, while the rename stays paused: a transaction of another package's
	// tests that the horizon cannot place yet (just begun or ended, in another database) holds
	// the list back for a moment at most.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		events, _, err := f.service.Events(ctx, other, billing.EventFilter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("another site's committed event is not listed while a BECS file is being renamed on the bank's server")
		}
	}
}

// slowLookup is the bank's server answering the look for a staged copy slowly: during the round
// trip, during calls.
type slowLookup struct {
	lodgingDir
	during func()
}

func (d slowLookup) Staged(ctx context.Context, name string) (bool, error) {
	staged, err := d.lodgingDir.Staged(ctx, name)
	d.during()
	return staged, err
}

// readHook is a replica's clock that runs then, once armed, right after its next reading: between
// a statement's reading the time and the statement.
type readHook struct {
	*clocktest.Clock
	mu   sync.Mutex
	then func()
}

func (c *readHook) Now() time.Time {
	now := c.Clock.Now()
	c.mu.Lock()
	then := c.then
	c.then = nil
	c.mu.Unlock()
	if then != nil {
		then()
	}
	return now
}

// afterNextRead arms the hook: then runs right after the clock's next reading.
func (c *readHook) afterNextRead(then func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.then = then
}

// A delivery cut short after its rename is finished by a later run (a replica's) close to the
// rows' deadline, while the deadline sweep (another replica's) expires the rows, coming between
// the record's reading the time and its statement. A file recorded lodged once the sweep has
// expired its rows tells the rail the debits succeeded, for rows told expired, and no one to
// recall it: the file is recorded lodged only when its record reads the time more than a minute
// before the deadline (ahead of any sweep however long the statement waits or the replicas'
// clocks differ); closer, or after it, its rows expire and the run says to have the bank recall
// it.
func TestAPublicationRecordedNearTheDeadlineIsLodgedOnlyAheadOfTheSweep(t *testing.T) {
	for _, c := range []struct {
		name string
		// readAt is when the record reads the time, from the rows' deadline; sweepBetween whether
		// the sweep comes between that reading and the record's statement, or after the run.
		readAt       time.Duration
		sweepBetween bool
		lodged       bool
	}{
		{name: "read after the deadline", readAt: time.Second, sweepBetween: true},
		{name: "read a moment before the deadline, written after the sweep", readAt: -time.Millisecond, sweepBetween: true},
		{name: "read less than a minute before the deadline", readAt: -59 * time.Second},
		{name: "read more than a minute before the deadline", readAt: -61 * time.Second, lodged: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
				ctx := context.Background()
				f := newFixture(t, engine)
				b := f.submit(t, "B1", 100, 250)
				file := f.cutOne(t)
				bank := t.TempDir()
				deliverAndCrash(t, f, bank, true)
				f.clock.Set(file.LodgeBy()) // past it the run looks for the staged copy (gone: renamed), and renames nothing
				sweep := func() {
					f.clock.Set(file.EarliestDeadline.Add(time.Second))
					if _, err := f.service.ExpireOverdue(ctx); err != nil {
						t.Error(err)
					}
				}
				clock := &readHook{Clock: f.clock}
				replica, err := becs.Open(ctx, f.db.Conn(), clock)
				if err != nil {
					t.Fatal(err)
				}
				dest := slowLookup{lodgingDir{becs.Dir(bank)}, func() {
					f.clock.Set(file.EarliestDeadline.Add(c.readAt))
					if c.sweepBetween {
						clock.afterNextRead(sweep)
					}
				}}
				_, _, err = replica.Deliver(ctx, dest)
				if asked := err != nil && strings.Contains(err.Error(), "have the bank recall it"); asked == c.lodged || c.lodged && err != nil {
					t.Errorf("Deliver = %v; want the file's recall asked for: %t", err, !c.lodged)
				}
				if !c.sweepBetween {
					sweep()
				}
				f.execute(t, b)
				want := []string{"failedexpired", "failedexpired"}
				if c.lodged {
					want = []string{"succeeded", "succeeded"}
				}
				if rows := states(f.rows(t, "B1")); !slices.Equal(rows, want) {
					t.Errorf("rows %v; want %v", rows, want)
				}
				if got, err := f.rail.File(ctx, file.ID); err != nil || got.LodgedAt.IsZero() == c.lodged {
					t.Errorf("file %+v, %v; want it recorded lodged: %t", got, err, c.lodged)
				}
			})
		})
	}
}

// renamedThenLost is the bank's server whose rename is done and whose answer is lost (the
// connection drops): the publication fails and releases its claim, the file on the server.
type renamedThenLost struct{ lodgingDir }

func (d renamedThenLost) Publish(ctx context.Context, name string) error {
	if err := d.lodgingDir.Publish(ctx, name); err != nil {
		return err
	}
	return errors.New("connection lost after the rename")
}

// A file renamed on the bank's server by a publication whose answer was lost, then lodged
// otherwise (through the bank's portal, and files lodged), and found renamed by a delivery run
// after its debits' deadline, keeps its rows succeeded: the run tells the operator that the bank
// has it twice and to have one recalled, not that its rows failed expired and to have it
// recalled, which would leave rows told succeeded uncollected.
func TestAFileLodgedOtherwiseFoundRenamedLateIsNotCalledExpired(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		b := f.submit(t, "B1", 100, 250)
		file := f.cutOne(t)
		bank := t.TempDir()
		if _, _, err := f.rail.Deliver(ctx, renamedThenLost{lodgingDir{becs.Dir(bank)}}); err == nil {
			t.Fatal("the publication whose answer was lost succeeded")
		}
		if _, err := f.rail.Lodge(ctx, file.ID); err != nil {
			t.Fatalf("Lodge: %v", err)
		}
		f.clock.Set(file.EarliestDeadline.Add(time.Minute))
		_, _, err := f.rail.Deliver(ctx, lodgingDir{becs.Dir(bank)})
		if err == nil || !strings.Contains(err.Error(), "have the bank recall one") {
			t.Errorf("Deliver = %v; want the operator told the bank has the file twice", err)
		}
		if err != nil && strings.Contains(err.Error(), "failed expired") {
			t.Errorf("Deliver = %v; want no word of rows failed expired: they succeeded", err)
		}
		f.execute(t, b)
		if rows := states(f.rows(t, "B1")); !slices.Equal(rows, []string{"succeeded", "succeeded"}) {
			t.Errorf("rows %v; want succeeded", rows)
		}
	})
}
