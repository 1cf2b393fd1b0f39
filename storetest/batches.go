package storetest

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/ddr"
)

// BatchStore is what the batch suite exercises: billing.BatchStore, with billing.Store to set up
// organisations, sites and links.
type BatchStore interface {
	billing.Store
	billing.BatchStore
	billing.EventStore
}

// Batches is a fresh, empty store for one test of the batch suite.
type Batches struct {
	Store BatchStore
	// ExecuteBatchJobsFunc counts the billing.ExecuteBatchJob jobs in the store's queue for the batch.
	ExecuteBatchJobsFunc func(ctx context.Context, batchID string) (int, error)
	// WithdrawUnsentJobsFunc counts the billing.WithdrawUnsentJob jobs in the store's queue for
	// the link.
	WithdrawUnsentJobsFunc func(ctx context.Context, linkID string) (int, error)
}

// RunBatches runs the suite of billing.BatchStore. open returns a fresh, empty store for one test
// and closes it when the test ends; every subtest calls it, and they run in parallel.
func RunBatches(t *testing.T, open func(t *testing.T) Batches) {
	s := batchSuite{openFunc: open}
	t.Run("CreateBatch", s.createBatch)
	t.Run("BatchRows", s.batchRows)
	t.Run("ListBatches", s.listBatches)
	t.Run("PendingRows", s.pendingRows)
	t.Run("Execution", s.execution)
	t.Run("ExpireOverdueRows", s.expireOverdueRows)
	t.Run("ExpireBatch", s.expireBatch)
	t.Run("PurgeBatches", s.purgeBatches)
	t.Run("ReturnRows", s.returnRows)
	t.Run("RevokeLink", s.revokeLink)
}

type batchSuite struct {
	openFunc func(t *testing.T) Batches
}

// batchBundle is a fresh store holding one organisation and its site.
type batchBundle struct {
	Batches
	store BatchStore
	org   billing.Organisation
	site  billing.Site
}

func (s batchSuite) setup(t *testing.T) batchBundle {
	t.Helper()
	b := batchBundle{Batches: s.openFunc(t)}
	b.store = b.Store
	b.org = createOrganisation(t, b.store)
	b.site = createSite(t, b.store, b.org.ID)
	return b
}

// jobs is the number of execution jobs enqueued for the batch.
func (b batchBundle) jobs(t *testing.T, batchID string) int {
	t.Helper()
	n, err := b.ExecuteBatchJobsFunc(context.Background(), batchID)
	if err != nil {
		t.Fatalf("count execution jobs: %v", err)
	}
	return n
}

// withdrawals is the number of withdrawal jobs enqueued for the link's customer.
func (b batchBundle) withdrawals(t *testing.T, linkID string) int {
	t.Helper()
	n, err := b.WithdrawUnsentJobsFunc(context.Background(), linkID)
	if err != nil {
		t.Fatalf("count withdrawal jobs: %v", err)
	}
	return n
}

// newBatch is a batch of n debits as the Service builds it: submitted at `at`, row i of
// customer cust-(i%3) with amount 100+i cents.
func newBatch(siteID, ref string, n int, at time.Time) (billing.Batch, []billing.Row) {
	req := billing.BatchRequest{Reference: ref}
	for i := range n {
		req.Rows = append(req.Rows, billing.RowRequest{
			Reference:         fmt.Sprintf("row-%04d", i),
			CustomerReference: fmt.Sprintf("cust-%d", i%3),
			Amount:            int64(100 + i),
		})
	}
	return batchOf(siteID, req, at)
}

func batchOf(siteID string, req billing.BatchRequest, at time.Time) (billing.Batch, []billing.Row) {
	b := billing.Batch{
		ID:          billing.NewID("bat"),
		SiteID:      siteID,
		Reference:   req.Reference,
		Fingerprint: req.Fingerprint(),
		State:       billing.BatchAccepted,
		RowCount:    len(req.Rows),
		SubmittedAt: at,
		Deadline:    at.Add(billing.RowDeadline),
		RetainUntil: at.Add(billing.BatchRetention),
		Rail:        "sandbox", // the suite's sites' rail
	}
	rows := make([]billing.Row, len(req.Rows))
	for i, r := range req.Rows {
		b.TotalAmount += r.Amount
		rows[i] = billing.Row{
			ID:                billing.NewID("row"),
			BatchID:           b.ID,
			Index:             i,
			Reference:         r.Reference,
			CustomerReference: r.CustomerReference,
			Amount:            r.Amount,
			State:             billing.RowPending,
		}
	}
	return b, rows
}

// createBatch stores a new batch of n rows and fails the test unless it is created.
func createBatch(t *testing.T, store BatchStore, siteID, ref string, n int, at time.Time) (billing.Batch, []billing.Row) {
	t.Helper()
	b, rows := newBatch(siteID, ref, n, at)
	stored, created, err := store.CreateBatch(context.Background(), b, rows)
	wantErr(t, "CreateBatch "+ref, err, nil)
	if !created {
		t.Fatalf("CreateBatch %s: created false, want a new batch", ref)
	}
	wantEqual(t, "CreateBatch "+ref, stored, b)
	return b, rows
}

func getBatch(t *testing.T, store BatchStore, id string) billing.Batch {
	t.Helper()
	b, err := store.GetBatchByID(context.Background(), id)
	wantErr(t, "GetBatchByID", err, nil)
	return b
}

func batchRows(t *testing.T, store BatchStore, batchID string, state billing.RowState) []billing.Row {
	t.Helper()
	rows, err := store.BatchRows(context.Background(), batchID, state)
	wantErr(t, fmt.Sprintf("BatchRows(%q)", state), err, nil)
	return rows
}

func recordOutcomes(t *testing.T, store BatchStore, outcomes ...billing.RowOutcome) {
	t.Helper()
	wantErr(t, "RecordOutcomes", store.RecordOutcomes(context.Background(), outcomes), nil)
}

func markInProgress(t *testing.T, store BatchStore, rows ...billing.Row) {
	t.Helper()
	progress := make([]billing.RowProgress, len(rows))
	for i, r := range rows {
		progress[i] = billing.RowProgress{RowID: r.ID}
	}
	wantErr(t, "MarkInProgress", store.MarkInProgress(context.Background(), progress), nil)
}

// succeeded and failed are what a row looks like after its outcome is recorded.
func succeeded(r billing.Row, at time.Time) billing.Row {
	r.State, r.OutcomeAt = billing.RowSucceeded, at
	return r
}

func failed(r billing.Row, reason billing.FailureReason, at time.Time) billing.Row {
	r.State, r.FailureReason, r.OutcomeAt = billing.RowFailed, reason, at
	return r
}

func inProgress(r billing.Row) billing.Row {
	r.State = billing.RowInProgress
	return r
}

