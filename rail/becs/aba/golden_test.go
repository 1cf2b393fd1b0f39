package aba_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/rail/becs/aba"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from the writer")

// debitUser is the debit user of the fixtures; its trace BSB is given as six digits, as a
// caller's settings would hold it.
func debitUser(selfBalancing bool) aba.DebitUser {
	return aba.DebitUser{
		UserID: "301500", UserName: "PYNG RECEIVABLES PTY LTD", Institution: "CBA", Description: "DEBITS",
		TraceBSB: "062000", TraceAccount: "12345678", Remitter: "PYNG RECEIVABLES", SelfBalancing: selfBalancing,
	}
}

// debits covers the forms of input a caller gives: BSBs with and without the hyphen, account
// numbers of nine characters, with a hyphen, with an inner blank, titles and references with the
// BECS special characters, an empty lodgement reference and the smallest amount.
var debits = []aba.Debit{
	{BSB: "082-001", Account: "123456789", Title: "ACME SUPPLIES PTY LTD", Amount: 125000, LodgementReference: "INV-2041"},
	{BSB: "033000", Account: "00-1234", Title: "SMITH. JOHN & CO (AUST)", Amount: 9999, LodgementReference: "PYNG 7F3K9Q"},
	{BSB: "732-065", Account: "4567 890", Title: "O'Brien's Bakery", Amount: 1},
}

var processing = time.Date(2026, time.March, 9, 0, 0, 0, 0, time.UTC)

func debitFile(t testing.TB, selfBalancing bool) aba.File {
	t.Helper()
	f, err := aba.NewDebitFile(debitUser(selfBalancing), processing, debits)
	if err != nil {
		t.Fatalf("NewDebitFile: %v", err)
	}
	return f
}

func returnsFile() aba.File {
	// Each item going back to the user's trace account from the customer's (aba.Return).
	entry := func(d aba.Debit) aba.Entry {
		bsb, _ := aba.ParseBSB(string(d.BSB))
		return aba.Entry{
			BSB: "062-000", Account: "12345678", Code: aba.CodeDebit, Amount: d.Amount, Title: d.Title,
			LodgementReference: d.LodgementReference, TraceBSB: bsb, TraceAccount: d.Account,
			Remitter: "PYNG RECEIVABLES",
		}
	}
	return aba.File{
		ReelSequence: 1, Institution: "CBA", UserName: "PYNG RECEIVABLES PTY LTD", UserID: "301500",
		Description: "RETURNS", ProcessingDate: time.Date(2026, time.March, 11, 0, 0, 0, 0, time.UTC),
		Returns: []aba.Return{
			{Entry: entry(debits[0]), Reason: aba.ReturnReferToCustomer, OriginalDay: 9, OriginalUserID: "301500"},
			{Entry: entry(debits[1]), Reason: aba.ReturnAccountClosed, OriginalDay: 9, OriginalUserID: "301500"},
		},
	}
}

// nilReturnsFile is the returns file of a day without returns, which some banks send: no items,
// totals of zero.
func nilReturnsFile() aba.File {
	f := returnsFile()
	f.Returns = nil
	return f
}

// blocksReturnsFile is a returns file of three blocks, as a bank that sends a block for each user
// ID or day of processing does: the returns of one user ID, the nil block of another day, and one
// return of another user ID.
func blocksReturnsFile() []aba.File {
	other := returnsFile()
	other.UserID, other.UserName = "301501", "PYNG RECEIVABLES TWO"
	other.Returns = other.Returns[1:]
	other.Returns[0].OriginalUserID = "301501"
	empty := nilReturnsFile()
	empty.ProcessingDate = empty.ProcessingDate.AddDate(0, 0, 1)
	return []aba.File{returnsFile(), empty, other}
}

// goldens are the files whose exact bytes are pinned in testdata, each as its blocks.
func goldens(t testing.TB) map[string][]aba.File {
	return map[string][]aba.File{
		"debit.aba":               {debitFile(t, false)},
		"debit-selfbalancing.aba": {debitFile(t, true)},
		"returns.aba":             {returnsFile()},
		"returns-nil.aba":         {nilReturnsFile()},
		"returns-blocks.aba":      blocksReturnsFile(),
	}
}

// marshalBlocks writes each block and joins them: the file of those blocks.
func marshalBlocks(t testing.TB, blocks []aba.File) []byte {
	t.Helper()
	var out []byte
	for _, f := range blocks {
		b, err := f.MarshalText()
		if err != nil {
			t.Fatalf("MarshalText: %v", err)
		}
		out = append(out, b...)
	}
	return out
}

func assertSameFile(t *testing.T, got, want aba.File) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("files differ:\n got %+v\nwant %+v", got, want)
	}
}

