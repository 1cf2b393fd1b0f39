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
// load balancer a client's limit is the sum over the replicas. The buckets fill on the injected
// clock, so that tests move time instead of sleeping.
type rateLimits struct {
	perSecond rate.Limit
	burst     int
	clock     billing.Clock
	clients   sync.Map // client id → *rate.Limiter
}

// newRateLimits returns buckets of perSecond requests a second that fill on clock (nil: the
// system clock).
func newRateLimits(perSecond float64, clock billing.Clock) *rateLimits {
	return &rateLimits{perSecond: rate.Limit(perSecond), burst: max(1, int(math.Ceil(2*perSecond))), clock: clock}
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
	now := l.clock.Now()
	reservation := v.(*rate.Limiter).ReserveN(now, 1)
	delay := reservation.DelayFrom(now)
	if delay == 0 {
		return nil
	}
	reservation.CancelAt(now) // the request is refused, so it takes nothing from the bucket
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(delay.Seconds()))))
	return billing.Errorf(billing.CodeRateLimited, "",
		"Too many requests from this API client; wait for the number of seconds in Retry-After and try again.")
}
