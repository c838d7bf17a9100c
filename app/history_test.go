package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// clientEvent is what the history tests read of a client event.
type clientEvent struct {
	Type    string `json:"type"`
	EventID string `json:"event_id"`
	Content struct {
		Body string `json:"body"`
	} `json:"content"`
}

// getJSON is an authenticated GET of the client API, decoded into out.
func getJSON(t *testing.T, app *App, token, pathAndQuery string, out any) {
	t.Helper()
	testnet.GetJSON(context.Background(), t, app.BaseURL(), token, pathAndQuery, out)
}

// roomSync is a /sync of one room: its timeline, prev_batch and the
// response's next_batch.
func roomSync(t *testing.T, app *App, token, roomID, since string) (events []clientEvent, prevBatch, nextBatch string) {
	t.Helper()
	q := "/_matrix/client/v3/sync?filter=" + url.QueryEscape(`{"room":{"timeline":{"limit":10}}}`)
	if since != "" {
		q += "&since=" + url.QueryEscape(since)
	}
	var body struct {
		NextBatch string `json:"next_batch"`
		Rooms     struct {
			Join map[string]struct {
				Timeline struct {
					Events    []clientEvent `json:"events"`
					PrevBatch string        `json:"prev_batch"`
				} `json:"timeline"`
			} `json:"join"`
		} `json:"rooms"`
	}
	getJSON(t, app, token, q, &body)
	r := body.Rooms.Join[roomID]
	return r.Timeline.Events, r.Timeline.PrevBatch, body.NextBatch
}

// messagesBack pages /messages backwards from from until there is no end
// (at most maxPages pages), returning every event in the order served.
func messagesBack(t *testing.T, app *App, token, roomID, from string, limit, maxPages int) []clientEvent {
	t.Helper()
	var all []clientEvent
	for page := 0; ; page++ {
		if page == maxPages {
			t.Fatalf("/messages still has an end after %d pages (%d events)", maxPages, len(all))
		}
		var body struct {
			Chunk []clientEvent `json:"chunk"`
			End   string        `json:"end"`
		}
		q := fmt.Sprintf("/_matrix/client/v3/rooms/%s/messages?dir=b&limit=%d&from=%s", url.PathEscape(roomID), limit, url.QueryEscape(from))
		getJSON(t, app, token, q, &body)
		all = append(all, body.Chunk...)
		if body.End == "" {
			return all
		}
		from = body.End
	}
}

// historyRoom creates a public room on a with the given history
// visibility, sends n messages ("m0".."m<n-1>") and joins bob on b to it.
func historyRoom(ctx context.Context, t *testing.T, a, b *App, visibility string, n int) (roomID string, bob node.Session) {
	t.Helper()
	alice := testnet.RegisterWith(ctx, t, a.node, node.RegisterRequest{Localpart: "alice", Admin: true, InhibitLogin: true})
	bob = testnet.Register(ctx, t, b.node, "bob")
	roomID = testnet.CreateRoom(ctx, t, a.node, core.CreateRoomRequest{
		Creator: alice.UserID, Preset: core.PresetPublicChat,
		InitialState: []core.InitialStateEvent{{
			Type: "m.room.history_visibility", Content: json.RawMessage(`{"history_visibility":"` + visibility + `"}`),
		}},
	})
	for i := range n {
		testnet.SendText(ctx, t, a.node, alice.UserID, "", roomID, fmt.Sprintf("m%d", i))
	}
	if status, body := clientJoin(t, b, bob.AccessToken, roomID, a.node.ServerName()); status != http.StatusOK {
		t.Fatalf("join: %d %v", status, body)
	}
	return roomID, bob
}

// messageBodies lists the bodies of the m.room.message events.
func messageBodies(evs []clientEvent) []string {
	var out []string
	for _, e := range evs {
		if e.Type == "m.room.message" {
			out = append(out, e.Content.Body)
		}
	}
	return out
}

// TestBackfillOverFederation: B joins a room with 60 messages of shared
// history; paging /messages backwards from its sync's prev_batch brings,
// across pages, every message newest first and then the room's creation,
// where pagination ends. The backfilled history never shows in B's /sync.
func TestBackfillOverFederation(t *testing.T) {
	a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 60
	roomID, bob := historyRoom(ctx, t, a, b, "shared", n)

	timeline, prevBatch, nextBatch := roomSync(t, b, bob.AccessToken, roomID, "")
	if got := messageBodies(timeline); len(got) != 0 || prevBatch == "" {
		t.Fatalf("B's first sync: messages %v, prev_batch %q; want none before the join, a prev_batch", got, prevBatch)
	}

	history := messagesBack(t, b, bob.AccessToken, roomID, prevBatch, 15, 40)
	got := messageBodies(history)
	if len(got) != n {
		t.Fatalf("backfilled %d messages, want %d: %v", len(got), n, got)
	}
	for i, body := range got {
		if want := fmt.Sprintf("m%d", n-1-i); body != want {
			t.Fatalf("message %d is %q, want %q (all: %v)", i, body, want, got)
		}
	}
	if last := history[len(history)-1]; last.Type != "m.room.create" {
		var types []string
		for _, e := range history {
			types = append(types, e.Type)
		}
		t.Fatalf("history ends with %s, want m.room.create: %v", last.Type, types)
	}
	seen := map[string]bool{}
	for _, e := range history {
		if seen[e.EventID] {
			t.Fatalf("event %s (%s) served twice", e.EventID, e.Type)
		}
		seen[e.EventID] = true
	}

	// Sync: nothing new since, and a fresh initial sync shows no history.
	if evs, _, _ := roomSync(t, b, bob.AccessToken, roomID, nextBatch); len(evs) != 0 {
		t.Fatalf("incremental sync after backfill shows %d events: %v", len(evs), messageBodies(evs))
	}
	if evs, _, _ := roomSync(t, b, bob.AccessToken, roomID, ""); len(messageBodies(evs)) != 0 {
		t.Fatalf("initial sync after backfill shows history: %v", messageBodies(evs))
	}
	// Paging again reads what is stored, with the same result.
	if again := messageBodies(messagesBack(t, b, bob.AccessToken, roomID, prevBatch, 25, 40)); len(again) != n {
		t.Fatalf("second walk: %d messages, want %d", len(again), n)
	}
}

// TestBackfillJoinedVisibility: with history_visibility "joined", B's user
// gets nothing from before its join, and pagination still ends.
func TestBackfillJoinedVisibility(t *testing.T) {
	a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	roomID, bob := historyRoom(ctx, t, a, b, "joined", 5)
	_, prevBatch, _ := roomSync(t, b, bob.AccessToken, roomID, "")
	if got := messageBodies(messagesBack(t, b, bob.AccessToken, roomID, prevBatch, 10, 20)); len(got) != 0 {
		t.Fatalf("B sees history from before its join: %v", got)
	}
}
