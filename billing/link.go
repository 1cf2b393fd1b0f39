package billing

import (
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/pyng/receivables/ddr"
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
	// RevokedByBank: the customer's bank returned a debit made under the link for a reason that
	// ends the authority (RowReturn.EndsAuthority: the account closed or not found, the customer
	// deceased), and the link was revoked with the return, so no further debit is sent under it.
	RevokedByBank RevokedBy = "bank"
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
	// Terms are those of the Direct Debit Request Service Agreement the customer agreed to at
	// signup: whom the customer authorised to debit the account (the debit user and its user ID)
	// and how to reach it, as they stood then. Zero until linked, and for a link linked before
	// they were kept (Service.AgreedTerms then gives the site's current ones).
	Terms ddr.Terms
}

// StateAt is the link's state at the given time.
func (l Link) StateAt(now time.Time) LinkState {
	if l.StoredState == LinkInvited && !now.Before(l.ExpiresAt) {
		return LinkExpired
	}
	return l.StoredState
}

// MadeDebitsOf reports whether the link is linked and was linked when a batch submitted at
// submittedAt was: the link that batch's debits were made under, which a return ending the
// customer's authority revokes, and not one the customer made since (after revoking, perhaps
// with another account).
func (l Link) MadeDebitsOf(submittedAt time.Time) bool {
	return l.StoredState == LinkLinked && !l.LinkedAt.After(submittedAt)
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
	// BusinessName and ABN are a business's (empty for an individual). Every customer also
	// declared that they are authorised to operate the account on their own; that is not stored,
	// as consent is not: no customer can be linked without it.
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

// Declarations are what the customer ticks at signup: that they are authorised to operate the
// account on their own (whether it is theirs or a business's), and consent to the direct debit
// agreement.
type Declarations struct {
	Consent    bool
	Authorised bool
	// Terms is the version (ddr.Terms.Version) of the agreement the customer was shown when
	// consenting: a signup is completed only under those terms (Service.CompleteSignup).
	Terms string
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

// ValidateMetadata checks the partner's metadata of an invitation: at most MaxMetadataKeys keys
// (more is the one problem reported), each of 1 to MaxMetadataKeyLength characters, each value a
// string of at most MaxMetadataValueLength characters, none with control characters nor the
// customer's contact details. Every problem is reported, with the target metadata.KEY (or
// metadata for their number). Empty metadata is none: nil.
func ValidateMetadata(m map[string]string) (map[string]string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	if len(m) > MaxMetadataKeys {
		// The keys are not looked at one by one: a request of thousands of them is not answered
		// with thousands of problems.
		return nil, Errors{Errorf(CodeInvalidField, "metadata",
			fmt.Sprintf("metadata may have at most %d keys; it has %d.", MaxMetadataKeys, len(m)))}.Err()
	}
	var errs Errors
	for _, k := range slices.Sorted(maps.Keys(m)) {
		target := "metadata." + Quoted(k) // a key of thousands of characters is not echoed whole
		if n := utf8.RuneCountInString(k); n < 1 || n > MaxMetadataKeyLength || hasControl(k) {
			errs = append(errs, Errorf(CodeInvalidField, target,
				fmt.Sprintf("A metadata key must be 1 to %d characters, without control characters.", MaxMetadataKeyLength)))
			continue
		}
		if v := m[k]; utf8.RuneCountInString(v) > MaxMetadataValueLength || hasControl(v) {
			errs = append(errs, Errorf(CodeInvalidField, target,
				fmt.Sprintf("A metadata value must be a string of at most %d characters, without control characters.", MaxMetadataValueLength)))
		} else if what := contactDetail(k, v); what != "" {
			errs = append(errs, Errorf(CodeInvalidField, target,
				fmt.Sprintf("Metadata is for the partner's own identifiers, never the customer's contact details, and %s: "+
					"the customer gives Pyng their details themselves.", what)))
		}
	}
	return m, errs.Err()
}

// contactDetail says what of the customer's contact details a metadata entry holds ("" for
// none): a key that names one (email, phone, address, the customer's name or date of birth), in
// English or another common European language, or a value that is an email address or a phone
// number. The partner shares no contact details of its customer with
// Pyng, and metadata is its only free text, so obvious ones are refused; a check of words cannot
// be complete, which is why the API document says what metadata is for. Both are read in
// compatibility form (NFKC), so that a full-width ＠ or digit is the character it looks like.
func contactDetail(key, value string) string {
	key, value = norm.NFKC.String(key), norm.NFKC.String(value)
	words := inEnglish(keyWords(withoutAccents(key)))
	// Two words that make one (post code, zip code, e mail) are read as that word too.
	joined := slices.Clone(words)
	for i := 1; i < len(words); i++ {
		if isWord(words[i-1]) && isWord(words[i]) {
			joined = append(joined, words[i-1]+words[i])
		}
	}
	joined = inEnglish(joined)
	switch {
	case slices.ContainsFunc(joined, namesContact), namesMobile(words), namesContactDetails(words):
		return "this key names one"
	case slices.Contains(words, "address") && !slices.ContainsFunc(words, func(w string) bool { return notPostalAddress[w] }):
		return "this key names one"
	case namesPersonDetail(words, nameWords, personNameWords), namesPersonDetail(words, holderWords, holderQualifiers):
		return "this key names the customer's name"
	case namesPersonDetail(words, birthWords, birthQualifiers):
		return "this key names the customer's date of birth"
	case slices.ContainsFunc([]string{key, percentDecoded(key)}, func(k string) bool { return emailPattern.MatchString(k) || isPhoneNumber(k) }):
		return "this key is one"
	case namesOwnNumber(words) && australianPhoneWithoutPlus.MatchString(value):
		// The whole value of a key such as customerNumber is read as the partner's number, not
		// as a phone number written without its + (the one form a partner's number shares).
		return ""
	}
	if what := valueContactDetail(value); what != "" {
		return what
	}
	// Percent-encoded, as in a link: tel%3A0412345678, mailto%3Ajane%40example.com.
	if decoded := percentDecoded(value); decoded != value {
		return valueContactDetail(norm.NFKC.String(decoded))
	}
	return ""
}

// percentDecoded is s with each percent-escape (%XX) read as its byte, again until none is left
// (tel%253A… is tel%3A… encoded once more); a % that begins none is kept (40% off).
func percentDecoded(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	for {
		decoded := percentEscape.ReplaceAllStringFunc(s, func(e string) string {
			b, _ := hex.DecodeString(e[1:])
			return string(b)
		})
		if decoded == s {
			return s
		}
		s = decoded
	}
}

var percentEscape = regexp.MustCompile(`%[0-9A-Fa-f]{2}`)

// namesOwnNumber reports whether a key names a number or identifier of the partner's own: its
// last word is number, no, num, id, ref or reference, or ends in number (customerNumber,
// account_no, memberId, customernumber).
func namesOwnNumber(words []string) bool {
	if len(words) == 0 { // a key of marks alone, "-"
		return false
	}
	last := words[len(words)-1]
	return ownNumberWords[last] || strings.HasSuffix(last, "number")
}

// ownNumberWords are the last words of a key that name the partner's own number.
var ownNumberWords = map[string]bool{"no": true, "num": true, "id": true, "ref": true, "reference": true}

// valueContactDetail is contactDetail's reading of a value. Each pattern is tried only on a value
// holding what it cannot match without (an @, digits, a word), found by a plain search first: the
// patterns cost tens of microseconds a 500-character value, an invitation may carry 20, and most
// values hold none of it.
func valueContactDetail(value string) string {
	lower := strings.ToLower(value)
	digits := 0 // ASCII ones: the patterns read [0-9]
	for i := range len(value) {
		if '0' <= value[i] && value[i] <= '9' {
			digits++
		}
	}
	at := strings.Contains(value, "@")
	switch {
	case at && (emailPattern.MatchString(value) || spacedEmailPattern.MatchString(value)),
		// Lower-cased, an address may match that did not (a capital dotted I, U+0130, is an i).
		at && emailPattern.MatchString(lower),
		strings.Contains(lower, "at") && (strings.ContainsAny(value, "([{<") || strings.Contains(lower, "dot")) && spelledEmailPattern.MatchString(value),
		strings.Contains(lower, "mailto:"):
		return "this value holds an email address"
	case digits >= 8 && isPhoneNumber(value):
		return "this value is a phone number"
	case digits >= 8 && slices.ContainsFunc(phoneLikeRuns.FindAllStringSubmatch(marksAsSpaces(value), -1), func(m []string) bool { return isPhoneNumber(m[1]) }):
		return "this value holds a phone number"
	case digits >= 4 && slices.ContainsFunc(australianStates, func(s string) bool { return strings.Contains(value, s) }) &&
		australianStatePostcode.MatchString(value),
		digits > 0 && streetAddress.MatchString(value),
		digits > 0 && (strings.Contains(lower, "box") || strings.Contains(lower, "bag")) && postOfficeBox.MatchString(value):
		return "this value holds a postal address"
	}
	return ""
}

var (
	// spacedEmailPattern is an email address with spaces around its @: jane @ example.com.
	spacedEmailPattern = regexp.MustCompile(`[^\s@<>(),;:"]+\s+@\s*[^\s@<>(),;:"]+\.[A-Za-z]{2,}|[^\s@<>(),;:"]+\s*@\s+[^\s@<>(),;:"]+\.[A-Za-z]{2,}`)
	// postOfficeBox is a box or bag a post office holds for the customer: PO Box 123, P.O. Box
	// 12, GPO Box 1, Locked Bag 5.
	postOfficeBox = regexp.MustCompile(`(?i)\b(P\.?\s?O\.?|GPO|Post\s+Office)\s+Box\s+[0-9]+|\bLocked\s+Bag\s+[0-9]+`)
	// spelledEmailPattern is an email address spelt out to get past a check: jane(at)example.com,
	// jane [at] example [dot] com, jane at example dot com.
	spelledEmailPattern = regexp.MustCompile(`(?i)\S\s*[(\[{<]\s*at\s*[)\]}>]\s*\S|\w\s+at\s+[\w.-]+(\s+dot\s+\w+)*\s+dot\s+(com|net|org|edu|gov|info|biz|io|co|au|nz|uk)\b`)
	// phoneLikeRuns are the runs of a value that may be a phone number among other words: starting
	// a word, of digits and what separates them, as isPhoneNumber reads them.
	phoneLikeRuns = regexp.MustCompile(`(?:^|\s)([+(]?[0-9][0-9() .\-\x{00a0}]{6,}[0-9])(?:$|[\s,;.)])`)
	// australianStates are the states' abbreviations as australianStatePostcode reads them.
	australianStates = []string{"NSW", "VIC", "Vic", "QLD", "Qld", "SA", "WA", "TAS", "Tas", "NT", "ACT"}
	// australianStatePostcode is the end of an Australian postal address: a suburb's name, its
	// state and its postcode (Sydney NSW 2000, Carlton, Vic. 3053), not a state and a year
	// ("Term 1 NSW 2025", "intake, Vic. 3000").
	australianStatePostcode = regexp.MustCompile(`\p{Lu}\p{L}+,?\s+(NSW|VIC|Vic|QLD|Qld|SA|WA|TAS|Tas|NT|ACT)\.?,?\s+[0-9]{4}\b`)
	// streetAddress is a number and a street of capitalised words: 1 George St, 12A Smith Street,
	// 3/45 High Rd; not "Session 2 with Dr Smith" or "Class 3 on Thu Ct".
	streetAddress = regexp.MustCompile(`\b[0-9]+[A-Za-z]?(/[0-9]+[A-Za-z]?)?\s+(\p{Lu}\p{L}*'?\p{L}*\s+){1,3}(St|Street|Rd|Road|Ave|Avenue|Pde|Parade|Dr|Drive|Cres|Crescent|Ct|Court|Pl|Place|Hwy|Highway|Tce|Terrace|Ln|Lane|Blvd|Boulevard|Way|Cl|Close)\b\.?`)
)

// isWord reports whether a word of a key is of letters (keyWords keeps digits apart).
func isWord(w string) bool { return !unicode.IsDigit([]rune(w)[0]) }

// namesContact reports whether a word of a metadata key (or two words joined) names a contact
// detail: one of contactWords, or a word that holds one without a space (emailaddress,
// customeremail, phonenumber, mobilephone, customername, billingaddress).
func namesContact(w string) bool {
	prefixOf := func(suffix string) (string, bool) { return strings.CutSuffix(w, suffix) }
	switch {
	case contactWords[w], strings.Contains(w, "email"), strings.HasPrefix(w, "phone"):
		return true
	case strings.HasPrefix(w, "mobile"):
		return mobileNumberWords[strings.TrimPrefix(w, "mobile")] // mobilePlan is not one
	}
	if prefix, ok := prefixOf("phone"); ok && phoneOwners[prefix] {
		return true
	}
	if prefix, ok := prefixOf("mobile"); ok && phoneOwners[prefix] {
		return true
	}
	if prefix, ok := prefixOf("address"); ok && prefix != "" && !notPostalAddress[prefix] {
		return true
	}
	if prefix, ok := prefixOf("name"); ok && prefix != "" && personNameWords[prefix] {
		return true
	}
	return slices.ContainsFunc(compoundContactWords, func(c string) bool { return strings.Contains(w, c) })
}

// namesContactDetails reports whether the words of a key are "contact" alone or with words
// that make it the contact details themselves (contact, contactInfo, contact_details; not
// contactId, a partner's own identifier of a contact in its records).
func namesContactDetails(words []string) bool {
	return slices.Contains(words, "contact") && !slices.ContainsFunc(words, func(w string) bool {
		return w != "contact" && !contactDetailsWords[w]
	})
}

// contactDetailsWords are the words that, with "contact", make a key the contact details (or the
// person to contact: contactPerson).
var contactDetailsWords = map[string]bool{"info": true, "information": true, "details": true, "detail": true, "data": true, "person": true}

// namesPersonDetail reports whether a key's words are one of nouns, naming a detail of a person,
// and nothing but qualifiers, saying whose it is: customerName, accountHolder, cardholder_name,
// dateOfBirth, customerDob; not planName, accountHolderId or birthdayDiscount.
func namesPersonDetail(words []string, nouns, qualifiers map[string]bool) bool {
	return slices.ContainsFunc(words, func(w string) bool { return nouns[w] }) &&
		!slices.ContainsFunc(words, func(w string) bool { return !nouns[w] && !qualifiers[w] })
}

var (
	nameWords = map[string]bool{"name": true}
	// holderWords name the holder of the customer's account, card or policy, a person.
	holderWords = map[string]bool{"holder": true, "accountholder": true, "cardholder": true, "policyholder": true}
	// holderQualifiers are the words a key naming a holder may hold besides: whose holder it is
	// (policy holder), and whose name.
	holderQualifiers = union(personNameWords, map[string]bool{"card": true, "policy": true})
	birthWords       = map[string]bool{"dob": true, "birth": true, "birthdate": true, "dateofbirth": true, "birthday": true}
	// birthQualifiers are the words a key naming the date of birth may hold besides: date of
	// birth, fecha de nacimiento, data di nascita, and whose it is.
	birthQualifiers = union(personNameWords, map[string]bool{"date": true, "of": true, "day": true, "de": true, "di": true, "do": true,
		"fecha": true, "data": true, "datum": true, "van": true})
)

func union(a, b map[string]bool) map[string]bool {
	u := maps.Clone(a)
	maps.Copy(u, b)
	return u
}

// namesMobile reports whether the words of a key name a mobile number: "mobile" with nothing
// but numbers, "number", "no", "phone" or whose it is (mobile2, customerMobile, homeMobile; not
// mobilePlan or mobileData).
func namesMobile(words []string) bool {
	return slices.Contains(words, "mobile") && !slices.ContainsFunc(words, func(w string) bool {
		return w != "mobile" && isWord(w) && !mobileNumberWords[w] && !phoneOwners[w]
	})
}

// mobileNumberWords are the words that, after "mobile", make it a mobile number (mobileNumber,
// mobile_no, mobilephone), as one word or apart.
var mobileNumberWords = map[string]bool{"number": true, "no": true, "phone": true}

// contactWords are words of a metadata key that name a contact detail wherever they stand.
var contactWords = map[string]bool{
	"email": true, "mail": true, "phone": true, "telephone": true, "tel": true, "fax": true, "street": true,
	"suburb": true, "postcode": true, "postalcode": true, "zipcode": true, "surname": true, "firstname": true, "lastname": true,
	"fullname": true, "givenname": true, "familyname": true, "middlename": true,
	"ph": true, "mob": true, "cell": true, "emial": true, "addr": true, "msisdn": true, "landline": true,
}

// compoundContactWords are the contactWords that name one inside a longer word too
// (homepostcode, customersurname); the short ones (mail, tel, fax) would match other words.
var compoundContactWords = []string{"telephone", "telefon", "street", "suburb", "postcode", "postalcode", "zipcode", "surname", "firstname",
	"lastname", "fullname", "givenname", "familyname", "middlename"}

// phoneOwners are what a key's word may say before "phone" when it names a phone number
// (mobilephone, homephone; not iphone or headphone).
var phoneOwners = map[string]bool{
	"mobile": true, "home": true, "work": true, "cell": true, "contact": true, "customer": true, "client": true,
	"business": true, "office": true, "daytime": true, "primary": true, "secondary": true, "alt": true, "alternate": true,
}

// notPostalAddress are the words that make an "address" a network one (ipAddress, macAddress).
var notPostalAddress = map[string]bool{"ip": true, "ipv": true, "mac": true, "ethernet": true, "wallet": true, "web": true}

// personNameWords are the words of a key that names a person's name when "name" is among them
// and no other word is (customerName, firstName; not planName).
var personNameWords = map[string]bool{
	"name": true, "customer": true, "contact": true, "client": true, "account": true, "holder": true,
	"full": true, "first": true, "last": true, "given": true, "family": true, "middle": true, "legal": true, "person": true,
	"payer": true, "debtor": true, "recipient": true, "accountholder": true, "cardholder": true, "policyholder": true,
}

// english are the words of a key in German, French, Spanish, Italian, Portuguese or Dutch that
// name a contact detail, and the English word the check reads them as. Spanish nombre (French
// for a number) and words that are also English (portable) are not among them.
var english = map[string]string{
	"courriel": "email", "correo": "email", "correio": "email",
	"telefoon": "telephone",
	"handy":    "mobile", "movil": "mobile", "celular": "mobile", "cellulare": "mobile", "mobiel": "mobile", "telemovel": "mobile",
	"nom": "name", "nome": "name", "naam": "name",
	"vorname": "firstname", "prenom": "firstname", "voornaam": "firstname",
	"nachname": "surname", "familienname": "surname", "cognome": "surname", "apellido": "surname", "apellidos": "surname",
	"sobrenome": "surname", "achternaam": "surname",
	"adresse": "address", "adres": "address", "direccion": "address", "indirizzo": "address", "endereco": "address",
	"anschrift": "address",
	"strasse":   "street", "straße": "street", "rue": "street", "calle": "street", "rua": "street", "straat": "street",
	"plz": "postcode", "postleitzahl": "postcode", "codepostal": "postcode", "codigopostal": "postcode",
	"geburtsdatum": "birthdate", "geburtstag": "birthday", "geboortedatum": "birthdate",
	"naissance": "birth", "nacimiento": "birth", "nascita": "birth", "nascimento": "birth", "geboorte": "birth",
}

// inEnglish is words with each of english read as its English word, in place.
func inEnglish(words []string) []string {
	for i, w := range words {
		if e, ok := english[w]; ok {
			words[i] = e
		}
	}
	return words
}

// withoutAccents is s without its combining marks (téléphone, dirección, endereço: telephone,
// direccion, endereco), so that a key is read whether or not it is written with them.
func withoutAccents(s string) string {
	return norm.NFC.String(strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) {
			return -1
		}
		return r
	}, norm.NFD.String(s)))
}

