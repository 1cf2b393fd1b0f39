// Package ddr is the Direct Debit Request Service Agreement of a site: the terms BECS requires a
// debit user to give the customers it debits (the debit arrangements, notice of changes, how to
// stop or defer a debit, disputes, the customer's obligations, how notices are given,
// confidentiality, and how to contact the debit user), written once. The customer's page shows it and the signup
// confirmation email carries it, both from Sections; Text is its plain-text rendering.
//
// It is pure: it imports nothing of the module and does no I/O.
package ddr

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// Title is the agreement's title.
const Title = "Direct Debit Request Service Agreement"

// CurrentWording numbers the text of the agreement and of the authority as they stand. A change
// of the text is a new number, the text of every number stays here, and a link keeps the number
// its customer agreed to (Terms.Wording): the agreement is shown as it was agreed, and a form
// shown before a change is not taken as agreeing to the text after it (Version).
//
// Wording 2 adds notice of each debit's amount and date, names BECS in the authority, says that
// the customer's financial institution must act promptly, and promises a wrong debit repaid
// rather than refunded to an account the debit user never sees.
const CurrentWording = 2

// Terms are the facts the agreement is written from. A customer's link keeps those it was
// agreed with, as JSON: the names below are a stored format.
type Terms struct {
	// Wording is the number of the text (CurrentWording when written); 0 is the first text, that
	// of the links agreed before the text was numbered.
	Wording int `json:"wording,omitempty"`
	// Site is the name the customer knows the business by.
	Site string `json:"site"`
	// DebitUser is the debiting business's legal name, ABN, phone, email and postal address, as an
	// operator set them; empty until then (the agreement then names the site and Pyng's contact).
	DebitUser string `json:"debitUser,omitempty"`
	ABN       string `json:"abn,omitempty"`
	Phone     string `json:"phone,omitempty"`
	Email     string `json:"email,omitempty"`
	Address   string `json:"address,omitempty"`
	// UserID is the debit user's APCA user ID, when the site debits through BECS; empty otherwise.
	UserID string `json:"userId,omitempty"`
}

