package main

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/client"
)

// A batch's summary counts the rows a bank returned apart from those that stayed succeeded, by
// return reason, each group retryable as its rows are.
func TestTheSummaryCountsReturnedRowsApart(t *testing.T) {
	yes, no := new(true), new(false)
	b := &client.BatchDetail{BatchWithSummary: client.BatchWithSummary{Batch: client.Batch{BatchReference: "B", State: client.BatchCompleted, RowCount: 5, TotalAmount: 1500}},
		Rows: []client.Row{
			{RowReference: "R1", Amount: 100, State: client.RowSucceeded},
			{RowReference: "R2", Amount: 200, State: client.RowSucceeded, ReturnReason: client.ReturnAccountClosed, Retryable: no},
			{RowReference: "R3", Amount: 300, State: client.RowSucceeded, ReturnReason: client.ReturnReferToCustomer, Retryable: yes},
			{RowReference: "R4", Amount: 400, State: client.RowSucceeded, ReturnReason: client.ReturnReferToCustomer, Retryable: yes},
			{RowReference: "R5", Amount: 500, State: client.RowFailed, FailureReason: client.FailureInsufficientFunds, Retryable: yes},
		}}
	got := summarise(b).Outcomes
	want := []outcome{
		{State: client.RowSucceeded, ReturnReason: client.ReturnReferToCustomer, Retryable: true, Count: 2, Amount: 700},
		{State: client.RowSucceeded, Count: 1, Amount: 100},
		{State: client.RowSucceeded, ReturnReason: client.ReturnAccountClosed, Count: 1, Amount: 200},
		{State: client.RowFailed, FailureReason: client.FailureInsufficientFunds, Retryable: true, Count: 1, Amount: 500},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("outcomes = %+v\nwant %+v", got, want)
	}
	if name := got[0].name(); name != "succeeded, returned referToCustomer" {
		t.Errorf("the returned rows' outcome reads %q", name)
	}
}

// The rows' table says of a returned row why and when its bank returned it, and "-" of the others.
func TestTheRowsTableShowsReturns(t *testing.T) {
	at := client.Timestamp(1777627803000)
	var out strings.Builder
	rowsTable(&out, []client.Row{
		{RowReference: "R1", CustomerReference: "C1", Amount: 100, State: client.RowSucceeded, OutcomeAt: at},
		{RowReference: "R2", CustomerReference: "C1", Amount: 200, State: client.RowSucceeded, OutcomeAt: at,
			ReturnReason: client.ReturnReferToCustomer, ReturnedAt: at + 86_400_000, Retryable: new(true)},
	})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		"ROW\tCUSTOMER\tAMOUNT\tSTATE\tFAILURE\tRETRYABLE\tOUTCOME AT\tRETURNED",
		"R1\tC1\t1.00\tsucceeded\t-\t-\t" + when(at) + "\t-",
		"R2\tC1\t2.00\tsucceeded\t-\ttrue\t" + when(at) + "\treferToCustomer " + when(at+86_400_000),
	}
	if !slices.Equal(lines, want) {
		t.Errorf("the table is\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// README: customerNotActive is "retryable: false until the customer links again, then true", so
// two rows of one batch that failed so may differ: the summary of --wait counts them apart, each
// group retryable as its rows are, rather than all of them as the first row is.
func TestTheSummaryCountsCustomerNotActiveRowsApartByWhetherTheyAreRetryable(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		path := file(t, "absent.csv", "rowReference,customerReference,amount\nR1,GONE-1,10.00\nR2,BACK-1,20.00\n")
		ok(t, s, "batches", "submit", path, "--reference", "NA-1", "--wait", "--interval", "20ms")
		ok(t, s, "customers", "invite", "BACK-1")
		ok(t, s, "sandbox", "signup", "BACK-1")

		// The same file again replays the batch and waits for it: its summary as it stands now.
		_, got := waited(t, ok(t, s, "batches", "submit", path, "--reference", "NA-1", "--wait").stdout)
		want := []outcome{
			{State: client.RowFailed, FailureReason: client.FailureCustomerNotActive, Count: 1, Amount: 1000},
			{State: client.RowFailed, FailureReason: client.FailureCustomerNotActive, Retryable: true, Count: 1, Amount: 2000},
		}
		if !got.Replayed || !reflect.DeepEqual(got.Outcomes, want) {
			t.Errorf("summary once BACK-1 linked again = %+v\nwant the outcomes %+v", got, want)
		}
	})
}
