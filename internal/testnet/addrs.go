package testnet

import (
	"strings"

	"github.com/edgenode/edgenode/p2ptransport"
)

// QUICListen is the libp2p listen address of a test node: QUIC on
// loopback, on a port the kernel picks.
const QUICListen = "/ip4/127.0.0.1/udp/0/quic-v1"

// LoopbackP2P is the libp2p configuration of a test node: listening on
// QUICListen only, with peers (may be nil) as its static peers, and the
// rest left to p2ptransport's defaults.
func LoopbackP2P(peers []string) p2ptransport.Config {
	return p2ptransport.Config{ListenAddrs: []string{QUICListen}, StaticPeers: peers}
}

// QUICAddrs is the QUIC multiaddrs among addrs (a libp2p host's listen
// addresses): what a test hands another node as its static peers, so the
// pair talks QUIC on loopback whatever else the host listens on.
func QUICAddrs(addrs []string) []string {
	var quic []string
	for _, addr := range addrs {
		if strings.Contains(addr, "/quic-v1/") {
			quic = append(quic, addr)
		}
	}
	return quic
}
