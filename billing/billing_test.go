package billing_test

import (
	"regexp"
	"testing"

	"github.com/pyng/receivables/billing"
)

// TestNewIDsAreDistinctIDsOfNewIDsFormat checks that the ids of one read are each shaped as
// NewID's (the prefix and 26 lowercase base32 characters: 16 random bytes) and all different.
func TestNewIDsAreDistinctIDsOfNewIDsFormat(t *testing.T) {
	format := regexp.MustCompile(`^row_[a-z2-7]{26}$`)
	for _, tc := range []struct {
		name string
		n    int
	}{
		{"none", 0},
		{"one", 1},
		{"a full batch", billing.MaxBatchRows},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids := billing.NewIDs("row", tc.n)
			if len(ids) != tc.n {
				t.Fatalf("NewIDs gave %d ids, want %d", len(ids), tc.n)
			}
			if single := billing.NewID("row"); !format.MatchString(single) {
				t.Fatalf("NewID = %q, which the format does not match", single)
			}
			seen := map[string]bool{}
			for i, id := range ids {
				if !format.MatchString(id) {
					t.Errorf("ids[%d] = %q, not of NewID's format", i, id)
				}
				if seen[id] {
					t.Errorf("ids[%d] = %q repeats an earlier id", i, id)
				}
				seen[id] = true
			}
		})
	}
}

func TestValidABN(t *testing.T) {
	for abn, want := range map[string]bool{
		"51824753556":  true,  // the ABR's example
		"53004085616":  true,  // a real ABN
		"51824753557":  false, // last digit changed
		"15824753556":  false, // digits swapped
		"5182475355":   false, // 10 digits
		"518247535560": false,
		"5182475355a":  false,
		"":             false,
	} {
		if got := billing.ValidABN(abn); got != want {
			t.Errorf("ValidABN(%q) = %v, want %v", abn, got, want)
		}
	}
}
