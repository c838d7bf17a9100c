package node

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node/core"
)

// presenceNames renders PresenceSince's answer as "user presence msg"
// strings, in order.
func presenceNames(evs []PresenceEvent) []string {
	out := []string{}
	for _, e := range evs {
		msg := "-"
		if e.StatusMsg != nil {
			msg = *e.StatusMsg
		}
		out = append(out, e.UserID+" "+e.Presence+" "+msg)
	}
	return out
}

func strPtr(s string) *string { return &s }

func TestPresence(t *testing.T) {
	ctx := context.Background()
	n := fastNode(t)
	clock := newFakeClock()
	n.Now = clock.now
	alice, bob, carol := session(n, "alice"), session(n, "bob"), session(n, "carol")
	sharedRoom(t, n, alice, bob)
	sharedRoom(t, n, carol) // carol shares no room with alice or bob
	a, b, c := alice.UserID, bob.UserID, carol.UserID

	steps := []struct {
		name     string
		user     Session
		presence string
		msg      *string
		woken    []Session
		moves    bool
		wantErr  error
	}{
		{"alice comes online", alice, PresenceOnline, strPtr("hi"), []Session{alice, bob}, true, nil},
		{"carol goes away", carol, PresenceUnavailable, nil, []Session{carol}, true, nil},
		{"bob comes online", bob, PresenceOnline, nil, []Session{alice, bob}, true, nil},
		{"alice online again, message kept", alice, PresenceOnline, nil, nil, false, nil},
		{"alice changes her message", alice, PresenceOnline, strPtr("busy"), []Session{alice, bob}, true, nil},
		{"unknown state", alice, "busy", nil, nil, false, core.ErrInvalidParam},
	}
	var positions []uint64
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := n.PresencePosition()
			ls := listeners(t, n, alice, bob, carol)
			err := n.SetPresence(ctx, st.user.UserID, st.presence, st.msg)
			if !errors.Is(err, st.wantErr) {
				t.Fatalf("got %v, want %v", err, st.wantErr)
			}
			if moved := n.PresencePosition() != before; moved != st.moves {
				t.Errorf("position moved: %v, want %v", moved, st.moves)
			}
			checkWoken(t, ls, st.woken...)
			positions = append(positions, n.PresencePosition())
		})
	}
	last := n.PresencePosition()

	since := []struct {
		name     string
		forUser  string
		from, to uint64
		want     []string
	}{
		{"bob sees himself and alice, latest values, in stream order", b, 0, last, []string{b + " online -", a + " online busy"}},
		{"carol sees only herself", c, 0, last, []string{c + " unavailable -"}},
		{"from is exclusive, to inclusive", a, positions[0], positions[2], []string{b + " online -"}},
		{"a value changed after to waits for the next call", b, 0, positions[1], []string{}},
		{"one position", a, positions[3], positions[4], []string{a + " online busy"}},
		{"empty range", a, last, last, []string{}},
	}
	for _, tc := range since {
		t.Run(tc.name, func(t *testing.T) {
			got, err := n.PresenceSince(ctx, tc.forUser, tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			if g := presenceNames(got); !slices.Equal(g, tc.want) {
				t.Errorf("got %q, want %q", g, tc.want)
			}
		})
	}
	t.Run("superseded index entries are deleted", func(t *testing.T) {
		if n := countKeys(t, n, tPresenceStream); n != 3 {
			t.Errorf("%d index entries for 3 users", n)
		}
	})

	t.Run("last active", func(t *testing.T) {
		clock.advance(10 * time.Second)
		ps, err := n.Presence(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if ps.LastActiveAgo != 10_000 || !ps.CurrentlyActive || ps.StatusMsg == nil || *ps.StatusMsg != "busy" {
			t.Errorf("presence %+v", ps)
		}
		// Within a minute, staying online writes nothing.
		before := n.PresencePosition()
		if err := n.SetPresence(ctx, a, PresenceOnline, nil); err != nil {
			t.Fatal(err)
		}
		if ps, _ := n.Presence(ctx, a); ps.LastActiveAgo != 10_000 {
			t.Errorf("last active refreshed within a minute: %+v", ps)
		}
		// Later, it refreshes the time without a position or a wake-up.
		clock.advance(currentlyActiveWindow)
		if ps, _ := n.Presence(ctx, a); ps.CurrentlyActive {
			t.Errorf("still currently active after %v: %+v", currentlyActiveWindow, ps)
		}
		ls := listeners(t, n, alice, bob)
		if err := n.SetPresence(ctx, a, PresenceOnline, nil); err != nil {
			t.Fatal(err)
		}
		if ps, _ := n.Presence(ctx, a); ps.LastActiveAgo != 0 || !ps.CurrentlyActive {
			t.Errorf("last active not refreshed: %+v", ps)
		}
		if n.PresencePosition() != before {
			t.Errorf("a refresh took a position")
		}
		checkWoken(t, ls)
	})
	t.Run("clearing the message", func(t *testing.T) {
		if err := n.SetPresence(ctx, a, PresenceOffline, strPtr("")); err != nil {
			t.Fatal(err)
		}
		ps, _ := n.Presence(ctx, a)
		if ps.Presence != PresenceOffline || ps.StatusMsg != nil || ps.CurrentlyActive {
			t.Errorf("presence %+v", ps)
		}
	})
	t.Run("status message too long", func(t *testing.T) {
		long := string(make([]byte, maxStatusMsgBytes+1))
		if err := n.SetPresence(ctx, a, PresenceOnline, &long); !errors.Is(err, core.ErrInvalidParam) {
			t.Errorf("got %v, want ErrInvalidParam", err)
		}
	})
}

func TestPresenceOfUnknownAndSilentUsers(t *testing.T) {
	ctx := context.Background()
	n := fastNode(t)
	dave := register(t, n, "dave")
	ps, err := n.Presence(ctx, dave.UserID)
	if err != nil || ps.Presence != PresenceOffline || ps.LastActiveAgo != 0 {
		t.Errorf("a user who never set presence: %+v, %v", ps, err)
	}
	for _, u := range []string{n.UserID("nobody"), "@dave:elsewhere"} {
		if _, err := n.Presence(ctx, u); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", u, err)
		}
	}
}

