// The executor methods whose text is the same on both engines are written once, in
// sqlite/executor.go; postgres/executor.go is generated from it (package and sqlc import renamed)
// by `go generate ./postgres/`, to be run after every change to the SQLite file. The engines' sqlc
// types have the same names and fields (sqlc.yaml's overrides); what differs (the bulk paths,
// mapErr, transactions) stays in each engine's own files.

package sqlite

import (
	"context"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/ddr"
	"github.com/pyng/receivables/sqlite/internal/dbsqlc"
	"github.com/pyng/receivables/storage/driver"
)

// one and many map the rows of a query to billing types, marking its error.
func one[R, T any](fn func(R) T) func(R, error) (T, error)      { return driver.One(mapErr, fn) }
func many[R, T any](fn func(R) T) func([]R, error) ([]T, error) { return driver.Many(mapErr, fn) }

func (e executor) CreateOrganisation(ctx context.Context, o billing.Organisation) error {
	return mapErr(e.q.CreateOrganisation(ctx, dbsqlc.CreateOrganisationParams{ID: o.ID, Name: o.Name, CreatedAt: billing.Millis(o.CreatedAt)}))
}

func (e executor) CountOrganisations(ctx context.Context) (int, error) {
	n, err := e.q.CountOrganisations(ctx)
	return int(n), err
}

func (e executor) CreateSite(ctx context.Context, s billing.Site) error {
	return mapErr(e.q.CreateSite(ctx, dbsqlc.CreateSiteParams{
		ID:             s.ID,
		OrganisationID: s.OrganisationID,
		Name:           s.Name,
		Currency:       s.Currency,
		Rail:           s.Rail,
		CreatedAt:      billing.Millis(s.CreatedAt),
	}))
}

func (e executor) GetSite(ctx context.Context, id string) (billing.Site, error) {
	return one(site)(e.q.GetSite(ctx, id))
}

func (e executor) SetSiteRail(ctx context.Context, id, rail string) (bool, error) {
	n, err := e.q.SetSiteRail(ctx, dbsqlc.SetSiteRailParams{ID: id, Rail: rail})
	return n > 0, err
}

func (e executor) UpdateSiteDebitUser(ctx context.Context, id string, d billing.DebitUser, timeZone string) (bool, error) {
	n, err := e.q.UpdateSiteDebitUser(ctx, dbsqlc.UpdateSiteDebitUserParams{ID: id, DebitUserName: d.Name, DebitUserAbn: d.ABN,
		DebitUserPhone: d.Phone, DebitUserEmail: d.Email, DebitUserAddress: d.Address, TimeZone: timeZone})
	return n > 0, err
}

func (e executor) CreateClient(ctx context.Context, c billing.Client) error {
	return mapErr(e.q.CreateClient(ctx, dbsqlc.CreateClientParams{
		ID:             c.ID,
		OrganisationID: c.OrganisationID,
		SecretHash:     c.SecretHash,
		Scopes:         billing.FormatScopes(c.Scopes),
		CreatedAt:      billing.Millis(c.CreatedAt),
		RevokedAt:      driver.NullMillis(c.RevokedAt),
	}))
}

func (e executor) GetClient(ctx context.Context, id string) (billing.Client, error) {
	return one(client)(e.q.GetClient(ctx, id))
}

func (e executor) RevokeClient(ctx context.Context, id string, at time.Time) (billing.Client, error) {
	return one(client)(e.q.RevokeClient(ctx, dbsqlc.RevokeClientParams{ID: id, RevokedAt: billing.Millis(at)}))
}

func (e executor) InsertSigningKey(ctx context.Context, k billing.SigningKey) error {
	return mapErr(e.q.InsertSigningKey(ctx, dbsqlc.InsertSigningKeyParams{ID: k.ID, Secret: k.Secret, CreatedAt: billing.Millis(k.CreatedAt)}))
}

func (e executor) GetSigningKey(ctx context.Context) (billing.SigningKey, error) {
	return one(signingKey)(e.q.GetSigningKey(ctx))
}

