package storage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/ddr"
	"github.com/pyng/receivables/seal"
	"github.com/pyng/receivables/storage"
	"github.com/pyng/receivables/storetest"
)

func TestStore(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) billing.Store { return dbtest.Open(t, engine) })
		})
	}
}

func TestBatchStore(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			storetest.RunBatches(t, func(t *testing.T) storetest.Batches {
				db := dbtest.Open(t, engine)
				return storetest.Batches{Store: db, ExecuteBatchJobsFunc: executeBatchJobs(t, db), WithdrawUnsentJobsFunc: withdrawUnsentJobs(t, db)}
			})
		})
	}
}

func TestEventStore(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			storetest.RunEvents(t, func(t *testing.T) storetest.Events {
				db := dbtest.Open(t, engine)
				return storetest.Events{Store: db, DeliveryJobsFunc: deliveryJobs(t, db), EmailJobsFunc: emailJobs(t, db)}
			})
		})
	}
}

// queueClient is a client of db's job queue that works nothing, to read it.
func queueClient(t *testing.T, db storage.Database) storage.JobClient {
	t.Helper()
	queue, err := db.NewJobClient(&river.Config{})
	if err != nil {
		t.Fatalf("NewJobClient: %v", err)
	}
	return queue
}

// jobsOf lists the jobs of T's kind whose arguments match.
func jobsOf[T river.JobArgs](ctx context.Context, queue storage.JobClient, match func(T) bool) ([]*rivertype.JobRow, error) {
	var zero T
	res, err := queue.JobList(ctx, river.NewJobListParams().Kinds(zero.Kind()).First(10_000))
	if err != nil {
		return nil, err
	}
	var out []*rivertype.JobRow
	for _, j := range res.Jobs {
		var args T
		if err := json.Unmarshal(j.EncodedArgs, &args); err != nil {
			return nil, fmt.Errorf("job %d: %w", j.ID, err)
		}
		if match(args) {
			out = append(out, j)
		}
	}
	return out, nil
}

// deliveryJobs counts the deliver_webhooks jobs of an endpoint.
func deliveryJobs(t *testing.T, db storage.Database) func(ctx context.Context, endpointID string) (int, error) {
	queue := queueClient(t, db)
	return func(ctx context.Context, endpointID string) (int, error) {
		jobs, err := jobsOf(ctx, queue, func(a billing.DeliverWebhooksJob) bool { return a.EndpointID == endpointID })
		return len(jobs), err
	}
}

// emailJobs lists the encoded arguments of the send_email jobs of a link.
func emailJobs(t *testing.T, db storage.Database) func(ctx context.Context, linkID string) ([]string, error) {
	queue := queueClient(t, db)
	return func(ctx context.Context, linkID string) ([]string, error) {
		jobs, err := jobsOf(ctx, queue, func(a billing.SendEmailJob) bool { return a.LinkID == linkID })
		out := make([]string, len(jobs))
		for i, j := range jobs {
			out[i] = string(j.EncodedArgs)
		}
		return out, err
	}
}

// executeBatchJobs counts the execute_batch jobs of a batch.
func executeBatchJobs(t *testing.T, db storage.Database) func(ctx context.Context, batchID string) (int, error) {
	queue := queueClient(t, db)
	return func(ctx context.Context, batchID string) (int, error) {
		jobs, err := jobsOfBatch(ctx, queue, batchID)
		return len(jobs), err
	}
}

// withdrawUnsentJobs counts the withdraw_unsent jobs of a link.
func withdrawUnsentJobs(t *testing.T, db storage.Database) func(ctx context.Context, linkID string) (int, error) {
	queue := queueClient(t, db)
	return func(ctx context.Context, linkID string) (int, error) {
		jobs, err := jobsOf(ctx, queue, func(a billing.WithdrawUnsentJob) bool { return a.LinkID == linkID })
		return len(jobs), err
	}
}

// jobsOfBatch lists the execute_batch jobs whose arguments name the batch.
func jobsOfBatch(ctx context.Context, queue storage.JobClient, batchID string) ([]*rivertype.JobRow, error) {
	return jobsOf(ctx, queue, func(a billing.ExecuteBatchJob) bool { return a.BatchID == batchID })
}

