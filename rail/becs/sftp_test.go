package becs_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pyng/receivables/app"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/becs/aba"
	"github.com/pyng/receivables/sshdtest"
	"github.com/pyng/receivables/storage"
)

// sftpServers are the SFTP servers the rail must work with: OpenSSH, and one that refuses
// OpenSSH's posix-rename (as many banks' servers, which are not OpenSSH, lack it).
var sftpServers = map[string][]sshdtest.Option{
	"OpenSSH":              nil,
	"without posix-rename": {sshdtest.DeniedRequests("posix-rename")},
}

// TestSFTPDeliveryLodgesTheFileOnTheBanksServer delivers a cut file to a real OpenSSH server on
// loopback: the file is there whole under its name (nothing else is), it is lodged, and its rows
// succeed; a server whose host key is not the pinned one is refused.
func TestSFTPDeliveryLodgesTheFileOnTheBanksServer(t *testing.T) {
	for server, opts := range sftpServers {
		t.Run(server, func(t *testing.T) { testSFTPDelivery(t, sshdtest.Start(t, opts...)) })
	}
}

func testSFTPDelivery(t *testing.T, sshd sshdtest.Server) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		b := f.submit(t, "B1", 100, 250)
		file := f.cutOne(t)
		outbox := filepath.Join(sshd.Dir, engine)
		if err := os.MkdirAll(outbox, 0o700); err != nil {
			t.Fatal(err)
		}

		impostor, err := becs.OpenSFTP(becs.SFTPConfig{URL: sshd.URL(engine), KeyFile: sshd.KeyFile, KnownHosts: sshd.OtherKnownHosts})
		if err != nil {
			t.Fatal(err)
		}
		if delivered, _, err := f.rail.Deliver(ctx, impostor); err == nil || !strings.Contains(err.Error(), "key") || len(delivered) != 0 {
			t.Fatalf("Deliver to a server with another host key = %+v, %v; want refused", delivered, err)
		}
		if entries, _ := os.ReadDir(outbox); len(entries) != 0 {
			t.Fatalf("the server got %v from a refused connection", entries)
		}

		dest, err := becs.OpenSFTP(becs.SFTPConfig{URL: sshd.URL(engine), KeyFile: sshd.KeyFile, KnownHosts: sshd.KnownHosts})
		if err != nil {
			t.Fatal(err)
		}
		delivered, _, err := f.rail.Deliver(ctx, dest)
		if err != nil || len(delivered) != 1 || delivered[0].LodgedAt.IsZero() {
			t.Fatalf("Deliver by SFTP = %+v, %v; want the file, lodged", delivered, err)
		}
		entries, _ := os.ReadDir(outbox)
		if len(entries) != 1 || entries[0].Name() != file.Name() {
			t.Fatalf("the server's directory holds %v, want only %s", entries, file.Name())
		}
		content, _ := f.rail.Content(ctx, file.ID)
		if got, _ := os.ReadFile(filepath.Join(outbox, file.Name())); !bytes.Equal(got, content) {
			t.Fatal("the uploaded bytes differ from the stored file's")
		}
		// It holds customers' accounts in plaintext: its owner's alone, as the outbox's copy.
		if info, err := os.Stat(filepath.Join(outbox, file.Name())); err != nil {
			t.Error(err)
		} else if info.Mode().Perm() != 0o600 {
			t.Errorf("the uploaded file's mode is %v, want 0600", info.Mode().Perm())
		}
		if got, _ := f.rail.File(ctx, file.ID); got.State(f.clock.Now()) != becs.FileLodged {
			t.Fatalf("the uploaded file is %s, want lodged", got.State(f.clock.Now()))
		}
		if again, _, err := f.rail.Deliver(ctx, dest); err != nil || len(again) != 0 {
			t.Fatalf("Deliver again = %+v, %v; want nothing", again, err)
		}
		f.execute(t, b)
		if got := states(f.rows(t, "B1")); !slices.Equal(got, []string{"succeeded", "succeeded"}) {
			t.Fatalf("rows %v, want succeeded once the file is on the bank's server", got)
		}
	})
}

// TestSFTPFetchReturnsMovesEachFileOnce reads the returns directory of a real OpenSSH server: a
// file is read once it is settled (listed unchanged for the settle time), so that one the bank is
// still uploading is not read, even by a look that follows another at once (the task retried
// after an error); each is moved once, and a file of a name the bank uses again is moved as the
// first was, replacing it.
func TestSFTPFetchReturnsMovesEachFileOnce(t *testing.T) {
	for server, opts := range sftpServers {
		t.Run(server, func(t *testing.T) { testSFTPFetchReturns(t, sshdtest.Start(t, opts...)) })
	}
}

