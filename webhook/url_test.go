package webhook_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/pyng/receivables/webhook"
)

func TestCheckURL(t *testing.T) {
	t.Parallel()
	const (
		ok         = ""
		nonPublic  = "must not point to a private, loopback, link-local or otherwise non-public address"
		localhost  = "must not point to localhost"
		httpsOnly  = "must use https"
		httpsOrHTP = "must use https or http"
		noHost     = "must have a host"
		linkLocal  = "must not point to a link-local or cloud platform address (a cloud's metadata service), even in the sandbox"
		badHost    = "has an invalid host name"
		nonASCII   = "must have a host name in ASCII: write an internationalised domain name in its xn-- form"
	)
	long := "https://example.com/" + strings.Repeat("a", webhook.MaxURLLength-len("https://example.com/"))
	longer := "https://example.com/" + strings.Repeat("é", webhook.MaxURLLength-len("https://example.com/")) // twice as many bytes
	tests := []struct {
		name        string
		url         string
		wantPublic  string // the reason outside the sandbox; ok when accepted
		wantSandbox string // the reason in the sandbox (allowPrivate)
	}{
		{"an https URL is accepted", "https://hooks.example.com/pyng?x=1", ok, ok},
		{"an https URL with a port is accepted", "https://hooks.example.com:8443/pyng", ok, ok},
		{"the scheme is read in any case", "HTTPS://hooks.example.com/", ok, ok},
		{"a public IPv4 address is accepted", "https://203.0.114.7/hook", ok, ok},
		{"a public IPv6 address is accepted", "https://[2606:4700::1111]/hook", ok, ok},
		{"a name with a trailing dot is accepted", "https://hooks.example.com./x", ok, ok},
		{"a URL of 2048 characters is accepted", long, ok, ok},
		{"a URL of 2049 characters is refused", long + "a", "must be at most 2048 characters long", "must be at most 2048 characters long"},
		{"a URL of 2048 characters of two bytes each is accepted", longer, ok, ok},
		{"a URL of 2049 characters of two bytes each is refused", longer + "é", "must be at most 2048 characters long", "must be at most 2048 characters long"},
		{"http is refused outside the sandbox", "http://hooks.example.com/", httpsOnly, ok},
		{"http in capitals is refused outside the sandbox", "HTTP://hooks.example.com/", httpsOnly, ok},
		{"another scheme is refused", "ftp://hooks.example.com/", httpsOnly, httpsOrHTP},
		{"a relative URL is refused", "/webhooks", "must be absolute", "must be absolute"},
		{"a URL without a scheme is refused", "hooks.example.com/webhooks", "must be absolute", "must be absolute"},
		{"the empty URL is refused", "", "must be absolute", "must be absolute"},
		{"an unparsable URL is refused", "https://example.com:https/", "is not a valid URL", "is not a valid URL"},
		{"a space is refused", "https://exa mple.com/", "must not hold a space as it is", "must not hold a space as it is"},
		{"a control character is refused", "https://example.com/\x7f", `must not hold "\x7f" as it is`, `must not hold "\x7f" as it is`},
		{"invalid UTF-8 is refused", "https://example.com/\xff", `must not hold "\xff" as it is: percent-encode it as %FF`, `must not hold "\xff" as it is: percent-encode it as %FF`},
		{"a percent-encoding is accepted", "https://example.com/a%20b?q=%7b%7D", ok, ok},
		{"a URL without a host is refused", "https:///webhooks", noHost, noHost},
		{"an opaque URL is refused", "https:hooks.example.com", noHost, noHost},
		{"a port alone is no host", "https://:443/", noHost, noHost},
		{"a user name is refused", "https://partner@hooks.example.com/", "must not contain a user name or password", "must not contain a user name or password"},
		{"a password is refused", "https://partner:pw@hooks.example.com/", "must not contain a user name or password", "must not contain a user name or password"},
		{"a fragment is refused", "https://hooks.example.com/#top", "must not have a fragment", "must not have a fragment"},
		{"an empty fragment is refused", "https://hooks.example.com/#", "must not have a fragment", "must not have a fragment"},
		{"port 0 is refused", "https://hooks.example.com:0/", "must have a port from 1 to 65535", "must have a port from 1 to 65535"},
		{"port 65536 is refused", "https://hooks.example.com:65536/", "must have a port from 1 to 65535", "must have a port from 1 to 65535"},
		{"port 99999 is refused", "https://hooks.example.com:99999/", "must have a port from 1 to 65535", "must have a port from 1 to 65535"},
		{"a name ending in a number is refused", "https://127.1/", badHost, badHost},
		{"a decimal IPv4 address is refused", "https://2130706433/", badHost, badHost},
		{"a hexadecimal IPv4 address is refused", "https://0x7f.0x0.0x0.0x1/", badHost, badHost},
		{"a hexadecimal IPv4 address in one number is refused", "https://0x7f000001/", badHost, badHost},
		{"a name of empty labels is refused", "https://./", badHost, badHost},
		{"a name with an empty label is refused", "https://hooks..example.com/", badHost, badHost},
		{"a label starting with a hyphen is refused", "https://-hooks.example.com/", badHost, badHost},
		{"a label ending with a hyphen is refused", "https://hooks-.example.com/", badHost, badHost},
		{"a label of 64 characters is refused", "https://" + strings.Repeat("a", 64) + ".example.com/", badHost, badHost},
		{"a name of 254 characters is refused", "https://" + strings.Repeat("a.", 123) + "examples/", badHost, badHost},
		{"a wildcard is refused", "https://*.example.com/", badHost, badHost},
		{"a label of 63 characters is accepted", "https://" + strings.Repeat("a", 63) + ".example.com/", ok, ok},
		{"an underscore is accepted, as resolvers take it", "https://hooks_1.example.com/", ok, ok},
		{"a hyphen inside a label is accepted", "https://my-hooks.example.com/", ok, ok},
		{"a full-width loopback address is refused", "https://１２７.０.０.１/", nonASCII, nonASCII},
		{"a full-width metadata address is refused, even in the sandbox", "https://１６９.２５４.１６９.２５４/", nonASCII, nonASCII},
		{"a full-width localhost is refused", "https://ｌｏｃａｌｈｏｓｔ/", nonASCII, nonASCII},
		{"ideographic full stops are refused", "https://127。0。0。1/", nonASCII, nonASCII},
		{"an internationalised domain name is refused as written", "https://bücher.example/", nonASCII, nonASCII},
		{"an internationalised domain name in its xn-- form is accepted", "https://xn--bcher-kva.example/", ok, ok},
		{"an invalid IPv6 address is refused", "https://[::g]/", "is not a valid URL", "is not a valid URL"},
		{"a bracketed name is refused", "https://[example.com]/", "is not a valid URL", "is not a valid URL"},
		{"localhost is refused outside the sandbox", "https://localhost/", localhost, ok},
		{"localhost in capitals is refused outside the sandbox", "https://LocalHost:8443/", localhost, ok},
		{"localhost with a trailing dot is refused outside the sandbox", "https://localhost./", localhost, ok},
		{"localhost in capitals with a trailing dot is refused outside the sandbox", "https://LOCALHOST./", localhost, ok},
		{"a name under .localhost is refused outside the sandbox", "https://api.partner.localhost/", localhost, ok},
		{"a name merely ending in localhost is accepted", "https://notlocalhost/", ok, ok},
		{"loopback IPv4 is refused outside the sandbox", "https://127.0.0.1:8080/", nonPublic, ok},
		{"sandbox http to loopback is accepted", "http://127.0.0.1:8080/hook", httpsOnly, ok},
		{"loopback IPv6 is refused outside the sandbox", "https://[::1]/", nonPublic, ok},
		{"a private address is refused outside the sandbox", "https://10.1.2.3/", nonPublic, ok},
		{"the metadata address is refused, even in the sandbox", "http://169.254.169.254/latest/meta-data/", httpsOnly, linkLocal},
		{"the metadata address over https is refused, even in the sandbox", "https://169.254.169.254/latest/meta-data/", nonPublic, linkLocal},
		{"a link-local IPv4 address is refused, even in the sandbox", "https://169.254.1.2/", nonPublic, linkLocal},
		{"an IPv4-mapped metadata address is refused, even in the sandbox", "https://[::ffff:169.254.169.254]/", nonPublic, linkLocal},
		{"Alibaba Cloud's metadata address is refused, even in the sandbox", "https://100.100.100.200/", nonPublic, linkLocal},
		{"AWS's IPv6 metadata address is refused, even in the sandbox", "https://[fd00:ec2::254]/", nonPublic, linkLocal},
		{"Google Cloud's IPv6 metadata address is refused, even in the sandbox", "https://[fd20:ce::254]/", nonPublic, linkLocal},
		{"Oracle Cloud's legacy metadata address is refused, even in the sandbox", "http://192.0.0.192/latest/", httpsOnly, linkLocal},
		{"Azure's host platform address is refused, even in the sandbox", "https://168.63.129.16/machine?comp=goalstate", nonPublic, linkLocal},
		{"another shared address is the sandbox's", "https://100.64.0.1/", nonPublic, ok},
		{"an IPv4-mapped loopback is refused outside the sandbox", "https://[::ffff:127.0.0.1]/", nonPublic, ok},
		{"a link-local IPv6 address with a zone is refused, even in the sandbox", "https://[fe80::1%25eth0]/", nonPublic, linkLocal},
		{"the unspecified address is refused outside the sandbox", "https://0.0.0.0/", nonPublic, ok},
		{"the unspecified IPv6 address is refused outside the sandbox", "https://[::]/", nonPublic, ok},
		{"an IPv4-mapped loopback in hexadecimal is refused outside the sandbox", "https://[::ffff:7f00:1]/", nonPublic, ok},
		{"a NAT64 address of the metadata address is refused, even in the sandbox", "https://[64:ff9b::a9fe:a9fe]/", nonPublic, linkLocal},
		{"a 6to4 address of the metadata address is refused, even in the sandbox", "https://[2002:a9fe:a9fe::1]/", nonPublic, linkLocal},
	}
	for _, tt := range tests {
		for _, mode := range []struct {
			allowPrivate bool
			want         string
		}{{false, tt.wantPublic}, {true, tt.wantSandbox}} {
			err := webhook.CheckURL(tt.url, mode.allowPrivate)
			if mode.want == ok {
				if err != nil {
					t.Errorf("%s (allowPrivate %v): CheckURL(%q) = %v, want nil", tt.name, mode.allowPrivate, tt.url, err)
				}
				continue
			}
			var urlErr *webhook.URLError
			if !errors.As(err, &urlErr) {
				t.Errorf("%s (allowPrivate %v): CheckURL(%q) = %v, want a *URLError", tt.name, mode.allowPrivate, tt.url, err)
				continue
			}
			if !strings.HasPrefix(urlErr.Reason, mode.want) {
				t.Errorf("%s (allowPrivate %v): reason %q, want %q", tt.name, mode.allowPrivate, urlErr.Reason, mode.want)
			}
			if err.Error() != "the webhook URL "+urlErr.Reason {
				t.Errorf("%s: Error() = %q", tt.name, err.Error())
			}
		}
	}
}