// keyWords splits a key into its lower-case words at every character that is not a letter or a
// digit, at each lower-to-upper case change and between letters and digits: customer_email,
// customerEmail and "Customer Email" are all customer, email; email2 is email, 2.
func keyWords(key string) []string {
	var words []string
	var word []rune
	var prev rune
	flush := func() {
		if len(word) > 0 {
			words = append(words, strings.ToLower(string(word)))
			word = word[:0]
		}
	}
	for _, r := range key {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
			prev = 0
			continue
		case unicode.IsUpper(r) && unicode.IsLower(prev),
			unicode.IsDigit(r) != unicode.IsDigit(prev) && prev != 0:
			flush()
		}
		word = append(word, r)
		prev = r
	}
	flush()
	return words
}

var emailPattern = regexp.MustCompile(`[^\s@<>(),;:"]+@[^\s@<>(),;:"]+\.[A-Za-z]{2,}`)

// isPhoneNumber reports whether the value, without spaces (a no-break space too), dots, dashes
// and brackets, is a phone number: "+" and 8 to 15 digits, or an Australian number of 10 digits
// (02, 03, 04, 07, 08), also dialled with the international prefix from Australia (0061) or in
// international form without its + (61 and the 9 digits after the 0, as SMS gateways keep a
// mobile: 61412345678), unless those 11 digits are a valid ABN, as a business's own may be.
func isPhoneNumber(value string) bool {
	digits := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || strings.ContainsRune(".-()", r) {
			return -1
		}
		return r
	}, value)
	return internationalPhone.MatchString(digits) || australianPhone.MatchString(digits) ||
		australianPhoneWithoutPlus.MatchString(digits) && !ValidABN(digits)
}

var (
	internationalPhone         = regexp.MustCompile(`^\+[0-9]{8,15}$`)
	australianPhone            = regexp.MustCompile(`^(0|0061)[23478][0-9]{8}$`)
	australianPhoneWithoutPlus = regexp.MustCompile(`^61[23478][0-9]{8}$`)
)

// marksAsSpaces reads the marks a phone number may be written against without a space as
// spaces, before phoneLikeRuns looks for one: every punctuation mark and symbol ("tel:+61…",
// "ph:0412…", quotes, curly ones too, "0412…/home", "0412…!", "x,0412…"), but those a number is
// written with (+ ( ) .) and those that join the parts of an identifier (- _: "INV-0412345678");
// and a dot after a letter, which ends a word as a space does ("ph.0412…", "tel.0412…"; not
// "v2.0412…").
func marksAsSpaces(value string) string {
	var prev rune
	return strings.Map(func(r rune) rune {
		mark := (unicode.IsPunct(r) || unicode.IsSymbol(r)) && !strings.ContainsRune("+().-_", r) || r == '.' && unicode.IsLetter(prev)
		prev = r
		if mark {
			return ' '
		}
		return r
	}, value)
}

func hasControl(s string) bool {
	return !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl)
}
