package p2ptransport

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	msmux "github.com/multiformats/go-multistream"
)

// Addresses given by the app, for where the host cannot list the network
// interfaces itself.
//
// A host listening on 0.0.0.0 or :: advertises each interface's address
// with the listen port. go-libp2p v0.51.0 finds them by listing the
// interfaces (basichost's addrsManager, through
// manet.InterfaceMultiaddrs), which Android 11+ forbids an app: the listing
// fails and the host advertises loopback only, so no other device can dial
// it. The app knows its addresses (ConnectivityManager's LinkProperties) and
// hands them to SetInterfaceAddrs; the host's AddrsFactory then advertises
// each unspecified listen address with those IPs instead of what the
// listing found (and drops the interface-derived private addresses that are
// not among them: stale ones after a network change, or the loopback-only
// fallback). Public addresses learnt from peers or NAT mappings are kept.
// When no addresses are given, the factory changes nothing.

// MaxInterfaceAddrs bounds the addresses SetInterfaceAddrs takes.
const MaxInterfaceAddrs = 64

const (
	// networkCheckTimeout bounds each connection's ping after a network
	// change.
	networkCheckTimeout = 5 * time.Second
	// networkCheckConcurrency bounds the pings in flight at once.
	networkCheckConcurrency = 8
)

// interfaceAddrs holds the app's addresses and makes the host's
// AddrsFactory from them.
type interfaceAddrs struct {
	mu   sync.RWMutex
	ips  []ma.Multiaddr // /ip4/x or /ip6/x; nil: not given
	host host.Host      // set once the host exists
}

// newInterfaceAddrs starts with the addresses of Config.InterfaceAddrs.
func newInterfaceAddrs(initial []netip.Addr) (*interfaceAddrs, error) {
	ia := &interfaceAddrs{}
	if err := ia.set(initial); err != nil {
		return nil, err
	}
	return ia, nil
}

// bind gives the factory the host whose listen addresses it resolves.
func (ia *interfaceAddrs) bind(h host.Host) {
	ia.mu.Lock()
	defer ia.mu.Unlock()
	ia.host = h
}

// set validates and keeps addrs (empty: none given, list interfaces again).
func (ia *interfaceAddrs) set(addrs []netip.Addr) error {
	ips, err := interfaceMultiaddrs(addrs)
	if err != nil {
		return err
	}
	ia.mu.Lock()
	defer ia.mu.Unlock()
	ia.ips = ips
	return nil
}