func (s batchSuite) createBatch(t *testing.T) {
	t.Run("a batch and its rows round-trip", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		// A time zone other than UTC and sub-millisecond-free times, as the Service's clock gives.
		at := time.Date(2026, 3, 1, 21, 0, 0, 987_000_000, time.FixedZone("AEDT", 11*60*60))
		batch, rows := newBatch(b.site.ID, "batch-1", 5, at)
		stored, created, err := b.store.CreateBatch(context.Background(), batch, rows)
		wantErr(t, "CreateBatch", err, nil)
		if !created {
			t.Fatal("CreateBatch: created false for a new reference")
		}
		wantEqual(t, "CreateBatch", stored, batch)
		got, err := b.store.GetBatch(context.Background(), b.site.ID, "batch-1")
		wantErr(t, "GetBatch", err, nil)
		wantEqual(t, "GetBatch", got, batch)
		if got.SubmittedAt.Location() != time.UTC || got.SubmittedAt.UnixMilli() != at.UnixMilli() {
			t.Fatalf("SubmittedAt = %s, want %s in UTC", got.SubmittedAt, at)
		}
		if string(got.Fingerprint) != string(batch.Fingerprint) || len(got.Fingerprint) != 32 {
			t.Fatalf("Fingerprint = %x, want %x", got.Fingerprint, batch.Fingerprint)
		}
		wantEqual(t, "GetBatchByID", getBatch(t, b.store, batch.ID), batch)
		wantEqual(t, "BatchRows", batchRows(t, b.store, batch.ID, ""), rows)
	})
	t.Run("a batch is on its site's rail as it stands when the batch is created, and stays there", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		ctx := context.Background()
		wantErr(t, "SetSiteRail", b.store.SetSiteRail(ctx, b.site.ID, "becs"), nil)
		batch, rows := newBatch(b.site.ID, "batch-1", 1, t0)
		batch.Rail = "" // the Service leaves it to the store
		stored, _, err := b.store.CreateBatch(ctx, batch, rows)
		wantErr(t, "CreateBatch", err, nil)
		if stored.Rail != "becs" {
			t.Fatalf("CreateBatch stored the batch on %q, want its site's becs", stored.Rail)
		}
		wantErr(t, "SetSiteRail", b.store.SetSiteRail(ctx, b.site.ID, "sandbox"), nil)
		if got := getBatch(t, b.store, batch.ID); got.Rail != "becs" {
			t.Fatalf("after its site moved to the sandbox, the batch is on %q, want becs still", got.Rail)
		}
	})
	t.Run("an unknown batch is not found", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		_, err := b.store.GetBatch(context.Background(), b.site.ID, "batch-1")
		wantErr(t, "GetBatch", err, billing.ErrNotFound)
		_, err = b.store.GetBatchByID(context.Background(), "bat_missing")
		wantErr(t, "GetBatchByID", err, billing.ErrNotFound)
	})
	t.Run("a new batch enqueues exactly one execution job", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		first, _ := createBatch(t, b.store, b.site.ID, "batch-1", 2, t0)
		second, _ := createBatch(t, b.store, b.site.ID, "batch-2", 2, t0)
		if n := b.jobs(t, first.ID); n != 1 {
			t.Fatalf("%d execution jobs for the first batch, want 1", n)
		}
		if n := b.jobs(t, second.ID); n != 1 {
			t.Fatalf("%d execution jobs for the second batch, want 1", n)
		}
	})
	t.Run("a retained reference returns the stored batch and writes nothing", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		first, rows := createBatch(t, b.store, b.site.ID, "batch-1", 3, t0)
		// A different batch with the same reference, a millisecond before the first is released.
		again, againRows := newBatch(b.site.ID, "batch-1", 4, first.RetainUntil.Add(-time.Millisecond))
		stored, created, err := b.store.CreateBatch(context.Background(), again, againRows)
		wantErr(t, "CreateBatch again", err, nil)
		if created {
			t.Fatal("CreateBatch again: created true for a retained reference")
		}
		wantEqual(t, "CreateBatch again", stored, first)
		_, err = b.store.GetBatchByID(context.Background(), again.ID)
		wantErr(t, "GetBatchByID of the refused batch", err, billing.ErrNotFound)
		if got := batchRows(t, b.store, again.ID, ""); len(got) != 0 {
			t.Fatalf("the refused batch has %d rows stored, want none", len(got))
		}
		wantEqual(t, "BatchRows of the first batch", batchRows(t, b.store, first.ID, ""), rows)
		if n := b.jobs(t, again.ID); n != 0 {
			t.Fatalf("%d execution jobs for the refused batch, want 0", n)
		}
		if n := b.jobs(t, first.ID); n != 1 {
			t.Fatalf("%d execution jobs for the first batch, want 1", n)
		}
	})
	t.Run("a reference past its retention is used again and the old batch removed", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		old, _ := createBatch(t, b.store, b.site.ID, "batch-1", 3, t0)
		renewed, rows := createBatch(t, b.store, b.site.ID, "batch-1", 2, old.RetainUntil)
		got, err := b.store.GetBatch(context.Background(), b.site.ID, "batch-1")
		wantErr(t, "GetBatch", err, nil)
		wantEqual(t, "GetBatch", got, renewed)
		_, err = b.store.GetBatchByID(context.Background(), old.ID)
		wantErr(t, "GetBatchByID of the old batch", err, billing.ErrNotFound)
		if got := batchRows(t, b.store, old.ID, ""); len(got) != 0 {
			t.Fatalf("the old batch still has %d rows, want none", len(got))
		}
		wantEqual(t, "BatchRows", batchRows(t, b.store, renewed.ID, ""), rows)
		if n := b.jobs(t, renewed.ID); n != 1 {
			t.Fatalf("%d execution jobs for the new batch, want 1", n)
		}
	})
	t.Run("concurrent identical submissions create one batch", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		const n = 10
		req := billing.BatchRequest{Reference: "batch-1", Rows: []billing.RowRequest{
			{Reference: "r1", CustomerReference: "cust-1", Amount: 100},
			{Reference: "r2", CustomerReference: "cust-2", Amount: 200},
		}}
		stored := make([]billing.Batch, n)
		created := make([]bool, n)
		errs := make([]error, n)
		concurrently(n, func(i int) {
			batch, rows := batchOf(b.site.ID, req, t0.Add(time.Duration(i)*time.Millisecond))
			stored[i], created[i], errs[i] = b.store.CreateBatch(context.Background(), batch, rows)
		})
		creators := 0
		for i := range n {
			wantErr(t, fmt.Sprintf("CreateBatch #%d", i), errs[i], nil)
			if created[i] {
				creators++
			}
			wantEqual(t, fmt.Sprintf("CreateBatch #%d", i), stored[i], stored[0])
		}
		if creators != 1 {
			t.Fatalf("%d calls created the batch, want exactly 1", creators)
		}
		if got := batchRows(t, b.store, stored[0].ID, ""); len(got) != 2 {
			t.Fatalf("the batch has %d rows, want 2", len(got))
		}
		if n := b.jobs(t, stored[0].ID); n != 1 {
			t.Fatalf("%d execution jobs, want 1", n)
		}
	})
	t.Run("the same reference on another site is another batch", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := createSite(t, b.store, b.org.ID)
		first, _ := createBatch(t, b.store, b.site.ID, "batch-1", 2, t0)
		second, _ := createBatch(t, b.store, other.ID, "batch-1", 3, t0)
		got, err := b.store.GetBatch(context.Background(), other.ID, "batch-1")
		wantErr(t, "GetBatch of the other site", err, nil)
		wantEqual(t, "GetBatch of the other site", got, second)
		got, err = b.store.GetBatch(context.Background(), b.site.ID, "batch-1")
		wantErr(t, "GetBatch", err, nil)
		wantEqual(t, "GetBatch", got, first)
	})
	t.Run("references are case-sensitive", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		createBatch(t, b.store, b.site.ID, "batch-a", 1, t0)
		createBatch(t, b.store, b.site.ID, "BATCH-A", 1, t0)
	})
	t.Run("a batch whose rows cannot be stored leaves nothing behind", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		batch, rows := newBatch(b.site.ID, "batch-1", 3, t0)
		rows[2].Reference = rows[0].Reference // the database refuses a repeated rowReference
		_, _, err := b.store.CreateBatch(context.Background(), batch, rows)
		if err == nil {
			t.Fatal("CreateBatch with a repeated rowReference succeeded")
		}
		_, err = b.store.GetBatchByID(context.Background(), batch.ID)
		wantErr(t, "GetBatchByID", err, billing.ErrNotFound)
		if got := batchRows(t, b.store, batch.ID, ""); len(got) != 0 {
			t.Fatalf("%d rows stored, want none", len(got))
		}
		if n := b.jobs(t, batch.ID); n != 0 {
			t.Fatalf("%d execution jobs, want 0", n)
		}
		// The reference is still free.
		createBatch(t, b.store, b.site.ID, "batch-1", 3, t0)
	})
	t.Run("a batch of an unknown site is not found and enqueues nothing", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		batch, rows := newBatch("site_missing", "batch-1", 1, t0)
		_, _, err := b.store.CreateBatch(context.Background(), batch, rows)
		wantErr(t, "CreateBatch", err, billing.ErrNotFound)
		if n := b.jobs(t, batch.ID); n != 0 {
			t.Fatalf("%d execution jobs, want 0", n)
		}
	})
	t.Run("a 1000-row batch round-trips", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		batch, rows := newBatch(b.site.ID, "batch-big", billing.MaxBatchRows, t0)
		start := time.Now()
		_, created, err := b.store.CreateBatch(context.Background(), batch, rows)
		elapsed := time.Since(start)
		wantErr(t, "CreateBatch", err, nil)
		if !created {
			t.Fatal("CreateBatch: created false")
		}
		t.Logf("CreateBatch of %d rows took %s", len(rows), elapsed)
		wantEqual(t, "BatchRows", batchRows(t, b.store, batch.ID, ""), rows)

		markInProgress(t, b.store, rows...)
		outcomes := make([]billing.RowOutcome, len(rows))
		want := make([]billing.Row, len(rows))
		for i, r := range rows {
			at := t0.Add(time.Duration(i) * time.Millisecond)
			reason := []billing.FailureReason{"", billing.FailureInsufficientFunds, billing.FailureAccountClosed}[i%3]
			outcomes[i] = billing.RowOutcome{RowID: r.ID, Failure: reason, At: at}
			if reason == "" {
				want[i] = succeeded(r, at)
			} else {
				want[i] = failed(r, reason, at)
			}
		}
		start = time.Now()
		recordOutcomes(t, b.store, outcomes...)
		t.Logf("RecordOutcomes of %d rows took %s", len(rows), time.Since(start))
		wantEqual(t, "BatchRows after the outcomes", batchRows(t, b.store, batch.ID, ""), want)
		completed, err := b.store.CompleteBatch(context.Background(), batch.ID, t0.Add(time.Hour))
		wantErr(t, "CompleteBatch", err, nil)
		if !completed {
			t.Fatal("CompleteBatch = false with every row terminal")
		}
	})
}

