package p2ptransport

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/edgenode/edgenode/internal/devprofile"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/net/gostream"
	"golang.org/x/sync/singleflight"
)

// ProtocolID is the libp2p protocol that carries federation HTTP.
const ProtocolID protocol.ID = "/edgenode/fed/1"

// MDNSServiceName is the mDNS service edgenode nodes advertise and browse,
// distinct from libp2p's default so that unrelated libp2p apps are ignored.
const MDNSServiceName = "_edgenode-p2p._udp"

// DefaultListenAddrs are used when Config.ListenAddrs is empty.
var DefaultListenAddrs = []string{"/ip4/0.0.0.0/udp/0/quic-v1", "/ip4/0.0.0.0/tcp/0"}

const connectTimeout = 15 * time.Second

// Config configures a Host. It is the one definition of edgenode's libp2p
// options: app.P2PConfig embeds it, and the command's YAML config and the
// mobile facade's JSON config decode into it under the keys its tags name
// (the fields tagged "-" are the embedder's to set, not a config file's).
type Config struct {
	// PrivateKey is the node's ed25519 key (libp2p identity and Matrix
	// signing key). Required.
	PrivateKey ed25519.PrivateKey `json:"-" yaml:"-"`
	// ListenAddrs are libp2p multiaddrs to listen on; DefaultListenAddrs if empty.
	ListenAddrs []string `json:"p2p_listen" yaml:"p2p_listen"`
	// Profile is "phone", "pi" or "server" (DefaultProfile if empty): it
	// selects explicit resource-manager limits and connection-manager
	// watermarks.
	Profile string `json:"-" yaml:"-"`
	// StaticPeers are multiaddrs ending in /p2p/<peer ID>. Their addresses
	// are remembered permanently (so federation requests can dial them on
	// demand), they are protected from connection trimming, and New starts
	// connecting to them in the background.
	StaticPeers []string `json:"peers" yaml:"peers"`
	// MDNS enables LAN discovery. Failure to start it (as on Android 11+) is
	// logged, not returned.
	MDNS bool `json:"mdns" yaml:"mdns"`
	// DHT enables peer lookup in edgenode's Kademlia DHT (see
	// DHTProtocolPrefix): a federation request to a server whose addresses
	// are unknown looks the peer up before dialling.
	DHT bool `json:"dht" yaml:"dht"`
	// DHTMode is DHTModeClient, DHTModeServer or DHTModeAuto; empty picks
	// the profile's default (client on a phone, server on a Pi or server).
	DHTMode string `json:"dht_mode" yaml:"dht_mode"`
	// Relays are circuit relay v2 relays, multiaddrs ending in /p2p/<peer
	// ID>. Behind NAT the node reserves a slot on them and is reachable at
	// <relay addr>/p2p-circuit/p2p/<own ID>.
	Relays []string `json:"relays" yaml:"relays"`
	// RelayService makes this node a relay for others, with limits from
	// Profile. It implies ReachabilityPublic unless Reachability is set.
	RelayService bool `json:"relay_service" yaml:"relay_service"`
	// Reachability is ReachabilityAuto (default), ReachabilityPrivate or
	// ReachabilityPublic.
	Reachability string `json:"reachability" yaml:"reachability"`
	// Logger receives the host's logs; slog.Default() if nil.
	Logger *slog.Logger `json:"-" yaml:"-"`
	// InterfaceAddrs, if set, are the device's IP addresses, advertised
	// with the listen ports instead of what listing the interfaces finds
	// (ifaddrs.go); SetInterfaceAddrs changes them later.
	InterfaceAddrs []netip.Addr `json:"-" yaml:"-"`
	// ifaddrs makes the host's AddrsFactory (set by New).
	ifaddrs *interfaceAddrs
	// Host, if set, is used instead of creating a libp2p host: simulations
	// hand in mocknet hosts made with the node's key. ListenAddrs, Profile's
	// managers, DHT, Relays, RelayService and Reachability are then
	// ignored. The Host takes ownership: Close closes it.
	Host host.Host `json:"-" yaml:"-"`
}

// PeerEvent reports that an ed25519 peer became connected (Up) or lost its
// last connection.
type PeerEvent struct {
	ServerName string
	Up         bool
}

// PeerInfo describes a connected peer.
type PeerInfo struct {
	ServerName string
	// Addrs are the remote multiaddrs of the open connections.
	Addrs []string
}

