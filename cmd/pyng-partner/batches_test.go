package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/client"
)

// file writes content to a file of the test and returns its path.
func file(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const invoices = `rowReference,customerReference,amount
INV-1,ACME-001,120.00
INV-2,ACME-001,45.51
INV-3,NOBODY,99.00
`

func TestBatchCommands(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		ok(t, s, "customers", "invite", "ACME-001")
		ok(t, s, "sandbox", "signup", "ACME-001")
		path := file(t, "invoices.csv", invoices)

		t.Run("--wait shows the rows settled and ends with a summary by outcome", func(t *testing.T) {
			r := ok(t, s, "batches", "submit", path, "--reference", "B-1", "--wait", "--interval", "20ms")
			receipt, got := waited(t, r.stdout)
			if receipt.BatchReference != "B-1" || receipt.State != client.BatchAccepted || receipt.RowCount != 3 || receipt.Replayed {
				t.Errorf("the receipt before the summary = %+v, want B-1's, accepted, not replayed", receipt)
			}
			want := batchSummary{BatchReference: "B-1", State: client.BatchCompleted, RowCount: 3, TotalAmount: 26451,
				SubmittedAt: got.SubmittedAt, CompletedAt: got.CompletedAt,
				Outcomes: []outcome{
					{State: client.RowSucceeded, Count: 1, Amount: 12000},
					{State: client.RowFailed, FailureReason: client.FailureInsufficientFunds, Retryable: true, Count: 1, Amount: 4551},
					{State: client.RowFailed, FailureReason: client.FailureCustomerNotActive, Count: 1, Amount: 9900},
				}}
			if got.SubmittedAt == 0 || got.CompletedAt < got.SubmittedAt || got.Replayed || !equalSummaries(got.batchSummary, want) {
				t.Errorf("summary = %+v\nwant %+v, not replayed", got, want)
			}
			if _, again := waited(t, ok(t, s, "batches", "submit", path, "--reference", "B-1", "--wait").stdout); !again.Replayed ||
				!equalSummaries(again.batchSummary, got.batchSummary) {
				t.Errorf("the same file waited for again = %+v, want the same summary, replayed", again)
			}
			// stderr is not a terminal here: lines, not a bar redrawn with carriage returns.
			if !strings.HasSuffix(r.stderr, "rows settled: 3/3\n") || strings.Contains(r.stderr, "\r") {
				t.Errorf("stderr does not end with the line of the 3 rows settled, or holds a carriage return: %q", r.stderr)
			}
		})

		t.Run("the same file again is the receipt replayed; as a table, the summary", func(t *testing.T) {
			receipt := one[client.BatchReceipt](t, ok(t, s, "batches", "submit", path, "--reference", "B-1").stdout)
			if receipt.BatchReference != "B-1" || receipt.RowCount != 3 || receipt.TotalAmount != 26451 {
				t.Errorf("receipt = %+v", receipt)
			}
			table := ok(t, s, "batches", "submit", path, "--reference", "B-1", "--wait", "--json=false").stdout
			for _, want := range []string{
				`^Batch B-1 \w+: 3 rows, 264\.51\.\nThe same batch was submitted before: this is its receipt\.\n`,
				`(?m)^Batch B-1 completed: 3 rows, 264\.51\.$`,
				`(?m)^The same batch was submitted before: this is its outcome\.$`,
				`(?m)^succeeded +1 +120\.00`,
				`(?m)^failed insufficientFunds +1 +45\.51 +retryable$`,
				`(?m)^failed customerNotActive +1 +99\.00`,
			} {
				if !regexp.MustCompile(want).MatchString(table) {
					t.Errorf("summary table lacks %s:\n%s", want, table)
				}
			}
		})

		t.Run("amounts in cents with --cents, from stdin", func(t *testing.T) {
			r := cliIn(t, s, "R1,ACME-001,12000\nR2,ACME-001,1\n", "batches", "submit", "-", "--reference", "B-2", "--cents")
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if receipt := one[client.BatchReceipt](t, r.stdout); receipt.RowCount != 2 || receipt.TotalAmount != 12001 {
				t.Errorf("receipt = %+v", receipt)
			}
		})

		t.Run("a reference that starts with a hyphen, after --", func(t *testing.T) {
			if r := cliIn(t, s, "R1,ACME-001,5\n", "batches", "submit", "--cents", "--reference", "-H1", "--", "-"); r.code != 0 {
				t.Fatalf("submit: exit %d: %s", r.code, r.stderr)
			}
			if csv := ok(t, s, "batches", "show", "--csv", "--", "-H1").stdout; !strings.Contains(csv, "\nR1,ACME-001,5,") {
				t.Errorf("batches show --csv -- -H1 = %q", csv)
			}
		})

		t.Run("list and show, as JSON, a table and CSV", func(t *testing.T) {
			batches := decode[client.Batch](t, ok(t, s, "batches", "list").stdout)
			var refs []string
			for _, b := range batches {
				refs = append(refs, b.BatchReference)
			}
			if slices.Sort(refs); !slices.Equal(refs, []string{"-H1", "B-1", "B-2"}) {
				t.Errorf("batches list = %v", refs)
			}
			b := one[client.BatchDetail](t, ok(t, s, "batches", "show", "B-1").stdout)
			if len(b.Rows) != 3 || b.Rows[1].FailureReason != client.FailureInsufficientFunds || b.Summary.Failed.Count != 2 {
				t.Errorf("batches show = %+v", b)
			}
			failed := one[client.BatchDetail](t, ok(t, s, "batches", "show", "B-1", "--row-state", "failed").stdout)
			if len(failed.Rows) != 2 {
				t.Errorf("--row-state failed gave %+v", failed.Rows)
			}
			table := ok(t, s, "batches", "show", "B-1", "--json=false").stdout
			if !regexp.MustCompile(`(?m)^INV-2 +ACME-001 +45\.51 +failed +insufficientFunds +true `).MatchString(table) {
				t.Errorf("batches show as a table:\n%s", table)
			}
			csv := ok(t, s, "batches", "show", "B-1", "--csv").stdout
			if lines := strings.Split(strings.TrimSpace(csv), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[0], "rowReference,customerReference,amount,state") ||
				!strings.HasPrefix(lines[2], "INV-2,ACME-001,4551,failed,insufficientFunds,true,") {
				t.Errorf("batches show --csv:\n%s", csv)
			}
			listTable := ok(t, s, "batches", "list", "--json=false").stdout
			if !regexp.MustCompile(`(?m)^B-1 +completed +3 +264\.51 `).MatchString(listTable) {
				t.Errorf("batches list as a table:\n%s", listTable)
			}
		})

		t.Run("the sandbox's deadline", func(t *testing.T) {
			got := one[batchSummary](t, ok(t, s, "sandbox", "deadline", "B-1").stdout)
			if got.BatchReference != "B-1" || got.State != client.BatchCompleted {
				t.Errorf("sandbox deadline = %+v", got)
			}
		})
	})
}

