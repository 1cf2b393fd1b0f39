package httpapi_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/storage"
)

// rawLink is GET of a customer, every member as it came.
func (p partner) rawLink(t testing.TB, ref string) map[string]json.RawMessage {
	t.Helper()
	r := p.get(t, ref)
	wantStatus(t, r, http.StatusOK)
	return dataOf[map[string]json.RawMessage](t, r)
}

func TestInvitationMetadata(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		t.Run("metadata is returned by GET of the customer and in each of its events", func(t *testing.T) {
			t.Parallel()
			p := newPartner(t, s)
			meta := map[string]string{"accountId": "8841", "plan": "pro", "région": "Île-de-France"}
			r := p.do(t, http.MethodPost, "/customers/invitations", map[string]any{"customerReference": "META-1", "metadata": meta})
			wantStatus(t, r, http.StatusCreated)
			var got struct{ Metadata map[string]string }
			if err := json.Unmarshal(p.rawLink(t, "META-1")["metadata"], &got.Metadata); err != nil || !maps.Equal(got.Metadata, meta) {
				t.Fatalf("GET metadata = %v (%v), want %v", got.Metadata, err, meta)
			}
			wantStatus(t, p.post(t, "/sandbox/customers/META-1/signup"), http.StatusOK)
			wantStatus(t, p.post(t, "/customers/META-1/revoke"), http.StatusOK)
			events := p.eventsUntil(t, "customer.revoked")
			if len(events) != 3 {
				t.Fatalf("events = %v, want invited, linked, revoked", types(events))
			}
			for _, e := range events {
				var data struct{ Metadata map[string]string }
				if err := json.Unmarshal(e.Data, &data); err != nil || !maps.Equal(data.Metadata, meta) {
					t.Errorf("%s carries metadata %v (%v), want %v", e.Type, data.Metadata, err, meta)
				}
			}
		})

		t.Run("an invitation without metadata has none, and shows no metadata member", func(t *testing.T) {
			t.Parallel()
			p := newPartner(t, s)
			for ref, body := range map[string]map[string]any{
				"NONE-1": {"customerReference": "NONE-1"},
				"NONE-2": {"customerReference": "NONE-2", "metadata": map[string]string{}},
			} {
				wantStatus(t, p.do(t, http.MethodPost, "/customers/invitations", body), http.StatusCreated)
				if m, ok := p.rawLink(t, ref)["metadata"]; ok {
					t.Errorf("%s: metadata = %s, want no member", ref, m)
				}
			}
		})

		t.Run("GET of a linked customer shows nothing of what the customer gave Pyng", func(t *testing.T) {
			t.Parallel()
			p := newPartner(t, s)
			p.link(t, "PRIVATE-1")
			data := p.rawLink(t, "PRIVATE-1")
			allowed := map[string]bool{"customerReference": true, "state": true, "createdAt": true, "expiresAt": true, "linkedAt": true}
			for k := range data {
				if !allowed[k] {
					t.Errorf("GET of a linked customer has member %q", k)
				}
			}
			raw := fmt.Sprint(data)
			// The sandbox signup's customer (billing.SandboxCustomer).
			for _, secret := range []string{"Sandbox Customer", "customer@example.com", "062000", "062-000", "12345678", "5678"} {
				if strings.Contains(raw, secret) {
					t.Errorf("GET of a linked customer shows %q: %s", secret, raw)
				}
			}
		})

		long := func(n int) string { return strings.Repeat("x", n) }
		tooMany := map[string]string{}
		for i := range 21 {
			tooMany[fmt.Sprintf("k%02d", i)] = "v"
		}
		twenty := map[string]string{}
		for i := range 20 {
			twenty[fmt.Sprintf("k%02d", i)] = long(500)
		}
		for _, tc := range []struct {
			name     string
			metadata any
			target   string // empty: accepted
		}{
			{"20 keys of 500-character values are accepted", twenty, ""},
			{"a 40-character key is accepted", map[string]string{long(40): "v"}, ""},
			{"21 keys are refused", tooMany, "metadata"},
			{"a 41-character key is refused", map[string]string{long(41): "v"}, "metadata." + long(41)},
			{"an empty key is refused", map[string]string{"": "v"}, "metadata."},
			{"a 501-character value is refused", map[string]string{"note": long(501)}, "metadata.note"},
			{"a value with a control character is refused", map[string]string{"note": "a\nb"}, "metadata.note"},
			{"a number is refused", map[string]any{"count": 5}, "metadata.count"},
			{"a null value is refused, not stored as an empty string", map[string]any{"note": nil}, "metadata.note"},
			{"a null value among strings is refused", map[string]any{"plan": "pro", "note": nil}, "metadata.note"},
			{"an object value is refused", map[string]any{"nested": map[string]string{"a": "b"}}, "metadata.nested"},
			{"a key naming the customer's email is refused", map[string]string{"email": "jane@example.com"}, "metadata.email"},
			{"an email address under any key is refused", map[string]string{"note": "jane@example.com"}, "metadata.note"},
			{"a phone number is refused", map[string]string{"ref": "+61 400 000 000"}, "metadata.ref"},
			{"a phone number written against a mark is refused", map[string]string{"link": "tel:+61400000000"}, "metadata.link"},
			{"a phone number after a label is refused", map[string]string{"note": "ph:0400000000"}, "metadata.note"},
			{"a phone number after a label and a dot is refused", map[string]string{"note": "ph.0400000000"}, "metadata.note"},
			{"a percent-encoded phone number is refused", map[string]string{"link": "tel%3A%2B61400000000"}, "metadata.link"},
			{"a percent-encoded mailto is refused", map[string]string{"link": "mailto%3Ajane"}, "metadata.link"},
			{"a phone number in quotes is refused", map[string]string{"note": `"0400 000 000"`}, "metadata.note"},
			{"a phone number in curly quotes is refused", map[string]string{"note": "“0400 000 000”"}, "metadata.note"},
			{"a mobile in international form without its + is refused", map[string]string{"note": "61400000000"}, "metadata.note"},
			{"the partner's own number and ABN of that form are accepted", map[string]string{"customerNumber": "61400000000", "abn": "61 400 000 250"}, ""},
			{"a key naming the account holder is refused", map[string]string{"accountHolder": "J Citizen"}, "metadata.accountHolder"},
			{"a key naming the contact person is refused", map[string]string{"contact_person": "Jane"}, "metadata.contact_person"},
			{"a key naming the date of birth is refused", map[string]string{"dateOfBirth": "1990-01-01"}, "metadata.dateOfBirth"},
			{"a key naming the phone in another language is refused", map[string]string{"teléfono": "x"}, "metadata.teléfono"},
			{"the partner's own keys of those words are accepted", map[string]string{"accountHolderId": "H-42", "birthdayDiscount": "10%", "nomProduit": "Gold"}, ""},
			{"the customer's name is refused", map[string]string{"customerName": "Jane Citizen"}, "metadata.customerName"},
			{"the partner's own names and numbers are accepted", map[string]string{"planName": "Gold", "accountId": "0000012345"}, ""},
			{"metadata that is not an object is refused", []string{"a"}, "metadata"},
			{"null metadata is refused", nil, "metadata"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				p := newPartner(t, s)
				r := p.do(t, http.MethodPost, "/customers/invitations", map[string]any{"customerReference": "VAL-1", "metadata": tc.metadata})
				if tc.target == "" {
					wantStatus(t, r, http.StatusCreated)
					return
				}
				wantStatus(t, r, http.StatusBadRequest)
				var body errorBody
				r.JSON(t, &body)
				if len(body.Errors) == 0 || body.Errors[0].Target != tc.target || body.Errors[0].Code != codePrefix+"request:invalid-field" {
					t.Errorf("errors = %+v, want request:invalid-field with target %q", body.Errors, tc.target)
				}
				wantStatus(t, p.get(t, "VAL-1"), http.StatusNotFound)
				if _, events, _ := p.events(t, ""); len(events) != 0 {
					t.Errorf("a refused invitation wrote events %v", types(events))
				}
			})
		}

		t.Run("an invalid reference and invalid metadata are reported together", func(t *testing.T) {
			t.Parallel()
			p := newPartner(t, s)
			r := p.do(t, http.MethodPost, "/customers/invitations", map[string]any{"customerReference": "bad ref", "metadata": map[string]string{"note": long(501)}})
			wantStatus(t, r, http.StatusBadRequest)
			var body errorBody
			r.JSON(t, &body)
			if len(body.Errors) != 2 || body.Errors[0].Target != "customerReference" || body.Errors[1].Target != "metadata.note" {
				t.Errorf("errors = %+v, want customerReference then metadata.note", body.Errors)
			}
		})
	})
}

// Metadata of thousands of bad keys in a 64 KiB body is answered with the one problem of their
// number, not a problem a key (an answer many times the size of the request).
func TestMetadataOfTooManyKeysIsOneProblem(t *testing.T) {
	s := apptest.Start(t, storage.EngineSQLite)
	p := mainPartner(t, s)
	var b strings.Builder
	b.WriteString(`{"customerReference":"AMP-1","metadata":{`)
	for i := 0; b.Len() < 63<<10; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"\u0001%d":""`, i)
	}
	b.WriteString(`}}`)
	r := p.do(t, http.MethodPost, "/customers/invitations", b.String(), "Content-Type", "application/json")
	wantStatus(t, r, http.StatusBadRequest)
	var body errorBody
	r.JSON(t, &body)
	if len(body.Errors) != 1 || body.Errors[0].Target != "metadata" {
		t.Errorf("a %d-byte request of too many bad keys was answered with %d problems in %d bytes; want the one of their number",
			b.Len(), len(body.Errors), len(r.Body))
	}
}
