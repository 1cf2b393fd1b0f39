package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pyng/receivables/apptest"
	"github.com/pyng/receivables/billing"
)

// The invitation endpoint's error bodies, word for word.
var (
	alreadyExists = apiError{
		Code:           codePrefix + "customer-link:already-exists",
		DisplayMessage: "An active invitation or link already exists for this customerReference.",
		Target:         "customerReference",
	}
	invalidReference = apiError{
		Code:           codePrefix + "customer-link:invalid-reference",
		DisplayMessage: "customerReference must be 1–64 characters and contain only alphanumeric characters, hyphens, and underscores.",
		Target:         "customerReference",
	}
)

func wantExactError(t testing.TB, r *apptest.Response, status int, want apiError) {
	t.Helper()
	wantStatus(t, r, status)
	var body errorBody
	r.JSON(t, &body)
	if len(body.Errors) != 1 || body.Errors[0] != want {
		t.Fatalf("errors = %+v, want exactly [%+v]", body.Errors, want)
	}
	if !uuidV4.MatchString(body.TraceID) {
		t.Fatalf("traceId = %q, want a UUID", body.TraceID)
	}
}

func TestInvite(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)

		t.Run("201 with the invitation and expiresAt = now + TTL", func(t *testing.T) {
			t.Parallel()
			r := p.invite(t, "ACME-001")
			wantStatus(t, r, http.StatusCreated)
			if ct := r.Header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
				t.Errorf("Content-Type = %q, want application/json;charset=UTF-8", ct)
			}
			var body struct {
				Data    invitation
				TraceID string
			}
			r.JSON(t, &body)
			want := s.Clock.Now().Add(billing.DefaultInvitationTTL).UnixMilli()
			if body.Data.CustomerReference != "ACME-001" || body.Data.State != "invited" || body.Data.ExpiresAt != want {
				t.Errorf("invitation = %+v, want ACME-001, invited, expiresAt %d", body.Data, want)
			}
			if !strings.HasPrefix(body.Data.SignupURL, s.URL+"/signup?token=") || len(body.Data.SignupURL) <= len(s.URL+"/signup?token=") {
				t.Errorf("signupUrl = %q, want %s/signup?token=...", body.Data.SignupURL, s.URL)
			}
			if body.TraceID != r.Header.Get("Pyng-Trace-Id") || !uuidV4.MatchString(body.TraceID) {
				t.Errorf("traceId = %q, header %q; want the same UUID", body.TraceID, r.Header.Get("Pyng-Trace-Id"))
			}
		})

		t.Run("a second invitation while one is active is 409 already-exists", func(t *testing.T) {
			t.Parallel()
			p.mustInvite(t, "ACME-DUP")
			wantExactError(t, p.invite(t, "ACME-DUP"), http.StatusConflict, alreadyExists)
		})

		t.Run("a linked customer cannot be invited again", func(t *testing.T) {
			t.Parallel()
			p.mustInvite(t, "ACME-LINKED")
			wantStatus(t, p.post(t, "/sandbox/customers/ACME-LINKED/signup"), http.StatusOK)
			wantExactError(t, p.invite(t, "ACME-LINKED"), http.StatusConflict, alreadyExists)
		})

		t.Run("a new invitation may be minted once the previous is revoked", func(t *testing.T) {
			t.Parallel()
			first := p.mustInvite(t, "ACME-AGAIN")
			wantStatus(t, p.post(t, "/customers/ACME-AGAIN/revoke"), http.StatusOK)
			second := p.mustInvite(t, "ACME-AGAIN")
			if second.SignupURL == first.SignupURL {
				t.Error("the new invitation has the revoked one's signupUrl")
			}
			if l := p.mustGet(t, "ACME-AGAIN"); l.State != "invited" || l.SignupURL != second.SignupURL {
				t.Errorf("current link = %+v, want the new invitation", l)
			}
		})

		t.Run("the same reference under another site of the organisation is independent", func(t *testing.T) {
			t.Parallel()
			site, err := s.Service.CreateSite(context.Background(), s.Organisation.ID, "Second site")
			if err != nil {
				t.Fatal(err)
			}
			p.mustInvite(t, "ACME-TWO-SITES")
			second := partner{s: s, token: p.token, site: site.ID}
			second.mustInvite(t, "ACME-TWO-SITES")
			wantStatus(t, p.post(t, "/customers/ACME-TWO-SITES/revoke"), http.StatusOK)
			if l := second.mustGet(t, "ACME-TWO-SITES"); l.State != "invited" {
				t.Errorf("the other site's link is %s after revoking this site's, want invited", l.State)
			}
		})

		t.Run("of ten concurrent invitations for one reference exactly one succeeds", func(t *testing.T) {
			t.Parallel()
			var wg sync.WaitGroup
			statuses := make(chan int, 10)
			for range 10 {
				wg.Go(func() { statuses <- p.invite(t, "ACME-RACE").Status })
			}
			wg.Wait()
			close(statuses)
			counts := map[int]int{}
			for st := range statuses {
				counts[st]++
			}
			if counts[http.StatusCreated] != 1 || counts[http.StatusConflict] != 9 {
				t.Errorf("statuses = %v, want one 201 and nine 409", counts)
			}
		})

		invalid := []struct {
			name string
			body any
		}{
			{"an empty customerReference", map[string]string{"customerReference": ""}},
			{"a customerReference of 65 characters", map[string]string{"customerReference": strings.Repeat("a", 65)}},
			{"a space", map[string]string{"customerReference": "ACME 001"}},
			{"a non-ASCII letter", map[string]string{"customerReference": "ACMÉ-001"}},
			{"a slash", map[string]string{"customerReference": "ACME/001"}},
			{"a dot", map[string]string{"customerReference": "ACME.001"}},
			{"a missing customerReference", map[string]string{}},
			{"a null customerReference", `{"customerReference":null}`},
			{"a number", `{"customerReference":12}`},
			{"a boolean", `{"customerReference":true}`},
			{"an array", `{"customerReference":["ACME-001"]}`},
			{"an object", `{"customerReference":{"id":"ACME-001"}}`},
		}
		for _, tt := range invalid {
			t.Run("400 invalid-reference for "+tt.name, func(t *testing.T) {
				t.Parallel()
				wantExactError(t, p.do(t, http.MethodPost, "/customers/invitations", tt.body), http.StatusBadRequest, invalidReference)
			})
		}
		t.Run("a customerReference of 64 characters is valid", func(t *testing.T) {
			t.Parallel()
			p.mustInvite(t, strings.Repeat("a", 63)+"Z")
		})
	})
}

