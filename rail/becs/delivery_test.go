package becs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail/becs"
)

// halfStage is a destination whose Stage writes half the file under its temporary name and then
// fails, as an upload cut short by a crash or a dropped connection leaves it.
type halfStage struct{ becs.Dir }

func (d halfStage) Stage(_ context.Context, name string, content []byte) error {
	if err := os.WriteFile(filepath.Join(string(d.Dir), "."+name+".tmp"), content[:len(content)/2], 0o600); err != nil {
		return err
	}
	return errors.New("connection lost mid-upload")
}

// README, "Money integrity" paragraph: "A SIGKILL while cutting or while delivering (to the
// outbox, or to the SFTP server, in the middle of an upload too ...) loses nothing and doubles
// nothing: after the next cut and delivery ... no partial upload is left"; and step 3: "A file
// whose lodge-by time passed before it could be delivered ... is written neither to the outbox nor
// to the SFTP server". Here an upload is cut short before the file's mark, and the next delivery
// comes after the file's lodge-by time: the partial staged copy (plaintext bank details, of a
// file no one may lodge) must not be left behind.
func TestAPartialUploadOfAFileThatExpiredIsNotLeftBehind(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		f.submit(t, "B1", 100, 250)
		file := f.cutOne(t)
		dir := t.TempDir()
		if _, _, err := f.rail.Deliver(ctx, halfStage{becs.Dir(dir)}); err == nil {
			t.Fatal("the cut-short delivery succeeded")
		}
		if _, err := os.Stat(filepath.Join(dir, "."+file.Name()+".tmp")); err != nil {
			t.Fatalf("no partial staged copy to begin with: %v", err)
		}
		f.clock.Set(file.LodgeBy().Add(time.Minute))
		delivered, expired, err := f.rail.Deliver(ctx, becs.Dir(dir))
		if err != nil || len(delivered) != 0 || len(expired) != 1 {
			t.Fatalf("Deliver after the lodge-by = %v, %v, %v; want the file expired", delivered, expired, err)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			t.Errorf("after the next delivery the destination still holds %s (a partial copy of an expired file, "+
				"with customers' bank details in plaintext)", e.Name())
		}
	})
}

// A stale staged copy of another content (left by a stage cut short) is replaced by the stored
// bytes: the outbox then holds exactly the stored file under its name, and nothing else.
func TestAStaleStagedCopyIsReplacedByTheStoredBytes(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		f.submit(t, "B1", 1, 99, 100_000)
		file := f.cutOne(t)
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "."+file.Name()+".tmp"), []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.rail.Deliver(ctx, becs.Dir(dir)); err != nil {
			t.Fatal(err)
		}
		stored, err := f.rail.Content(ctx, file.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, file.Name()))
		if err != nil || !bytes.Equal(got, stored) {
			t.Fatalf("outbox copy differs from the stored file: %v", err)
		}
		var names []string
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, []string{file.Name()}) {
			t.Fatalf("outbox holds %v; want only %s", names, file.Name())
		}
	})
}

// README, step 5: a file not lodged at least 15 minutes before its rows' earliest deadline "must
// not be uploaded: the partner has been told those debits failed. Such a file is never delivered
// anywhere"; and TestAFileStagedInTimeIsNotPublishedAfterItsLodgeBy: "an operator who uploads what
// the outbox holds must not find it there". A file delivered to the outbox in time but not lodged
// by its lodge-by time is such a file: once its lodge-by passes, the next delivery run (every
// minute) must not leave it in the outbox under its name, for an operator or a script to upload;
// nor when the bank's server was added to the delivery since (PYNG_BECS_SFTP_URL), which lodges
// what it is given but was never given this file.
func TestAnUnlodgedFileLeavesTheOutboxOnceTooLateToLodge(t *testing.T) {
	for _, c := range []struct {
		name  string
		since func(outbox, bank string) becs.Destination // the delivery's destination after the file's
	}{
		{"delivering to the outbox still", func(outbox, _ string) becs.Destination { return becs.Dir(outbox) }},
		{"the bank's server added since", func(outbox, bank string) becs.Destination {
			return becs.Destinations{becs.Dir(outbox), lodgingDir{becs.Dir(bank)}}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
				ctx := context.Background()
				f := newFixture(t, engine)
				b := f.submit(t, "B1", 100, 250)
				file := f.cutOne(t)
				outbox, bank := t.TempDir(), t.TempDir()
				if delivered, _, err := f.rail.Deliver(ctx, becs.Dir(outbox)); err != nil || len(delivered) != 1 {
					t.Fatalf("Deliver = %v, %v", delivered, err)
				}
				f.clock.Set(file.LodgeBy().Add(time.Minute))
				dest := c.since(outbox, bank)
				for i := range 2 {
					_, expired, err := f.rail.Deliver(ctx, dest)
					if err != nil || len(expired) != 1-i {
						t.Fatalf("Deliver #%d after the lodge-by = %+v, %v; want the file expired, once", i+1, expired, err)
					}
				}
				f.clock.Set(b.Deadline)
				if _, err := f.service.ExpireOverdue(ctx); err != nil {
					t.Fatal(err)
				}
				rows := states(f.rows(t, "B1"))
				if _, err := os.Stat(filepath.Join(outbox, file.Name())); err == nil {
					t.Errorf("the outbox still holds %s, lodge-by %v passed, its rows %v: an operator uploading the outbox collects debits told failed",
						file.Name(), file.LodgeBy(), rows)
				}
				if entries, _ := os.ReadDir(bank); len(entries) != 0 {
					t.Errorf("the bank's server holds %v", entries)
				}
				if _, err := f.rail.Lodge(ctx, file.ID); !errors.Is(err, becs.ErrTooLate) {
					t.Errorf("Lodge of the file removed from the outbox = %v; want ErrTooLate", err)
				}
				if got, _ := f.rail.File(ctx, file.ID); got.State(f.clock.Now()) != becs.FileExpired {
					t.Errorf("the file is %s; want expired", got.State(f.clock.Now()))
				}
			})
		})
	}
}

