package p2ptransport

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Generous bounds: the tests share a slow 2-core machine.
const (
	setupTimeout   = 30 * time.Second
	requestTimeout = 60 * time.Second
)

// newHostWith starts a host on loopback QUIC with cfg's other settings.
func newHostWith(t *testing.T, cfg Config) *Host {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	cfg.PrivateKey = newKey(t)
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/udp/0/quic-v1"}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// serveEcho serves, on h's Listener, handlers answering "<caller> <path>".
func serveEcho(t *testing.T, h *Host) {
	t.Helper()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name, ok := PeerServerName(r)
			if !ok {
				http.Error(w, "no peer", http.StatusForbidden)
				return
			}
			_, _ = io.WriteString(w, name+" "+r.URL.Path)
		}),
		ConnContext:       ConnContext,
		ReadHeaderTimeout: 30 * time.Second,
	}
	go func() { _ = srv.Serve(h.Listener()) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// getVia sends GET matrix://<to>/path through from's RoundTripper and checks
// the echo.
func getVia(t *testing.T, from *Host, to, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "matrix://"+to+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: from.RoundTripper()}).Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", to, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if want := from.ServerName() + " " + path; resp.StatusCode != http.StatusOK || string(body) != want {
		t.Fatalf("GET %s%s: %d %q, want 200 %q", to, path, resp.StatusCode, body, want)
	}
}

// waitUntil polls cond (cheap, in-memory checks of library state that
// offers no notification) until it holds, failing after a bounded wait.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(setupTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		<-tick.C
	}
}

func TestDHTFindsPeerByServerName(t *testing.T) {
	b := newHostWith(t, Config{Profile: "pi", DHT: true}) // DHT server by profile
	if b.dht.Mode() != dht.ModeServer {
		t.Fatalf("pi profile: DHT mode %v, want server", b.dht.Mode())
	}
	a := newHostWith(t, Config{Profile: "phone", DHT: true, StaticPeers: b.Addrs()})
	serveEcho(t, a)
	c := newHostWith(t, Config{Profile: "phone", DHT: true, StaticPeers: b.Addrs()})
	if c.dht.Mode() != dht.ModeClient {
		t.Fatalf("phone profile: DHT mode %v, want client", c.dht.Mode())
	}

	waitEvent(t, b, PeerEvent{ServerName: a.ServerName(), Up: true})
	// B can only tell others where A is once identify gave it A's listen
	// addresses (an inbound connection alone records none).
	waitUntil(t, "B knows A's addresses", func() bool { return len(b.h.Peerstore().Addrs(a.ID())) > 0 })
	waitEvent(t, c, PeerEvent{ServerName: b.ServerName(), Up: true})
	// C can only ask B once B is in its routing table (after identify
	// shows B speaks the DHT protocol).
	waitUntil(t, "B is in C's routing table", func() bool { return c.dht.RoutingTable().Find(b.ID()) != "" })

	if c.connected(a.ID()) || len(c.h.Peerstore().Addrs(a.ID())) != 0 {
		t.Fatal("C knew A's address before the lookup")
	}
	getVia(t, c, a.ServerName(), "/_matrix/federation/v1/version")
	if !c.connected(a.ID()) {
		t.Fatal("C is not connected to A after the request")
	}

	// D was given a stale address for A (a port nobody listens on): the
	// dial fails, D looks A up and retries.
	stale := "/ip4/127.0.0.1/tcp/1/p2p/" + a.ID().String()
	d := newHostWith(t, Config{Profile: "phone", DHT: true, StaticPeers: []string{b.Addrs()[0], stale}})
	waitUntil(t, "B is in D's routing table", func() bool { return d.dht.RoutingTable().Find(b.ID()) != "" })
	getVia(t, d, a.ServerName(), "/_matrix/federation/v1/version")
}

func TestDHTOffNoAddressFailsFast(t *testing.T) {
	a := newHostWith(t, Config{Profile: "phone"})
	b := newHostWith(t, Config{Profile: "phone"})
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "matrix://"+a.ServerName()+"/x", nil)
	resp, err := (&http.Client{Transport: b.RoundTripper()}).Do(req)
	if err == nil {
		_ = resp.Body.Close()
		t.Fatal("GET without any address succeeded")
	}
	if !strings.Contains(err.Error(), "DHT is off") {
		t.Fatalf("error %v does not say the DHT is off", err)
	}
}