func TestOpenDispatchesOnTheURL(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, tc := range []struct {
		name   string
		url    string
		engine string
		file   string // the SQLite file Open must create, relative to dir
	}{
		{name: "sqlite:/// is an absolute path", url: "sqlite://" + filepath.Join(dir, "abs.db"), engine: "sqlite", file: "abs.db"},
		{name: "sqlite:/ is an absolute path", url: "sqlite:" + filepath.Join(dir, "abs2.db"), engine: "sqlite", file: "abs2.db"},
		{name: "sqlite: without slashes is relative", url: "sqlite:rel.db", engine: "sqlite", file: "rel.db"},
		{name: "a plain path is a SQLite file", url: "plain.db", engine: "sqlite", file: "plain.db"},
		{name: "a missing directory is created", url: "sqlite:new/dir/pyng.db", engine: "sqlite", file: "new/dir/pyng.db"},
		{name: "the scheme is case-insensitive", url: "SQLite:upper.db", engine: "sqlite", file: "upper.db"},
		{name: "postgres:// is PostgreSQL", url: dbtest.URL(t, "postgres"), engine: "postgres"},
		{name: "postgresql:// is PostgreSQL", url: "postgresql" + strings.TrimPrefix(dbtest.URL(t, "postgres"), "postgres"), engine: "postgres"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := storage.Open(context.Background(), tc.url)
			if err != nil {
				t.Fatalf("Open(%q): %v", tc.url, err)
			}
			defer db.Close()
			if got := db.Engine(); got != tc.engine {
				t.Fatalf("Engine() = %q, want %q", got, tc.engine)
			}
			if err := db.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			if n, err := db.CountOrganisations(context.Background()); err != nil || n != 0 {
				t.Fatalf("CountOrganisations = %d, %v; want 0 on a migrated, empty database", n, err)
			}
			if tc.file != "" {
				if _, err := os.Stat(filepath.Join(dir, tc.file)); err != nil {
					t.Fatalf("database file: %v", err)
				}
			}
		})
	}
}

func TestOpenRefusesBadURLs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		url  string
		want string // in the error
	}{
		{name: "an unknown scheme is refused", url: "mysql://root@localhost/pyng", want: `unknown database scheme "mysql:"`},
		{name: "a password is not shown", url: "mysql://root:hunter2@localhost/pyng", want: "unknown database scheme"},
		{name: "a sqlite URL with a host is refused", url: "sqlite://host/pyng.db", want: "has a host"},
		{name: "sqlite parameters are refused", url: "sqlite:pyng.db?mode=ro", want: "parameters are not supported"},
		{name: "an empty sqlite path is refused", url: "sqlite:", want: "names no file"},
		{name: "an empty URL is refused", url: "", want: "names no file"},
		{name: "a malformed postgres URL is refused", url: "postgres://%zz", want: "postgres"},
		{name: "a keyword/value connection string is no file path", url: "host=127.0.0.1 user=pyng password=hunter2 dbname=pyng", want: "keyword=value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, err := storage.Open(context.Background(), tc.url)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tc.url)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open(%q) error %q, want it to contain %q", tc.url, err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
}

// executeWorker works execute_batch jobs by reporting the batch each names.
type executeWorker struct {
	river.WorkerDefaults[billing.ExecuteBatchJob]
	worked chan string
}

func (w *executeWorker) Work(_ context.Context, job *river.Job[billing.ExecuteBatchJob]) error {
	w.worked <- job.Args.BatchID
	return nil
}

func TestTheJobClientWorksTheJobCreateBatchEnqueued(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			db := dbtest.Open(t, engine)
			batch := createBatch(t, db)

			worker := &executeWorker{worked: make(chan string, 1)}
			workers := river.NewWorkers()
			river.AddWorker(workers, worker)
			queue, err := db.NewJobClient(&river.Config{
				Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
				Workers:           workers,
				FetchPollInterval: 50 * time.Millisecond,
				FetchCooldown:     50 * time.Millisecond,
			})
			if err != nil {
				t.Fatalf("NewJobClient: %v", err)
			}
			jobs, err := jobsOfBatch(ctx, queue, batch.ID)
			if err != nil || len(jobs) != 1 {
				t.Fatalf("execute_batch jobs of the batch before working = %d (%v), want 1", len(jobs), err)
			}
			if got, want := jobs[0].MaxAttempts, (billing.ExecuteBatchJob{}).MaxAttempts(); got != want {
				t.Errorf("job's MaxAttempts = %d, want the %d the job asks for", got, want)
			}
			if err := queue.Start(ctx); err != nil {
				t.Fatalf("Start: %v", err)
			}
			defer func() {
				if err := queue.Stop(context.Background()); err != nil {
					t.Errorf("Stop: %v", err)
				}
			}()
			select {
			case id := <-worker.worked:
				if id != batch.ID {
					t.Fatalf("worker got batch %q, want %q", id, batch.ID)
				}
			case <-ctx.Done():
				t.Fatal("the job was not worked")
			}
		})
	}
}

// createBatch stores a batch of one row at a new site.
func createBatch(t *testing.T, db storage.Database) billing.Batch {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	org := billing.Organisation{ID: billing.NewID("org"), Name: "Acme", CreatedAt: now}
	site := billing.Site{ID: billing.NewID("site"), OrganisationID: org.ID, Name: "Acme", Currency: "AUD", Rail: "sandbox", CreatedAt: now}
	if err := db.CreateOrganisation(ctx, org); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSite(ctx, site); err != nil {
		t.Fatal(err)
	}
	b := billing.Batch{ID: billing.NewID("bat"), SiteID: site.ID, Reference: "B1", Fingerprint: []byte{1}, State: billing.BatchAccepted,
		RowCount: 1, TotalAmount: 100, SubmittedAt: now, Deadline: now.Add(billing.RowDeadline), RetainUntil: now.Add(billing.BatchRetention)}
	rows := []billing.Row{{ID: billing.NewID("row"), BatchID: b.ID, Reference: "R1", CustomerReference: "C1", Amount: 100, State: billing.RowPending}}
	if _, created, err := db.CreateBatch(ctx, b, rows); err != nil || !created {
		t.Fatalf("CreateBatch = %v, %v; want created", created, err)
	}
	return b
}

