package p2ptransport

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func TestNameMappingRoundTrip(t *testing.T) {
	priv := newKey(t)
	pub := priv.Public().(ed25519.PublicKey)
	lpub, err := crypto.UnmarshalEd25519PublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(lpub)
	if err != nil {
		t.Fatal(err)
	}
	name, err := ServerNameFromPeer(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(name) != 64 || name != strings.ToLower(name) {
		t.Fatalf("bad server name %q", name)
	}
	for i := range pub {
		if name[2*i:2*i+2] != hexByte(pub[i]) {
			t.Fatalf("server name %q is not the hex of the public key", name)
		}
	}
	back, err := PeerFromServerName(name)
	if err != nil {
		t.Fatal(err)
	}
	if back != id {
		t.Fatalf("round trip: got %s want %s", back, id)
	}
}

func hexByte(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

func TestNameMappingRejects(t *testing.T) {
	valid, err := ServerNameFromPeer(mustPeer(t, newKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"short", valid[:62]},
		{"long", valid + "00"},
		{"uppercase", strings.ToUpper(valid)},
		{"non-hex", "zz" + valid[2:]},
		{"with port", valid + ":8448"},
		{"dns name", "example.org"},
		{"peer id string", mustPeer(t, newKey(t)).String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := PeerFromServerName(tc.in); !errors.Is(err, ErrMalformedServerName) {
				t.Fatalf("PeerFromServerName(%q) = %v, want ErrMalformedServerName", tc.in, err)
			}
		})
	}

	// Non-ed25519 and malformed peer IDs.
	skSecp, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secpID, err := peer.IDFromPrivateKey(skSecp)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		id   peer.ID
	}{
		{"secp256k1", secpID},
		{"empty", ""},
		{"garbage", peer.ID("not a multihash")},
	} {
		t.Run("peer "+tc.name, func(t *testing.T) {
			if _, err := ServerNameFromPeer(tc.id); !errors.Is(err, ErrNotEd25519) {
				t.Fatalf("ServerNameFromPeer = %v, want ErrNotEd25519", err)
			}
		})
	}
}

