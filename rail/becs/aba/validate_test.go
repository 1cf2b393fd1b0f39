package aba_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/rail/becs/aba"
)

// problems lists err's problems as "line L FIELD column C", the three facts a caller needs to find
// each, in the order reported.
func problems(err error) []string {
	var es aba.Errors
	if !errors.As(err, &es) {
		if err == nil {
			return nil
		}
		return []string{"not aba.Errors: " + err.Error()}
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = fmt.Sprintf("line %d %s column %d", e.Line, e.Field, e.Column)
	}
	return out
}

// TestWriteRules checks every rule of every field the writer is given: a File with one fault is
// refused with exactly one problem, naming the line, the record, the field and the column.
func TestWriteRules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(f *aba.File)
		line    int
		record  aba.RecordType
		field   string
		column  int
		problem string
	}{
		{"reel sequence 0 is refused", func(f *aba.File) { f.ReelSequence = 0 }, 1, aba.RecordDescriptive, "reel sequence number", 19, "from 1 to 99"},
		{"reel sequence 100 is refused", func(f *aba.File) { f.ReelSequence = 100 }, 1, aba.RecordDescriptive, "reel sequence number", 19, "from 1 to 99"},
		{"institution of two letters is refused", func(f *aba.File) { f.Institution = "CB" }, 1, aba.RecordDescriptive, "financial institution", 21, "3 capital letters"},
		{"institution in lower case is refused at the letter", func(f *aba.File) { f.Institution = "Cba" }, 1, aba.RecordDescriptive, "financial institution", 22, "not a capital letter"},
		{"blank user name is refused", func(f *aba.File) { f.UserName = "  " }, 1, aba.RecordDescriptive, "user name", 31, "is blank"},
		{"user name of 27 characters is refused", func(f *aba.File) { f.UserName = strings.Repeat("A", 27) }, 1, aba.RecordDescriptive, "user name", 31, "holds 26"},
		{"user name with a leading blank is refused", func(f *aba.File) { f.UserName = " PYNG" }, 1, aba.RecordDescriptive, "user name", 31, "left-justified"},
		{"user name with a trailing blank is refused", func(f *aba.File) { f.UserName = "PYNG " }, 1, aba.RecordDescriptive, "user name", 35, "ends with a blank"},
		{"user name outside the BECS set is refused at the character", func(f *aba.File) { f.UserName = "PYNG~" }, 1, aba.RecordDescriptive, "user name", 35, "BECS"},
		{"user name with a non-ASCII letter is refused at its first byte", func(f *aba.File) { f.UserName = "CAFÉ" }, 1, aba.RecordDescriptive, "user name", 34, "BECS"},
		{"user ID of five digits is refused", func(f *aba.File) { f.UserID = "30150" }, 1, aba.RecordDescriptive, "user ID", 57, "6 digits"},
		{"user ID with a letter is refused at the letter", func(f *aba.File) { f.UserID = "30A500" }, 1, aba.RecordDescriptive, "user ID", 59, "not a digit"},
		{"blank description is refused", func(f *aba.File) { f.Description = "" }, 1, aba.RecordDescriptive, "description", 63, "is blank"},
		{"description of 13 characters is refused", func(f *aba.File) { f.Description = "DIRECTDEBITS1" }, 1, aba.RecordDescriptive, "description", 63, "holds 12"},
		{"processing date before 2000 is refused", func(f *aba.File) { f.ProcessingDate = time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC) }, 1, aba.RecordDescriptive, "processing date", 75, "2000 to 2099"},
		{"zero processing date is refused", func(f *aba.File) { f.ProcessingDate = time.Time{} }, 1, aba.RecordDescriptive, "processing date", 75, "2000 to 2099"},
		{"BSB of five digits is refused", func(f *aba.File) { f.Details[0].BSB = "08200" }, 2, aba.RecordDetail, "BSB", 2, "NNN-NNN or six digits"},
		{"BSB with another separator is refused at it", func(f *aba.File) { f.Details[0].BSB = "082 001" }, 2, aba.RecordDetail, "BSB", 5, "hyphen"},
		{"BSB with a letter is refused at it", func(f *aba.File) { f.Details[1].BSB = "03a-000" }, 3, aba.RecordDetail, "BSB", 4, "not a digit"},
		{"blank account number is refused", func(f *aba.File) { f.Details[0].Account = "" }, 2, aba.RecordDetail, "account number", 9, "is blank"},
		{"account number of ten characters is refused", func(f *aba.File) { f.Details[0].Account = "1234567890" }, 2, aba.RecordDetail, "account number", 9, "holds 9"},
		{"account number of zeros is refused", func(f *aba.File) { f.Details[0].Account = "000-000" }, 2, aba.RecordDetail, "account number", 11, "no digit but zero"},
		{"account number with a letter is refused where it falls", func(f *aba.File) { f.Details[0].Account = "12a45" }, 2, aba.RecordDetail, "account number", 15, "not a digit, a hyphen or a blank"},
		{"account number with a leading blank is refused", func(f *aba.File) { f.Details[0].Account = " 12345" }, 2, aba.RecordDetail, "account number", 12, "starts with a blank"},
		{"account number with a trailing blank is refused", func(f *aba.File) { f.Details[0].Account = "12345 " }, 2, aba.RecordDetail, "account number", 17, "right-justified"},
		{"unknown indicator is refused", func(f *aba.File) { f.Details[0].Indicator = "Z" }, 2, aba.RecordDetail, "indicator", 18, "blank, N, T, W, X or Y"},
		{"indicator of two letters is refused", func(f *aba.File) { f.Details[0].Indicator = "NN" }, 2, aba.RecordDetail, "indicator", 18, "blank, N, T, W, X or Y"},
		{"transaction code 12 is refused", func(f *aba.File) { f.Details[0].Code = 12 }, 2, aba.RecordDetail, "transaction code", 19, "13 or 50 to 57"},
		{"transaction code 58 is refused", func(f *aba.File) { f.Details[0].Code = 58 }, 2, aba.RecordDetail, "transaction code", 19, "13 or 50 to 57"},
		{"amount 0 is refused", func(f *aba.File) { f.Details[0].Amount = 0 }, 2, aba.RecordDetail, "amount", 21, "from 1 to 9999999999"},
		{"negative amount is refused", func(f *aba.File) { f.Details[0].Amount = -5 }, 2, aba.RecordDetail, "amount", 21, "from 1 to 9999999999"},
		{"amount of eleven digits is refused", func(f *aba.File) { f.Details[0].Amount = 10_000_000_000 }, 2, aba.RecordDetail, "amount", 21, "from 1 to 9999999999"},
		{"blank title is refused", func(f *aba.File) { f.Details[0].Title = "" }, 2, aba.RecordDetail, "title of account", 31, "is blank"},
		{"title of 33 characters is refused", func(f *aba.File) { f.Details[0].Title = strings.Repeat("T", 33) }, 2, aba.RecordDetail, "title of account", 31, "holds 32"},
		{"title outside the BECS set is refused at the character", func(f *aba.File) { f.Details[2].Title = `O"Brien` }, 4, aba.RecordDetail, "title of account", 32, "BECS"},
		{"lodgement reference of 19 characters is refused", func(f *aba.File) { f.Details[0].LodgementReference = strings.Repeat("R", 19) }, 2, aba.RecordDetail, "lodgement reference", 63, "holds 18"},
		{"lodgement reference outside the BECS set is refused", func(f *aba.File) { f.Details[0].LodgementReference = "INV{1}" }, 2, aba.RecordDetail, "lodgement reference", 66, "BECS"},
		{"lodgement reference with a leading blank is refused", func(f *aba.File) { f.Details[0].LodgementReference = " INV" }, 2, aba.RecordDetail, "lodgement reference", 63, "left-justified"},
		{"trace BSB is checked", func(f *aba.File) { f.Details[0].TraceBSB = "" }, 2, aba.RecordDetail, "trace BSB", 81, "NNN-NNN or six digits"},
		{"trace account number is checked", func(f *aba.File) { f.Details[0].TraceAccount = "ABC" }, 2, aba.RecordDetail, "trace account number", 94, "not a digit"},
		{"blank remitter is refused", func(f *aba.File) { f.Details[0].Remitter = "" }, 2, aba.RecordDetail, "name of remitter", 97, "is blank"},
		{"remitter of 17 characters is refused", func(f *aba.File) { f.Details[0].Remitter = "PYNG RECEIVABLES!" }, 2, aba.RecordDetail, "name of remitter", 97, "holds 16"},
		{"negative withholding tax is refused", func(f *aba.File) { f.Details[0].WithholdingTax = -1 }, 2, aba.RecordDetail, "withholding tax", 113, "from 0 to 99999999"},
		{"withholding tax of nine digits is refused", func(f *aba.File) { f.Details[0].WithholdingTax = 100_000_000 }, 2, aba.RecordDetail, "withholding tax", 113, "from 0 to 99999999"},
		{"a file of details and returns is refused", func(f *aba.File) { f.Returns = returnsFile().Returns }, 5, aba.RecordReturn, "record", 1, "not both"},
		{"a credit total beyond ten digits is refused", func(f *aba.File) {
			// Two credits and a debit of the largest amount: the net total fits, the credit total
			// does not.
			for i, code := range []aba.TransactionCode{aba.CodeCredit, aba.CodePay, aba.CodeDebit} {
				f.Details[i].Code, f.Details[i].Amount = code, 9_999_999_999
			}
		}, 5, aba.RecordTotal, "credit total", 31, "from 0 to 9999999999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := debitFile(t, false)
			tc.change(&f)
			err := f.Validate()
			var es aba.Errors
			if !errors.As(err, &es) {
				t.Fatalf("Validate = %v, want aba.Errors", err)
			}
			if len(es) != 1 {
				t.Fatalf("%d problems, want 1:\n%v", len(es), err)
			}
			got := es[0]
			if got.Line != tc.line || got.Record != tc.record || got.Field != tc.field || got.Column != tc.column || !strings.Contains(got.Problem, tc.problem) {
				t.Errorf("problem %q;\nwant line %d, %s, %s, column %d, saying %q", got, tc.line, tc.record, tc.field, tc.column, tc.problem)
			}
			if _, err := f.MarshalText(); err == nil {
				t.Errorf("MarshalText accepted what Validate refused")
			}
		})
	}
}

