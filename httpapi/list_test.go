package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/pyng/receivables/apptest"
)

func TestListCustomers(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		t.Run("customers are listed by customerReference in byte order", func(t *testing.T) {
			t.Parallel()
			p := newPartner(t, s)
			for _, ref := range []string{"b", "a_1", "B", "a-1", "A", "0", "a"} {
				p.mustInvite(t, ref)
			}
			want := []string{"0", "A", "B", "a", "a-1", "a_1", "b"}
			if pg := p.mustList(t, ""); !slices.Equal(refs(pg.Data), want) || pg.NextCursor != "" {
				t.Errorf("list = %v (next %q), want %v and no nextCursor", refs(pg.Data), pg.NextCursor, want)
			}
		})

		t.Run("an empty site lists nothing", func(t *testing.T) {
			t.Parallel()
			p := newPartner(t, s)
			r := p.list(t, "")
			wantStatus(t, r, http.StatusOK)
			if string(r.Body[:10]) != `{"data":[]` {
				t.Errorf("body = %s, want data to be an empty array", r.Body)
			}
		})

		t.Run("the state filter selects each state", func(t *testing.T) {
			t.Parallel()
			p := newPartner(t, s)
			p.mustInvite(t, "INVITED")
			p.mustInvite(t, "LINKED")
			wantStatus(t, p.post(t, "/sandbox/customers/LINKED/signup"), http.StatusOK)
			p.mustInvite(t, "REVOKED")
			wantStatus(t, p.post(t, "/customers/REVOKED/revoke"), http.StatusOK)
			for state, want := range map[string][]string{
				"invited": {"INVITED"}, "linked": {"LINKED"}, "revoked": {"REVOKED"}, "expired": {},
			} {
				pg := p.mustList(t, "?state="+state)
				if !slices.Equal(refs(pg.Data), want) {
					t.Errorf("state=%s lists %v, want %v", state, refs(pg.Data), want)
				}
				for _, l := range pg.Data {
					if l.State != state {
						t.Errorf("state=%s lists %+v", state, l)
					}
				}
			}
		})

		t.Run("the current link of each customer is listed once", func(t *testing.T) {
			t.Parallel()
			p := newPartner(t, s)
			p.mustInvite(t, "AGAIN")
			wantStatus(t, p.post(t, "/customers/AGAIN/revoke"), http.StatusOK)
			second := p.mustInvite(t, "AGAIN")
			pg := p.mustList(t, "")
			if len(pg.Data) != 1 || pg.Data[0].State != "invited" || pg.Data[0].SignupURL != second.SignupURL {
				t.Errorf("list = %+v, want only the new invitation", pg.Data)
			}
		})

		t.Run("paging with limit 3 through 7 customers, inviting more between pages, skips and repeats none", func(t *testing.T) {
			t.Parallel()
			p := newPartner(t, s)
			original := []string{"C1", "C2", "C3", "C4", "C5", "C6", "C7"}
			for _, ref := range original {
				p.mustInvite(t, ref)
			}
			var seen []string
			cursor, pages := "", 0
			for {
				query := "?limit=3"
				if cursor != "" {
					query += "&cursor=" + cursor
				}
				pg := p.mustList(t, query)
				pages++
				if len(pg.Data) > 3 {
					t.Fatalf("page %d has %d customers, limit 3", pages, len(pg.Data))
				}
				seen = append(seen, refs(pg.Data)...)
				// Customers invited meanwhile, before and after the page.
				p.mustInvite(t, fmt.Sprintf("B%d", pages))
				p.mustInvite(t, fmt.Sprintf("C%dz", pages*2))
				if pg.NextCursor == "" {
					break
				}
				cursor = pg.NextCursor
			}
			if !slices.IsSorted(seen) || len(slices.Compact(slices.Clone(seen))) != len(seen) {
				t.Errorf("pages gave %v: out of order or repeated", seen)
			}
			for _, ref := range original {
				if !slices.Contains(seen, ref) {
					t.Errorf("%s was skipped; pages gave %v", ref, seen)
				}
			}
		})

		t.Run("limit defaults to 50 and ranges from 1 to 100", func(t *testing.T) {
			t.Parallel()
			p := newPartner(t, s)
			for i := range 101 {
				p.mustInvite(t, fmt.Sprintf("R%03d", i))
			}
			for query, want := range map[string]int{"": 50, "?limit=1": 1, "?limit=100": 100} {
				pg := p.mustList(t, query)
				if len(pg.Data) != want || pg.NextCursor == "" {
					t.Errorf("%q gives %d customers (next %q), want %d and a nextCursor", query, len(pg.Data), pg.NextCursor, want)
				}
			}
			last := p.mustList(t, "?limit=100&cursor="+cursorOf("R099"))
			if !slices.Equal(refs(last.Data), []string{"R100"}) || last.NextCursor != "" {
				t.Errorf("last page = %v (next %q), want [R100] and no nextCursor", refs(last.Data), last.NextCursor)
			}
		})

		p := mainPartner(t, s)
		invalid := []struct {
			query, target string
		}{
			{"?limit=0", "limit"},
			{"?limit=101", "limit"},
			{"?limit=-1", "limit"},
			{"?limit=%2B5", "limit"},
			{"?limit=ten", "limit"},
			{"?limit=", "limit"},
			{"?limit=1&limit=2", "limit"},
			{"?state=active", "state"},
			{"?state=Invited", "state"},
			{"?state=", "state"},
			{"?cursor=!!!", "cursor"},
			{"?cursor=" + cursorOf("a b"), "cursor"},
			{"?cursor=", "cursor"},
		}
		for _, tt := range invalid {
			t.Run("invalid "+tt.target+" is 400 invalid-field: "+tt.query, func(t *testing.T) {
				t.Parallel()
				wantError(t, p.list(t, tt.query), http.StatusBadRequest, "request:invalid-field", tt.target)
			})
		}
		t.Run("an invalid cursor for a missing site is the site's 404", func(t *testing.T) {
			t.Parallel()
			missing := partner{s: s, token: p.token, site: "site_doesnotexist"}
			wantError(t, missing.list(t, "?cursor=!!!"), http.StatusNotFound, "site:not-found", "siteId")
		})
	})
}