func testSFTPFetchReturns(t *testing.T, sshd sshdtest.Server) {
	dir := filepath.Join(sshd.Dir, "returns")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{"good.aba": "good", "bad.aba": "bad", ".partial.tmp": "partial", "uploading.aba": "upl"} {
		write(name, content)
	}
	const settle = 300 * time.Millisecond
	src, err := becs.OpenSFTP(becs.SFTPConfig{URL: sshd.URL("out"), KeyFile: sshd.KeyFile, KnownHosts: sshd.KnownHosts, ReturnsDir: dir,
		ReturnsSettle: settle})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	fetch := func(f becs.ReturnsFile) (bool, error) {
		seen = append(seen, f.Name+"="+string(f.Content))
		return f.Name == "bad.aba" || f.Name == "uploading.aba" && f.Content[len(f.Content)-1] != '.', nil
	}
	poll := func(want ...string) {
		t.Helper()
		seen = nil
		if err := src.FetchReturns(context.Background(), fetch); err != nil {
			t.Fatal(err)
		}
		slices.Sort(seen)
		if !slices.Equal(seen, want) {
			t.Fatalf("fetched %q; want %q", seen, want)
		}
	}
	settled := func() { time.Sleep(settle + 50*time.Millisecond) }
	poll() // every file is new: none is settled
	write("uploading.aba", "uploa")
	settled()
	poll("bad.aba=bad", "good.aba=good") // not the dot file, nor the file that grew
	for _, p := range []string{"imported/good.aba", "rejected/bad.aba", ".partial.tmp", "uploading.aba"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	write("uploading.aba", "uploaded.")
	settled()
	poll() // it grew since the last look
	settled()
	poll("uploading.aba=uploaded.")
	if _, err := os.Stat(filepath.Join(dir, "imported/uploading.aba")); err != nil {
		t.Errorf("the file whose upload ended is not in imported/: %v", err)
	}
	poll() // each file is fetched once
	write("good.aba", "good again")
	poll()
	settled()
	poll("good.aba=good again")
	if got, _ := os.ReadFile(filepath.Join(dir, "imported/good.aba")); string(got) != "good again" {
		t.Errorf("imported/good.aba holds %q, want the new file's content", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "good.aba")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("good.aba is still in the returns directory (%v): it would be fetched again at every poll", err)
	}

	// Looks in quick succession (the task retried after an error) read nothing that has not been
	// unchanged for the settle time, however unchanged it was at each.
	write("late.aba", "late")
	patient, err := becs.OpenSFTP(becs.SFTPConfig{URL: sshd.URL("out"), KeyFile: sshd.KeyFile, KnownHosts: sshd.KnownHosts, ReturnsDir: dir,
		ReturnsSettle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	seen = nil
	for range 3 {
		if err := patient.FetchReturns(context.Background(), fetch); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 0 {
		t.Errorf("looks in quick succession fetched %q; want nothing before the settle time", seen)
	}
}

// TestSFTPFetchReturnsWaitsForAnIncompleteFile: the bank's upload of a returns file may stall for
// longer than the settle time, then resume. A file read meanwhile is incomplete (aba.ErrIncomplete):
// it is left in place and read again at each look, and rejected only once unchanged for the wait
// for an incomplete file. A file of several blocks cut at the end of one (before the CRLF after
// its file total record, or after it) reads whole, as a file of the blocks before the cut: so no
// file that reads whole is imported before it has been unchanged for that wait, and one whose
// upload resumes is imported whole, every block's items with it. A file that is whole and does
// not read is rejected at the settle time.
func TestSFTPFetchReturnsWaitsForAnIncompleteFile(t *testing.T) {
	sshd := sshdtest.Start(t)
	dir := filepath.Join(sshd.Dir, "returns")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	one, err := os.ReadFile("aba/testdata/returns.aba") // records of types 0, 2, 2 and 7, of 122 bytes each
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := os.ReadFile("aba/testdata/returns-blocks.aba")
	if err != nil {
		t.Fatal(err)
	}
	firstBlock := bytes.Index(blocks, []byte("\r\n0")) + 2 // its end, after its file total record's CRLF
	malformed := bytes.Clone(one)
	malformed[122+17] = '0' // the first item's return reason
	uploads := []struct {
		name    string
		file    []byte // what the bank uploads
		first   int    // how much of it the upload writes before it stalls (all of a file whose upload does not)
		resumed bool   // whether the upload resumes, and writes the rest of the file
		// where the file is at the settle time, once the uploads that resumed ended, past the wait
		// since the uploads began, and past the wait since those that resumed ended: in the returns
		// directory (""), imported or rejected
		want [4]string
	}{
		{"cut-within-a-record-resumed.aba", one, 300, true, [4]string{"", "", "", "imported"}},
		{"cut-before-its-file-total-resumed.aba", one, 366, true, [4]string{"", "", "", "imported"}},
		{"cut-within-a-record-abandoned.aba", one, 300, false, [4]string{"", "", "rejected", "rejected"}},
		{"cut-before-its-file-total-abandoned.aba", one, 366, false, [4]string{"", "", "rejected", "rejected"}},
		{"cut-between-two-blocks-resumed.aba", blocks, firstBlock, true, [4]string{"", "", "", "imported"}},
		{"cut-before-the-crlf-between-two-blocks-resumed.aba", blocks, firstBlock - 2, true, [4]string{"", "", "", "imported"}},
		{"cut-within-the-blanks-ending-a-block-abandoned.aba", blocks, firstBlock - 2 - 22, false, [4]string{"", "", "rejected", "rejected"}},
		{"whole.aba", blocks, len(blocks), false, [4]string{"", "", "imported", "imported"}},
		{"whole-but-malformed.aba", malformed, len(malformed), false, [4]string{"rejected", "rejected", "rejected", "rejected"}},
	}
	// The wait leaves looks 0 and 1 well inside it on a loaded machine, each look an SFTP session.
	const settle, wait = 200 * time.Millisecond, 3 * time.Second
	src, err := becs.OpenSFTP(becs.SFTPConfig{URL: sshd.URL("out"), KeyFile: sshd.KeyFile, KnownHosts: sshd.KnownHosts, ReturnsDir: dir,
		ReturnsSettle: settle, ReturnsIncompleteWait: wait})
	if err != nil {
		t.Fatal(err)
	}
	// poll looks at the returns directory, importing as the server's task does, and returns what
	// the look gave the import, by name.
	poll := func() map[string]becs.ReturnsFile {
		t.Helper()
		seen := map[string]becs.ReturnsFile{}
		err := src.FetchReturns(context.Background(), func(f becs.ReturnsFile) (bool, error) {
			seen[f.Name] = f
			_, err := aba.ReadBlocks(bytes.NewReader(f.Content))
			if errors.Is(err, aba.ErrIncomplete) {
				return false, err
			}
			return err != nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return seen
	}
	where := func(name string) (string, []byte) {
		for _, d := range []string{"", "imported", "rejected"} {
			if content, err := os.ReadFile(filepath.Join(dir, d, name)); err == nil {
				return d, content
			}
		}
		return "nowhere", nil
	}
	// check checks where each file is after a look at step: one that was in place (and settled)
	// was read by it if it does not read whole, and given as abandoned, past the wait, only if it
	// was moved by it; one that reads whole was not read before the wait.
	before := map[string]string{}
	check := func(step int, seen map[string]becs.ReturnsFile) {
		t.Helper()
		for _, u := range uploads {
			place, content := where(u.name)
			if place != u.want[step] {
				t.Errorf("look %d: %s is in %q; want in %q", step, u.name, place, u.want[step])
			}
			if before[u.name] != "" {
				continue // moved by an earlier look
			}
			before[u.name] = place
			_, err := aba.ReadBlocks(bytes.NewReader(content))
			f, read := seen[u.name]
			if want := err != nil || place != ""; read != want {
				t.Errorf("look %d: %s (%d bytes, reading as %v) read %v; want %v", step, u.name, len(content), err, read, want)
			}
			if abandoned := step >= 2; read && (f.Abandoned != abandoned || abandoned && f.Unchanged < wait) {
				t.Errorf("look %d: %s abandoned %v, unchanged for %v; want abandoned %v", step, u.name, f.Abandoned, f.Unchanged, abandoned)
			}
		}
	}
	for _, u := range uploads {
		if err := os.WriteFile(filepath.Join(dir, u.name), u.file[:u.first], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	written := time.Now()
	settled := func() { time.Sleep(settle + 50*time.Millisecond) }
	if seen := poll(); len(seen) != 0 { // every file is new: none is settled
		t.Fatalf("the first look read %d files; want none", len(seen))
	}
	settled()
	check(0, poll())
	settled()
	check(0, poll()) // read again, left in place again
	for _, u := range uploads {
		if !u.resumed {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, u.name), os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			_, err = f.Write(u.file[u.first:])
			err = errors.Join(err, f.Close())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	resumed := time.Now()
	for name := range poll() {
		if place, _ := where(name); place != "" {
			t.Errorf("%s was read and moved to %s as soon as its upload resumed; want it left to settle again", name, place)
		}
	}
	settled()
	seen := poll()
	if elapsed := time.Since(written); elapsed >= wait {
		t.Fatalf("look 1 came %v after the uploads, past the wait of %v: the machine is too slow for this test's times", elapsed, wait)
	}
	check(1, seen)
	time.Sleep(time.Until(written.Add(wait + settle)))
	seen = poll()
	if elapsed := time.Since(resumed); elapsed >= wait {
		t.Fatalf("look 2 came %v after the uploads resumed, past the wait of %v: the machine is too slow for this test's times", elapsed, wait)
	}
	check(2, seen)
	time.Sleep(time.Until(resumed.Add(wait + settle)))
	check(3, poll())
	for _, u := range uploads {
		want := u.file[:u.first]
		if u.resumed {
			want = u.file
		}
		if _, content := where(u.name); !bytes.Equal(content, want) {
			t.Errorf("%s holds %d bytes; want the %d uploaded", u.name, len(content), len(want))
		}
	}
}

// A returns file that reads whole and landed longer ago than the wait (by its modification time on
// the bank's server) is imported once settled: a process started since, which never saw it before,
// does not wait again from its own start (a deployment restarted more often than the wait would
// otherwise never import it). One that landed just now waits.
func TestSFTPFetchReturnsImportsAWholeFileThatLandedBeforeTheWaitOnceSettled(t *testing.T) {
	sshd := sshdtest.Start(t)
	dir := filepath.Join(sshd.Dir, "returns")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile("aba/testdata/returns.aba")
	if err != nil {
		t.Fatal(err)
	}
	const settle, wait = 200 * time.Millisecond, time.Hour
	landed := map[string]time.Time{"landed-before-the-wait.aba": time.Now().Add(-wait - time.Minute), "landed-now.aba": time.Now()}
	for name, at := range landed {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(file, at, at); err != nil {
			t.Fatal(err)
		}
	}
	src, err := becs.OpenSFTP(becs.SFTPConfig{URL: sshd.URL("out"), KeyFile: sshd.KeyFile, KnownHosts: sshd.KnownHosts, ReturnsDir: dir,
		ReturnsSettle: settle, ReturnsIncompleteWait: wait})
	if err != nil {
		t.Fatal(err)
	}
	given := map[string]bool{}
	for range 2 { // the first look notes the files, the second finds them settled
		if err := src.FetchReturns(context.Background(), func(f becs.ReturnsFile) (bool, error) {
			given[f.Name] = true
			return false, nil
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(settle + 50*time.Millisecond)
	}
	if !given["landed-before-the-wait.aba"] || given["landed-now.aba"] {
		t.Errorf("the files given to the import: %v; want the one that landed before the wait only", given)
	}
	if _, err := os.Stat(filepath.Join(dir, "imported", "landed-before-the-wait.aba")); err != nil {
		t.Errorf("the file that landed before the wait was not moved to imported/: %v", err)
	}
}

// destinations are an outbox directory and a directory of the bank's SFTP server (sshd), each
// empty, and the directory where what is put there lands.
func destinations(t *testing.T, sshd sshdtest.Server) map[string]struct {
	dest becs.Destination
	dir  string
} {
	t.Helper()
	outbox := t.TempDir()
	onServer := filepath.Join(sshd.Dir, t.Name())
	if err := os.MkdirAll(onServer, 0o700); err != nil {
		t.Fatal(err)
	}
	server, err := becs.OpenSFTP(becs.SFTPConfig{URL: sshd.URL(t.Name()), KeyFile: sshd.KeyFile, KnownHosts: sshd.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]struct {
		dest becs.Destination
		dir  string
	}{"outbox": {becs.Dir(outbox), outbox}, "sftp": {server, onServer}}
}

// TestALodgedFileIsNeverDelivered lodges a file by hand (uploaded through the bank's portal
// during an outage, then pyng admin becs files lodged): no destination is given it afterwards,
// or the bank would collect its debits twice.
func TestALodgedFileIsNeverDelivered(t *testing.T) {
	sshd := sshdtest.Start(t)
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		for name, d := range destinations(t, sshd) {
			t.Run(name, func(t *testing.T) {
				ctx := context.Background()
				f := newFixture(t, engine)
				b := f.submit(t, "B1", 100, 250)
				file := f.cutOne(t)
				lodged, err := f.rail.Lodge(ctx, file.ID)
				if err != nil {
					t.Fatal(err)
				}
				delivered, expired, err := f.rail.Deliver(ctx, d.dest)
				if err != nil || len(delivered) != 0 || len(expired) != 0 {
					t.Fatalf("Deliver of a lodged file = %+v, %+v, %v; want nothing", delivered, expired, err)
				}
				if entries, _ := os.ReadDir(d.dir); len(entries) != 0 {
					t.Fatalf("the destination holds %v; want nothing: the file was lodged already", entries)
				}
				got, _ := f.rail.File(ctx, file.ID)
				if !got.LodgedAt.Equal(lodged.LodgedAt) || !got.DeliveredAt.IsZero() {
					t.Fatalf("the file is %+v; want lodged by hand, never delivered", got)
				}
				f.execute(t, b)
				if got := states(f.rows(t, "B1")); !slices.Equal(got, []string{"succeeded", "succeeded"}) {
					t.Fatalf("rows %v, want succeeded: the file was lodged", got)
				}
			})
		}
	})
}

// TestAFileTooLateToLodgeIsDeliveredNowhere lets a file's lodge-by time pass undelivered (the
// destination was down): it is given to no destination, for no one to lodge, and Deliver
// reports it expired.
func TestAFileTooLateToLodgeIsDeliveredNowhere(t *testing.T) {
	sshd := sshdtest.Start(t)
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		for name, d := range destinations(t, sshd) {
			t.Run(name, func(t *testing.T) {
				ctx := context.Background()
				f := newFixture(t, engine)
				f.submit(t, "B1", 100, 250)
				file := f.cutOne(t)
				f.clock.Set(file.LodgeBy())
				delivered, expired, err := f.rail.Deliver(ctx, d.dest)
				if err != nil || len(delivered) != 0 || len(expired) != 1 || expired[0].ID != file.ID {
					t.Fatalf("Deliver = %+v, %+v, %v; want no file delivered, the one file expired", delivered, expired, err)
				}
				if entries, _ := os.ReadDir(d.dir); len(entries) != 0 {
					t.Fatalf("the destination holds %v; want nothing: the file's rows fail expired", entries)
				}
				if got, _ := f.rail.File(ctx, file.ID); got.State(f.clock.Now()) != becs.FileExpired || !got.DeliveredAt.IsZero() {
					t.Fatalf("the file is %+v (%s); want expired, never delivered", got, got.State(f.clock.Now()))
				}
			})
		}
	})
}

// TestTheDeliveryTaskWarnsOnceOfAFileTooLateToLodge runs the server's delivery task after a
// file's lodge-by time passed undelivered: the operator is told, at WARN with the file's id,
// once, not at every minute's delivery.
func TestTheDeliveryTaskWarnsOnceOfAFileTooLateToLodge(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		f.submit(t, "B1", 100)
		file := f.cutOne(t)
		f.clock.Set(file.LodgeBy())
		outbox := t.TempDir()
		var log bytes.Buffer
		tasks, err := app.BECSTasks(f.rail, f.service, f.clock, app.Config{BECSCutoffs: "10m", BECSTimezone: "Australia/Sydney", BECSOutbox: outbox},
			slog.New(slog.NewTextHandler(&log, nil)))
		if err != nil || len(tasks) != 3 || tasks[1].Name != "becs_deliver" {
			t.Fatalf("BECSTasks = %+v, %v", tasks, err)
		}
		for range 2 {
			if err := tasks[1].Run(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if entries, _ := os.ReadDir(outbox); len(entries) != 0 {
			t.Fatalf("the outbox holds %v; want nothing", entries)
		}
		var warnings []string
		for line := range strings.Lines(log.String()) {
			if strings.Contains(line, "level=WARN") && strings.Contains(line, "file="+file.ID) {
				warnings = append(warnings, line)
			}
		}
		if len(warnings) != 1 {
			t.Fatalf("the log holds %d warnings of file %s, want 1:\n%s", len(warnings), file.ID, log.String())
		}
	})
}

// TestSFTPAsksForTheHostKeyTypeItPins connects to a server with two host keys, Ed25519 and RSA,
// as a bank's may have: a known_hosts pinning either one is enough, the client asking for the
// type pinned (left to itself it would ask for RSA first, and refuse the RSA key a known_hosts
// pinning the Ed25519 one does not hold); one pinning another Ed25519 key is still refused.
func TestSFTPAsksForTheHostKeyTypeItPins(t *testing.T) {
	sshd := sshdtest.Start(t, sshdtest.ExtraHostKey("rsa"))
	for _, c := range []struct {
		name, knownHosts string
		ok               bool
	}{
		{"the Ed25519 key pinned", sshd.KnownHosts, true},
		{"the RSA key pinned", sshd.ExtraKnownHosts, true},
		{"another Ed25519 key pinned", sshd.OtherKnownHosts, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(sshd.Dir, t.Name())
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			dest, err := becs.OpenSFTP(becs.SFTPConfig{URL: sshd.URL(t.Name()), KeyFile: sshd.KeyFile, KnownHosts: c.knownHosts})
			if err != nil {
				t.Fatal(err)
			}
			err = dest.Stage(context.Background(), "F.aba", []byte("content"))
			if err == nil {
				err = dest.Publish(context.Background(), "F.aba")
			}
			entries, _ := os.ReadDir(dir)
			switch {
			case c.ok && (err != nil || len(entries) != 1):
				t.Fatalf("Stage and Publish = %v, the server holds %v; want the file uploaded", err, entries)
			case !c.ok && (err == nil || !strings.Contains(err.Error(), "key") || len(entries) != 0):
				t.Fatalf("Stage = %v, the server holds %v; want refused for its host key", err, entries)
			}
		})
	}
}

// README Settings: the SFTP server is reached with PYNG_BECS_SFTP_KEY_FILE and
// PYNG_BECS_SFTP_KNOWN_HOSTS "(a known_hosts file pinning the server's host key: a server with
// any other key is refused)". The rail refuses to be configured without a pinned key, with a
// password in the URL, or with a URL of another form.
func TestSFTPIsNeverConfiguredWithoutAPinnedHostKey(t *testing.T) {
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "id")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  becs.SFTPConfig
		want string
	}{
		{"no known_hosts", becs.SFTPConfig{URL: "sftp://bank@127.0.0.1:2222/in", KeyFile: key}, "pinned"},
		{"a password", becs.SFTPConfig{URL: "sftp://bank:secret@127.0.0.1:2222/in", KeyFile: key, KnownHosts: empty}, "password"},
		{"no user", becs.SFTPConfig{URL: "sftp://127.0.0.1:2222/in", KeyFile: key, KnownHosts: empty}, "sftp://user@host"},
		{"another scheme", becs.SFTPConfig{URL: "ftp://bank@127.0.0.1/in", KeyFile: key, KnownHosts: empty}, "sftp://user@host"},
		{"no key file", becs.SFTPConfig{URL: "sftp://bank@127.0.0.1:2222/in", KeyFile: filepath.Join(dir, "nope"), KnownHosts: empty}, "key file"},
		{"a timeout longer than a claim allows", becs.SFTPConfig{URL: "sftp://bank@127.0.0.1:2222/in", KeyFile: key, KnownHosts: empty,
			Timeout: becs.MaxSFTPTimeout + time.Second}, "timeout"},
		{"a negative timeout", becs.SFTPConfig{URL: "sftp://bank@127.0.0.1:2222/in", KeyFile: key, KnownHosts: empty, Timeout: -time.Second}, "timeout"},
		{"a wait for an incomplete returns file shorter than the settle time", becs.SFTPConfig{URL: "sftp://bank@127.0.0.1:2222/in", KeyFile: key,
			KnownHosts: empty, ReturnsSettle: time.Minute, ReturnsIncompleteWait: 30 * time.Second}, "shorter than the settle time"},
	} {
		_, err := becs.OpenSFTP(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: OpenSFTP = %v; want an error naming %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the password: %v", c.name, err)
		}
	}
}

// TestSFTPSessionsEndAtTheTimeout: a server that accepts the connection and never answers (a
// hung bank server) holds a delivery, or a look at the returns directory, for the timeout
// (PYNG_BECS_SFTP_TIMEOUT), no longer.
func TestSFTPSessionsEndAtTheTimeout(t *testing.T) {
	sshd := sshdtest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // held open, silent, until the test ends
		}
	}()
	const timeout = 300 * time.Millisecond
	server, err := becs.OpenSFTP(becs.SFTPConfig{URL: "sftp://bank@" + ln.Addr().String() + "/in", KeyFile: sshd.KeyFile,
		KnownHosts: sshd.KnownHosts, ReturnsDir: "returns", Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	for name, session := range map[string]func(context.Context) error{
		"stage":   func(ctx context.Context) error { return server.Stage(ctx, "F.aba", []byte("content")) },
		"returns": func(ctx context.Context) error { return server.FetchReturns(ctx, nil) },
	} {
		start := time.Now()
		err := session(context.Background())
		if took := time.Since(start); err == nil || took < timeout || took > timeout+5*time.Second {
			t.Errorf("%s against a silent server = %v after %v; want an error after the timeout, %v", name, err, took, timeout)
		}
	}
}

// TestDeliveryToTheOutboxAndTheBanksServerTogether delivers a cut file to both an outbox
// directory (the operator's copy) and a real OpenSSH server (which lodges it): a delivery the
// server refuses leaves the file neither delivered nor lodged, and the outbox with its staged copy
// only, for no operator to lodge; done again, the file is whole, once, in both places, lodged
// (the outbox's copy set aside in lodged/, out of the way of files to upload), and its rows
// succeed.
func TestDeliveryToTheOutboxAndTheBanksServerTogether(t *testing.T) {
	sshd := sshdtest.Start(t)
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		ctx := context.Background()
		f := newFixture(t, engine)
		b := f.submit(t, "B1", 100, 250)
		file := f.cutOne(t)
		content, _ := f.rail.Content(ctx, file.ID)
		outbox, onServer := t.TempDir(), filepath.Join(sshd.Dir, engine)
		if err := os.MkdirAll(onServer, 0o700); err != nil {
			t.Fatal(err)
		}
		holdsTheFile := func(dir string) {
			t.Helper()
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 || entries[0].Name() != file.Name() {
				t.Fatalf("%s holds %v, want only %s", dir, entries, file.Name())
			}
			if got, _ := os.ReadFile(filepath.Join(dir, file.Name())); !bytes.Equal(got, content) {
				t.Fatalf("%s's file differs from the stored file", dir)
			}
		}

		impostor, err := becs.OpenSFTP(becs.SFTPConfig{URL: sshd.URL(engine), KeyFile: sshd.KeyFile, KnownHosts: sshd.OtherKnownHosts})
		if err != nil {
			t.Fatal(err)
		}
		if delivered, _, err := f.rail.Deliver(ctx, becs.Destinations{becs.Dir(outbox), impostor}); err == nil || len(delivered) != 0 {
			t.Fatalf("Deliver with the server refused = %+v, %v; want an error", delivered, err)
		}
		if entries, _ := os.ReadDir(outbox); len(entries) != 1 || entries[0].Name() != "."+file.Name()+".tmp" {
			t.Fatalf("the outbox holds %v, want the staged copy only", entries)
		}
		if entries, _ := os.ReadDir(onServer); len(entries) != 0 {
			t.Fatalf("the server got %v from a refused connection", entries)
		}
		if got, _ := f.rail.File(ctx, file.ID); !got.DeliveredAt.IsZero() || !got.LodgedAt.IsZero() {
			t.Fatalf("the file is %+v; want neither delivered nor lodged while the server does not have it", got)
		}

		server, err := becs.OpenSFTP(becs.SFTPConfig{URL: sshd.URL(engine), KeyFile: sshd.KeyFile, KnownHosts: sshd.KnownHosts})
		if err != nil {
			t.Fatal(err)
		}
		both := becs.Destinations{becs.Dir(outbox), server}
		if !both.Lodges() || both.String() != outbox+" and "+server.String() {
			t.Fatalf("the destinations are %q, lodging %v; want both named, lodging", both, both.Lodges())
		}
		delivered, _, err := f.rail.Deliver(ctx, both)
		if err != nil || len(delivered) != 1 || delivered[0].LodgedAt.IsZero() {
			t.Fatalf("Deliver to both = %+v, %v; want the file, lodged", delivered, err)
		}
		holdsTheFile(filepath.Join(outbox, "lodged"))
		holdsTheFile(onServer)
		if got, _ := f.rail.File(ctx, file.ID); got.State(f.clock.Now()) != becs.FileLodged {
			t.Fatalf("the file is %s, want lodged", got.State(f.clock.Now()))
		}
		if again, _, err := f.rail.Deliver(ctx, both); err != nil || len(again) != 0 {
			t.Fatalf("Deliver again = %+v, %v; want nothing", again, err)
		}
		holdsTheFile(filepath.Join(outbox, "lodged"))
		holdsTheFile(onServer)
		f.execute(t, b)
		if got := states(f.rows(t, "B1")); !slices.Equal(got, []string{"succeeded", "succeeded"}) {
			t.Fatalf("rows %v, want succeeded once the file is on the bank's server", got)
		}
	})
}

// A delivery cut short (a crash, simulated by a panic) after the file was staged and before it
// was marked delivered, or after the mark and before the file was published, is finished by the
// next delivery, and the destination is given the file once: where the bank takes each file away
// as it arrives (the test takes it at once), a file published twice would be collected twice. On
// PostgreSQL, whose replicas deliver at once, the crashed delivery's claim is taken over once it
// is stale. The hooks are the package's, so the engines and destinations run one at a time.
func TestADeliveryCutShortGivesTheFileOnce(t *testing.T) {
	sshd := sshdtest.Start(t)
	type crash struct{}
	for _, engine := range dbtest.Engines() {
		for _, at := range []string{"before the mark", "before the publication"} {
			for name, d := range destinations(t, sshd) {
				t.Run(engine+"/"+at+"/"+name, func(t *testing.T) {
					ctx := context.Background()
					f := newFixture(t, engine)
					b := f.submit(t, "B1", 100, 250)
					file := f.cutOne(t)
					hook := &becs.BeforeDeliveredMark
					if at == "before the publication" {
						hook = &becs.BeforePublish
					}
					*hook = func() { panic(crash{}) }
					func() {
						defer func() {
							if p := recover(); p != (crash{}) {
								t.Fatalf("the delivery ended with %v, want the simulated crash", p)
							}
						}()
						_, _, _ = f.rail.Deliver(ctx, d.dest)
					}()
					*hook = nil
					if engine == storage.EnginePostgres {
						// Replicas deliver at once there: a claim is taken over once stale.
						f.clock.Advance(6 * time.Minute)
					}
					given := 0
					take := func() { // the bank takes what was published
						if _, err := os.Stat(filepath.Join(d.dir, file.Name())); err == nil {
							given++
							if err := os.Remove(filepath.Join(d.dir, file.Name())); err != nil {
								t.Fatal(err)
							}
						}
					}
					take()
					for range 2 { // the next runs
						if _, _, err := f.rail.Deliver(ctx, d.dest); err != nil {
							t.Fatal(err)
						}
						take()
					}
					if given != 1 {
						t.Errorf("the destination was given the file %d times, want once", given)
					}
					if entries, _ := os.ReadDir(d.dir); len(entries) != 0 {
						t.Errorf("the destination holds %v after the file was taken; want nothing (no staged copy left)", entries)
					}
					got, err := f.rail.File(ctx, file.ID)
					if err != nil || got.DeliveredAt.IsZero() || got.LodgedAt.IsZero() != !d.dest.Lodges() {
						t.Errorf("the file is %+v, %v; want delivered, and lodged when the destination lodges", got, err)
					}
					if d.dest.Lodges() {
						f.execute(t, b)
						if got := states(f.rows(t, "B1")); !slices.Equal(got, []string{"succeeded", "succeeded"}) {
							t.Errorf("rows %v, want succeeded: the file is with the bank", got)
						}
					}
				})
			}
		}
	}
}

// A server whose rename copies and then deletes, interrupted, leaves the file under both names.
// Without posix-rename the protocol's rename refuses a name that exists: Publish takes the file
// of the name with the staged copy's bytes for the file published, and removes the staged copy;
// with other bytes there, it refuses and leaves both.
func TestSFTPPublishFinishesARenameThatLeftBothNames(t *testing.T) {
	ctx := context.Background()
	sshd := sshdtest.Start(t, sshdtest.DeniedRequests("posix-rename"))
	if err := os.MkdirAll(filepath.Join(sshd.Dir, "out"), 0o700); err != nil {
		t.Fatal(err)
	}
	server, err := becs.OpenSFTP(becs.SFTPConfig{URL: sshd.URL("out"), KeyFile: sshd.KeyFile, KnownHosts: sshd.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(sshd.Dir, "out")
	for _, c := range []struct {
		name, there string
		published   bool
	}{{"same bytes", "the file's bytes\n", true}, {"other bytes", "other bytes\n", false}} {
		t.Run(c.name, func(t *testing.T) {
			name := strings.ReplaceAll(c.name, " ", "-") + ".aba"
			if err := server.Stage(ctx, name, []byte("the file's bytes\n")); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(c.there), 0o600); err != nil {
				t.Fatal(err)
			}
			err := server.Publish(ctx, name)
			staged, serr := server.Staged(ctx, name)
			if serr != nil {
				t.Fatal(serr)
			}
			if c.published && (err != nil || staged) {
				t.Errorf("Publish with the file's bytes under its name = %v, staged copy left %v; want published, the staged copy removed", err, staged)
			}
			if !c.published && (err == nil || !staged) {
				t.Errorf("Publish with other bytes under its name = %v, staged copy left %v; want refused, both left", err, staged)
			}
		})
	}
}

// A link in the returns directory (to a file the server's account can read, say) is not a file
// the bank uploaded: it is moved to rejected/ unread, with an error that the task logs, once.
func TestSFTPFetchReturnsSetsALinkAsideUnread(t *testing.T) {
	sshd := sshdtest.Start(t)
	dir := filepath.Join(sshd.Dir, "returns")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(sshd.Dir, "secret")
	if err := os.WriteFile(secret, []byte("not the bank's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "link.aba")); err != nil {
		t.Fatal(err)
	}
	src, err := becs.OpenSFTP(becs.SFTPConfig{URL: sshd.URL("out"), KeyFile: sshd.KeyFile, KnownHosts: sshd.KnownHosts, ReturnsDir: dir,
		ReturnsSettle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	read := func(f becs.ReturnsFile) (bool, error) {
		t.Errorf("the link was read: %s", f.Name)
		return false, nil
	}
	err = src.FetchReturns(context.Background(), read)
	if err == nil || !strings.Contains(err.Error(), "link.aba in the returns directory is not a regular file") {
		t.Fatalf("FetchReturns with a link = %v; want it set aside, with an error", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "rejected", "link.aba")); err != nil {
		t.Errorf("the link is not in rejected/: %v", err)
	}
	time.Sleep(10 * time.Millisecond)
	if err := src.FetchReturns(context.Background(), read); err != nil {
		t.Errorf("FetchReturns once the link is set aside = %v; want nothing to do", err)
	}
}