func TestWriteAcceptsWhatTheFormatAllows(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(f *aba.File)
		line   int
		column int
		want   string
	}{
		{"a BSB of six digits is written NNN-NNN", func(f *aba.File) { f.Details[0].BSB = "082001" }, 2, 2, "082-001"},
		{"an empty lodgement reference is blank-filled", func(f *aba.File) { f.Details[0].LodgementReference = "" }, 2, 63, strings.Repeat(" ", 18)},
		{"every BECS special character is written", func(f *aba.File) { f.Details[0].Title = "a+-@$!%&()*./#=:;?,'[]_^ Z9" }, 2, 31, "a+-@$!%&()*./#=:;?,'[]_^ Z9"},
		{"indicator N is written", func(f *aba.File) { f.Details[0].Indicator = aba.IndicatorNew }, 2, 18, "N"},
		{"the largest amount is written", func(f *aba.File) {
			f.Details = f.Details[:1]
			f.Details[0].Amount = 9_999_999_999
		}, 2, 21, "9999999999"},
		{"the processing date is written DDMMYY in its own location", func(f *aba.File) {
			f.ProcessingDate = time.Date(2026, 3, 9, 23, 30, 0, 0, time.FixedZone("AEDT", 11*3600))
		}, 1, 75, "090326"},
		{"reel sequence 99 is written", func(f *aba.File) { f.ReelSequence = 99 }, 1, 19, "99"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := debitFile(t, false)
			tc.change(&f)
			b, err := f.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			line := strings.Split(string(b), "\r\n")[tc.line-1]
			if got := line[tc.column-1 : tc.column-1+len(tc.want)]; got != tc.want {
				t.Errorf("line %d column %d: %q, want %q", tc.line, tc.column, got, tc.want)
			}
		})
	}
}

