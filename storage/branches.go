package storage

import (
	"context"
	"fmt"

	"github.com/pyng/receivables/billing"
)

// ReplaceBranches replaces the BSB directory with branches in one transaction: a reader sees the
// old directory or the new one, never a part of either, and an import that fails changes nothing.
func (s *Store) ReplaceBranches(ctx context.Context, branches []billing.Branch) error {
	tx, err := s.d.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // a no-op once committed
	if err := tx.DeleteBranches(ctx); err != nil {
		return fmt.Errorf("empty the BSB directory: %w", err)
	}
	for _, b := range branches {
		if err := tx.InsertBranch(ctx, b); err != nil {
			return fmt.Errorf("BSB %s: %w", b.BSB, interpret(err))
		}
	}
	return tx.Commit(ctx)
}

// GetBranch returns the branch of a BSB, or billing.ErrNotFound.
func (s *Store) GetBranch(ctx context.Context, bsb string) (billing.Branch, error) {
	return result(s.d.Executor().GetBranch(ctx, bsb))
}

// HasBranches reports whether a BSB directory was imported.
func (s *Store) HasBranches(ctx context.Context) (bool, error) {
	return s.d.Executor().HasBranches(ctx)
}
