package aba

import "fmt"

// TransactionCode is the two-digit code of a detail record (columns 19-20): whether the item is a
// debit or a credit, and of what kind.
type TransactionCode int

// The transaction codes of the format. Only CodeDebit debits; every other code credits.
const (
	CodeDebit             TransactionCode = 13 // externally initiated debit
	CodeCredit            TransactionCode = 50 // externally initiated credit (a self-balancing record's code)
	CodeAGSInterest       TransactionCode = 51 // Australian Government Security interest
	CodeFamilyAllowance   TransactionCode = 52
	CodePay               TransactionCode = 53
	CodePension           TransactionCode = 54
	CodeAllotment         TransactionCode = 55
	CodeDividend          TransactionCode = 56
	CodeDebentureInterest TransactionCode = 57 // debenture or note interest
)

// Valid reports whether c is one of the format's codes.
func (c TransactionCode) Valid() bool {
	return c == CodeDebit || (c >= CodeCredit && c <= CodeDebentureInterest)
}

// IsDebit reports whether the item takes money from the account it names; the file total record
// adds it to the debit total, every other item to the credit total.
func (c TransactionCode) IsDebit() bool { return c == CodeDebit }

// Indicator is the one-character indicator of a detail record (column 18). Its zero value, "", is
// written as a blank: the usual case.
type Indicator string

// The indicators of the format.
const (
	IndicatorNone Indicator = ""  // written as a blank
	IndicatorNew  Indicator = "N" // new or varied BSB, account number or title details
	// IndicatorTNA marks a drawing under a transaction negotiation authority.
	IndicatorTNA Indicator = "T"
	// The withholding tax indicators: the amount withheld is in columns 113-120.
	IndicatorDividendTreaty      Indicator = "W" // dividend paid to a resident of a country with a double tax agreement
	IndicatorDividendOther       Indicator = "X" // dividend paid to a resident of any other country
	IndicatorInterestNonResident Indicator = "Y" // interest paid to a non-resident
)

// Valid reports whether i is one of the format's indicators.
func (i Indicator) Valid() bool {
	switch i {
	case IndicatorNone, IndicatorNew, IndicatorTNA, IndicatorDividendTreaty, IndicatorDividendOther, IndicatorInterestNonResident:
		return true
	}
	return false
}

// ReturnReason is the digit in column 18 of a returned-item record: why the receiving bank did
// not pay the item. The codes are the industry's (BECS procedures), the same at every bank, and
// they are all a returns file says of a failure.
type ReturnReason int

// The return reasons. The meanings and the advice in Retryable follow what the banks publish to
// their direct-debit users (ANZ's list of returned items reason codes, for one).
const (
	ReturnInvalidBSB         ReturnReason = 1 // invalid BSB number
	ReturnPaymentStopped     ReturnReason = 2 // the customer stopped debits by this user
	ReturnAccountClosed      ReturnReason = 3 // the account is closed
	ReturnCustomerDeceased   ReturnReason = 4
	ReturnInvalidAccount     ReturnReason = 5 // no account, or an incorrect account number
	ReturnReferToCustomer    ReturnReason = 6 // usually insufficient funds
	ReturnDeleted            ReturnReason = 7 // withdrawn from use: banks no longer send it
	ReturnInvalidUserID      ReturnReason = 8 // the debit user's APCA user ID is invalid
	ReturnTechnicallyInvalid ReturnReason = 9 // the account cannot be debited electronically
)

// ReturnReasons lists every reason, in the order of their codes, for a caller that maps each to
// its own vocabulary and wants a test to show none is missed.
func ReturnReasons() []ReturnReason {
	return []ReturnReason{
		ReturnInvalidBSB, ReturnPaymentStopped, ReturnAccountClosed, ReturnCustomerDeceased,
		ReturnInvalidAccount, ReturnReferToCustomer, ReturnDeleted, ReturnInvalidUserID,
		ReturnTechnicallyInvalid,
	}
}

var reasons = map[ReturnReason]struct{ name, text string }{
	ReturnInvalidBSB:         {"invalidBsb", "invalid BSB number"},
	ReturnPaymentStopped:     {"paymentStopped", "payment stopped"},
	ReturnAccountClosed:      {"accountClosed", "account closed"},
	ReturnCustomerDeceased:   {"customerDeceased", "customer deceased"},
	ReturnInvalidAccount:     {"invalidAccount", "no account or incorrect account number"},
	ReturnReferToCustomer:    {"referToCustomer", "refer to customer"},
	ReturnDeleted:            {"deleted", "deleted (no longer used)"},
	ReturnInvalidUserID:      {"invalidUserId", "invalid user ID number"},
	ReturnTechnicallyInvalid: {"technicallyInvalid", "technically invalid"},
}

// Valid reports whether r is one of the format's reasons (1 to 9).
func (r ReturnReason) Valid() bool {
	_, ok := reasons[r]
	return ok
}

// Name is the reason as a camelCase word ("invalidBsb", "referToCustomer"), the form an API shows
// its clients; "" for an invalid reason.
func (r ReturnReason) Name() string { return reasons[r].name }

// String is the code and its meaning, as the banks word it: "6 refer to customer".
func (r ReturnReason) String() string {
	if !r.Valid() {
		return fmt.Sprintf("%d (not a return reason)", int(r))
	}
	return fmt.Sprintf("%d %s", int(r), reasons[r].text)
}

// Retryable reports whether the same debit, to the same account, may be presented again without
// anything changing first. Only "refer to customer" is: it is what a bank answers for
// insufficient funds, and the banks' advice is that it can be re-debited once before the customer
// is contacted. Every other reason is final for that account until someone acts: a wrong BSB or
// account number (1, 5) needs new details, a stop, closure or death (2, 3, 4) needs the customer
// or their estate, an account that cannot be debited (9) needs another account, and an invalid
// user ID (8) is the debit user's own configuration, which a retry would only repeat.
func (r ReturnReason) Retryable() bool { return r == ReturnReferToCustomer }

// EndsAuthority reports whether the reason means the customer's Direct Debit Request can no
// longer be used: the account does not exist as given (1, 5), is closed (3), or its holder died
// (4). No further debit should go under it. A stop (2) is of one debit, or of this user's, which
// the customer may lift; "refer to customer" (6) asks to contact the customer; an invalid user ID
// (8) is the debit user's own; an account that cannot be debited electronically (9) may be
// converted: none of these ends the authority itself.
func (r ReturnReason) EndsAuthority() bool {
	switch r {
	case ReturnInvalidBSB, ReturnAccountClosed, ReturnCustomerDeceased, ReturnInvalidAccount:
		return true
	}
	return false
}
