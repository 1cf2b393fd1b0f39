package main

import (
	"reflect"
	"testing"

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