func (s batchSuite) batchRows(t *testing.T) {
	t.Run("rows come in submission order, filtered by state", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		batch, rows := createBatch(t, b.store, b.site.ID, "batch-1", 6, t0)
		at := t0.Add(time.Minute)
		markInProgress(t, b.store, rows[1], rows[2], rows[4])
		recordOutcomes(t, b.store,
			billing.RowOutcome{RowID: rows[2].ID, At: at},
			billing.RowOutcome{RowID: rows[3].ID, Failure: billing.FailureCustomerNotActive, At: at},
			billing.RowOutcome{RowID: rows[5].ID, At: at})
		want := map[billing.RowState][]billing.Row{
			billing.RowPending:    {rows[0]},
			billing.RowInProgress: {inProgress(rows[1]), inProgress(rows[4])},
			billing.RowSucceeded:  {succeeded(rows[2], at), succeeded(rows[5], at)},
			billing.RowFailed:     {failed(rows[3], billing.FailureCustomerNotActive, at)},
		}
		for _, state := range billing.RowStates {
			wantEqual(t, fmt.Sprintf("BatchRows(%s)", state), batchRows(t, b.store, batch.ID, state), want[state])
		}
		all := []billing.Row{want[billing.RowPending][0], want[billing.RowInProgress][0], want[billing.RowSucceeded][0],
			want[billing.RowFailed][0], want[billing.RowInProgress][1], want[billing.RowSucceeded][1]}
		wantEqual(t, "BatchRows", batchRows(t, b.store, batch.ID, ""), all)
	})
	t.Run("a state without rows gives none", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		batch, _ := createBatch(t, b.store, b.site.ID, "batch-1", 2, t0)
		if got := batchRows(t, b.store, batch.ID, billing.RowFailed); len(got) != 0 {
			t.Fatalf("BatchRows(failed) = %+v, want none", got)
		}
	})
	t.Run("the summary counts and sums rows per state", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		batch, rows := createBatch(t, b.store, b.site.ID, "batch-1", 5, t0) // amounts 100 … 104
		got, err := b.store.BatchSummary(context.Background(), batch.ID)
		wantErr(t, "BatchSummary", err, nil)
		wantEqual(t, "BatchSummary of a new batch", got, billing.BatchSummary{billing.RowPending: {Count: 5, Amount: 510}})

		markInProgress(t, b.store, rows[0], rows[1])
		recordOutcomes(t, b.store,
			billing.RowOutcome{RowID: rows[1].ID, At: t0},
			billing.RowOutcome{RowID: rows[2].ID, Failure: billing.FailureInsufficientFunds, At: t0},
			billing.RowOutcome{RowID: rows[3].ID, Failure: billing.FailureAccountClosed, At: t0})
		got, err = b.store.BatchSummary(context.Background(), batch.ID)
		wantErr(t, "BatchSummary", err, nil)
		wantEqual(t, "BatchSummary", got, billing.BatchSummary{
			billing.RowPending:    {Count: 1, Amount: 104},
			billing.RowInProgress: {Count: 1, Amount: 100},
			billing.RowSucceeded:  {Count: 1, Amount: 101},
			billing.RowFailed:     {Count: 2, Amount: 205},
		})
	})
	t.Run("the summary of an unknown batch is empty", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		got, err := b.store.BatchSummary(context.Background(), "bat_missing")
		wantErr(t, "BatchSummary", err, nil)
		if len(got) != 0 {
			t.Fatalf("BatchSummary = %v, want empty", got)
		}
	})
}

