package billing

import (
	"strings"
	"testing"
)

// The partner shares no contact details of its customer with Pyng: metadata naming or holding
// one is refused, and the partner's own identifiers, however named, are not.
func TestContactDetailsInMetadata(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		refused    bool
	}{
		{"email", "jane@example.com", true},
		{"customerEmail", "x", true},
		{"customer_e-mail", "x", true},
		{"Contact Phone", "x", true},
		{"telephone", "x", true},
		{"mobile", "x", true},
		{"mobileNumber", "x", true},
		{"billingAddress", "1 George St", true},
		{"postcode", "2000", true},
		{"name", "Jane Citizen", true},
		{"customerName", "Jane Citizen", true},
		{"first_name", "Jane", true},
		{"surname", "Citizen", true},
		{"accountHolderName", "J Citizen", true},
		{"note", "write to jane.citizen+bills@example.com.au", true},
		{"note", "+61 400 000 000", true},
		{"note", "(02) 9999 9999", true},
		{"note", "0412-345-678", true},
		// Spelt as one word, numbered, split, or the key itself a contact detail (an audit's cases).
		{"emailaddress", "x", true},
		{"customeremail", "x", true},
		{"EMAILADDRESS", "x", true},
		{"email1", "x", true},
		{"phonenumber", "x", true},
		{"phone1", "x", true},
		{"mobilenumber", "x", true},
		{"mobilephone", "x", true},
		{"homePhone", "x", true},
		{"customername", "x", true},
		{"contactname", "x", true},
		// A conformance review's cases: the contact details as a whole, an @ between spaces or
		// percent-encoded, a post office box.
		{"contact", "x", true},
		{"contactInfo", "x", true},
		{"contact_details", "x", true},
		{"ContactData", "x", true},
		{"contactId", "CRM-42", false},
		{"contactOwner", "sales", false},
		{"note", "jane @ example.com", true},
		{"note", "jane @example.com", true},
		{"note", "jane%40example.com", true},
		{"note", "JANE%40EXAMPLE.COM", true},
		{"note", "PO Box 123", true},
		{"note", "P.O. Box 12, Carlton", true},
		{"note", "GPO Box 1", true},
		{"note", "Locked Bag 5", true},
		{"note", "box 3 of 12", false},
		{"note", "Gold @ 10.00", false},
		{"note", "discount 40%", false},
		{"postCode", "2000", true},
		{"post_code", "2000", true},
		{"zipCode", "2000", true},
		{"address1", "1 George St", true},
		{"addressLine1", "1 George St", true},
		{"streetAddress", "1 George St", true},
		{"billingaddress", "1 George St", true},
		{"note", "0412\u00a0345\u00a0678", true},
		{"note", "+61\u00a0412\u00a0345\u00a0678", true},
		{"note", "0061 412 345 678", true},
		{"jane.citizen@example.com", "primary", true},
		{"+61412345678", "mobile", true},
		{"mobile2", "x", true},
		{"mobile_1", "x", true},
		{"customerMobile", "x", true},
		{"homemobile", "x", true},
		{"postalCode", "2000", true},
		{"postal_code", "2000", true},
		// Spelt to get past the check, or among other words (the tenancy review's cases).
		{"note", "j\uff20e.com", true},
		{"note", "j\ufe6be.com", true},
		{"note", "john(at)example.com", true},
		{"note", "john [at] example [dot] com", true},
		{"note", "john at example dot com dot au", true},
		{"note", "mailto:j%40e.com", true},
		{"note", "0412-345-678 ext", true},
		{"note", "call 0412 345 678 after 5", true},
		{"note", "\uff10\uff14\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18", true},
		{"note", "1 George St Sydney NSW 2000", true},
		{"note", "12A Smith Street", true},
		{"note", "Sydney NSW 2000", true},
		{"ph", "x", true},
		{"cell", "x", true},
		{"mob", "x", true},
		{"emial", "x", true},
		// Written against a mark without a space (the privacy review's cases).
		{"note", "tel:+61412345678", true},
		{"note", "sms:0412345678", true},
		{"note", "ph:0412345678", true},
		{"note", "mob:0412 345 678", true},
		{"note", "phone=0412345678", true},
		{"note", `"0412345678"`, true},
		{"note", "[0412345678]", true},
		{"note", "0412345678/home", true},
		{"note", "(02) 9876 5432", true},
		{"note", "call (0412345678) now", true},
		{"note", "0412345678!", true},
		{"note", "“0412345678”", true},
		{"note", "«0412 345 678»", true},
		{"note", "x,0412345678", true},
		{"note", "*0412345678*", true},
		{"note", "mob~0412345678", true},
		{"note", "ph:0412345678?", true},
		{"note", "Gold @ 10.00, 40% off", false},
		{"note", "v2.0412", false},
		{"note", "ref:0012345678", false},
		{"note", "at 10:00:00 on 2026-11-30", false},
		{"link", "https://example.com/orders/20261129", false},
		{"accountId", "ACC-1234", false},
		{"note", "meet at 10 dot points", false},
		{"note", "INV-0412345678", false},
		{"note", "order 123 of 2026, plan Gold", false},
		{"note", "batch 2026-11-30 10:00", false},
		{"plan", "Gold Street package", false},
		{"note", "2 seats at NSW office", false},
		// Ordinary values of a school's or a clinic's (the code review's cases).
		{"note", "Term 1 NSW 2025", false},
		{"note", "Session 2 with Dr Smith", false},
		{"note", "Room 5 at St Vincent's", false},
		{"note", "Class 3 on Thu Ct", false},
		{"note", "Cohort 2024 intake, Vic. 3000", false},
		{"note", "Carlton, Vic. 3053", true},
		{"note", "3/45 High Rd", true},
		{"note", "12 O'Connell Street", true},
		{"mobileData", "5GB", false},
		{"ipv4Address", "192.0.2.1", false},
		{"macaddress", "00:00:5e:00:53:af", false},
		{"iphoneModel", "15", false},
		{"mobileplan", "unlimited", false},
		{"planname", "Gold", false},
		{"mailinglist", "weekly", false},
		{"plan2", "Gold", false},
		{"note", "0012345678", false},
		{"planName", "Gold", false},
		{"productName", "Widgets", false},
		{"mobilePlan", "unlimited", false},
		{"ipAddress", "192.0.2.1", false},
		{"mailingList", "weekly", false},
		{"invoice", "20261129", false},
		{"orderNumber", "0000012345", false},
		{"customerNumber", "61400000000", false},
		{"region", "NSW", false},
		{"handle", "@jane", false},
		// An Australian number in international form without its + (SMS gateways keep a mobile
		// so), but not the partner's own number under a key naming it, nor a valid ABN, nor a
		// business's 1300, 1800 or 13 number.
		{"note", "61412345678", true},
		{"note", "61 412 345 678", true},
		{"note", "call 61412345678 after 5", true},
		{"note", "61 2 9876 5432", true},
		{"note", "sms:61412345678", true},
		{"link", "61412345678", true},
		{"ref", "61412345678", false},
		{"61412345678", "mobile", true},
		{"customerNumber", "61 412 345 678", true},
		{"-", "61412345678", true},
		{"accountNo", "61412345678", false},
		{"member_id", "61412345678", false},
		{"customerRef", "61412345678", false},
		{"accountnumber", "61412345678", false},
		{"abn", "61412345120", false},
		{"note", "ABN 61 412 345 120", false},
		{"note", "ABN 51 824 753 556", false},
		{"note", "1300 123 456", false},
		{"note", "1800123456", false},
		{"note", "13 14 50", false},
		{"note", "6141234567", false},
		{"invoice", "614123456789", false},
		{"note", "61012345678", false},
		// Against a dot after a label, or percent-encoded as in a link; not a version's dot nor a
		// percentage.
		{"note", "ph.0412345678", true},
		{"note", "Tel.0412 345 678", true},
		{"note", "mob.61412345678", true},
		{"note", "tel%3A0412345678", true},
		{"note", "tel%3a%2B61412345678", true},
		{"note", "sms%3A0412345678", true},
		{"note", "%2B61412345678", true},
		{"note", "tel%253A0412345678", true},
		{"link", "https://example.com/call?to=%2B61412345678", true},
		{"note", "mailto%3Ajane", true},
		{"note", "mailto%3Ajane%40example.com", true},
		{"note", "jane%2540example.com", true},
		{"jane%40example.com", "primary", true},
		{"note", "v2.0412345678", false},
		{"note", "40% off, 100%25 paid", false},
		{"link", "https://example.com/plans/Gold%20Plus/20261129", false},
		// A capital dotted I (U+0130), which NFKC keeps, lower-cases to an i: "İo" reads as io.
		{"note", "jane@example.\u0130o", true},
		{"note", "jane%40example.\u0130o", true},
	} {
		got := contactDetail(tc.key, tc.value)
		if (got != "") != tc.refused {
			t.Errorf("contactDetail(%q, %q) = %q, want refused %v", tc.key, tc.value, got, tc.refused)
		}
	}
}

// The metadata check of a 500-character value (an invitation may carry 20): one holding what
// each pattern needs (digits, "box", a state's name), and one of words alone, which the plain
// searches before the patterns pass over.
func BenchmarkContactDetail(b *testing.B) {
	for name, value := range map[string]string{
		"every pattern": strings.Repeat("Gold plan 12 seats renewal at Acme box NSW ", 12)[:500],
		"words":         strings.Repeat("Gold plan, renewal of the Acme account, ", 13)[:500],
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				contactDetail("note", value)
			}
		})
	}
}
