package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pyng/receivables/app"
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
