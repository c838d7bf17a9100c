package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/federation"
	"github.com/edgenode/edgenode/node"
)

// startP2P starts an app with federation over libp2p QUIC on loopback.
func startP2P(t *testing.T, peers []string) *App {
	t.Helper()
	a, err := Start(context.Background(), Config{
		ClientListen: "127.0.0.1:0",
		Node: node.Config{
			DataDir: t.TempDir(), StorageProfile: "phone", NoSyncWrites: true,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		},
		P2P: &P2PConfig{ListenAddrs: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}, StaticPeers: peers},
	})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return a
}

// TestFederationOverLibp2p runs the whole chain: B signs a federation
// request, it travels over a real libp2p QUIC connection, A's handler checks
// the X-Matrix signature against the key in B's server name and that B is
// the authenticated peer, and answers from A's node.
func TestFederationOverLibp2p(t *testing.T) {
	a := startP2P(t, nil)
	var quic []string
	for _, addr := range a.P2P.Addrs() {
		if strings.Contains(addr, "/quic-v1/") {
			quic = append(quic, addr)
		}
	}
	b := startP2P(t, quic)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice, err := a.Node.Register(ctx, node.RegisterRequest{Localpart: "alice", Admin: true, InhibitLogin: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Federation.QueryProfile(ctx, a.Node.ServerName(), alice.UserID, "")
	if err != nil {
		t.Fatalf("B queries A over libp2p: %v", err)
	}
	if p.DisplayName != "alice" {
		t.Fatalf("profile %+v, want displayname alice", p)
	}
	_, err = b.Federation.QueryProfile(ctx, a.Node.ServerName(), a.Node.UserID("nobody"), "")
	var re *federation.RemoteError
	if !errors.As(err, &re) || re.Code != "M_NOT_FOUND" {
		t.Fatalf("profile of an unknown user: %v, want the remote's M_NOT_FOUND", err)
	}
}
