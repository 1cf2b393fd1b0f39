package becs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/sshdtest"
	"github.com/pyng/receivables/storage"
)

// README ("By SFTP"): "a file already recorded as lodged (`files lodged`, say after uploading it
// through the bank's portal during an SFTP outage) is never uploaded nor renamed: the bank would
// collect its debits twice."
//
// Here the operator records the file lodged (pyng admin becs files lodged, i.e. Rail.Lodge) while
// a delivery run is between its mark (delivered) and its rename on the bank's server. The rename
// must not happen: the bank already has the file from the portal; its staged copy goes.
//
// The hook is the package's, so the engines run one at a time.
func TestAFileLodgedByTheOperatorDuringADeliveryIsNotRenamedOnTheBanksServer(t *testing.T) {
	onEachEngineInTurn(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		f.submit(t, "B1", 100, 250)
		file := f.cutOne(t)
		bank := t.TempDir()
		lodgedByHand := false
		becs.BeforePublish = func() {
			if lodgedByHand {
				return
			}
			lodgedByHand = true
			// The operator's "pyng admin becs files lodged FILE_ID", from another process.
			other, err := becs.Open(ctx, f.db.Conn(), f.clock)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := other.Lodge(ctx, file.ID); err != nil {
				t.Errorf("files lodged: %v", err)
			}
		}
		defer func() { becs.BeforePublish = nil }()
		_, _, _ = f.rail.Deliver(ctx, lodgingDir{becs.Dir(bank)})
		becs.BeforePublish = nil
		if !lodgedByHand {
			t.Fatal("the delivery never reached its publication")
		}
		if _, err := os.Stat(filepath.Join(bank, file.Name())); err == nil {
			t.Errorf("the bank's server holds %s, renamed after the operator recorded the file lodged through the portal: "+
				"the bank collects its debits twice", file.Name())
		}
		entries, _ := os.ReadDir(bank)
		for _, e := range entries {
			t.Errorf("the bank's server holds %s; want nothing", e.Name())
		}
		if got, err := f.rail.File(ctx, file.ID); err != nil || got.LodgedAt.IsZero() || !got.PublishedAt.IsZero() {
			t.Errorf("the file is %+v, %v; want lodged by the operator, never published", got, err)
		}
	})
}

// The same with the outbox and the bank's server together (Destinations): the outbox copy is
// published first, then the rename on the server; a file recorded lodged in between must not be
// renamed on the server.
func TestAFileLodgedDuringADeliveryToBothIsNotRenamedOnTheBanksServer(t *testing.T) {
	onEachEngineInTurn(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		f.submit(t, "B1", 100)
		file := f.cutOne(t)
		outbox, bank := t.TempDir(), t.TempDir()
		done := false
		becs.BeforePublish = func() {
			if done {
				return
			}
			done = true
			if _, err := f.rail.Lodge(ctx, file.ID); err != nil {
				t.Errorf("files lodged: %v", err)
			}
		}
		defer func() { becs.BeforePublish = nil }()
		_, _, _ = f.rail.Deliver(ctx, becs.Destinations{becs.Dir(outbox), lodgingDir{becs.Dir(bank)}})
		becs.BeforePublish = nil
		if _, err := os.Stat(filepath.Join(bank, file.Name())); err == nil {
			t.Errorf("the bank's server holds %s although the file was recorded lodged before its rename", file.Name())
		}
	})
}

// A delivery to the outbox and the bank's server together is killed after it staged the file to
// both and before its mark, leaving the file claimed by it and a staged copy, every customer's
// bank details in plaintext, at each. The operator then lodges the file otherwise (through the
// bank's portal, then files lodged), which Lodge records, the claim being a stage's; no delivery
// stages nor publishes a file lodged. The next runs remove both staged copies and release the
// claim, once it is stale (on PostgreSQL, whose replicas deliver at once: until then it may be a
// delivery's still running, which removes its own), at once on SQLite.
//
// The hook is the package's, so the engines run one at a time.
func TestTheStagedCopiesOfAFileLodgedAfterItsDeliveryWasKilledAreRemoved(t *testing.T) {
	sshd := sshdtest.Start(t)
	onEachEngineInTurn(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		f.submit(t, "B1", 100, 250)
		file := f.cutOne(t)
		ds := destinations(t, sshd)
		dest, dirs := becs.Destinations{ds["outbox"].dest, ds["sftp"].dest}, []string{ds["outbox"].dir, ds["sftp"].dir}
		deliverKilledBeforeItsMark(t, f.rail, dest)
		staged := func() (left []string) {
			for _, dir := range dirs {
				entries, _ := os.ReadDir(dir)
				for _, e := range entries {
					left = append(left, filepath.Join(dir, e.Name()))
				}
			}
			return left
		}
		if left := staged(); len(left) != len(dirs) {
			t.Fatalf("the killed delivery left %q; want the file staged to each destination", left)
		}
		if _, err := f.rail.Lodge(ctx, file.ID); err != nil {
			t.Fatalf("files lodged: %v", err)
		}
		if engine == storage.EnginePostgres {
			if _, _, err := f.rail.Deliver(ctx, dest); err != nil {
				t.Fatal(err)
			}
			if left := staged(); len(left) != len(dirs) {
				t.Fatalf("a delivery while the claim is fresh left %q; want the staged copies, the claim's delivery's to remove", left)
			}
			f.clock.Advance(6 * time.Minute)
		}
		for run := range 2 {
			if delivered, expired, err := f.rail.Deliver(ctx, dest); err != nil || len(delivered)+len(expired) != 0 {
				t.Fatalf("delivery %d = %+v, %+v, %v; want nothing delivered nor expired", run+1, delivered, expired, err)
			}
			if left := staged(); len(left) != 0 {
				t.Errorf("after delivery %d the destinations hold %q, the plaintext of a file lodged otherwise; want nothing", run+1, left)
			}
		}
		if claimed := claimedFiles(t, f.db); len(claimed) != 0 {
			t.Errorf("files %v are still claimed; want the claim of the killed delivery released", claimed)
		}
		if got, err := f.rail.File(ctx, file.ID); err != nil || got.LodgedAt.IsZero() || !got.DeliveredAt.IsZero() || !got.PublishedAt.IsZero() {
			t.Errorf("the file is %+v, %v; want lodged by the operator, never delivered", got, err)
		}
	})
}

