package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/inbound"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// remoteRoom is a room made on node b (signed with b's key, users on b's
// server), world readable, and given to node a over its federation input.
func remoteRoom(t *testing.T, a, b *Node) *dagRoom {
	t.Helper()
	return remoteRoomWith(t, a, b, "world_readable")
}

// remoteRoomWith is remoteRoom with the given history visibility, on the
// event named "hv": create, bob's join, power levels, public join rules,
// hv. A local user of a is noted as joined (markLocalJoin).
func remoteRoomWith(t testing.TB, a, b *Node, visibility string) *dagRoom {
	t.Helper()
	d := newDAGRoom(t, b, gomatrixserverlib.RoomVersionV10)
	bob := d.user("bob")
	d.build("create", dagEvent{Sender: bob, Type: spec.MRoomCreate, StateKey: stateKey(""), Content: d.createContent(bob)})
	d.build("bob", dagEvent{Sender: bob, Type: spec.MRoomMember, StateKey: stateKey(bob), Content: map[string]any{"membership": "join"},
		Prev: []string{"create"}, Auth: []string{"create"}})
	d.build("pl", dagEvent{Sender: bob, Type: spec.MRoomPowerLevels, StateKey: stateKey(""), Content: powerLevels(map[string]int{bob: 100}),
		Prev: []string{"bob"}, Auth: []string{"create", "bob"}})
	d.build("jr", dagEvent{Sender: bob, Type: spec.MRoomJoinRules, StateKey: stateKey(""), Content: map[string]any{"join_rule": "public"},
		Prev: []string{"pl"}, Auth: []string{"create", "bob", "pl"}})
	d.build("hv", dagEvent{Sender: bob, Type: spec.MRoomHistoryVisibility, StateKey: stateKey(""), Content: map[string]any{"history_visibility": visibility},
		Prev: []string{"jr"}, Auth: []string{"create", "bob", "pl"}})
	// Given out of order: input sorts them.
	res, err := a.InputFederatedPDUs(context.Background(), inbound.FederatedInput{Origin: b.ServerName(), PDUs: d.raw("hv", "pl", "create", "jr", "bob"), AllowNewRooms: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("bootstrap PDU %d (%s): %v", i, d.name(r.EventID), r.Err)
		}
	}
	markLocalJoin(t, a, d.roomID)
	return d
}

