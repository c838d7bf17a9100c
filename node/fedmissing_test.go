package node

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/inbound"
)

// directFetcher is an EventFetcher that asks a resident node in-process.
type directFetcher struct {
	fetching, resident *Node
	calls              *int
}

func (d directFetcher) GetMissingEvents(ctx context.Context, server, roomID string, req inbound.MissingEventsRequest) ([]json.RawMessage, error) {
	*d.calls++
	return d.resident.MissingEvents(ctx, d.fetching.ServerName(), roomID, req)
}

func TestMissingEvents(t *testing.T) {
	ctx := context.Background()
	a, b, c := newTestNode(t), newTestNode(t), newTestNode(t)
	alice, bob := register(t, a, "alice"), register(t, b, "bob")
	roomID, err := a.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPublicChat})
	if err != nil {
		t.Fatal(err)
	}
	setRemoteJoiner(b, directJoiner{joining: b, resident: a})
	if _, err := b.Join(ctx, bob.UserID, bob.DeviceID, roomID); err != nil {
		t.Fatal(err)
	}
	m1 := send(t, a, alice, roomID, "one")
	m2 := send(t, a, alice, roomID, "two")
	m3 := send(t, a, alice, roomID, "three")
	raw3 := func() json.RawMessage {
		var j json.RawMessage
		if err := a.DB.View(func(tx *kv.Txn) error {
			var err error
			j, err = eventJSON(tx, m3)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return j
	}()

	// Served: the events before m3 back to B's extremities, oldest first;
	// limit respected; a server not in the room is refused.
	ext := roomHead(t, b, roomID).Extremities
	evs, err := a.MissingEvents(ctx, b.ServerName(), roomID, inbound.MissingEventsRequest{EarliestEvents: ext, LatestEvents: []string{m3}, Limit: 10})
	if err != nil || len(evs) != 2 {
		t.Fatalf("missing events: %d, %v; want m1, m2", len(evs), err)
	}
	if bodies := bodiesOf(evs); bodies[0] != "one" || bodies[1] != "two" {
		t.Fatalf("missing events %v, want [one two]", bodies)
	}
	if evs, err := a.MissingEvents(ctx, b.ServerName(), roomID, inbound.MissingEventsRequest{EarliestEvents: ext, LatestEvents: []string{m3}, Limit: 1}); err != nil || len(evs) != 1 {
		t.Fatalf("limit 1: %d, %v", len(evs), err)
	}
	if _, err := a.MissingEvents(ctx, c.ServerName(), roomID, inbound.MissingEventsRequest{LatestEvents: []string{m3}}); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("server not in the room: %v, want ErrForbidden", err)
	}

	// Without a fetcher, m3 alone is refused; with one, m1 and m2 are
	// fetched and all three are stored.
	res, err := b.InputFederatedPDUs(ctx, inbound.FederatedInput{Origin: a.ServerName(), PDUs: []json.RawMessage{raw3}})
	if err != nil || !errors.Is(res[0].Err, inbound.ErrMissingEvents) {
		t.Fatalf("without a fetcher: %+v, %v", res, err)
	}
	calls := 0
	setEventFetcher(b, directFetcher{fetching: b, resident: a, calls: &calls})
	res, err = b.InputFederatedPDUs(ctx, inbound.FederatedInput{Origin: a.ServerName(), PDUs: []json.RawMessage{raw3}})
	if err != nil || res[0].Err != nil || res[0].EventID != m3 {
		t.Fatalf("with a fetcher: %+v, %v", res, err)
	}
	if calls != 1 {
		t.Fatalf("%d fetches, want 1", calls)
	}
	for _, id := range []string{m1, m2, m3} {
		if _, err := b.Event(ctx, bob.UserID, id); err != nil {
			t.Fatalf("%s not served on B after the fetch: %v", id, err)
		}
	}
}

// bodiesOf is the content bodies of events.
func bodiesOf(evs []json.RawMessage) []string {
	var ids []string
	for _, e := range evs {
		var h struct {
			Content struct{ Body string } `json:"content"`
		}
		_ = json.Unmarshal(e, &h)
		ids = append(ids, h.Content.Body)
	}
	return ids
}

