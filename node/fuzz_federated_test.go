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

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/inbound"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// FuzzInputFederatedPDU feeds arbitrary bytes, as one PDU from a peer, into
// the federation input of a real node that has a room (in a Badger
// directory of its own). Input must never panic or fail as a whole; the PDU
// gets its own result, and it is accepted only if it is a well-formed event
// of the known room carrying a valid signature of its sender's server. The
// seeds are real events of that room (valid, forged, tampered, orphaned)
// and broken forms of them.
func FuzzInputFederatedPDU(f *testing.F) {
	a := newTestNodeWith(f, func(c *core.Config) { c.NoSyncWrites = true })
	b := newTestNodeWith(f, func(c *core.Config) { c.NoSyncWrites = true })
	d := newDAGRoom(f, b, gomatrixserverlib.RoomVersionV10)
	bob := d.user("bob")
	head := []string{"create", "bob", "pl"}
	d.build("create", dagEvent{Sender: bob, Type: spec.MRoomCreate, StateKey: stateKey(""), Content: d.createContent(bob)})
	d.build("bob", dagEvent{Sender: bob, Type: spec.MRoomMember, StateKey: stateKey(bob), Content: map[string]any{"membership": "join"},
		Prev: []string{"create"}, Auth: []string{"create"}})
	d.build("pl", dagEvent{Sender: bob, Type: spec.MRoomPowerLevels, StateKey: stateKey(""), Content: powerLevels(map[string]int{bob: 100}),
		Prev: []string{"bob"}, Auth: []string{"create", "bob"}})
	d.build("jr", dagEvent{Sender: bob, Type: spec.MRoomJoinRules, StateKey: stateKey(""), Content: map[string]any{"join_rule": "public"},
		Prev: []string{"pl"}, Auth: head})
	res, err := a.InputFederatedPDUs(context.Background(), inbound.FederatedInput{Origin: b.ServerName(), PDUs: d.raw("create", "bob", "pl", "jr"), AllowNewRooms: true})
	if err != nil {
		f.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			f.Fatalf("bootstrap PDU %d: %v", i, r.Err)
		}
	}

	// Seeds, built before the fuzz function runs (it must not build events
	// with d, whose helpers report to f).
	d.build("m1", dagEvent{Sender: bob, Type: "m.room.message", Content: map[string]any{"msgtype": "m.text", "body": "one"}, Prev: []string{"jr"}, Auth: head})
	d.build("topic", dagEvent{Sender: bob, Type: spec.MRoomTopic, StateKey: stateKey(""), Content: map[string]any{"topic": "t"}, Prev: []string{"jr"}, Auth: head})
	d.build("carol", dagEvent{Sender: d.user("carol"), Type: spec.MRoomMember, StateKey: stateKey(d.user("carol")), Content: map[string]any{"membership": "join"},
		Prev: []string{"jr"}, Auth: []string{"create", "pl", "jr"}})
	d.build("orphan", dagEvent{Sender: bob, Type: "m.room.message", Content: map[string]any{"body": "?"}, Prev: []string{"$missing"}, Auth: head})
	d.build("stranger", dagEvent{Sender: d.user("dave"), Type: "m.room.message", Content: map[string]any{"body": "hi"}, Prev: []string{"jr"}, Auth: head})
	good := d.key
	_, d.key, _ = ed25519.GenerateKey(rand.Reader)
	d.build("forged", dagEvent{Sender: bob, Type: "m.room.message", Content: map[string]any{"body": "forged"}, Prev: []string{"jr"}, Auth: head})
	d.key = good
	m1 := d.ev("m1").JSON()
	for _, name := range []string{"m1", "topic", "carol", "orphan", "stranger", "forged", "jr"} {
		f.Add([]byte(d.ev(name).JSON()))
	}
	for _, seed := range [][]byte{
		m1[:len(m1)/2],
		bytes.Replace(m1, []byte(`"one"`), []byte(`"evil"`), 1),
		bytes.Replace(m1, []byte(`"m.room.message"`), []byte(`5`), 1),
		bytes.Replace(m1, []byte(`"depth":`), []byte(`"depth":-`), 1),
		bytes.Replace(m1, []byte(`"prev_events":[`), []byte(`"prev_events":[null,`), 1),
		bytes.Replace(m1, []byte(d.roomID), []byte("!other:"+b.ServerName()), 1),
		[]byte(`{"room_id":"` + d.roomID + `"}`),
		[]byte(`{"room_id":"` + d.roomID + `","type":"m.room.create","state_key":"","content":{"room_version":"10"}}`),
		[]byte(`{"room_id":5}`), []byte(`null`), []byte(`[]`), []byte(`"x"`), []byte(``), []byte(`{`),
		[]byte(`{"room_id":"` + d.roomID + `","pad":"` + strings.Repeat("x", 100) + `"}`),
	} {
		f.Add(seed)
	}

	verImpl, err := gomatrixserverlib.GetRoomVersion(d.version)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ctx := context.Background()
		res, err := a.InputFederatedPDUs(ctx, inbound.FederatedInput{Origin: b.ServerName(), PDUs: []json.RawMessage{raw}})
		if err != nil {
			t.Fatalf("InputFederatedPDUs failed as a whole: %v", err)
		}
		if len(res) != 1 {
			t.Fatalf("%d results for one PDU", len(res))
		}
		r := res[0]
		if r.Err != nil {
			return
		}
		// Accepted (or already stored): it must be an event of the room,
		// as it parses on its own, signed by its sender's server.
		if r.EventID == "" || r.RoomID != d.roomID {
			t.Fatalf("accepted PDU with event ID %q in room %q", r.EventID, r.RoomID)
		}
		ev, err := verImpl.NewEventFromUntrustedJSON(raw)
		if err != nil {
			t.Fatalf("accepted PDU %s does not parse: %v", r.EventID, err)
		}
		if ev.EventID() != r.EventID || ev.RoomID().String() != d.roomID {
			t.Fatalf("accepted PDU is %s in %s, result says %s", ev.EventID(), ev.RoomID(), r.EventID)
		}
		if err := gomatrixserverlib.VerifyEventSignatures(ctx, ev, identity.KeyRing{}, core.UserIDForSender); err != nil {
			t.Fatalf("accepted PDU %s has bad signatures: %v", r.EventID, err)
		}
		if !has(t, a, r.EventID) {
			t.Fatalf("accepted PDU %s is not stored", r.EventID)
		}
	})
}

// TestInputFederatedPDUBadRoomID: a PDU whose room_id the library's parser
// lets through but its accessors panic on ("!:", found by fuzzing) is that
// PDU's ErrBadInput, even where it could start a room.
func TestInputFederatedPDUBadRoomID(t *testing.T) {
	a := newTestNode(t)
	pdu := json.RawMessage(`{"auth_events":[],"content":{"room_version":"10"},"prev_events":[],"room_id":"!:","sender":"@:","state_key":"","type":"m.room.create"}`)
	for _, allowNew := range []bool{false, true} {
		res, err := a.InputFederatedPDUs(context.Background(), inbound.FederatedInput{Origin: "o", PDUs: []json.RawMessage{pdu}, AllowNewRooms: allowNew})
		if err != nil || len(res) != 1 || !errors.Is(res[0].Err, core.ErrBadInput) {
			t.Fatalf("AllowNewRooms %v: %+v, %v; want ErrBadInput", allowNew, res, err)
		}
	}
}
