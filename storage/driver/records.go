package driver

import (
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/ddr"
)

// The records are the rows of the engines' queries as both engines' sqlc reads them: the same
// fields, in the same order, of the same types (times as Unix milliseconds, nullable columns as
// sql.Null* values). An engine turns its sqlc row into one with a Go conversion, such as
// driver.SiteRecord(r), which stops compiling if the two drift apart, and the record into a
// billing type with its method: the mapping is written once, here.

// SiteRecord is a row of sites.
type SiteRecord struct {
	ID               string
	OrganisationID   string
	Name             string
	Currency         string
	CreatedAt        int64
	Rail             string
	DebitUserName    string
	DebitUserAbn     string
	DebitUserPhone   string
	DebitUserEmail   string
	DebitUserAddress string
	TimeZone         string
}

func (r SiteRecord) Site() billing.Site {
	return billing.Site{ID: r.ID, OrganisationID: r.OrganisationID, Name: r.Name, Currency: r.Currency, Rail: r.Rail,
		CreatedAt: billing.FromMillis(r.CreatedAt), TimeZone: r.TimeZone,
		DebitUser: billing.DebitUser{Name: r.DebitUserName, ABN: r.DebitUserAbn, Phone: r.DebitUserPhone,
			Email: r.DebitUserEmail, Address: r.DebitUserAddress}}
}

// ClientRecord is a row of api_clients.
type ClientRecord struct {
	ID             string
	OrganisationID string
	SecretHash     []byte
	Scopes         string
	CreatedAt      int64
	RevokedAt      sql.NullInt64
}

func (r ClientRecord) Client() billing.Client {
	return billing.Client{ID: r.ID, OrganisationID: r.OrganisationID, SecretHash: r.SecretHash, Scopes: scopes(r.Scopes),
		CreatedAt: billing.FromMillis(r.CreatedAt), RevokedAt: FromNullMillis(r.RevokedAt)}
}

// scopes reads a stored scope list as written, keeping scopes this build does not know.
func scopes(s string) []billing.Scope {
	var out []billing.Scope
	for _, f := range strings.Fields(s) {
		out = append(out, billing.Scope(f))
	}
	return out
}

// SigningKeyRecord is what GetSigningKey and SigningKeys read of signing_keys.
type SigningKeyRecord struct {
	ID        string
	Secret    []byte
	CreatedAt int64
}

func (r SigningKeyRecord) SigningKey() billing.SigningKey {
	return billing.SigningKey{ID: r.ID, Secret: r.Secret, CreatedAt: billing.FromMillis(r.CreatedAt)}
}

// LinkRecord is a row of customer_links.
type LinkRecord struct {
	ID                    string
	SiteID                string
	CustomerReference     string
	State                 string
	IsCurrent             bool
	CreatedAt             int64
	ExpiresAt             int64
	LinkedAt              sql.NullInt64
	RevokedAt             sql.NullInt64
	RevokedBy             sql.NullString
	CustomerName          sql.NullString
	CustomerEmail         sql.NullString
	CustomerBsb           sql.NullString
	CustomerAccountNumber sql.NullString
	Metadata              sql.NullString
	CustomerAccountName   sql.NullString
	CustomerType          sql.NullString
	CustomerBusinessName  sql.NullString
	CustomerAbn           sql.NullString
	SignupBrowserKey      []byte
	AgreedTerms           sql.NullString
}

func (r LinkRecord) Link() billing.Link {
	return billing.Link{
		ID:                r.ID,
		SiteID:            r.SiteID,
		CustomerReference: r.CustomerReference,
		StoredState:       billing.LinkState(r.State),
		CreatedAt:         billing.FromMillis(r.CreatedAt),
		ExpiresAt:         billing.FromMillis(r.ExpiresAt),
		LinkedAt:          FromNullMillis(r.LinkedAt),
		RevokedAt:         FromNullMillis(r.RevokedAt),
		RevokedBy:         billing.RevokedBy(r.RevokedBy.String),
		Customer: customer(r.CustomerName, r.CustomerEmail, r.CustomerBsb, r.CustomerAccountNumber,
			r.CustomerAccountName, r.CustomerType, r.CustomerBusinessName, r.CustomerAbn),
		Metadata: metadata(r.Metadata),
		Terms:    agreedTerms(r.AgreedTerms),
	}
}