func TestInvitationAfterExpiry(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		first := p.mustInvite(t, "ACME-001")
		s.Clock.Advance(billing.DefaultInvitationTTL - 1)
		p.token = s.Token(t, s.Partner) // the first expired with the clock's move
		wantExactError(t, p.invite(t, "ACME-001"), http.StatusConflict, alreadyExists)
		s.Clock.Advance(1) // now exactly expiresAt

		t.Run("an invitation reads expired at once, in GET one and in the list", func(t *testing.T) {
			l := p.mustGet(t, "ACME-001")
			if l.State != "expired" || l.SignupURL != "" || l.ExpiresAt != first.ExpiresAt {
				t.Errorf("link = %+v, want expired, without signupUrl, expiresAt %d", l, first.ExpiresAt)
			}
			if pg := p.mustList(t, "?state=expired"); !slices.Equal(refs(pg.Data), []string{"ACME-001"}) {
				t.Errorf("state=expired lists %v, want ACME-001", refs(pg.Data))
			}
			if pg := p.mustList(t, "?state=invited"); len(pg.Data) != 0 {
				t.Errorf("state=invited lists %v, want none", refs(pg.Data))
			}
		})
		t.Run("an expired invitation cannot be revoked", func(t *testing.T) {
			wantError(t, p.post(t, "/customers/ACME-001/revoke"), http.StatusConflict, "customer-link:invalid-state", "customerReference")
		})
		t.Run("an expired invitation cannot be signed up in the sandbox", func(t *testing.T) {
			wantError(t, p.post(t, "/sandbox/customers/ACME-001/signup"), http.StatusConflict, "customer-link:no-active-invitation", "customerReference")
		})
		t.Run("a new invitation may be minted once the previous expired", func(t *testing.T) {
			second := p.mustInvite(t, "ACME-001")
			if want := s.Clock.Now().Add(billing.DefaultInvitationTTL).UnixMilli(); second.ExpiresAt != want {
				t.Errorf("expiresAt = %d, want %d", second.ExpiresAt, want)
			}
			if l := p.mustGet(t, "ACME-001"); l.State != "invited" || l.SignupURL != second.SignupURL {
				t.Errorf("current link = %+v, want the new invitation", l)
			}
		})
	})
}

