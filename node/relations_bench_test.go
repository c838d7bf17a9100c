package node

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/relations"
)

// BenchmarkSendThreadReply: sequential thread replies to one root, each
// indexed by the relations indexer in its commit (the relation's keys, the
// root's summary, the thread's place by activity and its participant).
// Compare with SendOneRoom, whose plain messages the indexer only looks at.
func BenchmarkSendThreadReply(b *testing.B) {
	for _, mode := range syncModes {
		b.Run(mode.name, func(b *testing.B) {
			n := benchNode(b, mode.noSync)
			alice := session(n, "alice")
			roomID := benchRoom(b, n, alice)
			ctx := context.Background()
			root, err := n.SendEvent(ctx, core.SendRequest{Sender: alice.UserID, RoomID: roomID, Type: "m.room.message", Content: benchContent})
			if err != nil {
				b.Fatal(err)
			}
			req := core.SendRequest{Sender: alice.UserID, DeviceID: alice.DeviceID, RoomID: roomID, Type: "m.room.message",
				Content: json.RawMessage(`{"msgtype":"m.text","body":"a reply of ordinary length for a chat","m.relates_to":{"rel_type":"m.thread","event_id":"` + root + `"}}`)}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := n.SendEvent(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// relationsRoom is a room whose first message has 1,000 relations: 500
// reactions and 500 thread replies, interleaved, the last 20 messages of
// the thread each edited once.
func relationsRoom(b *testing.B, n *Node, alice Session) (roomID, root string) {
	b.Helper()
	roomID = benchRoom(b, n, alice)
	ids := sendBatches(b, n, roomID, 1, []core.SendRequest{{Sender: alice.UserID, RoomID: roomID, Type: "m.room.message", Content: benchContent}})
	root = ids[0]
	reqs := make([]core.SendRequest, 1000)
	for i := range reqs {
		c := fmt.Sprintf(`{"m.relates_to":{"rel_type":"m.annotation","event_id":%q,"key":"%d"}}`, root, i)
		typ := "m.reaction"
		if i%2 == 1 {
			c = fmt.Sprintf(`{"msgtype":"m.text","body":"reply %d","m.relates_to":{"rel_type":"m.thread","event_id":%q}}`, i, root)
			typ = "m.room.message"
		}
		reqs[i] = core.SendRequest{Sender: alice.UserID, RoomID: roomID, Type: typ, Content: json.RawMessage(c)}
	}
	sent := sendBatches(b, n, roomID, 50, reqs)
	edits := make([]core.SendRequest, 0, 20)
	for i := len(sent) - 1; len(edits) < 20; i -= 2 {
		c := fmt.Sprintf(`{"msgtype":"m.text","body":"* edited","m.new_content":{"msgtype":"m.text","body":"edited"},"m.relates_to":{"rel_type":"m.replace","event_id":%q}}`, sent[i])
		edits = append(edits, core.SendRequest{Sender: alice.UserID, RoomID: roomID, Type: "m.room.message", Content: json.RawMessage(c)})
	}
	sendBatches(b, n, roomID, 20, edits)
	return roomID, root
}

// BenchmarkRelationsPage: the newest 20 thread replies of a root with
// 1,000 relations (history visibility applied), with their bundled
// aggregations (each reply's edit), as GET /relations/{root}/m.thread
// serves them.
func BenchmarkRelationsPage(b *testing.B) {
	n := benchNode(b, true) // writes are setup only here
	alice := session(n, "alice")
	roomID, root := relationsRoom(b, n, alice)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		page, err := n.RelationsPage(ctx, relations.RelationsQuery{UserID: alice.UserID, RoomID: roomID, EventID: root, RelType: "m.thread", Limit: 20})
		if err != nil || len(page.Events) != 20 || !page.HasNext {
			b.Fatalf("page: %d events, next %v, %v", len(page.Events), page.HasNext, err)
		}
		bundles, err := n.Bundle(ctx, alice.UserID, page.Events)
		if err != nil || len(bundles) != 20 {
			b.Fatalf("bundles: %d, %v", len(bundles), err)
		}
	}
}

// BenchmarkBundleNone: the bundled aggregations of a page of 20 events
// nothing relates to, the common case on every timeline served: one
// missing-key lookup per event.
func BenchmarkBundleNone(b *testing.B) {
	n := benchNode(b, true)
	alice := session(n, "alice")
	roomID := benchRoom(b, n, alice)
	reqs := make([]core.SendRequest, 20)
	for i := range reqs {
		reqs[i] = core.SendRequest{Sender: alice.UserID, RoomID: roomID, Type: "m.room.message", Content: benchContent}
	}
	sendBatches(b, n, roomID, 20, reqs)
	page, err := n.RoomEvents(context.Background(), alice.UserID, roomID, core.Range{Backwards: true, Limit: 20})
	if err != nil || len(page.Events) != 20 {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if bundles, err := n.Bundle(ctx, alice.UserID, page.Events); err != nil || len(bundles) != 0 {
			b.Fatalf("bundles: %v, %v", bundles, err)
		}
	}
}