func mustPeer(t *testing.T, priv ed25519.PrivateKey) peer.ID {
	t.Helper()
	pk, err := crypto.UnmarshalEd25519PublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestNewRejectsBadConfig(t *testing.T) {
	ctx := context.Background()
	if _, err := New(ctx, Config{}); err == nil {
		t.Fatal("New without key succeeded")
	}
	if _, err := New(ctx, Config{PrivateKey: newKey(t), Profile: "toaster"}); err == nil {
		t.Fatal("New with unknown profile succeeded")
	}
	if _, err := New(ctx, Config{PrivateKey: newKey(t), StaticPeers: []string{"/ip4/127.0.0.1/udp/1/quic-v1"}}); err == nil {
		t.Fatal("New with static peer lacking /p2p/ succeeded")
	}
}

func newTestHost(t *testing.T, profile string, static ...string) *Host {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := New(ctx, Config{
		PrivateKey:  newKey(t),
		ListenAddrs: []string{"/ip4/127.0.0.1/udp/0/quic-v1"},
		Profile:     profile,
		StaticPeers: static,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// waitEvent waits (bounded) for the given event, skipping others.
func waitEvent(t *testing.T, h *Host, want PeerEvent) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-h.Events():
			if !ok {
				t.Fatalf("events closed while waiting for %+v", want)
			}
			if ev == want {
				return
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %+v", want)
		}
	}
}

func TestHTTPOverLibp2pAndEvents(t *testing.T) {
	a := newTestHost(t, "phone")
	var accepted atomic.Int32

	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name, ok := PeerServerName(r)
			if !ok {
				http.Error(w, "no peer", http.StatusForbidden)
				return
			}
			// The RemoteAddr path (no context value) must agree.
			r2 := r.WithContext(context.Background())
			if n2, ok := PeerServerName(r2); !ok || n2 != name {
				http.Error(w, "RemoteAddr mismatch: "+r.RemoteAddr, http.StatusInternalServerError)
				return
			}
			if n, err := strconv.Atoi(r.URL.Query().Get("bytes")); err == nil {
				_, _ = w.Write(bytes.Repeat([]byte("x"), n))
				return
			}
			_, _ = io.WriteString(w, name+" "+r.URL.Path)
		}),
		ConnContext: ConnContext,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				accepted.Add(1)
			}
		},
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.Serve(a.Listener()) }()
	t.Cleanup(func() { _ = srv.Close() })

	b := newTestHost(t, "pi", a.Addrs()[0])

	// Static peer: both sides see the other come up.
	waitEvent(t, a, PeerEvent{ServerName: b.ServerName(), Up: true})
	waitEvent(t, b, PeerEvent{ServerName: a.ServerName(), Up: true})
	if ps := b.Peers(); len(ps) != 1 || ps[0].ServerName != a.ServerName() || len(ps[0].Addrs) == 0 {
		t.Fatalf("b.Peers() = %+v", ps)
	}

	client := &http.Client{Transport: b.RoundTripper(), Timeout: 10 * time.Second}
	for _, scheme := range []string{"http", "matrix-federation"} {
		resp, err := client.Get(scheme + "://" + a.ServerName() + "/x")
		if err != nil {
			t.Fatalf("%s GET: %v", scheme, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != b.ServerName()+" /x" {
			t.Fatalf("%s GET: %d %q, want 200 %q", scheme, resp.StatusCode, body, b.ServerName()+" /x")
		}
	}

	if n := accepted.Load(); n != 1 {
		t.Fatalf("server accepted %d streams for 2 requests, want 1 (keep-alive)", n)
	}

	// Response bodies are capped: a body of exactly the cap reads whole, one
	// byte more fails the read.
	b.rt.maxBody = 64 << 10
	for _, tc := range []struct {
		size    int
		wantErr bool
	}{{64 << 10, false}, {64<<10 + 1, true}} {
		resp, err := client.Get(fmt.Sprintf("http://%s/big?bytes=%d", a.ServerName(), tc.size))
		if err != nil {
			t.Fatalf("GET %d bytes: %v", tc.size, err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if tc.wantErr != errors.Is(err, errResponseTooLarge) || (!tc.wantErr && len(body) != tc.size) {
			t.Fatalf("reading a %d-byte body under a %d cap: %d bytes, %v", tc.size, b.rt.maxBody, len(body), err)
		}
	}

	// Unknown (well-formed) and malformed server names fail cleanly.
	unknown, _ := ServerNameFromPeer(mustPeer(t, newKey(t)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, host := range []string{unknown, "example.org"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/x", nil)
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			t.Fatalf("GET %s succeeded", host)
		}
	}

	// Closing B brings it down at A.
	if err := b.Close(); err != nil {
		t.Fatalf("b.Close: %v", err)
	}
	waitEvent(t, a, PeerEvent{ServerName: b.ServerName(), Up: false})
	if ps := a.Peers(); len(ps) != 0 {
		t.Fatalf("a.Peers() after close = %+v", ps)
	}
	// B's event channel is closed after Close.
	for range b.Events() {
	}
}

func TestPeerServerNameNotLibp2p(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	if _, ok := PeerServerName(r); ok {
		t.Fatal("PeerServerName accepted an ip:port RemoteAddr")
	}
	id := mustPeer(t, newKey(t))
	r.RemoteAddr = id.String()
	want, _ := ServerNameFromPeer(id)
	if got, ok := PeerServerName(r); !ok || got != want {
		t.Fatalf("PeerServerName = %q, %v; want %q", got, ok, want)
	}
}

func TestMDNSOptional(t *testing.T) {
	// Whether or not multicast works here, New must succeed and Close must
	// not hang.
	h, err := New(context.Background(), Config{
		PrivateKey:  newKey(t),
		ListenAddrs: []string{"/ip4/127.0.0.1/udp/0/quic-v1"},
		MDNS:        true,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestConnectRuntime(t *testing.T) {
	a := newTestHost(t, "server")
	b := newTestHost(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Connect(ctx, "/ip4/127.0.0.1/udp/1/quic-v1"); err == nil {
		t.Fatal("Connect without /p2p/ succeeded")
	}
	if err := b.Connect(ctx, b.Addrs()[0]); err == nil {
		t.Fatal("Connect to self succeeded")
	}
	if err := b.Connect(ctx, a.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, a, PeerEvent{ServerName: b.ServerName(), Up: true})
}

func TestProfileLimits(t *testing.T) {
	for name, want := range profiles {
		got := want.concrete().ToPartialLimitConfig().System
		if int64(got.Memory) != want.memory || int(got.FD) != want.fds ||
			int(got.Conns) != want.conns || int(got.Streams) != want.streams {
			t.Errorf("profile %s: system limits %+v, want %+v", name, got, want)
		}
	}
	if p, err := lookupProfile(""); err != nil || p != profiles[DefaultProfile] {
		t.Fatalf("empty profile: %+v %v", p, err)
	}
}

// TestPeerEventsCoalesce: with nobody reading, pushes never block and each
// peer's events coalesce into its newest state; once read, every peer's
// newest state arrives, oldest peer first, and nothing is left held.
func TestPeerEventsCoalesce(t *testing.T) {
	q := newPeerEvents()
	done := make(chan struct{})
	defer close(done)
	const peers, flaps = 100, 50
	for i := range flaps {
		for p := range peers {
			q.push(PeerEvent{ServerName: fmt.Sprint("peer", p), Up: i%2 == 0 || p%2 == 0})
		}
	}
	if n := q.held(); n != peers {
		t.Fatalf("%d peers held, want %d", n, peers)
	}
	go q.run(done)
	for p := range peers {
		ev := <-q.out
		want := PeerEvent{ServerName: fmt.Sprint("peer", p), Up: p%2 == 0}
		if ev != want {
			t.Fatalf("event %d: %+v, want %+v", p, ev, want)
		}
	}
	q.push(PeerEvent{ServerName: "late", Up: true})
	if ev := <-q.out; ev != (PeerEvent{ServerName: "late", Up: true}) {
		t.Fatalf("late event: %+v", ev)
	}
	if n := q.held(); n != 0 {
		t.Fatalf("%d peers still held after every event was read", n)
	}
}