func (s batchSuite) listBatches(t *testing.T) {
	list := func(t *testing.T, store BatchStore, siteID string, f billing.BatchFilter) []string {
		t.Helper()
		batches, err := store.ListBatches(context.Background(), siteID, f)
		wantErr(t, "ListBatches", err, nil)
		ids := make([]string, len(batches))
		for i, b := range batches {
			ids[i] = b.ID
		}
		return ids
	}
	t.Run("batches come newest first, then by id descending, page by page", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		var all []billing.Batch
		// Three pairs submitted in the same millisecond, so the id breaks the ties.
		for i := range 6 {
			batch, _ := createBatch(t, b.store, b.site.ID, fmt.Sprintf("batch-%d", i), 1, t0.Add(time.Duration(i/2)*time.Second))
			all = append(all, batch)
		}
		other := createSite(t, b.store, b.org.ID)
		createBatch(t, b.store, other.ID, "batch-other", 1, t0.Add(time.Hour))
		slices.SortFunc(all, func(x, y billing.Batch) int {
			if c := y.SubmittedAt.Compare(x.SubmittedAt); c != 0 {
				return c
			}
			return compareBytes(y.ID, x.ID)
		})
		var want []string
		for _, batch := range all {
			want = append(want, batch.ID)
		}

		first, err := b.store.ListBatches(context.Background(), b.site.ID, billing.BatchFilter{Limit: 10})
		wantErr(t, "ListBatches", err, nil)
		wantEqual(t, "ListBatches", first, all)

		var paged []string
		f := billing.BatchFilter{Limit: 2}
		for range 4 {
			page, err := b.store.ListBatches(context.Background(), b.site.ID, f)
			wantErr(t, "ListBatches", err, nil)
			if len(page) > f.Limit {
				t.Fatalf("page of %d batches, limit %d", len(page), f.Limit)
			}
			if len(page) == 0 {
				break
			}
			for _, batch := range page {
				paged = append(paged, batch.ID)
			}
			last := page[len(page)-1]
			f.AfterSubmittedAt, f.AfterID = last.SubmittedAt, last.ID
		}
		wantEqual(t, "batches page by page", paged, want)
	})
	t.Run("a site without batches lists none", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		if got := list(t, b.store, b.site.ID, billing.BatchFilter{Limit: 10}); len(got) != 0 {
			t.Fatalf("ListBatches = %q, want none", got)
		}
	})
	t.Run("the cursor excludes its own batch and those before it", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		older, _ := createBatch(t, b.store, b.site.ID, "batch-1", 1, t0)
		newer, _ := createBatch(t, b.store, b.site.ID, "batch-2", 1, t0.Add(time.Millisecond))
		got := list(t, b.store, b.site.ID, billing.BatchFilter{AfterSubmittedAt: newer.SubmittedAt, AfterID: newer.ID, Limit: 10})
		wantEqual(t, "after the newer", got, []string{older.ID})
		got = list(t, b.store, b.site.ID, billing.BatchFilter{AfterSubmittedAt: older.SubmittedAt, AfterID: older.ID, Limit: 10})
		if len(got) != 0 {
			t.Fatalf("after the oldest = %q, want none", got)
		}
	})
}

// compareBytes orders strings byte by byte, as the ids' order in both databases (ids are
// lowercase ASCII).
func compareBytes(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s batchSuite) pendingRows(t *testing.T) {
	t.Run("each pending row comes with its customer's current link at the batch's site and its agreed terms, and LinkedCustomers agrees", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		store := b.store
		other := createSite(t, store, b.org.ID)

		// linked: a linked link. invited: an open invitation. unknown: no link at all.
		// revoked: linked then revoked. elsewhere: linked at the other site only. relinked: a
		// revoked link followed by a new linked one. expired: an invitation that expired.
		// termsUnknown: linked without the terms agreed (as before they were kept).
		linkCustomer(t, store, createLink(t, store, b.site.ID, "linked", t0).ID, t0)
		createLink(t, store, b.site.ID, "invited", t0)
		l := linkCustomer(t, store, createLink(t, store, b.site.ID, "revoked", t0).ID, t0)
		revokeLink(t, store, l.ID, t0.Add(time.Minute))
		linkCustomer(t, store, createLink(t, store, other.ID, "elsewhere", t0).ID, t0)
		l = linkCustomer(t, store, createLink(t, store, b.site.ID, "relinked", t0).ID, t0)
		revokeLink(t, store, l.ID, t0.Add(time.Minute))
		linkCustomer(t, store, createLink(t, store, b.site.ID, "relinked", t0.Add(time.Hour)).ID, t0.Add(time.Hour))
		createLink(t, store, b.site.ID, "expired", t0.Add(-2*ttl))
		if _, err := store.LinkCustomer(context.Background(), createLink(t, store, b.site.ID, "termsUnknown", t0).ID, customer, ddr.Terms{}, "", t0); err != nil {
			t.Fatal(err)
		}

		customers := []string{"linked", "invited", "unknown", "revoked", "elsewhere", "relinked", "expired", "termsUnknown", "linked"}
		req := billing.BatchRequest{Reference: "batch-1"}
		for i, c := range customers {
			req.Rows = append(req.Rows, billing.RowRequest{Reference: fmt.Sprintf("r%d", i), CustomerReference: c, Amount: 100})
		}
		batch, rows := batchOf(b.site.ID, req, t0.Add(2*time.Hour))
		if _, _, err := store.CreateBatch(context.Background(), batch, rows); err != nil {
			t.Fatalf("CreateBatch: %v", err)
		}
		// The last row is no longer pending.
		markInProgress(t, store, rows[8])

		got, err := store.PendingRows(context.Background(), batch.ID)
		wantErr(t, "PendingRows", err, nil)
		if len(got) != 8 {
			t.Fatalf("PendingRows gave %d rows, want the 8 pending", len(got))
		}
		for i, p := range got {
			wantEqual(t, "PendingRows row", p.Row, rows[i])
			wantLinked := customers[i] == "linked" || customers[i] == "relinked" || customers[i] == "termsUnknown"
			if p.Linked != wantLinked {
				t.Errorf("row of customer %s: Linked = %v, want %v", customers[i], p.Linked, wantLinked)
			}
			if wantLinked && p.Customer != customer {
				t.Errorf("row of customer %s: Customer = %+v, want %+v", customers[i], p.Customer, customer)
			}
			wantTerms := terms
			if customers[i] == "termsUnknown" {
				wantTerms = ddr.Terms{}
			}
			if wantLinked && p.Terms != wantTerms {
				t.Errorf("row of customer %s: Terms = %+v, want %+v", customers[i], p.Terms, wantTerms)
			}
			if (customers[i] == "unknown" || customers[i] == "invited") && p.Customer != (billing.Customer{}) {
				t.Errorf("row of customer %s: Customer = %+v, want none", customers[i], p.Customer)
			}
		}
		linked, err := store.LinkedCustomers(context.Background(), b.site.ID, customers)
		wantErr(t, "LinkedCustomers", err, nil)
		wantEqual(t, "LinkedCustomers", linked, map[string]ddr.Terms{"linked": terms, "relinked": terms, "termsUnknown": {}})
		none, err := store.LinkedCustomers(context.Background(), b.site.ID, []string{"unknown"})
		wantErr(t, "LinkedCustomers of nobody linked", err, nil)
		if len(none) != 0 {
			t.Errorf("LinkedCustomers of nobody linked = %v, want none", none)
		}
	})
	t.Run("a batch without pending rows gives none", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		batch, rows := createBatch(t, b.store, b.site.ID, "batch-1", 2, t0)
		markInProgress(t, b.store, rows...)
		got, err := b.store.PendingRows(context.Background(), batch.ID)
		wantErr(t, "PendingRows", err, nil)
		if len(got) != 0 {
			t.Fatalf("PendingRows = %+v, want none", got)
		}
	})
}

