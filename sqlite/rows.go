package sqlite

import (
	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/sqlite/internal/dbsqlc"
	"github.com/pyng/receivables/storage/driver"
)

// sqlc's rows to billing's types, through package driver's records, which have the fields of
// sqlc's rows on both engines (the conversions do not compile if they drift apart).

func site(r dbsqlc.Site) billing.Site {
	return driver.SiteRecord(r).Site()
}

func client(r dbsqlc.ApiClient) billing.Client {
	return driver.ClientRecord(r).Client()
}

func signingKey(r dbsqlc.GetSigningKeyRow) billing.SigningKey {
	return driver.SigningKeyRecord(r).SigningKey()
}

func link(r dbsqlc.CustomerLink) billing.Link {
	return driver.LinkRecord(r).Link()
}

func batch(r dbsqlc.Batch) billing.Batch {
	return driver.BatchRecord(r).Batch()
}

func row(r dbsqlc.BatchRow) billing.Row {
	return driver.RowRecord(r).Row()
}

func pendingRow(r dbsqlc.PendingRowsRow) billing.PendingRow {
	return driver.PendingRow(driver.RowRecord(r.BatchRow), r.Linked,
		r.CustomerName, r.CustomerEmail, r.CustomerBsb, r.CustomerAccountNumber)
}

func stateTotal(r dbsqlc.BatchSummaryRow) driver.StateTotal {
	return driver.StateTotalRecord(r).StateTotal()
}
