package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pyng/receivables/apptest"
)

// The body and the Accept header are checked before the site, in the API's documented order of
// checks: a request to a site that is not the caller's gets their answer, not the site's 404.
func TestBodyAndAcceptAreCheckedBeforeTheSite(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		p := mainPartner(t, s)
		missing := partner{s: s, token: p.token, site: "site_doesnotexist"}
		for _, tt := range []struct {
			name, method, path string
			body               any
			header             []string
			status             int
			code, target       string
		}{
			{"a malformed invitation", http.MethodPost, "/customers/invitations", "{", nil, 400, "request:malformed-json", ""},
			{"an invitation that is not JSON", http.MethodPost, "/customers/invitations", `{"customerReference":"A"}`,
				[]string{"Content-Type", "text/plain"}, 415, "request:unsupported-media-type", "Content-Type"},
			{"an unknown member of an invitation", http.MethodPost, "/customers/invitations", `{"colour":"red"}`, nil, 400, "request:unknown-field", "colour"},
			{"a revocation with a body that is not an object", http.MethodPost, "/customers/A/revoke", "[]", nil, 400, "request:malformed-json", ""},
			{"a malformed batch", http.MethodPost, "/batches", `{"batchReference":`, nil, 400, "request:malformed-json", ""},
			{"a batch over 1 MiB", http.MethodPost, "/batches", `{"batchReference":"` + strings.Repeat("a", 1<<20) + `"}`, nil, 413, "request:body-too-large", ""},
			{"a batch in neither JSON nor CSV", http.MethodGet, "/batches/B-1", nil, []string{"Accept", "image/png"}, 406, "request:not-acceptable", "Accept"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				wantError(t, missing.do(t, tt.method, tt.path, tt.body, tt.header...), tt.status, tt.code, tt.target)
			})
		}
	})
}