// deliverKilledBeforeItsMark runs a delivery to dest that is killed once it has staged a file,
// before it marks it delivered: a panic, recovered here, stands for SIGKILL, nothing of the
// delivery running after it (its claim kept).
func deliverKilledBeforeItsMark(t *testing.T, r *becs.Rail, dest becs.Destination) {
	t.Helper()
	type killed struct{}
	becs.BeforeDeliveredMark = func() { panic(killed{}) }
	defer func() {
		becs.BeforeDeliveredMark = nil
		if p := recover(); p != nil && p != (killed{}) {
			panic(p)
		}
	}()
	_, _, err := r.Deliver(context.Background(), dest)
	t.Fatalf("the delivery was not killed before its mark: %v", err)
}

// pausedPublish is the bank's server, whose rename waits until released.
type pausedPublish struct {
	lodgingDir
	reached, release chan struct{}
}

func (d pausedPublish) Publish(ctx context.Context, name string) error {
	close(d.reached)
	<-d.release
	return d.lodgingDir.Publish(ctx, name)
}

// The operator's files lodged, from another process, while a delivery renames the file on the
// bank's server. The publication holds no transaction (on SQLite the process's one connection
// serves the API too; on PostgreSQL it would hold back every site's events), but a claim: on each
// engine files lodged is refused at once (ErrBeingPublished), nothing recorded, telling the
// operator to run it again in a minute; run again once the rename is recorded, it finds the file
// lodged by it. It never succeeds while the rename may still happen.
func TestLodgingDuringAPublicationIsRefusedAtOnce(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		f.submit(t, "B1", 100)
		file := f.cutOne(t)
		bank := t.TempDir()
		dest := pausedPublish{lodgingDir{becs.Dir(bank)}, make(chan struct{}), make(chan struct{})}
		type delivery struct {
			delivered []becs.File
			err       error
		}
		delivering := make(chan delivery, 1)
		go func() {
			delivered, _, err := f.rail.Deliver(ctx, dest)
			delivering <- delivery{delivered, err}
		}()
		<-dest.reached
		released := false
		release := func() {
			if !released {
				released = true
				close(dest.release)
			}
		}
		defer release()

		// The operator's command: another process, with its own connections to the database.
		other, err := becs.Open(ctx, dbtest.OpenURL(t, f.url, storage.WithKeyring(dbtest.Keyring())).Conn(), f.clock)
		if err != nil {
			t.Fatal(err)
		}
		type lodging struct {
			file becs.File
			err  error
		}
		lodged := make(chan lodging, 1)
		go func() {
			got, err := other.Lodge(ctx, file.ID)
			lodged <- lodging{got, err}
		}()
		select {
		case l := <-lodged:
			if !errors.Is(l.err, becs.ErrBeingPublished) || !strings.Contains(l.err.Error(), "run the command again in a minute") {
				t.Errorf("files lodged during the rename = %v; want refused at once (ErrBeingPublished), to be run again in a minute", l.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("files lodged during the rename waited for it; want refused at once")
		}
		if got, err := f.rail.File(ctx, file.ID); err != nil || !got.LodgedAt.IsZero() || !got.PublishedAt.IsZero() {
			t.Errorf("during the rename the file is %+v, %v; want neither lodged nor published", got, err)
		}
		release()
		d := <-delivering
		if d.err != nil || len(d.delivered) != 1 || d.delivered[0].LodgedAt.IsZero() {
			t.Fatalf("Deliver = %+v, %v; want the file, lodged with its rename", d.delivered, d.err)
		}
		// Run again, once the rename is recorded: the file is lodged, by the rename.
		got, err := other.Lodge(ctx, file.ID)
		if err != nil || !got.LodgedAt.Equal(d.delivered[0].LodgedAt) {
			t.Fatalf("files lodged after the rename = %+v, %v; want the file as its rename lodged it", got, err)
		}
		if entries, _ := os.ReadDir(bank); len(entries) != 1 || entries[0].Name() != file.Name() {
			t.Fatalf("the bank's server holds %v; want %s once", entries, file.Name())
		}
	})
}