// AgreedTerms is how the terms a customer agreed to are stored: a JSON object, or NULL for none.
func AgreedTerms(t ddr.Terms) sql.NullString {
	if t == (ddr.Terms{}) {
		return sql.NullString{}
	}
	b, _ := json.Marshal(t) // strings and a number: it cannot fail
	return sql.NullString{String: string(b), Valid: true}
}

// agreedTerms reads the stored terms a customer agreed to (zero for NULL). The store wrote them
// from ddr.Terms, so they always decode; were they not to, the link would read without them.
func agreedTerms(s sql.NullString) ddr.Terms {
	var t ddr.Terms
	if s.Valid {
		_ = json.Unmarshal([]byte(s.String), &t)
	}
	return t
}

// metadata reads a link's stored metadata, a JSON object of strings (NULL for none). The store
// wrote it from a map, so it always decodes; were it not to, the link would read without it.
func metadata(s sql.NullString) map[string]string {
	if !s.Valid {
		return nil
	}
	var m map[string]string
	if json.Unmarshal([]byte(s.String), &m) != nil || len(m) == 0 {
		return nil
	}
	return m
}

// Metadata is how a link's metadata is stored: a JSON object, or NULL for none.
func Metadata(m map[string]string) sql.NullString {
	if len(m) == 0 {
		return sql.NullString{}
	}
	b, err := json.Marshal(m)
	if err != nil { // a map of strings always encodes
		panic(err)
	}
	return sql.NullString{String: string(b), Valid: true}
}

func customer(name, email, bsb, accountNumber, accountName, typ, businessName, abn sql.NullString) billing.Customer {
	return billing.Customer{Name: name.String, Email: email.String, BSB: bsb.String, AccountNumber: accountNumber.String,
		AccountName: accountName.String, Type: billing.CustomerType(typ.String), BusinessName: businessName.String, ABN: abn.String}
}

// CustomerColumns are the customer's columns of a link, as a query that joins customer_links
// reads them (PendingRows).
type CustomerColumns struct {
	Name, Email, BSB, AccountNumber, AccountName, Type, BusinessName, ABN sql.NullString
}

func (c CustomerColumns) customer() billing.Customer {
	return customer(c.Name, c.Email, c.BSB, c.AccountNumber, c.AccountName, c.Type, c.BusinessName, c.ABN)
}

// LinkDetailsRecord is a row of LinkDetailsAfter.
type LinkDetailsRecord struct {
	ID                    string
	CustomerName          sql.NullString
	CustomerEmail         sql.NullString
	CustomerBsb           sql.NullString
	CustomerAccountNumber sql.NullString
	CustomerAccountName   sql.NullString
	CustomerType          sql.NullString
	CustomerBusinessName  sql.NullString
	CustomerAbn           sql.NullString
}

func (r LinkDetailsRecord) LinkDetails() LinkDetails {
	return LinkDetails{LinkID: r.ID, Customer: customer(r.CustomerName, r.CustomerEmail, r.CustomerBsb, r.CustomerAccountNumber,
		r.CustomerAccountName, r.CustomerType, r.CustomerBusinessName, r.CustomerAbn)}
}

// BranchRecord is a row of bsb_directory.
type BranchRecord struct {
	Bsb      string
	Mnemonic string
	Branch   string
	Address  string
	Suburb   string
	State    string
	Postcode string
	Payments string
}

func (r BranchRecord) AsBranch() billing.Branch {
	return billing.Branch{BSB: r.Bsb, Mnemonic: r.Mnemonic, Name: r.Branch, Address: r.Address, Suburb: r.Suburb,
		State: r.State, Postcode: r.Postcode, Payments: r.Payments}
}

// BatchRecord is a row of batches.
type BatchRecord struct {
	ID          string
	SiteID      string
	Reference   string
	Fingerprint []byte
	State       string
	RowCount    int64
	TotalAmount int64
	SubmittedAt int64
	CompletedAt sql.NullInt64
	DeadlineAt  int64
	RetainUntil int64
	Rail        string
}

