package core

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/matrix-org/gomatrixserverlib/spec"
)

// TestHistoryVisibility sends four messages around bob's invite, join and
// leave, under each history_visibility, and checks which of them bob and
// carol (never in the room) may read, through Event and through RoomEvents.
func TestHistoryVisibility(t *testing.T) {
	tests := []struct {
		hv        string
		bobSees   []string
		carolSees []string
	}{
		// "joined": only what was sent while bob was joined.
		{"joined", []string{"joined"}, nil},
		// "invited": from bob's invite on, while he stayed in the room.
		{"invited", []string{"invited", "joined"}, nil},
		// "shared": everything up to bob's leave, including what was sent
		// before he joined; nothing after.
		{"shared", []string{"before", "invited", "joined"}, nil},
		// "world_readable": everything, to anyone.
		{"world_readable", []string{"before", "invited", "joined", "left"}, []string{"before", "invited", "joined", "left"}},
	}
	for _, tc := range tests {
		t.Run(tc.hv, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			n := newTestNodeWith(t, func(c *Config) { c.NoSyncWrites = true })
			alice, bob, carol := session(n, "alice"), session(n, "bob"), session(n, "carol")
			hv, _ := json.Marshal(map[string]string{"history_visibility": tc.hv})
			roomID, err := n.CreateRoom(ctx, CreateRoomRequest{Creator: alice.UserID, Preset: PresetPublicChat,
				InitialState: []InitialStateEvent{{Type: spec.MRoomHistoryVisibility, Content: hv}}})
			if err != nil {
				t.Fatal(err)
			}
			ids := map[string]string{}
			ids["before"] = send(t, n, alice, roomID, "before")
			membership(t, n, alice, roomID, bob.UserID, spec.Invite)
			ids["invited"] = send(t, n, alice, roomID, "invited")
			membership(t, n, bob, roomID, bob.UserID, spec.Join)
			ids["joined"] = send(t, n, alice, roomID, "joined")
			membership(t, n, bob, roomID, bob.UserID, spec.Leave)
			ids["left"] = send(t, n, alice, roomID, "left")

			for _, v := range []struct {
				who  Session
				want []string
			}{{bob, tc.bobSees}, {carol, tc.carolSees}, {alice, []string{"before", "invited", "joined", "left"}}} {
				var viaEvent []string
				for _, body := range slices.Sorted(maps.Keys(ids)) {
					_, err := n.Event(ctx, v.who.UserID, ids[body])
					switch {
					case err == nil:
						viaEvent = append(viaEvent, body)
					case !errors.Is(err, ErrNotFound):
						t.Fatalf("Event: %v", err)
					}
				}
				page, err := n.RoomEvents(ctx, v.who.UserID, roomID, Range{Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				var viaPage []string
				for _, ev := range page.Events {
					var c struct{ Body string }
					if ev.PDU.Type() == "m.room.message" && json.Unmarshal(ev.PDU.Content(), &c) == nil {
						viaPage = append(viaPage, c.Body)
					}
				}
				slices.Sort(viaPage)
				want := slices.Sorted(slices.Values(v.want))
				if !slices.Equal(viaEvent, want) {
					t.Errorf("%s sees via Event %v, want %v", v.who.UserID, viaEvent, want)
				}
				if !slices.Equal(viaPage, want) {
					t.Errorf("%s sees via RoomEvents %v, want %v", v.who.UserID, viaPage, want)
				}
			}
		})
	}
}

// TestRoomStateAfterLeave: a user who left reads the room's state as it was
// when they left, not later changes.
func TestRoomStateAfterLeave(t *testing.T) {
	ctx := context.Background()
	n := newTestNodeWith(t, func(c *Config) { c.NoSyncWrites = true })
	alice, bob, roomID := publicRoom(t, n, "")
	sendState(t, n, alice, roomID, spec.MRoomTopic, "", map[string]string{"topic": "while bob was here"})
	membership(t, n, bob, roomID, bob.UserID, spec.Leave)
	sendState(t, n, alice, roomID, spec.MRoomTopic, "", map[string]string{"topic": "after bob left"})

	ev, err := n.RoomStateEvent(ctx, bob.UserID, roomID, spec.MRoomTopic, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(ev.PDU.Content()); got != `{"topic":"while bob was here"}` {
		t.Errorf("bob reads topic %s", got)
	}
	if _, err := n.RoomState(ctx, session(n, "carol").UserID, roomID); !errors.Is(err, ErrForbidden) {
		t.Errorf("never-member reads state: %v, want ErrForbidden", err)
	}
}