// batches show --csv writes a batch's rows with their outcomes, a file the README says to submit
// again with --cents: under another reference (the batch's own replays it), to retry the rows
// that failed. Its row that succeeded is refused, with its line, and nothing is sent: submitted
// again it would debit its customer a second time. (It was submitted: the outcome's columns were
// ignored.) The file with the failed rows alone is submitted.
func TestTheCSVOfBatchesShowSubmittedAgainRefusesTheRowThatSucceeded(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		ok(t, s, "customers", "invite", "ACME-001")
		ok(t, s, "sandbox", "signup", "ACME-001")
		ok(t, s, "batches", "submit", file(t, "invoices.csv", invoices), "--reference", "B-1", "--wait", "--interval", "20ms")
		shown := ok(t, s, "batches", "show", "B-1", "--csv").stdout
		lines := strings.SplitAfter(strings.TrimSpace(shown), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[1], "INV-1,ACME-001,12000,succeeded,") {
			t.Fatalf("batches show --csv:\n%s", shown)
		}
		path := file(t, "B-1.csv", shown)
		r := cli(t, s, "batches", "submit", path, "--cents", "--reference", "B-1-AGAIN")
		if r.code == 0 || !strings.Contains(r.stderr, path+`:2: rowReference "INV-1" succeeded in the batch`) || strings.Contains(r.stderr, path+":3:") {
			t.Errorf("the shown batch submitted again: exit %d, stderr %q; want exit 1 naming line 2 (INV-1, succeeded) alone", r.code, r.stderr)
		}
		// The same, its state's letter case changed by a spreadsheet.
		edited := file(t, "B-1-edited.csv", strings.Replace(shown, ",succeeded,", ",Succeeded,", 1))
		if r := cli(t, s, "batches", "submit", edited, "--cents", "--reference", "B-1-AGAIN"); r.code == 0 ||
			!strings.Contains(r.stderr, edited+`:2: rowReference "INV-1" succeeded in the batch`) {
			t.Errorf("the shown batch, its state written Succeeded, submitted again: exit %d, stderr %q; want line 2 refused", r.code, r.stderr)
		}
		if got := cli(t, s, "batches", "show", "B-1-AGAIN"); got.code == 0 {
			t.Errorf("batch B-1-AGAIN was stored: %s", got.stdout)
		}
		failed := file(t, "failed.csv", lines[0]+lines[2]+lines[3])
		receipt := one[client.BatchReceipt](t, ok(t, s, "batches", "submit", failed, "--cents", "--reference", "B-1-AGAIN").stdout)
		if receipt.RowCount != 2 || receipt.TotalAmount != 4551+9900 {
			t.Errorf("the failed rows submitted again: receipt %+v, want 2 rows of 14451", receipt)
		}
	})
}

