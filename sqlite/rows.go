package sqlite

import (
	"database/sql"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/sqlite/internal/dbsqlc"
	"github.com/pyng/receivables/storage/driver"
)

// The conversions between sqlc's rows and billing's types. Times are stored as Unix
// milliseconds; SQLite's nullable columns are sql.Null* values.

func site(r dbsqlc.Site) billing.Site {
	return billing.Site{ID: r.ID, OrganisationID: r.OrganisationID, Name: r.Name, Currency: r.Currency, Rail: r.Rail,
		CreatedAt: billing.FromMillis(r.CreatedAt)}
}

func client(r dbsqlc.ApiClient) billing.Client {
	return billing.Client{ID: r.ID, OrganisationID: r.OrganisationID, SecretHash: r.SecretHash, Scopes: driver.Scopes(r.Scopes),
		CreatedAt: billing.FromMillis(r.CreatedAt), RevokedAt: fromNullMillis(r.RevokedAt)}
}

func signingKey(r dbsqlc.GetSigningKeyRow) billing.SigningKey {
	return billing.SigningKey{ID: r.ID, Secret: r.Secret, CreatedAt: billing.FromMillis(r.CreatedAt)}
}

func link(r dbsqlc.CustomerLink) billing.Link {
	return billing.Link{
		ID:                r.ID,
		SiteID:            r.SiteID,
		CustomerReference: r.CustomerReference,
		StoredState:       billing.LinkState(r.State),
		CreatedAt:         billing.FromMillis(r.CreatedAt),
		ExpiresAt:         billing.FromMillis(r.ExpiresAt),
		LinkedAt:          fromNullMillis(r.LinkedAt),
		RevokedAt:         fromNullMillis(r.RevokedAt),
		RevokedBy:         billing.RevokedBy(r.RevokedBy.String),
		Customer:          customer(r.CustomerName, r.CustomerEmail, r.CustomerBsb, r.CustomerAccountNumber),
	}
}

func customer(name, email, bsb, accountNumber sql.NullString) billing.Customer {
	return billing.Customer{Name: name.String, Email: email.String, BSB: bsb.String, AccountNumber: accountNumber.String}
}

func batch(r dbsqlc.Batch) billing.Batch {
	return billing.Batch{
		ID:          r.ID,
		SiteID:      r.SiteID,
		Reference:   r.Reference,
		Fingerprint: r.Fingerprint,
		State:       billing.BatchState(r.State),
		RowCount:    int(r.RowCount),
		TotalAmount: r.TotalAmount,
		SubmittedAt: billing.FromMillis(r.SubmittedAt),
		CompletedAt: fromNullMillis(r.CompletedAt),
		Deadline:    billing.FromMillis(r.DeadlineAt),
		RetainUntil: billing.FromMillis(r.RetainUntil),
	}
}

func row(r dbsqlc.BatchRow) billing.Row {
	return billing.Row{
		ID:                r.ID,
		BatchID:           r.BatchID,
		Index:             int(r.Idx),
		Reference:         r.RowReference,
		CustomerReference: r.CustomerReference,
		Amount:            r.Amount,
		State:             billing.RowState(r.State),
		FailureReason:     billing.FailureReason(r.FailureReason.String),
		OutcomeAt:         fromNullMillis(r.OutcomeAt),
	}
}

func pendingRow(r dbsqlc.PendingRowsRow) billing.PendingRow {
	return billing.PendingRow{Row: row(r.BatchRow), Linked: r.Linked,
		Customer: customer(r.CustomerName, r.CustomerEmail, r.CustomerBsb, r.CustomerAccountNumber)}
}

func stateTotal(r dbsqlc.BatchSummaryRow) driver.StateTotal {
	return driver.StateTotal{State: billing.RowState(r.State), Count: int(r.RowCount), Amount: r.Amount}
}

func nullMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: billing.Millis(t), Valid: true}
}

func fromNullMillis(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return billing.FromMillis(n.Int64)
}