// Host is an edgenode libp2p host.
type Host struct {
	h      host.Host
	log    *slog.Logger
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	listener net.Listener
	sub      event.Subscription
	events   *peerEvents
	mdns     mdns.Service
	rt       *roundTripper

	dht       *dht.IpfsDHT       // nil when Config.DHT is off
	lookups   singleflight.Group // DHT lookups in flight, keyed by peer (bounded by callers in flight)
	lookupSem chan struct{}      // bounds concurrent DHT lookups

	ifaddrs *interfaceAddrs // the app's addresses (ifaddrs.go)
	profile string          // Config.Profile, resolved

	mu     sync.Mutex // guards closed, wg.Add, and mdns and susp after New
	closed bool
	susp   suspendState // see Suspend

	closeOnce sync.Once
	closeErr  error
}

// New starts a libp2p host with the given configuration. It does not wait
// for the network: static peers are connected in the background (failures
// are logged), but a malformed static peer address is an error. ctx only
// bounds setup; the host lives until Close.
func New(ctx context.Context, cfg Config) (*Host, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	plan, err := planHost(&cfg)
	if err != nil {
		return nil, err
	}
	h := cfg.Host
	if h == nil {
		if h, err = newLibp2pHost(cfg, plan.prof, plan.priv, plan.listen, plan.relays); err != nil {
			return nil, err
		}
	}
	n, err := startHost(cfg, plan, h)
	if err != nil {
		return nil, err
	}
	n.connectStatics(plan.statics)
	if cfg.MDNS {
		n.startMDNS()
	}
	plan.log.Info("libp2p host started", "server_name", n.ServerName(), "peer", h.ID(), "addrs", h.Addrs(), "profile", n.profile,
		"dht", cfg.DHT, "relays", len(plan.relays), "relay_service", cfg.RelayService)
	return n, nil
}

// hostPlan is what New works out from a Config before it starts anything.
type hostPlan struct {
	log     *slog.Logger
	prof    profileLimits
	statics []*peer.AddrInfo
	priv    crypto.PrivKey
	listen  []string
	dhtMode dht.ModeOpt
	relays  []peer.AddrInfo
}

// planHost checks cfg and parses what it names (key, profile, peers,
// relays, interface addresses). A host made elsewhere (cfg.Host) turns the
// DHT and relays off in cfg.
func planHost(cfg *Config) (hostPlan, error) {
	var p hostPlan
	if len(cfg.PrivateKey) != ed25519.PrivateKeySize {
		return p, errors.New("p2ptransport: Config.PrivateKey must be an ed25519 private key")
	}
	p.log = cfg.Logger
	if p.log == nil {
		p.log = slog.Default()
	}
	p.log = p.log.With("component", "p2ptransport")
	var err error
	if p.prof, err = lookupProfile(cfg.Profile); err != nil {
		return p, err
	}
	p.statics = make([]*peer.AddrInfo, 0, len(cfg.StaticPeers))
	for _, s := range cfg.StaticPeers {
		ai, err := parsePeerAddr(s)
		if err != nil {
			return p, err
		}
		p.statics = append(p.statics, ai)
	}
	if p.priv, _, err = crypto.KeyPairFromStdKey(&cfg.PrivateKey); err != nil {
		return p, fmt.Errorf("p2ptransport: key: %w", err)
	}
	p.listen = cfg.ListenAddrs
	if len(p.listen) == 0 {
		p.listen = DefaultListenAddrs
	}
	if cfg.Host != nil {
		// A host made elsewhere (mocknet) has its own network: none of
		// the discovery or NAT machinery applies to it.
		id, err := peer.IDFromPrivateKey(p.priv)
		if err != nil {
			return p, fmt.Errorf("p2ptransport: key: %w", err)
		}
		if cfg.Host.ID() != id {
			return p, errors.New("p2ptransport: Config.Host's identity is not Config.PrivateKey's")
		}
		cfg.DHT, cfg.Relays, cfg.RelayService = false, nil, false
	}
	if cfg.DHT {
		if p.dhtMode, err = dhtModeOpt(cfg.DHTMode, p.prof); err != nil {
			return p, err
		}
	}
	if p.relays, err = parseRelays(cfg.Relays); err != nil {
		return p, err
	}
	if cfg.ifaddrs, err = newInterfaceAddrs(cfg.InterfaceAddrs); err != nil {
		return p, err
	}
	return p, nil
}

