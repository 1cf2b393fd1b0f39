package web_test

import (
	"net/http"
	"net/url"
	"testing"
)

// Replaying the confirmation of a signup changes nothing and says why; replaying that of a
// revocation changes nothing and shows the agreement revoked, as the first did.
func TestReplayedConfirmationsChangeNothing(t *testing.T) {
	f := setup(t, "sqlite")
	l, tok := f.invite(t)
	s := f.openForm(t, tok)
	f.post(t, "/signup", validForm(tok), s, nil).status(t, http.StatusSeeOther)
	linked := f.link(t, l.ID)
	other := validForm(tok)
	other.Set("bsb", "083-004")
	other.Set("accountNumber", "99999999")
	f.post(t, "/signup", other, f.session(t), nil).status(t, http.StatusConflict)
	f.unchanged(t, linked)

	l, agreement := f.linked(t)
	confirm := f.get(t, "/agreement/revoke?token="+url.QueryEscape(agreement))
	rs := sessionFrom(t, confirm)
	f.post(t, "/agreement/revoke", url.Values{"token": {agreement}, "confirm": {"yes"}}, rs, nil).status(t, http.StatusSeeOther)
	revoked := f.link(t, l.ID)
	f.post(t, "/agreement/revoke", url.Values{"token": {agreement}, "confirm": {"yes"}}, rs, nil).status(t, http.StatusSeeOther)
	f.unchanged(t, revoked)
}

// Bank details are read whatever the spaces and dashes they were copied with: the no-break spaces
// of ABN Lookup's and many banks' pages, a typographic dash.
func TestBankDetailsAreReadWhateverTheirSeparators(t *testing.T) {
	f := setup(t, "sqlite")
	for _, c := range []struct{ field, value, kept string }{
		{"bsb", "062\u00a0000", "062000"},
		{"bsb", "062\u2013000", "062000"},
		{"bsb", "062\u2011000", "062000"},
		{"accountNumber", "1234\u00a05678", "12345678"},
		{"accountNumber", "12\u202f345\u202f678", "12345678"},
		{"accountNumber", "1234\u20145678", "12345678"},
		{"abn", "51\u00a0824\u00a0753\u00a0556", "51824753556"},
	} {
		t.Run(c.field+" "+c.value, func(t *testing.T) {
			l, tok := f.invite(t)
			form := businessForm(tok)
			form.Set(c.field, c.value)
			agreementToken(t, f.post(t, "/signup", form, f.openForm(t, tok), nil))
			got := f.link(t, l.ID).Customer
			if kept := map[string]string{"bsb": got.BSB, "accountNumber": got.AccountNumber, "abn": got.ABN}[c.field]; kept != c.kept {
				t.Errorf("%s typed %q is kept as %q, want %q", c.field, c.value, kept, c.kept)
			}
		})
	}
}

// Invalid bank details are refused beside their field, whatever their spelling.
func TestInvalidBankDetailsAreRefusedWhateverTheirSpelling(t *testing.T) {
	f := setup(t, "sqlite")
	for _, c := range []struct{ field, value string }{
		{"bsb", "06200"}, {"bsb", "0620001"}, {"bsb", "062.000"}, {"bsb", "０６２０００"}, {"bsb", "06２000"},
		{"accountNumber", "1234"}, {"accountNumber", "1234567890"}, {"accountNumber", "000000"}, {"accountNumber", "1234\t5678"},
		{"accountNumber", "+12345"},
	} {
		l, tok := f.invite(t)
		form := validForm(tok)
		form.Set(c.field, c.value)
		p := f.post(t, "/signup", form, f.openForm(t, tok), nil)
		if p.Status != http.StatusBadRequest {
			t.Errorf("%s=%q: status %d, want 400", c.field, c.value, p.Status)
		}
		f.unchanged(t, f.link(t, l.ID))
	}
}