// golden reads a golden file as lines without their CRLF.
func golden(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n")
}

// overwrite puts s over line (1-based) at column (1-based).
func overwrite(lines []string, line, column int, s string) {
	l := lines[line-1]
	lines[line-1] = l[:column-1] + s + l[column-1+len(s):]
}

// TestReadRules checks the reader's rules: each golden file, spoilt in one place, is refused with
// the problems naming their line, field and column. It reads with ReadBlocks, whose reading Read
// shares (Read refuses, besides, a file of several blocks: TestGoldenFiles).
func TestReadRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		file  string
		spoil func(lines []string) []string // nil: lines joined by CRLF as they are
		want  []string
	}{
		{name: "a blank filler holding a character", file: "debit.aba", spoil: set(1, 18, "X"), want: []string{"line 1 blank column 18"}},
		{name: "a funds BSB without its hyphen", file: "debit.aba", spoil: set(1, 2, "062000 "), want: []string{"line 1 funds BSB column 5"}},
		{name: "a funds account number left-justified", file: "debit.aba", spoil: set(1, 9, "1234     "), want: []string{"line 1 funds account number column 17"}},
		{name: "reel sequence 00", file: "debit.aba", spoil: set(1, 19, "00"), want: []string{"line 1 reel sequence number column 19"}},
		{name: "reel sequence blank", file: "debit.aba", spoil: set(1, 19, " 1"), want: []string{"line 1 reel sequence number column 19"}},
		{name: "institution in lower case", file: "debit.aba", spoil: set(1, 23, "a"), want: []string{"line 1 financial institution column 23"}},
		{name: "user name right-justified", file: "debit.aba", spoil: set(1, 31, "  PYNG RECEIVABLES PTY LTD"), want: []string{"line 1 user name column 31"}},
		{name: "user ID with a blank", file: "debit.aba", spoil: set(1, 57, " 01500"), want: []string{"line 1 user ID column 57"}},
		{name: "description blank", file: "debit.aba", spoil: set(1, 63, "            "), want: []string{"line 1 description column 63"}},
		{name: "processing date 30 February", file: "debit.aba", spoil: set(1, 75, "300226"), want: []string{"line 1 processing date column 75"}},
		{name: "processing date with a slash", file: "debit.aba", spoil: set(1, 75, "09/326"), want: []string{"line 1 processing date column 77"}},
		{name: "BSB without its hyphen", file: "debit.aba", spoil: set(2, 2, "082001 "), want: []string{"line 2 BSB column 5"}},
		{name: "account number left-justified", file: "debit.aba", spoil: set(3, 9, "00-1234  "), want: []string{"line 3 account number column 17"}},
		{name: "account number blank", file: "debit.aba", spoil: set(3, 9, "         "), want: []string{"line 3 account number column 9"}},
		{name: "indicator Z", file: "debit.aba", spoil: set(2, 18, "Z"), want: []string{"line 2 indicator column 18"}},
		{name: "transaction code 12", file: "debit.aba", spoil: set(2, 19, "12"), want: []string{"line 2 transaction code column 19"}},
		{name: "amount with a blank instead of a zero", file: "debit.aba", spoil: set(2, 21, " "), want: []string{"line 2 amount column 21"}},
		{name: "amount zero", file: "debit.aba", spoil: set(4, 21, "0000000000"), want: []string{"line 4 amount column 21"}},
		{name: "title outside the BECS set", file: "debit.aba", spoil: set(2, 40, "~"), want: []string{"line 2 title of account column 40"}},
		{name: "title blank", file: "debit.aba", spoil: set(2, 31, strings.Repeat(" ", 32)), want: []string{"line 2 title of account column 31"}},
		{name: "lodgement reference with a leading blank", file: "debit.aba", spoil: set(2, 63, " INV-2041"), want: []string{"line 2 lodgement reference column 63"}},
		{name: "trace BSB wrong", file: "debit.aba", spoil: set(2, 81, "062=000"), want: []string{"line 2 trace BSB column 84"}},
		{name: "trace account zeros", file: "debit.aba", spoil: set(2, 88, " 00000000"), want: []string{"line 2 trace account number column 89"}},
		{name: "remitter blank", file: "debit.aba", spoil: set(2, 97, strings.Repeat(" ", 16)), want: []string{"line 2 name of remitter column 97"}},
		{name: "withholding tax blank", file: "debit.aba", spoil: set(2, 113, "        "), want: []string{"line 2 withholding tax column 113"}},
		{name: "return reason 0", file: "returns.aba", spoil: set(2, 18, "0"), want: []string{"line 2 return reason column 18"}},
		{name: "return reason blank", file: "returns.aba", spoil: set(3, 18, " "), want: []string{"line 3 return reason column 18"}},
		{name: "original day 32", file: "returns.aba", spoil: set(2, 113, "32"), want: []string{"line 2 original day of processing column 113"}},
		{name: "original user ID with a letter", file: "returns.aba", spoil: set(2, 117, "X"), want: []string{"line 2 original user ID column 117"}},
		{name: "total filler wrong", file: "debit.aba", spoil: set(5, 2, "999-998"), want: []string{"line 5 BSB filler column 8"}},
		{name: "total blank holding a character", file: "debit.aba", spoil: set(5, 60, "0"), want: []string{"line 5 blank column 60"}},
		{name: "totals that do not balance", file: "debit.aba", spoil: set(2, 21, "0000125001"), want: []string{
			"line 5 net total column 21", "line 5 debit total column 41"}},
		{name: "a count that does not match", file: "debit.aba", spoil: set(5, 75, "000004"), want: []string{"line 5 record count column 75"}},
		{name: "a record one character short", file: "debit.aba", spoil: func(l []string) []string { l[1] = l[1][:119]; return l }, want: []string{
			"line 2 record length column 120"}},
		{name: "a record one character long", file: "debit.aba", spoil: func(l []string) []string { l[2] += " "; return l }, want: []string{
			"line 3 record length column 121"}},
		{name: "an empty line", file: "debit.aba", spoil: func(l []string) []string { return append(l[:2], append([]string{""}, l[2:]...)...) }, want: []string{
			"line 3 record column 1"}},
		{name: "no file total record", file: "debit.aba", spoil: func(l []string) []string { return l[:4] }, want: []string{
			"line 5 record column 1"}},
		{name: "no descriptive record", file: "debit.aba", spoil: func(l []string) []string { return l[1:] }, want: []string{
			"line 1 record type column 1"}},
		{name: "a second descriptive record", file: "debit.aba", spoil: func(l []string) []string { return append(l[:1], l...) }, want: []string{
			"line 2 record type column 1"}},
		{name: "a record after the file total record", file: "debit.aba", spoil: func(l []string) []string { return append(l, l[1]) }, want: []string{
			"line 6 record type column 1"}},
		{name: "a blank line, then a record after the file total record", file: "debit.aba", spoil: func(l []string) []string { return append(l, "", l[1]) }, want: []string{
			"line 6 record column 1", "line 7 record type column 1"}},
		{name: "blanks after the file total record", file: "debit.aba", spoil: func(l []string) []string { return append(l, " ") }, want: []string{
			"line 6 record length column 2", "line 6 record type column 1"}},
		{name: "a byte order mark before a record after the first", file: "debit.aba", spoil: func(l []string) []string { l[1] = "\ufeff" + l[1]; return l }, want: []string{
			"line 2 record length column 121", "line 2 record type column 1", "line 5 record count column 75", "line 5 net total column 21", "line 5 debit total column 41"}},
		{name: "a DOS end-of-file mark before the file total record", file: "debit.aba", spoil: func(l []string) []string { return append(l[:4], "\x1a", l[4]) }, want: []string{
			"line 5 record length column 2", "line 5 record type column 1"}},
		{name: "a second file total record", file: "debit.aba", spoil: func(l []string) []string { return append(l, l[4]) }, want: []string{
			"line 6 record type column 1"}},
		{name: "an unknown record type", file: "debit.aba", spoil: set(2, 1, "3"), want: []string{
			"line 2 record type column 1", "line 5 record count column 75", "line 5 net total column 21", "line 5 debit total column 41"}},
		{name: "details and returns mixed", file: "debit.aba", spoil: set(3, 1, "2"), want: []string{
			"line 3 record type column 1", "line 3 return reason column 18", "line 3 original day of processing column 113"}},
		{name: "no items, with the totals of some", file: "debit.aba", spoil: func(l []string) []string { return []string{l[0], l[4]} }, want: []string{
			"line 2 record count column 75", "line 2 net total column 21", "line 2 debit total column 41"}},
		// A file of several blocks (lines 1-4, 5-6 and 7-9): each balances on its own.
		{name: "blocks: a block's totals that do not balance", file: "returns-blocks.aba", spoil: set(8, 21, "0000010000"), want: []string{
			"line 9 net total column 21", "line 9 debit total column 41"}},
		{name: "blocks: a block's count that does not match", file: "returns-blocks.aba", spoil: set(6, 75, "000001"), want: []string{
			"line 6 record count column 75"}},
		{name: "blocks: a descriptive record before the file total record of the block before", file: "returns-blocks.aba",
			spoil: func(l []string) []string { return append(l[:3], l[4:]...) }, want: []string{
				"line 4 record type column 1", "line 5 record count column 75", "line 5 net total column 21", "line 5 debit total column 41"}},
		{name: "blocks: details in one, returns in another", file: "debit.aba",
			spoil: func(l []string) []string { return append(l, golden(t, "returns.aba")...) }, want: []string{
				"line 7 record type column 1", "line 8 record type column 1"}},
		{name: "problems on several lines are all reported", file: "debit.aba", spoil: func(l []string) []string {
			return set(1, 19, "00")(set(2, 18, "Z")(set(4, 97, " ")(l)))
		}, want: []string{"line 1 reel sequence number column 19", "line 2 indicator column 18", "line 4 name of remitter column 97"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := golden(t, tc.file)
			if tc.spoil != nil {
				lines = tc.spoil(lines)
			}
			_, err := aba.ReadBlocks(strings.NewReader(records(lines...)))
			if got := problems(err); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems\n%q\nwant\n%q\n(%v)", got, tc.want, err)
			}
		})
	}
}