func TestPresenceFollowsMembership(t *testing.T) {
	ctx := context.Background()
	n := fastNode(t)
	alice, bob := session(n, "alice"), session(n, "bob")
	room := sharedRoom(t, n, alice)
	if err := n.SetPresence(ctx, bob.UserID, PresenceOnline, nil); err != nil {
		t.Fatal(err)
	}
	see := func() bool {
		got, err := n.PresenceSince(ctx, alice.UserID, 0, n.PresencePosition())
		if err != nil {
			t.Fatal(err)
		}
		return len(got) == 1
	}
	if see() {
		t.Error("alice sees bob's presence before sharing a room")
	}
	if ok, _ := n.SharesRoom(ctx, alice.UserID, bob.UserID); ok {
		t.Error("SharesRoom before bob joins")
	}
	membership(t, n, alice, room, bob.UserID, "invite")
	if see() {
		t.Error("an invite is not a shared room")
	}
	membership(t, n, bob, room, bob.UserID, "join")
	if !see() {
		t.Error("alice does not see bob's presence once they share a room")
	}
	if ok, _ := n.SharesRoom(ctx, alice.UserID, bob.UserID); !ok {
		t.Error("SharesRoom after bob joins")
	}
	membership(t, n, bob, room, bob.UserID, "leave")
	if see() {
		t.Error("alice still sees bob's presence after he left")
	}
}

func TestPresenceEventJSON(t *testing.T) {
	msg := "hi"
	b, err := json.Marshal(PresenceEvent{UserID: "@a:x", PresenceState: PresenceState{
		Presence: PresenceOnline, StatusMsg: &msg, LastActiveAgo: 5, CurrentlyActive: true,
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"m.presence","sender":"@a:x","content":{"presence":"online","status_msg":"hi","last_active_ago":5,"currently_active":true}}`
	if string(b) != want {
		t.Errorf("got %s\nwant %s", b, want)
	}
}
