package node

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node/core"
)

// Helpers shared by the account data, receipt, typing and presence tests.

// fastNode is a test node without fsync: these tests commit many small
// writes and check their semantics, not their durability.
func fastNode(t testing.TB) *Node {
	t.Helper()
	return newTestNodeWith(t, func(c *core.Config) { c.NoSyncWrites = true })
}

// sharedRoom creates a public room as creator and joins the others to it.
func sharedRoom(t testing.TB, n *Node, creator Session, joiners ...Session) string {
	t.Helper()
	roomID, err := n.CreateRoom(context.Background(), core.CreateRoomRequest{Creator: creator.UserID, Preset: core.PresetPublicChat})
	if err != nil {
		t.Fatalf("create room: %v", err)
	}
	for _, s := range joiners {
		membership(t, n, s, roomID, s.UserID, "join")
	}
	return roomID
}

// listeners starts one Listener per user, closed when the test ends. Take
// them before the change whose wake-ups a test checks.
func listeners(t testing.TB, n *Node, users ...Session) map[string]*core.Listener {
	t.Helper()
	out := map[string]*core.Listener{}
	for _, u := range users {
		l := n.Listen(u.UserID)
		t.Cleanup(l.Close)
		out[u.UserID] = l
	}
	return out
}

// checkWoken fails the test unless exactly the users in want were woken
// since their listeners were taken (or last woke). A wanted wake-up may take
// long on a slow machine; an unwanted one is looked for briefly, as by then
// the wanted ones have arrived and any other would have come with them.
func checkWoken(t testing.TB, ls map[string]*core.Listener, want ...Session) {
	t.Helper()
	wanted := map[string]bool{}
	for _, s := range want {
		wanted[s.UserID] = true
		if !wakes(ls[s.UserID], 30*time.Second) {
			t.Errorf("%s was not woken", s.UserID)
		}
	}
	for u, l := range ls {
		if !wanted[u] && wakes(l, 20*time.Millisecond) {
			t.Errorf("%s was woken but should not have been", u)
		}
	}
}

// fakeClock is a settable time source to put in Node.now before the node
// is used concurrently.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