// interfaceMultiaddrs checks the app's addresses and turns them into
// /ip4 or /ip6 multiaddrs: unspecified, multicast and zoned addresses are
// errors (none is an address of this device that a peer could dial);
// IPv6 link-local addresses are left out (libp2p does the same with listed
// ones: without a zone they cannot be dialled); duplicates count once.
func interfaceMultiaddrs(addrs []netip.Addr) ([]ma.Multiaddr, error) {
	if len(addrs) > MaxInterfaceAddrs {
		return nil, fmt.Errorf("p2ptransport: %d interface addresses, at most %d", len(addrs), MaxInterfaceAddrs)
	}
	if len(addrs) == 0 {
		return nil, nil
	}
	seen := map[netip.Addr]bool{}
	out := []ma.Multiaddr{}
	for _, a := range addrs {
		a = a.Unmap()
		switch {
		case !a.IsValid():
			return nil, errors.New("p2ptransport: interface address: invalid")
		case a.Zone() != "":
			return nil, fmt.Errorf("p2ptransport: interface address %s: zoned addresses are not advertised", a)
		case a.IsUnspecified():
			return nil, fmt.Errorf("p2ptransport: interface address %s is unspecified", a)
		case a.IsMulticast():
			return nil, fmt.Errorf("p2ptransport: interface address %s is multicast", a)
		case a.Is6() && a.IsLinkLocalUnicast():
			continue
		case seen[a]:
			continue
		}
		seen[a] = true
		m, err := manet.FromIP(a.AsSlice())
		if err != nil {
			return nil, fmt.Errorf("p2ptransport: interface address %s: %w", a, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// factory is the host's AddrsFactory: see the comment at the top.
func (ia *interfaceAddrs) factory(addrs []ma.Multiaddr) []ma.Multiaddr {
	ia.mu.RLock()
	ips, h := ia.ips, ia.host
	ia.mu.RUnlock()
	if ips == nil || h == nil {
		return addrs
	}
	var unspec []ma.Multiaddr
	for _, l := range h.Network().ListenAddresses() {
		if manet.IsIPUnspecified(l) {
			unspec = append(unspec, l)
		}
	}
	if len(unspec) == 0 {
		return addrs // specific listen addresses advertise themselves
	}
	out := make([]ma.Multiaddr, 0, len(addrs)+len(ips)*len(unspec))
	for _, a := range addrs {
		if resolvesListenAddr(a, unspec) && !manet.IsPublicAddr(a) && !hasIP(a, ips) {
			continue // found by interface listing, not among the app's
		}
		out = append(out, a)
	}
	for _, u := range unspec {
		resolved, err := manet.ResolveUnspecifiedAddress(u, ips)
		if err != nil {
			continue // e.g. :: listen address, IPv4-only addresses given
		}
		out = append(out, resolved...)
	}
	return ma.Unique(out)
}

// resolvesListenAddr reports whether a is one of the unspecified listen
// addresses with its IP filled in (the same transport and port).
func resolvesListenAddr(a ma.Multiaddr, unspec []ma.Multiaddr) bool {
	aIP, aRest := ma.SplitFirst(a)
	if aIP == nil {
		return false
	}
	for _, u := range unspec {
		uIP, uRest := ma.SplitFirst(u)
		if uIP != nil && uIP.Code() == aIP.Code() && aRest.Equal(uRest) {
			return true
		}
	}
	return false
}

// hasIP reports whether a's IP is one of ips.
func hasIP(a ma.Multiaddr, ips []ma.Multiaddr) bool {
	aIP, _ := ma.SplitFirst(a)
	if aIP == nil {
		return false
	}
	for _, ip := range ips {
		first, _ := ma.SplitFirst(ip)
		if first != nil && first.Equal(aIP) {
			return true
		}
	}
	return false
}

// SetInterfaceAddrs gives the host the device's IP addresses, to advertise
// with its listen ports in place of what listing the interfaces finds
// (which Android 11+ forbids). An empty list goes back to listing. Invalid
// addresses (unspecified, multicast, zoned, more than MaxInterfaceAddrs)
// are an error and change nothing. The host's advertised addresses (Addrs)
// change at once; connected peers hear of them within seconds (libp2p's
// identify push). Without effect on a Config.Host (mocknet) host.
func (n *Host) SetInterfaceAddrs(addrs []netip.Addr) error {
	return n.ifaddrs.set(addrs)
}

// NetworkChanged is for when the device's network changed (Wi-Fi to
// mobile data, a new address): connections that no longer answer a ping
// within a few seconds are closed, so requests stop waiting on them; peers
// added with Connect or configured are dialled again if they lost their
// connection; and the DHT refreshes its routing table (unless suspended).
// It returns at once; the work runs in the background. Call
// SetInterfaceAddrs first if the addresses changed.
func (n *Host) NetworkChanged() {
	n.goTracked(func() {
		n.checkConnections()
		n.redialProtected()
		n.refreshDHT()
		n.log.Info("network change handled", "addrs", n.h.Addrs())
	})
}

// checkConnections pings every connected peer, at most
// networkCheckConcurrency at once, and closes the connections of those
// that do not answer.
func (n *Host) checkConnections() {
	sem := make(chan struct{}, networkCheckConcurrency)
	var wg sync.WaitGroup
	for _, p := range n.h.Network().Peers() {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := n.pingPeer(p); err != nil {
				n.log.Debug("network change: closing silent connection", "peer", p, "err", err)
				_ = n.h.Network().ClosePeer(p)
			}
		}()
	}
	wg.Wait()
}

// pingPeer returns why p's connection is dead, or nil: a peer that refuses
// the ping protocol has answered, so it is alive, and a stream our own
// resource limits refused proves nothing either way.
func (n *Host) pingPeer(p peer.ID) error {
	ctx, cancel := context.WithTimeout(n.ctx, networkCheckTimeout)
	defer cancel()
	// On the connection there is, relayed or not: never dial for it.
	ctx = network.WithNoDial(ctx, "edgenode network check")
	res, ok := <-ping.Ping(ctx, n.h, p)
	if n.ctx.Err() != nil {
		return nil // closing: not the peer's fault
	}
	if !ok {
		return fmt.Errorf("no answer within %v", networkCheckTimeout)
	}
	var unsupported msmux.ErrNotSupported[protocol.ID]
	switch {
	case res.Error == nil, errors.As(res.Error, &unsupported):
		return nil
	case errors.Is(res.Error, network.ErrResourceLimitExceeded), errors.Is(res.Error, network.ErrResourceScopeClosed):
		return nil // our own limits refused the stream: says nothing of the peer
	}
	return res.Error
}

// CheckInterfaceAddrs reports whether SetInterfaceAddrs (or
// Config.InterfaceAddrs) would take addrs, for callers that keep them
// before a host exists.
func CheckInterfaceAddrs(addrs []netip.Addr) error {
	_, err := interfaceMultiaddrs(addrs)
	return err
}
