package billing

import "testing"

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
		{"accountId", "ACC-1234", false},
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
	} {
		got := contactDetail(tc.key, tc.value)
		if (got != "") != tc.refused {
			t.Errorf("contactDetail(%q, %q) = %q, want refused %v", tc.key, tc.value, got, tc.refused)
		}
	}
}
