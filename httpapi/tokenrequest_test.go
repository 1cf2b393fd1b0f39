package httpapi

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// tokenHTTPRequest is a POST /oauth2/token with the given Content-Type, body and Authorization
// header ("" for none).
func tokenHTTPRequest(contentType, body, authorization string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	return r
}

const form = "application/x-www-form-urlencoded"

func TestTokenRequestDecoding(t *testing.T) {
	long := strings.Repeat("c", maxCredentialBytes+1)
	tests := []struct {
		name, body, authorization string
		code                      string // of the refusal; "" for a request read
		description               string
	}{
		{name: "of several repeated parameters, the first by name is named, every time",
			body: "grant_type=client_credentials&scope=a&scope=b&client_id=x&client_id=y&client_secret=s",
			code: "invalid_request", description: "The parameter client_id is repeated."},
		{name: "a long repeated name is quoted cut",
			body: "grant_type=client_credentials&" + strings.Repeat("p", 100) + "=1&" + strings.Repeat("p", 100) + "=2",
			code: "invalid_request", description: "The parameter " + strings.Repeat("p", 64) + "… is repeated."},
		{name: "a client id longer than any issued is an unknown client, unread",
			body: "grant_type=client_credentials&client_id=" + long + "&client_secret=s", code: "invalid_client"},
		{name: "a secret longer than any issued is a wrong secret, unread",
			body: "grant_type=client_credentials&client_id=cli_1&client_secret=" + long, code: "invalid_client"},
		{name: "so are long Basic credentials",
			body: "grant_type=client_credentials", authorization: "Basic " + base64.StdEncoding.EncodeToString([]byte(long+":s")), code: "invalid_client"},
		{name: "credentials of the longest length are read",
			body: "grant_type=client_credentials&client_id=" + long[1:] + "&client_secret=" + long[1:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 { // a map's order changes from one range to the next
				_, err := readTokenRequest(httptest.NewRecorder(), tokenHTTPRequest(form, tt.body, tt.authorization))
				var oe *oauthError
				switch {
				case tt.code == "" && err != nil:
					t.Fatalf("error %v, want the request read", err)
				case tt.code == "":
				case !errors.As(err, &oe) || oe.Code != tt.code:
					t.Fatalf("error %v, want %s", err, tt.code)
				case tt.description != "" && oe.Description != tt.description:
					t.Fatalf("description %q, want %q", oe.Description, tt.description)
				}
			}
		})
	}
}

func TestUnknownScopesAreListedBriefly(t *testing.T) {
	many := make([]string, 5000)
	for i := range many {
		many[i] = fmt.Sprintf("s%d", i)
	}
	tests := map[string]struct {
		unknown []string
		want    string
	}{
		"one":                {[]string{"billing:everything"}, "Unknown scope: billing:everything."},
		"five":               {many[:5], "Unknown scope: s0 s1 s2 s3 s4."},
		"more than five":     {many, "Unknown scope: s0 s1 s2 s3 s4 and 4995 more."},
		"a long one, cut":    {[]string{strings.Repeat("s", 1000)}, "Unknown scope: " + strings.Repeat("s", 64) + "…."},
		"a long one of many": {append([]string{"a", strings.Repeat("é", 500)}, many...), "Unknown scope: a " + strings.Repeat("é", 32) + "… s0 s1 s2 and 4997 more."},
	}
	for name, tt := range tests {
		if got := unknownScopes(tt.unknown); got != tt.want {
			t.Errorf("%s: %q, want %q", name, got, tt.want)
		}
	}
}

// maxTokenDescription bounds the error_description of every refusal of the token endpoint.
const maxTokenDescription = 256

// FuzzTokenRequest reads token requests as the token endpoint does: whatever the request, the
// answer is the same each time and a short refusal of RFC 6749's, or credentials that read the
// same once written again the way they came (in HTTP Basic, form-encoded first, or in the form).
func FuzzTokenRequest(f *testing.F) {
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	}
	for _, seed := range [][3]string{
		{form, "grant_type=client_credentials&client_id=cli_1&client_secret=sec_1", ""},
		{form, "grant_type=client_credentials&scope=billing:batches:read", basic("cli_1", "sec_1")},
		{form, "grant_type=client_credentials", basic("cli%3A1", "sec%201+2")},
		{form, "grant_type=client_credentials", basic("cli_1", "%zz")},
		{form, "grant_type=client_credentials", "Basic !!!"},
		{form, "grant_type=client_credentials", "basic " + base64.StdEncoding.EncodeToString([]byte("a:b:c"))},
		{form, "grant_type=client_credentials&client_id=a", basic("a", "b")},
		{form, "grant_type=password&client_id=a&client_secret=b", ""},
		{form, "grant_type=&client_id=a&client_secret=b", ""},
		{form, "grant_type=client_credentials&grant_type=client_credentials", ""},
		{form, "a=1&a=2&b=1&b=2", ""},
		{form, "grant_type=client_credentials&client_id=%zz", ""},
		{form, "grant_type=client_credentials;client_id=a", ""},
		{form + "; charset=utf-8", "grant_type=client_credentials&client_id=a&client_secret=b", ""},
		{"application/json", `{"grant_type":"client_credentials"}`, ""},
		{"", "", ""},
		{form, strings.Repeat("x", maxBodyBytes+1), ""},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, contentType, body, authorization string) {
		read := func() (tokenRequest, string) {
			req, err := readTokenRequest(httptest.NewRecorder(), tokenHTTPRequest(contentType, body, authorization))
			if err == nil {
				return req, ""
			}
			var oe *oauthError
			if !errors.As(err, &oe) {
				t.Fatalf("refused with %v, want an RFC 6749 error", err)
			}
			if !slices.Contains([]string{"invalid_request", "unsupported_grant_type", "invalid_client"}, oe.Code) ||
				oe.Description == "" || len(oe.Description) > maxTokenDescription {
				t.Fatalf("refused with %q (%d bytes of description), want a short RFC 6749 error", oe.Error(), len(oe.Description))
			}
			return tokenRequest{}, oe.Error()
		}
		req, refusal := read()
		for range 3 {
			if again, refusalAgain := read(); again != req || refusalAgain != refusal {
				t.Fatalf("the same request read %+v %q, then %+v %q", req, refusal, again, refusalAgain)
			}
		}
		if refusal != "" {
			return
		}
		if req.clientID == "" || req.secret == "" || len(req.clientID) > maxCredentialBytes || len(req.secret) > maxCredentialBytes {
			t.Fatalf("accepted credentials %q, %q", req.clientID, req.secret)
		}
		written := url.Values{"grant_type": {"client_credentials"}, "scope": {req.scope}}
		auth := ""
		if _, _, ok := tokenHTTPRequest(contentType, body, authorization).BasicAuth(); ok {
			auth = basic(url.QueryEscape(req.clientID), url.QueryEscape(req.secret))
		} else {
			written.Set("client_id", req.clientID)
			written.Set("client_secret", req.secret)
		}
		again, err := readTokenRequest(httptest.NewRecorder(), tokenHTTPRequest(form, written.Encode(), auth))
		if err != nil || again != req {
			t.Fatalf("%+v written again reads %+v, %v", req, again, err)
		}
	})
}