// TestMalformedQueryStringsAreRefused checks that a query string net/url cannot decode is
// answered 400 naming the parameter, on every endpoint that reads one, instead of being dropped
// (which answered as if the parameter had not been sent: page 1, 50 items).
func TestMalformedQueryStringsAreRefused(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := newPartner(t, s)
		p.link(t, "ACME-001")
		p.mustInvite(t, "ACME-002")
		p.mustSubmit(t, batchRequest("B-1", debit{"R1", "ACME-001", 100}))
		endpoints := map[string]func(query string) *apptest.Response{
			"GET customers": func(q string) *apptest.Response { return p.list(t, q) },
			"GET batches":   func(q string) *apptest.Response { return p.listBatches(t, q) },
			"GET one batch": func(q string) *apptest.Response { return p.getBatch(t, "B-1", q) },
			"POST invitation": func(q string) *apptest.Response {
				return p.do(t, http.MethodPost, "/customers/invitations"+q, map[string]string{"customerReference": "ACME-003"})
			},
		}
		malformed := []struct{ query, target string }{
			{"?cursor=%%%", "cursor"},
			{"?limit=%zz", "limit"},
			{"?limit=1&cursor=%", "cursor"},
			{"?rowState=succeeded%2", "rowState"},
			{"?state=%ZZ&limit=1", "state"},
			{"?limit=1;cursor=x", "limit"},
			{"?%zz=1", "%zz"},
		}
		for name, call := range endpoints {
			for _, tt := range malformed {
				t.Run(name+" "+tt.query+" is 400 invalid-field naming "+tt.target, func(t *testing.T) {
					wantError(t, call(tt.query), http.StatusBadRequest, "request:invalid-field", tt.target)
				})
			}
		}
		t.Run("a malformed query at a missing site is the site's 404", func(t *testing.T) {
			missing := partner{s: s, token: p.token, site: "site_doesnotexist"}
			wantError(t, missing.list(t, "?cursor=%%%"), http.StatusNotFound, "site:not-found", "siteId")
		})
		t.Run("percent-encoded parameters that decode are read as decoded", func(t *testing.T) {
			if pg := p.mustList(t, "?%6Cimit=%31&state=%69nvited"); len(pg.Data) != 1 || pg.Data[0].CustomerReference != "ACME-002" {
				t.Errorf("list = %+v, want the one invited customer ACME-002", pg.Data)
			}
			if r := p.listBatches(t, "?limit=%31%30"); r.Status != http.StatusOK {
				t.Errorf("GET batches?limit=%%31%%30 = %d %s, want 200", r.Status, r.Body)
			}
		})
	})
}
