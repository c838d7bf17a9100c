package node

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/edgenode/edgenode/node/core"
)

// The send benchmarks run with synchronous writes (the default: an
// acknowledged event is on disk) and without, so fsync's share is visible.
var syncModes = []struct {
	name   string
	noSync bool
}{{"fsync", false}, {"nosync", true}}

func benchNode(b *testing.B, noSync bool) *Node {
	b.Helper()
	return newTestNodeWith(b, func(c *core.Config) { c.NoSyncWrites = noSync })
}

func benchRoom(b *testing.B, n *Node, creator Session) string {
	b.Helper()
	roomID, err := n.CreateRoom(context.Background(), core.CreateRoomRequest{Creator: creator.UserID, Preset: core.PresetPrivateChat})
	if err != nil {
		b.Fatal(err)
	}
	return roomID
}

var benchContent = json.RawMessage(`{"msgtype":"m.text","body":"a message of ordinary length for a chat"}`)

// benchSends is the timed part of the sequential send benchmarks: sender's
// messages into roomID, one after another.
func benchSends(b *testing.B, n *Node, sender Session, roomID string) {
	b.Helper()
	req := core.SendRequest{Sender: sender.UserID, DeviceID: sender.DeviceID, RoomID: roomID, Type: "m.room.message", Content: benchContent}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := n.SendEvent(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendOneRoom: sequential sends into one room.
func BenchmarkSendOneRoom(b *testing.B) {
	for _, mode := range syncModes {
		b.Run(mode.name, func(b *testing.B) {
			n := benchNode(b, mode.noSync)
			alice := session(n, "alice")
			roomID := benchRoom(b, n, alice)
			benchSends(b, n, alice, roomID)
		})
	}
}

// BenchmarkSendManyRooms: sends spread over 100 rooms from parallel
// goroutines. Room input runs in parallel per room; commits (and their
// fsyncs) are serialised by the stream.
func BenchmarkSendManyRooms(b *testing.B) {
	const rooms = 100
	for _, mode := range syncModes {
		b.Run(mode.name, func(b *testing.B) {
			n := benchNode(b, mode.noSync)
			alice := session(n, "alice")
			ids := make([]string, rooms)
			for i := range ids {
				ids[i] = benchRoom(b, n, alice)
			}
			var next atomic.Uint64
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					roomID := ids[next.Add(1)%rooms]
					if _, err := n.SendEvent(ctx, core.SendRequest{Sender: alice.UserID, DeviceID: alice.DeviceID,
						RoomID: roomID, Type: "m.room.message", Content: benchContent}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkRoomEvents: the newest page of 20 in a room of 1000 events.
func BenchmarkRoomEvents(b *testing.B) {
	n := benchNode(b, true) // writes are setup only here
	alice := session(n, "alice")
	roomID := benchRoom(b, n, alice)
	reqs := make([]core.SendRequest, 1000-countPrefix(b, n, core.RoomStreamPrefix(roomID)))
	for i := range reqs {
		reqs[i] = core.SendRequest{Sender: alice.UserID, RoomID: roomID, Type: "m.room.message",
			Content: json.RawMessage(fmt.Sprintf(`{"msgtype":"m.text","body":"message %d"}`, i))}
	}
	sendBatches(b, n, roomID, 50, reqs)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		page, err := n.RoomEvents(ctx, alice.UserID, roomID, core.Range{Backwards: true, Limit: 20})
		if err != nil || len(page.Events) != 20 || !page.More {
			b.Fatalf("page: %d events, more %v, %v", len(page.Events), page.More, err)
		}
	}
}
