package postgres

import (
	"context"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/postgres/internal/dbsqlc"
	"github.com/pyng/receivables/storage/driver"
)

// The statements of the signing keys and of the customers' details that package storage seals,
// rotates and erases.

func (e executor) AddSigningKey(ctx context.Context, k billing.SigningKey) error {
	return mapErr(e.q.AddSigningKey(ctx, dbsqlc.AddSigningKeyParams{ID: k.ID, Secret: k.Secret, CreatedAt: billing.Millis(k.CreatedAt)}))
}

func (e executor) SigningKeys(ctx context.Context) ([]billing.SigningKey, error) {
	return many(listedSigningKey)(e.q.ListSigningKeys(ctx))
}

func (e executor) DeleteSigningKeysExcept(ctx context.Context, id string) (int, error) {
	n, err := e.q.DeleteSigningKeysExcept(ctx, id)
	return int(n), mapErr(err)
}

func (e executor) UpdateSigningKeySecret(ctx context.Context, id string, old, new []byte) (bool, error) {
	n, err := e.q.UpdateSigningKeySecret(ctx, dbsqlc.UpdateSigningKeySecretParams{ID: id, OldSecret: old, NewSecret: new})
	return n > 0, mapErr(err)
}

func (e executor) LinkDetailsAfter(ctx context.Context, after string, limit int) ([]driver.LinkDetails, error) {
	return many(linkDetails)(e.q.LinkDetailsAfter(ctx, dbsqlc.LinkDetailsAfterParams{After: after, Lim: int64(limit)}))
}

func (e executor) UpdateLinkDetails(ctx context.Context, old, next driver.LinkDetails) (bool, error) {
	n, err := e.q.UpdateLinkDetails(ctx, dbsqlc.UpdateLinkDetailsParams{
		ID:   next.LinkID,
		Name: next.Customer.Name, Email: next.Customer.Email, Bsb: next.Customer.BSB, AccountNumber: next.Customer.AccountNumber,
		OldName: old.Customer.Name, OldEmail: old.Customer.Email, OldBsb: old.Customer.BSB, OldAccountNumber: old.Customer.AccountNumber,
	})
	return n > 0, mapErr(err)
}

func (e executor) EraseBankDetails(ctx context.Context, before time.Time, limit int) (int, error) {
	n, err := e.q.EraseBankDetails(ctx, dbsqlc.EraseBankDetailsParams{Before: billing.Millis(before), Lim: int64(limit)})
	return int(n), mapErr(err)
}

func listedSigningKey(r dbsqlc.ListSigningKeysRow) billing.SigningKey {
	return driver.SigningKeyRecord(r).SigningKey()
}

func linkDetails(r dbsqlc.LinkDetailsAfterRow) driver.LinkDetails {
	return driver.LinkDetailsRecord(r).LinkDetails()
}