// failingRemove is a destination whose Remove fails (its server unreachable for a moment).
type failingRemove struct{ becs.Destination }

func (failingRemove) Remove(context.Context, string) error { return errors.New("connection reset") }

// unstageLost is a destination whose Unstage removes the staged copy and then fails: the SFTP
// server removed it but the reply was lost, or the process was SIGKILLed between the removal and
// the record of the file put aside (the same state in the database and at the destination).
type unstageLost struct{ becs.Destination }

func (d unstageLost) Unstage(ctx context.Context, name string) (bool, error) {
	if _, err := d.Destination.Unstage(ctx, name); err != nil {
		return false, err
	}
	return false, errors.New("connection lost after the remove")
}

// A file staged in time whose rename failed is put aside at the next run (too late to lodge), and
// that run fails at the destination: its Remove fails, or its staged copy is removed but the
// reply is lost (or the process killed before the record). The run after it, finding no staged
// copy, must not take the file for renamed and record it lodged with the bank (its rows told
// succeeded) though the bank never had it.
func TestAFilePutAsideIsNeverRecordedLodged(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		for name, failing := range map[string]func(becs.Destination) becs.Destination{
			"its removal fails":       func(d becs.Destination) becs.Destination { return failingRemove{d} },
			"its record is cut short": func(d becs.Destination) becs.Destination { return unstageLost{d} },
		} {
			t.Run(name, func(t *testing.T) {
				ctx := context.Background()
				f := newFixture(t, engine)
				b := f.submit(t, "B1", 100)
				file := f.cutOne(t)
				bank := lodgingDir{becs.Dir(t.TempDir())}
				if _, _, err := f.rail.Deliver(ctx, failingPublish{bank}); err == nil {
					t.Fatal("Deliver succeeded; want the rename's error")
				}
				f.clock.Set(file.LodgeBy().Add(time.Minute)) // within the margin: the rows' deadline is to come
				if _, _, err := f.rail.Deliver(ctx, failing(bank)); err == nil {
					t.Fatal("Deliver at a failing destination succeeded; want its error")
				}
				if delivered, _, err := f.rail.Deliver(ctx, bank); len(delivered) != 0 {
					t.Fatalf("the next Deliver = %v, %v; want nothing delivered", delivered, err)
				}
				if got, err := f.rail.File(ctx, file.ID); err != nil || !got.LodgedAt.IsZero() {
					t.Errorf("file recorded lodged at %v (%v); want it never lodged: the bank never had it", got.LodgedAt, err)
				}
				f.execute(t, b)
				if got := states(f.rows(t, "B1")); got[0] == "succeeded" {
					t.Errorf("rows %v: told succeeded though the bank never had the file", got)
				}
			})
		}
	})
}

// A file renamed on the bank's server by a delivery cut short, recorded only after its debits'
// deadline, is the bank's (to recall), not a file to remove: no run returns it as removed.
func TestAFileOnTheBanksServerAfterItsDeadlineIsNotRemoved(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "sqlite")
	f.submit(t, "B1", 100)
	file := f.cutOne(t)
	bank := t.TempDir()
	deliverAndCrash(t, f, bank, true)
	f.clock.Set(file.EarliestDeadline.Add(time.Minute))
	for run := range 2 {
		delivered, expired, err := f.rail.Deliver(ctx, lodgingDir{becs.Dir(bank)})
		if len(delivered) != 0 || len(expired) != 0 || run == 0 && (err == nil || !strings.Contains(err.Error(), "recall")) || run == 1 && err != nil {
			t.Errorf("run %d: Deliver = %d delivered, %d expired, %v; want none, and (once) to have the bank recall it", run, len(delivered), len(expired), err)
		}
	}
	if _, err := os.Stat(filepath.Join(bank, file.Name())); err != nil {
		t.Errorf("the bank's server lost %s: %v", file.Name(), err)
	}
}

