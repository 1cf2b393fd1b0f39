package aba

import (
	"fmt"
	"strings"
)

// field is where a field lies in its record, and its name in errors.
type field struct {
	name  string
	col   int // 1-based first column
	width int
}

// The fields of each record, as the format lays them out. Reader and writer share them, so a
// column is stated once.
var (
	fRecordType = field{"record type", 1, 1}

	// Descriptive record (type 0).
	fFundsBSB     = field{"funds BSB", 2, 7}
	fFundsAccount = field{"funds account number", 9, 9}
	fBlank0a      = field{"blank", 18, 1}
	fReel         = field{"reel sequence number", 19, 2}
	fInstitution  = field{"financial institution", 21, 3}
	fBlank0b      = field{"blank", 24, 7}
	fUserName     = field{"user name", 31, 26}
	fUserID       = field{"user ID", 57, 6}
	fDescription  = field{"description", 63, 12}
	fDate         = field{"processing date", 75, 6}
	fBlankTrailer = field{"blank", 81, 40} // also of the type 7 record

	// Detail (type 1) and returned-item (type 2) records.
	fBSB          = field{"BSB", 2, 7}
	fAccount      = field{"account number", 9, 9}
	fIndicator    = field{"indicator", 18, 1}
	fReason       = field{"return reason", 18, 1}
	fCode         = field{"transaction code", 19, 2}
	fAmount       = field{"amount", 21, 10}
	fTitle        = field{"title of account", 31, 32}
	fLodgement    = field{"lodgement reference", 63, 18}
	fTraceBSB     = field{"trace BSB", 81, 7}
	fTraceAccount = field{"trace account number", 88, 9}
	fRemitter     = field{"name of remitter", 97, 16}
	fWithholding  = field{"withholding tax", 113, 8}
	fOriginalDay  = field{"original day of processing", 113, 2}
	fOriginalUser = field{"original user ID", 115, 6}

	// File total record (type 7).
	fFiller  = field{"BSB filler", 2, 7}
	fBlank7a = field{"blank", 9, 12}
	fNet     = field{"net total", 21, 10}
	fCredit  = field{"credit total", 31, 10}
	fDebit   = field{"debit total", 41, 10}
	fBlank7b = field{"blank", 51, 24}
	fCount   = field{"record count", 75, 6}

	// The file as a whole: problems of a record's place in it are named by its first column.
	fRecord = field{"record", 1, recordLen}
)

// totalFiller is the fixed content of the type 7 record's BSB field.
const totalFiller = "999-999"

// maxAmount is the largest number of cents a 10-digit amount field holds.
const maxAmount = 9_999_999_999

// The rules below are the format's, stated once for the writer and the reader. Each returns the
// 0-based index in the value of the problem and what it is, or "" when the value is good.

// checkText checks a left-justified, blank-filled text field of the BECS character set. Blanks at
// either end are refused: a leading one breaks the justification, and a trailing one would be
// lost to the blank filling, so the file could not give the value back.
func checkText(s string, width int, required bool) (int, string) {
	switch {
	case len(s) > width:
		return 0, fmt.Sprintf("is %d characters; the field holds %d", len(s), width)
	case required && strings.Trim(s, " ") == "":
		return 0, "is blank; it must not be"
	case s != "" && s[0] == ' ':
		return 0, "starts with a blank; the field is left-justified"
	case s != "" && s[len(s)-1] == ' ':
		return len(s) - 1, "ends with a blank, which the blank filling would swallow"
	}
	if i := invalidAt(s); i >= 0 {
		return i, fmt.Sprintf("%q is not in the BECS character set", s[i:i+1])
	}
	return 0, ""
}

// checkAccount checks an account number: digits, hyphens and inner blanks ("Leading zeros which
// are part of a valid account number must be shown"), right-justified and blank-filled, not all
// zeros.
func checkAccount(s string) (int, string) {
	switch {
	case s == "":
		return 0, "is blank; it must not be"
	case len(s) > MaxAccount:
		return 0, fmt.Sprintf("is %d characters; the field holds %d", len(s), MaxAccount)
	case s[0] == ' ':
		return 0, "starts with a blank; write the number alone, the field is blank-filled"
	case s[len(s)-1] == ' ':
		return len(s) - 1, "ends with a blank; the field is right-justified"
	}
	nonZero := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '1' && c <= '9':
			nonZero = true
		case c == '0' || c == '-' || c == ' ':
		default:
			return i, fmt.Sprintf("%q is not a digit, a hyphen or a blank", s[i:i+1])
		}
	}
	if !nonZero {
		return 0, "has no digit but zero"
	}
	return 0, ""
}

// checkDigits checks a field of exactly n digits, such as a user ID (its leading zeros are part of
// it).
func checkDigits(s string, n int) (int, string) {
	if len(s) != n {
		return 0, fmt.Sprintf("is %d characters; it must be %d digits", len(s), n)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return i, fmt.Sprintf("%q is not a digit", s[i:i+1])
		}
	}
	return 0, ""
}

// checkInstitution checks a financial institution's mnemonic: three capital letters.
func checkInstitution(s string) (int, string) {
	if len(s) != 3 {
		return 0, fmt.Sprintf("is %d characters; it must be 3 capital letters", len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return i, fmt.Sprintf("%q is not a capital letter", s[i:i+1])
		}
	}
	return 0, ""
}

// ParseBSB reads a BSB given as six digits ("062000") or in the format's form ("062-000") and
// returns it in the latter.
func ParseBSB(s string) (BSB, error) {
	b, _, problem := canonicalBSB(BSB(s))
	if problem != "" {
		return "", fmt.Errorf("BSB %q %s", s, problem)
	}
	return b, nil
}

// canonicalBSB returns b in its NNN-NNN form, or the index and the problem.
func canonicalBSB(b BSB) (BSB, int, string) {
	s := string(b)
	if len(s) == 6 {
		if i, p := checkDigits(s, 6); p != "" {
			return "", i, p
		}
		return BSB(s[:3] + "-" + s[3:]), 0, ""
	}
	if len(s) != 7 {
		return "", 0, fmt.Sprintf("is %d characters; it must be NNN-NNN or six digits", len(s))
	}
	for i := 0; i < 7; i++ {
		if i == 3 {
			if s[i] != '-' {
				return "", i, fmt.Sprintf("%q is not the hyphen of NNN-NNN", s[i:i+1])
			}
		} else if s[i] < '0' || s[i] > '9' {
			return "", i, fmt.Sprintf("%q is not a digit", s[i:i+1])
		}
	}
	return b, 0, ""
}