func (e executor) InsertLink(ctx context.Context, l billing.Link) (bool, error) {
	n, err := e.q.InsertLink(ctx, dbsqlc.InsertLinkParams{ID: l.ID, SiteID: l.SiteID, CustomerReference: l.CustomerReference,
		CreatedAt: billing.Millis(l.CreatedAt), ExpiresAt: billing.Millis(l.ExpiresAt), Metadata: driver.Metadata(l.Metadata)})
	return n == 1, mapErr(err)
}

func (e executor) ExpireInvitations(ctx context.Context, siteID, customerReference string, at time.Time) ([]billing.Link, error) {
	return many(link)(e.q.ExpireInvitations(ctx, dbsqlc.ExpireInvitationsParams{SiteID: siteID, CustomerReference: customerReference, At: billing.Millis(at)}))
}

func (e executor) ClearCurrentLink(ctx context.Context, siteID, customerReference string) error {
	return e.q.ClearCurrentLink(ctx, dbsqlc.ClearCurrentLinkParams{SiteID: siteID, CustomerReference: customerReference})
}

func (e executor) GetCurrentLink(ctx context.Context, siteID, customerReference string) (billing.Link, error) {
	return one(link)(e.q.GetCurrentLink(ctx, dbsqlc.GetCurrentLinkParams{SiteID: siteID, CustomerReference: customerReference}))
}

func (e executor) GetLink(ctx context.Context, id string) (billing.Link, error) {
	return one(link)(e.q.GetLink(ctx, id))
}

func (e executor) ListLinks(ctx context.Context, p driver.LinkPage) ([]billing.Link, error) {
	return many(link)(e.q.ListLinks(ctx, dbsqlc.ListLinksParams{SiteID: p.SiteID, After: p.After, Lim: int64(p.Limit)}))
}

func (e executor) ListInvitedLinks(ctx context.Context, p driver.LinkPage) ([]billing.Link, error) {
	return many(link)(e.q.ListInvitedLinks(ctx, dbsqlc.ListInvitedLinksParams{SiteID: p.SiteID, After: p.After, Now: billing.Millis(p.Now), Lim: int64(p.Limit)}))
}

func (e executor) ListExpiredLinks(ctx context.Context, p driver.LinkPage) ([]billing.Link, error) {
	return many(link)(e.q.ListExpiredLinks(ctx, dbsqlc.ListExpiredLinksParams{SiteID: p.SiteID, After: p.After, Now: billing.Millis(p.Now), Lim: int64(p.Limit)}))
}

func (e executor) ListLinksInState(ctx context.Context, p driver.LinkPage) ([]billing.Link, error) {
	return many(link)(e.q.ListLinksInState(ctx, dbsqlc.ListLinksInStateParams{SiteID: p.SiteID, After: p.After, State: string(p.State), Lim: int64(p.Limit)}))
}

func (e executor) LinkCustomer(ctx context.Context, id string, c billing.Customer, terms ddr.Terms, browserKey []byte, at time.Time) (billing.Link, error) {
	return one(link)(e.q.LinkCustomer(ctx, dbsqlc.LinkCustomerParams{ID: id, At: billing.Millis(at),
		CustomerName: c.Name, CustomerEmail: c.Email, CustomerBsb: c.BSB, CustomerAccountNumber: c.AccountNumber,
		CustomerAccountName: c.AccountName, CustomerType: string(c.Type), CustomerBusinessName: c.BusinessName, CustomerAbn: c.ABN,
		BrowserKey: browserKey, AgreedTerms: driver.AgreedTerms(terms)}))
}

func (e executor) SignedUpFrom(ctx context.Context, id string, browserKey []byte) (bool, error) {
	n, err := e.q.SignedUpFrom(ctx, dbsqlc.SignedUpFromParams{ID: id, BrowserKey: browserKey})
	return n > 0, err
}

