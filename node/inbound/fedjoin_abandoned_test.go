package inbound

import (
	"context"
	"testing"
	"time"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// TestAbandonedJoinDroppedAtStart: a remote join stopped after its chunked
// writes (a crash before its commit) and never retried leaves index entries
// of the room's remote members and servers; the node's next start removes
// them, and a join of the room then still succeeds.
func TestAbandonedJoinDroppedAtStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, b, cfg, alice, bob, roomID := joinCrashed(ctx, t, 5)

	left := func(n *Inbound) (pending, members, servers int) {
		t.Helper()
		err := n.DB.View(func(tx *kv.Txn) error {
			for _, u := range []string{alice, userID(a, "m0000"), userID(a, "m0004")} {
				if ok, err := tx.Has(core.MembershipKey(u, roomID)); err != nil {
					return err
				} else if ok {
					members++
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return countKeys(t, n, tJoinPending), members, countPrefix(t, n, core.RoomServerPrefix(roomID))
	}
	if p, m, s := left(b); p == 0 || m != 3 || s != 1 {
		t.Fatalf("after the chunks: %d pending lists, %d of 3 member entries, %d server counts; want some, 3, 1", p, m, s)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openInbound(t, cfg)
	defer b.Close()
	if p, m, s := left(b); p != 0 || m != 0 || s != 0 {
		t.Fatalf("after a restart: %d pending lists, %d member entries, %d server counts left; want none", p, m, s)
	}

	b.SetRemote(joinOnly{RemoteJoiner: directJoiner{joining: b, resident: a}})
	if _, err := b.Join(ctx, bob, "DEVbob", roomID); err != nil {
		t.Fatalf("join after the restart: %v", err)
	}
	if mi, err := b.Membership(ctx, roomID, userID(a, "m0004")); err != nil || mi.Membership != spec.Join {
		t.Fatalf("a member of the room on B after the join: %+v %v", mi, err)
	}
}