func TestForbidden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want bool
	}{
		// IPv4
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"127.0.0.1", true},
		{"127.255.255.254", true},
		{"10.0.0.1", true},
		{"10.255.255.255", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"172.15.255.255", false},
		{"172.32.0.0", false},
		{"192.168.1.1", true},
		{"192.169.0.1", false},
		{"100.64.0.1", true},
		{"100.127.255.255", true},
		{"100.100.100.200", true}, // Alibaba Cloud's metadata
		{"168.63.129.16", true},   // Azure's host platform
		{"168.63.129.17", false},
		{"100.63.255.255", false},
		{"100.128.0.0", false},
		{"169.254.0.1", true},
		{"169.254.169.254", true}, // the cloud metadata address
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"240.0.0.1", true},
		{"255.255.255.255", true},
		{"192.0.0.1", true},
		{"192.0.2.10", true},
		{"198.18.0.1", true},
		{"198.51.100.1", true},
		{"203.0.113.1", true},
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"203.0.114.7", false},
		{"11.0.0.1", false},
		// IPv6
		{"::", true},
		{"::1", true},
		{"fc00::1", true},
		{"fd12:3456::1", true},
		{"fd00:ec2::254", true}, // AWS's metadata
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"febf::1", true},
		{"fec0::1", true},
		{"ff02::1", true},
		{"ff05::2", true},
		{"100::1", true},
		{"2001:db8::1", true},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", true}, // Teredo (RFC 4380's example)
		{"2001:4860:4860::8888", false},                // public, beside Teredo's /32
		{"2606:4700::1111", false},
		{"2a00:1450:4001::200e", false},
		// IPv6 forms of IPv4 addresses
		{"::ffff:127.0.0.1", true},
		{"::ffff:10.0.0.1", true},
		{"::ffff:169.254.169.254", true},
		{"::ffff:100.64.0.1", true},
		{"::ffff:0.0.0.0", true},
		{"::ffff:255.255.255.255", true},
		{"::ffff:8.8.8.8", false},
		{"64:ff9b::7f00:1", true},    // NAT64 of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", true}, // NAT64 of 169.254.169.254
		{"64:ff9b::808:808", false},  // NAT64 of 8.8.8.8
		{"64:ff9b:1::7f00:1", true},  // local-use NAT64 of 127.0.0.1
		{"64:ff9b:1::808:808", true}, // local-use NAT64, even of a public address: a local translator
		{"::7f00:1", true},           // IPv4-compatible 127.0.0.1
		{"::a9fe:a9fe", true},        // IPv4-compatible 169.254.169.254
		{"::808:808", true},          // IPv4-compatible, deprecated, of any address
		{"::ffff:0:7f00:1", true},    // IPv4-translated 127.0.0.1
		{"2002:c0a8:101::1", true},   // 6to4 of 192.168.1.1
		{"2002:808:808::1", false},   // 6to4 of 8.8.8.8
	}
	for _, tt := range tests {
		addr := netip.MustParseAddr(tt.addr)
		if got := webhook.Forbidden(addr); got != tt.want {
			t.Errorf("Forbidden(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if !webhook.Forbidden(netip.Addr{}) {
		t.Error("the invalid Addr is not forbidden")
	}
}
