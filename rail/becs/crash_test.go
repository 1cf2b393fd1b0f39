package becs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/becs/aba"
	"github.com/pyng/receivables/sshdtest"
	"github.com/pyng/receivables/storage"
)

// The crash test's child: it cuts and delivers the files of the database at BECS_CRASH_DB to the
// outbox BECS_CRASH_OUTBOX, or to the SFTP server of BECS_CRASH_SFTP (URL, key file and known
// hosts, separated by spaces), whose files a bank takes away as they are published
// (BECS_CRASH_BANK: the directory it takes them from and the one it keeps them in, separated by a
// space), and kills itself with SIGKILL at the BECS_CRASH_AFTER-th time it reaches the point
// BECS_CRASH_AT: a cut's transaction about to commit ("cut"), half of a file uploaded to the SFTP
// server ("upload"), a file staged to its destination and not yet marked delivered ("deliver"),
// one marked and not yet published ("publish"), one being published, its hold on the file taken
// (on SQLite its claim made) and not yet renamed ("rename"), or one renamed (and taken by the
// bank) and its rename not yet recorded ("renamed").
func TestMain(m *testing.M) {
	if url := os.Getenv("BECS_CRASH_DB"); url != "" {
		os.Exit(crashChild(url))
	}
	os.Exit(m.Run())
}