// The API writes a reference that starts with a hyphen with a leading ' in its CSV, so that a
// spreadsheet does not take it for a formula; the file submitted again reads it without the '.
func TestTheCSVOfBatchesShowSubmittedAgainReadsAHyphenReferenceWithoutItsQuote(t *testing.T) {
	s := apptest.Start(t, "sqlite")
	ok(t, s, "customers", "invite", "--", "-A1")
	ok(t, s, "sandbox", "signup", "--", "-A1")
	ok(t, s, "batches", "submit", file(t, "b.csv", "-R9,-A1,45.51\n"), "--reference", "B-H", "--wait", "--interval", "20ms")
	shown := ok(t, s, "batches", "show", "B-H", "--csv").stdout
	if !strings.Contains(shown, "\n'-R9,'-A1,4551,failed,") {
		t.Fatalf("batches show --csv:\n%s\nwant the row's references quoted", shown)
	}
	ok(t, s, "batches", "submit", file(t, "B-H.csv", shown), "--cents", "--reference", "B-H-AGAIN")
	if again := ok(t, s, "batches", "show", "B-H-AGAIN", "--csv").stdout; !strings.Contains(again, "\n'-R9,'-A1,4551,") {
		t.Errorf("the batch submitted again:\n%s\nwant the row -R9 of -A1, 4551 cents", again)
	}
}

