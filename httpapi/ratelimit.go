package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"

	"golang.org/x/time/rate"

	"github.com/pyng/receivables/billing"
)

// rateLimits holds a token bucket per API client: each client may make perSecond requests a
// second on average, in bursts of up to twice that. The buckets are per process, so behind a
// load balancer a client's limit is the sum over the replicas.
type rateLimits struct {
	perSecond rate.Limit
	burst     int
	clients   sync.Map // client id → *rate.Limiter
}

func newRateLimits(perSecond float64) *rateLimits {
	return &rateLimits{perSecond: rate.Limit(perSecond), burst: max(1, int(math.Ceil(2*perSecond)))}
}

// allow takes one request from the client's bucket, or answers when the client may try again.
func (l *rateLimits) allow(w http.ResponseWriter, clientID string) error {
	if l.perSecond <= 0 {
		return nil
	}
	v, ok := l.clients.Load(clientID)
	if !ok {
		v, _ = l.clients.LoadOrStore(clientID, rate.NewLimiter(l.perSecond, l.burst))
	}
	reservation := v.(*rate.Limiter).Reserve()
	delay := reservation.Delay()
	if delay == 0 {
		return nil
	}
	reservation.Cancel() // the request is refused, so it takes nothing from the bucket
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(delay.Seconds()))))
	return billing.Errorf(codeRateLimited, "",
		"Too many requests from this API client; wait for the number of seconds in Retry-After and try again.")
}
