package aba

// The BECS character set: the characters a direct-entry file may carry in its text fields. A bank
// rejects a whole file for one character outside it, so every text field is checked before a file
// is written, and a customer's account title can be checked with ValidText when it is entered.
//
// The set is the one the zeptofs/aba gem enforces (lib/aba/validations.rb, BECS_PATTERN): the
// letters A-Z and a-z, the digits, the blank and + - @ $ ! % & ( ) * . / # = : ; ? , ' [ ] _ ^.
// Any byte outside it, every non-ASCII byte included, is invalid.
var becs = func() (set [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		set[c] = true
		set[c+'a'-'A'] = true
	}
	for c := '0'; c <= '9'; c++ {
		set[c] = true
	}
	for _, c := range " +-@$!%&()*./#=:;?,'[]_^" {
		set[c] = true
	}
	return set
}()

// ValidText reports whether every character of s is in the BECS character set, the only
// characters a text field of a direct-entry file (a title of account, a lodgement reference, a
// remitter's or user's name) may hold. It does not check the length: each field has its own
// width (MaxTitle and the others).
func ValidText(s string) bool {
	return invalidAt(s) < 0
}

// invalidAt returns the index of the first byte of s outside the BECS set, or -1.
func invalidAt(s string) int {
	for i := 0; i < len(s); i++ {
		if !becs[s[i]] {
			return i
		}
	}
	return -1
}

// The widths of the text fields, for a caller that checks or cuts a value before it builds a
// File.
const (
	MaxUserName           = 26 // descriptive record: name of user supplying the file
	MaxDescription        = 12 // descriptive record: description of entries
	MaxTitle              = 32 // detail record: title of account
	MaxLodgementReference = 18 // detail record: lodgement reference
	MaxRemitter           = 16 // detail record: name of remitter
	MaxAccount            = 9  // detail record: account number (and trace account number)
)
