package billing

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// LinkState is the state of a customer link, as the partner sees it.
type LinkState string

// The link states.
const (
	LinkInvited LinkState = "invited"
	LinkLinked  LinkState = "linked"
	LinkExpired LinkState = "expired"
	LinkRevoked LinkState = "revoked"
)

// Valid reports whether s is one of the four states.
func (s LinkState) Valid() bool {
	switch s {
	case LinkInvited, LinkLinked, LinkExpired, LinkRevoked:
		return true
	}
	return false
}

// ParseLinkState reads the state a list of links is filtered by, as a partner wrote it.
func ParseLinkState(s string) (LinkState, error) {
	if state := LinkState(s); state.Valid() {
		return state, nil
	}
	return "", invalidLinkState()
}

// RevokedBy says who revoked a link.
type RevokedBy string

// Who can revoke a link.
const (
	RevokedByCustomer RevokedBy = "customer"
	RevokedByPartner  RevokedBy = "partner"
)

// Link is one invitation of a customer of a site, and what became of it. A (site,
// customerReference) pair may have several links over time; at most one is active (invited and
// not expired, or linked), and the newest is the pair's current link.
type Link struct {
	ID                string
	SiteID            string
	CustomerReference string
	// StoredState is the state as last written. An invitation past ExpiresAt may still be stored as
	// invited: use StateAt, which reads it as expired at once, without waiting for a sweep.
	StoredState LinkState
	CreatedAt   time.Time
	ExpiresAt   time.Time
	LinkedAt    time.Time // zero unless linked (or linked, then revoked)
	RevokedAt   time.Time // zero unless revoked
	RevokedBy   RevokedBy // empty unless revoked
	Customer    Customer  // zero until the customer signs up
	// Metadata is the partner's own keys and values, given with the invitation (nil for none).
	// It is the partner's, shown back to the partner; never what the customer told Pyng.
	Metadata map[string]string
}

// StateAt is the link's state at the given time.
func (l Link) StateAt(now time.Time) LinkState {
	if l.StoredState == LinkInvited && !now.Before(l.ExpiresAt) {
		return LinkExpired
	}
	return l.StoredState
}

// Customer is what the customer tells Pyng at signup. It is never shown to the partner.
type Customer struct {
	Name          string // the person who signed up
	Email         string
	BSB           string // six digits, no separator
	AccountNumber string // digits only
	// AccountName is the title of the account, as the bank knows it: it goes into a direct-entry
	// file. Empty for a customer who signed up before it was asked.
	AccountName string
	// Type says whether the account is the customer's own or a business's; empty for a customer
	// who signed up before it was asked (read as an individual).
	Type CustomerType
	// BusinessName and ABN are a business's (empty for an individual). A business customer also
	// declared that they are authorised to operate the account; that is not stored, as consent
	// is not: a business customer cannot be linked without it.
	BusinessName string
	ABN          string // 11 digits, no separator
}

// CustomerType is whose the account is.
type CustomerType string

// The customer types.
const (
	CustomerIndividual CustomerType = "individual"
	CustomerBusiness   CustomerType = "business"
)

// Declarations are what the customer ticks at signup: consent to the direct debit agreement,
// and, for a business's account, that they are authorised to operate it.
type Declarations struct {
	Consent    bool
	Authorised bool
}

var referencePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidReference reports whether s is a valid partner reference (customerReference,
// batchReference, rowReference): 1 to 64 of A-Z, a-z, 0-9, hyphen and underscore.
func ValidReference(s string) bool { return referencePattern.MatchString(s) }

// LinkFilter selects and pages the current links of a site. Links are ordered by
// customerReference (byte order), which keeps pages stable while new customers are invited: a
// page never repeats or skips a customer that existed when the listing began.
type LinkFilter struct {
	State LinkState // empty for all
	After string    // customerReference of the last link of the previous page; empty for the first
	Limit int
}

// DefaultBankDetailsRetention is how long a customer's details are kept after their link ends,
// unless configured otherwise.
const DefaultBankDetailsRetention = 90 * 24 * time.Hour

// The bounds of an invitation's metadata.
const (
	MaxMetadataKeys        = 20
	MaxMetadataKeyLength   = 40
	MaxMetadataValueLength = 500
)

// ValidateMetadata checks the partner's metadata of an invitation: at most MaxMetadataKeys keys,
// each of 1 to MaxMetadataKeyLength characters, each value a string of at most
// MaxMetadataValueLength characters, none with control characters. Every problem is reported,
// with the target metadata.KEY (or metadata for their number). Empty metadata is none: nil.
func ValidateMetadata(m map[string]string) (map[string]string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	var errs Errors
	if len(m) > MaxMetadataKeys {
		errs = append(errs, Errorf(CodeInvalidField, "metadata",
			fmt.Sprintf("metadata may have at most %d keys; it has %d.", MaxMetadataKeys, len(m))))
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		target := "metadata." + k
		if n := utf8.RuneCountInString(k); n < 1 || n > MaxMetadataKeyLength || hasControl(k) {
			errs = append(errs, Errorf(CodeInvalidField, target,
				fmt.Sprintf("A metadata key must be 1 to %d characters, without control characters.", MaxMetadataKeyLength)))
			continue
		}
		if v := m[k]; utf8.RuneCountInString(v) > MaxMetadataValueLength || hasControl(v) {
			errs = append(errs, Errorf(CodeInvalidField, target,
				fmt.Sprintf("A metadata value must be a string of at most %d characters, without control characters.", MaxMetadataValueLength)))
		}
	}
	return m, errs.Err()
}

func hasControl(s string) bool {
	return !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl)
}
