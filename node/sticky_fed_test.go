package node

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// TestStickyFedQueueKeepsSticky: when the cap drops a destination's oldest
// entries, unexpired sticky events stay (in order, ahead of the newest
// others); once expired they are dropped like any event.
func TestStickyFedQueueKeepsSticky(t *testing.T) {
	n := fastNode(t)
	clock := stickyClock(n)
	n.setFedQueueCap(3)
	r := newRemoteServer(t)
	d, _ := roomWithRemoteMember(t, n, r)
	alice := session(n, "alice")
	s1 := sendSticky(t, n, alice, d.roomID, "s1", 600_000)
	var ms []string
	for i := range 3 {
		ms = append(ms, send(t, n, alice, d.roomID, "m"+string(rune('0'+i))))
	}
	s2 := sendSticky(t, n, alice, d.roomID, "s2", 60_000)
	for i := 3; i < 6; i++ {
		ms = append(ms, send(t, n, alice, d.roomID, "m"+string(rune('0'+i))))
	}
	if got, want := pendingIDs(t, n, r.name), []string{s1, s2, ms[5]}; !slices.Equal(got, want) {
		t.Fatalf("queued %v, want the sticky events and the newest message %v", got, want)
	}
	// s2 expires: the next overflow may drop it, never s1.
	clock.advance(2 * time.Minute)
	m6 := send(t, n, alice, d.roomID, "m6")
	if got, want := pendingIDs(t, n, r.name), []string{s1, ms[5], m6}; !slices.Equal(got, want) {
		t.Fatalf("after s2 expired: queued %v, want %v", got, want)
	}
}

// TestStickyPushToNewServer: when a server's first member joins, the
// commit queues for it this server's unexpired sticky events of the room,
// oldest first, after the join; not remote users' ones, not expired ones,
// and nothing again when a second member of that server joins.
func TestStickyPushToNewServer(t *testing.T) {
	ctx := context.Background()
	n := fastNode(t)
	clock := stickyClock(n)
	other, joiner := newRemoteServer(t), newRemoteServer(t)
	d, x := roomWithRemoteMember(t, n, other)
	d.ts = clock.now()
	alice := session(n, "alice")
	long1 := sendSticky(t, n, alice, d.roomID, "long1", 600_000)
	sendSticky(t, n, alice, d.roomID, "short", 60_000)
	plain := send(t, n, alice, d.roomID, "plain")
	long2 := sendSticky(t, n, alice, d.roomID, "long2", 600_000)
	// x's sticky event as the index holds it (the push reads only the
	// index): a remote user's, never pushed by this server.
	plainPos := storedRecord(t, n, plain).Pos
	if _, err := n.Stream.Commit(0, func(tx *kv.Txn, _ uint64) error {
		rec := stickyRecord{RoomID: d.roomID, EventID: plain, Sender: x, EndMS: clock.now().Add(time.Hour).UnixMilli(), Pos: plainPos}
		return setSticky(tx, stickyKey(d.roomID, plainPos), rec, stickyExpiryKey(rec.EndMS, stickyKindRoom, d.roomID, plainPos))
	}); err != nil {
		t.Fatal(err)
	}
	clock.advance(2 * time.Minute) // "short" expires

	member := map[string]any{"membership": "join"}
	joinAs := func(name, userID string) uint64 {
		t.Helper()
		d.buildAs(joiner, name, dagEvent{Sender: userID, Type: spec.MRoomMember, StateKey: &userID, Content: member,
			Prev: roomHead(t, n, d.roomID).Extremities, Auth: []string{"C", "J", "P"}})
		d.accept(n, name)
		return storedRecord(t, n, d.id(name)).Pos
	}
	joinPos := joinAs("Mz", "@z:"+joiner.name)
	ids, _, upTo, err := n.PendingPDUs(ctx, joiner.name, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{long1, long2}; !slices.Equal(ids, want) {
		t.Fatalf("pushed %v, want this server's unexpired sticky events %v", ids, want)
	}
	if upTo <= joinPos {
		t.Errorf("pushed at positions up to %d, not after the join at %d", upTo, joinPos)
	}
	if got := pendingIDs(t, n, other.name); len(got) != 4 {
		t.Errorf("the already joined server has %d queued, want the 4 sent (nothing pushed again)", len(got))
	}

	// A second member of the same server: nothing more.
	joinAs("Mz2", "@z2:"+joiner.name)
	later := send(t, n, alice, d.roomID, "later")
	if got, want := pendingIDs(t, n, joiner.name), []string{long1, long2, later}; !slices.Equal(got, want) {
		t.Fatalf("after a second member joined: %v, want %v", got, want)
	}
}
