package webhook

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxURLLength is the longest endpoint URL accepted, in characters (Unicode code points, as the
// document's maxLength counts them).
const MaxURLLength = 2048

// URLError is the error of CheckURL: Reason says, in English a partner can read, which rule the
// URL breaks.
type URLError struct {
	Reason string
}

func (e *URLError) Error() string { return "the webhook URL " + e.Reason }

// CheckURL reports whether raw may be the endpoint of a partner's webhooks: an absolute URL of at
// most MaxURLLength characters, of characters a URL may hold as they are (checkCharacters), that
// CheckDestination accepts.
//
// The error is a *URLError.
func CheckURL(raw string, allowPrivate bool) error {
	if utf8.RuneCountInString(raw) > MaxURLLength {
		return &URLError{"must be at most " + strconv.Itoa(MaxURLLength) + " characters long"}
	}
	if err := checkCharacters(raw); err != nil {
		return err
	}
	return CheckDestination(raw, allowPrivate)
}

// CheckDestination reports whether a delivery may be sent to raw: an absolute URL with the scheme
// https (or http when allowPrivate), a host, a port from 1 to 65535 if one is given, and neither
// user information nor a fragment. Outside allowPrivate, which only the sandbox sets, the host may
// not be localhost or a name under .localhost, nor an IP address that Forbidden refuses. A host
// name is resolved only when a delivery connects, and the address it resolves to is checked then
// (webhook/deliver), which checks these rules and not how the URL is written: an endpoint kept
// before a rule of CheckURL's was added still gets its deliveries.
//
// The error is a *URLError.
func CheckDestination(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return &URLError{"is not a valid URL"}
	}
	if !u.IsAbs() {
		return &URLError{"must be absolute, such as https://example.com/webhooks"}
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowPrivate:
	case allowPrivate:
		return &URLError{"must use https or http"}
	default:
		return &URLError{"must use https"}
	}
	if u.Opaque != "" || u.Host == "" {
		return &URLError{"must have a host"}
	}
	if u.User != nil {
		return &URLError{"must not contain a user name or password"}
	}
	// url.Parse drops an empty fragment ("https://example.com/#"); a '#' left after parsing can
	// only start a fragment.
	if strings.Contains(raw, "#") {
		return &URLError{"must not have a fragment (#)"}
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return &URLError{"must have a port from 1 to 65535"}
		}
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return &URLError{"must have a host"}
	}
	// Go's HTTP client maps a host to ASCII as browsers do (IDNA), full-width digits and dots to
	// ASCII ones: https://１２７.０.０.１/ is a loopback address. Checked as written, such a host
	// would pass the checks below (the connection's check would still refuse it); an
	// internationalised domain name is written in its ASCII form instead.
	if !isASCII(host) {
		return &URLError{"must have a host name in ASCII: write an internationalised domain name in its xn-- form"}
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		switch {
		case !allowPrivate && Forbidden(addr):
			return &URLError{"must not point to a private, loopback, link-local or otherwise non-public address"}
		case ForbiddenEverywhere(addr):
			return &URLError{"must not point to a link-local or cloud platform address (a cloud's metadata service), even in the sandbox"}
		}
		return nil
	}
	if strings.HasPrefix(u.Host, "[") {
		return &URLError{"has an invalid IPv6 address"}
	}
	// A name whose last label is a number is an IPv4 address in a legacy form (127.1, 0x7f.1,
	// 2130706433) to some resolvers and no domain name to any.
	name := strings.TrimSuffix(host, ".")
	last := name[strings.LastIndexByte(name, '.')+1:]
	if last == "" || isNumeric(last) || !validHostName(name) {
		return &URLError{"has an invalid host name"}
	}
	if !allowPrivate && (name == "localhost" || strings.HasSuffix(name, ".localhost")) {
		return &URLError{"must not point to localhost"}
	}
	return nil
}

// uriCharacters are the ASCII characters a URL may hold as they are (RFC 3986's unreserved and
// reserved characters, and % starting a percent-encoding).
const uriCharacters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"

