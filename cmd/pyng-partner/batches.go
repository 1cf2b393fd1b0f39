package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/pyng/receivables/client"
)

// The polling intervals of --wait, events tail and webhooks listen.
const (
	defaultInterval    = time.Second
	defaultMaxInterval = 10 * time.Second
)

var batchCommands = []command{
	{name: "batches submit", args: "FILE.csv", nargs: 1,
		summary: "Submit a batch of debits from a CSV file",
		help: `The file has a row a line: rowReference,customerReference,amount, amounts in dollars and
cents (120.00), or in whole cents (12000) with --cents; a first line of those three names is
a header, which may name more columns after them, ignored (batches show --csv writes such a
file, in cents), but for a row whose state there is succeeded (not returned), pending or
inProgress, which is refused: submitted again under another reference it would debit its
customer twice. Every problem of the file is reported with its line number before anything is sent.
FILE "-" reads standard input. Submitting the same batch again returns its receipt, which
the JSON marks "replayed": true ("replayed": false for a batch this submission created).
With --wait, the receipt as soon as the batch is accepted, then the rows settled on stderr (a
bar on a terminal, else a line each time their number changes), then a summary by outcome, its
JSON marked "replayed" too. A read of the batch that fails for a while (no answer, 429, 5xx) is
reported and tried again; if the wait ends without the outcome (Ctrl-C, or a read refused), the
command exits 3: the batch was accepted and executes, read it with batches show.`,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.reference, "reference", "", "the batchReference (required): the batch's id, unique within the site for 90 days")
			fs.BoolVar(&o.cents, "cents", false, "amounts are whole cents (12000), not dollars and cents (120.00)")
			fs.BoolVar(&o.wait, "wait", false, "wait until every row is settled, showing progress, and print a summary by outcome")
			fs.Var(&o.interval, "interval", "how often --wait reads the batch")
		},
		run: submitBatch},
	{name: "batches list", summary: "List the site's batches, newest first", run: listBatches},
	{name: "batches show", args: "BATCH_REFERENCE", nargs: 1,
		summary: "Show a batch: its summary and its rows, as a table or CSV",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.rowState, "row-state", "", "only the rows in this state: pending, inProgress, succeeded or failed")
			fs.BoolVar(&o.csv, "csv", false, "write the rows as CSV (RFC 4180), for a spreadsheet")
		},
		run: showBatch},
}

func submitBatch(ctx context.Context, e *env, args []string) error {
	ref := e.opts.reference
	if ref == "" {
		return usagef("--reference is required")
	}
	if !reference.MatchString(ref) {
		return usagef("--reference %q must be %s", ref, referenceRule)
	}
	var in io.Reader = os.Stdin
	name := "stdin"
	if args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, args[0]
	}
	rows, err := readRows(in, name, e.opts.cents)
	if err != nil {
		return err
	}
	receipt, err := e.site.SubmitBatch(ctx, client.BatchRequest{BatchReference: ref, Rows: rows})
	if err != nil {
		warnOfFailedSubmission(e.stderr, ref, err)
		return err
	}
	// At once, also with --wait: a script that the wait fails has the receipt.
	err = e.emit(submittedReceipt{receipt, receipt.Replayed}, func(w io.Writer) {
		fmt.Fprintf(w, "Batch %s %s: %s, %s.\n", receipt.BatchReference, receipt.State, rowCount(receipt.RowCount), dollars(receipt.TotalAmount))
		if receipt.Replayed {
			fmt.Fprintln(w, "The same batch was submitted before: this is its receipt.")
		}
	})
	if err != nil || !e.opts.wait {
		return err
	}
	b, err := awaitBatch(ctx, e, receipt)
	if err != nil {
		return outcomeUnknownError{err}
	}
	s := summarise(b)
	return e.emit(submittedSummary{s, receipt.Replayed}, func(w io.Writer) {
		fmt.Fprintf(w, "Batch %s %s: %s, %s.\n", s.BatchReference, s.State, rowCount(s.RowCount), dollars(s.TotalAmount))
		if receipt.Replayed {
			fmt.Fprintln(w, "The same batch was submitted before: this is its outcome.")
		}
		fmt.Fprintln(w)
		row(w, "OUTCOME", "ROWS", "AMOUNT", "")
		for _, o := range s.Outcomes {
			retry := ""
			if o.Retryable {
				retry = "retryable"
			}
			row(w, o.name(), o.Count, dollars(o.Amount), retry)
		}
	})
}

