package p2ptransport

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/host/autonat"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	bhost "github.com/libp2p/go-libp2p/p2p/host/basic"
	blankhost "github.com/libp2p/go-libp2p/p2p/host/blank"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/host/observedaddrs"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
	relayclient "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// This file assembles the libp2p host from its parts (basic host, swarm,
// identify, ping, AutoNAT v1 and v2, circuit relay v2 client and service,
// hole punching), as go-libp2p's root package would with edgenode's options,
// without linking that package (see swarm.go). Metrics are off: nothing is
// registered with Prometheus.

// hostOptions are what varies between edgenode's libp2p hosts. The zero
// value is a host that listens nowhere, with identify and ping only, and
// the relay transport (dialing through relays and accepting relayed
// connections), which every host has.
type hostOptions struct {
	listen []ma.Multiaddr
	// addrsFactory, if set, turns the listen addresses into the advertised
	// ones (basic host's AddrsFactory); AutoNAT v1 checks what it returns.
	addrsFactory bhost.AddrsFactory
	// reachability, if set, overrides AutoNAT's finding.
	reachability *network.Reachability
	autoNATv2    bool // AutoNAT v2 client and server
	natService   bool // AutoNAT v1 service: tells others whether they are reachable
	holePunching bool // DCUtR
	relayService bool // circuit relay v2 service (while publicly reachable)
	relayOpts    []relayv2.Option
	autoRelay    []autorelay.Option // non-nil: reserve slots on relays
}

// hostOption sets one thing in hostOptions.
type hostOption func(*hostOptions) error

// listenAddrs listens on the given multiaddrs.
func listenAddrs(addrs ...string) hostOption {
	return func(o *hostOptions) error {
		for _, s := range addrs {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return fmt.Errorf("listen address %q: %w", s, err)
			}
			o.listen = append(o.listen, a)
		}
		return nil
	}
}

// udpBlackHole and ipv6BlackHole: after 100 dials over UDP (or IPv6) with
// fewer than 5 successes, the swarm stops trying that kind of address
// first, as a network that blocks it blocks all of it (libp2p's default).
func udpBlackHole() *swarm.BlackHoleSuccessCounter {
	return &swarm.BlackHoleSuccessCounter{N: 100, MinSuccesses: 5, Name: "UDP"}
}

func ipv6BlackHole() *swarm.BlackHoleSuccessCounter {
	return &swarm.BlackHoleSuccessCounter{N: 100, MinSuccesses: 5, Name: "IPv6"}
}

// leanHost is the basic host with what it does not close itself.
type leanHost struct {
	*bhost.BasicHost
	autoRelay *autorelay.AutoRelay   // nil without relays
	observed  *observedaddrs.Manager // closed before the host, as it watches the swarm
	quic      *quicreuse.ConnManager // the swarm's QUIC sockets, closed after it
	dialers   []*dialer              // the AutoNAT dialers, whose swarms the host's AutoNATs close
}

// Close closes the host and everything built for it.
func (h *leanHost) Close() error {
	var errs []error
	if h.autoRelay != nil {
		errs = append(errs, h.autoRelay.Close())
	}
	errs = append(errs, h.observed.Close())
	// Closes the connection manager, AutoNATs, relay service, hole
	// punching, identify, the swarm with its transports, the peerstore and
	// the resource manager.
	errs = append(errs, h.BasicHost.Close())
	errs = append(errs, h.quic.Close())
	for _, d := range h.dialers {
		errs = append(errs, d.close())
	}
	return errors.Join(errs...)
}

// dialer is a swarm of its own identity that dials back for AutoNAT: a peer
// asking to be checked must not be able to make the node dial anything
// from its own identity. It listens nowhere.
type dialer struct {
	*swarmParts
	ps  peerstore.Peerstore
	bus event.Bus
}

// newDialer makes a dialer with a fresh key and the same transports,
// accounting to rm.
func newDialer(rm network.ResourceManager, opts ...swarm.Option) (*dialer, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		return nil, err
	}
	bus := eventbus.NewBus()
	parts, err := newSwarm(key, ps, bus, rm, opts...)
	if err != nil {
		_ = ps.Close()
		return nil, err
	}
	return &dialer{swarmParts: parts, ps: ps, bus: bus}, nil
}

// close closes the dialer's swarm (again: harmless), its QUIC sockets and
// its peerstore.
func (d *dialer) close() error {
	return errors.Join(d.swarmParts.close(), d.ps.Close())
}

// abandon closes what a failed buildHost had made: the whole basic host
// once it exists (it closes rm and cm), else each part.
func (lh *leanHost) abandon(ps peerstore.Peerstore, main *swarmParts, cm connmgr.ConnManager, rm network.ResourceManager) {
	if lh.BasicHost != nil {
		_ = lh.Close()
		return
	}
	if lh.observed != nil {
		_ = lh.observed.Close()
	}
	for _, d := range lh.dialers {
		_ = d.close()
	}
	if main != nil {
		_ = main.close()
	}
	if ps != nil {
		_ = ps.Close()
	}
	_ = cm.Close()
	_ = rm.Close()
}

