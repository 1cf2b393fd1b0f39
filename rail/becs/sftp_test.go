package becs_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/sshdtest"
)

// TestSFTPDeliveryLodgesTheFileOnTheBanksServer delivers a cut file to a real OpenSSH server on
// loopback: the file is there whole under its name (nothing else is), it is lodged, and its rows
// succeed; a server whose host key is not the pinned one is refused.
func TestSFTPDeliveryLodgesTheFileOnTheBanksServer(t *testing.T) {
	sshd := sshdtest.Start(t)
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		b := f.submit(t, "B1", 100, 250)
		files, err := f.rail.Cut(ctx, sydney)
		if err != nil || len(files) != 1 {
			t.Fatalf("Cut = %+v, %v", files, err)
		}
		outbox := filepath.Join(sshd.Dir, engine)
		if err := os.MkdirAll(outbox, 0o700); err != nil {
			t.Fatal(err)
		}

		impostor, err := becs.OpenSFTP(becs.SFTPConfig{URL: sshd.URL(engine), KeyFile: sshd.KeyFile, KnownHosts: sshd.OtherKnownHosts})
		if err != nil {
			t.Fatal(err)
		}
		if delivered, err := f.rail.Deliver(ctx, impostor); err == nil || !strings.Contains(err.Error(), "key") || len(delivered) != 0 {
			t.Fatalf("Deliver to a server with another host key = %+v, %v; want refused", delivered, err)
		}
		if entries, _ := os.ReadDir(outbox); len(entries) != 0 {
			t.Fatalf("the server got %v from a refused connection", entries)
		}

		dest, err := becs.OpenSFTP(becs.SFTPConfig{URL: sshd.URL(engine), KeyFile: sshd.KeyFile, KnownHosts: sshd.KnownHosts})
		if err != nil {
			t.Fatal(err)
		}
		delivered, err := f.rail.Deliver(ctx, dest)
		if err != nil || len(delivered) != 1 || delivered[0].LodgedAt.IsZero() {
			t.Fatalf("Deliver by SFTP = %+v, %v; want the file, lodged", delivered, err)
		}
		entries, _ := os.ReadDir(outbox)
		if len(entries) != 1 || entries[0].Name() != files[0].Name() {
			t.Fatalf("the server's directory holds %v, want only %s", entries, files[0].Name())
		}
		content, _ := f.rail.Content(ctx, files[0].ID)
		if got, _ := os.ReadFile(filepath.Join(outbox, files[0].Name())); !bytes.Equal(got, content) {
			t.Fatal("the uploaded bytes differ from the stored file's")
		}
		if got, _ := f.rail.File(ctx, files[0].ID); got.State(f.clock.Now()) != becs.FileLodged {
			t.Fatalf("the uploaded file is %s, want lodged", got.State(f.clock.Now()))
		}
		if again, err := f.rail.Deliver(ctx, dest); err != nil || len(again) != 0 {
			t.Fatalf("Deliver again = %+v, %v; want nothing", again, err)
		}
		f.execute(t, b)
		if got := states(f.rows(t, "B1")); !slices.Equal(got, []string{"succeeded", "succeeded"}) {
			t.Fatalf("rows %v, want succeeded once the file is on the bank's server", got)
		}
	})
}

// TestSFTPFetchReturnsMovesEachFileOnce reads the returns directory of a real OpenSSH server.
func TestSFTPFetchReturnsMovesEachFileOnce(t *testing.T) {
	sshd := sshdtest.Start(t)
	dir := filepath.Join(sshd.Dir, "returns")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"good.aba": "good", "bad.aba": "bad", ".partial.tmp": "partial"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src, err := becs.OpenSFTP(becs.SFTPConfig{URL: sshd.URL("out"), KeyFile: sshd.KeyFile, KnownHosts: sshd.KnownHosts, ReturnsDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	fetch := func(f becs.ReturnsFile) (bool, error) {
		seen = append(seen, f.Name+"="+string(f.Content))
		return f.Name == "bad.aba", nil
	}
	if err := src.FetchReturns(context.Background(), fetch); err != nil {
		t.Fatal(err)
	}
	slices.Sort(seen)
	if !slices.Equal(seen, []string{"bad.aba=bad", "good.aba=good"}) {
		t.Fatalf("fetched %v; want the two files, not the dot file", seen)
	}
	for _, p := range []string{"imported/good.aba", "rejected/bad.aba", ".partial.tmp"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	seen = nil
	if err := src.FetchReturns(context.Background(), fetch); err != nil || len(seen) != 0 {
		t.Fatalf("fetching again = %v, %v; want nothing: each file is fetched once", seen, err)
	}
}