// markLocalJoin notes a local user of n as joined to roomID, without an
// event: rooms made by hand from a remote server's events stand for rooms
// a local user joined, and n takes in PDUs only for rooms a local user is
// joined to (inbound/fedunjoined.go).
func markLocalJoin(t testing.TB, n *Node, roomID string) {
	t.Helper()
	err := n.DB.Update(func(tx *kv.Txn) error {
		return tx.Set(core.LocalMemberKey(roomID, "@local:"+n.ServerName()), []byte(spec.Join))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (d *dagRoom) raw(names ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(names))
	for i, name := range names {
		out[i] = d.ev(name).JSON()
	}
	return out
}

func fedInput(t *testing.T, a, b *Node, allowNew bool, pdus ...json.RawMessage) []inbound.FederatedPDUResult {
	t.Helper()
	res, err := a.InputFederatedPDUs(context.Background(), inbound.FederatedInput{Origin: b.ServerName(), PDUs: pdus, AllowNewRooms: allowNew})
	if err != nil {
		t.Fatalf("InputFederatedPDUs: %v", err)
	}
	if len(res) != len(pdus) {
		t.Fatalf("%d results for %d PDUs", len(res), len(pdus))
	}
	return res
}

// served reports whether a serves the event to anyone (the room is
// world-readable).
func served(t *testing.T, n *Node, eventID string) bool {
	t.Helper()
	_, err := n.Event(context.Background(), "@anyone:example.org", eventID)
	if err != nil && !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Event(%s): %v", eventID, err)
	}
	return err == nil
}

func TestInputFederatedPDUs(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	ctx := context.Background()

	// Without AllowNewRooms, a room the node does not know is refused.
	d0 := newDAGRoom(t, b, gomatrixserverlib.RoomVersionV10)
	d0.build("create", dagEvent{Sender: d0.user("bob"), Type: spec.MRoomCreate, StateKey: stateKey(""), Content: d0.createContent(d0.user("bob"))})
	if r := fedInput(t, a, b, false, d0.raw("create")...)[0]; !errors.Is(r.Err, core.ErrNotFound) {
		t.Fatalf("unknown room: %+v, want ErrNotFound", r)
	}

	d := remoteRoom(t, a, b)
	bob, carol, dave := d.user("bob"), d.user("carol"), d.user("dave")
	head := []string{"create", "bob", "pl"}

	// A valid message, and a chain given child first: both accepted, served.
	d.build("m1", dagEvent{Sender: bob, Type: "m.room.message", Content: map[string]any{"body": "one"}, Prev: []string{"hv"}, Auth: head})
	d.build("m2", dagEvent{Sender: bob, Type: "m.room.message", Content: map[string]any{"body": "two"}, Prev: []string{"m1"}, Auth: head})
	for i, r := range fedInput(t, a, b, false, d.raw("m2", "m1")...) {
		if r.Err != nil {
			t.Fatalf("message %d: %v", i, r.Err)
		}
	}
	for _, name := range []string{"m1", "m2"} {
		if !served(t, a, d.id(name)) {
			t.Fatalf("%s is not served", name)
		}
	}
	page, err := a.RoomEvents(ctx, "@anyone:example.org", d.roomID, core.Range{Backwards: true, Limit: 2})
	if err != nil || len(page.Events) != 2 || page.Events[0].PDU.EventID() != d.id("m2") {
		t.Fatalf("RoomEvents = %+v, %v", page, err)
	}

	// Stored events again: no-ops.
	for _, r := range fedInput(t, a, b, false, d.raw("m1", "m1")...) {
		if r.Err != nil || r.EventID != d.id("m1") {
			t.Fatalf("repeat: %+v", r)
		}
	}

	// A bad signature: refused, not stored.
	good := d.key
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	d.key = other
	d.build("forged", dagEvent{Sender: bob, Type: "m.room.message", Content: map[string]any{"body": "forged"}, Prev: []string{"m2"}, Auth: head})
	d.key = good
	if r := fedInput(t, a, b, false, d.raw("forged")...)[0]; !errors.Is(r.Err, core.ErrInvalidSignature) || r.EventID != d.id("forged") {
		t.Fatalf("forged: %+v, want ErrInvalidSignature", r)
	}
	if has(t, a, d.id("forged")) {
		t.Fatal("forged event was stored")
	}

	// Tampered content: the hash fails, the redacted form is kept.
	d.build("m3", dagEvent{Sender: bob, Type: "m.room.message", Content: map[string]any{"body": "three"}, Prev: []string{"m2"}, Auth: head})
	tampered := bytes.Replace(d.ev("m3").JSON(), []byte(`"three"`), []byte(`"evil!"`), 1)
	r := fedInput(t, a, b, false, tampered)[0]
	if r.Err != nil || !r.Redacted || r.EventID != d.id("m3") {
		t.Fatalf("tampered: %+v, want accepted redacted", r)
	}
	ev, err := a.Event(ctx, "@anyone:example.org", d.id("m3"))
	if err != nil || strings.Contains(string(ev.PDU.Content()), "body") {
		t.Fatalf("tampered event: %v, %v; want stored without content", ev, err)
	}

	// Sender not joined: rejected (stored as such, never served).
	d.build("dave", dagEvent{Sender: dave, Type: "m.room.message", Content: map[string]any{"body": "hi"}, Prev: []string{"m3"}, Auth: head})
	var ie *core.InputError
	if r := fedInput(t, a, b, false, d.raw("dave")...)[0]; !errors.As(r.Err, &ie) || ie.SoftFailed {
		t.Fatalf("not joined: %+v, want rejected", r)
	}
	if served(t, a, d.id("dave")) {
		t.Fatal("rejected event is served")
	}

	// Soft-fail: carol joins and speaks; bob bans her; her next message
	// (prev before the ban) passes at its own state, fails the current one.
	d.build("carol", dagEvent{Sender: carol, Type: spec.MRoomMember, StateKey: stateKey(carol), Content: map[string]any{"membership": "join"},
		Prev: []string{"m3"}, Auth: []string{"create", "pl", "jr"}})
	d.build("c1", dagEvent{Sender: carol, Type: "m.room.message", Content: map[string]any{"body": "c1"}, Prev: []string{"carol"}, Auth: []string{"create", "pl", "carol"}})
	d.build("ban", dagEvent{Sender: bob, Type: spec.MRoomMember, StateKey: stateKey(carol), Content: map[string]any{"membership": "ban"},
		Prev: []string{"c1"}, Auth: []string{"create", "bob", "pl", "carol"}})
	for i, r := range fedInput(t, a, b, false, d.raw("carol", "c1", "ban")...) {
		if r.Err != nil {
			t.Fatalf("carol/ban %d: %v", i, r.Err)
		}
	}
	d.build("c2", dagEvent{Sender: carol, Type: "m.room.message", Content: map[string]any{"body": "c2"}, Prev: []string{"c1"}, Auth: []string{"create", "pl", "carol"}})
	if r := fedInput(t, a, b, false, d.raw("c2")...)[0]; !errors.As(r.Err, &ie) || !ie.SoftFailed {
		t.Fatalf("after ban: %+v, want soft-failed", r)
	}
	if !has(t, a, d.id("c2")) || served(t, a, d.id("c2")) {
		t.Fatal("soft-failed event must be stored and not served")
	}

	// Unknown prev events: refused, naming them, not stored.
	d.build("orphan", dagEvent{Sender: bob, Type: "m.room.message", Content: map[string]any{"body": "?"}, Prev: []string{"$missing"}, Auth: head})
	if r := fedInput(t, a, b, false, d.raw("orphan")...)[0]; !errors.Is(r.Err, inbound.ErrMissingEvents) || !strings.Contains(r.Err.Error(), "$missing") {
		t.Fatalf("orphan: %+v, want inbound.ErrMissingEvents naming $missing", r)
	}
	if has(t, a, d.id("orphan")) {
		t.Fatal("orphan was stored")
	}

	// Garbage: per-PDU errors, no panic.
	big := `{"room_id":"` + d.roomID + `","pad":"` + strings.Repeat("x", core.MaxEventSize) + `"}`
	for i, r := range fedInput(t, a, b, false,
		json.RawMessage(`not json`), json.RawMessage(`null`), json.RawMessage(`[]`), json.RawMessage(`{}`),
		json.RawMessage(`{"room_id":5}`), json.RawMessage(`{"room_id":"`+d.roomID+`"}`),
		json.RawMessage(`{"room_id":"`+d.roomID+`","type":"m.room.message","sender":"nope","prev_events":[],"auth_events":[],"content":{}}`),
		json.RawMessage(big),
	) {
		if r.Err == nil {
			t.Errorf("garbage PDU %d accepted: %+v", i, r)
		}
	}
}

func has(t *testing.T, n *Node, eventID string) bool {
	t.Helper()
	return countPrefix(t, n, core.EventKey(eventID)) > 0
}

func TestTopoOrder(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	d := remoteRoom(t, a, b)
	bob := d.user("bob")
	head := []string{"create", "bob", "pl"}
	// A fork and merge given in reverse: x, then y and z on x, then w on both.
	d.build("x", dagEvent{Sender: bob, Type: "m.room.message", Content: map[string]any{}, Prev: []string{"hv"}, Auth: head})
	d.build("y", dagEvent{Sender: bob, Type: "m.room.message", Content: map[string]any{}, Prev: []string{"x"}, Auth: head})
	d.build("z", dagEvent{Sender: bob, Type: "m.room.message", Content: map[string]any{}, Prev: []string{"x"}, Auth: head})
	d.build("w", dagEvent{Sender: bob, Type: "m.room.message", Content: map[string]any{}, Prev: []string{"y", "z"}, Auth: head})
	for i, r := range fedInput(t, a, b, false, d.raw("w", "z", "y", "x")...) {
		if r.Err != nil {
			t.Fatalf("PDU %d: %v", i, r.Err)
		}
	}
	if ext := roomHead(t, a, d.roomID).Extremities; len(ext) != 1 || ext[0] != d.id("w") {
		t.Fatalf("extremities = %v, want [w]", ext)
	}
}

// TestUnjoinedRoomRefused: PDUs for a room the node has but in which no
// local user is joined are refused and not stored; once a local user is
// joined, they are taken in.
func TestUnjoinedRoomRefused(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	d := newDAGRoom(t, b, gomatrixserverlib.RoomVersionV10)
	bob := d.user("bob")
	d.build("create", dagEvent{Sender: bob, Type: spec.MRoomCreate, StateKey: stateKey(""), Content: d.createContent(bob)})
	d.build("bob", dagEvent{Sender: bob, Type: spec.MRoomMember, StateKey: stateKey(bob), Content: map[string]any{"membership": "join"},
		Prev: []string{"create"}, Auth: []string{"create"}})
	for i, r := range fedInput(t, a, b, true, d.raw("create", "bob")...) {
		if r.Err != nil {
			t.Fatalf("bootstrap PDU %d: %v", i, r.Err)
		}
	}
	d.build("m1", dagEvent{Sender: bob, Type: "m.room.message", Content: map[string]any{"body": "x"}, Prev: []string{"bob"}, Auth: []string{"create", "bob"}})
	if r := fedInput(t, a, b, false, d.raw("m1")...)[0]; !errors.Is(r.Err, core.ErrForbidden) {
		t.Fatalf("PDU for a room no local user is in: %+v, want ErrForbidden", r)
	}
	if has(t, a, d.id("m1")) {
		t.Fatal("PDU for a room no local user is in was stored")
	}
	// A membership event of a local user is let in (an invite, say): this
	// one gets as far as its signatures (an invite needs this server's
	// too, which /invite adds).
	local := "@carol:" + a.ServerName()
	d.build("inv", dagEvent{Sender: bob, Type: spec.MRoomMember, StateKey: &local, Content: map[string]any{"membership": "invite"},
		Prev: []string{"bob"}, Auth: []string{"create", "bob"}})
	if r := fedInput(t, a, b, false, d.raw("inv")...)[0]; !errors.Is(r.Err, core.ErrInvalidSignature) {
		t.Fatalf("invite of a local user into a room no local user is in: %v, want it checked", r.Err)
	}
	markLocalJoin(t, a, d.roomID)
	if r := fedInput(t, a, b, false, d.raw("m1")...)[0]; r.Err != nil {
		t.Fatalf("PDU once a local user is joined: %v", r.Err)
	}
	if !has(t, a, d.id("m1")) {
		t.Fatal("m1 is not stored")
	}
}