func (s batchSuite) execution(t *testing.T) {
	t.Run("starting moves an accepted batch to inProgress, and nothing else", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		batch, rows := createBatch(t, b.store, b.site.ID, "batch-1", 1, t0)
		wantErr(t, "StartBatch", b.store.StartBatch(context.Background(), batch.ID), nil)
		want := batch
		want.State = billing.BatchInProgress
		wantEqual(t, "after StartBatch", getBatch(t, b.store, batch.ID), want)
		wantErr(t, "StartBatch again", b.store.StartBatch(context.Background(), batch.ID), nil)
		wantEqual(t, "after StartBatch again", getBatch(t, b.store, batch.ID), want)

		recordOutcomes(t, b.store, billing.RowOutcome{RowID: rows[0].ID, At: t0})
		if _, err := b.store.CompleteBatch(context.Background(), batch.ID, t0); err != nil {
			t.Fatalf("CompleteBatch: %v", err)
		}
		wantErr(t, "StartBatch of a completed batch", b.store.StartBatch(context.Background(), batch.ID), nil)
		if got := getBatch(t, b.store, batch.ID); got.State != billing.BatchCompleted {
			t.Fatalf("state after StartBatch of a completed batch = %s, want completed", got.State)
		}
	})
	t.Run("a customer's unsent rows are the pending rows of its batches, started or not, before their deadline", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		ctx := context.Background()
		started, rows := createBatch(t, b.store, b.site.ID, "started", 6, t0) // cust-0: rows 0 and 3
		wantErr(t, "StartBatch", b.store.StartBatch(ctx, started.ID), nil)
		markInProgress(t, b.store, rows[3])
		// Not started: nothing sent yet, but its first step would send it (cust-0: row 0).
		accepted, acceptedRows := createBatch(t, b.store, b.site.ID, "accepted", 3, t0.Add(time.Hour))
		done, doneRows := createBatch(t, b.store, b.site.ID, "done", 3, t0) // completed: none pending
		recordOutcomes(t, b.store, billing.RowOutcome{RowID: doneRows[0].ID, At: t0}, billing.RowOutcome{RowID: doneRows[1].ID, At: t0},
			billing.RowOutcome{RowID: doneRows[2].ID, At: t0})
		if _, err := b.store.CompleteBatch(ctx, done.ID, t0); err != nil {
			t.Fatalf("CompleteBatch: %v", err)
		}
		other := createSite(t, b.store, b.org.ID)
		elsewhere, _ := createBatch(t, b.store, other.ID, "started", 3, t0)
		wantErr(t, "StartBatch", b.store.StartBatch(ctx, elsewhere.ID), nil)

		unsent := func(at time.Time) []billing.RowOnRail {
			t.Helper()
			got, err := b.store.UnsentRowsOfCustomer(ctx, b.site.ID, "cust-0", at)
			wantErr(t, "UnsentRowsOfCustomer", err, nil)
			slices.SortFunc(got, func(x, y billing.RowOnRail) int { return cmp.Compare(x.RowID, y.RowID) })
			return got
		}
		ofAccepted := billing.RowOnRail{RowID: acceptedRows[0].ID, Rail: accepted.Rail, BatchSubmittedAt: accepted.SubmittedAt}
		both := []billing.RowOnRail{{RowID: rows[0].ID, Rail: started.Rail, BatchSubmittedAt: started.SubmittedAt}, ofAccepted}
		slices.SortFunc(both, func(x, y billing.RowOnRail) int { return cmp.Compare(x.RowID, y.RowID) })
		wantEqual(t, "before the deadline", unsent(t0), both)
		wantEqual(t, "a moment before the deadline", unsent(started.Deadline.Add(-time.Millisecond)), both)
		// At its deadline the row is left to expire, whatever a withdrawal would say of it.
		wantEqual(t, "at the started batch's deadline", unsent(started.Deadline), []billing.RowOnRail{ofAccepted})
		if got := unsent(accepted.Deadline); len(got) != 0 {
			t.Errorf("at the deadlines: %v, want none", got)
		}
	})
	t.Run("only pending rows move to inProgress", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		batch, rows := createBatch(t, b.store, b.site.ID, "batch-1", 3, t0)
		recordOutcomes(t, b.store, billing.RowOutcome{RowID: rows[2].ID, Failure: billing.FailureCustomerNotActive, At: t0})
		markInProgress(t, b.store, rows[0], rows[2])
		markInProgress(t, b.store, rows[0]) // again: no change
		wantErr(t, "MarkInProgress of nothing", b.store.MarkInProgress(context.Background(), nil), nil)
		want := []billing.Row{inProgress(rows[0]), rows[1], failed(rows[2], billing.FailureCustomerNotActive, t0)}
		wantEqual(t, "BatchRows", batchRows(t, b.store, batch.ID, ""), want)
		ids, err := b.store.InProgressRows(context.Background(), batch.ID)
		wantErr(t, "InProgressRows", err, nil)
		wantEqual(t, "InProgressRows", ids, []string{rows[0].ID})
	})
	t.Run("outcomes move open rows and keep the first outcome of a terminal row", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		batch, rows := createBatch(t, b.store, b.site.ID, "batch-1", 4, t0)
		markInProgress(t, b.store, rows[0], rows[1])
		first, later := t0.Add(time.Minute), t0.Add(time.Hour)
		outcomes := []billing.RowOutcome{
			{RowID: rows[0].ID, At: first},                                            // inProgress → succeeded
			{RowID: rows[1].ID, Failure: billing.FailureInsufficientFunds, At: first}, // inProgress → failed
			{RowID: rows[2].ID, Failure: billing.FailureCustomerNotActive, At: first}, // pending → failed
			{RowID: "row_missing", At: first},                                         // ignored
		}
		recordOutcomes(t, b.store, outcomes...)
		want := []billing.Row{
			succeeded(rows[0], first),
			failed(rows[1], billing.FailureInsufficientFunds, first),
			failed(rows[2], billing.FailureCustomerNotActive, first),
			rows[3],
		}
		wantEqual(t, "BatchRows", batchRows(t, b.store, batch.ID, ""), want)

		recordOutcomes(t, b.store, outcomes...) // a repeated step changes nothing
		wantEqual(t, "BatchRows after repeating", batchRows(t, b.store, batch.ID, ""), want)

		recordOutcomes(t, b.store, // different outcomes for terminal rows are ignored
			billing.RowOutcome{RowID: rows[0].ID, Failure: billing.FailureExpired, At: later},
			billing.RowOutcome{RowID: rows[1].ID, At: later},
			billing.RowOutcome{RowID: rows[2].ID, Failure: billing.FailureAccountClosed, At: later})
		wantEqual(t, "BatchRows after other outcomes", batchRows(t, b.store, batch.ID, ""), want)
		wantErr(t, "RecordOutcomes of nothing", b.store.RecordOutcomes(context.Background(), nil), nil)
		if ids, err := b.store.InProgressRows(context.Background(), batch.ID); err != nil || len(ids) != 0 {
			t.Fatalf("InProgressRows = %q, %v; want none", ids, err)
		}
	})
	t.Run("a batch completes only when every row is terminal", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		batch, rows := createBatch(t, b.store, b.site.ID, "batch-1", 3, t0)
		markInProgress(t, b.store, rows[0])
		recordOutcomes(t, b.store, billing.RowOutcome{RowID: rows[1].ID, At: t0})
		completed, err := b.store.CompleteBatch(context.Background(), batch.ID, t0.Add(time.Minute))
		wantErr(t, "CompleteBatch", err, nil)
		if completed {
			t.Fatal("CompleteBatch = true with a pending and an inProgress row")
		}
		if got := getBatch(t, b.store, batch.ID); got.State != billing.BatchAccepted || !got.CompletedAt.IsZero() {
			t.Fatalf("batch after refused completion: %+v", got)
		}
		recordOutcomes(t, b.store, billing.RowOutcome{RowID: rows[2].ID, At: t0})
		if completed, err := b.store.CompleteBatch(context.Background(), batch.ID, t0.Add(time.Minute)); err != nil || completed {
			t.Fatalf("CompleteBatch with an inProgress row = %v, %v; want false", completed, err)
		}

		recordOutcomes(t, b.store, billing.RowOutcome{RowID: rows[0].ID, Failure: billing.FailureAccountClosed, At: t0})
		at := t0.Add(2 * time.Minute)
		completed, err = b.store.CompleteBatch(context.Background(), batch.ID, at)
		wantErr(t, "CompleteBatch", err, nil)
		if !completed {
			t.Fatal("CompleteBatch = false with every row terminal")
		}
		want := batch
		want.State, want.CompletedAt = billing.BatchCompleted, at
		wantEqual(t, "completed batch", getBatch(t, b.store, batch.ID), want)

		completed, err = b.store.CompleteBatch(context.Background(), batch.ID, at.Add(time.Hour))
		wantErr(t, "CompleteBatch again", err, nil)
		if !completed {
			t.Fatal("CompleteBatch again = false for a completed batch")
		}
		wantEqual(t, "completed batch after completing again", getBatch(t, b.store, batch.ID), want)
	})
	t.Run("completing an unknown batch is not found", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		_, err := b.store.CompleteBatch(context.Background(), "bat_missing", t0)
		wantErr(t, "CompleteBatch", err, billing.ErrNotFound)
	})
}

