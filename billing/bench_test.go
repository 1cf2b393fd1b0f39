package billing_test

import (
	"testing"

	"github.com/pyng/receivables/billing"
)

// The batch rules and the idempotency comparison on a 1000-row batch, for comparing a change
// with benchstat (go test -run XXX -bench . -count 10 ./billing/).

// BenchmarkFingerprint hashes a 1000-row request, as every submission does.
func BenchmarkFingerprint(b *testing.B) {
	r := validBatch(billing.MaxBatchRows)
	b.ReportAllocs()
	for b.Loop() {
		if len(r.Fingerprint()) == 0 {
			b.Fatal("empty fingerprint")
		}
	}
}

// BenchmarkIdempotencyComparison is a replayed submission's check: the request's fingerprint
// compared with the stored batch's, as SubmitBatch does when the reference is taken.
func BenchmarkIdempotencyComparison(b *testing.B) {
	stored := validBatch(billing.MaxBatchRows).Fingerprint()
	r := validBatch(billing.MaxBatchRows)
	b.ReportAllocs()
	for b.Loop() {
		if string(r.Fingerprint()) != string(stored) {
			b.Fatal("the same request must compare equal")
		}
	}
}

// BenchmarkValidateBatch checks every rule of a valid 1000-row request.
func BenchmarkValidateBatch(b *testing.B) {
	r := validBatch(billing.MaxBatchRows)
	b.ReportAllocs()
	for b.Loop() {
		if errs := billing.ValidateBatch(r); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}
