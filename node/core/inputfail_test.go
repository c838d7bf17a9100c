package core

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/matrix-org/gomatrixserverlib/spec"
)

// failRoom is buildForkedRoom's room up to alice's demotion of bob (A1), all
// accepted: bob was a moderator until A1 and is not now.
func failRoom(t *testing.T) (*Node, *dagRoom) {
	n := newTestNodeWith(t, func(c *Config) { c.NoSyncWrites = true })
	d := buildForkedRoom(t, n, DefaultRoomVersion)
	d.accept(n, "C", "Ma", "P0", "J", "Mb", "Mc", "Md", "T0", "A1")
	return n, d
}

// roomSnapshot is what must not change when an event is refused.
type roomSnapshot struct {
	pos        uint64
	head       RoomRecord
	timeline   int
	events     int
	roomStream int
}

func takeRoomSnapshot(t *testing.T, n *Node, roomID string) roomSnapshot {
	return roomSnapshot{
		pos: n.StreamPosition(), head: *roomHead(t, n, roomID), events: countKeys(t, n, tEvent),
		timeline: countKeys(t, n, tStream), roomStream: countKeys(t, n, tRoomStream),
	}
}

// expectUnchanged checks that the room's head, stream and timeline are as in
// before; events is how many event records may have been added.
func expectUnchanged(t *testing.T, n *Node, roomID string, before roomSnapshot, events int) {
	t.Helper()
	after := takeRoomSnapshot(t, n, roomID)
	if after.pos != before.pos || after.timeline != before.timeline || after.roomStream != before.roomStream {
		t.Errorf("stream moved: position %d -> %d, stream entries %d -> %d, timeline entries %d -> %d",
			before.pos, after.pos, before.timeline, after.timeline, before.roomStream, after.roomStream)
	}
	if after.head.State != before.head.State || !equalSets(after.head.Extremities, before.head.Extremities) {
		t.Errorf("room head changed: %+v -> %+v", before.head, after.head)
	}
	if after.events != before.events+events {
		t.Errorf("event records: %d -> %d, want %d more", before.events, after.events, events)
	}
}

func equalSets(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, s := range a {
		m[s] = true
	}
	for _, s := range b {
		if !m[s] {
			return false
		}
	}
	return true
}

