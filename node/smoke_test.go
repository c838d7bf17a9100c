package node

import (
	"context"
	"errors"
	"testing"

	"github.com/edgenode/edgenode/node/core"
)

func TestSmokeRoomLifecycle(t *testing.T) {
	ctx := context.Background()
	n := newTestNode(t)
	alice := register(t, n, "alice")
	bob := register(t, n, "bob")
	name := "Room"
	roomID, err := n.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, Name: &name, Preset: core.PresetPublicChat})
	if err != nil {
		t.Fatal(err)
	}
	send(t, n, alice, roomID, "one")
	if _, err := n.SendEvent(ctx, core.SendRequest{Sender: bob.UserID, RoomID: roomID, Type: "m.room.message", Content: []byte(`{"body":"x"}`)}); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("non-member send: got %v, want ErrForbidden", err)
	}
	if _, err := n.Join(ctx, bob.UserID, bob.DeviceID, roomID); err != nil {
		t.Fatal(err)
	}
	send(t, n, bob, roomID, "two")
	page, err := n.RoomEvents(ctx, bob.UserID, roomID, core.Range{Backwards: true, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Events {
		t.Logf("%d %s %s %s", e.Pos, e.PDU.Type(), e.PDU.SenderID(), e.PDU.Content())
	}
	if len(page.Events) != 10 {
		t.Fatalf("got %d events", len(page.Events))
	}
}
