package web

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

// EmailLinkLimits bounds the "email me my management link" form, so that it cannot be used to
// flood someone's inbox: each client address may ask so many times an hour, and each link's
// agreement token with each address typed, and its signup token whatever the address, in a burst
// of as many. The limits are per process (behind a load balancer a key's limit is the sum over
// the replicas) and count every request, whether or not the address is one Pyng knows, so that
// being refused tells nothing of it either.
//
// An address is limited per link, not alone: a link's email only ever goes to its own
// customer's address, so a link's bucket bounds what reaches that inbox, while requests made
// with another link, or with a made-up token, cannot use up the customer's own requests.
type EmailLinkLimits struct {
	// PerLinkAndAddress is how many requests an hour may name one email address with the
	// agreement token of one link, and how many, whatever the address, may come with its signup
	// token (0: the default).
	PerLinkAndAddress int
	// PerClient is how many requests an hour may come from one client IP address (an IPv6
	// address counts by its /64; 0: the default).
	PerClient int
}

// DefaultEmailLinkLimits are the limits of a server that sets none: three requests an hour for a
// link and an address, twenty requests an hour from a client.
var DefaultEmailLinkLimits = EmailLinkLimits{PerLinkAndAddress: 3, PerClient: 20}

// limiter holds a token bucket per key that lets perHour requests an hour through, in bursts of
// as many.
type limiter struct {
	perHour int
	now     func() time.Time
	mu      sync.Mutex
	keys    map[string]*rate.Limiter
	swept   time.Time
}

func newLimiter(perHour int, now func() time.Time) *limiter {
	return &limiter{perHour: perHour, now: now, keys: map[string]*rate.Limiter{}}
}

// reserve takes one request from key's bucket and returns 0, or, taking nothing, how long until
// key may ask again.
func (l *limiter) reserve(key string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) >= time.Minute { // forget the full buckets, so that made-up keys do not pile up
		l.swept = now
		for k, b := range l.keys {
			if b.TokensAt(now) >= float64(l.perHour) {
				delete(l.keys, k)
			}
		}
	}
	b, ok := l.keys[key]
	if !ok {
		b = rate.NewLimiter(rate.Every(time.Hour/time.Duration(l.perHour)), l.perHour)
		l.keys[key] = b
	}
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// emailLinkLimits are the limiters of the form.
type emailLinkLimits struct{ perLinkAndAddress, perClient *limiter }

func newEmailLinkLimits(cfg EmailLinkLimits, now func() time.Time) emailLinkLimits {
	if cfg.PerLinkAndAddress <= 0 {
		cfg.PerLinkAndAddress = DefaultEmailLinkLimits.PerLinkAndAddress
	}
	if cfg.PerClient <= 0 {
		cfg.PerClient = DefaultEmailLinkLimits.PerClient
	}
	return emailLinkLimits{perLinkAndAddress: newLimiter(cfg.PerLinkAndAddress, now), perClient: newLimiter(cfg.PerClient, now)}
}

// allowClient takes one request of the client of r, or returns how long until it may ask again.
func (e emailLinkLimits) allowClient(r *http.Request) time.Duration {
	return e.perClient.reserve(clientKey(r.RemoteAddr))
}

// allowLink takes one request for a new link of linkID to address, with a token of kind, or
// returns how long until it may be asked for again. Every spelling of an address that the
// service would send to (billing.EmailKey) counts as one. A signup token's requests count per
// link, whatever the address: the partner holds that token too, and a bucket of each address the
// customer typed with it would tell the partner, asking with a guessed address until refused,
// whether the customer had typed that one.
func (e emailLinkLimits) allowLink(kind, linkID, address string) time.Duration {
	if kind == "signup" {
		return e.perLinkAndAddress.reserve(kind + " " + linkID)
	}
	return e.perLinkAndAddress.reserve(kind + " " + linkID + " " + billing.EmailKey(address))
}

// clientKey is the bucket key of a remote address: its IP, an IPv6 address by its /64 (the
// block one subscriber is usually given).
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		ip = ip.Mask(net.CIDRMask(64, 128))
	}
	return ip.String()
}

// retryAfter sets Retry-After to d in whole seconds, rounded up.
func retryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
}
