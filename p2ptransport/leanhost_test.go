package p2ptransport

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	manet "github.com/multiformats/go-multiaddr/net"
)

// The tests here compare the host built from parts (libp2phost.go) with
// the one go-libp2p's root package builds from the options the host used
// before. Importing the root package in a test is harmless: tests are not
// linked into the binary.

// TestServiceLimitsAsLibp2p: every profile's resource limits are what
// libp2p.SetDefaultServiceLimits gave them.
func TestServiceLimitsAsLibp2p(t *testing.T) {
	for name, p := range profiles {
		scaling := rcmgr.DefaultLimits
		libp2p.SetDefaultServiceLimits(&scaling)
		want := scaling.Scale(p.memory, p.fds)
		got := p.concrete()
		wantFull := p.concreteFrom(want)
		if !reflect.DeepEqual(got, wantFull) {
			t.Errorf("profile %s: limits differ from libp2p's:\n got %+v\nwant %+v", name,
				got.ToPartialLimitConfig(), wantFull.ToPartialLimitConfig())
		}
	}
}

// oldLibp2pHost builds a host as newLibp2pHost did with go-libp2p's root
// package (and its defaults: yamux, relay transport, black-hole counters).
func oldLibp2pHost(t *testing.T, cfg Config) host.Host {
	t.Helper()
	prof, err := lookupProfile(cfg.Profile)
	if err != nil {
		t.Fatal(err)
	}
	relays, err := parseRelays(cfg.Relays)
	if err != nil {
		t.Fatal(err)
	}
	priv, _, err := crypto.KeyPairFromStdKey(&cfg.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	rm, cm, err := prof.managers()
	if err != nil {
		t.Fatal(err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(priv),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.Transport(quic.NewTransport),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.DisableMetrics(),
		libp2p.EnableAutoNATv2(),
		libp2p.EnableHolePunching(),
	}
	switch {
	case cfg.Reachability == ReachabilityPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	case cfg.Reachability == ReachabilityPublic, cfg.Reachability == "" && cfg.RelayService:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	}
	if len(relays) > 0 {
		opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(relays, autorelay.WithBackoff(relayBackoff)))
	}
	if cfg.RelayService {
		opts = append(opts, libp2p.EnableNATService(), libp2p.EnableRelayService(relayv2.WithResources(prof.relayResources())))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// TestLeanHostServesAsBefore: for each NAT configuration, the host serves
// the protocols the root package's host served (identify, ping, AutoNAT
// v1 and v2, hole punching, the relay's stop and, on a relay, hop
// protocol), and listens on TCP and QUIC.
func TestLeanHostServesAsBefore(t *testing.T) {
	relay := newHostWith(t, Config{Profile: "pi"})
	for name, cfg := range map[string]Config{
		"auto":                 {Profile: "phone"},
		"private, with relays": {Profile: "phone", Reachability: ReachabilityPrivate, Relays: relay.Addrs()[:1]},
		"public":               {Profile: "pi", Reachability: ReachabilityPublic},
		"relay service":        {Profile: "pi", RelayService: true},
	} {
		t.Run(name, func(t *testing.T) {
			cfg.Logger = discardLogger()
			cfg.ListenAddrs = []string{"/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"}
			cfg.PrivateKey = newKey(t)
			old := oldLibp2pHost(t, cfg)
			cfg.PrivateKey = newKey(t)
			n := newHostWithConfig(t, cfg)
			// Some services register once they learn the reachability (the
			// relay service) or after start: wait, bounded, for equality.
			// Less federation HTTP, which New adds to the libp2p host.
			sorted := func(h host.Host) []protocol.ID {
				p := slices.DeleteFunc(h.Mux().Protocols(), func(p protocol.ID) bool { return p == ProtocolID })
				slices.Sort(p)
				return p
			}
			deadline := time.Now().Add(setupTimeout)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for !slices.Equal(sorted(n.h), sorted(old)) {
				if time.Now().After(deadline) {
					t.Fatalf("protocols differ:\n lean %v\n root %v", sorted(n.h), sorted(old))
				}
				<-tick.C
			}
			if len(n.h.Network().ListenAddresses()) != len(old.Network().ListenAddresses()) {
				t.Fatalf("listen addresses: lean %v, root %v", n.h.Network().ListenAddresses(), old.Network().ListenAddresses())
			}
		})
	}
}

// newHostWithConfig starts a Host of cfg as given, closed with the test.
func newHostWithConfig(t *testing.T, cfg Config) *Host {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	h, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestLeanHostCloseReleasesPorts: Close releases the host's TCP and UDP
// (QUIC) sockets, so a restarted node gets its ports back.
func TestLeanHostCloseReleasesPorts(t *testing.T) {
	cfg := Config{Profile: "phone", ListenAddrs: []string{"/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"}, Logger: discardLogger()}
	cfg.PrivateKey = newKey(t)
	first := newHostWithConfig(t, cfg)
	// The socket addresses, less the relay transport's /p2p-circuit.
	listening := func(h *Host) []string {
		var out []string
		for _, a := range h.h.Network().ListenAddresses() {
			if _, err := manet.ToNetAddr(a); err == nil || strings.Contains(a.String(), "/quic-v1") {
				out = append(out, a.String())
			}
		}
		slices.Sort(out)
		return out
	}
	addrs := listening(first)
	if len(addrs) != 2 {
		t.Fatalf("listening on %v, want a TCP and a QUIC address", addrs)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.ListenAddrs = addrs
	second := newHostWithConfig(t, cfg)
	if got := listening(second); !slices.Equal(got, addrs) {
		t.Fatalf("after restart listening on %v, want %v", got, addrs)
	}
}