// A file staged to the outbox and marked delivered, whose publication failed, is not taken for
// published by a delivery to another destination configured since (the bank's server instead of
// the outbox, or as well): that destination never had its staged copy, so its absence there is
// no rename, and the file was recorded lodged, its rows succeeded, though the bank never had it.
// The file is left for its own destination (or for the operator to lodge by hand), and, past its
// lodge-by time, put aside, its rows expiring.
func TestAFileStagedToAnotherDestinationIsNotRecordedLodged(t *testing.T) {
	for _, setting := range []string{"instead", "as well"} {
		t.Run(setting, func(t *testing.T) {
			dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
				ctx := context.Background()
				f := newFixture(t, engine)
				b, file, outbox, bank := f.stagedAtAnOutbox(t)
				var dest becs.Destination = lodgingDir{becs.Dir(bank)}
				if setting == "as well" {
					dest = becs.Destinations{becs.Dir(outbox), dest}
				}
				for range 2 {
					if delivered, _, err := f.rail.Deliver(ctx, dest); err == nil || len(delivered) != 0 {
						t.Errorf("Deliver to %s %s = %v, %v; want the file left, and an error", setting, dest, delivered, err)
					}
				}
				if got, err := f.rail.File(ctx, file.ID); err != nil || !got.LodgedAt.IsZero() {
					t.Errorf("the file is %+v, %v; want it not lodged: the bank's server was never given it", got, err)
				}
				if entries, _ := os.ReadDir(bank); len(entries) != 0 {
					t.Fatalf("the bank's server holds %v", entries)
				}
				f.execute(t, b)
				if got := states(f.rows(t, "B1")); slices.Contains(got, "succeeded") {
					t.Errorf("rows %v; want none succeeded", got)
				}

				f.clock.Set(file.LodgeBy().Add(time.Minute))
				_, expired, err := f.rail.Deliver(ctx, dest)
				if err == nil || len(expired) != 1 || expired[0].ID != file.ID {
					t.Errorf("Deliver past the lodge-by = %v, %v; want the file expired, and the operator told", expired, err)
				}
				if _, expired, err := f.rail.Deliver(ctx, dest); err != nil || len(expired) != 0 {
					t.Errorf("the next Deliver = %v, %v; want the file put aside once", expired, err)
				}
				if got, _ := f.rail.File(ctx, file.ID); !got.LodgedAt.IsZero() {
					t.Errorf("the file is lodged at %v", got.LodgedAt)
				}
				f.clock.Set(b.Deadline)
				f.execute(t, b)
				if got := states(f.rows(t, "B1")); !slices.Equal(got, []string{"failedexpired", "failedexpired"}) {
					t.Errorf("rows %v; want expired", got)
				}
			})
		})
	}
}

// stagedAtAnOutbox submits batch B1 of two debits, cuts its file and delivers it to an outbox
// whose rename fails: the file is staged there and marked delivered, not published. It returns
// the batch, the file, the outbox and an empty directory for the bank's server.
func (f fixture) stagedAtAnOutbox(t *testing.T) (b billing.Batch, file becs.File, outbox, bank string) {
	t.Helper()
	b = f.submit(t, "B1", 100, 250)
	file = f.cutOne(t)
	outbox, bank = t.TempDir(), t.TempDir()
	if _, _, err := f.rail.Deliver(context.Background(), failingPublish{becs.Dir(outbox)}); err == nil {
		t.Fatal("the delivery whose publication failed succeeded")
	}
	return b, file, outbox, bank
}

// A file staged to one destination and marked delivered whose publication failed can be lodged
// by hand, and is then not published anywhere, while the delivery settings say another.
func TestAFileStagedToAnotherDestinationCanBeLodgedByHand(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		b, file, _, bank := f.stagedAtAnOutbox(t)
		dest := lodgingDir{becs.Dir(bank)}
		if _, _, err := f.rail.Deliver(ctx, dest); err == nil {
			t.Fatal("the delivery to the other destination succeeded")
		}
		if _, err := f.rail.Lodge(ctx, file.ID); err != nil {
			t.Fatalf("Lodge: %v", err)
		}
		if _, _, err := f.rail.Deliver(ctx, dest); err == nil {
			t.Error("want the operator told to remove the staged copy from the outbox")
		}
		if _, _, err := f.rail.Deliver(ctx, dest); err != nil {
			t.Errorf("the next Deliver = %v; want the file put aside once", err)
		}
		if entries, _ := os.ReadDir(bank); len(entries) != 0 {
			t.Errorf("the bank's server holds %v", entries)
		}
		f.execute(t, b)
		if got := states(f.rows(t, "B1")); !slices.Equal(got, []string{"succeeded", "succeeded"}) {
			t.Errorf("rows %v; want succeeded", got)
		}
	})
}