func (r BatchRecord) Batch() billing.Batch {
	return billing.Batch{
		ID:          r.ID,
		SiteID:      r.SiteID,
		Reference:   r.Reference,
		Fingerprint: r.Fingerprint,
		State:       billing.BatchState(r.State),
		RowCount:    int(r.RowCount),
		TotalAmount: r.TotalAmount,
		SubmittedAt: billing.FromMillis(r.SubmittedAt),
		CompletedAt: FromNullMillis(r.CompletedAt),
		Deadline:    billing.FromMillis(r.DeadlineAt),
		RetainUntil: billing.FromMillis(r.RetainUntil),
		Rail:        r.Rail,
	}
}

// RowRecord is a row of batch_rows.
type RowRecord struct {
	ID                string
	BatchID           string
	Idx               int64
	RowReference      string
	CustomerReference string
	Amount            int64
	State             string
	FailureReason     sql.NullString
	OutcomeAt         sql.NullInt64
	FileID            sql.NullString
	ReturnedAt        sql.NullInt64
	ReturnReason      sql.NullString
	ReturnRetryable   bool
}

func (r RowRecord) Row() billing.Row {
	return billing.Row{
		ID:                r.ID,
		BatchID:           r.BatchID,
		Index:             int(r.Idx),
		Reference:         r.RowReference,
		CustomerReference: r.CustomerReference,
		Amount:            r.Amount,
		State:             billing.RowState(r.State),
		FailureReason:     billing.FailureReason(r.FailureReason.String),
		OutcomeAt:         FromNullMillis(r.OutcomeAt),
		FileID:            r.FileID.String,
		ReturnedAt:        FromNullMillis(r.ReturnedAt),
		ReturnReason:      billing.ReturnReason(r.ReturnReason.String),
		ReturnRetryable:   r.ReturnRetryable,
	}
}

// PendingRow is a row of PendingRows: the batch row, whether its customer is linked, and the
// customer's details and agreed terms from the link (sqlc embeds the batch row as a struct of its
// own package, so a Go conversion cannot reach it).
func PendingRow(r RowRecord, linked bool, c CustomerColumns, terms sql.NullString) billing.PendingRow {
	return billing.PendingRow{Row: r.Row(), Linked: linked, Customer: c.customer(), Terms: agreedTerms(terms)}
}

// LinkedCustomerRecord is a row of LinkedCustomers: a customer linked at the site, and the terms
// agreed with the link, as stored.
type LinkedCustomerRecord struct {
	CustomerReference string
	AgreedTerms       sql.NullString
}

// Terms are the terms the customer agreed to (zero for none kept).
func (r LinkedCustomerRecord) Terms() ddr.Terms { return agreedTerms(r.AgreedTerms) }

// StateTotalRecord is a row of BatchSummary.
type StateTotalRecord struct {
	State    string
	RowCount int64
	Amount   int64
}

func (r StateTotalRecord) StateTotal() StateTotal {
	return StateTotal{State: billing.RowState(r.State), Count: int(r.RowCount), Amount: r.Amount}
}

// NullMillis is t as a nullable column: NULL when t is zero.
func NullMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: billing.Millis(t), Valid: true}
}

// OptionalMillis is t in Unix milliseconds, 0 for the zero time.
func OptionalMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return billing.Millis(t)
}

// FromNullMillis reads a nullable time column: the zero time when NULL.
func FromNullMillis(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return billing.FromMillis(n.Int64)
}

// EventRecord is a row of the event queries.
type EventRecord struct {
	ID        string
	SiteID    string
	Type      string
	CreatedAt int64
	Body      string
}

func (r EventRecord) Event() billing.Event {
	return billing.Event{ID: r.ID, SiteID: r.SiteID, Type: billing.EventType(r.Type), CreatedAt: billing.FromMillis(r.CreatedAt), Body: []byte(r.Body)}
}

// EndpointRecord is a row of webhook_endpoints.
type EndpointRecord struct {
	ID                  string
	SiteID              string
	Url                 string
	EventTypes          string
	State               string
	DisabledReason      sql.NullString
	Secret              string
	PreviousSecret      sql.NullString
	PreviousSecretUntil sql.NullInt64
	CreatedAt           int64
	FailingSince        sql.NullInt64
	LeaseHolder         sql.NullString
	LeaseUntil          sql.NullInt64
}