func TestSealing(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			storetest.RunSealing(t, func(t *testing.T) storetest.Reopen {
				url := dbtest.URL(t, engine)
				return func(t *testing.T, keys *seal.Keyring) storage.Database {
					return dbtest.OpenURL(t, url, storage.WithKeyring(keys))
				}
			})
		})
	}
}

// TestResealNeverBringsErasedDetailsBack erases the details of revoked links after ResealLinks
// read them and before it writes them sealed again: the erasure stands. (On SQLite the erasure
// waits for the page's transaction, the database's one connection; on PostgreSQL it commits
// first.) It sets a hook of the package, so it does not run in parallel.
func TestResealNeverBringsErasedDetailsBack(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			url := dbtest.URL(t, engine)
			k1 := dbtest.KeyringOf(t, "k1")
			db := dbtest.OpenURL(t, url, storage.WithKeyring(k1))
			org := billing.Organisation{ID: billing.NewID("org"), Name: "Acme", CreatedAt: time.Now()}
			site := billing.Site{ID: billing.NewID("site"), OrganisationID: org.ID, Name: "Acme", Currency: "AUD", Rail: "sandbox", CreatedAt: time.Now()}
			if err := errors.Join(db.CreateOrganisation(ctx, org), db.CreateSite(ctx, site)); err != nil {
				t.Fatal(err)
			}
			at := time.Now().Truncate(time.Millisecond)
			const n = 6
			for i := range n {
				l := billing.Link{ID: billing.NewID("lnk"), SiteID: site.ID, CustomerReference: fmt.Sprintf("C%d", i), StoredState: billing.LinkInvited, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
				if err := db.CreateLink(ctx, l); err != nil {
					t.Fatal(err)
				}
				if _, err := db.LinkCustomer(ctx, l.ID, billing.SandboxCustomer, ddr.Terms{Site: "Acme"}, "", at); err != nil {
					t.Fatal(err)
				}
				if _, err := db.RevokeLink(ctx, l.ID, billing.RevokedByCustomer, at); err != nil {
					t.Fatal(err)
				}
			}

			k2 := dbtest.KeyringOf(t, "k2", "k1")
			db = dbtest.OpenURL(t, url, storage.WithKeyring(k2))
			erased := make(chan int, 1)
			started := false
			storage.SetBeforeResealWrite(t, func() {
				if started {
					return
				}
				started = true
				done := make(chan struct{})
				go func() {
					defer close(done)
					n, err := db.EraseBankDetails(ctx, at)
					if err != nil {
						t.Error(err)
					}
					erased <- n
				}()
				select {
				case <-done:
				case <-time.After(300 * time.Millisecond): // SQLite: it waits for this transaction
				}
			})
			if _, err := db.ResealLinks(ctx, 2); err != nil {
				t.Fatal(err)
			}
			if got := <-erased; got != n {
				t.Fatalf("EraseBankDetails erased %d links, want %d", got, n)
			}
			left := 0
			err := db.Conn().Query(ctx, "SELECT count(*) FROM customer_links WHERE customer_bsb IS NOT NULL OR customer_name IS NOT NULL", nil,
				func(row storage.Scanner) error { return row.Scan(&left) })
			if err != nil || left != 0 {
				t.Fatalf("%d links hold details after their erasure (%v)", left, err)
			}
		})
	}
}

// TestSQLiteFilesAreTheOwnersAlone opens a new SQLite database and finds it, and the -wal and
// -shm files SQLite keeps beside it while it is open, readable and writable by their owner only:
// they hold customers' details.
func TestSQLiteFilesAreTheOwnersAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "pyng.db")
	db := dbtest.OpenURL(t, "sqlite://"+path, storage.WithKeyring(dbtest.Keyring()))
	if err := db.CreateOrganisation(context.Background(), billing.Organisation{ID: billing.NewID("org"), Name: "Acme", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(file), perm)
		}
	}
}

// A cursor of the deliveries that could not be read, the database being away, is told as that,
// not as a cursor that names no delivery: the partner would be answered 400 invalid cursor, and
// not send the request again, rather than 503.
func TestADeliveriesCursorNotReadIsNoUnknownCursor(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			db := dbtest.Open(t, engine)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			_, err := db.Deliveries(context.Background(), "whe_x", billing.DeliveryFilter{Before: "dlv_x", Limit: 10})
			if err == nil || errors.Is(err, billing.ErrNotFound) {
				t.Errorf("Deliveries with a cursor on a closed database = %v, want its error, not ErrNotFound", err)
			}
		})
	}
}