// warnOfFailedSubmission says what became of the batch when a submission failed in a way that
// leaves it accepted, or maybe accepted, or surely not (no token, so nothing sent): a partner who
// took the failure for a batch not made and sent its rows again under another reference would
// debit its customers twice.
func warnOfFailedSubmission(w io.Writer, ref string, err error) {
	var apiErr *client.Error
	switch {
	case errors.Is(err, client.ErrNotSent):
		fmt.Fprintf(w, "pyng-partner: batch %s was not submitted: no access token could be obtained, so nothing was sent.\n", ref)
	case errors.Is(err, client.CodeBatchReferenceConflict):
		// The API's message says to use a new reference for a different batch: right for another
		// batch, not for these rows edited after they were submitted.
		fmt.Fprintf(w, "pyng-partner: batch %s was submitted before with other rows, and executes whatever happens here; read it with `batches show %s`. "+
			"Under another reference, submit only rows it does not hold: a row it holds would be debited again.\n", ref, ref)
	case errors.Is(err, client.ErrNoAnswer), errors.As(err, &apiErr) && apiErr.StatusCode >= 500:
		// The server may have stored the batch before the answer was lost, after the client's
		// retries too.
		fmt.Fprintf(w, "pyng-partner: batch %s may have been accepted: run the same command again (the same file, --reference %s), "+
			"which gives its receipt if it was and submits it if not; do not submit its rows under another reference, which would debit its customers twice.\n", ref, ref)
	}
}

// submittedReceipt is what batches submit writes as JSON: the receipt as the API gives it, and
// whether it is the receipt of an earlier identical submission. The API says that in a header
// (Idempotent-Replayed), not in the body, so without this member a script could not tell a batch
// it just created from one it had created before.
type submittedReceipt struct {
	*client.BatchReceipt
	Replayed bool `json:"replayed"`
}

// submittedSummary is what batches submit --wait writes as JSON: the summary, and whether the
// submission replayed an earlier identical one, as without --wait.
type submittedSummary struct {
	batchSummary
	Replayed bool `json:"replayed"`
}

// outcomeUnknownError ends a wait for an accepted batch without its outcome: exit 3.
type outcomeUnknownError struct{ err error }

func (e outcomeUnknownError) Error() string { return e.err.Error() }
func (e outcomeUnknownError) Unwrap() error { return e.err }

// awaitBatch waits until the batch is completed (client.Site.AwaitBatchProgress), showing its
// rows settled on stderr (see progress) and each read that failed but is tried again. When the
// wait ends without the outcome, it says so plainly: a partner who took this for a failed
// submission and sent the rows again under another reference would debit every customer twice.
func awaitBatch(ctx context.Context, e *env, receipt *client.BatchReceipt) (*client.BatchDetail, error) {
	shown := newProgress(e.stderr, e.stderrTTY, receipt.RowCount)
	state := receipt.State // as last read
	b, err := e.site.AwaitBatchProgress(ctx, receipt.BatchReference, time.Duration(e.opts.interval), func(b *client.BatchDetail, err error) {
		if err != nil {
			fmt.Fprintf(e.stderr, "pyng-partner: reading batch %s: %v (trying again)\n", receipt.BatchReference, err)
			return
		}
		state = b.State
		shown.set(b.Summary.Succeeded.Count + b.Summary.Failed.Count)
	})
	if err != nil {
		shown.stop()
		fmt.Fprintf(e.stderr, "pyng-partner: batch %s was accepted (%s, %s) and executes whatever happens here, but the wait ended while it is still %s, without its outcome; "+
			"read it with `batches show %s`, and do not submit its rows again under another reference.\n",
			receipt.BatchReference, rowCount(receipt.RowCount), dollars(receipt.TotalAmount), state, receipt.BatchReference)
		return nil, err
	}
	shown.finish()
	return b, nil
}

// progress shows how many of a batch's rows are settled: on a terminal a bar redrawn in place; else
// (a log, a CI job's output) a line each time the number changes, which a bar redrawn with
// carriage returns would garble.
type progress struct {
	bar   *progressbar.ProgressBar // on a terminal
	w     io.Writer
	total int
	shown int // the last number written as a line; -1 before the first
}

func newProgress(w io.Writer, terminal bool, total int) *progress {
	if !terminal {
		return &progress{w: w, total: total, shown: -1}
	}
	return &progress{bar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("rows settled"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionUseANSICodes(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)}
}

func (p *progress) set(settled int) {
	switch {
	case p.bar != nil:
		if int64(settled) != p.bar.State().CurrentNum || !p.bar.IsStarted() {
			_ = p.bar.Set(settled)
		}
	case settled != p.shown:
		fmt.Fprintf(p.w, "rows settled: %d/%d\n", settled, p.total)
		p.shown = settled
	}
}

// finish ends the bar full, the batch completed.
func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Close()
	}
}

// stop ends the bar as far as it got (Close would fill it).
func (p *progress) stop() {
	if p.bar != nil {
		_ = p.bar.Exit()
	}
}

// batchSummary is a batch with its rows counted by outcome.
type batchSummary struct {
	BatchReference string            `json:"batchReference"`
	State          client.BatchState `json:"state"`
	RowCount       int               `json:"rowCount"`
	TotalAmount    int64             `json:"totalAmount"`
	SubmittedAt    client.Timestamp  `json:"submittedAt"`
	CompletedAt    client.Timestamp  `json:"completedAt,omitempty"`
	Outcomes       []outcome         `json:"outcomes"`
}