func TestGetCustomer(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		now := s.Clock.Now().UnixMilli()

		t.Run("an invited link has its signupUrl, the one minted", func(t *testing.T) {
			t.Parallel()
			inv := p.mustInvite(t, "ACME-INVITED")
			l := p.mustGet(t, "ACME-INVITED")
			want := link{CustomerReference: "ACME-INVITED", State: "invited", CreatedAt: now, ExpiresAt: inv.ExpiresAt, SignupURL: inv.SignupURL}
			if l != want {
				t.Errorf("link = %+v, want %+v", l, want)
			}
		})
		t.Run("a linked link has linkedAt and no signupUrl", func(t *testing.T) {
			t.Parallel()
			inv := p.mustInvite(t, "ACME-LINKED")
			wantStatus(t, p.post(t, "/sandbox/customers/ACME-LINKED/signup"), http.StatusOK)
			l := p.mustGet(t, "ACME-LINKED")
			want := link{CustomerReference: "ACME-LINKED", State: "linked", CreatedAt: now, ExpiresAt: inv.ExpiresAt, LinkedAt: now}
			if l != want {
				t.Errorf("link = %+v, want %+v", l, want)
			}
		})
		t.Run("a revoked link has revokedAt and revokedBy and no signupUrl", func(t *testing.T) {
			t.Parallel()
			inv := p.mustInvite(t, "ACME-REVOKED")
			wantStatus(t, p.post(t, "/customers/ACME-REVOKED/revoke"), http.StatusOK)
			l := p.mustGet(t, "ACME-REVOKED")
			want := link{CustomerReference: "ACME-REVOKED", State: "revoked", CreatedAt: now, ExpiresAt: inv.ExpiresAt, RevokedAt: now, RevokedBy: "partner"}
			if l != want {
				t.Errorf("link = %+v, want %+v", l, want)
			}
		})
		for _, ref := range []string{"ACME-NEVER", "not.a.reference"} {
			t.Run("an unknown customerReference is 404 customer-link:not-found: "+ref, func(t *testing.T) {
				t.Parallel()
				wantError(t, p.get(t, ref), http.StatusNotFound, "customer-link:not-found", "customerReference")
			})
		}
	})
}

func TestRevokeCustomer(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		now := s.Clock.Now().UnixMilli()
		tests := []struct {
			name   string
			setup  func(t *testing.T, ref string)
			body   any
			status int
			code   string
		}{
			{"an invited link is revoked by the partner", func(t *testing.T, ref string) { p.mustInvite(t, ref) }, nil, 200, ""},
			{"a linked link is revoked by the partner", func(t *testing.T, ref string) {
				p.mustInvite(t, ref)
				wantStatus(t, p.post(t, "/sandbox/customers/"+ref+"/signup"), http.StatusOK)
			}, nil, 200, ""},
			{"an empty JSON object is an empty body", func(t *testing.T, ref string) { p.mustInvite(t, ref) }, map[string]string{}, 200, ""},
			{"a revoked link cannot be revoked again", func(t *testing.T, ref string) {
				p.mustInvite(t, ref)
				wantStatus(t, p.post(t, "/customers/"+ref+"/revoke"), http.StatusOK)
			}, nil, 409, "customer-link:invalid-state"},
			{"a link revoked by the customer cannot be revoked again", func(t *testing.T, ref string) {
				p.mustInvite(t, ref)
				wantStatus(t, p.post(t, "/sandbox/customers/"+ref+"/signup"), http.StatusOK)
				wantStatus(t, p.post(t, "/sandbox/customers/"+ref+"/customer-revocation"), http.StatusOK)
			}, nil, 409, "customer-link:invalid-state"},
			{"an unknown customerReference is 404", func(*testing.T, string) {}, nil, 404, "customer-link:not-found"},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				ref := fmt.Sprintf("ACME-%d", i)
				tt.setup(t, ref)
				before := p.snapshot(t, ref)
				r := p.do(t, http.MethodPost, "/customers/"+ref+"/revoke", tt.body)
				if tt.code != "" {
					wantError(t, r, tt.status, tt.code, "customerReference")
					if after := p.snapshot(t, ref); after != before {
						t.Errorf("the refused revocation changed the link: %s → %s", before, after)
					}
					return
				}
				wantStatus(t, r, http.StatusOK)
				l := dataOf[link](t, r)
				if l.State != "revoked" || l.RevokedBy != "partner" || l.RevokedAt != now || l.SignupURL != "" {
					t.Errorf("link = %+v, want revoked by partner at %d", l, now)
				}
				if got := p.mustGet(t, ref); got != l {
					t.Errorf("GET = %+v, want the revoked link %+v", got, l)
				}
			})
		}
	})
}

