package node

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// TestRestart closes a node and opens its data directory again: accounts,
// tokens, rooms, events, current state, the membership index, transaction
// IDs, the stream position and the server name are all still there.
func TestRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := testConfig(t.TempDir())
	n := openNode(t, cfg)
	alice := register(t, n, "alice")
	name := "Kept"
	roomID, err := n.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, Name: &name, RoomAliasName: "kept"})
	if err != nil {
		t.Fatal(err)
	}
	msgID, err := n.SendEvent(ctx, core.SendRequest{Sender: alice.UserID, DeviceID: alice.DeviceID, RoomID: roomID,
		Type: "m.room.message", Content: []byte(`{"body":"persisted"}`), TxnID: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	server, key, pos, head := n.ServerName(), n.PublicKey(), n.StreamPosition(), *roomHead(t, n, roomID)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n = openNode(t, cfg)
	t.Cleanup(func() { n.Close() })
	if n.ServerName() != server || !bytes.Equal(n.PublicKey(), key) {
		t.Fatalf("identity changed: %s -> %s", server, n.ServerName())
	}
	if n.StreamPosition() != pos {
		t.Fatalf("stream position %d -> %d", pos, n.StreamPosition())
	}
	dev, err := n.Authenticate(ctx, alice.AccessToken)
	if err != nil || dev.UserID != alice.UserID || dev.DeviceID != alice.DeviceID {
		t.Fatalf("token after restart: %+v, %v", dev, err)
	}
	if err := n.CheckPassword(ctx, alice.UserID, "pw-alice"); err != nil {
		t.Fatalf("password after restart: %v", err)
	}
	if got := *roomHead(t, n, roomID); got.State != head.State || !equalSets(got.Extremities, head.Extremities) || got.Depth != head.Depth {
		t.Fatalf("room head %+v -> %+v", head, got)
	}
	if got, err := n.ResolveAlias(ctx, n.AliasName("kept")); err != nil || got != roomID {
		t.Fatalf("alias after restart: %q, %v", got, err)
	}
	ev, err := n.Event(ctx, alice.UserID, msgID)
	if err != nil || string(ev.PDU.Content()) != `{"body":"persisted"}` || ev.Pos == 0 {
		t.Fatalf("event after restart: %v, %v", ev, err)
	}
	if c := stateContentOf(t, n, roomID, spec.MRoomName); c != `{"name":"Kept"}` {
		t.Fatalf("room name after restart: %s", c)
	}
	if rooms, err := n.JoinedRooms(ctx, alice.UserID); err != nil || len(rooms) != 1 || rooms[0] != roomID {
		t.Fatalf("joined rooms after restart: %v, %v", rooms, err)
	}
	// A retried transaction is still recognised.
	again, err := n.SendEvent(ctx, core.SendRequest{Sender: alice.UserID, DeviceID: alice.DeviceID, RoomID: roomID,
		Type: "m.room.message", Content: []byte(`{"body":"persisted"}`), TxnID: "t1"})
	if err != nil || again != msgID || n.StreamPosition() != pos {
		t.Fatalf("txn retry after restart: %q, %v, position %d", again, err, n.StreamPosition())
	}
	// The stream continues without a gap, and the room from its head.
	next := send(t, n, alice, roomID, "after restart")
	if n.StreamPosition() != pos+1 {
		t.Fatalf("stream position after a send: %d, want %d", n.StreamPosition(), pos+1)
	}
	page, err := n.RoomEvents(ctx, alice.UserID, roomID, core.Range{Backwards: true, Limit: 2})
	if err != nil || len(page.Events) != 2 || page.Events[0].PDU.EventID() != next || page.Events[1].PDU.EventID() != msgID {
		t.Fatalf("timeline after restart: %v, %v", page.Events, err)
	}
	if got := page.Events[0].PDU.PrevEventIDs(); len(got) != 1 || got[0] != msgID {
		t.Fatalf("new event's prev events %v, want [%s]", got, msgID)
	}
}

func stateContentOf(t *testing.T, n *Node, roomID, evType string) string {
	t.Helper()
	ev, err := n.CurrentStateEvent(context.Background(), roomID, evType, "")
	if err != nil {
		t.Fatal(err)
	}
	return string(ev.PDU.Content())
}

// TestCloseTwice: a second Close returns instead of waiting forever for room
// locks the first one holds.
func TestCloseTwice(t *testing.T) {
	n := openNode(t, testConfig(t.TempDir()))
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("second Close: %v", err)
		}
	case <-time.After(30 * time.Second): // a deadline for a hang, not a wait for an event
		t.Fatal("second Close hangs")
	}
}