// newAutoNATv2 makes the AutoNAT v2 service with a dialer of its own
// (kept in lh.dialers, closed with the host). Dial-backs read the host's
// black-hole counters (no dial-back over UDP where this network blocks
// it) but do not update them: a failed one says something about the peer
// asking, not about this network.
func (lh *leanHost) newAutoNATv2(rm network.ResourceManager, udpBH, ipv6BH *swarm.BlackHoleSuccessCounter) (*autonatv2.AutoNAT, error) {
	d, err := newDialer(rm,
		swarm.WithDialRanker(swarm.NoDelayDialRanker),
		swarm.WithUDPBlackHoleSuccessCounter(udpBH),
		swarm.WithIPv6BlackHoleSuccessCounter(ipv6BH),
		swarm.WithReadOnlyBlackHoleDetector())
	if err != nil {
		return nil, fmt.Errorf("AutoNAT v2: %w", err)
	}
	lh.dialers = append(lh.dialers, d)
	dh := blankhost.NewBlankHost(d.sw, blankhost.WithEventBus(d.bus))
	if dh == nil {
		return nil, errors.New("AutoNAT v2: dialer host failed")
	}
	an2, err := autonatv2.New(dh)
	if err != nil {
		return nil, fmt.Errorf("AutoNAT v2: %w", err)
	}
	return an2, nil
}

// buildHost assembles and starts a host with identity key, accounting to
// rm and trimmed by cm. It owns rm and cm: they are closed with the host,
// or before it returns an error.
func buildHost(key crypto.PrivKey, rm network.ResourceManager, cm connmgr.ConnManager, o hostOptions) (_ host.Host, err error) {
	lh := &leanHost{}
	var (
		ps   peerstore.Peerstore
		main *swarmParts
	)
	defer func() {
		if err != nil {
			lh.abandon(ps, main, cm, rm)
		}
	}()

	if ps, err = pstoremem.NewPeerstore(); err != nil {
		return nil, err
	}
	bus := eventbus.NewBus()
	udpBH, ipv6BH := udpBlackHole(), ipv6BlackHole()
	if main, err = newSwarm(key, ps, bus, rm,
		swarm.WithUDPBlackHoleSuccessCounter(udpBH),
		swarm.WithIPv6BlackHoleSuccessCounter(ipv6BH)); err != nil {
		return nil, err
	}
	lh.quic = main.quic
	if lh.observed, err = observedaddrs.NewManager(bus, main.sw); err != nil {
		return nil, fmt.Errorf("observed addresses: %w", err)
	}

	var an2 *autonatv2.AutoNAT
	if o.autoNATv2 {
		if an2, err = lh.newAutoNATv2(rm, udpBH, ipv6BH); err != nil {
			return nil, err
		}
	}

	bh, err := bhost.NewHost(main.sw, &bhost.HostOpts{
		EventBus:             bus,
		ConnManager:          cm,
		AddrsFactory:         o.addrsFactory,
		EnablePing:           true,
		EnableHolePunching:   o.holePunching,
		EnableRelayService:   o.relayService,
		RelayServiceOpts:     o.relayOpts,
		AutoNATv2:            an2,
		ObservedAddrsManager: lh.observed,
	})
	if err != nil {
		if an2 != nil {
			an2.Close()
		}
		return nil, fmt.Errorf("host: %w", err)
	}
	lh.BasicHost = bh
	if err := relayclient.AddTransport(bh, main.upgrader); err != nil {
		return nil, fmt.Errorf("relay transport: %w", err)
	}
	if o.autoRelay != nil {
		if lh.autoRelay, err = autorelay.NewAutoRelay(bh, o.autoRelay...); err != nil {
			return nil, fmt.Errorf("autorelay: %w", err)
		}
	}

	// Listen first, so that the address manager starts with real addresses.
	if err := main.sw.Listen(o.listen...); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	lh.observed.Start(main.sw)
	if lh.autoRelay != nil {
		lh.autoRelay.Start()
	}
	bh.Start()

	an1, err := newAutoNATv1(bh, rm, o, lh)
	if err != nil {
		return nil, err
	}
	bh.SetAutoNat(an1) // the basic host closes it
	return lh, nil
}

// newAutoNATv1 starts AutoNAT v1 on h: the client that finds out whether
// the node is reachable (unless o.reachability says), and with
// o.natService the service that answers others. It checks public
// addresses only.
func newAutoNATv1(h *bhost.BasicHost, rm network.ResourceManager, o hostOptions, lh *leanHost) (autonat.AutoNAT, error) {
	addrs := func() []ma.Multiaddr {
		all := h.AllAddrs()
		if o.addrsFactory != nil {
			all = slices.Clone(o.addrsFactory(all))
		}
		return slices.DeleteFunc(all, func(a ma.Multiaddr) bool { return !manet.IsPublicAddr(a) })
	}
	opts := []autonat.Option{autonat.UsingAddresses(addrs)}
	if o.natService {
		// No black-hole counters: a dial-back must be tried whatever this
		// node's own dials have seen.
		d, err := newDialer(rm,
			swarm.WithDialRanker(swarm.NoDelayDialRanker),
			swarm.WithUDPBlackHoleSuccessCounter(nil),
			swarm.WithIPv6BlackHoleSuccessCounter(nil))
		if err != nil {
			return nil, fmt.Errorf("AutoNAT service: %w", err)
		}
		lh.dialers = append(lh.dialers, d)
		opts = append(opts, autonat.EnableService(d.sw))
	}
	if o.reachability != nil {
		opts = append(opts, autonat.WithReachability(*o.reachability))
	}
	an, err := autonat.New(h, opts...)
	if err != nil {
		return nil, fmt.Errorf("AutoNAT: %w", err)
	}
	return an, nil
}
