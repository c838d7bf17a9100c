package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/inbound"
)

// The rest of EventFetcher for directFetcher: each asks the resident node
// as the fetching node's server would.

func (d directFetcher) Backfill(ctx context.Context, server, roomID string, from []string, limit int) ([]json.RawMessage, error) {
	*d.calls++
	return d.resident.Backfill(ctx, d.fetching.ServerName(), roomID, from, limit)
}

func (d directFetcher) EventAuth(ctx context.Context, server, roomID, eventID string) ([]json.RawMessage, error) {
	*d.calls++
	return d.resident.FederationEventAuth(ctx, d.fetching.ServerName(), roomID, eventID)
}

func (d directFetcher) StateIDs(ctx context.Context, server, roomID, eventID string) (*inbound.RoomStateIDs, error) {
	*d.calls++
	return d.resident.FederationStateIDs(ctx, d.fetching.ServerName(), roomID, eventID)
}

func (d directFetcher) State(ctx context.Context, server, roomID, eventID string) (*inbound.RoomState, error) {
	*d.calls++
	return d.resident.FederationState(ctx, d.fetching.ServerName(), roomID, eventID)
}

func (d directFetcher) Event(ctx context.Context, server, eventID string) (json.RawMessage, error) {
	*d.calls++
	return d.resident.FederationEvent(ctx, d.fetching.ServerName(), eventID)
}

// failingBackfill is a directFetcher whose /backfill always fails.
type failingBackfill struct{ directFetcher }

func (failingBackfill) Backfill(context.Context, string, string, []string, int) ([]json.RawMessage, error) {
	return nil, errors.New("no server answers")
}

// TestRoomEventsBackfill: paging B's timeline backwards with History goes
// on into A's history before B's join, page by page, newest first, until
// the create event; without History (sync) or without a server that
// answers, the page is what B has, without error. The history is not in
// B's stream.
func TestRoomEventsBackfill(t *testing.T) {
	ctx := context.Background()
	a, b := newTestNode(t), newTestNode(t)
	alice, bob := register(t, a, "alice"), register(t, b, "bob")
	roomID, err := a.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPublicChat})
	if err != nil {
		t.Fatal(err)
	}
	const n = 25
	for i := range n {
		send(t, a, alice, roomID, fmt.Sprintf("m%d", i))
	}
	setRemoteJoiner(b, directJoiner{joining: b, resident: a})
	if _, err := b.Join(ctx, bob.UserID, bob.DeviceID, roomID); err != nil {
		t.Fatal(err)
	}
	streamBefore := countPrefix(t, b, core.RoomStreamPrefix(roomID))

	calls := 0
	setEventFetcher(b, failingBackfill{directFetcher{fetching: b, resident: a, calls: &calls}})
	page, err := b.RoomEvents(ctx, bob.UserID, roomID, core.Range{Backwards: true, Limit: 10, History: true})
	if err != nil || len(page.Events) != 1 || page.More {
		t.Fatalf("no server answers: %d events, more %v, %v; want B's join alone", len(page.Events), page.More, err)
	}

	setEventFetcher(b, directFetcher{fetching: b, resident: a, calls: &calls})
	page, err = b.RoomEvents(ctx, bob.UserID, roomID, core.Range{Backwards: true, Limit: 10})
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("without History: %d events, %v; want B's join alone", len(page.Events), err)
	}
	var bodies []string
	var last *core.Event
	r := core.Range{Backwards: true, Limit: 7, History: true}
	for pages := 0; ; pages++ {
		if pages == 50 {
			t.Fatal("pagination does not end")
		}
		page, err := b.RoomEvents(ctx, bob.UserID, roomID, r)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			if ev.PDU.Type() == "m.room.message" {
				var c struct{ Body string }
				_ = json.Unmarshal(ev.PDU.Content(), &c)
				bodies = append(bodies, c.Body)
			}
			if last != nil && !core.TimelineLess(ev.Pos, last.Pos) {
				t.Fatalf("positions do not go back: %d after %d", ev.Pos, last.Pos)
			}
			last = ev
		}
		if !page.More {
			break
		}
		r.From = page.End
	}
	if len(bodies) != n || bodies[0] != fmt.Sprintf("m%d", n-1) || bodies[n-1] != "m0" {
		t.Fatalf("history: %v", bodies)
	}
	if last.PDU.Type() != "m.room.create" {
		t.Fatalf("history ends at %s, want the create event", last.PDU.Type())
	}
	if got := countPrefix(t, b, core.RoomStreamPrefix(roomID)); got != streamBefore {
		t.Fatalf("B's room stream has %d entries after backfill, %d before", got, streamBefore)
	}
	if head := roomHead(t, b, roomID); len(head.Extremities) != 1 {
		t.Fatalf("B's extremities changed: %v", head.Extremities)
	}
	// Forwards from the start of the history reads it all again, oldest
	// first, then B's own timeline.
	fwd, err := b.RoomEvents(ctx, bob.UserID, roomID, core.Range{From: 0, Limit: 100, History: true})
	if err != nil || fwd.Events[0].PDU.Type() != "m.room.create" || fwd.Events[len(fwd.Events)-1].PDU.Type() != "m.room.member" {
		t.Fatalf("forwards: %d events, %v", len(fwd.Events), err)
	}
}

// TestServedHistoryVisibility: with history_visibility "joined", the
// events before B's server joined are neither backfilled to it nor served
// one by one; its own join is.
func TestServedHistoryVisibility(t *testing.T) {
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
	joinID := mi.EventID
	if _, err := a.FederationEvent(ctx, b.ServerName(), secret); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("/event of a message before the join: %v, want ErrNotFound", err)
	}
	// The room's first events were sent while its visibility was still
	// "shared" (the preset's, before the initial state's "joined"): those
	// are served; the message is not.
	evs, err := a.Backfill(ctx, b.ServerName(), roomID, []string{joinID}, 50)
	if err != nil || len(evs) == 0 {
		t.Fatalf("backfill from the join: %d events, %v", len(evs), err)
	}
	if bodies := bodiesOf(evs); slices.Contains(bodies, "before bob") {
		t.Fatalf("backfill served a message from before the join: %v", bodies)
	}
	if _, err := a.FederationEvent(ctx, b.ServerName(), joinID); err != nil {
		t.Fatalf("/event of B's own join: %v", err)
	}
}