func (s batchSuite) expireOverdueRows(t *testing.T) {
	t.Run("open rows of batches past their deadline fail as expired and the batches complete", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		overdue, rows := createBatch(t, b.store, b.site.ID, "overdue", 3, t0)
		markInProgress(t, b.store, rows[1])
		recordOutcomes(t, b.store, billing.RowOutcome{RowID: rows[2].ID, At: t0.Add(time.Minute)})
		// Due exactly now: its deadline is reached.
		now := overdue.Deadline
		due, dueRows := createBatch(t, b.store, b.site.ID, "due", 1, t0)
		// Not yet due.
		early, earlyRows := createBatch(t, b.store, b.site.ID, "early", 2, t0.Add(time.Millisecond))

		n, err := b.store.ExpireOverdueRows(context.Background(), now)
		wantErr(t, "ExpireOverdueRows", err, nil)
		if n != 3 {
			t.Fatalf("ExpireOverdueRows = %d, want 3 (2 of overdue, 1 of due)", n)
		}
		wantEqual(t, "rows of the overdue batch", batchRows(t, b.store, overdue.ID, ""), []billing.Row{
			failed(rows[0], billing.FailureExpired, now),
			failed(rows[1], billing.FailureExpired, now),
			succeeded(rows[2], t0.Add(time.Minute)),
		})
		wantEqual(t, "rows of the due batch", batchRows(t, b.store, due.ID, ""), []billing.Row{failed(dueRows[0], billing.FailureExpired, now)})
		for _, batch := range []billing.Batch{overdue, due} {
			want := batch
			want.State, want.CompletedAt = billing.BatchCompleted, now
			wantEqual(t, "batch past its deadline", getBatch(t, b.store, batch.ID), want)
		}
		wantEqual(t, "batch before its deadline", getBatch(t, b.store, early.ID), early)
		wantEqual(t, "rows before the deadline", batchRows(t, b.store, early.ID, ""), earlyRows)

		n, err = b.store.ExpireOverdueRows(context.Background(), now)
		wantErr(t, "ExpireOverdueRows again", err, nil)
		if n != 0 {
			t.Fatalf("ExpireOverdueRows again = %d, want 0", n)
		}
	})
	t.Run("the batches past their deadline are listed, the rails of those started to be asked first", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		ctx := context.Background()
		started, _ := createBatch(t, b.store, b.site.ID, "started", 1, t0)
		wantErr(t, "StartBatch", b.store.StartBatch(ctx, started.ID), nil)
		later, _ := createBatch(t, b.store, b.site.ID, "later", 1, t0.Add(time.Second))
		wantErr(t, "StartBatch", b.store.StartBatch(ctx, later.ID), nil)
		notStarted, _ := createBatch(t, b.store, b.site.ID, "not started", 1, t0) // accepted: none of its rows reached a rail
		done, rows := createBatch(t, b.store, b.site.ID, "completed", 1, t0)
		wantErr(t, "StartBatch", b.store.StartBatch(ctx, done.ID), nil)
		recordOutcomes(t, b.store, billing.RowOutcome{RowID: rows[0].ID, At: t0})
		if _, err := b.store.CompleteBatch(ctx, done.ID, t0); err != nil {
			t.Fatalf("CompleteBatch: %v", err)
		}
		ids := func(bs []billing.Batch) []string {
			var ids []string
			for _, b := range bs {
				ids = append(ids, b.ID)
			}
			return ids
		}
		first := []string{started.ID, notStarted.ID}
		slices.Sort(first) // one deadline: by id
		got, err := b.store.OverdueBatches(ctx, started.Deadline)
		wantErr(t, "OverdueBatches", err, nil)
		if !slices.Equal(ids(got), first) {
			t.Fatalf("OverdueBatches at the first deadline = %+v, want the started batch and the one not started, not the completed one", got)
		}
		got, err = b.store.OverdueBatches(ctx, later.Deadline)
		wantErr(t, "OverdueBatches", err, nil)
		if !slices.Equal(ids(got), append(first, later.ID)) {
			t.Fatalf("OverdueBatches at the later deadline = %+v, want the later batch last, oldest deadline first", got)
		}
	})
	t.Run("a completed batch past its deadline is left as it is", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		batch, rows := createBatch(t, b.store, b.site.ID, "batch-1", 1, t0)
		recordOutcomes(t, b.store, billing.RowOutcome{RowID: rows[0].ID, At: t0})
		if _, err := b.store.CompleteBatch(context.Background(), batch.ID, t0.Add(time.Second)); err != nil {
			t.Fatalf("CompleteBatch: %v", err)
		}
		want := getBatch(t, b.store, batch.ID)
		n, err := b.store.ExpireOverdueRows(context.Background(), batch.Deadline.Add(time.Hour))
		wantErr(t, "ExpireOverdueRows", err, nil)
		if n != 0 {
			t.Fatalf("ExpireOverdueRows = %d, want 0", n)
		}
		wantEqual(t, "completed batch", getBatch(t, b.store, batch.ID), want)
	})
	t.Run("a batch past its deadline without open rows completes", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		batch, rows := createBatch(t, b.store, b.site.ID, "batch-1", 1, t0)
		recordOutcomes(t, b.store, billing.RowOutcome{RowID: rows[0].ID, At: t0})
		n, err := b.store.ExpireOverdueRows(context.Background(), batch.Deadline)
		wantErr(t, "ExpireOverdueRows", err, nil)
		if n != 0 {
			t.Fatalf("ExpireOverdueRows = %d, want 0", n)
		}
		if got := getBatch(t, b.store, batch.ID); got.State != billing.BatchCompleted || !got.CompletedAt.Equal(batch.Deadline) {
			t.Fatalf("batch = %+v, want completed at its deadline", got)
		}
	})
}

func (s batchSuite) expireBatch(t *testing.T) {
	t.Run("open rows of that batch alone fail as expired and it completes", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		batch, rows := createBatch(t, b.store, b.site.ID, "batch-1", 3, t0)
		markInProgress(t, b.store, rows[1])
		recordOutcomes(t, b.store, billing.RowOutcome{RowID: rows[2].ID, Failure: billing.FailureAccountClosed, At: t0})
		other, otherRows := createBatch(t, b.store, b.site.ID, "batch-2", 1, t0)
		at := t0.Add(time.Minute)

		n, err := b.store.ExpireBatch(context.Background(), batch.ID, at)
		wantErr(t, "ExpireBatch", err, nil)
		if n != 2 {
			t.Fatalf("ExpireBatch = %d, want 2", n)
		}
		wantEqual(t, "rows of the batch", batchRows(t, b.store, batch.ID, ""), []billing.Row{
			failed(rows[0], billing.FailureExpired, at),
			failed(rows[1], billing.FailureExpired, at),
			failed(rows[2], billing.FailureAccountClosed, t0),
		})
		want := batch
		want.State, want.CompletedAt = billing.BatchCompleted, at
		wantEqual(t, "expired batch", getBatch(t, b.store, batch.ID), want)
		wantEqual(t, "other batch", getBatch(t, b.store, other.ID), other)
		wantEqual(t, "rows of the other batch", batchRows(t, b.store, other.ID, ""), otherRows)

		n, err = b.store.ExpireBatch(context.Background(), batch.ID, at.Add(time.Minute))
		wantErr(t, "ExpireBatch again", err, nil)
		if n != 0 {
			t.Fatalf("ExpireBatch again = %d, want 0", n)
		}
		wantEqual(t, "batch expired again", getBatch(t, b.store, batch.ID), want)
	})
}

