// Command webhook-receiver is the webhook receiver of the README's walkthrough: it verifies every
// delivery with the Standard Webhooks library, skips one it has seen (deliveries are at least
// once), and prints the event.
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func main() {
	wh, err := verifier(os.Getenv("PYNG_WEBHOOK_SECRET")) // whsec_...
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /pyng", receiver(wh, os.Stdout))
	srv := &http.Server{Addr: "127.0.0.1:9000", Handler: mux, // timeouts, so no client can hold it
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	log.Fatal(srv.ListenAndServe())
}

// verifier verifies with secret, the endpoint's. It refuses a secret that is not one
// (whsec_ and the base64 of 24 to 64 bytes): the library takes an empty key, or a short one,
// with which anyone can sign.
func verifier(secret string) (*standardwebhooks.Webhook, error) {
	encoded, ok := strings.CutPrefix(secret, "whsec_")
	key, err := base64.StdEncoding.DecodeString(encoded)
	if !ok || err != nil || len(key) < 24 || len(key) > 64 {
		return nil, errors.New("PYNG_WEBHOOK_SECRET must be the endpoint's secret: whsec_ and the base64 of 24 to 64 bytes")
	}
	return standardwebhooks.NewWebhookRaw(key)
}

// receiver answers 204 to a delivery it verified, 400 to any other request.
func receiver(wh *standardwebhooks.Webhook, out io.Writer) http.Handler {
	var mu sync.Mutex
	seen := map[string]bool{} // by webhook-id; keep it in your database
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || wh.Verify(body, r.Header) != nil {
			http.Error(w, "not signed by Pyng", http.StatusBadRequest)
			return
		}
		var event struct {
			EventID   string          `json:"eventId"`
			Type      string          `json:"type"`
			CreatedAt int64           `json:"createdAt"`
			Data      json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &event); err != nil {
			http.Error(w, "not an event", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !seen[event.EventID] {
			seen[event.EventID] = true
			fmt.Fprintf(out, "%s %d %s\n", event.Type, event.CreatedAt, event.Data)
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
