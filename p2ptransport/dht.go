package p2ptransport

import (
	"context"
	"errors"
	"fmt"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// DHTProtocolPrefix prefixes edgenode's Kademlia protocol
// (/edgenode/kad/1.0.0). edgenode nodes form their own DHT, apart from the
// public IPFS one: lookups stay short, and nodes neither store nor answer
// for anybody else's records.
const DHTProtocolPrefix protocol.ID = "/edgenode"

// DHT modes accepted in Config.DHTMode.
const (
	// DHTModeClient looks peers up but answers no queries (phones).
	DHTModeClient = "client"
	// DHTModeServer answers queries and is kept in other nodes' routing
	// tables (a Pi or a server that others can reach).
	DHTModeServer = "server"
	// DHTModeAuto starts as a client and becomes a server when AutoNAT finds
	// the node publicly reachable.
	DHTModeAuto = "auto"
)

const (
	// dhtLookupTimeout bounds one peer lookup made for a federation request.
	dhtLookupTimeout = 30 * time.Second
	// maxConcurrentLookups bounds the lookups in flight at once, so a burst
	// of requests to unknown servers cannot flood a phone's radio.
	maxConcurrentLookups = 4
	// maxBootstrapPeers bounds the peers handed to the DHT to refill an
	// empty routing table.
	maxBootstrapPeers = 32
	// lookupCheckConcurrency bounds the goroutines the DHT uses to check a
	// peer before admitting it to the routing table (libp2p's default, 256,
	// is sized for the public DHT).
	lookupCheckConcurrency = 8
)

// dhtModeOpt maps a Config.DHTMode to the library's mode; "" picks the
// profile's default.
func dhtModeOpt(mode string, prof profileLimits) (dht.ModeOpt, error) {
	if mode == "" {
		mode = prof.dhtMode
	}
	switch mode {
	case DHTModeClient:
		return dht.ModeClient, nil
	case DHTModeServer:
		return dht.ModeServer, nil
	case DHTModeAuto:
		return dht.ModeAuto, nil
	}
	return 0, fmt.Errorf("p2ptransport: unknown DHT mode %q (want auto, client or server)", mode)
}

// startDHT starts peer routing on the host. Provider and value records are
// disabled: edgenode only looks up peers (server name -> peer ID is offline,
// peer ID -> addresses is the DHT's job), so nothing is stored for others.
// An empty routing table is refilled from the static peers and whatever is
// connected (mDNS finds, relays).
func (n *Host) startDHT(mode dht.ModeOpt, prof profileLimits, statics []*peer.AddrInfo) error {
	d, err := dht.New(n.h,
		dht.ProtocolPrefix(DHTProtocolPrefix),
		dht.Mode(mode),
		dht.DisableProviders(),
		dht.DisableValues(),
		dht.BucketSize(prof.dhtBucketSize),
		dht.Concurrency(prof.dhtConcurrency),
		dht.LookupCheckConcurrency(lookupCheckConcurrency),
		dht.RoutingTableRefreshPeriod(prof.dhtRefresh),
		dht.BootstrapPeersFunc(func() []peer.AddrInfo { return n.bootstrapPeers(statics) }),
	)
	if err != nil {
		return fmt.Errorf("p2ptransport: DHT: %w", err)
	}
	n.dht = d
	n.lookupSem = make(chan struct{}, maxConcurrentLookups)
	return nil
}

// bootstrapPeers are the static peers, then connected peers, at most
// maxBootstrapPeers.
func (n *Host) bootstrapPeers(statics []*peer.AddrInfo) []peer.AddrInfo {
	out := make([]peer.AddrInfo, 0, maxBootstrapPeers)
	seen := make(map[peer.ID]bool, maxBootstrapPeers)
	for _, ai := range statics {
		if len(out) == maxBootstrapPeers {
			return out
		}
		out = append(out, *ai)
		seen[ai.ID] = true
	}
	for _, p := range n.h.Network().Peers() {
		if len(out) == maxBootstrapPeers {
			break
		}
		if !seen[p] {
			out = append(out, n.h.Peerstore().PeerInfo(p))
			seen[p] = true
		}
	}
	return out
}

// refreshDHT asks the DHT to refill its routing table, without waiting (a
// request while one is pending is dropped): a static peer that has just
// connected may be the only way into the DHT.
func (n *Host) refreshDHT() {
	if n.dht != nil && !n.susp.suspended.Load() { // Suspend: no discovery chatter
		_ = n.dht.Bootstrap(n.ctx) // never fails
	}
}

// needsLookup reports whether dialling pid needs addresses from the DHT:
// it is not connected and the peerstore knows no address for it.
func (n *Host) needsLookup(pid peer.ID) bool {
	return !n.connected(pid) && len(n.h.Peerstore().Addrs(pid)) == 0
}

// findPeer looks pid up in the DHT, bounded by dhtLookupTimeout and ctx, and
// stores the addresses found. Concurrent lookups of one peer share one
// query; at most maxConcurrentLookups run at once.
func (n *Host) findPeer(ctx context.Context, pid peer.ID) error {
	if n.dht == nil {
		return fmt.Errorf("p2ptransport: no address known for %s and the DHT is off", pid)
	}
	ch := n.lookups.DoChan(string(pid), func() (any, error) {
		// Detached from the first caller's ctx: the shared lookup must not
		// fail for everyone when that one caller gives up.
		lctx, cancel := context.WithTimeout(n.ctx, dhtLookupTimeout)
		defer cancel()
		select {
		case n.lookupSem <- struct{}{}:
			defer func() { <-n.lookupSem }()
		case <-lctx.Done():
			return nil, lctx.Err()
		}
		ai, err := n.dht.FindPeer(lctx, pid)
		if err != nil {
			return nil, err
		}
		if len(ai.Addrs) == 0 {
			return nil, errors.New("found without addresses")
		}
		n.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.AddressTTL)
		return nil, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return fmt.Errorf("p2ptransport: DHT lookup of %s: %w", pid, r.Err)
		}
		n.log.Debug("DHT lookup found peer", "peer", pid)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("p2ptransport: DHT lookup of %s: %w", pid, ctx.Err())
	}
}