// TestMissingEventsRounds: a batch of 80 PDUs, each after an event B does
// not have (as a new joiner's sticky events between other messages), needs
// more events than one get_missing_events brings (inbound.FetchMissingLimit): a
// second round fetches the rest, and every PDU is accepted.
func TestMissingEventsRounds(t *testing.T) {
	ctx := context.Background()
	a, b, alice, _, roomID, calls := joinedPair(t)
	setEventFetcher(b, directFetcher{fetching: b, resident: a, calls: calls})
	var pdus []json.RawMessage
	var ids []string
	for range 80 {
		send(t, a, alice, roomID, "unsent")
		id := send(t, a, alice, roomID, "sent")
		pdus = append(pdus, storedJSON(t, a, id))
		ids = append(ids, id)
	}
	res, err := b.InputFederatedPDUs(ctx, inbound.FederatedInput{Origin: a.ServerName(), PDUs: pdus})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.EventID != ids[i] {
			t.Errorf("PDU %d: %s, %v", i, r.EventID, r.Err)
		}
	}
	if *calls != 2 {
		t.Errorf("%d get_missing_events, want 2 (80 missing, %d per round)", *calls, inbound.FetchMissingLimit)
	}
}

// TestMissingEventsLongGap: one PDU after 120 events B does not have (a
// partition's backlog) is connected by walking back a round at a time
// through what the earlier rounds fetched: every one of the 120 is stored
// and the PDU accepted, with no hole.
func TestMissingEventsLongGap(t *testing.T) {
	ctx := context.Background()
	a, b, alice, bob, roomID, calls := joinedPair(t)
	setEventFetcher(b, directFetcher{fetching: b, resident: a, calls: calls})
	var gap []string
	for range 120 {
		gap = append(gap, send(t, a, alice, roomID, "while away"))
	}
	pdu := storedJSON(t, a, send(t, a, alice, roomID, "sent"))
	res, err := b.InputFederatedPDUs(ctx, inbound.FederatedInput{Origin: a.ServerName(), PDUs: []json.RawMessage{pdu}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("the PDU after the gap: %v, %+v", err, res)
	}
	for _, id := range gap {
		if _, err := b.Event(ctx, bob.UserID, id); err != nil {
			t.Fatalf("gap event %s not stored at B: %v", id, err)
		}
	}
	if *calls != 3 {
		t.Errorf("%d get_missing_events, want 3 (120 missing, %d per round)", *calls, inbound.FetchMissingLimit)
	}
}

// TestMissingEventsRedactsHidden: an event the requesting server may not
// see (history visibility "joined", sent before it joined) is served by
// get_missing_events in its redacted form, so the DAG still connects.
func TestMissingEventsRedactsHidden(t *testing.T) {
	ctx := context.Background()
	a, b := newTestNode(t), newTestNode(t)
	alice, bob := register(t, a, "alice"), register(t, b, "bob")
	roomID, err := a.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPublicChat,
		InitialState: []core.InitialStateEvent{{Type: "m.room.history_visibility", Content: json.RawMessage(`{"history_visibility":"joined"}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	secret := send(t, a, alice, roomID, "before bob")
	setRemoteJoiner(b, directJoiner{joining: b, resident: a})
	if _, err := b.Join(ctx, bob.UserID, bob.DeviceID, roomID); err != nil {
		t.Fatal(err)
	}
	mi, err := b.Membership(ctx, roomID, bob.UserID)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := a.MissingEvents(ctx, b.ServerName(), roomID, inbound.MissingEventsRequest{LatestEvents: []string{mi.EventID}, Limit: 1})
	if err != nil || len(evs) != 1 {
		t.Fatalf("missing events: %d, %v; want the message", len(evs), err)
	}
	var ev struct {
		Content map[string]any `json:"content"`
	}
	if err := json.Unmarshal(evs[0], &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Content) != 0 {
		t.Errorf("hidden message %s served with content %v, want it redacted", secret, ev.Content)
	}
}
