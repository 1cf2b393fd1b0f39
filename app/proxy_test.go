package app_test

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/storage"
)

// TestTokenLimitCountsTheClientAProxyForwards checks that, behind a load balancer, the token
// endpoint's limit per address counts each client under its own address (X-Forwarded-For, from a
// trusted proxy only): counted under the proxy's, one caller spending the allowance would keep
// every partner from getting a token.
func TestTokenLimitCountsTheClientAProxyForwards(t *testing.T) {
	const flooder = "203.0.113.7"
	tests := []struct {
		name           string
		trustedProxies string
		floodFor       []string // the X-Forwarded-For of the flood's three requests (default: the flooder's)
		forwardedFor   string   // of the partner's request, after the flood
		want           int
	}{
		{"a client behind a trusted proxy has its own allowance", "127.0.0.1", nil, "198.51.100.9", http.StatusOK},
		{"a trusted proxy given by its prefix", "127.0.0.0/8, 10.0.0.0/8", nil, "198.51.100.9", http.StatusOK},
		{"a client's address with the port a proxy added", "127.0.0.1", nil, "198.51.100.9:41234", http.StatusOK},
		{"the addresses a client wrote before its own are not believed", "127.0.0.1", nil, "198.51.100.9, " + flooder, http.StatusTooManyRequests},
		{"a proxy of its own behind the trusted one is skipped", "127.0.0.1, 192.0.2.0/24", nil, flooder + ", 192.0.2.1", http.StatusTooManyRequests},
		{"something other than an address counts under the proxy's", "127.0.0.1", []string{"x1", "x2", "x3"}, "x4", http.StatusTooManyRequests},
		{"without trusted proxies the header is not believed", "", nil, "198.51.100.9", http.StatusTooManyRequests},
		{"a proxy not listed is not believed", "10.0.0.0/8", nil, "198.51.100.9", http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runServer(t, map[string]string{"database-url": dbtest.URL(t, storage.EngineSQLite), "encryption-key": dbtest.KeyRing,
				"token-rate-limit": "2", "trusted-proxies": tt.trustedProxies}, slog.New(slog.DiscardHandler))
			clientID, secret := r.banner(t, `client id\s+(\S+)`), r.banner(t, `client secret\s+(\S+)`)
			token := func(forwardedFor, clientID, secret string) int {
				t.Helper()
				form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}}
				req, _ := http.NewRequest(http.MethodPost, r.base+"/oauth2/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("X-Forwarded-For", forwardedFor)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			floodFor := tt.floodFor
			if floodFor == nil {
				floodFor = []string{flooder, flooder, flooder}
			}
			for i, forwardedFor := range floodFor { // the allowance, 2, and one more
				if got := token(forwardedFor, "cli_guess"+string(rune('a'+i)), "sec_guess"); i == 2 && got != http.StatusTooManyRequests {
					t.Fatalf("the flood's third request = %d, want 429", got)
				}
			}
			if got := token(tt.forwardedFor, clientID, secret); got != tt.want {
				t.Errorf("the partner's request forwarded for %q = %d, want %d", tt.forwardedFor, got, tt.want)
			}
		})
	}
}