// records is a file of the records l, each ended by CRLF.
func records(l ...string) string { return strings.Join(l, "\r\n") + "\r\n" }

// set returns a spoiler that overwrites line at column with s.
func set(line, column int, s string) func([]string) []string {
	return func(l []string) []string {
		overwrite(l, line, column, s)
		return l
	}
}

func TestReadOfNothing(t *testing.T) {
	for in, want := range map[string][]string{
		"":     {"line 1 record column 1"},
		"\r\n": {"line 1 record column 1", "line 2 record column 1"},
	} {
		_, err := aba.Read(strings.NewReader(in))
		if got := problems(err); !reflect.DeepEqual(got, want) {
			t.Errorf("Read(%q): problems %q, want %q", in, got, want)
		}
	}
}

// TestReadTellsAFileCutShortFromAMalformedOne: a file that ends early and reads well up to its
// end, as one still being uploaded does, is ErrIncomplete, its problems named at their line and
// column as any file's are; a file with any other problem is not, cut short or whole, nor is a
// file Read accepts.
func TestReadTellsAFileCutShortFromAMalformedOne(t *testing.T) {
	for _, tc := range []struct {
		name       string
		content    func(l []string) string // of the records of returns.aba: types 0, 2, 2, 7
		want       []string
		incomplete bool
	}{
		{"cut within a returned-item record", func(l []string) string { return records(l[:2]...) + l[2][:50] },
			[]string{"line 3 record length column 51", "line 4 record column 1"}, true},
		{"cut before its file total record", func(l []string) string { return records(l[:3]...) },
			[]string{"line 4 record column 1"}, true},
		{"cut within its file total record", func(l []string) string { return records(l[:3]...) + l[3][:60] },
			[]string{"line 4 record length column 61"}, true},
		{"cut between the CR and the LF of a record", func(l []string) string { return records(l[0]) + l[1] + "\r" },
			[]string{"line 2 record length column 121", "line 3 record column 1"}, true},
		{"cut between the CR and the LF of a file total record without its trailing blanks", func(l []string) string {
			return records(l[:3]...) + strings.TrimRight(l[3], " ") + "\r"
		}, []string{"line 4 record length column 82"}, true},
		{"cut before its first character", func([]string) string { return "" },
			[]string{"line 1 record column 1"}, true},
		{"cut where the trailing blanks of its file total record begin", func(l []string) string { return records(l[:3]...) + l[3][:80] },
			[]string{"line 4 record length column 81"}, true},
		{"cut within the trailing blanks of its file total record", func(l []string) string { return records(l[:3]...) + l[3][:98] },
			[]string{"line 4 record length column 99"}, true},
		{"cut within the trailing blanks of its file total record, its records ended by LF alone", func(l []string) string {
			return strings.Join(l[:3], "\n") + "\n" + l[3][:119]
		}, []string{"line 4 record length column 120"}, true},
		{"whole but for the CRLF after its file total record", func(l []string) string { return strings.Join(l, "\r\n") },
			nil, false},
		{"whole, with a field wrong", func(l []string) string { return records(set(2, 18, "0")(l)...) },
			[]string{"line 2 return reason column 18"}, false},
		{"whole, with a record short of a character", func(l []string) string { l[1] = l[1][:119]; return records(l...) },
			[]string{"line 2 record length column 120"}, false},
		{"whole, with a last record a character long and no CRLF", func(l []string) string { return strings.Join(l, "\r\n") + " " },
			[]string{"line 4 record length column 121"}, false},
		{"cut short, with a field wrong before the cut", func(l []string) string { return records(set(2, 18, "0")(l)[:3]...) },
			[]string{"line 2 return reason column 18", "line 4 record column 1"}, false},
		{"cut short, its records ended by LF alone", func(l []string) string { return strings.Join(l[:3], "\n") + "\n" },
			[]string{"line 4 record column 1"}, true},
		{"cut short within a record, its records ended by LF alone", func(l []string) string { return strings.Join(l[:3], "\n") + "\n" + l[3][:50] },
			[]string{"line 4 record length column 51"}, true},
		{"an empty record, then nothing", func([]string) string { return "\r\n" },
			[]string{"line 1 record column 1", "line 2 record column 1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := aba.Read(strings.NewReader(tc.content(golden(t, "returns.aba"))))
			if got := problems(err); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems\n%q\nwant\n%q\n(%v)", got, tc.want, err)
			}
			if got := errors.Is(err, aba.ErrIncomplete); got != tc.incomplete {
				t.Errorf("errors.Is(err, ErrIncomplete) = %v, want %v (%v)", got, tc.incomplete, err)
			}
		})
	}
	// Wherever a golden file is cut, it is incomplete, but before the CRLF after its file total
	// record, which a whole file may lack: cut there, it reads as the whole file. Its records have
	// their trailing blanks, so that one cut within the blank filler that ends its file total
	// record (its last 40 columns) is incomplete too.
	for _, name := range []string{"debit.aba", "returns.aba"} {
		whole, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		want, err := aba.Read(bytes.NewReader(whole))
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(whole) {
			got, err := aba.Read(bytes.NewReader(whole[:n]))
			if n == len(whole)-2 {
				if err != nil {
					t.Fatalf("%s cut to %d bytes of %d, before its last CRLF: %v", name, n, len(whole), err)
				}
				assertSameFile(t, got, want)
				continue
			}
			if !errors.Is(err, aba.ErrIncomplete) {
				t.Fatalf("%s cut to %d bytes of %d: %v; want ErrIncomplete", name, n, len(whole), err)
			}
		}
	}
}

