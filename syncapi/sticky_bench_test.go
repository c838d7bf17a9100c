package syncapi_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/edgenode/edgenode/node/core"
)

// BenchmarkSyncSticky1000: the /sync cost of a room with 1,000 live sticky
// events (MSC4354), for a member who has not had them:
//
//   - initial: an initial sync (timeline limit 20) carrying the first
//     stickyLimit (100) of them;
//   - initial-all: the initial sync and the follow-up syncs until all 1,000
//     are delivered;
//   - incremental-empty: since = now, nothing new, the 1,000 events still
//     live (the price of their presence on every sync);
//   - joiner-initial-all: as initial-all for a member who joined after the
//     1,000 were sent, so they come from the join's backlog.
func BenchmarkSyncSticky1000(b *testing.B) {
	e := newEnv(b)
	alice, bob := e.user("alice"), e.user("bob")
	room := e.room(alice, core.PresetPublicChat)
	e.join(bob, room)
	hour := int64(core.MaxStickyDurationMS)
	for i := range 1000 {
		raw, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": "sticky " + strconv.Itoa(i)})
		_, err := e.n.SendEvent(context.Background(), core.SendRequest{
			Sender: alice.UserID, DeviceID: alice.DeviceID, RoomID: room, Type: "m.room.message", Content: raw,
			StickyDurationMS: &hour,
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	carol := e.user("carol")
	e.join(carol, room) // after the sticky events: she gets a backlog
	filter := `{"room":{"timeline":{"limit":20}}}`
	stickyCount := func(b *testing.B, raw []byte) int {
		return len(decodeSync(b, raw).Rooms.Join[room].Sticky.Events)
	}
	run := e.runners(bob)["http"]
	deliverAll := func(b *testing.B, run syncRunner) {
		q := vals("filter", filter)
		total := 0
		for range 20 {
			body := decodeSync(b, run(b, q))
			total += len(body.Rooms.Join[room].Sticky.Events)
			if total >= 1000 {
				break
			}
			q = vals("filter", filter, "since", body.NextBatch, "timeout", "0")
		}
		if total != 1000 {
			b.Fatalf("%d sticky events delivered, want 1000", total)
		}
	}
	b.Run("initial/http", func(b *testing.B) {
		q := vals("filter", filter)
		raw := run(b, q)
		if n := stickyCount(b, raw); n != 100 {
			b.Fatalf("%d sticky events in the first response, want 100", n)
		}
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		cpu := cpuTime(b)
		for b.Loop() {
			run(b, q)
		}
		reportCPU(b, cpu)
	})
	b.Run("initial-all/http", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cpuTime(b)
		for b.Loop() {
			deliverAll(b, run)
		}
		reportCPU(b, cpu)
	})
	b.Run("joiner-initial-all/http", func(b *testing.B) {
		run := e.runners(carol)["http"]
		b.ReportAllocs()
		cpu := cpuTime(b)
		for b.Loop() {
			deliverAll(b, run)
		}
		reportCPU(b, cpu)
	})
	b.Run("incremental-empty/http", func(b *testing.B) {
		q := vals("filter", filter, "since", e.now(), "timeout", "0")
		if body := decodeSync(b, run(b, q)); len(body.Rooms.Join) != 0 {
			b.Fatalf("not empty: %s", body.Raw)
		}
		b.ReportAllocs()
		cpu := cpuTime(b)
		for b.Loop() {
			run(b, q)
		}
		reportCPU(b, cpu)
	})
}