func (e executor) RevokeLink(ctx context.Context, id string, by billing.RevokedBy, at time.Time) (billing.Link, error) {
	return one(link)(e.q.RevokeLink(ctx, dbsqlc.RevokeLinkParams{ID: id, At: billing.Millis(at), RevokedBy: string(by)}))
}

func (e executor) DeleteBatchPastRetention(ctx context.Context, siteID, reference string, at time.Time) error {
	return e.q.DeleteBatchPastRetention(ctx, dbsqlc.DeleteBatchPastRetentionParams{SiteID: siteID, Reference: reference, At: billing.Millis(at)})
}

// InsertBatch returns no row when the site has a batch with the reference (on PostgreSQL after
// waiting, if another transaction is inserting one, for that transaction to end).
func (e executor) InsertBatch(ctx context.Context, b billing.Batch) (billing.Batch, error) {
	return one(batch)(e.q.InsertBatch(ctx, dbsqlc.InsertBatchParams{
		ID:          b.ID,
		SiteID:      b.SiteID,
		Reference:   b.Reference,
		Fingerprint: b.Fingerprint,
		State:       string(b.State),
		RowCount:    int64(b.RowCount),
		TotalAmount: b.TotalAmount,
		SubmittedAt: billing.Millis(b.SubmittedAt),
		CompletedAt: driver.NullMillis(b.CompletedAt),
		DeadlineAt:  billing.Millis(b.Deadline),
		RetainUntil: billing.Millis(b.RetainUntil),
	}))
}

func (e executor) GetBatch(ctx context.Context, siteID, reference string) (billing.Batch, error) {
	return one(batch)(e.q.GetBatch(ctx, dbsqlc.GetBatchParams{SiteID: siteID, Reference: reference}))
}

func (e executor) GetBatchByID(ctx context.Context, id string) (billing.Batch, error) {
	return one(batch)(e.q.GetBatchByID(ctx, id))
}

func (e executor) BatchRows(ctx context.Context, batchID string) ([]billing.Row, error) {
	return many(row)(e.q.BatchRows(ctx, batchID))
}

func (e executor) BatchRowsInState(ctx context.Context, batchID string, state billing.RowState) ([]billing.Row, error) {
	return many(row)(e.q.BatchRowsInState(ctx, dbsqlc.BatchRowsInStateParams{BatchID: batchID, State: string(state)}))
}

func (e executor) BatchSummary(ctx context.Context, batchID string) ([]driver.StateTotal, error) {
	return many(stateTotal)(e.q.BatchSummary(ctx, batchID))
}

func (e executor) ListBatches(ctx context.Context, siteID string, limit int) ([]billing.Batch, error) {
	return many(batch)(e.q.ListBatches(ctx, dbsqlc.ListBatchesParams{SiteID: siteID, Lim: int64(limit)}))
}

func (e executor) ListBatchesAfter(ctx context.Context, siteID string, afterSubmittedAt time.Time, afterID string, limit int) ([]billing.Batch, error) {
	return many(batch)(e.q.ListBatchesAfter(ctx, dbsqlc.ListBatchesAfterParams{SiteID: siteID,
		AfterSubmittedAt: billing.Millis(afterSubmittedAt), AfterID: afterID, Lim: int64(limit)}))
}

func (e executor) StartBatch(ctx context.Context, batchID string) error {
	return e.q.StartBatch(ctx, batchID)
}

func (e executor) UnsentRowsOfCustomer(ctx context.Context, siteID, customerReference string, now time.Time) ([]billing.RowOnRail, error) {
	return many(rowOnRail)(e.q.UnsentRowsOfCustomer(ctx, dbsqlc.UnsentRowsOfCustomerParams{SiteID: siteID, CustomerReference: customerReference, Now: billing.Millis(now)}))
}

func rowOnRail(r dbsqlc.UnsentRowsOfCustomerRow) billing.RowOnRail {
	return billing.RowOnRail{RowID: r.ID, Rail: r.Rail, BatchSubmittedAt: billing.FromMillis(r.SubmittedAt)}
}