// The API says that a submission replays an earlier identical one in a header only; the JSON a
// script reads says it in "replayed", beside the receipt as the API gives it.
func TestTheJSONReceiptSaysWhetherTheSubmissionWasReplayed(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		ok(t, s, "customers", "invite", "ACME-001")
		ok(t, s, "sandbox", "signup", "ACME-001")
		path := file(t, "invoices.csv", invoices)
		// In order: each case submits after the ones before.
		tests := []struct {
			name         string
			reference    string
			wantReplayed string
		}{
			{"a new batch is not replayed", "B-1", "false"},
			{"the same file under the same reference is replayed", "B-1", "true"},
			{"the same file under another reference is a new batch", "B-2", "false"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				members := one[map[string]json.RawMessage](t, ok(t, s, "batches", "submit", path, "--reference", tt.reference).stdout)
				if got := string(members["replayed"]); got != tt.wantReplayed {
					t.Errorf("replayed = %q, want %s", got, tt.wantReplayed)
				}
				delete(members, "replayed")
				var receipt client.BatchReceipt
				rest, _ := json.Marshal(members)
				if err := json.Unmarshal(rest, &receipt); err != nil || receipt.BatchReference != tt.reference || receipt.RowCount != 3 ||
					receipt.TotalAmount != 26451 || receipt.SubmittedAt == 0 || len(members) != 5 {
					t.Errorf("the receipt beside replayed = %s (%v); want the API's five members", rest, err)
				}
			})
		}
	})
}

// waited reads what batches submit --wait writes as JSON: the receipt, then the summary.
func waited(t *testing.T, out string) (submittedReceipt, submittedSummary) {
	t.Helper()
	lines := strings.SplitAfter(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("stdout %q: want two JSON lines, the receipt and the summary", out)
	}
	return one[submittedReceipt](t, lines[0]), one[submittedSummary](t, lines[1])
}

func equalSummaries(a, b batchSummary) bool {
	return a.BatchReference == b.BatchReference && a.State == b.State && a.RowCount == b.RowCount &&
		a.TotalAmount == b.TotalAmount && a.SubmittedAt == b.SubmittedAt && a.CompletedAt == b.CompletedAt && slices.Equal(a.Outcomes, b.Outcomes)
}

func TestCSVProblemsAreReportedWithTheirLinesAndNothingIsSent(t *testing.T) {
	s := apptest.Start(t, "sqlite")
	tests := []struct {
		name    string
		content string
		args    []string
		stderr  string
	}{
		{"every problem of the file, each with its line", "rowReference,customerReference,amount\n" +
			"INV-1,ACME-001,12000\n" +
			"INV-1,ACME 001,45.5\n" +
			"INV-3,NOBODY\n" +
			"INV-4,ACME-001,0.00\n" +
			"INV-5,ACME-001,10000000.01\n" +
			"INV-6,ACME-001,1.00\n" +
			"\"INV-7,ACME-001,1.00\n", nil,
			`F:2: amount "12000" has no cents: write 12000.00 if it is 12000 dollars (a spreadsheet drops the .00 unless the column is formatted 0.00); --cents reads every amount of the file as cents, this one as 120.00
F:3: rowReference "INV-1" is also on line 2; each row of a batch has its own
F:3: customerReference "ACME 001" must be 1 to 64 of A-Z, a-z, 0-9, hyphen and underscore
F:3: amount "45.5" must be dollars and cents such as 120.00
F:4: 2 fields; a row is rowReference,customerReference,amount
F:5: amount "0.00" must be from 0.01 to 10000000.00
F:6: amount "10000000.01" must be from 0.01 to 10000000.00
F:8: extraneous or missing " in quoted-field
F: 8 problems; nothing was sent.
`},
		// A spreadsheet writes 120.00 as 120 unless its column is formatted 0.00: the message must
		// not send a file of whole dollars to --cents, which would debit a hundredth of each.
		{"whole dollars, as a spreadsheet saves 120.00 and 50.00", "R1,ACME-001,120\nR2,ACME-001,50\n", nil,
			`F:1: amount "120" has no cents: write 120.00 if it is 120 dollars (a spreadsheet drops the .00 unless the column is formatted 0.00); --cents reads every amount of the file as cents, this one as 1.20
F:2: amount "50" has no cents: write 50.00 if it is 50 dollars (a spreadsheet drops the .00 unless the column is formatted 0.00); --cents reads every amount of the file as cents, this one as 0.50
F: 2 problems; nothing was sent.
`},
		{"dollars in a file of cents", "R1,ACME-001,120.00\n", []string{"--cents"},
			"F:1: amount \"120.00\" must be whole cents such as 12000 (--cents)\nF: 1 problem; nothing was sent.\n"},
		{"a header alone", "rowReference,customerReference,amount\n", nil,
			"F: no rows; a batch has 1 to 1000\nF: 1 problem; nothing was sent.\n"},
		{"more than 1000 rows", "rowReference,customerReference,amount\n" + manyRows(1001), nil,
			"F: 1001 rows; a batch has at most 1000\nF: 1 problem; nothing was sent.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := file(t, "rows.csv", tt.content)
			r := cli(t, s, append([]string{"batches", "submit", path, "--reference", "B-1"}, tt.args...)...)
			if want := strings.ReplaceAll(tt.stderr, "F:", path+":"); r.code != 1 || r.stdout != "" || r.stderr != want {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 1 and stderr:\n%s", r.code, r.stdout, r.stderr, want)
			}
		})
	}
	if _, err := siteOf(t, s).GetBatch(t.Context(), "B-1", client.GetBatchOptions{}); !errors.Is(err, client.CodeBatchNotFound) {
		t.Errorf("after refused files, the batch: %v; want none sent", err)
	}
	if maxRows != billing.MaxBatchRows || maxAmount != billing.MaxAmount {
		t.Errorf("the CLI's limits (%d rows, %d cents) are not the API's (%d, %d)", maxRows, maxAmount, billing.MaxBatchRows, billing.MaxAmount)
	}
}