func TestGoldenFiles(t *testing.T) {
	for name, blocks := range goldens(t) {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			b := marshalBlocks(t, blocks)
			if *update {
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(b, want) {
				t.Errorf("Write differs from %s (run go test -update if the change is meant):\n got %q\nwant %q", path, b, want)
			}
			// The golden file is read back into the same blocks: the round trip. Read reads a file
			// of one block, and refuses one of several at its second descriptive record.
			back, err := aba.ReadBlocks(bytes.NewReader(want))
			if err != nil {
				t.Fatalf("ReadBlocks %s: %v", path, err)
			}
			if !reflect.DeepEqual(back, blocks) {
				t.Errorf("blocks differ:\n got %+v\nwant %+v", back, blocks)
			}
			one, err := aba.Read(bytes.NewReader(want))
			if len(blocks) == 1 {
				if err != nil {
					t.Fatalf("Read %s: %v", path, err)
				}
				assertSameFile(t, one, blocks[0])
			} else if got, want := problems(err), []string{fmt.Sprintf("line %d record type column 1", len(blocks[0].Returns)+3)}; !reflect.DeepEqual(got, want) {
				t.Errorf("Read of %d blocks: problems %q, want %q", len(blocks), got, want)
			}
			// And it has the format's shape, whatever the writer does: records of 120 characters,
			// each ended by CRLF.
			lines := strings.SplitAfter(string(want), "\r\n")
			if last := lines[len(lines)-1]; last != "" {
				t.Errorf("the file does not end with CRLF: %q", last)
			}
			for i, l := range lines[:len(lines)-1] {
				if len(l) != 122 {
					t.Errorf("line %d is %d characters with its CRLF, want 122", i+1, len(l))
				}
			}
		})
	}
}

func TestDebitFileBalances(t *testing.T) {
	plain := debitFile(t, false)
	if got, want := plain.Totals(), (aba.Totals{Net: 134999 + 1, Credit: 0, Debit: 135000, Count: 3}); got != want {
		t.Errorf("without self-balancing: totals %+v, want %+v", got, want)
	}
	balanced := debitFile(t, true)
	if got, want := balanced.Totals(), (aba.Totals{Net: 0, Credit: 135000, Debit: 135000, Count: 4}); got != want {
		t.Errorf("self-balancing: totals %+v, want %+v", got, want)
	}
	credit := balanced.Details[len(balanced.Details)-1]
	want := aba.Detail{Entry: aba.Entry{
		BSB: "062-000", Account: "12345678", Code: aba.CodeCredit, Amount: 135000, Title: "PYNG RECEIVABLES PTY LTD",
		LodgementReference: "DEBITS", TraceBSB: "062-000", TraceAccount: "12345678", Remitter: "PYNG RECEIVABLES",
	}}
	if credit != want {
		t.Errorf("self-balancing record %+v, want %+v", credit, want)
	}
	for i, d := range plain.Details {
		if d.Code != aba.CodeDebit || d.TraceBSB != "062-000" || d.TraceAccount != "12345678" {
			t.Errorf("debit %d: code %d, trace %s %s; want 13 to the user's trace account", i, d.Code, d.TraceBSB, d.TraceAccount)
		}
	}
}

func TestNewDebitFileReportsEveryBadDebit(t *testing.T) {
	bad := []aba.Debit{
		{BSB: "082-001", Account: "123456789", Title: "GOOD", Amount: 100},
		{BSB: "08200", Account: "123456789", Title: "BAD BSB", Amount: 100},
		{BSB: "082-001", Account: "123456789", Title: "BAD ~ TITLE", Amount: 0},
	}
	_, err := aba.NewDebitFile(debitUser(true), processing, bad)
	got := problems(err)
	want := []string{
		"line 3 BSB column 2",
		"line 4 amount column 21",
		"line 4 title of account column 35",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}
}

// A file of no items reads (a nil returns file), but NewDebitFile makes none of no debits: it would
// be nothing to lodge.
func TestNewDebitFileRefusesNoDebits(t *testing.T) {
	for _, selfBalancing := range []bool{false, true} {
		_, err := aba.NewDebitFile(debitUser(selfBalancing), processing, nil)
		if got, want := problems(err), []string{"line 2 record column 1"}; !reflect.DeepEqual(got, want) {
			t.Errorf("self-balancing %v: problems %q, want %q", selfBalancing, got, want)
		}
	}
}

func TestReadAcceptsAFileWithoutItsLastCRLF(t *testing.T) {
	// The gem writes no CRLF after the file total record; such a file reads, and is written back
	// with it.
	b, err := debitFile(t, false).MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	f, err := aba.Read(bytes.NewReader(bytes.TrimSuffix(b, []byte("\r\n"))))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	assertSameFile(t, f, debitFile(t, false))
}

func TestWriteWritesNothingForAnInvalidFile(t *testing.T) {
	f := debitFile(t, false)
	f.UserID = "12"
	var buf bytes.Buffer
	if err := aba.Write(&buf, f); err == nil || buf.Len() != 0 {
		t.Errorf("Write = %v and %d bytes; want an error and nothing written", err, buf.Len())
	}
	f.UserID = "301500"
	if err := aba.Write(&buf, f); err != nil {
		t.Fatal(err)
	}
	if want, _ := f.MarshalText(); !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("Write and MarshalText differ")
	}
	var back aba.File
	if err := back.UnmarshalText(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	assertSameFile(t, back, f)
}