func TestBadNATConfig(t *testing.T) {
	ctx := context.Background()
	for name, cfg := range map[string]Config{
		"dht mode":     {DHT: true, DHTMode: "sometimes"},
		"reachability": {Reachability: "maybe"},
		"relay no id":  {Relays: []string{"/ip4/127.0.0.1/udp/1/quic-v1"}},
	} {
		cfg.PrivateKey = newKey(t)
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/udp/0/quic-v1"}
		if h, err := New(ctx, cfg); err == nil {
			_ = h.Close()
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// circuitHop is the circuit relay v2 protocol a relay serves.
const circuitHop protocol.ID = "/libp2p/circuit/relay/0.2.0/hop"

func TestHTTPOverRelay(t *testing.T) {
	r := newHostWith(t, Config{Profile: "pi", RelayService: true})
	// The relay service starts in the background once the node counts as
	// public (RelayService implies it).
	waitUntil(t, "R serves the relay protocol", func() bool { return slices.Contains(r.h.Mux().Protocols(), circuitHop) })

	// A is behind "NAT": it reserves a slot on R, its static relay.
	a := newHostWith(t, Config{Profile: "phone", Relays: r.Addrs()[:1], Reachability: ReachabilityPrivate})
	serveEcho(t, a)
	// A's relay addresses stay empty on loopback (autorelay advertises
	// only routable relay addresses), so watch R grant the reservation: it
	// tags the reserving peer in its connection manager.
	waitUntil(t, "R holds a reservation for A", func() bool {
		info := r.h.ConnManager().GetTagInfo(a.ID())
		return info != nil && info.Tags["relay-reservation"] > 0
	})

	// B knows A only by its relayed address.
	circuit := r.Addrs()[0] + "/p2p-circuit/p2p/" + a.ID().String()
	b := newHostWith(t, Config{Profile: "phone", StaticPeers: []string{circuit}})
	getVia(t, b, a.ServerName(), "/_matrix/federation/v1/send/1")

	conns := b.h.Network().ConnsToPeer(a.ID())
	if len(conns) == 0 {
		t.Fatal("B has no connection to A")
	}
	for _, c := range conns {
		if !c.Stat().Limited {
			t.Fatalf("B reached A over %s, not only over the relay", c.RemoteMultiaddr())
		}
	}
	if got := b.h.Network().Connectedness(a.ID()); got != network.Limited {
		t.Fatalf("B's connectedness to A: %v, want Limited", got)
	}
}

// Hole punching (DCUtR) is enabled on every host but not exercised here: on
// loopback a host never learns a public address, and libp2p's hole punching
// service waits for one before it acts.

func TestProfileDHTAndRelayDefaults(t *testing.T) {
	for name, want := range map[string]dht.ModeOpt{"phone": dht.ModeClient, "pi": dht.ModeServer, "server": dht.ModeServer} {
		prof, _ := lookupProfile(name)
		if got, err := dhtModeOpt("", prof); err != nil || got != want {
			t.Errorf("profile %s: DHT mode %v, %v; want %v", name, got, err, want)
		}
		if got, err := dhtModeOpt(DHTModeAuto, prof); err != nil || got != dht.ModeAuto {
			t.Errorf("profile %s, explicit auto: %v, %v", name, got, err)
		}
		rc := prof.relayResources()
		if rc.MaxReservations != prof.relayRsvps || rc.MaxCircuits != prof.relayCircuits ||
			rc.MaxReservationsPerIP > prof.relayRsvps || rc.Limit == nil || rc.Limit.Data != prof.relayDataPerDir {
			t.Errorf("profile %s: relay resources %+v", name, rc)
		}
	}
	pi, _ := lookupProfile("pi")
	if pi.relayRsvps > 64 || pi.dhtBucketSize > 20 {
		t.Errorf("pi profile is not sized for a Pi: %+v", pi)
	}
}
