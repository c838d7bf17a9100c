package p2ptransport

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
)

// Reachability settings accepted in Config.Reachability.
const (
	// ReachabilityAuto lets AutoNAT find out whether others can dial in.
	ReachabilityAuto = "auto"
	// ReachabilityPrivate declares the node behind NAT: it reserves slots
	// on its relays at once instead of waiting for AutoNAT (a phone on a
	// mobile network, where that wait can be long or endless).
	ReachabilityPrivate = "private"
	// ReachabilityPublic declares the node reachable (a Pi with a forwarded
	// port): it uses no relays, and a DHT in auto mode acts as a server.
	ReachabilityPublic = "public"
)

// relayBackoff is how long a static relay that failed is left alone. The
// library's default (an hour) suits a large pool of candidates; with one or
// two configured relays, a phone that started offline would stay
// unreachable that long.
const relayBackoff = 2 * time.Minute

// natOptions are the libp2p options for NAT traversal:
//
//   - AutoNAT v2 (per-address reachability; it also answers others' checks,
//     rate-limited by the library) and, on a relay, the v1 service, which is
//     what tells other nodes whether they are behind NAT;
//   - circuit relay v2 client through the configured static relays (the
//     relay transport itself is always on, see hostOptions);
//   - hole punching (DCUtR), which upgrades a relayed connection to a direct
//     one where the NATs allow;
//   - the relay service, sized by the profile.
//
// A relay service runs only while the node believes it is publicly
// reachable (libp2p's rule), so RelayService implies ReachabilityPublic
// unless Reachability says otherwise: a node configured as a relay is one
// its owner made reachable, and a small network may have no AutoNAT server
// to confirm it.
func natOptions(cfg Config, prof profileLimits, relays []peer.AddrInfo) ([]hostOption, error) {
	var reachability *network.Reachability
	reach := cfg.Reachability
	if reach == "" {
		reach = ReachabilityAuto
		if cfg.RelayService {
			reach = ReachabilityPublic
		}
	}
	switch reach {
	case ReachabilityAuto:
	case ReachabilityPrivate:
		r := network.ReachabilityPrivate
		reachability = &r
	case ReachabilityPublic:
		r := network.ReachabilityPublic
		reachability = &r
	default:
		return nil, fmt.Errorf("p2ptransport: unknown reachability %q (want auto, private or public)", cfg.Reachability)
	}
	return []hostOption{func(o *hostOptions) error {
		o.autoNATv2 = true
		o.holePunching = true
		o.reachability = reachability
		if len(relays) > 0 {
			o.autoRelay = []autorelay.Option{autorelay.WithStaticRelays(relays), autorelay.WithBackoff(relayBackoff)}
		}
		if cfg.RelayService {
			o.natService = true
			o.relayService = true
			o.relayOpts = []relayv2.Option{relayv2.WithResources(prof.relayResources())}
		}
		return nil
	}}, nil
}

// relayResources are the relay service's limits for the profile.
func (p profileLimits) relayResources() relayv2.Resources {
	rc := relayv2.DefaultResources()
	rc.MaxReservations = p.relayRsvps
	rc.MaxCircuits = p.relayCircuits
	rc.MaxReservationsPerIP = min(rc.MaxReservationsPerIP, p.relayRsvps)
	rc.MaxReservationsPerASN = min(rc.MaxReservationsPerASN, p.relayRsvps)
	rc.Limit = &relayv2.RelayLimit{Duration: p.relayDuration, Data: p.relayDataPerDir}
	return rc
}

// parseRelays parses Config.Relays: multiaddrs ending in /p2p/<peer ID>.
func parseRelays(addrs []string) ([]peer.AddrInfo, error) {
	out := make([]peer.AddrInfo, 0, len(addrs))
	for _, s := range addrs {
		// Any libp2p relay will do, not only an edgenode node: the key type
		// is not checked.
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("p2ptransport: relay address %q: %w", s, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}