func crashChild(url string) int {
	ctx := context.Background()
	after, _ := strconv.Atoi(os.Getenv("BECS_CRASH_AFTER"))
	reached := 0
	crash := func() {
		if reached++; reached == after {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	switch os.Getenv("BECS_CRASH_AT") {
	case "cut":
		becs.BeforeCutCommit = crash
	case "upload":
		becs.MidSFTPUpload = crash
	case "deliver":
		becs.BeforeDeliveredMark = crash
	case "publish":
		becs.BeforePublish = crash
	}
	dest, err := crashDestination(os.Getenv("BECS_CRASH_OUTBOX"), os.Getenv("BECS_CRASH_SFTP"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	taker := strings.Fields(os.Getenv("BECS_CRASH_BANK"))
	if len(taker) != 2 {
		fmt.Fprintf(os.Stderr, "BECS_CRASH_BANK %q: want the directory the bank takes files from and the one it keeps them in\n", os.Getenv("BECS_CRASH_BANK"))
		return 3
	}
	// Inside killingPublish: a file renamed is taken by the bank before the crash after the rename.
	dest = takenAway{Destination: dest, bank: bank{dir: taker[0], kept: taker[1]}}
	if at := os.Getenv("BECS_CRASH_AT"); at == "rename" || at == "renamed" {
		dest = killingPublish{Destination: dest, afterRename: at == "renamed", crash: crash}
	}
	db, err := storage.Open(ctx, url, storage.WithKeyring(dbtest.Keyring()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	r, err := becs.Open(ctx, db.Conn(), billing.SystemClock{})
	if err == nil {
		_, err = r.Cut(ctx, inSydney)
	}
	if err == nil {
		_, _, err = r.Deliver(ctx, dest)
	}
	fmt.Fprintln(os.Stderr, "the child was not killed:", err)
	return 3
}

// crashDestination is the outbox directory, or the SFTP server of sftp: its URL, key file and
// known hosts file, separated by spaces.
func crashDestination(outbox, sftp string) (becs.Destination, error) {
	if sftp == "" {
		return becs.Dir(outbox), nil
	}
	parts := strings.Fields(sftp)
	if len(parts) != 3 {
		return nil, fmt.Errorf("BECS_CRASH_SFTP %q: want a URL, a key file and a known hosts file", sftp)
	}
	return becs.OpenSFTP(becs.SFTPConfig{URL: parts[0], KeyFile: parts[1], KnownHosts: parts[2]})
}

// killingPublish is a destination whose process is killed in a publication: before the rename,
// or after it.
type killingPublish struct {
	becs.Destination
	afterRename bool
	crash       func()
}

func (d killingPublish) Publish(ctx context.Context, name string) error {
	if !d.afterRename {
		d.crash()
	}
	if err := d.Destination.Publish(ctx, name); err != nil {
		return err
	}
	if d.afterRename {
		d.crash()
	}
	return nil
}

// TestCrashWhileCuttingOrDeliveringLeavesEachDebitInOneWholeFile kills a process with SIGKILL
// while it cuts files and while it delivers them, to an outbox directory or to the bank's SFTP
// server (a real OpenSSH server, killed also in the middle of an upload), runs the cut and the
// delivery again, and checks the money: every debit is in exactly one file, the bank is given
// every file once, whole, and nothing else (no partial upload, no duplicate), the destination's
// directory is left with nothing (no staged copy), and the detail records of each file add up to
// its debits, to the cent.
//
// The bank takes each file away as it is published (a bank's server consumes what is lodged; an
// operator's upload takes what it uploads from an outbox), and counts it: a destination that kept
// every file would hide a second upload and rename of a file (staging skips a file already there
// with its bytes, and a rename over it changes nothing), such as a run after a crash publishing
// again a file the killed run had renamed, which the bank would collect twice.
func TestCrashWhileCuttingOrDeliveringLeavesEachDebitInOneWholeFile(t *testing.T) {
	sshd := sshdtest.Start(t)
	for _, engine := range dbtest.Engines() {
		for _, at := range []struct {
			dest, point string
			after       int
		}{{"outbox", "cut", 1}, {"outbox", "cut", 2}, {"outbox", "deliver", 1}, {"outbox", "deliver", 2}, {"outbox", "publish", 2},
			{"outbox", "rename", 1}, {"outbox", "renamed", 2},
			{"sftp", "upload", 1}, {"sftp", "upload", 2}, {"sftp", "deliver", 1}, {"sftp", "deliver", 2}, {"sftp", "publish", 2},
			{"sftp", "rename", 2}, {"sftp", "renamed", 1}} {
			t.Run(fmt.Sprintf("%s/%s/%s-%d", engine, at.dest, at.point, at.after), func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				url := dbtest.URL(t, engine)
				db := dbtest.OpenURL(t, url, storage.WithKeyring(dbtest.Keyring()))
				service, _ := apptest.ServiceOver(t, db, apptest.ServiceOptions{})
				// The next runs come later: on PostgreSQL, whose replicas deliver at once, a claim the
				// killed delivery left is taken over once it is stale.
				var clock becs.Clock = billing.SystemClock{}
				if engine == storage.EnginePostgres {
					clock = laterClock(6 * time.Minute)
				}
				r, err := becs.Open(ctx, db.Conn(), clock)
				if err != nil {
					t.Fatal(err)
				}
				// Three sites, so that a crash can come between the files of one cut.
				want := map[string]int64{} // row id → amount
				for s := range 3 {
					site := apptest.NewSite(t, service, fmt.Sprintf("Site %d", s))
					if _, err := r.SetUser(ctx, site.ID, User); err != nil {
						t.Fatal(err)
					}
					site = apptest.OnRail(t, service, site.ID, rail.BECS)
					apptest.LinkedCustomer(t, service, site, "C1")
					for b := range 2 {
						var rows []billing.RowRequest
						for i := range 40 {
							rows = append(rows, billing.RowRequest{Reference: fmt.Sprintf("R%d", i), CustomerReference: "C1", Amount: int64(1 + s*100_000 + b*1000 + i*37)})
						}
						batch := apptest.SubmitBatch(t, service, site, fmt.Sprintf("B%d", b), rows...)
						if _, _, err := service.ExecuteBatch(ctx, batch.ID); err != nil {
							t.Fatal(err)
						}
						_, _, got, err := service.Batch(ctx, site, batch.Reference, "")
						if err != nil {
							t.Fatal(err)
						}
						for _, row := range got {
							want[row.ID] = row.Amount
						}
					}
				}

				outbox, sftp := t.TempDir(), ""
				var dest becs.Destination = becs.Dir(outbox)
				if at.dest == "sftp" {
					sub := fmt.Sprintf("crash-%s-%s-%d", engine, at.point, at.after)
					outbox = filepath.Join(sshd.Dir, sub)
					if err := os.MkdirAll(outbox, 0o700); err != nil {
						t.Fatal(err)
					}
					sftp = strings.Join([]string{sshd.URL(sub), sshd.KeyFile, sshd.KnownHosts}, " ")
					if dest, err = crashDestination("", sftp); err != nil {
						t.Fatal(err)
					}
				}
				// The killed run and the next ones publish to the bank, which takes each file at once.
				taker := bank{dir: outbox, kept: t.TempDir()}
				dest = takenAway{Destination: dest, bank: taker}
				child := exec.Command(os.Args[0], "-test.run=^$")
				child.Env = append(os.Environ(), "BECS_CRASH_DB="+url, "BECS_CRASH_AT="+at.point,
					"BECS_CRASH_AFTER="+strconv.Itoa(at.after), "BECS_CRASH_OUTBOX="+outbox, "BECS_CRASH_SFTP="+sftp,
					"BECS_CRASH_BANK="+taker.dir+" "+taker.kept)
				var stderr bytes.Buffer
				child.Stderr = &stderr
				err = child.Run()
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("the child ended with %v, want killed by SIGKILL: %s", err, stderr.String())
				}
				// Before the next runs, whatever the killed run published otherwise than by Publish:
				// left in place, a copy published again by them would replace it unseen.
				if err := taker.take(); err != nil {
					t.Fatal(err)
				}

				if at.point == "rename" || at.point == "renamed" {
					checkClaimedFileNotLodged(t, r, db)
				}

				// After the crash: cut and deliver again, as the next run of the task does.
				if _, err := r.Cut(ctx, inSydney); err != nil {
					t.Fatal(err)
				}
				waitDelivered(t, r, db, dest)
				if err := taker.take(); err != nil { // anything published otherwise than by Publish
					t.Fatal(err)
				}
				checkFiles(t, r, db, taker, dest.Lodges(), want)
				if claimed := claimedFiles(t, db); len(claimed) != 0 {
					t.Errorf("after the next run files %v are still claimed for their publication", claimed)
				}
			})
		}
	}
}

// bank takes away each file published to dir (not a dot file, which is a staged copy, nor a
// directory), as the bank's server takes what is lodged, and keeps each copy it is given in kept,
// as NAME.1, NAME.2 and so on: a file published twice shows as two copies, however alike, even
// when the first went to the bank of the process killed since.
type bank struct{ dir, kept string }

// take takes away every file published to the bank's directory.
func (b bank) take() error {
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		name := filepath.Join(b.dir, e.Name())
		content, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		for n := 1; ; n++ {
			err = writeNew(filepath.Join(b.kept, e.Name()+"."+strconv.Itoa(n)), content)
			if !errors.Is(err, fs.ErrExist) {
				break
			}
		}
		if err != nil {
			return err
		}
		// Kept before it is removed: the copy is never lost, even by a process killed meanwhile.
		if err := os.Remove(name); err != nil {
			return err
		}
	}
	return nil
}

// writeNew writes content to the file name, which must not exist.
func writeNew(name string, content []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(content)
	return errors.Join(err, f.Close())
}

// given returns the copies the bank was given of each file name, in turn.
func (b bank) given(t *testing.T) map[string][][]byte {
	t.Helper()
	entries, err := os.ReadDir(b.kept)
	if err != nil {
		t.Fatal(err)
	}
	given := map[string][][]byte{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".1")
		if !ok {
			continue
		}
		for n := 1; ; n++ {
			content, err := os.ReadFile(filepath.Join(b.kept, name+"."+strconv.Itoa(n)))
			if errors.Is(err, fs.ErrNotExist) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			given[name] = append(given[name], content)
		}
	}
	return given
}

// takenAway is a destination whose bank takes each file away as soon as it is published, before
// the delivery records it: a bank's server that polls often may be that fast, and a second
// publication of a file, even within one run, then reaches it too.
type takenAway struct {
	becs.Destination
	bank bank
}

func (d takenAway) Publish(ctx context.Context, name string) error {
	if err := d.Destination.Publish(ctx, name); err != nil {
		return err
	}
	return d.bank.take()
}

// laterClock is the wall clock, that much later.
type laterClock time.Duration

func (c laterClock) Now() time.Time { return time.Now().Add(time.Duration(c)) }

// claimedFiles returns the files claimed for their delivery (publishing_at).
func claimedFiles(t *testing.T, db storage.Database) []string {
	t.Helper()
	var ids []string
	err := db.Conn().Query(context.Background(), `SELECT id FROM becs_files WHERE publishing_at IS NOT NULL ORDER BY id`, nil,
		func(row storage.Scanner) error {
			var id string
			ids = append(ids, id)
			return row.Scan(&ids[len(ids)-1])
		})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// checkClaimedFileNotLodged checks that a publication killed left its file claimed,
// and that files lodged of it is refused until the next run finishes the publication: the
// rename may have been done.
func checkClaimedFileNotLodged(t *testing.T, r *becs.Rail, db storage.Database) {
	t.Helper()
	claimed := claimedFiles(t, db)
	if len(claimed) != 1 {
		t.Fatalf("the killed publication left files %v claimed; want its file", claimed)
	}
	if f, err := r.Lodge(context.Background(), claimed[0]); !errors.Is(err, becs.ErrBeingPublished) || !f.LodgedAt.IsZero() {
		t.Errorf("files lodged of the file whose publication was killed = %+v, %v; want refused (ErrBeingPublished)", f, err)
	}
}

// waitDelivered delivers to dest, again while a file is left undelivered or unpublished, for up
// to 10 seconds.
func waitDelivered(t *testing.T, r *becs.Rail, db storage.Database, dest becs.Destination) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, _, err := r.Deliver(ctx, dest); err != nil {
			t.Fatal(err)
		}
		var left int
		err := db.Conn().Query(ctx, `SELECT count(*) FROM becs_files WHERE delivered_at IS NULL OR published_at IS NULL`, nil,
			func(row storage.Scanner) error { return row.Scan(&left) })
		if err != nil {
			t.Fatal(err)
		}
		if left == 0 || time.Now().After(deadline) {
			return
		}
	}
}

// checkFiles checks that every debit of want (row id → amount) is in exactly one file, that the
// bank was given each file once, whole, and nothing else, and that its directory is left with
// nothing (no staged copy), that each file is delivered (and lodged, when its destination
// lodges), and that each file's detail records add up to its debits' amounts.
func checkFiles(t *testing.T, r *becs.Rail, db storage.Database, b bank, lodges bool, want map[string]int64) {
	t.Helper()
	ctx := context.Background()
	given := b.given(t)
	var sites []string
	err := db.Conn().Query(ctx, `SELECT DISTINCT site_id FROM becs_debits ORDER BY site_id`, nil, func(row storage.Scanner) error {
		var s string
		sites = append(sites, s)
		return row.Scan(&sites[len(sites)-1])
	})
	if err != nil {
		t.Fatal(err)
	}
	inFile := map[string]string{} // row id → file
	var names []string
	var total int64
	for _, site := range sites {
		files, err := r.Files(ctx, site)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if f.DeliveredAt.IsZero() || lodges && f.LodgedAt.IsZero() {
				t.Errorf("file %s is delivered at %v, lodged at %v", f.ID, f.DeliveredAt, f.LodgedAt)
			}
			names = append(names, f.Name())
			keys, err := r.Keys(ctx, f.ID)
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			for _, k := range keys {
				if other, ok := inFile[k]; ok {
					t.Errorf("debit %s is in files %s and %s", k, other, f.ID)
				}
				inFile[k] = f.ID
				sum += want[k]
			}
			copies := given[f.Name()]
			if len(copies) != 1 {
				t.Errorf("the bank was given file %s %d times; want once", f.ID, len(copies))
				if len(copies) == 0 {
					continue
				}
			}
			delivered := copies[0]
			stored, err := r.Content(ctx, f.ID)
			for i, c := range copies {
				if err != nil || !bytes.Equal(c, stored) {
					t.Errorf("copy %d of file %s the bank was given differs from the stored file (%v)", i+1, f.ID, err)
				}
			}
			parsed, err := aba.Read(bytes.NewReader(delivered))
			if err != nil {
				t.Fatalf("file %s does not read: %v", f.ID, err)
			}
			var details int64
			for _, d := range parsed.Details {
				if d.Code.IsDebit() {
					details += d.Amount
				}
			}
			if details != sum || f.Total != sum || f.Rows != len(keys) {
				t.Errorf("file %s: detail records %d, total %d, rows %d; its debits add up to %d in %d rows", f.ID, details, f.Total, f.Rows, sum, len(keys))
			}
			total += sum
		}
	}
	for id := range want {
		if _, ok := inFile[id]; !ok {
			t.Errorf("row %s is in no file", id)
		}
	}
	var wantTotal int64
	for _, a := range want {
		wantTotal += a
	}
	if len(inFile) != len(want) || total != wantTotal {
		t.Errorf("the files hold %d debits of %d cents; want %d of %d", len(inFile), total, len(want), wantTotal)
	}
	var got []string
	for name := range given {
		got = append(got, name)
	}
	slices.Sort(got)
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("the bank was given %s; want exactly the files %s", strings.Join(got, " "), strings.Join(names, " "))
	}
	if entries, _ := os.ReadDir(b.dir); len(entries) != 0 {
		var left []string
		for _, e := range entries {
			left = append(left, e.Name())
		}
		t.Errorf("the destination's directory holds %s after the bank took its files; want nothing (no staged copy)", strings.Join(left, " "))
	}
}