// startHost wraps h: it subscribes to connectedness events, listens for
// HTTP over streams, starts the DHT (before any connection, so every peer
// reaches it) and the event loops. On failure it closes h.
func startHost(cfg Config, plan hostPlan, h host.Host) (*Host, error) {
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("p2ptransport: subscribe: %w", err)
	}
	l, err := gostream.Listen(h, ProtocolID)
	if err != nil {
		_ = sub.Close()
		_ = h.Close()
		return nil, fmt.Errorf("p2ptransport: listen: %w", err)
	}
	hctx, cancel := context.WithCancel(context.Background())
	n := &Host{
		h:        h,
		log:      plan.log,
		ctx:      hctx,
		cancel:   cancel,
		listener: l,
		sub:      sub,
		events:   newPeerEvents(),
		ifaddrs:  cfg.ifaddrs,
		profile:  devprofile.Resolve(cfg.Profile),
	}
	cfg.ifaddrs.bind(h)
	n.rt = newRoundTripper(n)
	if cfg.DHT {
		if err := n.startDHT(plan.dhtMode, plan.prof, plan.statics); err != nil {
			cancel()
			_ = l.Close()
			_ = sub.Close()
			_ = h.Close()
			return nil, err
		}
	}
	n.wg.Add(2)
	go n.eventLoop()
	go func() {
		defer n.wg.Done()
		n.events.run(hctx.Done())
	}()
	n.watchReconnects()
	return n, nil
}

// connectStatics remembers the configured peers and dials each in the
// background.
func (n *Host) connectStatics(statics []*peer.AddrInfo) {
	for _, ai := range statics {
		n.remember(ai)
		n.goTracked(func() {
			cctx, cancel := context.WithTimeout(n.ctx, connectTimeout)
			defer cancel()
			if err := n.h.Connect(cctx, *ai); err != nil {
				n.log.Warn("static peer connect failed", "peer", ai.ID, "err", err)
				return
			}
			n.refreshDHT()
		})
	}
}

// startMDNS starts LAN discovery; a network without multicast leaves the
// host without it (logged), not failed.
func (n *Host) startMDNS() {
	svc := mdns.NewMdnsService(n.h, MDNSServiceName, mdnsNotifee{n})
	if err := svc.Start(); err != nil {
		_ = svc.Close()
		n.log.Warn("mDNS discovery unavailable", "err", err)
		return
	}
	n.mdns = svc
}

// PeerAddrServerName checks that addr is a multiaddr ending in /p2p/<peer
// ID> of an ed25519 peer (the form of StaticPeers, Relays and Connect) and
// returns that peer's server name. It works offline.
func PeerAddrServerName(addr string) (string, error) {
	ai, err := parsePeerAddr(addr)
	if err != nil {
		return "", err
	}
	return ServerNameFromPeer(ai.ID)
}

// parsePeerAddr parses a multiaddr ending in /p2p/<id> of an ed25519 peer.
func parsePeerAddr(s string) (*peer.AddrInfo, error) {
	ai, err := peer.AddrInfoFromString(s)
	if err != nil {
		return nil, fmt.Errorf("p2ptransport: peer address %q: %w", s, err)
	}
	if _, err := ServerNameFromPeer(ai.ID); err != nil {
		return nil, fmt.Errorf("p2ptransport: peer address %q: %w", s, err)
	}
	return ai, nil
}

// remember stores a peer's addresses permanently and protects it from
// connection trimming.
func (n *Host) remember(ai *peer.AddrInfo) {
	n.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.PermanentAddrTTL)
	n.h.ConnManager().Protect(ai.ID, "edgenode-static")
}

// Connect connects to a peer given as a multiaddr ending in /p2p/<peer ID>
// (for `edgenode peer add`). The address is remembered permanently and the
// peer is protected from connection trimming, even if this attempt fails.
func (n *Host) Connect(ctx context.Context, addr string) error {
	ai, err := parsePeerAddr(addr)
	if err != nil {
		return err
	}
	if ai.ID == n.h.ID() {
		return errors.New("p2ptransport: cannot connect to self")
	}
	n.remember(ai)
	if err := n.h.Connect(ctx, *ai); err != nil {
		return fmt.Errorf("p2ptransport: connect %s: %w", ai.ID, err)
	}
	n.refreshDHT()
	return nil
}

// ServerName is this node's Matrix server name.
func (n *Host) ServerName() string {
	s, _ := ServerNameFromPeer(n.h.ID()) // cannot fail: the key is ed25519
	return s
}

// ID is this node's libp2p peer ID.
func (n *Host) ID() peer.ID { return n.h.ID() }

// Profile is the device profile sizing the host (Config.Profile, or
// DefaultProfile if that was empty).
func (n *Host) Profile() string { return n.profile }

// Addrs are this node's listen multiaddrs, each ending in /p2p/<peer ID>,
// suitable for another node's StaticPeers or Connect.
func (n *Host) Addrs() []string {
	out := make([]string, 0, len(n.h.Addrs()))
	for _, a := range n.h.Addrs() {
		out = append(out, a.String()+"/p2p/"+n.h.ID().String())
	}
	return out
}