func (e executor) InProgressRows(ctx context.Context, batchID string) ([]string, error) {
	return e.q.InProgressRows(ctx, batchID)
}

func (e executor) CompleteBatch(ctx context.Context, batchID string, at time.Time) (bool, error) {
	n, err := e.q.CompleteBatch(ctx, dbsqlc.CompleteBatchParams{ID: batchID, At: billing.Millis(at)})
	return n == 1, err
}

func (e executor) ExpireOverdueRows(ctx context.Context, now time.Time) (int, error) {
	n, err := e.q.ExpireOverdueRows(ctx, billing.Millis(now))
	return int(n), err
}

func (e executor) OverdueBatches(ctx context.Context, now time.Time) ([]billing.Batch, error) {
	return many(batch)(e.q.OverdueBatches(ctx, billing.Millis(now)))
}

func (e executor) CompleteOverdueBatches(ctx context.Context, now time.Time) ([]string, error) {
	return e.q.CompleteOverdueBatches(ctx, billing.Millis(now))
}

func (e executor) ExpireBatchRows(ctx context.Context, batchID string, at time.Time) (int, error) {
	n, err := e.q.ExpireBatchRows(ctx, dbsqlc.ExpireBatchRowsParams{At: billing.Millis(at), BatchID: batchID})
	return int(n), err
}

func (e executor) CompleteExpiredBatch(ctx context.Context, batchID string, at time.Time) (bool, error) {
	n, err := e.q.CompleteExpiredBatch(ctx, dbsqlc.CompleteExpiredBatchParams{At: billing.Millis(at), BatchID: batchID})
	return n == 1, err
}

func (e executor) PurgeBatches(ctx context.Context, now time.Time, limit int) (int, error) {
	n, err := e.q.PurgeBatches(ctx, dbsqlc.PurgeBatchesParams{Now: billing.Millis(now), Lim: int64(limit)})
	return int(n), err
}

// sqlc's rows to billing's types, through package driver's records, which have the fields of
// sqlc's rows on both engines (the conversions do not compile if they drift apart).

func (e executor) GetEvent(ctx context.Context, id string) (billing.Event, error) {
	return one(func(r dbsqlc.GetEventRow) billing.Event { return driver.EventRecord(r).Event() })(e.q.GetEvent(ctx, id))
}

func (e executor) PurgeEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	n, err := e.q.PurgeEvents(ctx, dbsqlc.PurgeEventsParams{Before: billing.Millis(before), Lim: int64(limit)})
	return int(n), err
}

func (e executor) ExpireDueInvitations(ctx context.Context, now time.Time, limit int) ([]billing.Link, error) {
	return many(link)(e.q.ExpireDueInvitations(ctx, dbsqlc.ExpireDueInvitationsParams{Now: billing.Millis(now), Lim: int64(limit)}))
}

func (e executor) InsertWebhookEndpoint(ctx context.Context, se driver.StoredEndpoint) error {
	ep := se.Endpoint
	return mapErr(e.q.InsertWebhookEndpoint(ctx, dbsqlc.InsertWebhookEndpointParams{ID: ep.ID, SiteID: ep.SiteID, Url: ep.URL,
		EventTypes: driver.FormatEventTypes(ep.EventTypes), State: string(ep.State), Secret: se.Secret, CreatedAt: billing.Millis(ep.CreatedAt)}))
}

func (e executor) CountWebhookEndpoints(ctx context.Context, siteID string) (int, error) {
	n, err := e.q.CountWebhookEndpoints(ctx, siteID)
	return int(n), err
}

func (e executor) LockSite(ctx context.Context, id string) error {
	_, err := e.q.LockSite(ctx, id)
	return mapErr(err)
}

func (e executor) ListWebhookEndpoints(ctx context.Context, siteID string) ([]driver.StoredEndpoint, error) {
	listed := func(r dbsqlc.ListWebhookEndpointsRow) driver.StoredEndpoint {
		return endpoint(dbsqlc.GetWebhookEndpointRow(r))
	}
	return many(listed)(e.q.ListWebhookEndpoints(ctx, siteID))
}

