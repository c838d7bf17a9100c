package app

import (
	"context"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
)

// startClocked starts an app like startP2P, on clock.
func startClocked(t *testing.T, clock *testnet.Clock, peers []string) *App {
	t.Helper()
	cfg := loopbackConfig(t.TempDir(), peers)
	cfg.Node.Clock = clock.Now
	a, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { closeApp(t, a) })
	return a
}

// TestPresenceDecayOverFederation, over libp2p QUIC: when A's alice stops
// syncing, A takes her offline and B's bob sees it; when A goes quiet
// about her, B takes her offline itself after the federation timeout.
func TestPresenceDecayOverFederation(t *testing.T) {
	clockA, clockB := testnet.NewClock(time.Now()), testnet.NewClock(time.Now())
	a := startClocked(t, clockA, nil)
	b := startClocked(t, clockB, quicAddrs(a))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r := sharedRoom(ctx, t, a, b)
	alice := r.alice
	carol := testnet.Register(ctx, t, a.node, "carol")
	as := &syncer{t: t, app: a, token: alice.AccessToken}
	cs := &syncer{t: t, app: a, token: carol.AccessToken}
	bs := &syncer{t: t, app: b, token: r.bob.AccessToken}
	bs.once(ctx, 0)
	sees := func(what, presence string) {
		t.Helper()
		bs.until(ctx, what, func(s eduSync) bool {
			for _, ev := range s.Presence.Events {
				if ev.Sender == alice.UserID && ev.Content["presence"] == presence {
					return true
				}
			}
			return false
		})
	}

	as.once(ctx, 0)
	sees("alice online", node.PresenceOnline)
	// Her client stops; 31 seconds on, A's next sync (carol's) applies it.
	clockA.Advance(31 * time.Second)
	cs.once(ctx, 0)
	sees("alice offline, as A says", node.PresenceOffline)

	as.once(ctx, 0)
	sees("alice online again", node.PresenceOnline)
	// A's clock stands still, so A says nothing more; after 31 minutes B
	// no longer believes her online.
	clockB.Advance(31 * time.Minute)
	sees("alice offline, as B decides", node.PresenceOffline)
}
