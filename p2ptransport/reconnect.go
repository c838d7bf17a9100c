package p2ptransport

import (
	"github.com/libp2p/go-libp2p/core/network"
)

// watchReconnects reports a new connection to a peer that already had one
// as a PeerEvent{Up: true}. The peer's connectedness does not change then,
// so eventLoop says nothing, yet it usually means the peer restarted, and
// requests waiting on its old connection (dead, but open until QUIC's idle
// timeout) should be retried at once: the sender does on PeerUp, and
// dialStream puts new requests on the newest connection. Idle HTTP streams
// are dropped first, so a retry cannot reuse one on the old connection.
func (n *Host) watchReconnects() {
	n.h.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(net network.Network, c network.Conn) {
			if len(net.ConnsToPeer(c.RemotePeer())) < 2 {
				return // the first connection: eventLoop reports it
			}
			name, err := ServerNameFromPeer(c.RemotePeer())
			if err != nil {
				return // not an edgenode peer
			}
			// Closing idle streams does not block on the network.
			n.rt.t.CloseIdleConnections()
			n.events.push(PeerEvent{ServerName: name, Up: true})
		},
	})
}