// Version names these terms: it differs whenever one of them does. The signup form carries the
// version it showed, so that a customer is never taken to agree to terms changed meanwhile.
func (t Terms) Version() string {
	b, _ := json.Marshal(t) // strings and a number: it cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Section is one heading of the agreement and its paragraphs.
type Section struct {
	Heading    string
	Paragraphs []string
}

// debitor is who debits: the legal name with the site's name, or the site's name alone.
func (t Terms) debitor() string {
	switch {
	case t.DebitUser == "":
		return t.Site
	case t.DebitUser == t.Site:
		return t.DebitUser
	}
	return fmt.Sprintf("%s (trading as %s)", t.DebitUser, t.Site)
}

// Authority is the Direct Debit Request the signup form asks the customer to make: it authorises
// the debit user the agreement names (with its user ID, when it has one) to debit the account,
// through Pyng, which processes its debits.
func (t Terms) Authority() string {
	who := t.debitor()
	if t.UserID != "" {
		who += ", direct debit user ID " + t.UserID + ","
	}
	return t.worded(
		"I authorise "+who+" to debit the bank account above through Pyng, which processes its debits, in Australian dollars (AUD), "+
			"for the amounts that "+t.Site+" asks to collect from me, under its Direct Debit Request Service Agreement.",
		"I request and authorise "+who+" to arrange, through Pyng, which processes its debits, for amounts to be debited from "+
			"the bank account above through the Bulk Electronic Clearing System (BECS), in Australian dollars (AUD): the amounts "+t.Site+
			" tells me of before each debit, under its Direct Debit Request Service Agreement.")
}

// Amounts is what the authority lets the debit user collect, said to the customer: "the amounts
// it tells you of before each debit", as the wording they agreed to has it.
func (t Terms) Amounts() string {
	return t.worded("the amounts it asks Pyng to collect from you", "the amounts it tells you of before each debit")
}

// worded is the text of wording 2 and later, or before for the wordings before it.
func (t Terms) worded(before, from2 string) string {
	if t.Wording < 2 {
		return before
	}
	return from2
}

// Contact is how to reach the debit user, to follow "contact us": "by phone on ..., or by email
// to ...", or the site's own contact details when the operator gave none.
func (t Terms) Contact() string {
	var ways []string
	if t.Phone != "" {
		ways = append(ways, "by phone on "+t.Phone)
	}
	if t.Email != "" {
		ways = append(ways, "by email to "+t.Email)
	}
	if t.Address != "" {
		ways = append(ways, "by post to "+t.Address)
	}
	if len(ways) == 0 {
		return "through the contact details " + t.Site + " has given you"
	}
	return strings.Join(ways, ", or ")
}

// Sections is the agreement, in order.
func Sections(t Terms) []Section {
	who := t.debitor()
	id := []string{"This agreement is between you (the customer) and " + who + " (\"we\", \"us\"), the debit user."}
	var facts []string
	if t.ABN != "" {
		facts = append(facts, "ABN "+formatABN(t.ABN))
	}
	if t.UserID != "" {
		facts = append(facts, "direct debit user ID "+t.UserID)
	}
	if len(facts) > 0 {
		id = append(id, who+": "+strings.Join(facts, ", ")+".")
	}
	id = append(id, "It sets out the terms on which we debit your account under the Direct Debit Request you made when you signed up through Pyng, which processes the debits for us, and your rights. Keep a copy.")
	return []Section{
		{"Who this agreement is with", id},
		{"The debit arrangements", []string{
			"We will debit your nominated account only for amounts you owe us, in Australian dollars, in accordance with your Direct Debit Request and this agreement." +
				t.worded("", " Before each debit we will tell you its amount and the date it will be made (on your bill or invoice, or in a notice)."),
			"Debits are made through the Bulk Electronic Clearing System (BECS). If a debit falls due on a day that is not a business day, it is made on the next business day. If you are unsure when a debit will be processed, ask your financial institution.",
			"We will give you at least 14 days' written notice before we change the amount, frequency or timing of the debits, unless you agreed to the change.",
		}},
		{"Changes to this agreement", []string{
			"We may change this agreement by giving you at least 14 days' written notice. You may ask us to change the arrangements, such as deferring a debit, by contacting us " + t.Contact() + ".",
			"To have another account debited, ask us for a new signup link and give the account's details to Pyng there: we never see your account details.",
		}},
		{"Stopping or deferring a debit, and cancelling", []string{
			"You may stop or defer a particular debit, or cancel this agreement at any time, by contacting us " + t.Contact() + " at least 3 business days before the debit is due. You may also cancel it yourself, at once, on the page Pyng sent you to manage it.",
			"You may also ask your financial institution to stop a debit or cancel the arrangement" + t.worded(".", "; it must act on your request promptly.") +
				" Cancelling the arrangement does not end what you owe us: you will need to pay it another way.",
		}},
		{"Disputes", []string{
			"If you believe a debit was wrong, contact us " + t.Contact() + " as soon as you can. We will respond within 5 business days. If we find the debit was wrong, " +
				t.worded("we will refund it to your account and tell you the amount", "we will repay the amount to you promptly and tell you how") +
				"; if we find it was right, we will give you our reasons and the evidence for them.",
			"You may also raise a dispute with your financial institution at any time; it may ask us to look into the debit under the BECS rules.",
		}},
		{"Your obligations", []string{
			"Make sure your nominated account can be debited by direct debit (direct debit is not available on every account: check with your financial institution), that the account details you gave are correct, and that there is enough cleared money in the account when each debit is due.",
			"If a debit is returned or dishonoured, your financial institution may charge you a fee, and we may try the debit again or ask you to pay another way. Tell us if you close your account, or want another one debited.",
		}},
		{"Notices", []string{
			"We will send you any written notice under this agreement using the contact details you have given us, not those you gave Pyng, which we never see. To give us notice, contact us " + t.Contact() + ".",
			"Pyng emails you, at the address you gave it when you signed up, when this agreement starts and when it ends.",
		}},
		{"Confidentiality", []string{
			"Pyng keeps your personal information and account details for us, confidential and secure, and does not show them to us. They are disclosed only as needed to process your debits (to the financial institutions involved), to investigate a dispute or a claim, or where the law requires it.",
		}},
		{"Contact", []string{
			"Contact " + who + " " + t.Contact() + ".",
		}},
	}
}

// Text is the agreement as plain text, for an email.
func Text(t Terms) string {
	var b strings.Builder
	b.WriteString(Title + "\n" + strings.Repeat("=", len(Title)) + "\n")
	for _, s := range Sections(t) {
		b.WriteString("\n" + s.Heading + "\n" + strings.Repeat("-", len(s.Heading)) + "\n")
		for _, p := range s.Paragraphs {
			b.WriteString(p + "\n\n")
		}
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// formatABN writes an ABN as the ABR does: 51 824 753 556.
func formatABN(abn string) string {
	if len(abn) != 11 {
		return abn
	}
	return abn[:2] + " " + abn[2:5] + " " + abn[5:8] + " " + abn[8:]
}
