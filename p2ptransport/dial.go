package p2ptransport

import (
	"context"
	"errors"
	"net"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// dialFederation opens a federation stream to pid, as a net.Conn for the
// HTTP transport.
//
// Relayed (limited) connections are allowed: a phone behind NAT may be
// reachable only through a relay, and federation requests are small enough
// for a circuit's limits. Hole punching may later replace the circuit with a
// direct connection; new streams then use that.
//
// Addresses come from the peerstore (static peers, mDNS, identify). When it
// has none, the peer is looked up in the DHT first. When the DHT is on and a
// dial with known addresses fails to connect, they may be stale (a phone
// changed networks, a static peer moved): the peer is looked up once and the
// dial retried.
func (n *Host) dialFederation(ctx context.Context, pid peer.ID) (net.Conn, error) {
	ctx = network.WithAllowLimitedConn(ctx, "edgenode-federation")
	looked := false
	if n.needsLookup(pid) {
		if err := n.findPeer(ctx, pid); err != nil {
			return nil, err
		}
		looked = true
	}
	c, err := n.dialStream(ctx, pid)
	if err == nil || looked || n.dht == nil || ctx.Err() != nil || n.connected(pid) {
		return c, err
	}
	if lerr := n.findPeer(ctx, pid); lerr != nil {
		return nil, errors.Join(err, lerr)
	}
	return n.dialStream(ctx, pid)
}

// connected reports whether the host has a connection to pid, direct or
// relayed.
func (n *Host) connected(pid peer.ID) bool {
	switch n.h.Network().Connectedness(pid) {
	case network.Connected, network.Limited:
		return true
	}
	return false
}
