package p2ptransport

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// mockHost starts a Host on a mocknet peer made with a fresh key.
func mockHost(t *testing.T, mn mocknet.Mocknet, n int) *Host {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sk, _, err := crypto.KeyPairFromStdKey(&priv)
	if err != nil {
		t.Fatal(err)
	}
	h, err := mn.AddPeer(sk, ma.StringCast(fmt.Sprintf("/ip4/10.0.0.%d/tcp/4001", n)))
	if err != nil {
		t.Fatal(err)
	}
	host, err := New(context.Background(), Config{PrivateKey: priv, Host: h, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("New with a given host: %v", err)
	}
	t.Cleanup(func() { _ = host.Close() })
	return host
}

// TestGivenHost: a Host wrapping a mocknet host serves federation HTTP over
// gostream to another one, and reports the peer coming up.
func TestGivenHost(t *testing.T) {
	mn := mocknet.New()
	t.Cleanup(func() { _ = mn.Close() })
	a, b := mockHost(t, mn, 1), mockHost(t, mn, 2)
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	// Mocknet has no discovery: connect as the simulation does.
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, _ := PeerServerName(r)
		_, _ = io.WriteString(w, name)
	}), ConnContext: ConnContext}
	go func() { _ = srv.Serve(a.Listener()) }()
	t.Cleanup(func() { _ = srv.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "matrix://"+a.ServerName()+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := b.RoundTripper().RoundTrip(req)
	if err != nil {
		t.Fatalf("request over mocknet: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != b.ServerName() {
		t.Fatalf("server saw caller %q, want %q", body, b.ServerName())
	}
	select {
	case ev := <-a.Events():
		if !ev.Up || ev.ServerName != b.ServerName() {
			t.Fatalf("event %+v, want %s up", ev, b.ServerName())
		}
	case <-ctx.Done():
		t.Fatal("no peer-up event")
	}
}

// TestGivenHostKeyMismatch: a given host with another identity is refused.
func TestGivenHostKeyMismatch(t *testing.T) {
	mn := mocknet.New()
	t.Cleanup(func() { _ = mn.Close() })
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := New(context.Background(), Config{PrivateKey: priv, Host: h}); err == nil {
		t.Fatal("a host with another key was accepted")
	}
}
