package main

import (
	"strings"
	"testing"
)

// A spreadsheet's "CSV UTF-8" export (Google Sheets, LibreOffice with "quote all") starts with a
// BOM and quotes every field; the header must still be recognised.
func TestABOMBeforeAQuotedHeader(t *testing.T) {
	in := "\ufeff\"rowReference\",\"customerReference\",\"amount\"\r\n\"INV-1\",\"ACME-001\",\"120.00\"\r\n"
	rows, err := readRows(strings.NewReader(in), "f.csv", false)
	if err != nil {
		t.Fatalf("readRows: %v", err)
	}
	if len(rows) != 1 || rows[0].Amount != 12000 {
		t.Errorf("rows = %+v", rows)
	}
}

func TestABOMBeforeAQuotedRow(t *testing.T) {
	in := "\ufeff\"INV-1\",\"ACME-001\",\"120.00\"\n"
	rows, err := readRows(strings.NewReader(in), "f.csv", false)
	if err != nil {
		t.Fatalf("readRows: %v", err)
	}
	if len(rows) != 1 {
		t.Errorf("rows = %+v", rows)
	}
}

func TestAmountsOutOfShapeAreRefused(t *testing.T) {
	for _, c := range []struct {
		in    string
		cents bool
		ok    bool
		want  int64
	}{
		{"1,000.00", false, false, 0}, {"-5", false, false, 0}, {"-5", true, false, 0}, {"0.001", false, false, 0},
		{"0.00", false, false, 0}, {"0", true, false, 0}, {"10000000.00", false, true, 1_000_000_000},
		{"10000000.01", false, false, 0}, {"+5.00", false, false, 0}, {"99999999999999999999.00", false, false, 0},
		{"1000000001", true, false, 0}, {"0.01", false, true, 1}, {"１２.００", false, false, 0},
	} {
		v, err := parseAmount(c.in, c.cents)
		if (err == nil) != c.ok || v != c.want {
			t.Errorf("parseAmount(%q, %v) = %d, %v", c.in, c.cents, v, err)
		}
	}
}

func TestCRLFAndAQuotedAmountWithACommaAreRead(t *testing.T) {
	in := "rowReference,customerReference,amount\r\nINV-1,ACME-001,\"1,000.00\"\r\nINV-2,ACME-001,5.00\r\n"
	_, err := readRows(strings.NewReader(in), "f.csv", false)
	if err == nil || !strings.Contains(err.Error(), "f.csv:2:") {
		t.Errorf("err = %v", err)
	}
}

// A header line in a file with a broken first line: still the problem with its line.
func TestAParseErrorIsReportedWithItsLineAndReadingGoesOn(t *testing.T) {
	in := "rowReference,customerReference,amount\nINV-1,\"ACME\"x,1.00\nINV-2,ACME,2.00\n"
	_, err := readRows(strings.NewReader(in), "f.csv", false)
	t.Logf("err = %v", err)
	if err == nil {
		t.Errorf("no error")
	}
}

// The README: "batches show REF --csv" writes the rows with amounts in cents, "--cents to submit
// such a file again". Its header names the three columns of a row, then the outcome's, which are
// ignored but for a row that may have been collected (see collected); without such a header a row
// of more than three fields is still refused.
func TestTheCSVOfBatchesShowIsSubmittedAgainWithCents(t *testing.T) {
	header := "rowReference,customerReference,amount,state,failureReason,retryable,outcomeAt,fileId,returnedAt,returnReason\r\n"
	shown := header +
		"INV-2,ACME-002,4551,failed,insufficientFunds,true,1796079815648,,,\r\n" +
		"INV-5,ACME-002,700,succeeded,,true,1796079815648,file_x,1796079999999,referToCustomer\r\n"
	rows, err := readRows(strings.NewReader(shown), "f.csv", true)
	if err != nil {
		t.Fatalf("readRows: %v", err)
	}
	if len(rows) != 2 || rows[0].RowReference != "INV-2" || rows[0].Amount != 4551 || rows[1].CustomerReference != "ACME-002" || rows[1].Amount != 700 {
		t.Errorf("rows = %+v", rows)
	}
	// A row that succeeded (not returned) or is still open was, or may yet be, collected.
	mayBeCollected := header +
		"INV-1,ACME-002,12000,succeeded,,,1796079815648,,,\r\n" +
		"INV-2,ACME-002,4551,failed,insufficientFunds,true,1796079815648,,,\r\n" +
		"INV-3,ACME-002,300,pending,,,,,,\r\n" +
		"INV-4,ACME-002,400,inProgress,,,,file_x,,\r\n"
	_, err = readRows(strings.NewReader(mayBeCollected), "f.csv", true)
	for _, want := range []string{`f.csv:2: rowReference "INV-1" succeeded in the batch`, `f.csv:4: rowReference "INV-3" is still pending in the batch`,
		`f.csv:5: rowReference "INV-4" is still inProgress in the batch`, "3 problems; nothing was sent."} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("rows that may have been collected: err = %v, want it to hold %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "f.csv:3:") {
		t.Errorf("the failed row is refused too: %v", err)
	}
	short := "rowReference,customerReference,amount,state\nINV-1,ACME-002,12000\n"
	if _, err := readRows(strings.NewReader(short), "f.csv", true); err == nil || !strings.Contains(err.Error(), "f.csv:2: 3 fields; the header has 4") {
		t.Errorf("a row shorter than its header: %v", err)
	}
	noHeader := "INV-1,ACME-002,12000,succeeded\n"
	if _, err := readRows(strings.NewReader(noHeader), "f.csv", true); err == nil || !strings.Contains(err.Error(), "f.csv:1: 4 fields; a row is rowReference,customerReference,amount") {
		t.Errorf("a row of four fields without a header: %v", err)
	}
}
