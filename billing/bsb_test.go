package billing_test

import (
	"strings"
	"testing"

	"github.com/pyng/receivables/billing"
)

func TestPlainTextRefusesControlCharactersAndInvalidUTF8(t *testing.T) {
	for _, c := range []struct {
		s    string
		want bool
	}{
		{"Zoë O'Brien-Smith & Co.", true},
		{"", true},
		{"a\x00b", false},
		{"a\nb", false},
		{"a\tb", false},
		{"\x1b[31m", false},
		{"a\u0085b", false}, // NEL, a C1 control
		{"a\u2028b", false},
		{"\xff", false},
		{"a\xc3", false},
	} {
		if got := billing.PlainText(c.s); got != c.want {
			t.Errorf("PlainText(%q) = %v, want %v", c.s, got, c.want)
		}
	}
}

func TestReadBranches(t *testing.T) {
	const apca = `"012-002","ANZ","ANZ Smart Choice","115 Pitt Street","Sydney","NSW","2000","PEH"
"062-000","CBA","Sydney","Level 1, 48 Martin Place","Sydney","NSW","2000","PEH"
"733-000","WBC","Sydney","275 Kent Street","Sydney","NSW","2000"," EH"
`
	got, err := billing.ReadBranches(strings.NewReader(apca))
	if err != nil {
		t.Fatal(err)
	}
	want := billing.Branch{BSB: "062000", Mnemonic: "CBA", Name: "Sydney", Address: "Level 1, 48 Martin Place", Suburb: "Sydney", State: "NSW", Postcode: "2000", Payments: "PEH"}
	if len(got) != 3 || got[1] != want || got[2].Payments != "EH" {
		t.Fatalf("ReadBranches = %+v, want 3 branches, the second %+v", got, want)
	}
	withHeading := "BSB,Mnemonic,Branch,Address,Suburb,State,Postcode,Flags\n" + apca
	if got, err := billing.ReadBranches(strings.NewReader(withHeading)); err != nil || len(got) != 3 {
		t.Errorf("with a heading: %d branches, %v; want 3", len(got), err)
	}
	for name, bad := range map[string]string{
		"a short line":         `"062-000","CBA","Sydney"` + "\n",
		"a BSB of 5 digits":    apca + `"062-00","CBA","x","x","x","NSW","2000","PEH"` + "\n",
		"a BSB twice":          apca + `"062000","CBA","x","x","x","NSW","2000","PEH"` + "\n",
		"a NUL":                apca + "\"999-999\",\"CBA\",\"x\x00\",\"x\",\"x\",\"NSW\",\"2000\",\"PEH\"\n",
		"invalid UTF-8":        apca + "\"999-999\",\"CBA\",\"\xff\",\"x\",\"x\",\"NSW\",\"2000\",\"PEH\"\n",
		"no branch":            "",
		"a heading and no row": "BSB,Mnemonic,Branch,Address,Suburb,State,Postcode,Flags\n",
	} {
		if _, err := billing.ReadBranches(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: read without error", name)
		}
	}
}

// A directory saved by a spreadsheet as "CSV UTF-8" begins with a byte order mark: before, it made
// a quoted first field a parse error ("bare \" in non-quoted-field") and an unquoted first BSB
// no BSB, so that line was taken for a heading and its branch left out, unsaid.
func TestReadBranchesAfterAByteOrderMark(t *testing.T) {
	for _, file := range []string{
		"\ufeff012-002,ANZ,ANZ Smart Choice,115 Pitt Street,Sydney,NSW,2000,PEH\r\n062-000,CBA,Sydney,x,Sydney,NSW,2000,PEH\r\n",
		"\ufeff\"012-002\",\"ANZ\",\"ANZ Smart Choice\",\"115 Pitt Street\",\"Sydney\",\"NSW\",\"2000\",\"PEH\"\r\n\"062-000\",\"CBA\",\"Sydney\",\"x\",\"Sydney\",\"NSW\",\"2000\",\"PEH\"\r\n",
		"\ufeffBSB,Mnemonic,Branch,Address,Suburb,State,Postcode,Flags\n012-002,ANZ,ANZ Smart Choice,115 Pitt Street,Sydney,NSW,2000,PEH\n062-000,CBA,Sydney,x,Sydney,NSW,2000,PEH\n",
	} {
		got, err := billing.ReadBranches(strings.NewReader(file))
		if err != nil || len(got) != 2 || got[0].BSB != "012002" || got[1].BSB != "062000" {
			t.Errorf("ReadBranches(%q) = %+v, %v; want the branches 012002 and 062000", file, got, err)
		}
	}
}

func TestValidateCustomerOfABusiness(t *testing.T) {
	business := billing.Customer{Name: "Ada Lovelace", Email: "ada@example.com", BSB: "062-000", AccountNumber: "12345678",
		AccountName: "  ANALYTICAL   ENGINES ", Type: billing.CustomerBusiness, BusinessName: " Analytical Engines ", ABN: "51 824 753 556"}
	c, err := billing.ValidateCustomer(business, billing.Declarations{Consent: true, Authorised: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.ABN != "51824753556" || c.BusinessName != "Analytical Engines" || c.AccountName != "ANALYTICAL ENGINES" || c.BSB != "062000" {
		t.Errorf("kept %+v", c)
	}
	targets := func(err error) []string {
		var out []string
		for _, e := range billing.AsErrors(err) {
			out = append(out, e.Target)
		}
		return out
	}
	_, err = billing.ValidateCustomer(business, billing.Declarations{Consent: true})
	if got := targets(err); len(got) != 1 || got[0] != "authorised" {
		t.Errorf("a business without authority: %v, want authorised", got)
	}
	individual := business
	individual.Type = billing.CustomerIndividual
	c, err = billing.ValidateCustomer(individual, billing.Declarations{Consent: true, Authorised: true})
	if err != nil || c.BusinessName != "" || c.ABN != "" {
		t.Errorf("an individual: %+v, %v; want the business's fields dropped", c, err)
	}
	bad := business
	bad.Type, bad.AccountName = "", strings.Repeat("A", 33)
	if got := targets(func() error {
		_, err := billing.ValidateCustomer(bad, billing.Declarations{Consent: true, Authorised: true})
		return err
	}()); strings.Join(got, ",") != "accountName,customerType" {
		t.Errorf("no type and a long account name: %v", got)
	}
	// A business's name is shown to the customer as the name is: no character that reorders it.
	reordered := business
	reordered.BusinessName = "Analytical \u202eEngines"
	_, err = billing.ValidateCustomer(reordered, billing.Declarations{Consent: true, Authorised: true})
	if got := billing.AsErrors(err); len(got) != 1 || got[0].Target != "businessName" || !strings.Contains(got[0].Message, "change the direction of text") {
		t.Errorf("a business name with a right-to-left override: %v, want refused", err)
	}
}

// A branch takes direct debits when its payment flags have E (electronic); one whose flags lack it
// (paper, or high value, alone) does not; one without flags is not refused.
func TestABranchTakesDirectDebitsByItsPaymentFlags(t *testing.T) {
	for _, tc := range []struct {
		flags string
		takes bool
	}{
		{"PEH", true}, {"PE", true}, {"E", true}, {"P E", true},
		{"P", false}, {"PH", false}, {"H", false},
		{"", true}, {"   ", true},
	} {
		if got := (billing.Branch{BSB: "062000", Payments: tc.flags}).TakesDirectDebits(); got != tc.takes {
			t.Errorf("a branch with payment flags %q takes direct debits: %t, want %t", tc.flags, got, tc.takes)
		}
	}
}
