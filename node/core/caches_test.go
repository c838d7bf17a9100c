package core

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestCacheBudget: whatever a user reads, the node's in-memory caches hold
// no more than the budget (Config.CacheBytes, or the profile's default);
// TrimCaches empties them; and the user reads the same events and can send
// as before, after a trim as with full caches.
func TestCacheBudget(t *testing.T) {
	tests := []struct {
		name         string
		profile      string
		cacheBytes   int64
		wantBudget   int64
		rooms, sends int
		bodySize     int
	}{
		{name: "budget smaller than what is read", profile: "phone", cacheBytes: 256 << 10, wantBudget: 256 << 10, rooms: 6, sends: 30, bodySize: 4000},
		{name: "phone default", profile: "phone", wantBudget: 12 << 20, rooms: 3, sends: 10, bodySize: 100},
		{name: "pi default", profile: "pi", wantBudget: 16 << 20, rooms: 3, sends: 10, bodySize: 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNodeWith(t, func(c *Config) { c.StorageProfile, c.CacheBytes = tc.profile, tc.cacheBytes })
			ctx := context.Background()
			alice := session(n, "alice")
			want := map[string]string{} // event ID -> body
			var rooms []string
			for r := range tc.rooms {
				id, err := n.CreateRoom(ctx, CreateRoomRequest{Creator: alice.UserID, DeviceID: alice.DeviceID})
				if err != nil {
					t.Fatal(err)
				}
				rooms = append(rooms, id)
				for e := range tc.sends {
					body := fmt.Sprintf("%d/%d %s", r, e, strings.Repeat("x", tc.bodySize))
					want[send(t, n, alice, id, body)] = body
				}
			}
			readAll := func(when string) {
				t.Helper()
				for _, id := range rooms {
					page, err := n.RoomEvents(ctx, alice.UserID, id, Range{Backwards: true, Limit: tc.sends + 10})
					if err != nil {
						t.Fatalf("%s: RoomEvents: %v", when, err)
					}
					got := 0
					for _, ev := range page.Events {
						if body, ok := want[ev.PDU.EventID()]; ok {
							got++
							if b := string(ev.PDU.Content()); !strings.Contains(b, body) {
								t.Fatalf("%s: event %s has content %.60s, want body %.60s", when, ev.PDU.EventID(), b, body)
							}
						}
					}
					if got != tc.sends {
						t.Fatalf("%s: room %s shows %d of its %d messages", when, id, got, tc.sends)
					}
				}
				for id, body := range want {
					ev, err := n.Event(ctx, alice.UserID, id)
					if err != nil {
						t.Fatalf("%s: Event %s: %v", when, id, err)
					}
					if b := string(ev.PDU.Content()); !strings.Contains(b, body) {
						t.Fatalf("%s: event %s has content %.60s", when, id, b)
					}
				}
			}
			readAll("full caches")
			st := n.cacheStats()
			if st.budget != tc.wantBudget {
				t.Errorf("budget %d, want %d", st.budget, tc.wantBudget)
			}
			if st.bytes > int(st.budget) || st.entries == 0 {
				t.Errorf("caches hold %d bytes in %d entries, want some and at most the budget %d", st.bytes, st.entries, st.budget)
			}

			n.TrimCaches()
			if st := n.cacheStats(); st.bytes != 0 || st.entries != 0 {
				t.Errorf("after TrimCaches: %d bytes in %d entries, want none", st.bytes, st.entries)
			}
			readAll("after TrimCaches")
			body := "after the trim"
			want[send(t, n, alice, rooms[0], body)] = body
			if st := n.cacheStats(); st.bytes > int(st.budget) {
				t.Errorf("caches refilled to %d bytes, over the budget %d", st.bytes, st.budget)
			}
		})
	}
}

// TestCacheEstimates: the byte estimates the caches are bounded by grow
// with what they weigh, so a large entry counts for more.
func TestCacheEstimates(t *testing.T) {
	small := StateFromMap(map[StateKey]string{{EventType: "m.room.create"}: "$a"})
	big := map[StateKey]string{}
	for i := range 500 {
		big[StateKey{EventType: "m.room.member", StateKey: fmt.Sprintf("@user%d:example.org", i)}] = fmt.Sprintf("$event%d", i)
	}
	large := StateFromMap(big)
	if s, l := stateSnapshotSize(small), stateSnapshotSize(large); s < stateSnapshotFixedSize || l < s+500*48 {
		t.Errorf("snapshot estimates: one entry %d bytes, 500 entries %d bytes", s, l)
	}
	if s, l := roomBumpsSize([]RoomBump{{RoomID: "!a:x"}}), roomBumpsSize(make([]RoomBump, 1000)); l < 1000*48 || s >= l {
		t.Errorf("room list estimates: one room %d bytes, 1,000 rooms %d bytes", s, l)
	}
}