func manyRows(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("R" + strconv.Itoa(i) + ",ACME-001,1.00\n")
	}
	return b.String()
}

// The rows settled, as --wait shows them: on a terminal a bar redrawn in place, which a stop
// leaves as far as it got (progressbar's Close would fill it); elsewhere a line each time the
// number changes.
func TestProgress(t *testing.T) {
	tests := []struct {
		name     string
		terminal bool
		settled  []int
		finish   bool
		want     []string // in the output, in this order
		wantNot  []string
	}{
		{name: "a log: a line a change", settled: []int{0, 0, 2, 2, 3}, finish: true,
			want: []string{"rows settled: 0/3\n", "rows settled: 2/3\n", "rows settled: 3/3\n"}, wantNot: []string{"\r", "2/3\nrows settled: 2/3"}},
		{name: "a log, stopped", settled: []int{1}, want: []string{"rows settled: 1/3\n"}, wantNot: []string{"3/3"}},
		{name: "a terminal: a bar", terminal: true, settled: []int{0, 2, 3}, finish: true,
			want: []string{"rows settled", "(0/3)", "\r", "(2/3)", "(3/3)"}, wantNot: []string{"rows settled: "}},
		{name: "a terminal, stopped", terminal: true, settled: []int{1}, want: []string{"(1/3)"}, wantNot: []string{"(3/3)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			p := newProgress(&out, tt.terminal, 3)
			for _, n := range tt.settled {
				p.set(n)
			}
			if tt.finish {
				p.finish()
			} else {
				p.stop()
			}
			got, rest := out.String(), out.String()
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output %q lacks %q (or has it before the previous)", got, w)
				}
				rest = rest[i+len(w):]
			}
			for _, w := range tt.wantNot {
				if strings.Contains(got, w) {
					t.Errorf("output %q holds %q", got, w)
				}
			}
		})
	}
}

// A submission whose access token could not be obtained was not sent: the command says so, and
// not that the batch may have been accepted (a partner whose URL is wrong would call support).
func TestASubmissionWithoutATokenSaysItWasNotSent(t *testing.T) {
	s := apptest.Start(t, "sqlite")
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // its port now refuses connections
	via := *s
	via.URL = closed.URL
	r := cli(t, &via, "batches", "submit", file(t, "b.csv", invoices), "--reference", "B-NOWHERE")
	want := "batch B-NOWHERE was not submitted: no access token could be obtained, so nothing was sent."
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "may have been accepted") {
		t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 1 and stderr holding %q, not that it may have been accepted", r.code, r.stdout, r.stderr, want)
	}
}

