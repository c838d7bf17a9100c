package node

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// TestStickySoftFailReevaluated: bob's sticky event cites a state where bob
// is joined, but arrives after his leave: it is soft-failed, not served.
// When bob joins again, it is checked again against the new current state,
// passes, and is served (timeline position, sticky index) from then on.
// An ordinary soft-failed event is left as it was.
func TestStickySoftFailReevaluated(t *testing.T) {
	ctx := context.Background()
	n := newTestNodeWith(t, func(c *core.Config) { c.NoSyncWrites = true })
	d := newDAGRoom(t, n, core.DefaultRoomVersion)
	d.ts = time.Now() // sticky ends follow origin_server_ts
	alice, bob := d.user("alice"), d.user("bob")
	member := func(m string) map[string]any { return map[string]any{"membership": m} }
	d.build("C", dagEvent{Sender: alice, Type: spec.MRoomCreate, StateKey: stateKey(""), Content: d.createContent(alice)})
	d.build("Ma", dagEvent{Sender: alice, Type: spec.MRoomMember, StateKey: &alice, Content: member("join"), Prev: []string{"C"}, Auth: []string{"C"}})
	d.build("P", dagEvent{Sender: alice, Type: spec.MRoomPowerLevels, StateKey: stateKey(""),
		Content: powerLevels(map[string]int{alice: 100}), Prev: []string{"Ma"}, Auth: []string{"C", "Ma"}})
	d.build("J", dagEvent{Sender: alice, Type: spec.MRoomJoinRules, StateKey: stateKey(""),
		Content: map[string]any{"join_rule": "public"}, Prev: []string{"P"}, Auth: []string{"C", "Ma", "P"}})
	d.build("Mb", dagEvent{Sender: bob, Type: spec.MRoomMember, StateKey: &bob, Content: member("join"), Prev: []string{"J"}, Auth: []string{"C", "J", "P"}})
	d.build("L", dagEvent{Sender: bob, Type: spec.MRoomMember, StateKey: &bob, Content: member("leave"), Prev: []string{"Mb"}, Auth: []string{"C", "P", "Mb"}})
	msg := map[string]any{"msgtype": "m.text", "body": "sticky"}
	sticky := d.build("S", dagEvent{Sender: bob, Type: "m.room.message", Content: msg, Prev: []string{"Mb"}, Auth: []string{"C", "P", "Mb"}})
	d.build("N", dagEvent{Sender: bob, Type: "m.room.message", Content: msg, Prev: []string{"Mb"}, Auth: []string{"C", "P", "Mb"}})
	// S made sticky: the event the test inputs is the one with the key.
	s, err := n.WithStickyKey(sticky, 600_000)
	if err != nil {
		t.Fatal(err)
	}
	delete(d.names, sticky.EventID())
	d.byName["S"], d.names[s.EventID()] = s, "S"
	d.accept(n, "C", "Ma", "P", "J", "Mb", "L")
	d.softFail(n, "S")
	d.softFail(n, "N")

	served := func() []string {
		evs, _, err := n.StickyEvents(ctx, StickyQuery{UserID: alice, Rooms: []string{d.roomID}, Upto: n.StreamPosition()})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ev := range evs {
			out = append(out, d.name(ev.PDU.EventID()))
		}
		return out
	}
	if got := served(); len(got) != 0 {
		t.Fatalf("soft-failed sticky event served: %v", got)
	}
	if got := countKeys(t, n, tStickySoft); got != 1 {
		t.Fatalf("soft-fail index holds %d entries, want 1 (S only)", got)
	}

	d.build("R", dagEvent{Sender: bob, Type: spec.MRoomMember, StateKey: &bob, Content: member("join"), Prev: []string{"L"}, Auth: []string{"C", "J", "P", "L"}})
	d.accept(n, "R")
	rec := storedRecord(t, n, d.id("S"))
	if rec.SoftFailed || rec.Pos == 0 || rec.Pos <= storedRecord(t, n, d.id("R")).Pos {
		t.Errorf("S after bob's rejoin: soft-failed %v, position %d (R at %d)", rec.SoftFailed, rec.Pos, storedRecord(t, n, d.id("R")).Pos)
	}
	if got := served(); !slices.Equal(got, []string{"S"}) {
		t.Errorf("sticky events after bob's rejoin: %v, want [S]", got)
	}
	if rec := storedRecord(t, n, d.id("N")); !rec.SoftFailed || rec.Pos != 0 {
		t.Errorf("the plain soft-failed event changed: soft-failed %v, position %d", rec.SoftFailed, rec.Pos)
	}
	if got := countKeys(t, n, tStickySoft); got != 0 {
		t.Errorf("soft-fail index holds %d entries after the revival", got)
	}
	page, err := n.RoomEvents(ctx, alice, d.roomID, core.Range{Backwards: true, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) == 0 || page.Events[0].PDU.EventID() != d.id("S") {
		t.Errorf("S is not the newest event of alice's timeline")
	}
}
