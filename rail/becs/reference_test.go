package becs_test

import (
	"encoding/base32"
	"testing"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/becs/aba"
)

// TestLodgementReferencesOfOneBatchDiffer: the rows of a batch share their ids' first 48 bits (the
// millisecond they were made), so a reference must be made of the ids' random bits.
func TestLodgementReferencesOfOneBatchDiffer(t *testing.T) {
	// Two ids as billing.NewIDs spells them, alike but for their last random byte.
	encoding := base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	a, b := make([]byte, 16), make([]byte, 16)
	for i := range 15 {
		a[i], b[i] = byte(i), byte(i)
	}
	a[15], b[15] = 0x10, 0x20
	refA, refB := becs.LodgementReference("row_"+encoding.EncodeToString(a)), becs.LodgementReference("row_"+encoding.EncodeToString(b))
	if refA == refB {
		t.Fatalf("two ids that differ in their random part have one lodgement reference, %s", refA)
	}

	ids := billing.NewIDs("row", 100_000) // one millisecond's
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		ref := becs.LodgementReference(id)
		if len(ref) != aba.MaxLodgementReference || !aba.ValidText(ref) {
			t.Fatalf("LodgementReference(%s) = %q, want %d characters of the BECS character set", id, ref, aba.MaxLodgementReference)
		}
		if seen[ref] {
			t.Fatalf("two of one batch's rows have the lodgement reference %s", ref)
		}
		seen[ref] = true
	}
}