func TestSandboxSimulators(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		now := s.Clock.Now().UnixMilli()
		t.Run("signup links an invited customer", func(t *testing.T) {
			t.Parallel()
			inv := p.mustInvite(t, "ACME-SIGNUP")
			r := p.post(t, "/sandbox/customers/ACME-SIGNUP/signup")
			wantStatus(t, r, http.StatusOK)
			want := link{CustomerReference: "ACME-SIGNUP", State: "linked", CreatedAt: now, ExpiresAt: inv.ExpiresAt, LinkedAt: now}
			if l := dataOf[link](t, r); l != want {
				t.Errorf("link = %+v, want %+v", l, want)
			}
			if pg := p.mustList(t, "?state=linked"); !slices.Contains(refs(pg.Data), "ACME-SIGNUP") {
				t.Errorf("state=linked lists %v, want ACME-SIGNUP among them", refs(pg.Data))
			}
		})
		noInvitation := []struct {
			name  string
			setup func(t *testing.T, ref string)
		}{
			{"never invited", func(*testing.T, string) {}},
			{"already linked", func(t *testing.T, ref string) {
				p.mustInvite(t, ref)
				wantStatus(t, p.post(t, "/sandbox/customers/"+ref+"/signup"), http.StatusOK)
			}},
			{"revoked", func(t *testing.T, ref string) {
				p.mustInvite(t, ref)
				wantStatus(t, p.post(t, "/customers/"+ref+"/revoke"), http.StatusOK)
			}},
		}
		for i, tt := range noInvitation {
			t.Run("signup without an active invitation is 409: "+tt.name, func(t *testing.T) {
				t.Parallel()
				ref := fmt.Sprintf("ACME-NOINV-%d", i)
				tt.setup(t, ref)
				wantError(t, p.post(t, "/sandbox/customers/"+ref+"/signup"), http.StatusConflict, "customer-link:no-active-invitation", "customerReference")
			})
		}
		t.Run("customer revocation revokes a linked customer, by the customer", func(t *testing.T) {
			t.Parallel()
			p.mustInvite(t, "ACME-CUSTREV")
			wantStatus(t, p.post(t, "/sandbox/customers/ACME-CUSTREV/signup"), http.StatusOK)
			r := p.post(t, "/sandbox/customers/ACME-CUSTREV/customer-revocation")
			wantStatus(t, r, http.StatusOK)
			if l := dataOf[link](t, r); l.State != "revoked" || l.RevokedBy != "customer" || l.RevokedAt != now || l.LinkedAt != now {
				t.Errorf("link = %+v, want revoked by customer, having been linked", l)
			}
		})
		t.Run("customer revocation of an invited customer is 409", func(t *testing.T) {
			t.Parallel()
			p.mustInvite(t, "ACME-CUSTREV-INV")
			wantError(t, p.post(t, "/sandbox/customers/ACME-CUSTREV-INV/customer-revocation"), http.StatusConflict, "customer-link:invalid-state", "customerReference")
		})
		t.Run("customer revocation of an unknown customer is 404", func(t *testing.T) {
			t.Parallel()
			wantError(t, p.post(t, "/sandbox/customers/ACME-NOBODY/customer-revocation"), http.StatusNotFound, "customer-link:not-found", "customerReference")
		})
	})
}

func TestSandboxSimulatorsAreAbsentOutsideTheSandbox(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		putOnBECS(t, s, p.site) // outside the sandbox a site on the sandbox rail takes no invitation nor batch
		p.mustInvite(t, "ACME-001")
		p.mustSubmit(t, batchRequest("B1", debit{"R0", "ACME-001", 100}))
		// An endpoint of a type that never comes here: nothing but a test would be sent to it.
		e := p.createEndpoint(t, map[string]any{"url": "https://example.com/hooks", "eventTypes": []string{"webhookEndpoint.disabled"}})
		for _, path := range []string{"/sandbox/customers/ACME-001/signup", "/sandbox/customers/ACME-001/customer-revocation",
			"/sandbox/batches/B1/deadline", "/sandbox/webhook-endpoints/" + e.EndpointID + "/test"} {
			wantError(t, p.post(t, path), http.StatusNotFound, "request:not-found", "")
		}
		if l := p.mustGet(t, "ACME-001"); l.State != "invited" {
			t.Errorf("state = %s, want invited", l.State)
		}
		if b := p.mustGetBatch(t, "B1", ""); b.Rows[0].FailureReason == "expired" {
			t.Errorf("row = %+v, want it not expired", b.Rows[0])
		}
		r := p.do(t, http.MethodGet, "/webhook-endpoints/"+e.EndpointID+"/deliveries", nil)
		wantStatus(t, r, http.StatusOK)
		if len(dataOf[[]json.RawMessage](t, r)) != 0 {
			t.Errorf("the endpoint has deliveries %s, want none: no test was sent", r.Body)
		}
	}, apptest.Options{NoSandbox: true})
}
