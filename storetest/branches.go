package storetest

import (
	"context"
	"testing"

	"github.com/pyng/receivables/billing"
)

func (s suite) branches(t *testing.T) {
	ctx := context.Background()
	t.Run("an empty directory has no branch; an import replaces it whole, and again changes nothing", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		loaded, err := store.HasBranches(ctx)
		wantErr(t, "HasBranches", err, nil)
		wantEqual(t, "HasBranches of an empty directory", loaded, false)
		_, err = store.GetBranch(ctx, "062000")
		wantErr(t, "GetBranch of an empty directory", err, billing.ErrNotFound)

		first := []billing.Branch{
			{BSB: "062000", Mnemonic: "CBA", Name: "Sydney", Address: "Level 1, 48 Martin Place", Suburb: "Sydney", State: "NSW", Postcode: "2000", Payments: "PEH"},
			{BSB: "733000", Mnemonic: "WBC", Name: "Sydney", Address: "275 Kent Street", Suburb: "Sydney", State: "NSW", Postcode: "2000", Payments: "PEH"},
		}
		for range 2 {
			wantErr(t, "ReplaceBranches", store.ReplaceBranches(ctx, first), nil)
			got, err := store.GetBranch(ctx, "733000")
			wantErr(t, "GetBranch", err, nil)
			wantEqual(t, "GetBranch", got, first[1])
		}
		second := []billing.Branch{{BSB: "012002", Mnemonic: "ANZ", Name: "Smart Choice", Address: "115 Pitt Street", Suburb: "Sydney", State: "NSW", Postcode: "2000", Payments: "PEH"}}
		wantErr(t, "ReplaceBranches", store.ReplaceBranches(ctx, second), nil)
		_, err = store.GetBranch(ctx, "062000")
		wantErr(t, "GetBranch of a BSB the new directory lacks", err, billing.ErrNotFound)
		got, err := store.GetBranch(ctx, "012002")
		wantErr(t, "GetBranch", err, nil)
		wantEqual(t, "GetBranch", got, second[0])
		loaded, err = store.HasBranches(ctx)
		wantErr(t, "HasBranches", err, nil)
		wantEqual(t, "HasBranches", loaded, true)
	})
	t.Run("an import that fails changes nothing", func(t *testing.T) {
		t.Parallel()
		store := s.openFunc(t)
		old := []billing.Branch{{BSB: "062000", Mnemonic: "CBA", Name: "Sydney"}}
		wantErr(t, "ReplaceBranches", store.ReplaceBranches(ctx, old), nil)
		twice := []billing.Branch{{BSB: "733000", Mnemonic: "WBC"}, {BSB: "733000", Mnemonic: "WBC"}}
		if err := store.ReplaceBranches(ctx, twice); err == nil {
			t.Fatal("ReplaceBranches with a BSB twice succeeded")
		}
		got, err := store.GetBranch(ctx, "062000")
		wantErr(t, "GetBranch after the failed import", err, nil)
		wantEqual(t, "GetBranch after the failed import", got, old[0])
	})
}
