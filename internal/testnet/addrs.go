package testnet

import "strings"

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