func (e executor) GetWebhookEndpoint(ctx context.Context, id string) (driver.StoredEndpoint, error) {
	return one(endpoint)(e.q.GetWebhookEndpoint(ctx, id))
}

func (e executor) LockWebhookEndpoint(ctx context.Context, id string) (driver.StoredEndpoint, error) {
	locked := func(r dbsqlc.LockWebhookEndpointRow) driver.StoredEndpoint {
		return endpoint(dbsqlc.GetWebhookEndpointRow(r))
	}
	return one(locked)(e.q.LockWebhookEndpoint(ctx, id))
}

func (e executor) UpdateWebhookEndpoint(ctx context.Context, se driver.StoredEndpoint) (bool, error) {
	ep := se.Endpoint
	n, err := e.q.UpdateWebhookEndpoint(ctx, dbsqlc.UpdateWebhookEndpointParams{
		ID:                  ep.ID,
		Url:                 ep.URL,
		EventTypes:          driver.FormatEventTypes(ep.EventTypes),
		State:               string(ep.State),
		DisabledReason:      driver.NullString(ep.DisabledReason),
		Secret:              se.Secret,
		PreviousSecret:      driver.NullString(se.PreviousSecret),
		PreviousSecretUntil: driver.NullMillis(ep.PreviousSecretUntil),
		FailingSince:        driver.NullMillis(ep.FailingSince),
	})
	return n == 1, err
}

func (e executor) DeleteWebhookEndpoint(ctx context.Context, siteID, id string) (bool, error) {
	n, err := e.q.DeleteWebhookEndpoint(ctx, dbsqlc.DeleteWebhookEndpointParams{SiteID: siteID, ID: id})
	return n == 1, err
}

func (e executor) MarkEndpointSucceeded(ctx context.Context, id string) error {
	return e.q.MarkEndpointSucceeded(ctx, id)
}

func (e executor) MarkEndpointFailing(ctx context.Context, id string, at time.Time) error {
	return e.q.MarkEndpointFailing(ctx, dbsqlc.MarkEndpointFailingParams{ID: id, At: billing.Millis(at)})
}

func (e executor) DisableFailingEndpoint(ctx context.Context, id string, cutoff time.Time) (bool, error) {
	n, err := e.q.DisableFailingEndpoint(ctx, dbsqlc.DisableFailingEndpointParams{ID: id, Cutoff: billing.Millis(cutoff)})
	return n == 1, err
}

func (e executor) GetDelivery(ctx context.Context, id string) (billing.Delivery, error) {
	return one(delivery)(e.q.GetDelivery(ctx, id))
}

func (e executor) ListDeliveries(ctx context.Context, endpointID string, limit int) ([]billing.Delivery, error) {
	return many(delivery)(e.q.ListDeliveries(ctx, dbsqlc.ListDeliveriesParams{EndpointID: endpointID, Lim: int64(limit)}))
}

func (e executor) ListDeliveriesBefore(ctx context.Context, endpointID string, createdAt time.Time, id string, limit int) ([]billing.Delivery, error) {
	return many(delivery)(e.q.ListDeliveriesBefore(ctx, dbsqlc.ListDeliveriesBeforeParams{EndpointID: endpointID,
		CreatedAt: billing.Millis(createdAt), ID: id, Lim: int64(limit)}))
}

func (e executor) RetryDelivery(ctx context.Context, id string, now time.Time, maxRetries int) (bool, error) {
	n, err := e.q.RetryDelivery(ctx, dbsqlc.RetryDeliveryParams{ID: id, Now: billing.Millis(now), MaxRetries: int64(maxRetries)})
	return n == 1, err
}

