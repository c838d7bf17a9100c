package p2ptransport

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestSuspendResume: Suspend closes connections to unprotected peers (found
// by discovery, or dialling in) and keeps protected ones; Resume redials a
// protected peer that dropped meanwhile.
func TestSuspendResume(t *testing.T) {
	a := newHostWith(t, Config{MDNS: true}) // mDNS may or may not work here; either is fine
	kept := newHostWith(t, Config{})
	stranger := newHostWith(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := a.Connect(ctx, kept.Addrs()[0]); err != nil { // protected
		t.Fatal(err)
	}
	// An unprotected connection, as discovery or an inbound dial makes.
	if err := stranger.LibP2PHost().Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.LibP2PHost().Addrs()}); err != nil {
		t.Fatal(err)
	}
	connected := func(p peer.ID) bool { return a.LibP2PHost().Network().Connectedness(p) == network.Connected }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(setupTimeout)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatal("timed out waiting until", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("both peers are connected", func() bool { return connected(kept.ID()) && connected(stranger.ID()) })

	a.Suspend()
	a.Suspend() // idempotent
	if !a.Suspended() {
		t.Fatal("not suspended")
	}
	waitFor("the stranger is disconnected", func() bool { return !connected(stranger.ID()) })
	if !connected(kept.ID()) {
		t.Fatal("Suspend dropped a protected peer")
	}
	// The protected peer drops while the app sleeps; Resume dials it again.
	if err := a.LibP2PHost().Network().ClosePeer(kept.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor("the kept peer is disconnected", func() bool { return !connected(kept.ID()) })
	a.Resume()
	if a.Suspended() {
		t.Fatal("still suspended")
	}
	waitFor("the kept peer is connected again", func() bool { return connected(kept.ID()) })

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a.Suspend() // after Close: a no-op, not a panic
	a.Resume()
}
