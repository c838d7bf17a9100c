package app

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
)

// inviteSyncResp is the part of a /sync answer these tests read.
type inviteSyncResp struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join   map[string]json.RawMessage `json:"join"`
		Invite map[string]struct {
			InviteState struct {
				Events []struct {
					Type     string         `json:"type"`
					StateKey string         `json:"state_key"`
					Sender   string         `json:"sender"`
					Content  map[string]any `json:"content"`
				} `json:"events"`
			} `json:"invite_state"`
		} `json:"invite"`
		Leave map[string]struct {
			Timeline struct {
				Events []struct {
					Type     string         `json:"type"`
					EventID  string         `json:"event_id"`
					StateKey string         `json:"state_key"`
					Content  map[string]any `json:"content"`
				} `json:"events"`
			} `json:"timeline"`
		} `json:"leave"`
	} `json:"rooms"`
}

// syncOnce runs /sync on app (since may be ""; a long-poll of up to 20s
// when it is not, which returns as soon as there is news).
func syncOnce(t *testing.T, app *App, token, since string) inviteSyncResp {
	t.Helper()
	var q url.Values
	if since != "" {
		q = url.Values{"timeout": {"20000"}, "since": {since}}
	}
	var out inviteSyncResp
	testnet.Sync(context.Background(), t, app.BaseURL(), token, q, &out)
	return out
}

// invitePair starts A and B with @alice on A and @bob on B (both logged
// in), and alice's private room on A.
func invitePair(t *testing.T) (a, b *App, alice, bob node.Session, roomID string) {
	t.Helper()
	a, b = startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice = testnet.Register(ctx, t, a.node, "alice")
	bob = testnet.Register(ctx, t, b.node, "bob")
	// A reaches B over the connection B opened to A: make sure it is up.
	if _, err := b.federation.QueryProfile(ctx, a.node.ServerName(), alice.UserID, ""); err != nil {
		t.Fatalf("B reaches A: %v", err)
	}
	status, body := call(t, a, http.MethodPost, "/_matrix/client/v3/createRoom", alice.AccessToken, map[string]any{"preset": "private_chat", "name": "Secret"})
	roomID, _ = body["room_id"].(string)
	if status != http.StatusOK || roomID == "" {
		t.Fatalf("createRoom: %d %v", status, body)
	}
	return a, b, alice, bob, roomID
}

func clientRoomPath(roomID, what string) string {
	return "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/" + what
}

// TestInviteOverFederation: A's user invites B's user to a private room; B's
// /sync shows the invite with the room's stripped state; B joins with no
// server_name (through the inviter's server), messages flow both ways, and
// B's leave reaches A.
func TestInviteOverFederation(t *testing.T) {
	a, b, alice, bob, roomID := invitePair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	since := syncOnce(t, b, bob.AccessToken, "").NextBatch

	status, body := call(t, a, http.MethodPost, clientRoomPath(roomID, "invite"), alice.AccessToken, map[string]any{"user_id": bob.UserID})
	if status != http.StatusOK {
		t.Fatalf("invite: %d %v", status, body)
	}
	mi, err := a.node.Membership(ctx, roomID, bob.UserID)
	if err != nil || mi.Membership != "invite" {
		t.Fatalf("bob's membership on A: %+v %v", mi, err)
	}

	s := syncOnce(t, b, bob.AccessToken, since)
	inv, ok := s.Rooms.Invite[roomID]
	if !ok {
		t.Fatalf("B's incremental /sync has no invite for %s: %+v", roomID, s.Rooms)
	}
	var types []string
	for _, ev := range inv.InviteState.Events {
		types = append(types, ev.Type)
		if ev.Type == "m.room.member" && ev.StateKey == bob.UserID &&
			(ev.Content["membership"] != "invite" || ev.Sender != alice.UserID) {
			t.Fatalf("invite in invite_state: %+v", ev)
		}
		if ev.Type == "m.room.name" && ev.Content["name"] != "Secret" {
			t.Fatalf("name in invite_state: %+v", ev)
		}
	}
	if !slices.Contains(types, "m.room.create") || !slices.Contains(types, "m.room.member") || !slices.Contains(types, "m.room.name") {
		t.Fatalf("invite_state types %v", types)
	}
	// An initial sync shows it too, and bob's membership on B is invite.
	if _, ok := syncOnce(t, b, bob.AccessToken, "").Rooms.Invite[roomID]; !ok {
		t.Fatal("B's initial /sync has no invite")
	}
	if mi, err := b.node.Membership(ctx, roomID, bob.UserID); err != nil || mi.Membership != "invite" {
		t.Fatalf("bob's membership on B: %+v %v", mi, err)
	}

	// No server_name: B joins through the inviter's server.
	status, body = call(t, b, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(roomID), bob.AccessToken, map[string]any{})
	if status != http.StatusOK || body["room_id"] != roomID {
		t.Fatalf("join: %d %v", status, body)
	}
	s = syncOnce(t, b, bob.AccessToken, s.NextBatch)
	if _, ok := s.Rooms.Join[roomID]; !ok {
		t.Fatalf("B's /sync after the join: room not under join: %+v", s.Rooms)
	}
	if _, ok := s.Rooms.Invite[roomID]; ok {
		t.Fatal("B's /sync after the join still shows the invite")
	}

	fromAlice := testnet.SendText(ctx, t, a.node, alice.UserID, "", roomID, "welcome")
	waitForEvent(ctx, t, b, bob.UserID, roomID, fromAlice)
	fromBob := testnet.SendText(ctx, t, b.node, bob.UserID, bob.DeviceID, roomID, "thanks")
	waitForEvent(ctx, t, a, alice.UserID, roomID, fromBob)

	status, body = call(t, b, http.MethodPost, clientRoomPath(roomID, "leave"), bob.AccessToken, map[string]any{})
	if status != http.StatusOK {
		t.Fatalf("leave: %d %v", status, body)
	}
	mi, err = b.node.Membership(ctx, roomID, bob.UserID)
	if err != nil || mi.Membership != "leave" {
		t.Fatalf("bob's membership on B after leaving: %+v %v", mi, err)
	}
	waitForEvent(ctx, t, a, alice.UserID, roomID, mi.EventID)
	if mi, err := a.node.Membership(ctx, roomID, bob.UserID); err != nil || mi.Membership != "leave" {
		t.Fatalf("bob's membership on A after leaving: %+v %v", mi, err)
	}
}