// checkCharacters refuses a character a URL may not hold as it is (a space, a control character,
// < > " \ { } | ^ `, and beyond ASCII one that is not printable, such as a no-break or zero-width
// space), naming it and its percent-encoding, and a % that starts no percent-encoding. Go's
// parser takes most of them and its client sends them encoded: the URL kept and shown would not
// be the one requested. A printable character beyond ASCII is taken (an IRI, RFC 3987), sent
// encoded in UTF-8.
func checkCharacters(raw string) *URLError {
	for i := 0; i < len(raw); {
		r, size := utf8.DecodeRuneInString(raw[i:])
		switch {
		case r == '%':
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return &URLError{"has a % that starts no percent-encoding (such as %20): write a % itself as %25"}
			}
		case r == ' ':
			return &URLError{"must not hold a space as it is: percent-encode it as %20"}
		case r < utf8.RuneSelf && !strings.ContainsRune(uriCharacters, r),
			r >= utf8.RuneSelf && (r == utf8.RuneError || !unicode.IsPrint(r)):
			var encoded strings.Builder
			for _, b := range []byte(raw[i : i+size]) {
				fmt.Fprintf(&encoded, "%%%02X", b)
			}
			return &URLError{"must not hold " + strconv.Quote(raw[i:i+size]) + " as it is: percent-encode it as " + encoded.String()}
		}
		i += size
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// validHostName reports whether name (lower case, without a trailing dot) is a host name a
// resolver can look up: at most 253 characters, of labels of 1 to 63 letters, digits, hyphens
// and underscores (which Go's resolver takes), none starting or ending with a hyphen. A name such
// as hooks..example.com or -hooks.example.com can never be reached: refused when it is given,
// rather than every delivery failing until the endpoint is disabled.
func validHostName(name string) bool {
	if len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' ||
			strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return false
		}
	}
	return true
}

// isNumeric reports whether a host label reads as a number: decimal digits, or 0x and hex digits.
func isNumeric(label string) bool {
	if hex, ok := strings.CutPrefix(label, "0x"); ok {
		return strings.Trim(hex, "0123456789abcdef") == ""
	}
	return strings.Trim(label, "0123456789") == ""
}

// forbidden are the networks no delivery may reach outside the sandbox: addresses of this host,
// of the private networks it may sit in, of the cloud provider's services, and addresses that are
// not one host's. An IPv6 address that carries an IPv4 address is judged by that IPv4 address
// (embeddedIPv4) before this list is read.
var forbidden = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),        // "this network", with the unspecified 0.0.0.0 (RFC 791)
	netip.MustParsePrefix("10.0.0.0/8"),       // private (RFC 1918)
	netip.MustParsePrefix("100.64.0.0/10"),    // shared address space, carrier-grade NAT (RFC 6598); Alibaba Cloud's metadata 100.100.100.200
	netip.MustParsePrefix("127.0.0.0/8"),      // loopback
	netip.MustParsePrefix("169.254.0.0/16"),   // link-local (RFC 3927); the cloud metadata address 169.254.169.254
	netip.MustParsePrefix("172.16.0.0/12"),    // private (RFC 1918)
	netip.MustParsePrefix("192.168.0.0/16"),   // private (RFC 1918)
	netip.MustParsePrefix("224.0.0.0/4"),      // multicast
	netip.MustParsePrefix("240.0.0.0/4"),      // reserved (RFC 1112), with the broadcast 255.255.255.255
	netip.MustParsePrefix("::/128"),           // unspecified
	netip.MustParsePrefix("::1/128"),          // loopback
	netip.MustParsePrefix("::/96"),            // IPv4-compatible, deprecated (RFC 4291): routed to IPv4 by a tunnel where one is set up
	netip.MustParsePrefix("::ffff:0:0:0/96"),  // IPv4-translated (SIIT, RFC 2765), for a translator's network
	netip.MustParsePrefix("64:ff9b:1::/48"),   // local-use NAT64 (RFC 8215): a local translator, never a global host
	netip.MustParsePrefix("fc00::/7"),         // unique local (RFC 4193); AWS's metadata fd00:ec2::254
	netip.MustParsePrefix("fe80::/10"),        // link-local
	netip.MustParsePrefix("fec0::/10"),        // site-local, deprecated (RFC 3879)
	netip.MustParsePrefix("ff00::/8"),         // multicast
	netip.MustParsePrefix("100::/64"),         // discard-only (RFC 6666)
	netip.MustParsePrefix("2001:db8::/32"),    // documentation (RFC 3849), never a host
	netip.MustParsePrefix("2001::/32"),        // Teredo (RFC 4380): a tunnel to an IPv4 host behind NAT, whose address it carries obscured
	netip.MustParsePrefix("192.0.2.0/24"),     // documentation (RFC 5737), never a host
	netip.MustParsePrefix("198.51.100.0/24"),  // documentation (RFC 5737), never a host
	netip.MustParsePrefix("203.0.113.0/24"),   // documentation (RFC 5737), never a host
	netip.MustParsePrefix("198.18.0.0/15"),    // benchmarking (RFC 2544), never a host on the Internet
	netip.MustParsePrefix("192.0.0.0/24"),     // IETF protocol assignments (RFC 6890), never a host on the Internet
	netip.MustParsePrefix("168.63.129.16/32"), // Azure's host platform (WireServer): the VM's extensions, certificates and DNS
}

