package httpapi

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/pyng/receivables/billing"
)

// buckets holds a token bucket per key (an API client, a remote address): each key may make
// perSecond requests a second on average, in bursts of up to burst. The buckets are per process,
// so behind a load balancer a key's limit is the sum over the replicas. They fill on the
// injected clock, so that tests move time instead of sleeping.
type buckets struct {
	perSecond rate.Limit
	burst     int
	clock     billing.Clock
	mu        sync.Mutex
	keys      map[string]*rate.Limiter
	swept     time.Time
}

// newBuckets returns buckets of perSecond requests a second in bursts of burst that fill on clock;
// perSecond 0 sets no limit.
func newBuckets(perSecond float64, burst int, clock billing.Clock) *buckets {
	return &buckets{perSecond: rate.Limit(perSecond), burst: max(1, burst), clock: clock, keys: map[string]*rate.Limiter{}}
}

// take takes one request from key's bucket and returns 0, or, taking nothing (the request is
// refused), how long until key may try again.
func (b *buckets) take(key string) time.Duration {
	if b.perSecond <= 0 {
		return 0
	}
	now := b.clock.Now()
	b.mu.Lock()
	b.sweep(now)
	l, ok := b.keys[key]
	if !ok {
		l = rate.NewLimiter(b.perSecond, b.burst)
		b.keys[key] = l
	}
	b.mu.Unlock()
	reservation := l.ReserveN(now, 1)
	delay := reservation.DelayFrom(now)
	if delay > 0 {
		reservation.CancelAt(now)
	}
	return delay
}

// sweep forgets, at most once a minute, the buckets that have filled up again: a key that comes
// back gets a full bucket all the same, and keys a caller makes up (client ids, addresses) do not
// pile up in memory.
func (b *buckets) sweep(now time.Time) {
	if now.Sub(b.swept) < time.Minute {
		return
	}
	b.swept = now
	for key, l := range b.keys {
		if l.TokensAt(now) >= float64(b.burst) {
			delete(b.keys, key)
		}
	}
}

// retryAfter sets the Retry-After header to delay, in whole seconds rounded up.
func retryAfter(w http.ResponseWriter, delay time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(delay.Seconds()))))
}

// newRateLimits returns the buckets of the /billing/ requests of each API client: perSecond
// requests a second, in bursts of twice that.
func newRateLimits(perSecond float64, clock billing.Clock) *buckets {
	return newBuckets(perSecond, int(math.Ceil(2*perSecond)), clock)
}

// allow takes one /billing/ request from the client's bucket, or answers when it may try again.
func (b *buckets) allow(w http.ResponseWriter, clientID string) error {
	delay := b.take(clientID)
	if delay == 0 {
		return nil
	}
	retryAfter(w, delay)
	return billing.Errorf(billing.CodeRateLimited, "",
		"Too many requests from this API client; wait for the number of seconds in Retry-After and try again.")
}

// newTokenLimits returns the buckets of the token endpoint: perMinute requests a minute for each
// client id and each remote address, in bursts of as many.
func newTokenLimits(perMinute float64, clock billing.Clock) *buckets {
	return newBuckets(perMinute/60, int(math.Ceil(perMinute)), clock)
}

// allowToken takes one token request from the bucket of key (who says whose it is, for the
// answer), or answers as RFC 6749 §5.2 does, with Retry-After.
func (b *buckets) allowToken(w http.ResponseWriter, key, who string) error {
	delay := b.take(key)
	if delay == 0 {
		return nil
	}
	retryAfter(w, delay)
	return &oauthError{status: http.StatusTooManyRequests, Code: "slow_down",
		Description: "Too many token requests from this " + who + "; wait for the number of seconds in Retry-After and try again."}
}

// addressKey is the bucket key of a request's remote address. An IPv6 address counts by its /64,
// the block one subscriber is usually given, so that a caller cannot walk its own block for
// fresh buckets.
func addressKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return "addr " + host
	}
	if ip.To4() == nil {
		ip = ip.Mask(net.CIDRMask(64, 128))
	}
	return "addr " + ip.String()
}
