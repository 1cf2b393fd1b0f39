package billing

import (
	"crypto/sha256"
	"crypto/subtle"
	"slices"
	"strings"
	"time"
)

// Organisation is a partner: a B2B platform that operates one or more sites.
type Organisation struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// Site is where a partner's customers live; every API call targets one. All sites are in AUD at
// launch.
type Site struct {
	ID             string
	OrganisationID string
	Name           string
	Currency       string
	Rail           string // the name of the site's payment rail, such as "sandbox"
	CreatedAt      time.Time
	// DebitUser is the business that debits the site's customers, as its Direct Debit Request
	// service agreement names it; zero until an operator sets it.
	DebitUser DebitUser
	// TimeZone is the IANA name of the site's time zone (DefaultTimeZone unless set), in which
	// the customer's pages and emails show times.
	TimeZone string
}

// DefaultTimeZone is a site's time zone unless an operator sets another.
const DefaultTimeZone = "Australia/Sydney"

// Location is the site's time zone, in which its customers are shown times: TimeZone, or
// DefaultTimeZone when it is unset (UpdateSite accepts only names the system knows).
func (s Site) Location() *time.Location {
	name := s.TimeZone
	if name == "" {
		name = DefaultTimeZone
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	return loc
}

// DebitUser is the business that debits a site's customers (the "debit user" of BECS).
type DebitUser struct {
	Name    string // legal name
	ABN     string // 11 digits, no spaces
	Phone   string
	Email   string
	Address string // postal address, one line
}

// Set reports whether an operator has set the debit user.
func (d DebitUser) Set() bool { return d.Name != "" }

// CanCollect refuses, as SetSiteRail does a rail that moves money, a site whose debit user is not
// set as its customers' Direct Debit Request needs it: its legal name, and a way to reach it to
// stop, defer or dispute a debit (a phone number, an email or a postal address). Without them the
// agreement would name only the site and send the customer to contact details it never gave.
func (s Site) CanCollect() error {
	if d := s.DebitUser; !d.Set() || (d.Phone == "" && d.Email == "" && d.Address == "") {
		return Errorf(CodeInvalidField, "site", "The site's debit user is not set: the Direct Debit Request its customers agree to must name "+
			"the business that debits them and say how to reach it. Set its legal name and a phone number, an email or a postal address "+
			"first (pyng admin site update).")
	}
	return nil
}

// Scope grants a client access to a group of operations.
type Scope string

// The scopes a client can hold.
const (
	ScopeCustomersInvite Scope = "billing:customers:invite"
	ScopeCustomersRead   Scope = "billing:customers:read"
	ScopeCustomersRevoke Scope = "billing:customers:revoke"
	ScopeBatchesWrite    Scope = "billing:batches:write"
	ScopeBatchesRead     Scope = "billing:batches:read"
	ScopeEventsRead      Scope = "billing:events:read"
	ScopeWebhooksManage  Scope = "billing:webhooks:manage"
)

// AllScopes lists every scope, in a stable order.
var AllScopes = []Scope{ScopeCustomersInvite, ScopeCustomersRead, ScopeCustomersRevoke, ScopeBatchesWrite, ScopeBatchesRead,
	ScopeEventsRead, ScopeWebhooksManage}

// ParseScopes reads a space-separated scope list (RFC 6749 §3.3). Unknown scopes are returned
// separately so the caller can report them; duplicates are dropped.
func ParseScopes(s string) (scopes []Scope, unknown []string) {
	for _, f := range strings.Fields(s) {
		sc := Scope(f)
		switch {
		case !slices.Contains(AllScopes, sc):
			unknown = append(unknown, f)
		case !slices.Contains(scopes, sc):
			scopes = append(scopes, sc)
		}
	}
	return scopes, unknown
}

// FormatScopes is the inverse of ParseScopes.
func FormatScopes(scopes []Scope) string {
	parts := make([]string, len(scopes))
	for i, s := range scopes {
		parts[i] = string(s)
	}
	return strings.Join(parts, " ")
}

// Client is an API client of an organisation, authenticated by OAuth 2.0 client credentials.
// Only a hash of its secret is kept.
type Client struct {
	ID             string
	OrganisationID string
	SecretHash     []byte
	Scopes         []Scope
	CreatedAt      time.Time
	RevokedAt      time.Time // zero while active
}

// Revoked reports whether the client may no longer obtain or use tokens.
func (c Client) Revoked() bool { return !c.RevokedAt.IsZero() }

// HashSecret hashes a client secret for storage. Secrets are 256 random bits, so a fast hash is as
// safe as a slow one and keeps the token endpoint cheap.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// SecretMatches compares a presented secret with the stored hash in constant time.
func (c Client) SecretMatches(secret string) bool {
	return subtle.ConstantTimeCompare(HashSecret(secret), c.SecretHash) == 1
}

// Caller is the authenticated partner behind an API request.
type Caller struct {
	ClientID       string
	OrganisationID string
	Scopes         []Scope
}

// SigningKey signs the tokens the server issues (access, signup and agreement tokens). It lives in
// the database so that every replica shares it.
type SigningKey struct {
	ID        string
	Secret    []byte
	CreatedAt time.Time
}
