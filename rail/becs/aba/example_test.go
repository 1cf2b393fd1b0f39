package aba_test

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pyng/receivables/rail/becs/aba"
)

func ExampleNewDebitFile() {
	user := aba.DebitUser{
		UserID: "301500", UserName: "PYNG RECEIVABLES PTY LTD", Institution: "CBA", Description: "DEBITS",
		TraceBSB: "062000", TraceAccount: "12345678", Remitter: "PYNG RECEIVABLES", SelfBalancing: true,
	}
	f, err := aba.NewDebitFile(user, time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC), []aba.Debit{
		{BSB: "082001", Account: "123456789", Title: "ACME SUPPLIES PTY LTD", Amount: 125000, LodgementReference: "INV-2041"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := f.MarshalText()
	if err != nil {
		fmt.Println(err)
		return
	}
	// Each record, quoted to show its blanks and its CRLF.
	for _, record := range strings.SplitAfter(string(b), "\r\n") {
		if record != "" {
			fmt.Printf("%q\n", record)
		}
	}
	// Output:
	// "0                 01CBA       PYNG RECEIVABLES PTY LTD  301500DEBITS      090326                                        \r\n"
	// "1082-001123456789 130000125000ACME SUPPLIES PTY LTD           INV-2041          062-000 12345678PYNG RECEIVABLES00000000\r\n"
	// "1062-000 12345678 500000125000PYNG RECEIVABLES PTY LTD        DEBITS            062-000 12345678PYNG RECEIVABLES00000000\r\n"
	// "7999-999            000000000000001250000000125000                        000002                                        \r\n"
}

func ExampleRead() {
	b, _ := os.ReadFile("testdata/returns.aba")
	f, err := aba.Read(strings.NewReader(string(b)))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range f.Returns {
		fmt.Printf("%s %d cents: %s (%s), retry: %v\n", r.LodgementReference, r.Amount, r.Reason, r.Reason.Name(), r.Reason.Retryable())
	}
	// Output:
	// INV-2041 125000 cents: 6 refer to customer (referToCustomer), retry: true
	// PYNG 7F3K9Q 9999 cents: 3 account closed (accountClosed), retry: false
}

func ExampleErrors() {
	spoilt := strings.Replace(string(mustRead("testdata/debit.aba")), "ACME SUPPLIES", "ACME~SUPPLIES", 1)
	spoilt = strings.Replace(spoilt, "01CBA", "00CBA", 1)
	_, err := aba.Read(strings.NewReader(spoilt))
	fmt.Println(err)
	// Output:
	// line 1, descriptive record (type 0), column 19 (reel sequence number): is 00; it must be from 1 to 99
	// line 2, detail record (type 1), column 35 (title of account): "~" is not in the BECS character set
}

func mustRead(name string) []byte {
	b, err := os.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}