func (s batchSuite) purgeBatches(t *testing.T) {
	t.Run("batches at or past their retention are removed with their rows", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		old, _ := createBatch(t, b.store, b.site.ID, "old", 2, t0)
		due, _ := createBatch(t, b.store, b.site.ID, "due", 1, t0.Add(time.Minute))
		kept, keptRows := createBatch(t, b.store, b.site.ID, "kept", 2, t0.Add(time.Minute+time.Millisecond))

		n, err := b.store.PurgeBatches(context.Background(), due.RetainUntil)
		wantErr(t, "PurgeBatches", err, nil)
		if n != 2 {
			t.Fatalf("PurgeBatches = %d, want 2", n)
		}
		for _, batch := range []billing.Batch{old, due} {
			_, err := b.store.GetBatchByID(context.Background(), batch.ID)
			wantErr(t, "GetBatchByID of a purged batch", err, billing.ErrNotFound)
			if got := batchRows(t, b.store, batch.ID, ""); len(got) != 0 {
				t.Fatalf("a purged batch has %d rows left", len(got))
			}
		}
		wantEqual(t, "kept batch", getBatch(t, b.store, kept.ID), kept)
		wantEqual(t, "kept rows", batchRows(t, b.store, kept.ID, ""), keptRows)

		n, err = b.store.PurgeBatches(context.Background(), due.RetainUntil)
		wantErr(t, "PurgeBatches again", err, nil)
		if n != 0 {
			t.Fatalf("PurgeBatches again = %d, want 0", n)
		}
		// The reference is free again.
		createBatch(t, b.store, b.site.ID, "old", 1, due.RetainUntil)
	})
}

func (s batchSuite) returnRows(t *testing.T) {
	t.Run("a row keeps the file it went in, from inProgress or from its outcome", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		batch, rows := createBatch(t, b.store, b.site.ID, "batch-1", 3, t0)
		wantErr(t, "MarkInProgress", b.store.MarkInProgress(context.Background(), []billing.RowProgress{
			{RowID: rows[0].ID, FileID: "file_a"}, {RowID: rows[1].ID}}), nil)
		recordOutcomes(t, b.store,
			billing.RowOutcome{RowID: rows[0].ID, At: t0}, // keeps file_a
			billing.RowOutcome{RowID: rows[2].ID, At: t0, FileID: "file_b"})
		want := []billing.Row{succeeded(rows[0], t0), inProgress(rows[1]), succeeded(rows[2], t0)}
		want[0].FileID, want[2].FileID = "file_a", "file_b"
		wantEqual(t, "BatchRows", batchRows(t, b.store, batch.ID, ""), want)
	})
	t.Run("only succeeded rows are returned, once, each with its event in the transaction", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		batch, rows := createBatch(t, b.store, b.site.ID, "batch-1", 4, t0)
		recordOutcomes(t, b.store,
			billing.RowOutcome{RowID: rows[0].ID, At: t0, FileID: "file_a"},
			billing.RowOutcome{RowID: rows[1].ID, At: t0, FileID: "file_a"},
			billing.RowOutcome{RowID: rows[2].ID, Failure: billing.FailureExpired, At: t0})
		at := t0.Add(48 * time.Hour)
		returns := []billing.RowReturn{
			{RowID: rows[0].ID, Reason: "referToCustomer", Retryable: true, At: at},
			{RowID: rows[1].ID, Reason: "accountClosed", At: at},
			{RowID: rows[0].ID, Reason: "accountClosed", At: at.Add(time.Minute)}, // named twice: the first return counts
			{RowID: rows[2].ID, Reason: "accountClosed", At: at},                  // failed: not returned
			{RowID: rows[3].ID, Reason: "accountClosed", At: at},                  // pending: not returned
			{RowID: "row_missing", Reason: "accountClosed", At: at},
		}
		returned, _, err := b.store.ReturnRows(context.Background(), returns)
		wantErr(t, "ReturnRows", err, nil)
		want := []billing.Row{succeeded(rows[0], t0), succeeded(rows[1], t0), failed(rows[2], billing.FailureExpired, t0), rows[3]}
		want[0].FileID, want[1].FileID = "file_a", "file_a"
		want[0].ReturnedAt, want[0].ReturnReason, want[0].ReturnRetryable = at, "referToCustomer", true
		want[1].ReturnedAt, want[1].ReturnReason = at, "accountClosed"
		slices.SortFunc(returned, func(x, y billing.ReturnedRow) int { return x.Index - y.Index })
		wantEqual(t, "ReturnRows", returned, []billing.ReturnedRow{
			{Row: want[0], BatchReference: batch.Reference, SiteID: b.site.ID},
			{Row: want[1], BatchReference: batch.Reference, SiteID: b.site.ID}})
		wantEqual(t, "BatchRows", batchRows(t, b.store, batch.ID, ""), want)
		if events := eventsWritten(t, b.store, b.site.ID, billing.EventDebitReturned); len(events) != 2 {
			t.Fatalf("debit.returned events: %d, want one a returned row", len(events))
		}

		later := []billing.RowReturn{{RowID: rows[0].ID, Reason: "accountClosed", At: at.Add(time.Hour)}}
		again, _, err := b.store.ReturnRows(context.Background(), append(returns, later...))
		wantErr(t, "ReturnRows again", err, nil)
		if len(again) != 0 {
			t.Fatalf("ReturnRows again returned %+v; want nothing: a row is returned once", again)
		}
		wantEqual(t, "BatchRows after returning again", batchRows(t, b.store, batch.ID, ""), want)
		if events := eventsWritten(t, b.store, b.site.ID, billing.EventDebitReturned); len(events) != 2 {
			t.Fatalf("debit.returned events after returning again: %d; want still 2", len(events))
		}
		byID, err := b.store.RowsByID(context.Background(), []string{rows[3].ID, "row_missing", rows[0].ID})
		wantErr(t, "RowsByID", err, nil)
		slices.SortFunc(byID, func(x, y billing.Row) int { return x.Index - y.Index })
		wantEqual(t, "RowsByID", byID, []billing.Row{want[0], want[3]})
	})
	t.Run("a return that ends the authority revokes by the bank the link its debit was made under, once", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		ctx := context.Background()
		before := t0.Add(-time.Hour)
		var links []billing.Link
		for _, ref := range []string{"cust-0", "cust-1", "cust-2"} {
			links = append(links, linkCustomer(t, b.store, createLink(t, b.store, b.site.ID, ref, before).ID, before))
		}
		_, rows := createBatch(t, b.store, b.site.ID, "batch-1", 3, t0) // row i of cust-i
		recordOutcomes(t, b.store,
			billing.RowOutcome{RowID: rows[0].ID, At: t0}, billing.RowOutcome{RowID: rows[1].ID, At: t0},
			billing.RowOutcome{RowID: rows[2].ID, At: t0})
		// cust-2 revoked and linked again after the batch: its new link is not the one the debit
		// was made under.
		revokeLink(t, b.store, links[2].ID, t0.Add(time.Hour))
		relinked := linkCustomer(t, b.store, createLink(t, b.store, b.site.ID, "cust-2", t0.Add(2*time.Hour)).ID, t0.Add(2*time.Hour))
		at := t0.Add(48 * time.Hour)
		returns := []billing.RowReturn{
			{RowID: rows[0].ID, Reason: "accountClosed", EndsAuthority: true, At: at},
			{RowID: rows[1].ID, Reason: "paymentStopped", At: at},
			{RowID: rows[2].ID, Reason: "accountClosed", EndsAuthority: true, At: at},
		}
		returned, revoked, err := b.store.ReturnRows(ctx, returns)
		wantErr(t, "ReturnRows", err, nil)
		if len(returned) != 3 || len(revoked) != 1 || revoked[0].ID != links[0].ID || revoked[0].StoredState != billing.LinkRevoked ||
			revoked[0].RevokedBy != billing.RevokedByBank || !revoked[0].RevokedAt.Equal(at) || revoked[0].Customer.Email != customer.Email {
			t.Fatalf("ReturnRows = %d rows, revoked %+v; want cust-0's link revoked by the bank at %s, with its customer", len(returned), revoked, at)
		}
		if l := getLink(t, b.store, links[0].ID); l.StoredState != billing.LinkRevoked || l.RevokedBy != billing.RevokedByBank {
			t.Errorf("cust-0's link %s by %q; want revoked by the bank", l.StoredState, l.RevokedBy)
		}
		for _, want := range []billing.Link{links[1], relinked} {
			if l := getCurrentLink(t, b.store, b.site.ID, want.CustomerReference); l.ID != want.ID || l.StoredState != billing.LinkLinked {
				t.Errorf("%s's current link %s %s; want %s linked", want.CustomerReference, l.ID, l.StoredState, want.ID)
			}
		}
		if events := eventsWritten(t, b.store, b.site.ID, billing.EventCustomerRevoked); len(events) != 2 || !strings.Contains(string(events[1].Body), `"revokedBy":"bank"`) {
			t.Fatalf("customer.revoked events = %d; want cust-2's by the partner, then cust-0's by the bank", len(events))
		}
		// Each revocation enqueued the withdrawal of its customer's unsent debits; the links left
		// linked, none.
		withdrawals := func(when string) {
			t.Helper()
			for _, w := range []struct {
				link billing.Link
				want int
			}{{links[0], 1}, {links[1], 0}, {links[2], 1}, {relinked, 0}} {
				if got := b.withdrawals(t, w.link.ID); got != w.want {
					t.Errorf("%s: withdrawal jobs of %s's link %s = %d, want %d", when, w.link.CustomerReference, w.link.ID, got, w.want)
				}
			}
		}
		withdrawals("after the returns")

		again, revokedAgain, err := b.store.ReturnRows(ctx, returns)
		wantErr(t, "ReturnRows again", err, nil)
		if len(again) != 0 || len(revokedAgain) != 0 {
			t.Fatalf("ReturnRows again = %+v, revoked %+v; want nothing", again, revokedAgain)
		}
		if events := eventsWritten(t, b.store, b.site.ID, billing.EventCustomerRevoked); len(events) != 2 {
			t.Fatalf("customer.revoked events after returning again: %d; want still 2", len(events))
		}
		withdrawals("after returning again")
	})
	// In the order of the files, which may differ (the bank's files overlap): two imports locking
	// the same rows in other orders must not deadlock, one of them failing.
	t.Run("of concurrent returns of the same rows, in any order, one returns each row", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		_, rows := createBatch(t, b.store, b.site.ID, "batch-1", 1000, t0)
		var outcomes []billing.RowOutcome
		var returns []billing.RowReturn
		for _, r := range rows {
			outcomes = append(outcomes, billing.RowOutcome{RowID: r.ID, At: t0})
			returns = append(returns, billing.RowReturn{RowID: r.ID, Reason: "paymentStopped", At: t0.Add(time.Hour)})
		}
		recordOutcomes(t, b.store, outcomes...)
		const importers = 4
		counts := make(chan int, importers)
		errs := make(chan error, importers)
		for i := range importers {
			returns := slices.Clone(returns)
			if i%2 == 1 {
				slices.Reverse(returns)
			}
			go func() {
				got, _, err := b.store.ReturnRows(context.Background(), returns)
				counts <- len(got)
				errs <- err
			}()
		}
		total := 0
		for range importers {
			total += <-counts
			if err := <-errs; err != nil {
				t.Errorf("ReturnRows: %v", err)
			}
		}
		events := eventsWritten(t, b.store, b.site.ID, billing.EventDebitReturned)
		if total != len(rows) || len(events) != len(rows) {
			t.Fatalf("the importers returned %d rows and wrote %d events; want %d of each", total, len(events), len(rows))
		}
	})
}