// TestReadBlocksOfAFileCutShort: a file of several blocks cut anywhere within a block is incomplete,
// as a file of one is, within the trailing blanks of a block's file total record too; cut between
// two blocks (before or after the CRLF that ends the first), it reads as a whole file of the
// blocks before the cut, which is why the SFTP returns job imports a file only once it has been
// unchanged for as long as it waits for an incomplete one.
func TestReadBlocksOfAFileCutShort(t *testing.T) {
	whole, err := os.ReadFile("testdata/returns-blocks.aba")
	if err != nil {
		t.Fatal(err)
	}
	blocks := blocksReturnsFile()
	var ends []int // where each block ends, after the CRLF of its file total record
	for i := range blocks {
		ends = append(ends, len(marshalBlocks(t, blocks[:i+1])))
	}
	for n := range len(whole) {
		got, err := aba.ReadBlocks(bytes.NewReader(whole[:n]))
		read := 0 // the blocks read whole, when the cut leaves them so
		for k, end := range ends {
			if n == end || n == end-2 {
				read = k + 1
			}
		}
		if read == 0 {
			if !errors.Is(err, aba.ErrIncomplete) {
				t.Fatalf("cut to %d bytes of %d: %v; want ErrIncomplete", n, len(whole), err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("cut to %d bytes, at the end of block %d: %v", n, read, err)
		}
		if !reflect.DeepEqual(got, blocks[:read]) {
			t.Fatalf("cut to %d bytes: blocks %+v, want the first %d", n, got, read)
		}
	}
}

// TestReadLetsPassWhatCarriesNothing: a byte order mark before the first record, blank lines after
// the file total record and a DOS end-of-file mark last, as an editor or a transfer from Windows
// adds them, and records ended by LF alone, as a transfer in text mode to a Unix host leaves
// them, leave the file as it reads with CRLFs and without the rest; it is the same file
// (Canonical) as the bank's.
func TestReadLetsPassWhatCarriesNothing(t *testing.T) {
	whole, err := os.ReadFile("testdata/returns.aba")
	if err != nil {
		t.Fatal(err)
	}
	unended := strings.TrimSuffix(string(whole), "\r\n")
	for name, content := range map[string]string{
		"a byte order mark":                            "\ufeff" + string(whole),
		"a blank line":                                 string(whole) + "\r\n",
		"blank lines ended by CRLF, LF and CR":         string(whole) + "\r\n\n\r",
		"a DOS end-of-file mark":                       string(whole) + "\x1a",
		"a DOS end-of-file mark after the last record": unended + "\x1a",
		"all of them":                                  "\ufeff" + string(whole) + "\r\n\r\n\x1a",
		"records ended by LF alone":                    strings.ReplaceAll(string(whole), "\r\n", "\n"),
		"records ended by LF alone, the last by none":  strings.ReplaceAll(unended, "\r\n", "\n"),
		"records ended by LF alone, then a blank line": strings.ReplaceAll(string(whole), "\r\n", "\n") + "\n",
		"one record ended by LF alone":                 strings.Replace(string(whole), "\r\n", "\n", 1),
	} {
		t.Run(name, func(t *testing.T) {
			f, err := aba.Read(strings.NewReader(content))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			assertSameFile(t, f, returnsFile())
			if got := aba.Canonical([]byte(content)); !bytes.Equal(got, whole) {
				t.Errorf("Canonical\n%q\nwant the golden file\n%q", got, whole)
			}
		})
	}
}

// TestReadTakesRecordsWithoutTheirTrailingBlanks: the descriptive and file total records end with
// 40 columns of blank filler, which an editor, or the system that wrote the file (NAB's sample
// direct-entry file has both records 80 characters long), may leave out. Such a record reads as
// if its blanks were there, and the file is the same file (Canonical) as with them; a record short
// of any column that is not filler is still refused.
func TestReadTakesRecordsWithoutTheirTrailingBlanks(t *testing.T) {
	whole, err := os.ReadFile("testdata/returns.aba")
	if err != nil {
		t.Fatal(err)
	}
	l := golden(t, "returns.aba") // types 0, 2, 2, 7
	trim := func(s string) string { return strings.TrimRight(s, " ") }
	for _, tc := range []struct {
		name    string
		content string
		want    []string // the problems; none: the file reads as returns.aba
	}{
		{"the descriptive record trimmed", records(trim(l[0]), l[1], l[2], l[3]), nil},
		{"the file total record trimmed", records(l[0], l[1], l[2], trim(l[3])), nil},
		{"both trimmed, the last without its CRLF", strings.Join([]string{trim(l[0]), l[1], l[2], trim(l[3])}, "\r\n"), nil},
		{"a record trimmed within its filler", records(l[0][:100], l[1], l[2], l[3][:81]), nil},
		{"a descriptive record trimmed into its date", records(l[0][:79], l[1], l[2], l[3]), []string{"line 1 record length column 80"}},
		{"a file total record trimmed into its count", records(l[0], l[1], l[2], l[3][:79]), []string{"line 4 record length column 80"}},
		{"a trimmed record with a character in its filler", records(l[0]+"", l[1], l[2], trim(l[3])+"  X"), []string{"line 4 blank column 83"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := aba.Read(strings.NewReader(tc.content))
			if got := problems(err); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("problems\n%q\nwant\n%q\n(%v)", got, tc.want, err)
			}
			if tc.want != nil {
				return
			}
			assertSameFile(t, f, returnsFile())
			if got := aba.Canonical([]byte(tc.content)); !bytes.Equal(got, whole) {
				t.Errorf("Canonical\n%q\nwant the golden file\n%q", got, whole)
			}
		})
	}
}

// TestReadTakesTheFundsAccountOfTheDescriptiveRecord: some institutions' files carry the user's
// funds account in the descriptive record, its BSB in columns 2-8 and its number in 9-17 (ANZ's
// client file formats document both as optional; the zeptofs/aba gem writes the BSB); a file
// with them reads, gives them back, and is written again as it was.
func TestReadTakesTheFundsAccountOfTheDescriptiveRecord(t *testing.T) {
	for _, tc := range []struct {
		name, columns2to17 string
		bsb                aba.BSB
		account            string
	}{
		{"a funds BSB and account number", "062-000 12345678", "062-000", "12345678"},
		{"a funds BSB alone", "013-999         ", "013-999", ""},
		{"a funds account number alone", "        12345678", "", "12345678"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := set(1, 2, tc.columns2to17)(golden(t, "returns.aba"))
			content := strings.Join(lines, "\r\n") + "\r\n"
			f, err := aba.Read(strings.NewReader(content))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			want := returnsFile()
			want.FundsBSB, want.FundsAccount = tc.bsb, tc.account
			assertSameFile(t, f, want)
			if b, err := f.MarshalText(); err != nil || string(b) != content {
				t.Errorf("MarshalText = %q, %v; want the file read", b, err)
			}
		})
	}
}

func TestReadStopsAfterAThousandProblems(t *testing.T) {
	_, err := aba.Read(bytes.NewReader(bytes.Repeat([]byte("\n"), 100_000)))
	var es aba.Errors
	if !errors.As(err, &es) {
		t.Fatalf("Read = %v", err)
	}
	if len(es) > 1001 || !strings.Contains(es[len(es)-1].Problem, "not read") {
		t.Errorf("%d problems, the last %q; want at most 1001, the last saying the rest was not read", len(es), es[len(es)-1])
	}
}

func TestFieldErrorSaysWhereAndWhat(t *testing.T) {
	e := &aba.FieldError{Line: 3, Record: aba.RecordDetail, Field: "title of account", Column: 40, Problem: `"~" is not in the BECS character set`}
	want := `line 3, detail record (type 1), column 40 (title of account): "~" is not in the BECS character set`
	if e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
	var err error = aba.Errors{e, e}
	var fe *aba.FieldError
	if !errors.As(err, &fe) || fe != e {
		t.Errorf("errors.As does not find the FieldError in Errors")
	}
	if got := err.Error(); got != want+"\n"+want {
		t.Errorf("Errors.Error() = %q", got)
	}
}
