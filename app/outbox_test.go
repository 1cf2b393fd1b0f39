package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail/becs"
)

// TestReplicasMustShareTheBECSOutbox starts replicas on one database with PYNG_BECS_OUTBOX: those
// given the same directory start, together too, and one given another directory at the same path
// (another host's disk: any replica may deliver a file, so the files would be scattered over the
// hosts) refuses to start, leaving that directory as it found it.
func TestReplicasMustShareTheBECSOutbox(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		outbox := filepath.Join(t.TempDir(), "outbox")
		if err := os.Mkdir(outbox, 0o700); err != nil {
			t.Fatal(err)
		}
		cfg, err := app.Load(map[string]*string{"database-url": ptr(dbtest.URL(t, engine)), "sandbox": ptr("false"),
			"public-url": ptr("https://pay.example"), "encryption-key": ptr(dbtest.KeyRing), "becs-outbox": &outbox})
		if err != nil {
			t.Fatal(err)
		}
		start := func() error {
			server, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard)
			if err == nil {
				server.Close()
			}
			return err
		}
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Go(func() {
				if err := start(); err != nil {
					t.Errorf("replica %d on the shared outbox: %v", i, err)
				}
			})
		}
		wg.Wait()

		shared := outbox + ".shared"
		if err := os.Rename(outbox, shared); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(outbox, 0o700); err != nil { // another host's directory at the same path
			t.Fatal(err)
		}
		if err := start(); !errors.Is(err, becs.ErrOutboxNotShared) {
			t.Fatalf("a replica with a directory of its own at the outbox's path started: %v; want %v", err, becs.ErrOutboxNotShared)
		}
		if entries, err := os.ReadDir(outbox); err != nil || len(entries) > 0 {
			t.Errorf("the refused directory holds %v (%v); want it left empty", entries, err)
		}
		if err := os.Remove(outbox); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(shared, outbox); err != nil {
			t.Fatal(err)
		}
		if err := start(); err != nil {
			t.Errorf("a replica on the shared outbox, once mounted again: %v", err)
		}
	})
}

// TestAnOutboxHoldingFilesTheDatabaseDoesNotKnowIsRefused cuts a file into the outbox, then opens
// the rail on a database that never cut it, as one restored from a backup taken before the cut
// is: its debits would be queued again and cut into a new file beside the one the bank may have,
// so the outbox is refused, naming the file, in the outbox or in its lodged/ folder, and the
// database that cut it is not.
func TestAnOutboxHoldingFilesTheDatabaseDoesNotKnowIsRefused(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		clock, service, _, r, site, _ := queuedDebit(t, engine)
		outbox := t.TempDir()
		tasks, err := app.BECSTasks(r, service, clock, app.Config{BECSCutoffs: "10m", BECSTimezone: "Australia/Sydney", BECSOutbox: outbox},
			slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if err := tasks[0].Run(ctx); err != nil {
			t.Fatal(err)
		}
		files, err := r.Files(ctx, site.ID)
		if err != nil || len(files) != 1 {
			t.Fatalf("Files = %+v, %v; want the file cut", files, err)
		}
		if err := r.CheckOutbox(ctx, becs.Dir(outbox)); err != nil {
			t.Fatalf("the outbox of the database that cut its file: %v", err)
		}

		_, restored := apptest.NewService(t, engine, apptest.ServiceOptions{Clock: clock})
		rails, err := app.OpenRails(ctx, restored, clock, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, folder := range []string{"", "lodged"} {
			if folder != "" {
				if err := os.MkdirAll(filepath.Join(outbox, folder), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(filepath.Join(outbox, files[0].Name()), filepath.Join(outbox, folder, files[0].Name())); err != nil {
					t.Fatal(err)
				}
			}
			err := rails.BECS.CheckOutbox(ctx, becs.Dir(outbox))
			if !errors.Is(err, becs.ErrUnknownFiles) || !strings.Contains(err.Error(), filepath.Join(folder, files[0].Name())) {
				t.Errorf("an outbox holding %s, which the database does not know: %v; want %v naming it",
					filepath.Join(folder, files[0].Name()), err, becs.ErrUnknownFiles)
			}
		}
		if err := r.CheckOutbox(ctx, becs.Dir(outbox)); err != nil {
			t.Errorf("the outbox of the database that cut its file, the file in lodged/: %v", err)
		}
	})
}
