package urlpreview_test

import (
	"net/netip"
	"testing"

	"github.com/edgenode/edgenode/urlpreview"
)

func TestAllowed(t *testing.T) {
	cases := []struct {
		class string
		ip    string
		want  bool
	}{
		{"public IPv4", "93.184.216.34", true},
		{"public IPv4 (1.1.1.1)", "1.1.1.1", true},
		{"public IPv6", "2606:4700:4700::1111", true},
		{"IPv4-mapped public", "::ffff:93.184.216.34", true},

		{"loopback", "127.0.0.1", false},
		{"loopback, other", "127.1.2.3", false},
		{"loopback IPv6", "::1", false},
		{"private 10/8", "10.0.0.1", false},
		{"private 172.16/12", "172.31.255.254", false},
		{"private 192.168/16", "192.168.1.1", false},
		{"link-local", "169.254.169.254", false},
		{"link-local IPv6", "fe80::1", false},
		{"link-local IPv6 with zone", "fe80::1%eth0", false},
		{"unique-local", "fd12:3456:789a::1", false},
		{"unique-local fc00", "fc00::1", false},
		{"multicast", "224.0.0.1", false},
		{"multicast IPv6", "ff02::1", false},
		{"multicast IPv6 global scope", "ff0e::1", false},
		{"unspecified", "0.0.0.0", false},
		{"unspecified IPv6", "::", false},
		{"this network", "0.1.2.3", false},
		{"CGNAT", "100.64.0.1", false},
		{"CGNAT top", "100.127.255.254", false},
		{"broadcast", "255.255.255.255", false},
		{"reserved 240/4", "240.0.0.1", false},
		{"benchmarking", "198.18.0.1", false},
		{"documentation", "192.0.2.1", false},
		{"IETF protocol assignments", "192.0.0.8", false},
		{"IPv4-mapped loopback", "::ffff:127.0.0.1", false},
		{"IPv4-mapped private", "::ffff:10.0.0.1", false},
		{"IPv4-mapped link-local", "::ffff:169.254.169.254", false},
		{"IPv4-mapped CGNAT", "::ffff:100.64.0.1", false},
		{"IPv4-compatible (deprecated)", "::127.0.0.1", false},
		{"NAT64 of loopback", "64:ff9b::7f00:1", false},
		{"6to4 of private", "2002:c0a8:101::1", false},
		{"Teredo", "2001::1", false},
		{"IPv6 documentation", "2001:db8::1", false},
		{"site-local (deprecated)", "fec0::1", false},
		{"discard-only", "100::1", false},
		{"invalid", "", false},
	}
	for _, c := range cases {
		t.Run(c.class, func(t *testing.T) {
			var ip netip.Addr
			if c.ip != "" {
				ip = netip.MustParseAddr(c.ip)
			}
			if got := urlpreview.Allowed(ip); got != c.want {
				t.Errorf("Allowed(%s) = %v, want %v", c.ip, got, c.want)
			}
		})
	}
}
