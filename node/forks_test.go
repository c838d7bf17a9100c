package node

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/inbound"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// joinLocal has a local user join the (public) room.
func joinLocal(t testing.TB, n *Node, s Session, roomID string) {
	t.Helper()
	sk := s.UserID
	if _, err := n.SendEvent(context.Background(), core.SendRequest{Sender: s.UserID, DeviceID: s.DeviceID, RoomID: roomID,
		Type: spec.MRoomMember, StateKey: &sk, Content: json.RawMessage(`{"membership":"join"}`)}); err != nil {
		t.Fatalf("join: %v", err)
	}
}

// TestDepthCapRecoversStoredRoom: a room whose newest event (from a peer)
// sits at the largest depth canonical JSON allows, stored by a node that
// kept no extremity states in its room head, takes local events again after
// a restart: at the cap, not beyond it.
func TestDepthCapRecoversStoredRoom(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t.TempDir())
	cfg.NoSyncWrites = true
	a := openNode(t, cfg)
	b := newTestNodeWith(t, func(c *core.Config) { c.NoSyncWrites = true })
	d := forkRoom(t, a, b)
	alice := register(t, a, "alice")
	joinLocal(t, a, alice, d.roomID)
	head := roomHead(t, a, d.roomID)
	deep := d.rawMessage(t, head.Extremities, core.MaxDepth, "deep")
	res, err := a.InputFederatedPDUs(ctx, inbound.FederatedInput{Origin: b.ServerName(), PDUs: []json.RawMessage{deep.JSON()}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("PDU at depth 2^53-1: %v, %v", err, res)
	}
	// The head as a node before extremity states were kept wrote it.
	err = a.DB.Update(func(tx *kv.Txn) error {
		r, err := core.LoadRoom(tx, d.roomID)
		if err != nil {
			return err
		}
		r.ExtStates = nil
		return tx.SetJSON(core.RoomKey(d.roomID), r)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a = openNode(t, cfg)
	t.Cleanup(func() { a.Close() })
	for i := range 2 {
		id := send(t, a, alice, d.roomID, fmt.Sprintf("after %d", i))
		ev, err := a.Event(ctx, alice.UserID, id)
		if err != nil {
			t.Fatal(err)
		}
		if ev.PDU.Depth() != core.MaxDepth {
			t.Fatalf("local event %d at depth %d, want %d", i, ev.PDU.Depth(), int64(core.MaxDepth))
		}
	}
	if h := roomHead(t, a, d.roomID); len(h.ExtStates) != len(h.Extremities) {
		t.Fatalf("room head keeps %d extremity states for %d extremities", len(h.ExtStates), len(h.Extremities))
	}
}

// rawMessage is a message from bob in d's room with the given prev events
// and depth, signed by d's server, for what d.build cannot make (a depth of
// the test's choosing, prev events d did not build).
func (d *dagRoom) rawMessage(t *testing.T, prevs []string, depth int64, body string) gomatrixserverlib.PDU {
	t.Helper()
	proto := gomatrixserverlib.ProtoEvent{SenderID: d.user("bob"), RoomID: d.roomID, Type: "m.room.message",
		PrevEvents: prevs, AuthEvents: []string{d.id("create"), d.id("bob"), d.id("pl")}, Depth: depth,
		Content: spec.RawJSON(fmt.Sprintf(`{"msgtype":"m.text","body":%q}`, body))}
	verImpl, err := gomatrixserverlib.GetRoomVersion(d.version)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := verImpl.NewEventBuilderFromProtoEvent(&proto).Build(d.ts, spec.ServerName(d.server), identity.KeyID, d.key)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestLocalPrevEventsCoverStates: with more forward extremities than a
// local event may refer to, the event refers to 20 of them, the newest of
// each distinct state first (an older state-changing fork and the local
// join are among them however many newer message forks there are), so its
// state is the room's current state; and the forks converge as the room is
// used: each local event takes 19 extremities off.
func TestLocalPrevEventsCoverStates(t *testing.T) {
	ctx := context.Background()
	a := newTestNodeWith(t, func(c *core.Config) { c.NoSyncWrites = true })
	b := newTestNodeWith(t, func(c *core.Config) { c.NoSyncWrites = true })
	d := forkRoom(t, a, b)
	alice := register(t, a, "alice")
	joinLocal(t, a, alice, d.roomID)
	joinID := roomHead(t, a, d.roomID).Extremities[0]
	topic := d.build("topic", dagEvent{Sender: d.user("bob"), Type: spec.MRoomTopic, StateKey: stateKey(""), Content: map[string]any{"topic": "forked"},
		Prev: []string{"hv"}, Auth: []string{"create", "bob", "pl"}})
	for _, pdus := range [][]json.RawMessage{{topic.JSON()}, buildForks(d, "f", 30)} {
		res, err := a.InputFederatedPDUs(ctx, inbound.FederatedInput{Origin: b.ServerName(), PDUs: pdus})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("fork %s: %v", d.name(r.EventID), r.Err)
			}
		}
	}
	head := roomHead(t, a, d.roomID)
	if len(head.Extremities) != 32 {
		t.Fatalf("%d extremities, want 32 (30 forks, the topic, alice's join)", len(head.Extremities))
	}

	id := send(t, a, alice, d.roomID, "hello forks")
	ev, err := a.Event(ctx, alice.UserID, id)
	if err != nil {
		t.Fatal(err)
	}
	prevs := ev.PDU.PrevEventIDs()
	if len(prevs) != core.MaxPrevEvents || !slices.Contains(prevs, topic.EventID()) || !slices.Contains(prevs, joinID) {
		t.Fatalf("prev events %v: want %d, with the topic fork and alice's join", prevs, core.MaxPrevEvents)
	}
	before := readSnapshot(t, a, storedRecord(t, a, id).StateBefore)
	if got, _ := before.Get(spec.MRoomTopic, ""); got != topic.EventID() {
		t.Fatalf("state before alice's message has topic %q, want the fork's", got)
	}
	if n := len(roomHead(t, a, d.roomID).Extremities); n != 32-core.MaxPrevEvents+1 {
		t.Fatalf("%d extremities after one local event, want %d", n, 32-core.MaxPrevEvents+1)
	}
	send(t, a, alice, d.roomID, "converged")
	if n := len(roomHead(t, a, d.roomID).Extremities); n != 1 {
		t.Fatalf("%d extremities after two local events, want 1", n)
	}
}

// recordingFetcher answers get_missing_events from a fixed list and keeps
// the requests.
type recordingFetcher struct {
	directFetcher
	answer []json.RawMessage
	reqs   *[]inbound.MissingEventsRequest
}

func (r recordingFetcher) GetMissingEvents(_ context.Context, _, _ string, req inbound.MissingEventsRequest) ([]json.RawMessage, error) {
	*r.reqs = append(*r.reqs, req)
	return r.answer, nil
}

// TestMissingEventsEarliestBounded: in a room with more forward
// extremities than a request should carry (a peer forked it 150 times),
// get_missing_events names only the newest inbound.MaxEarliestEvents of them, and
// the gap is still filled.
func TestMissingEventsEarliestBounded(t *testing.T) {
	ctx := context.Background()
	a := newTestNodeWith(t, func(c *core.Config) { c.NoSyncWrites = true })
	b := newTestNodeWith(t, func(c *core.Config) { c.NoSyncWrites = true })
	d := forkRoom(t, a, b)
	forks := buildForks(d, "f", 150)
	for len(forks) > 0 {
		k := min(50, len(forks))
		if _, err := a.InputFederatedPDUs(ctx, inbound.FederatedInput{Origin: b.ServerName(), PDUs: forks[:k]}); err != nil {
			t.Fatal(err)
		}
		forks = forks[k:]
	}
	m1 := d.build("m1", dagEvent{Sender: d.user("bob"), Type: "m.room.message", Content: map[string]any{"body": "one"},
		Prev: []string{"hv"}, Auth: []string{"create", "bob", "pl"}})
	m2 := d.build("m2", dagEvent{Sender: d.user("bob"), Type: "m.room.message", Content: map[string]any{"body": "two"},
		Prev: []string{"m1"}, Auth: []string{"create", "bob", "pl"}})
	var reqs []inbound.MissingEventsRequest
	calls := 0
	setEventFetcher(a, recordingFetcher{directFetcher: directFetcher{fetching: a, resident: b, calls: &calls},
		answer: []json.RawMessage{m1.JSON()}, reqs: &reqs})
	res, err := a.InputFederatedPDUs(ctx, inbound.FederatedInput{Origin: b.ServerName(), PDUs: []json.RawMessage{m2.JSON()}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("m2: %v %v", err, res)
	}
	if len(reqs) == 0 {
		t.Fatal("no get_missing_events")
	}
	for _, r := range reqs {
		if len(r.EarliestEvents) == 0 || len(r.EarliestEvents) > inbound.MaxEarliestEvents {
			t.Fatalf("get_missing_events named %d earliest events, want 1..%d", len(r.EarliestEvents), inbound.MaxEarliestEvents)
		}
	}
}

// TestRejectInviteAtMaxDepth: an invite from another server at the largest
// depth canonical JSON allows can still be rejected when no server in the
// room takes the leave: the local rejection follows the invite at the cap
// instead of overflowing it.
func TestRejectInviteAtMaxDepth(t *testing.T) {
	ctx := context.Background()
	b := newTestNodeWith(t, func(c *core.Config) { c.NoSyncWrites = true })
	h := newTestNodeWith(t, func(c *core.Config) { c.NoSyncWrites = true })
	bob := register(t, b, "bob")
	d := newDAGRoom(t, h, gomatrixserverlib.RoomVersionV10)
	sk := bob.UserID
	proto := gomatrixserverlib.ProtoEvent{SenderID: d.user("mallory"), RoomID: d.roomID, Type: spec.MRoomMember, StateKey: &sk,
		PrevEvents: []string{"$prev"}, AuthEvents: []string{"$auth"}, Depth: core.MaxDepth, Content: spec.RawJSON(`{"membership":"invite"}`)}
	verImpl, err := gomatrixserverlib.GetRoomVersion(d.version)
	if err != nil {
		t.Fatal(err)
	}
	invite, err := verImpl.NewEventBuilderFromProtoEvent(&proto).Build(d.ts, spec.ServerName(d.server), identity.KeyID, d.key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReceiveInvite(ctx, inbound.InviteRequest{Origin: h.ServerName(), RoomID: d.roomID, EventID: invite.EventID(),
		RoomVersion: d.version, Event: invite.JSON()}); err != nil {
		t.Fatalf("invite: %v", err)
	}
	id, err := b.ChangeMembership(ctx, core.MembershipChange{Sender: bob.UserID, RoomID: d.roomID, Target: bob.UserID, Membership: spec.Leave})
	if err != nil {
		t.Fatalf("reject: %v", err)
	}
	oob, err := b.OutOfBandRoom(ctx, bob.UserID, d.roomID)
	if err != nil || oob.Event.PDU.EventID() != id || oob.Event.PDU.Depth() != core.MaxDepth {
		t.Fatalf("rejection: %+v %v, want %s at depth %d", oob, err, id, int64(core.MaxDepth))
	}
}
