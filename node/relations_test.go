package node

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/relations"
)

// threadOf returns the root's m.thread aggregation as alice is served it
// (nil for none) and the room's thread roots.
func threadOf(t *testing.T, n *Node, userID, roomID, root string) (map[string]any, []string) {
	t.Helper()
	ctx := context.Background()
	ev, err := n.Event(ctx, userID, root)
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Bundle(ctx, userID, []*core.Event{ev})
	if err != nil {
		t.Fatal(err)
	}
	page, err := n.ThreadsPage(ctx, relations.ThreadsQuery{UserID: userID, RoomID: roomID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var roots []string
	for _, r := range page.Roots {
		roots = append(roots, r.PDU.EventID())
	}
	th, _ := b[root]["m.thread"].(map[string]any)
	return th, roots
}

// TestRelationsIndexInBatchAndRestart: a thread reply and its redaction
// committed in one batch leave nothing behind (the indexer applies the
// batch's events in order), and the index written by commits is there
// after a restart.
func TestRelationsIndexInBatchAndRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := testConfig(t.TempDir())
	n := openNode(t, cfg)
	alice := session(n, "alice")
	roomID, err := n.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPrivateChat})
	if err != nil {
		t.Fatal(err)
	}
	root := send(t, n, alice, roomID, "root")
	reply := func(body string) core.SendRequest {
		return core.SendRequest{Sender: alice.UserID, RoomID: roomID, Type: "m.room.message",
			Content: json.RawMessage(fmt.Sprintf(`{"msgtype":"m.text","body":%q,"m.relates_to":{"rel_type":"m.thread","event_id":%q}}`, body, root))}
	}
	ids := sendBatches(t, n, roomID, 1, []core.SendRequest{reply("kept")})
	kept := ids[0]
	_, err = n.WithRoom(ctx, roomID, func(b *core.Batch) error {
		gone, err := b.BuildAndInput(reply("gone"))
		if err != nil {
			return err
		}
		_, err = b.BuildAndInput(core.SendRequest{Sender: alice.UserID, RoomID: roomID, Type: "m.room.redaction",
			Content: json.RawMessage(fmt.Sprintf(`{"redacts":%q}`, gone)), Redacts: gone})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		th, roots := threadOf(t, n, alice.UserID, roomID, root)
		latest, _ := th["latest_event"].(core.ClientEvent)
		if th == nil || th["count"] != 1 || latest.EventID != kept {
			t.Fatalf("%s: m.thread %v, want count 1, latest %s", when, th, kept)
		}
		if len(roots) != 1 || roots[0] != root {
			t.Fatalf("%s: threads %v", when, roots)
		}
	}
	check("after the batch")
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, cfg)
	t.Cleanup(func() { n.Close() })
	check("after a restart")
}
