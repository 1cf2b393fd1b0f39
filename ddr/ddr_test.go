package ddr_test

import (
	"strings"
	"testing"

	"github.com/pyng/receivables/ddr"
)

// TestTheAgreementHasWhatBECSRequires checks the agreement has each part BECS requires of a DDR
// service agreement and names the debit user as the operator set it.
func TestTheAgreementHasWhatBECSRequires(t *testing.T) {
	terms := ddr.Terms{Wording: ddr.CurrentWording, Site: "Acme Online", DebitUser: "Acme Pty Ltd", ABN: "51824753556", Phone: "02 9999 0000",
		Email: "billing@acme.example", Address: "1 George St, Sydney NSW 2000", UserID: "123456"}
	text := ddr.Text(terms)
	var headings []string
	for _, s := range ddr.Sections(terms) {
		headings = append(headings, s.Heading)
	}
	for _, want := range []string{"The debit arrangements", "Changes to this agreement", "Stopping or deferring a debit, and cancelling",
		"Disputes", "Your obligations", "Notices", "Confidentiality", "Contact"} {
		if !strings.Contains(strings.Join(headings, "|"), want) {
			t.Errorf("no section %q in %v", want, headings)
		}
	}
	for _, want := range []string{ddr.Title, "Acme Pty Ltd (trading as Acme Online)", "ABN 51 824 753 556", "direct debit user ID 123456",
		"02 9999 0000", "billing@acme.example", "1 George St, Sydney NSW 2000", "14 days",
		// The debit user never holds the customer's details (seed 001): Pyng does, for it.
		"give the account's details to Pyng there: we never see your account details", "and does not show them to us",
		// Notice of a change goes through the debit user's own channel: it has no address of Pyng's.
		"We will send you any written notice under this agreement using the contact details you have given us",
		"To give us notice, contact us by phone on 02 9999 0000",
		// Notice of each debit, a financial institution that acts promptly, and a wrong debit
		// repaid, not refunded to an account the debit user never sees.
		"Before each debit we will tell you its amount and the date it will be made", "it must act on your request promptly",
		"we will repay the amount to you promptly"} {
		if !strings.Contains(text, want) {
			t.Errorf("the agreement does not say %q:\n%s", want, text)
		}
	}
}

// The authority the customer gives names who debits as the agreement does: the debit user, with
// its user ID when it debits through BECS, not Pyng, which only processes the debits.
func TestTheAuthorityNamesTheDebitUser(t *testing.T) {
	for _, tc := range []struct {
		terms ddr.Terms
		want  string
	}{
		{ddr.Terms{Wording: ddr.CurrentWording, Site: "Acme Online", DebitUser: "Acme Pty Ltd", UserID: "123456"},
			"I request and authorise Acme Pty Ltd (trading as Acme Online), direct debit user ID 123456, to arrange, through Pyng, which processes its debits, for amounts to be debited from the bank account above through the Bulk Electronic Clearing System (BECS), in Australian dollars (AUD): the amounts Acme Online tells me of before each debit, under its Direct Debit Request Service Agreement."},
		{ddr.Terms{Wording: ddr.CurrentWording, Site: "Acme Online"},
			"I request and authorise Acme Online to arrange, through Pyng, which processes its debits, for amounts to be debited from the bank account above through the Bulk Electronic Clearing System (BECS), in Australian dollars (AUD): the amounts Acme Online tells me of before each debit, under its Direct Debit Request Service Agreement."},
		// The first wording, as the customers who agreed to it did.
		{ddr.Terms{Site: "Acme Online", DebitUser: "Acme Pty Ltd", UserID: "123456"},
			"I authorise Acme Pty Ltd (trading as Acme Online), direct debit user ID 123456, to debit the bank account above through Pyng, which processes its debits, in Australian dollars (AUD), for the amounts that Acme Online asks to collect from me, under its Direct Debit Request Service Agreement."},
	} {
		if got := tc.terms.Authority(); got != tc.want {
			t.Errorf("Authority of %+v =\n%s\nwant\n%s", tc.terms, got, tc.want)
		}
	}
}

func TestAnAgreementWithoutADebitUserNamesTheSite(t *testing.T) {
	text := ddr.Text(ddr.Terms{Site: "Acme Online"})
	if !strings.Contains(text, "between you (the customer) and Acme Online") || strings.Contains(text, "ABN") || strings.Contains(text, "user ID") {
		t.Errorf("the agreement of a site without a debit user:\n%s", text)
	}
}

// A link keeps the wording its customer agreed to: the first wording's agreement reads as it did,
// without what a later wording added, and a change of wording is a change of the terms' Version,
// so that a form shown before it is not taken as agreeing to the text after it.
func TestTheAgreementIsShownInTheWordingAgreedTo(t *testing.T) {
	first := ddr.Terms{Site: "Acme Online", DebitUser: "Acme Pty Ltd", Phone: "02 9999 0000"}
	current := first
	current.Wording = ddr.CurrentWording
	old, now := ddr.Text(first), ddr.Text(current)
	for _, s := range []string{"we will refund it to your account and tell you the amount", "ask your financial institution to stop a debit or cancel the arrangement. Cancelling"} {
		if !strings.Contains(old, s) || strings.Contains(now, s) {
			t.Errorf("%q: in the first wording %v, want true; in the current %v, want false", s, strings.Contains(old, s), strings.Contains(now, s))
		}
	}
	for _, s := range []string{"Before each debit we will tell you its amount", "it must act on your request promptly", "we will repay the amount to you promptly"} {
		if strings.Contains(old, s) || !strings.Contains(now, s) {
			t.Errorf("%q: in the first wording %v, want false; in the current %v, want true", s, strings.Contains(old, s), strings.Contains(now, s))
		}
	}
	if first.Amounts() == current.Amounts() || !strings.Contains(current.Amounts(), "before each debit") {
		t.Errorf("the amounts agreed: %q in the first wording, %q in the current", first.Amounts(), current.Amounts())
	}
	if first.Version() == current.Version() {
		t.Error("two wordings of the same terms have one Version")
	}
}