// A submission that fails may still have created the batch, or may fail because the reference
// already holds an accepted batch: a partner who took either for a batch not made, and sent its
// rows again under another reference, would debit its customers twice. The command says what to
// do instead. The gateway here forwards the submission to a real server, which stores the batch,
// and then answers 502, or breaks the connection, as one that timed out would.
func TestAFailedSubmissionSaysWhetherTheBatchMayHaveBeenAccepted(t *testing.T) {
	s := apptest.Start(t, "sqlite")
	ok(t, s, "customers", "invite", "ACME-001")
	ok(t, s, "sandbox", "signup", "ACME-001")
	path := file(t, "invoices.csv", invoices)
	ok(t, s, "batches", "submit", path, "--reference", "B-TAKEN")
	tests := []struct {
		name      string
		reference string
		content   string
		// gateway is what the gateway answers to the submission's attempt (1 for the first) once
		// the server has answered it.
		gateway func(w http.ResponseWriter, attempt int)
		stderr  string
	}{
		{"a gateway answered 502 after the server stored the batch", "B-502", invoices,
			func(w http.ResponseWriter, _ int) { badGateway(w) },
			"batch B-502 may have been accepted: run the same command again (the same file, --reference B-502)"},
		{"the connection broke after the server stored the batch", "B-BROKEN", invoices,
			func(http.ResponseWriter, int) { panic(http.ErrAbortHandler) },
			"batch B-BROKEN may have been accepted: run the same command again (the same file, --reference B-BROKEN)"},
		// The 429 refused the retry alone, not the first attempt, which the server stored.
		{"a gateway answered 502, then 429 to the retry with a Retry-After longer than the client waits", "B-429", invoices,
			func(w http.ResponseWriter, attempt int) {
				if attempt == 1 {
					badGateway(w)
					return
				}
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(http.StatusTooManyRequests)
			},
			"batch B-429 may have been accepted: run the same command again (the same file, --reference B-429)"},
		{"the reference holds a batch of other rows", "B-TAKEN", "INV-1,ACME-001,120.01\n", nil,
			"batch B-TAKEN was submitted before with other rows, and executes whatever happens here; read it with `batches show B-TAKEN`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream, _ := url.Parse(s.URL)
			proxy := httputil.NewSingleHostReverseProxy(upstream)
			if tt.gateway != nil {
				var attempts atomic.Int32
				errSubmitted := errors.New("submitted")
				proxy.ModifyResponse = func(resp *http.Response) error {
					if resp.Request.Method == http.MethodPost && strings.HasSuffix(resp.Request.URL.Path, "/batches") {
						return errSubmitted // the server has answered: the gateway answers instead
					}
					return nil
				}
				proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
					if err != errSubmitted {
						t.Errorf("the gateway: %v", err)
					}
					tt.gateway(w, int(attempts.Add(1)))
				}
			}
			gw := httptest.NewServer(proxy)
			defer gw.Close()
			via := *s
			via.URL = gw.URL
			r := cli(t, &via, "batches", "submit", file(t, "b.csv", tt.content), "--reference", tt.reference)
			if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 1 and stderr holding %q", r.code, r.stdout, r.stderr, tt.stderr)
			}
			if tt.gateway != nil {
				// As the command said: the same again, now answered, gives the batch it stored.
				again := one[submittedReceipt](t, ok(t, s, "batches", "submit", file(t, "b.csv", tt.content), "--reference", tt.reference).stdout)
				if !again.Replayed || again.RowCount != 3 {
					t.Errorf("the same command again = %+v, want the batch stored before, replayed", again)
				}
			}
		})
	}
}

// badGateway answers as a gateway whose server did not answer.
func badGateway(w http.ResponseWriter) {
	w.WriteHeader(http.StatusBadGateway)
	_, _ = w.Write([]byte("<html>bad gateway</html>"))
}