// outcome is the number and amount of the rows of one state and failure reason, or return
// reason (a succeeded debit the customer's bank returned).
type outcome struct {
	State         client.RowState      `json:"state"`
	FailureReason client.FailureReason `json:"failureReason,omitempty"`
	ReturnReason  client.ReturnReason  `json:"returnReason,omitempty"`
	Retryable     bool                 `json:"retryable,omitempty"`
	Count         int                  `json:"count"`
	Amount        int64                `json:"amount"`
}

func (o outcome) name() string {
	switch {
	case o.FailureReason != "":
		return string(o.State) + " " + string(o.FailureReason)
	case o.ReturnReason != "":
		return string(o.State) + ", returned " + string(o.ReturnReason)
	}
	return string(o.State)
}

// summarise counts a batch's rows by outcome: succeeded first (those returned apart, by reason),
// then each failure reason, most rows first. Rows of one reason that differ in whether they may be
// submitted again are counted apart: customerNotActive is retryable for the rows whose customer
// has linked again since, not for the others.
func summarise(b *client.BatchDetail) batchSummary {
	s := batchSummary{BatchReference: b.BatchReference, State: b.State, RowCount: b.RowCount, TotalAmount: b.TotalAmount,
		SubmittedAt: b.SubmittedAt, CompletedAt: b.CompletedAt}
	for _, r := range b.Rows {
		i := slices.IndexFunc(s.Outcomes, func(o outcome) bool {
			return o.State == r.State && o.FailureReason == r.FailureReason && o.ReturnReason == r.ReturnReason &&
				o.Retryable == r.IsRetryable()
		})
		if i < 0 {
			s.Outcomes = append(s.Outcomes, outcome{State: r.State, FailureReason: r.FailureReason, ReturnReason: r.ReturnReason,
				Retryable: r.IsRetryable()})
			i = len(s.Outcomes) - 1
		}
		s.Outcomes[i].Count++
		s.Outcomes[i].Amount += r.Amount
	}
	rank := map[client.RowState]int{client.RowSucceeded: 0, client.RowFailed: 1, client.RowInProgress: 2, client.RowPending: 3}
	slices.SortStableFunc(s.Outcomes, func(a, b outcome) int {
		if a.State != b.State {
			return rank[a.State] - rank[b.State]
		}
		return b.Count - a.Count
	})
	return s
}

func listBatches(ctx context.Context, e *env, _ []string) error {
	return each(e, e.site.ListBatches(ctx, client.ListBatchesOptions{Limit: 100}),
		[]any{"BATCH", "STATE", "ROWS", "TOTAL", "SUBMITTED", "COMPLETED"},
		func(w io.Writer, b client.Batch) {
			row(w, b.BatchReference, b.State, b.RowCount, dollars(b.TotalAmount), when(b.SubmittedAt), when(b.CompletedAt))
		})
}

func showBatch(ctx context.Context, e *env, args []string) error {
	var opts client.GetBatchOptions
	switch s := client.RowState(e.opts.rowState); s {
	case "", client.RowPending, client.RowInProgress, client.RowSucceeded, client.RowFailed:
		opts.RowState = s
	default:
		return usagef("--row-state %q is not one of pending, inProgress, succeeded, failed", s)
	}
	if e.opts.csv {
		data, err := e.site.GetBatchCSV(ctx, args[0], opts)
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(data)
		return err
	}
	b, err := e.site.GetBatch(ctx, args[0], opts)
	if err != nil {
		return err
	}
	return e.emit(b, func(w io.Writer) {
		fmt.Fprintf(w, "Batch %s %s: %s, %s, submitted %s, completed %s.\n", b.BatchReference, b.State, rowCount(b.RowCount),
			dollars(b.TotalAmount), when(b.SubmittedAt), when(b.CompletedAt))
		for _, t := range []struct {
			state string
			total client.StateTotal
		}{{"pending", b.Summary.Pending}, {"inProgress", b.Summary.InProgress}, {"succeeded", b.Summary.Succeeded}, {"failed", b.Summary.Failed}} {
			if t.total.Count > 0 {
				fmt.Fprintf(w, "  %s\t%s\t%s\n", t.state, rowCount(t.total.Count), dollars(t.total.Amount))
			}
		}
		fmt.Fprintln(w)
		rowsTable(w, b.Rows)
	})
}

// rowsTable writes a batch's rows as a table; RETURNED says why and when the customer's bank
// returned a succeeded debit (the BECS rail).
func rowsTable(w io.Writer, rows []client.Row) {
	row(w, "ROW", "CUSTOMER", "AMOUNT", "STATE", "FAILURE", "RETRYABLE", "OUTCOME AT", "RETURNED")
	for _, r := range rows {
		retry, returned := "-", "-"
		if r.Retryable != nil {
			retry = fmt.Sprint(*r.Retryable)
		}
		if r.ReturnReason != "" {
			returned = string(r.ReturnReason) + " " + when(r.ReturnedAt)
		}
		row(w, r.RowReference, r.CustomerReference, dollars(r.Amount), r.State, orDash(r.FailureReason), retry, when(r.OutcomeAt), returned)
	}
}