func (e executor) LeaseEndpoint(ctx context.Context, id, holder string, now, until time.Time) (bool, error) {
	n, err := e.q.LeaseEndpoint(ctx, dbsqlc.LeaseEndpointParams{ID: id, Holder: driver.NullString(holder), Now: billing.Millis(now),
		Until: billing.Millis(until)})
	return n == 1, err
}

func (e executor) ReleaseEndpoint(ctx context.Context, id, holder string) error {
	return e.q.ReleaseEndpoint(ctx, dbsqlc.ReleaseEndpointParams{ID: id, Holder: driver.NullString(holder)})
}

func (e executor) DueDeliveries(ctx context.Context, endpointID string, now time.Time, after billing.DueDelivery, limit int) ([]billing.DueDelivery, error) {
	return many(func(r dbsqlc.DueDeliveriesRow) billing.DueDelivery { return driver.DueDeliveryRecord(r).Due() })(
		e.q.DueDeliveries(ctx, dbsqlc.DueDeliveriesParams{EndpointID: endpointID, Now: billing.Millis(now),
			AfterAt: billing.Millis(after.Due), AfterID: after.Delivery.ID, Lim: int64(limit)}))
}

func (e executor) DueEndpoints(ctx context.Context, now time.Time) ([]string, error) {
	return e.q.DueEndpoints(ctx, billing.Millis(now))
}

func site(r dbsqlc.Site) billing.Site {
	return driver.SiteRecord(r).Site()
}

func client(r dbsqlc.ApiClient) billing.Client {
	return driver.ClientRecord(r).Client()
}

func signingKey(r dbsqlc.GetSigningKeyRow) billing.SigningKey {
	return driver.SigningKeyRecord(r).SigningKey()
}

func endpoint(r dbsqlc.GetWebhookEndpointRow) driver.StoredEndpoint {
	return driver.EndpointRecord(r).Endpoint()
}

func delivery(r dbsqlc.WebhookDelivery) billing.Delivery {
	return driver.DeliveryRecord(r).Delivery()
}

func attempt(r dbsqlc.WebhookAttempt) driver.DeliveryAttempt {
	return driver.AttemptRecord(r).Attempt()
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
	return driver.PendingRow(driver.RowRecord(r.BatchRow), r.Linked, driver.CustomerColumns{
		Name: r.CustomerName, Email: r.CustomerEmail, BSB: r.CustomerBsb, AccountNumber: r.CustomerAccountNumber,
		AccountName: r.CustomerAccountName, Type: r.CustomerType, BusinessName: r.CustomerBusinessName, ABN: r.CustomerAbn},
		r.AgreedTerms)
}

func linkedCustomer(r dbsqlc.LinkedCustomersRow) driver.LinkedCustomerRecord {
	return driver.LinkedCustomerRecord(r)
}

func stateTotal(r dbsqlc.BatchSummaryRow) driver.StateTotal {
	return driver.StateTotalRecord(r).StateTotal()
}

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
		AccountName: next.Customer.AccountName, Type: string(next.Customer.Type), BusinessName: next.Customer.BusinessName, Abn: next.Customer.ABN,
		OldName: old.Customer.Name, OldEmail: old.Customer.Email, OldBsb: old.Customer.BSB, OldAccountNumber: old.Customer.AccountNumber,
		OldAccountName: old.Customer.AccountName, OldType: string(old.Customer.Type), OldBusinessName: old.Customer.BusinessName, OldAbn: old.Customer.ABN,
	})
	return n > 0, mapErr(err)
}

func (e executor) EraseBankDetails(ctx context.Context, before time.Time, limit int) (int, error) {
	n, err := e.q.EraseBankDetails(ctx, dbsqlc.EraseBankDetailsParams{Before: billing.Millis(before), Lim: int64(limit)})
	return int(n), mapErr(err)
}

// The emails to customers counted against the cap of their address (LockEmailAddress is each
// engine's own).

func (e executor) EmailCounted(ctx context.Context, id string) (bool, error) {
	n, err := e.q.EmailCounted(ctx, id)
	return n > 0, err
}