// TestInviteRejectedOverFederation: B's user declines the invite (leave
// while invited, a room B does not have): A's room records the leave
// (make_leave and send_leave through A), and B's /sync moves the room from
// invite to leave with the leave event in its timeline.
func TestInviteRejectedOverFederation(t *testing.T) {
	a, b, alice, bob, roomID := invitePair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	status, body := call(t, a, http.MethodPost, clientRoomPath(roomID, "invite"), alice.AccessToken, map[string]any{"user_id": bob.UserID})
	if status != http.StatusOK {
		t.Fatalf("invite: %d %v", status, body)
	}
	s := syncOnce(t, b, bob.AccessToken, "")
	if _, ok := s.Rooms.Invite[roomID]; !ok {
		t.Fatalf("B's /sync has no invite: %+v", s.Rooms)
	}

	status, body = call(t, b, http.MethodPost, clientRoomPath(roomID, "leave"), bob.AccessToken, map[string]any{})
	if status != http.StatusOK {
		t.Fatalf("reject: %d %v", status, body)
	}
	onA, err := a.node.Membership(ctx, roomID, bob.UserID)
	if err != nil || onA.Membership != "leave" {
		t.Fatalf("bob's membership on A after rejecting: %+v %v", onA, err)
	}
	onB, err := b.node.Membership(ctx, roomID, bob.UserID)
	if err != nil || onB.Membership != "leave" || onB.EventID != onA.EventID {
		t.Fatalf("bob's membership on B after rejecting: %+v %v (A has %s)", onB, err, onA.EventID)
	}

	s = syncOnce(t, b, bob.AccessToken, s.NextBatch)
	left, ok := s.Rooms.Leave[roomID]
	if !ok {
		t.Fatalf("B's /sync after rejecting: room not under leave: %+v", s.Rooms)
	}
	if _, ok := s.Rooms.Invite[roomID]; ok {
		t.Fatal("B's /sync after rejecting still shows the invite")
	}
	evs := left.Timeline.Events
	if len(evs) != 1 || evs[0].Type != "m.room.member" || evs[0].StateKey != bob.UserID ||
		evs[0].Content["membership"] != "leave" || evs[0].EventID != onA.EventID {
		t.Fatalf("leave timeline on B: %+v", evs)
	}

	// Rejecting again is a no-op; the invite stays gone.
	status, body = call(t, b, http.MethodPost, clientRoomPath(roomID, "leave"), bob.AccessToken, map[string]any{})
	if status != http.StatusOK {
		t.Fatalf("reject again: %d %v", status, body)
	}
	if _, ok := syncOnce(t, b, bob.AccessToken, "").Rooms.Invite[roomID]; ok {
		t.Fatal("B's initial /sync shows the rejected invite")
	}
}

// TestInviteUnknownRemoteUser: B refuses to sign an invite of a user it does
// not have; A's client gets the refusal and A's room stores nothing.
func TestInviteUnknownRemoteUser(t *testing.T) {
	a, b, alice, _, roomID := invitePair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := a.node.StreamPosition()
	nobody := b.node.UserID("nobody")
	status, body := call(t, a, http.MethodPost, clientRoomPath(roomID, "invite"), alice.AccessToken, map[string]any{"user_id": nobody})
	if (status != http.StatusForbidden && status != http.StatusNotFound) || (body["errcode"] != "M_FORBIDDEN" && body["errcode"] != "M_NOT_FOUND") {
		t.Fatalf("invite of an unknown remote user: %d %v, want 403 or 404 with an errcode", status, body)
	}
	if mi, err := a.node.Membership(ctx, roomID, nobody); err != nil || mi.Membership != "" {
		t.Fatalf("unknown user's membership on A: %+v %v", mi, err)
	}
	if after := a.node.StreamPosition(); after != before {
		t.Fatalf("A's stream moved from %d to %d on a refused invite", before, after)
	}
}
