package app

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// trustedProxies are the load balancers in front of the server (PYNG_TRUSTED_PROXIES). The limits
// kept per client address (the token endpoint's, the form that emails a management link) count a
// request one of them forwards under the address of the client it forwards for: counted under the
// proxy's own, every caller behind it would share one allowance, and anyone could spend it and
// keep every partner from getting a token.
type trustedProxies []netip.Prefix

// parseTrustedProxies reads a comma-separated list of IP addresses and CIDR prefixes ("" for none).
func parseTrustedProxies(v string) (trustedProxies, error) {
	var proxies trustedProxies
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(item)
		if err != nil {
			addr, addrErr := netip.ParseAddr(item)
			if addrErr != nil {
				return nil, fmt.Errorf("%q is not an IP address or a CIDR prefix such as 10.0.0.0/8", item)
			}
			prefix = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
		}
		proxies = append(proxies, prefix.Masked())
	}
	return proxies, nil
}

func (p trustedProxies) trusted(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, prefix := range p {
		if prefix.Contains(addr) {
			return true
		}
	}
	return false
}

// clientAddress serves next with the request's RemoteAddr set to the client's address when the
// connection comes from a trusted proxy: the last address of X-Forwarded-For that is not a trusted
// proxy's (those before it are whatever the client wrote). A header that is missing, or holds
// something other than an address where the client's should be, leaves the proxy's address.
func (p trustedProxies) clientAddress(next http.Handler) http.Handler {
	if len(p) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if client, ok := p.forwardedFor(r); ok {
			r.RemoteAddr = client.String()
		}
		next.ServeHTTP(w, r)
	})
}

func (p trustedProxies) forwardedFor(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !p.trusted(peer) {
		return netip.Addr{}, false
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		addr, err := netip.ParseAddr(hop)
		if err != nil {
			addrPort, portErr := netip.ParseAddrPort(hop) // some proxies add the client's port
			if portErr != nil {
				return netip.Addr{}, false
			}
			addr = addrPort.Addr()
		}
		if !p.trusted(addr) {
			return addr.Unmap(), true
		}
	}
	return netip.Addr{}, false
}