func (e executor) CountEmailsSent(ctx context.Context, key []byte, since time.Time) (int, error) {
	n, err := e.q.CountEmailsSent(ctx, dbsqlc.CountEmailsSentParams{AddressKey: key, Since: billing.Millis(since)})
	return int(n), err
}

func (e executor) InsertEmailSent(ctx context.Context, id string, key []byte, at time.Time) error {
	return mapErr(e.q.InsertEmailSent(ctx, dbsqlc.InsertEmailSentParams{ID: id, AddressKey: key, SentAt: billing.Millis(at)}))
}

func (e executor) DeleteEmailSent(ctx context.Context, id string) error {
	return e.q.DeleteEmailSent(ctx, id)
}

func (e executor) ForgetSentEmails(ctx context.Context, before time.Time, limit int) (int, error) {
	n, err := e.q.ForgetSentEmails(ctx, dbsqlc.ForgetSentEmailsParams{Before: billing.Millis(before), Lim: int64(limit)})
	return int(n), err
}

// The BSB directory.

func (e executor) DeleteBranches(ctx context.Context) error {
	return mapErr(e.q.DeleteBranches(ctx))
}

func (e executor) InsertBranch(ctx context.Context, b billing.Branch) error {
	return mapErr(e.q.InsertBranch(ctx, dbsqlc.InsertBranchParams{Bsb: b.BSB, Mnemonic: b.Mnemonic, Branch: b.Name,
		Address: b.Address, Suburb: b.Suburb, State: b.State, Postcode: b.Postcode, Payments: b.Payments}))
}

func (e executor) GetBranch(ctx context.Context, bsb string) (billing.Branch, error) {
	return one(branch)(e.q.GetBranch(ctx, bsb))
}

func (e executor) HasBranches(ctx context.Context) (bool, error) {
	n, err := e.q.CountBranches(ctx)
	return n > 0, mapErr(err)
}

func branch(r dbsqlc.BsbDirectory) billing.Branch {
	return driver.BranchRecord(r).AsBranch()
}

func listedSigningKey(r dbsqlc.ListSigningKeysRow) billing.SigningKey {
	return driver.SigningKeyRecord(r).SigningKey()
}

func linkDetails(r dbsqlc.LinkDetailsAfterRow) driver.LinkDetails {
	return driver.LinkDetailsRecord(r).LinkDetails()
}

// The operator's listings and the rotation of a client's secret.

func (e executor) ListOrganisations(ctx context.Context, p driver.Page) ([]billing.Organisation, error) {
	return many(organisation)(e.q.ListOrganisations(ctx, dbsqlc.ListOrganisationsParams{
		AfterCreatedAt: p.AfterMillis(), AfterID: p.AfterID, Lim: int64(p.Limit)}))
}

func (e executor) GetOrganisation(ctx context.Context, id string) (billing.Organisation, error) {
	return one(organisation)(e.q.GetOrganisation(ctx, id))
}

func (e executor) ListSites(ctx context.Context, p driver.Page) ([]billing.Site, error) {
	return many(site)(e.q.ListSites(ctx, dbsqlc.ListSitesParams{OrganisationID: p.OrganisationID,
		AfterCreatedAt: p.AfterMillis(), AfterID: p.AfterID, Lim: int64(p.Limit)}))
}

func (e executor) ListClients(ctx context.Context, p driver.Page) ([]billing.Client, error) {
	return many(client)(e.q.ListClients(ctx, dbsqlc.ListClientsParams{OrganisationID: p.OrganisationID,
		AfterCreatedAt: p.AfterMillis(), AfterID: p.AfterID, Lim: int64(p.Limit)}))
}

func (e executor) SetClientSecret(ctx context.Context, id string, secretHash []byte) (billing.Client, error) {
	return one(client)(e.q.SetClientSecret(ctx, dbsqlc.SetClientSecretParams{ID: id, SecretHash: secretHash}))
}

func organisation(r dbsqlc.Organisation) billing.Organisation {
	return driver.OrganisationRecord(r).Organisation()
}
