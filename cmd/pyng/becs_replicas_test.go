package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/storage"
)

// operator takes the files the replicas deliver out of the outbox as soon as they appear, as an
// operator uploading them to the bank would, keeping each under its name in taken; a file that
// appears again after it was taken is counted, not overwritten.
type operator struct {
	outbox, taken string
	mu            sync.Mutex
	again         []string
	stop, done    chan struct{}
}

func startOperator(t *testing.T, outbox string) *operator {
	t.Helper()
	o := &operator{outbox: outbox, taken: t.TempDir(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(o.done)
		for {
			o.takeAll(t)
			select {
			case <-o.stop:
				o.takeAll(t)
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return o
}

func (o *operator) takeAll(t *testing.T) {
	entries, err := os.ReadDir(o.outbox)
	if err != nil {
		t.Error(err)
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue // a file being written
		}
		from := filepath.Join(o.outbox, e.Name())
		if err := os.Link(from, filepath.Join(o.taken, e.Name())); errors.Is(err, fs.ErrExist) {
			o.mu.Lock()
			o.again = append(o.again, e.Name())
			o.mu.Unlock()
		} else if err != nil {
			t.Error(err)
			continue
		}
		if err := os.Remove(from); err != nil {
			t.Error(err)
		}
	}
}

func (o *operator) finish() (again []string) {
	close(o.stop)
	<-o.done
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.again
}

// TestThreeReplicasCutEachBECSFileOnce runs three server processes on one PostgreSQL database,
// with a site on the BECS rail, files cut every second and delivered to one outbox directory that
// an operator empties as files arrive; a partner submits batches to the replicas round robin. It
// checks that every row's debit is in exactly one file, that each file was cut once and delivered
// once (it never reappears in the outbox after the operator took it), that the files hold their
// rows to the cent, and, once the operator has recorded each lodged, that every row has succeeded
// with the file its debit went in.
func TestThreeReplicasCutEachBECSFileOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	databaseURL := databaseURL(t, storage.EnginePostgres)
	db, key := "-database-url="+databaseURL, "-encryption-key="+dbtest.KeyRing

	site, client := provisionSite(t, db, "Direct Entry")
	code, out, errOut := runPyng(t, "admin", "site", "update", db, "--site", site, "--legal-name", "Direct Entry Pty Ltd", "--email", "accounts@direct.example")
	decodeOne(t, code, out, errOut, new(struct{ SiteID string }))
	code, out, errOut = runPyng(t, "admin", "site", "set-rail", db, key, "--site", site, "--rail", "becs",
		"--user-id", "123456", "--user-name", "DIRECT ENTRY PTY LTD", "--bank", "CBA", "--description", "RECEIVABLES",
		"--trace-bsb", "062-000", "--trace-account", "87654321", "--remitter", "DIRECT ENTRY")
	decodeOne(t, code, out, errOut, &struct{}{})

	outbox := t.TempDir()
	env := []string{"PYNG_JOB_POLL_INTERVAL=50ms", "PYNG_JOB_WORKERS=4", "PYNG_BECS_CUTOFFS=1s", "PYNG_BECS_OUTBOX=" + outbox}
	r := &replicaSet{p: &partner{t: t, siteID: site}, down: make([]bool, 3), answered: make([]int, 3)}
	for range 3 {
		p, _ := launchServer(t, pyngBinary, databaseURL, env...)
		r.replicas = append(r.replicas, p)
	}
	for _, p := range r.replicas {
		p.waitReady(t)
	}
	r.p.token = token(t, r.replicas[r.pick()].base, client.ClientID, client.ClientSecret)
	op := startOperator(t, outbox)

	customers := make([]string, 5)
	for c := range customers {
		customers[c] = fmt.Sprintf("CUST-%02d", c)
		if st := r.call("POST", "/customers/invitations", map[string]string{"customerReference": customers[c]}, nil); st != 201 {
			t.Fatalf("invite %s: %d", customers[c], st)
		}
		if st := r.call("POST", "/sandbox/customers/"+customers[c]+"/signup", nil, nil); st != 200 {
			t.Fatalf("sandbox signup %s: %d", customers[c], st)
		}
	}

	store, err := storage.Open(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	count := func(query string) (n int64) {
		t.Helper()
		if err := store.Conn().Query(ctx, query, nil, func(row storage.Scanner) error { return row.Scan(&n) }); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Batches submitted over several seconds, so that their debits are cut at several cut-offs;
	// the second half only once a file is cut, so that they are whatever the machine's load (a
	// loaded machine once ran every batch before the first cut-off).
	const batches, rowsPerBatch = 30, 100
	amount := func(b, i int) int64 { return int64(100 + b*1000 + i*7) }
	var wantTotal int64
	for b := range batches {
		rows := make([]map[string]any, rowsPerBatch)
		for i := range rows {
			rows[i] = map[string]any{"rowReference": fmt.Sprintf("R%03d", i), "customerReference": customers[i%len(customers)], "amount": amount(b, i)}
			wantTotal += amount(b, i)
		}
		if st := r.call("POST", "/batches", map[string]any{"batchReference": fmt.Sprintf("B%02d", b), "rows": rows}, nil); st != 202 {
			t.Fatalf("submit B%02d: %d", b, st)
		}
		time.Sleep(150 * time.Millisecond)
		if b == batches/2-1 {
			waitFor(t, 60*time.Second, "a file cut of the first half's debits", func() bool {
				return count(`SELECT count(*) FROM becs_files`) > 0
			})
		}
	}
	// Published, not only delivered: a delivery records the file delivered before it renames it
	// into the outbox, and the operator takes only what is there under its name.
	waitFor(t, 60*time.Second, "every row's debit cut into a file published to the outbox", func() bool {
		return count(`SELECT count(*) FROM becs_debits WHERE file_id IS NOT NULL`) == batches*rowsPerBatch &&
			count(`SELECT count(*) FROM becs_files WHERE published_at IS NULL`) == 0
	})
	again := op.finish()

	type file struct {
		id, checksum string
		rows, total  int64
		debits       int64
		debitTotal   int64
	}
	var files []file
	err = store.Conn().Query(ctx, `SELECT f.id, f.checksum, f.row_count, f.total, count(d.idempotency_key), coalesce(sum(d.amount), 0)
FROM becs_files f LEFT JOIN becs_debits d ON d.file_id = f.id GROUP BY f.id ORDER BY f.cut_at, f.id`, nil, func(row storage.Scanner) error {
		var f file
		err := row.Scan(&f.id, &f.checksum, &f.rows, &f.total, &f.debits, &f.debitTotal)
		files = append(files, f)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Errorf("%d files were cut; the batches were submitted over several cut-offs, want several", len(files))
	}
	var total int64
	var names []string
	for _, f := range files {
		if f.rows != f.debits || f.total != f.debitTotal {
			t.Errorf("file %s says %d rows of %d cents; it holds %d debits of %d cents", f.id, f.rows, f.total, f.debits, f.debitTotal)
		}
		total += f.debitTotal
		names = append(names, f.id+".aba")
		content, err := os.ReadFile(filepath.Join(op.taken, f.id+".aba"))
		if err != nil {
			t.Errorf("file %s never reached the outbox: %v", f.id, err)
			continue
		}
		if sum := sha256.Sum256(content); hex.EncodeToString(sum[:]) != f.checksum {
			t.Errorf("file %s in the outbox does not have the stored file's checksum", f.id)
		}
	}
	if total != wantTotal {
		t.Errorf("the files hold %d cents; the batches %d", total, wantTotal)
	}
	if n := count(`SELECT count(*) FROM batch_rows r LEFT JOIN becs_debits d ON d.idempotency_key = r.id WHERE d.file_id IS NULL`); n != 0 {
		t.Errorf("%d rows have no debit in a file", n)
	}
	if len(again) > 0 {
		t.Errorf("files delivered again after the operator had taken them: %v", again)
	}
	taken, _ := os.ReadDir(op.taken)
	var got []string
	for _, e := range taken {
		got = append(got, e.Name())
	}
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("the operator took %v; want each file once: %v", got, names)
	}

	// The operator records each file lodged; every row succeeds, naming its file.
	for _, f := range files {
		code, out, errOut := runPyng(t, "admin", "becs", "files", "lodged", f.id, db, key)
		decodeOne(t, code, out, errOut, &struct{}{})
	}
	perFile := map[string]int64{}
	for b := range batches {
		var v struct {
			Data struct {
				State string
				Rows  []struct {
					State, FileID string
					Amount        int64
				}
			}
		}
		// Its rows succeed as the file is recorded lodged; the batch completes at its next step.
		if st := r.call("GET", fmt.Sprintf("/batches/B%02d", b), nil, &v); st != 200 || len(v.Data.Rows) != rowsPerBatch {
			t.Fatalf("GET B%02d: %d, %d rows", b, st, len(v.Data.Rows))
		}
		for i, row := range v.Data.Rows {
			if row.State != "succeeded" || row.FileID == "" {
				t.Errorf("B%02d row %d is %s in file %q; want succeeded in a file", b, i, row.State, row.FileID)
			}
			perFile[row.FileID]++
		}
	}
	for _, f := range files {
		if perFile[f.id] != f.rows {
			t.Errorf("%d rows name file %s, which holds %d", perFile[f.id], f.id, f.rows)
		}
	}

	// Each file was cut by one replica and delivered by one, as their logs say.
	for _, p := range r.replicas {
		p.stop(t)
	}
	cutBy, deliveredBy := map[string][]int{}, map[string][]int{}
	fileID := regexp.MustCompile(`file=(file_[a-z2-7]+)`)
	for i, p := range r.replicas {
		for line := range strings.SplitSeq(p.stderr.String(), "\n") {
			m := fileID.FindStringSubmatch(line)
			switch {
			case m == nil:
			case strings.Contains(line, `msg="BECS file cut"`):
				cutBy[m[1]] = append(cutBy[m[1]], i)
			case strings.Contains(line, `msg="BECS file delivered`):
				deliveredBy[m[1]] = append(deliveredBy[m[1]], i)
			}
		}
	}
	replicasCutting := map[int]bool{}
	for _, f := range files {
		if len(cutBy[f.id]) != 1 || len(deliveredBy[f.id]) != 1 {
			t.Errorf("file %s was cut by replicas %v and delivered by replicas %v; want once each", f.id, cutBy[f.id], deliveredBy[f.id])
		}
		for _, i := range cutBy[f.id] {
			replicasCutting[i] = true
		}
	}
	if len(cutBy) != len(files) || len(deliveredBy) != len(files) {
		t.Errorf("the logs name %d files cut and %d delivered; the database holds %d", len(cutBy), len(deliveredBy), len(files))
	}
	t.Logf("%d rows in %d files, cut by %d of the 3 replicas", batches*rowsPerBatch, len(files), len(replicasCutting))
}