// eventsWritten lists the site's events of the type once every event written before the call is
// listed, so that a check that none came since waits for nothing: it invites a customer, a
// marker, and reads the list until the marker's event is in it (the events list shows an
// event once every transaction older than its own has ended, and other tests run transactions at
// the same time).
func eventsWritten(t *testing.T, store BatchStore, siteID string, eventType billing.EventType) []billing.Event {
	t.Helper()
	ref := fmt.Sprintf("marker-%d", time.Now().UnixNano())
	createLink(t, store, siteID, ref, t0)
	marker := fmt.Sprintf(`"customerReference":%q`, ref)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		// The store bounds no page: one read gives the whole list.
		events, err := store.ListEvents(context.Background(), siteID, billing.EventFilter{Limit: math.MaxInt32})
		wantErr(t, "ListEvents", err, nil)
		if slices.ContainsFunc(events, func(e billing.Event) bool { return strings.Contains(string(e.Body), marker) }) {
			return slices.DeleteFunc(events, func(e billing.Event) bool { return e.Type != eventType })
		}
		if time.Now().After(deadline) {
			t.Fatalf("the marker's customer.invited event is not listed after 10 s")
		}
	}
}

func (s batchSuite) revokeLink(t *testing.T) {
	t.Run("a revocation enqueues the withdrawal of its customer's unsent debits; a refused one, none", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		ctx := context.Background()
		linked := linkCustomer(t, b.store, createLink(t, b.store, b.site.ID, "cust-0", t0).ID, t0)
		invited := createLink(t, b.store, b.site.ID, "cust-1", t0)
		expired := createLink(t, b.store, b.site.ID, "cust-2", t0)
		for _, l := range []billing.Link{linked, invited, expired} {
			if n := b.withdrawals(t, l.ID); n != 0 {
				t.Fatalf("%s's link, not revoked, has %d withdrawal jobs", l.CustomerReference, n)
			}
		}
		at := t0.Add(time.Hour)
		for _, l := range []billing.Link{linked, invited} {
			revokeLink(t, b.store, l.ID, at)
			if n := b.withdrawals(t, l.ID); n != 1 {
				t.Errorf("%s's link revoked: %d withdrawal jobs, want 1", l.CustomerReference, n)
			}
		}
		// Refused: revoked already, or expired.
		_, err := b.store.RevokeLink(ctx, linked.ID, billing.RevokedByCustomer, at.Add(time.Minute))
		wantErr(t, "RevokeLink of a revoked link", err, billing.ErrStale)
		_, err = b.store.RevokeLink(ctx, expired.ID, billing.RevokedByPartner, t0.Add(ttl))
		wantErr(t, "RevokeLink of an expired invitation", err, billing.ErrStale)
		for _, w := range []struct {
			link billing.Link
			want int
		}{{linked, 1}, {expired, 0}} {
			if n := b.withdrawals(t, w.link.ID); n != w.want {
				t.Errorf("after a refused revocation, %s's link has %d withdrawal jobs, want %d", w.link.CustomerReference, n, w.want)
			}
		}
	})
}
