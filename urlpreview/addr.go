package urlpreview

import "net/netip"

// refusedPrefixes are the special-purpose ranges (IANA's IPv4 and IPv6
// special-purpose address registries) that Allowed refuses beyond what
// netip's predicates cover: shared carrier NAT, benchmarking and
// documentation ranges, protocol assignments, and the IPv6 ranges that
// embed an IPv4 address (NAT64, 6to4, Teredo), through which an internal
// IPv4 host could be reached by a gateway on the node's network.
var refusedPrefixes = [...]netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (carrier-grade NAT)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast (deprecated)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the limited broadcast address
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64 well-known prefix
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments (Teredo among them)
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4
	netip.MustParsePrefix("3fff::/20"),       // documentation
	netip.MustParsePrefix("5f00::/16"),       // segment routing SIDs
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

// globalIPv6 is the only IPv6 range in global unicast use; everything
// outside it (IPv4-compatible and -mapped forms, unique-local, link-local,
// multicast) is refused before the prefix list is consulted.
var globalIPv6 = netip.MustParsePrefix("2000::/3")

// Allowed reports whether ip may be dialled to fetch a preview: a globally
// routable unicast address. It refuses loopback, private (RFC 1918),
// unique-local, link-local, multicast, unspecified, carrier-grade NAT
// (100.64.0.0/10) and the other special-purpose ranges, an IPv4-mapped
// IPv6 form of any of them, and any address with a zone.
func Allowed(ip netip.Addr) bool {
	if !ip.IsValid() || ip.Zone() != "" {
		return false
	}
	// ::ffff:127.0.0.1 dials 127.0.0.1: judge the IPv4 address it maps.
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsMulticast() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() ||
		!ip.IsGlobalUnicast() {
		return false
	}
	if ip.Is6() && !globalIPv6.Contains(ip) {
		return false
	}
	for _, p := range refusedPrefixes {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}
