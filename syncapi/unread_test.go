package syncapi_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/edgenode/edgenode/node/core"
)

// unreadCounts is a joined room's unread_notifications in a /sync response.
type unreadCounts struct {
	Notify    *int `json:"notification_count"`
	Highlight *int `json:"highlight_count"`
}

// wantUnread checks a joined room's counts in a response: the room must be
// there with both counts present.
func wantUnread(t *testing.T, b syncBody, roomID string, notify, highlight int) {
	t.Helper()
	room, ok := b.Rooms.Join[roomID]
	if !ok {
		t.Fatalf("room %s not in rooms.join", roomID)
	}
	u := room.Unread
	if u == nil || u.Notify == nil || u.Highlight == nil {
		t.Fatalf("unread_notifications missing or incomplete: %+v", u)
	}
	if *u.Notify != notify || *u.Highlight != highlight {
		t.Errorf("unread_notifications = (notification %d, highlight %d), want (%d, %d)", *u.Notify, *u.Highlight, notify, highlight)
	}
}

// TestSyncUnreadNotifications: counts in /sync go up with another user's
// messages (a mention highlights), and back to 0 once a read receipt is
// sent through the API; an entry made only for the receipt carries them.
func TestSyncUnreadNotifications(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	roomID := e.room(alice, core.PresetPublicChat)
	e.join(bob, roomID)

	b := e.sync(bob, nil)
	wantUnread(t, b, roomID, 0, 0)

	e.say(alice, roomID, "hello")
	e.send(alice, roomID, "m.room.message", map[string]any{
		"msgtype": "m.text", "body": "bob?", "m.mentions": map[string]any{"user_ids": []string{bob.UserID}},
	})
	last := e.say(alice, roomID, "anyone?")
	b = e.sync(bob, vals("since", b.NextBatch))
	wantUnread(t, b, roomID, 3, 1)
	wantUnread(t, e.sync(alice, nil), roomID, 0, 0) // her own messages

	res := e.tn.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/receipt/m.read/"+url.PathEscape(last),
		bob.AccessToken, map[string]any{})
	if res.Status != http.StatusOK {
		t.Fatalf("receipt: %d %s", res.Status, res.Raw)
	}
	b = e.sync(bob, vals("since", b.NextBatch))
	if n := len(b.Rooms.Join[roomID].Timeline.Events); n != 0 {
		t.Fatalf("timeline has %d events; the entry should be there for the receipt only", n)
	}
	wantUnread(t, b, roomID, 0, 0)
}
