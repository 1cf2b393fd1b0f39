package aba_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/rail/becs/aba"
)

// The records below are the exact expected records of the zeptofs/aba Ruby gem's specs, an
// implementation independent of this one: spec/lib/aba/batch_spec.rb (the type 0, 1 and 7
// records), spec/lib/aba/transaction_spec.rb (a type 1 record with a withholding tax indicator
// and amount) and spec/lib/aba/return_spec.rb (a type 2 record). Only the facts are taken: the
// inputs each spec gives and the record it expects.
//
// The gem tells a debit by a negative amount and writes every record with the code it is given
// (53 in its specs); the format, and this package, tell a debit by code 13. A detail record's
// bytes do not depend on that, and a type 7 record's bytes depend only on the totals and the
// count, so the gem's records are checked from files whose debits carry code 13.

// gemDetail is the detail record of batch_spec.rb with the given code and amount.
func gemDetail(code aba.TransactionCode, amount int64) aba.Detail {
	return aba.Detail{Entry: aba.Entry{
		BSB: "342-342", Account: "3244654", Code: code, Amount: amount, Title: "John Doe",
		LodgementReference: "R435564", TraceBSB: "453-543", TraceAccount: "45656733", Remitter: "Remitter",
	}}
}

// gemBatch is batch_spec.rb's batch: WPC, John Doe, user 466364, Payroll, processed 19 June 2015.
func gemBatch(details ...aba.Detail) aba.File {
	return aba.File{
		ReelSequence: 1, Institution: "WPC", UserName: "John Doe", UserID: "466364",
		Description: "Payroll", ProcessingDate: time.Date(2015, time.June, 19, 0, 0, 0, 0, time.UTC),
		Details: details,
	}
}

func TestWriterMatchesTheGemsRecords(t *testing.T) {
	blank40 := strings.Repeat(" ", 40)
	for _, tc := range []struct {
		name string
		file aba.File
		line int // 1-based
		want string
	}{
		{
			name: "descriptive record (batch_spec.rb, without bsb)",
			file: gemBatch(gemDetail(aba.CodePay, 30)),
			line: 1,
			want: "0                 01WPC       John Doe                  466364Payroll     190615" + blank40,
		},
		{
			name: "detail record of 30 cents (batch_spec.rb)",
			file: gemBatch(gemDetail(aba.CodePay, 30), gemDetail(aba.CodePay, 20)),
			line: 2,
			want: "1342-342  3244654 530000000030John Doe                        R435564           453-543 45656733Remitter        00000000",
		},
		{
			name: "detail record of 20 cents (batch_spec.rb)",
			file: gemBatch(gemDetail(aba.CodePay, 30), gemDetail(aba.CodePay, 20)),
			line: 3,
			want: "1342-342  3244654 530000000020John Doe                        R435564           453-543 45656733Remitter        00000000",
		},
		{
			name: "file total record, unbalanced: credit 30, debit 20 (batch_spec.rb)",
			file: gemBatch(gemDetail(aba.CodePay, 30), gemDetail(aba.CodeDebit, 20)),
			line: 4,
			want: "7999-999            000000001000000000300000000020                        000002" + blank40,
		},
		{
			name: "file total record, balanced: credits 30 and 30, debit 60 (batch_spec.rb)",
			file: gemBatch(gemDetail(aba.CodePay, 30), gemDetail(aba.CodePay, 30), gemDetail(aba.CodeDebit, 60)),
			line: 5,
			want: "7999-999            000000000000000000600000000060                        000003" + blank40,
		},
		{
			name: "detail record with indicator W and withholding tax (transaction_spec.rb)",
			file: gemBatch(aba.Detail{
				Entry: aba.Entry{
					BSB: "345-453", Account: "23432342", Code: aba.CodePay, Amount: 50050, Title: "John Doe",
					LodgementReference: "R45343", TraceBSB: "123-234", TraceAccount: "4647642", Remitter: "Remitter",
				},
				Indicator: aba.IndicatorDividendTreaty, WithholdingTax: 87,
			}),
			line: 2,
			want: "1345-453 23432342W530000050050John Doe                        R45343            123-234  4647642Remitter        00000087",
		},
		{
			name: "returned-item record, reason 8 (return_spec.rb)",
			file: aba.File{
				ReelSequence: 1, Institution: "WPC", UserName: "John Doe", UserID: "466364", Description: "Returns",
				ProcessingDate: time.Date(2015, time.June, 19, 0, 0, 0, 0, time.UTC),
				Returns: []aba.Return{{
					Entry: aba.Entry{
						BSB: "123-234", Account: "4647642", Code: aba.CodePay, Amount: 50050, Title: "John Doe",
						LodgementReference: "R45343", TraceBSB: "345-453", TraceAccount: "23432342", Remitter: "Remitter",
					},
					Reason: aba.ReturnInvalidUserID, OriginalDay: 12, OriginalUserID: "054321",
				}},
			},
			line: 2,
			want: "2123-234  46476428530000050050John Doe                        R45343            345-453 23432342Remitter        12054321",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.file.MarshalText()
			if err != nil {
				t.Fatalf("MarshalText: %v", err)
			}
			lines := strings.Split(string(b), "\r\n")
			if got := lines[tc.line-1]; got != tc.want {
				t.Errorf("line %d:\n got %q\nwant %q", tc.line, got, tc.want)
			}
			back, err := aba.Read(strings.NewReader(string(b)))
			if err != nil {
				t.Fatalf("Read of what Write wrote: %v", err)
			}
			assertSameFile(t, back, tc.file)
		})
	}
}