// LibP2PHost exposes the underlying libp2p host, for what this package
// does not wrap.
func (n *Host) LibP2PHost() host.Host { return n.h }

// Listener is a net.Listener that accepts federation HTTP connections: each
// accepted net.Conn is one inbound libp2p stream of ProtocolID. Serve it
// with a plain http.Server; use PeerServerName in handlers to learn the
// authenticated remote node. It is closed by Close.
func (n *Host) Listener() net.Listener { return n.listener }

// RoundTripper sends HTTP requests to other nodes over libp2p streams. The
// request's URL host is the target's server name (a port, if any, is
// ignored); any scheme (http, https, matrix-federation, matrix) is accepted
// and sent as plain HTTP inside the encrypted libp2p connection.
// Connections are kept alive and reused.
func (n *Host) RoundTripper() http.RoundTripper { return n.rt }

// Events delivers peer up/down events to one consumer. libp2p never waits
// for it: while the consumer is behind, a peer's events coalesce into its
// newest state, so no peer's latest state is lost. The channel is closed by
// Close.
func (n *Host) Events() <-chan PeerEvent { return n.events.out }

// Peers lists the connected ed25519 peers.
func (n *Host) Peers() []PeerInfo {
	var out []PeerInfo
	for _, p := range n.h.Network().Peers() {
		name, err := ServerNameFromPeer(p)
		if err != nil {
			continue
		}
		info := PeerInfo{ServerName: name}
		for _, c := range n.h.Network().ConnsToPeer(p) {
			info.Addrs = append(info.Addrs, c.RemoteMultiaddr().String())
		}
		out = append(out, info)
	}
	return out
}

// eventLoop turns connectedness changes into PeerEvents. It drains the
// event bus promptly and never blocks on the consumer.
func (n *Host) eventLoop() {
	defer n.wg.Done()
	up := make(map[peer.ID]bool)
	for ev := range n.sub.Out() {
		e := ev.(event.EvtPeerConnectednessChanged)
		isUp := e.Connectedness == network.Connected || e.Connectedness == network.Limited
		if up[e.Peer] == isUp {
			continue // e.g. Limited -> Connected
		}
		if isUp {
			up[e.Peer] = true
		} else {
			delete(up, e.Peer)
		}
		name, err := ServerNameFromPeer(e.Peer)
		if err != nil {
			continue // not an edgenode peer
		}
		n.events.push(PeerEvent{ServerName: name, Up: isUp})
	}
}

type mdnsNotifee struct{ n *Host }

// HandlePeerFound connects to a peer found on the LAN, in the background.
func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	n := m.n
	if ai.ID == n.h.ID() {
		return
	}
	if _, err := ServerNameFromPeer(ai.ID); err != nil {
		return
	}
	n.goTracked(func() {
		cctx, cancel := context.WithTimeout(n.ctx, connectTimeout)
		defer cancel()
		if err := n.h.Connect(cctx, ai); err != nil {
			n.log.Debug("mDNS peer connect failed", "peer", ai.ID, "err", err)
		}
	})
}

// goTracked runs f in a goroutine that Close waits for; after Close it does
// nothing.
func (n *Host) goTracked(f func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// Close stops discovery, the listener and the host. It is safe to call more
// than once.
func (n *Host) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		n.cancel()
		var errs []error
		if n.mdns != nil {
			errs = append(errs, n.mdns.Close())
		}
		if n.dht != nil {
			errs = append(errs, n.dht.Close())
		}
		errs = append(errs, n.listener.Close())
		n.rt.t.CloseIdleConnections()
		errs = append(errs, n.h.Close())
		errs = append(errs, n.sub.Close())
		n.wg.Wait()
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// newLibp2pHost creates the libp2p host of a Config without Host. Its
// parts are listed here as hostOptions (libp2phost.go); a new behaviour is
// one more option in the list.
func newLibp2pHost(cfg Config, prof profileLimits, priv crypto.PrivKey, listen []string, relays []peer.AddrInfo) (host.Host, error) {
	natOpts, err := natOptions(cfg, prof, relays)
	if err != nil {
		return nil, err
	}
	var o hostOptions
	for _, opt := range append([]hostOption{listenAddrs(listen...)}, natOpts...) {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("p2ptransport: libp2p: %w", err)
		}
	}
	rm, cm, err := prof.managers()
	if err != nil {
		return nil, err
	}
	o.addrsFactory = cfg.ifaddrs.factory // ifaddrs.go
	h, err := buildHost(priv, rm, cm, o) // closes rm and cm on error
	if err != nil {
		return nil, fmt.Errorf("p2ptransport: libp2p: %w", err)
	}
	return h, nil
}