func (r EndpointRecord) Endpoint() StoredEndpoint {
	return StoredEndpoint{
		Endpoint: billing.WebhookEndpoint{
			ID:                  r.ID,
			SiteID:              r.SiteID,
			URL:                 r.Url,
			EventTypes:          EventTypes(r.EventTypes),
			State:               billing.EndpointState(r.State),
			DisabledReason:      r.DisabledReason.String,
			PreviousSecretUntil: FromNullMillis(r.PreviousSecretUntil),
			CreatedAt:           billing.FromMillis(r.CreatedAt),
			FailingSince:        FromNullMillis(r.FailingSince),
		},
		Secret:         r.Secret,
		PreviousSecret: r.PreviousSecret.String,
	}
}

// SendingRecord reads a row of EndpointToSend, its position read by the engine.
func SendingRecord(siteID, state, eventTypes string, sent EventPosition) SendingEndpoint {
	return SendingEndpoint{SiteID: siteID, Enabled: state == string(billing.EndpointEnabled), EventTypes: EventTypes(eventTypes), Sent: sent}
}

// EventTypes reads a stored list of event types (space-separated).
func EventTypes(s string) []billing.EventType {
	var out []billing.EventType
	for _, f := range strings.Fields(s) {
		out = append(out, billing.EventType(f))
	}
	return out
}

// FormatEventTypes is the inverse of EventTypes.
func FormatEventTypes(types []billing.EventType) string {
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = string(t)
	}
	return strings.Join(parts, " ")
}

// DeliveryRecord is a row of webhook_deliveries.
type DeliveryRecord struct {
	ID            string
	EndpointID    string
	EventID       string
	EventType     string
	State         string
	CreatedAt     int64
	Tries         int64
	NextAttemptAt sql.NullInt64
	Retries       int64
}

func (r DeliveryRecord) Delivery() billing.Delivery {
	return billing.Delivery{ID: r.ID, EndpointID: r.EndpointID, EventID: r.EventID, EventType: billing.EventType(r.EventType),
		State: billing.DeliveryState(r.State), CreatedAt: billing.FromMillis(r.CreatedAt), Tries: int(r.Tries), Retries: int(r.Retries)}
}

// DueDeliveryRecord is a row of DueDeliveries.
type DueDeliveryRecord struct {
	ID            string
	EndpointID    string
	EventID       string
	EventType     string
	State         string
	CreatedAt     int64
	Tries         int64
	NextAttemptAt sql.NullInt64
	Retries       int64
	Body          string
}

func (r DueDeliveryRecord) Due() billing.DueDelivery {
	d := DeliveryRecord{ID: r.ID, EndpointID: r.EndpointID, EventID: r.EventID, EventType: r.EventType, State: r.State,
		CreatedAt: r.CreatedAt, Tries: r.Tries, Retries: r.Retries}.Delivery()
	return billing.DueDelivery{Delivery: d, Due: FromNullMillis(r.NextAttemptAt), Body: []byte(r.Body)}
}

// AttemptRecord is a row of webhook_attempts.
type AttemptRecord struct {
	DeliveryID  string
	N           int64
	AttemptedAt int64
	Status      int64
	Error       string
	DurationMs  int64
}

func (r AttemptRecord) Attempt() DeliveryAttempt {
	return DeliveryAttempt{DeliveryID: r.DeliveryID, Attempt: billing.DeliveryAttempt{
		At: billing.FromMillis(r.AttemptedAt), Status: int(r.Status), Error: r.Error, Duration: time.Duration(r.DurationMs) * time.Millisecond}}
}

// NullString is s as a nullable column: NULL when s is empty.
func NullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// OrganisationRecord is a row of organisations.
type OrganisationRecord struct {
	ID        string
	Name      string
	CreatedAt int64
}

func (r OrganisationRecord) Organisation() billing.Organisation {
	return billing.Organisation{ID: r.ID, Name: r.Name, CreatedAt: billing.FromMillis(r.CreatedAt)}
}
