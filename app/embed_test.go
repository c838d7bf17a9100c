package app

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/appinside"
	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/p2ptransport"
)

// TestAppKeepsItsInsides: an embedder reaches the node, the libp2p host
// and the federation client only through App's methods, so App has no
// exported field, and Inside opens only to this module's key.
func TestAppKeepsItsInsides(t *testing.T) {
	typ := reflect.TypeOf(App{})
	for i := range typ.NumField() {
		if f := typ.Field(i); f.IsExported() {
			t.Errorf("App exports field %s %s; offer what an embedder needs as a method", f.Name, f.Type)
		}
	}
	a := &App{node: &node.Node{}}
	if a.Inside(appinside.Key{}) != nil {
		t.Error("Inside opened to a zero key")
	}
	if a.Inside(appinside.Grant()) != a.node {
		t.Error("Inside did not open to a granted key")
	}
}

// TestEmbeddingSurface: what the command and the mobile facade ask of an
// App, on two federating apps and one without federation.
func TestEmbeddingSurface(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, b := startP2P(t, nil), startP2P(t, nil)
	if a.ServerName() == "" || a.ServerName() == b.ServerName() {
		t.Fatalf("server names %q, %q", a.ServerName(), b.ServerName())
	}
	if len(a.PeerAddrs()) == 0 {
		t.Fatal("no peer addresses")
	}
	if err := a.Connect(ctx, quicAddrs(b)[0]); err != nil {
		t.Fatalf("connect: %v", err)
	}
	if peers := a.Peers(); !slices.ContainsFunc(peers, func(p p2ptransport.PeerInfo) bool { return p.ServerName == b.ServerName() }) {
		t.Fatalf("peers after connect: %+v, want %s", peers, b.ServerName())
	}
	a.Suspend()
	a.Resume()

	s, err := a.CreateAccount(ctx, "alice", "pw-alice", "phone")
	if err != nil || s.UserID != "@alice:"+a.ServerName() || s.AccessToken == "" || s.DeviceID == "" {
		t.Fatalf("create account: %+v, %v", s, err)
	}
	if who := mustCall(t, a, "GET", "/_matrix/client/v3/account/whoami", s.AccessToken, nil); who["user_id"] != s.UserID {
		t.Fatalf("whoami with the new session: %v", who)
	}
	l, err := a.Login(ctx, "alice", "pw-alice", "", "laptop")
	if err != nil || l.UserID != s.UserID || l.DeviceID == s.DeviceID {
		t.Fatalf("login: %+v, %v", l, err)
	}
	if _, err := a.Login(ctx, "alice", "wrong", "", ""); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}

	solo, err := Start(ctx, Config{ClientListen: "127.0.0.1:0", Node: testnet.FastNodeConfig(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	defer closeApp(t, solo)
	if err := solo.Connect(ctx, quicAddrs(b)[0]); !errors.Is(err, ErrNoFederation) {
		t.Errorf("connect without federation: %v, want ErrNoFederation", err)
	}
	if solo.PeerAddrs() != nil || solo.Peers() != nil {
		t.Errorf("without federation: addrs %v, peers %v", solo.PeerAddrs(), solo.Peers())
	}
	solo.Suspend()
	solo.Resume()
}
