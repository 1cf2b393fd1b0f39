package billing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// SiteUpdate is what an operator changes of a site: each field that is not nil replaces the
// site's.
type SiteUpdate struct {
	LegalName, ABN, Phone, Email, Address, TimeZone *string
}

// UpdateSite sets a site's debit user (the debiting business its Direct Debit Request service
// agreement names) and time zone (operators only). Every problem is reported at once, its target
// the flag of the field (legal-name, abn, phone, email, address, time-zone); nothing is written
// unless every field is valid.
func (s *Service) UpdateSite(ctx context.Context, siteID string, u SiteUpdate) (Site, error) {
	site, err := s.store.GetSite(ctx, siteID)
	if errors.Is(err, ErrNotFound) {
		return Site{}, Errorf(CodeInvalidField, "siteId", "No site with this id exists.")
	}
	if err != nil {
		return Site{}, fmt.Errorf("get site: %w", err)
	}
	d, tz := site.DebitUser, site.TimeZone
	var errs Errors
	text := func(p *string, dst *string, target string, maxLen int, what string) {
		if p == nil {
			return
		}
		v := strings.TrimSpace(*p)
		if n := utf8.RuneCountInString(v); n < 1 || n > maxLen || hasControl(v) {
			errs = append(errs, Errorf(CodeInvalidField, target, fmt.Sprintf("%s must be 1 to %d characters, without control characters.", what, maxLen)))
			return
		}
		*dst = v
	}
	text(u.LegalName, &d.Name, "legal-name", 200, "The legal name")
	text(u.Address, &d.Address, "address", 300, "The postal address")
	if u.ABN != nil {
		abn := strings.ReplaceAll(strings.TrimSpace(*u.ABN), " ", "")
		if !ValidABN(abn) {
			errs = append(errs, Errorf(CodeInvalidField, "abn", "The ABN must be 11 digits that pass the ABN checksum, like 51 824 753 556."))
		} else {
			d.ABN = abn
		}
	}
	if u.Phone != nil {
		phone := strings.TrimSpace(*u.Phone)
		if !validPhone(phone) {
			errs = append(errs, Errorf(CodeInvalidField, "phone", "The phone number must be 8 to 15 digits, optionally with spaces, a leading + and brackets, like 02 9999 0000."))
		} else {
			d.Phone = phone
		}
	}
	if u.Email != nil {
		email := strings.TrimSpace(*u.Email)
		if !validEmail(email) {
			errs = append(errs, Errorf(CodeInvalidField, "email", "Enter a valid email address, like billing@example.com."))
		} else {
			d.Email = email
		}
	}
	if u.TimeZone != nil {
		name := strings.TrimSpace(*u.TimeZone)
		if _, err := time.LoadLocation(name); err != nil || name == "" || name == "Local" {
			errs = append(errs, Errorf(CodeInvalidField, "time-zone", "The time zone must be an IANA name, like Australia/Sydney."))
		} else {
			tz = name
		}
	}
	if len(errs) > 0 {
		return Site{}, errs
	}
	if err := s.store.UpdateSiteDebitUser(ctx, siteID, d, tz); err != nil {
		return Site{}, fmt.Errorf("update site: %w", err)
	}
	s.sites.Delete(siteID)
	site.DebitUser, site.TimeZone = d, tz
	return site, nil
}

// ValidABN reports whether s is an Australian Business Number: 11 digits whose weighted sum,
// after 1 is taken from the first digit, is a multiple of 89 (the ABR's checksum).
func ValidABN(s string) bool {
	if len(s) != 11 || !allDigits(s) || s[0] == '0' {
		return false
	}
	weights := [11]int{10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19}
	sum := 0
	for i := range 11 {
		d := int(s[i] - '0')
		if i == 0 {
			d--
		}
		sum += d * weights[i]
	}
	return sum%89 == 0
}

func validPhone(s string) bool {
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == ' ' || r == '(' || r == ')' || r == '-':
		case r == '+' && i == 0:
		default:
			return false
		}
	}
	return digits >= 8 && digits <= 15
}
