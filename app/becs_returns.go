package app

import (
	"context"
	"fmt"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/rail/becs"
)

// BECSReturnsReport is what importing a BECS returns file did.
type BECSReturnsReport struct {
	Source   string // the SHA-256 of the file, hex
	Items    int    // Returned + AlreadyReturned + len(Unmatched)
	Returned int    // items whose row this import returned
	// AlreadyReturned are the items whose row was returned already: by an earlier import, or by
	// an earlier item of this file (the bank repeating an item).
	AlreadyReturned int
	// Unmatched are the items that match no row that could be returned, each with its Problem;
	// the rail keeps them (becs.Rail.Unmatched).
	Unmatched []becs.ReturnedItem
	// Revoked is how many customers' links this import revoked, by the bank: a return of theirs
	// ended their authority.
	Revoked int
}

// ImportBECSReturns imports a returns file of the BECS rail: it matches each item to its debit
// by lodgement reference, records the return of each debit's row (which stays succeeded) with
// its debit.returned event, revokes by the bank the customer's link the debit was made under when
// the reason ends the authority (aba.ReturnReason.EndsAuthority: billing.Service.ReturnRows), and
// keeps the items that match no row that could be returned. A file
// that does not read changes nothing (the error is aba.Errors, or wraps becs.ErrNotReturns).
// Importing a file again changes nothing: a row is returned once, an item kept once.
func ImportBECSReturns(ctx context.Context, r *becs.Rail, service *billing.Service, clock billing.Clock, content []byte) (BECSReturnsReport, error) {
	returns, err := r.MatchReturns(ctx, content)
	if err != nil {
		return BECSReturnsReport{}, err
	}
	report, err := recordBECSReturns(ctx, service, clock, returns)
	if err != nil {
		return BECSReturnsReport{}, err
	}
	if _, err := r.KeepUnmatched(ctx, returns.Source, returns.Items); err != nil {
		return report, fmt.Errorf("the returns are recorded; keeping the items that matched nothing failed (import the file again): %w", err)
	}
	return report, nil
}

// MatchKeptBECSReturns records the returns of the items kept unmatched whose rows can be returned
// now (becs.Rail.MatchKept: an item imported before its row succeeded), as importing their files
// again would, and forgets them; the others stay kept. Each row is returned once, whoever runs it
// and however often (a replica, `files lodged`, or a run after a crash between the record and the
// forgetting, which finds the row returned already). The report sums up every returns file's
// items it looked at (its Source is empty); its Unmatched are those still kept.
func MatchKeptBECSReturns(ctx context.Context, r *becs.Rail, service *billing.Service, clock billing.Clock) (BECSReturnsReport, error) {
	kept, err := r.MatchKept(ctx)
	if err != nil {
		return BECSReturnsReport{}, err
	}
	var total BECSReturnsReport
	for _, returns := range kept {
		report, err := recordBECSReturns(ctx, service, clock, returns)
		if err != nil {
			return total, err
		}
		if err := r.ForgetMatched(ctx, returns.Items); err != nil {
			return total, fmt.Errorf("the returns are recorded; forgetting the items kept unmatched that they match failed (they are forgotten at the next run): %w", err)
		}
		total.Items += report.Items
		total.Returned += report.Returned
		total.AlreadyReturned += report.AlreadyReturned
		total.Revoked += report.Revoked
		total.Unmatched = append(total.Unmatched, report.Unmatched...)
	}
	return total, nil
}

// recordBECSReturns records the returns of the rows the items of a returns file match, and gives
// each item whose row cannot be returned its Problem.
func recordBECSReturns(ctx context.Context, service *billing.Service, clock billing.Clock, returns becs.Returns) (BECSReturnsReport, error) {
	report := BECSReturnsReport{Source: returns.Source, Items: len(returns.Items)}
	now := clock.Now()
	var rows []billing.RowReturn
	for _, it := range returns.Items {
		if it.Key != "" {
			rows = append(rows, billing.RowReturn{RowID: it.Key, Reason: billing.ReturnReason(it.Return.Reason.Name()),
				Retryable: it.Return.Reason.Retryable(), EndsAuthority: it.Return.Reason.EndsAuthority(), At: now})
		}
	}
	done, err := service.ReturnRows(ctx, rows)
	if err != nil {
		return BECSReturnsReport{}, err
	}
	// ReturnRows reports each row once, however many items name it: the items after the first of
	// a row returned, now or before, are its repeats.
	report.Returned, report.AlreadyReturned, report.Revoked = len(done.Returned), len(done.AlreadyReturned), len(done.Revoked)
	seen := map[string]bool{}
	for i := range returns.Items {
		it := &returns.Items[i]
		if why, ok := done.Unmatched[it.Key]; ok && it.Key != "" {
			it.Problem = "its debit's row cannot be returned: " + why
		}
		switch {
		case it.Problem != "":
			report.Unmatched = append(report.Unmatched, *it)
		case seen[it.Key]:
			report.AlreadyReturned++
		default:
			seen[it.Key] = true
		}
	}
	return report, nil
}