// forbiddenEverywhere are the networks no delivery may reach even in the sandbox, whose loopback
// and private addresses are a developer's receivers: link-local addresses, which no receiver
// has, and where the cloud provider's metadata service (with the machine's credentials) answers,
// and the clouds' other platform addresses of that kind.
var forbiddenEverywhere = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),     // link-local, with 169.254.169.254
	netip.MustParsePrefix("fe80::/10"),          // link-local
	netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud's metadata
	netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS's metadata, IPv6
	netip.MustParsePrefix("fd20:ce::254/128"),   // Google Cloud's metadata, IPv6
	netip.MustParsePrefix("192.0.0.192/32"),     // Oracle Cloud's metadata (legacy address)
	netip.MustParsePrefix("168.63.129.16/32"),   // Azure's host platform (WireServer), reachable from every Azure VM
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// Forbidden reports whether no delivery may reach addr outside the sandbox. It refuses, in IPv4:
// 0.0.0.0/8 (with the unspecified address), loopback 127/8, private 10/8, 172.16/12 and
// 192.168/16, shared 100.64/10 (carrier-grade NAT), link-local 169.254/16 (with the cloud metadata
// address 169.254.169.254), multicast 224/4, reserved 240/4 (with the broadcast 255.255.255.255),
// the documentation networks 192.0.2/24, 198.51.100/24, 203.0.113/24, benchmarking 198.18/15 and
// the protocol assignments 192.0.0/24, and Azure's host platform address 168.63.129.16; in IPv6:
// the unspecified ::, loopback ::1, unique local fc00::/7 (with AWS's metadata address
// fd00:ec2::254), link-local fe80::/10, site-local fec0::/10, multicast ff00::/8, discard-only
// 100::/64, documentation 2001:db8::/32, Teredo 2001::/32, and the forms that a tunnel or a local translator carries
// to IPv4: IPv4-compatible ::/96, IPv4-translated ::ffff:0:0:0/96 and local-use NAT64
// 64:ff9b:1::/48. An IPv6 address that carries an IPv4 address (IPv4-mapped ::ffff:0:0/96, NAT64
// 64:ff9b::/96, 6to4 2002::/16) is judged by the IPv4 address it carries. The invalid Addr is
// forbidden too. An IPv6 zone is ignored.
func Forbidden(addr netip.Addr) bool { return within(addr, forbidden) }

// ForbiddenEverywhere reports whether no delivery may reach addr even in the sandbox (see
// forbiddenEverywhere); an IPv6 address that carries an IPv4 address is judged by it, as in
// Forbidden.
func ForbiddenEverywhere(addr netip.Addr) bool { return within(addr, forbiddenEverywhere) }

// within reports whether addr, or the IPv4 address it carries, is in one of the networks; the
// invalid Addr is in all of them, and a zone is ignored.
func within(addr netip.Addr, networks []netip.Prefix) bool {
	if !addr.IsValid() {
		return true
	}
	addr = addr.WithZone("")
	if v4, ok := embeddedIPv4(addr); ok {
		addr = v4
	}
	for _, p := range networks {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// embeddedIPv4 gives the IPv4 address an IPv6 address carries, if it is of a form that carries
// one.
func embeddedIPv4(addr netip.Addr) (netip.Addr, bool) {
	switch {
	case addr.Is4In6():
		return addr.Unmap(), true
	case nat64.Contains(addr):
		b := addr.As16()
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(addr):
		b := addr.As16()
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