// expectNotServed checks that no API serves the event.
func expectNotServed(t *testing.T, n *Node, d *dagRoom, name string) {
	t.Helper()
	ctx := context.Background()
	id := d.id(name)
	if ev, err := n.Event(ctx, d.user("alice"), id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Event(%s): %v, %v; want ErrNotFound", name, ev, err)
	}
	page, err := n.RoomEvents(ctx, d.user("alice"), d.roomID, Range{Backwards: true, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range page.Events {
		if ev.PDU.EventID() == id {
			t.Errorf("RoomEvents serves %s", name)
		}
	}
}

// TestSoftFail: bob's topic change cites T0, where bob was a moderator, as
// its prev event. It passes auth at that state, but not at the room's
// current state (A1 demoted bob): it is stored soft-failed.
func TestSoftFail(t *testing.T) {
	n, d := failRoom(t)
	before := takeRoomSnapshot(t, n, d.roomID)
	d.softFail(n, "B1")
	expectUnchanged(t, n, d.roomID, before, 1)
	rec := storedRecord(t, n, d.id("B1"))
	if !rec.SoftFailed || rec.Rejected != "" || rec.Pos != 0 {
		t.Errorf("soft-failed record: soft_failed %v, rejected %q, pos %d", rec.SoftFailed, rec.Rejected, rec.Pos)
	}
	// Its own state is kept, so later events may build on it.
	if got := d.namedState(readSnapshot(t, n, rec.StateAfter))[spec.MRoomTopic+"|"]; got != "B1" {
		t.Errorf("state after the soft-failed event: topic %s, want B1", got)
	}
	expectNotServed(t, n, d, "B1")
	expectExtremities(t, n, d, "A1")

	// An event that names both heads merges them: the state before it is
	// the resolution of A1's and B1's states, where bob's topic fails.
	d.build("X", dagEvent{Sender: d.user("alice"), Type: "m.room.message", Content: map[string]any{"body": "x"},
		Prev: []string{"A1", "B1"}, Auth: []string{"C", "A1", "Ma"}})
	d.accept(n, "X")
	expectExtremities(t, n, d, "X")
	rec = storedRecord(t, n, d.id("X"))
	if got := d.namedState(readSnapshot(t, n, rec.StateBefore))[spec.MRoomTopic+"|"]; got != "T0" {
		t.Errorf("topic before the merge: %s, want T0", got)
	}
	expectNotServed(t, n, d, "B1")
}

// TestRejected inputs events that fail auth, against their own auth events
// or against the state before them: each is rejected, not stored (its
// verdict is remembered in memory, bounded), never served, in no state,
// and changes nothing else.
func TestRejected(t *testing.T) {
	n, d := failRoom(t)
	alice, bob, dave, eve := d.user("alice"), d.user("bob"), d.user("dave"), d.user("eve")
	topic := func(s string) map[string]any { return map[string]any{"topic": s} }
	tests := []struct {
		name  string
		ev    dagEvent
		stage string // where input must fail: the start of the stored reason
		why   string
	}{
		{"dave sets topic", dagEvent{Sender: dave, Type: spec.MRoomTopic, StateKey: stateKey(""), Content: topic("dave"),
			Prev: []string{"A1"}, Auth: []string{"C", "A1", "Md"}}, "auth events:", "dave has 0 < state_default 50 in its own auth events"},
		{"bob cites the old power levels", dagEvent{Sender: bob, Type: spec.MRoomTopic, StateKey: stateKey(""), Content: topic("bob"),
			Prev: []string{"A1"}, Auth: []string{"C", "P0", "Mb"}}, "state before event:", "P0 allows it, but the state before it has A1, where bob has 0"},
		{"eve never joined", dagEvent{Sender: eve, Type: "m.room.message", Content: map[string]any{"body": "hi"},
			Prev: []string{"A1"}, Auth: []string{"C", "A1"}}, "auth events:", "eve is not a member"},
		{"missing auth event", dagEvent{Sender: alice, Type: spec.MRoomTopic, StateKey: stateKey(""), Content: topic("alice"),
			Prev: []string{"A1"}, Auth: []string{"C", "A1", "Ma", "$nosuchevent"}}, "auth event:", "an auth event is unknown"},
		{"rejected auth event", dagEvent{Sender: alice, Type: spec.MRoomTopic, StateKey: stateKey(""), Content: topic("alice"),
			Prev: []string{"A1"}, Auth: []string{"C", "A1", "Ma", "dave sets topic"}}, "auth event $", "an auth event was rejected"},
		{"kicks as a non-moderator", dagEvent{Sender: bob, Type: spec.MRoomMember, StateKey: &dave, Content: map[string]any{"membership": "leave"},
			Prev: []string{"A1"}, Auth: []string{"C", "A1", "Mb", "Md"}}, "auth events:", "bob has 0 < kick 50"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d.t = t
			d.build(tc.name, tc.ev)
			before := takeRoomSnapshot(t, n, d.roomID)
			err := d.input(n, tc.name)[0]
			var ie *InputError
			if !errors.As(err, &ie) || ie.SoftFailed || !errors.Is(err, ErrForbidden) {
				t.Fatalf("got %v, want a rejection (%s)", err, tc.why)
			}
			// Not stored: the verdict is remembered (rejectedmarks.go).
			expectUnchanged(t, n, d.roomID, before, 0)
			mark, ok := n.rejected.Get(d.id(tc.name))
			if !ok || mark.roomID != d.roomID {
				t.Errorf("no rejected mark: %+v", mark)
			}
			if !strings.HasPrefix(mark.reason, tc.stage) {
				t.Errorf("rejected for %q, want a failure at %q (%s)", mark.reason, tc.stage, tc.why)
			}
			expectNotServed(t, n, d, tc.name)
			for _, id := range readSnapshot(t, n, roomHead(t, n, d.roomID).State).EventIDs() {
				if id == d.id(tc.name) {
					t.Errorf("rejected event is in the current state")
				}
			}
			// Input again: the same verdict, still nothing stored.
			if again := d.input(n, tc.name)[0]; again == nil || again.Error() != err.Error() {
				t.Errorf("input again: %v, want %v", again, err)
			}
			expectUnchanged(t, n, d.roomID, before, 0)
		})
	}
	d.t = t

	// An event on top of a rejected event cannot be placed: it is refused
	// and nothing of it is kept.
	d.build("on rejected", dagEvent{Sender: alice, Type: "m.room.message", Content: map[string]any{"body": "x"},
		Prev: []string{"dave sets topic"}, Auth: []string{"C", "A1", "Ma"}})
	before := takeRoomSnapshot(t, n, d.roomID)
	if err := d.input(n, "on rejected")[0]; err == nil {
		t.Fatal("event with a rejected prev event accepted")
	}
	expectUnchanged(t, n, d.roomID, before, 0)
}

// TestLocalSendForbidden: a local event that would fail auth is refused with
// ErrForbidden and leaves no trace: no event record, no stream position, and
// its transaction ID stays free.
func TestLocalSendForbidden(t *testing.T) {
	ctx := context.Background()
	n, d := failRoom(t)
	dave, bob, eve := d.user("dave"), d.user("bob"), d.user("eve")
	raw := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	tests := []struct {
		name string
		req  SendRequest
	}{
		{"topic without power", SendRequest{Sender: dave, DeviceID: "D", RoomID: d.roomID, Type: spec.MRoomTopic,
			StateKey: stateKey(""), Content: raw(map[string]string{"topic": "x"}), TxnID: "t1"}},
		{"demoted moderator kicks", SendRequest{Sender: bob, DeviceID: "D", RoomID: d.roomID, Type: spec.MRoomMember,
			StateKey: &dave, Content: raw(map[string]string{"membership": "leave"}), TxnID: "t2"}},
		{"non-member talks", SendRequest{Sender: eve, DeviceID: "D", RoomID: d.roomID, Type: "m.room.message",
			Content: raw(map[string]string{"body": "hi"}), TxnID: "t3"}},
		{"non-member sets power levels", SendRequest{Sender: eve, DeviceID: "D", RoomID: d.roomID, Type: spec.MRoomPowerLevels,
			StateKey: stateKey(""), Content: raw(powerLevels(map[string]int{eve: 100})), TxnID: "t4"}},
		{"self-promotion", SendRequest{Sender: dave, DeviceID: "D", RoomID: d.roomID, Type: spec.MRoomPowerLevels,
			StateKey: stateKey(""), Content: raw(powerLevels(map[string]int{d.user("alice"): 100, dave: 100})), TxnID: "t5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := takeRoomSnapshot(t, n, d.roomID)
			if id, err := n.SendEvent(ctx, tc.req); !errors.Is(err, ErrForbidden) {
				t.Fatalf("got %q, %v; want ErrForbidden", id, err)
			}
			expectUnchanged(t, n, d.roomID, before, 0)
		})
	}
	// The refused send's transaction ID was not recorded: reusing it for an
	// allowed event sends that event.
	id, err := n.SendEvent(ctx, SendRequest{Sender: dave, DeviceID: "D", RoomID: d.roomID, Type: "m.room.message",
		Content: raw(map[string]string{"body": "allowed"}), TxnID: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := n.Event(ctx, dave, id)
	if err != nil || ev.PDU.Type() != "m.room.message" {
		t.Fatalf("event sent with a reused txn ID: %v, %v", ev, err)
	}
}

// TestRejectedPrevInOneBatch: an event whose prev event was rejected earlier
// in the same batch (one federation transaction carrying both) is refused
// like one whose rejected prev event was stored before, and the rest of the
// batch goes on.
func TestRejectedPrevInOneBatch(t *testing.T) {
	n, d := failRoom(t)
	alice, dave := d.user("alice"), d.user("dave")
	d.build("bad", dagEvent{Sender: dave, Type: spec.MRoomTopic, StateKey: stateKey(""), Content: map[string]any{"topic": "x"},
		Prev: []string{"A1"}, Auth: []string{"C", "A1", "Md"}})
	d.build("child", dagEvent{Sender: alice, Type: "m.room.message", Content: map[string]any{"body": "x"},
		Prev: []string{"bad"}, Auth: []string{"C", "A1", "Ma"}})
	d.build("good", dagEvent{Sender: alice, Type: "m.room.message", Content: map[string]any{"body": "y"},
		Prev: []string{"A1"}, Auth: []string{"C", "A1", "Ma"}})
	errs := d.input(n, "bad", "child", "good")
	var ie *InputError
	if !errors.As(errs[0], &ie) || ie.SoftFailed {
		t.Fatalf("bad: %v, want rejected", errs[0])
	}
	if errs[1] == nil {
		t.Fatal("child of a rejected event accepted")
	}
	if errs[2] != nil {
		t.Fatalf("good: %v", errs[2])
	}
	expectExtremities(t, n, d, "good")
	expectNotServed(t, n, d, "child")
}
