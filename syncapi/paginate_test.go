package syncapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// TestPaginateInvariants walks a room page by page, for many page sizes,
// scan budgets (down to pages that see only hidden events) and filters, and
// checks each walk returns exactly the events the user may see and the
// filter keeps, once each, in order, and then ends.
//
// It calls paginate directly (tests of this package cannot start the HTTP
// app, which imports it) to make the scan budget small.
func TestPaginateInvariants(t *testing.T) {
	ctx := context.Background()
	n, err := node.New(ctx, core.Config{
		DataDir: t.TempDir(), OpenRegistration: true, StorageProfile: "phone",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	reg := func(name string) node.Session {
		s, err := n.Register(ctx, node.RegisterRequest{Localpart: name})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	alice, bob := reg("alice"), reg("bob")
	room, err := n.CreateRoom(ctx, core.CreateRoomRequest{
		Creator: alice.UserID, Preset: core.PresetPublicChat,
		InitialState: []core.InitialStateEvent{{Type: "m.room.history_visibility", Content: json.RawMessage(`{"history_visibility":"joined"}`)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	send := func(s node.Session, evType string, content string) {
		t.Helper()
		if _, err := n.SendEvent(ctx, core.SendRequest{Sender: s.UserID, RoomID: room, Type: evType, Content: json.RawMessage(content)}); err != nil {
			t.Fatal(err)
		}
	}
	member := func(s node.Session, m string) {
		t.Helper()
		if _, err := n.ChangeMembership(ctx, core.MembershipChange{Sender: s.UserID, RoomID: room, Target: s.UserID, Membership: m}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 12 {
		send(alice, "m.room.message", fmt.Sprintf(`{"body":"hidden %d"}`, i))
	}
	member(bob, "join")
	for i := range 5 {
		send(alice, "m.room.message", fmt.Sprintf(`{"body":"a%d"}`, i))
		send(alice, "m.room.topic", fmt.Sprintf(`{"topic":"t%d"}`, i))
	}
	send(bob, "m.room.message", `{"body":"b","url":"mxc://x/y"}`)
	member(bob, "leave")
	for i := range 12 {
		send(alice, "m.room.message", fmt.Sprintf(`{"body":"gone %d"}`, i))
	}

	// The truth: every event bob may see, oldest first, in one node page.
	all, err := n.RoomEvents(ctx, bob.UserID, room, core.Range{Limit: 1 << 20})
	if err != nil || all.More {
		t.Fatalf("truth: %v more=%v", err, all.More)
	}
	var bodies []string
	for _, ev := range all.Events {
		var c struct{ Body string }
		_ = json.Unmarshal(ev.PDU.Content(), &c)
		if c.Body != "" {
			bodies = append(bodies, c.Body)
		}
	}
	if want := []string{"a0", "a1", "a2", "a3", "a4", "b"}; !slices.Equal(bodies, want) {
		t.Fatalf("bob sees messages %v, want %v", bodies, want)
	}
	filters := map[string]*RoomEventFilter{
		"none":     nil,
		"messages": {EventFilter: EventFilter{Types: []string{"m.room.message"}}},
		"bob":      {EventFilter: EventFilter{Senders: []string{bob.UserID}}},
		"nothing":  {EventFilter: EventFilter{Types: []string{}}},
		"url":      {ContainsURL: new(true)},
	}
	for fname, f := range filters {
		var want []string
		for _, ev := range all.Events {
			if f.MatchEvent(ev) {
				want = append(want, ev.PDU.EventID())
			}
		}
		for _, budget := range []int{0, 1, 3, 1000} {
			for _, limit := range []int{1, 2, 5, 100} {
				a := &api{n: n, budget: budget}
				name := fmt.Sprintf("%s/budget=%d/limit=%d", fname, budget, limit)
				t.Run(name, func(t *testing.T) {
					fwd := walkPages(t, a, bob.UserID, room, span{from: 0}, limit, f)
					if !slices.Equal(fwd, want) {
						t.Fatalf("forwards:\n got %v\nwant %v", fwd, want)
					}
					back := walkPages(t, a, bob.UserID, room, span{from: n.StreamPosition(), backwards: true}, limit, f)
					slices.Reverse(back)
					if !slices.Equal(back, want) {
						t.Fatalf("backwards:\n got %v\nwant %v", back, want)
					}
				})
			}
		}
	}
}

// walkPages pages until there is no next page and returns the event IDs in
// the order returned, failing on a page that does not advance.
func walkPages(t *testing.T, a *api, userID, roomID string, sp span, limit int, f *RoomEventFilter) []string {
	t.Helper()
	var out []string
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
		w, err := a.paginate(context.Background(), userID, roomID, sp, limit, f.keep())
		if err != nil {
			t.Fatal(err)
		}
		if len(w.events) > limit {
			t.Fatalf("page of %d events, limit %d", len(w.events), limit)
		}
		for _, ev := range w.events {
			out = append(out, ev.PDU.EventID())
		}
		if !w.more {
			return out
		}
		if w.end == sp.from {
			t.Fatalf("page did not advance from %d", sp.from)
		}
		sp.from = w.end
	}
}
