package core

import (
	"context"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// TestRoomsByBump: a user's rooms come newest bump first; a state event
// that is no bump does not move a room; a kick is marked; forgetting a room
// drops it (from the cached list too); and an index from before (none) is
// built from the memberships, giving the same list.
func TestRoomsByBump(t *testing.T) {
	n := newTestNode(t)
	ctx := context.Background()
	alice, bob := session(n, "alice"), session(n, "bob")
	mk := func() string {
		id, err := n.CreateRoom(ctx, CreateRoomRequest{Creator: alice.UserID, DeviceID: alice.DeviceID, Preset: "public_chat"})
		if err != nil {
			t.Fatal(err)
		}
		membership(t, n, bob, id, bob.UserID, spec.Join)
		return id
	}
	a, b, c, d := mk(), mk(), mk(), mk()
	send(t, n, alice, a, "a moves to the top")
	sendState(t, n, alice, b, "m.room.topic", "", map[string]string{"topic": "no bump"})
	membership(t, n, alice, c, bob.UserID, spec.Leave) // a kick
	membership(t, n, bob, d, bob.UserID, spec.Leave)   // his own leave

	list := func() []RoomBump {
		t.Helper()
		got, err := n.RoomsByBump(ctx, bob.UserID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := list()
	var order []string
	for _, r := range got {
		order = append(order, r.RoomID)
	}
	// d's and c's leaves are the newest memberships; then a's message;
	// b's topic bumps nothing, so b stays behind a.
	want := []string{d, c, a, b}
	if len(order) != 4 || order[0] != want[0] || order[1] != want[1] || order[2] != want[2] || order[3] != want[3] {
		t.Fatalf("order %v, want %v", order, want)
	}
	if !got[1].Kicked || got[1].Membership != spec.Leave || got[0].Kicked || got[2].Membership != spec.Join {
		t.Errorf("entries: %+v", got)
	}

	if err := n.Forget(ctx, bob.UserID, d); err != nil {
		t.Fatal(err)
	}
	if got := list(); len(got) != 3 || got[0].RoomID != c {
		t.Errorf("after forgetting d: %+v", got)
	}

	// As if the index did not exist yet: it is built from the memberships.
	before := list()
	if err := n.DB.Update(func(tx *kv.Txn) error {
		for _, r := range []string{a, b, c, d} {
			if err := tx.Delete(userBumpRoomKey(bob.UserID, r)); err != nil {
				return err
			}
		}
		return tx.Delete(userBumpBuiltKey(bob.UserID))
	}); err != nil {
		t.Fatal(err)
	}
	n.UserBumps = newUserBumpCache(splitCacheBudget(n.Config().CacheBytes).bumps) // as after a restart
	after := list()
	if len(after) != len(before) {
		t.Fatalf("rebuilt: %+v, want %+v", after, before)
	}
	for i := range before {
		if after[i] != before[i] {
			t.Errorf("rebuilt entry %d: %+v, want %+v", i, after[i], before[i])
		}
	}
}
