package p2ptransport

import (
	"context"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// suspendState is what Suspend turned off, so Resume can turn it back on.
// It is guarded by Host.mu, like closed: Close reads Host.mdns after taking
// that lock once, so Suspend and Resume never race with it.
type suspendState struct {
	// suspended is atomic as well as guarded, so refreshDHT can read it
	// without the lock.
	suspended atomic.Bool
	// mdnsWanted: mDNS was running when Suspend stopped it.
	mdnsWanted bool
}

// Suspend puts the host into its background mode, for a phone app that
// leaves the foreground: it stops mDNS (no multicast wake-ups), stops asking
// the DHT to refresh on new connections, and closes the connections to
// peers that are not protected (static peers and peers added with Connect
// stay connected). Federation still works: a request to a peer whose
// connection was closed dials it again on demand. The DHT's own periodic
// refresh keeps its profile period (an hour on a phone); the library has no
// pause. Suspend is idempotent and a no-op after Close.
func (n *Host) Suspend() {
	n.mu.Lock()
	if n.closed || n.susp.suspended.Load() {
		n.mu.Unlock()
		return
	}
	n.susp.suspended.Store(true)
	svc := n.mdns
	n.mdns = nil
	n.susp.mdnsWanted = svc != nil
	n.mu.Unlock()

	if svc != nil {
		if err := svc.Close(); err != nil {
			n.log.Debug("suspend: mDNS close", "err", err)
		}
	}
	closed := 0
	cm := n.h.ConnManager()
	for _, p := range n.h.Network().Peers() {
		if cm.IsProtected(p, "") {
			continue
		}
		if err := n.h.Network().ClosePeer(p); err == nil {
			closed++
		}
	}
	n.log.Info("libp2p host suspended", "closed_peers", closed, "mdns_stopped", svc != nil)
}

// Resume undoes Suspend: mDNS starts again if it was running, the DHT is
// asked to refill its routing table, and static peers that lost their
// connection are dialled again in the background. It is idempotent and a
// no-op after Close.
func (n *Host) Resume() {
	n.mu.Lock()
	if n.closed || !n.susp.suspended.Load() {
		n.mu.Unlock()
		return
	}
	n.susp.suspended.Store(false)
	if n.susp.mdnsWanted {
		svc := mdns.NewMdnsService(n.h, MDNSServiceName, mdnsNotifee{n})
		if err := svc.Start(); err != nil {
			_ = svc.Close()
			n.log.Warn("resume: mDNS discovery unavailable", "err", err)
		} else {
			n.mdns = svc
		}
	}
	n.mu.Unlock()

	n.redialProtected()
	n.refreshDHT()
	n.log.Info("libp2p host resumed")
}

// Suspended reports whether the host is in its background mode.
func (n *Host) Suspended() bool {
	return n.susp.suspended.Load()
}

// redialProtected connects again, in the background, to every protected
// peer that has no connection: static peers may have dropped while the app
// slept (a phone's radio goes quiet, NAT mappings expire).
func (n *Host) redialProtected() {
	cm := n.h.ConnManager()
	for _, p := range n.h.Peerstore().PeersWithAddrs() {
		if p == n.h.ID() || !cm.IsProtected(p, "") {
			continue
		}
		if n.h.Network().Connectedness(p) == network.Connected {
			continue
		}
		ai := n.h.Peerstore().PeerInfo(p)
		n.goTracked(func() {
			cctx, cancel := context.WithTimeout(n.ctx, connectTimeout)
			defer cancel()
			if err := n.h.Connect(cctx, ai); err != nil {
				n.log.Debug("resume: peer connect failed", "peer", ai.ID, "err", err)
			}
		})
	}
}
