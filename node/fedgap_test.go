package node

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/inbound"
	"github.com/matrix-org/gomatrixserverlib"
)

// noMissingEvents is a directFetcher whose get_missing_events always
// fails, as when the origin cannot or will not fill the gap that way.
type noMissingEvents struct{ directFetcher }

func (noMissingEvents) GetMissingEvents(context.Context, string, string, inbound.MissingEventsRequest) ([]json.RawMessage, error) {
	return nil, errors.New("get_missing_events unavailable")
}

// joinedPair is A's public room with B's bob joined, B fetching from A.
func joinedPair(t *testing.T) (a, b *Node, alice, bob Session, roomID string, calls *int) {
	t.Helper()
	ctx := context.Background()
	a, b = newTestNode(t), newTestNode(t)
	alice, bob = register(t, a, "alice"), register(t, b, "bob")
	roomID, err := a.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPublicChat})
	if err != nil {
		t.Fatal(err)
	}
	setRemoteJoiner(b, directJoiner{joining: b, resident: a})
	if _, err := b.Join(ctx, bob.UserID, bob.DeviceID, roomID); err != nil {
		t.Fatal(err)
	}
	calls = new(int)
	setEventFetcher(b, noMissingEvents{directFetcher{fetching: b, resident: a, calls: calls}})
	return a, b, alice, bob, roomID, calls
}

// eventJSON is a stored event's JSON (redacted form if redacted), as the
// inbound side reads it.
func eventJSON(tx *kv.Txn, id string) (json.RawMessage, error) {
	rec, err := core.LoadEventRecord(tx, id)
	if err != nil {
		return nil, err
	}
	return rec.ReadJSON(tx, id)
}

// storedJSON is an event's JSON as n stores it.
func storedJSON(t *testing.T, n *Node, id string) json.RawMessage {
	t.Helper()
	var j json.RawMessage
	if err := n.DB.View(func(tx *kv.Txn) error {
		var err error
		j, err = eventJSON(tx, id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return j
}

// TestFederatedPDUWithUnknownAuthEvents: a PDU whose prev event B has but
// whose auth events include one B never saw (a power levels change on a
// branch of its own) has that event fetched with /event_auth, stored as an
// outlier (not in the timeline, not the room's state), and is accepted.
func TestFederatedPDUWithUnknownAuthEvents(t *testing.T) {
	ctx := context.Background()
	a, b, alice, bob, roomID, calls := joinedPair(t)
	ev := func(evType, stateKey string) gomatrixserverlib.PDU {
		e, err := a.RoomStateEvent(ctx, alice.UserID, roomID, evType, stateKey)
		if err != nil {
			t.Fatal(err)
		}
		return e.PDU
	}
	create, aliceJoin, pl, bobJoin := ev("m.room.create", ""), ev("m.room.member", alice.UserID), ev("m.room.power_levels", ""), ev("m.room.member", bob.UserID)
	d := &dagRoom{t: t, key: a.SigningKey(), server: a.ServerName(), version: create.Version(), roomID: roomID,
		ts: time.Now(), byName: map[string]gomatrixserverlib.PDU{}, names: map[string]string{}}
	for _, e := range []gomatrixserverlib.PDU{create, aliceJoin, pl, bobJoin} {
		d.byName[e.EventID()], d.names[e.EventID()] = e, e.EventID()
	}
	d.build("pl2", dagEvent{Sender: alice.UserID, Type: "m.room.power_levels", StateKey: stateKey(""),
		Content: powerLevels(map[string]int{alice.UserID: 100, "@someone:example.org": 50}),
		Prev:    []string{bobJoin.EventID()}, Auth: []string{create.EventID(), aliceJoin.EventID(), pl.EventID()}})
	d.build("msg", dagEvent{Sender: alice.UserID, Type: "m.room.message", Content: map[string]string{"msgtype": "m.text", "body": "after pl2"},
		Prev: []string{bobJoin.EventID()}, Auth: []string{create.EventID(), aliceJoin.EventID(), "pl2"}})
	d.accept(a, "pl2", "msg")

	res, err := b.InputFederatedPDUs(ctx, inbound.FederatedInput{Origin: a.ServerName(), PDUs: []json.RawMessage{storedJSON(t, a, d.id("msg"))}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("input: %+v, %v", res, err)
	}
	if *calls == 0 {
		t.Fatal("nothing was fetched")
	}
	if _, err := b.Event(ctx, bob.UserID, d.id("msg")); err != nil {
		t.Fatalf("the message is not served on B: %v", err)
	}
	rec := storedRecord(t, b, d.id("pl2"))
	if rec.Rejected != "" || rec.SoftFailed {
		t.Fatalf("fetched auth event: %+v", rec)
	}
	if cur, err := b.RoomStateEvent(ctx, bob.UserID, roomID, "m.room.power_levels", ""); err != nil || cur.PDU.EventID() != pl.EventID() {
		t.Fatalf("B's power levels changed by an outlier: %v", err)
	}
	page, err := b.RoomEvents(ctx, bob.UserID, roomID, core.Range{Backwards: true, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Events {
		if e.PDU.EventID() == d.id("pl2") {
			t.Fatal("the fetched auth event is in B's timeline")
		}
	}

	// A merges the two branches. The outlier cannot be a prev event as it
	// is (its state is unknown): B fetches the state at it, and then the
	// merge makes pl2 B's power levels.
	next := send(t, a, alice, roomID, "merge")
	res, err = b.InputFederatedPDUs(ctx, inbound.FederatedInput{Origin: a.ServerName(), PDUs: []json.RawMessage{storedJSON(t, a, next)}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("input of the merge: %+v, %v", res, err)
	}
	if cur, err := b.RoomStateEvent(ctx, bob.UserID, roomID, "m.room.power_levels", ""); err != nil || cur.PDU.EventID() != d.id("pl2") {
		t.Fatalf("B's power levels after the merge: %v, want pl2", err)
	}
}

// TestFederatedPDUAcrossUnfilledGap: B misses three of A's events (a topic
// change among them) and gets only the last; get_missing_events fails, so
// B fetches the state at the missing prev event (/state_ids, /event) and
// accepts the PDU with it: the PDU is served and the topic changed in the
// gap is B's current topic.
func TestFederatedPDUAcrossUnfilledGap(t *testing.T) {
	ctx := context.Background()
	a, b, alice, bob, roomID, _ := joinedPair(t)
	sendState(t, a, alice, roomID, "m.room.topic", "", map[string]string{"topic": "changed in the gap"})
	send(t, a, alice, roomID, "one")
	last := send(t, a, alice, roomID, "two")

	res, err := b.InputFederatedPDUs(ctx, inbound.FederatedInput{Origin: a.ServerName(), PDUs: []json.RawMessage{storedJSON(t, a, last)}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("input across the gap: %+v, %v", res, err)
	}
	if _, err := b.Event(ctx, bob.UserID, last); err != nil {
		t.Fatalf("the PDU is not served on B: %v", err)
	}
	topic, err := b.RoomStateEvent(ctx, bob.UserID, roomID, "m.room.topic", "")
	if err != nil {
		t.Fatalf("B's topic: %v", err)
	}
	var c struct{ Topic string }
	if err := json.Unmarshal(topic.PDU.Content(), &c); err != nil || c.Topic != "changed in the gap" {
		t.Fatalf("B's topic: %s", topic.PDU.Content())
	}
	// B can send on top of it: the room is whole again.
	send(t, b, bob, roomID, "after the gap")
}
