package clientapi_test

import (
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

// TestRestart checks that what a client did survives a restart on the same
// data directory: the account and its token, the room, its state and its
// events.
func TestRestart(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	room := createRoom(t, n, alice, map[string]any{"name": "Kept", "room_alias_name": "kept"})
	expect(t, n.Do("PUT", v3+"/rooms/"+esc(room)+"/state/m.room.topic", alice.Token, map[string]any{"topic": "still here"}), 200, "")
	msg := sendText(t, n, alice, room, "m1", "before restart")
	server := n.App.Node.ServerName()
	dir := n.Dir
	n.Stop()

	n = testnode.Start(t, testnode.Options{Dir: dir})
	if n.App.Node.ServerName() != server {
		t.Fatalf("server name changed: %s -> %s", server, n.App.Node.ServerName())
	}
	r := v3 + "/rooms/" + esc(room)
	runCases(t, n, []apiCase{
		{name: "token still works", method: "GET", path: v3 + "/account/whoami", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.String("user_id") != alice.UserID || res.String("device_id") != alice.DeviceID {
					t.Errorf("whoami %s", res.Raw)
				}
			}},
		{name: "still joined", method: "GET", path: v3 + "/joined_rooms", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if rooms, _ := res.Body["joined_rooms"].([]any); len(rooms) != 1 || rooms[0] != room {
					t.Errorf("joined_rooms %s", res.Raw)
				}
			}},
		{name: "name", method: "GET", path: r + "/state/m.room.name", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.Body["name"] != "Kept" {
					t.Errorf("name %s", res.Raw)
				}
			}},
		{name: "topic", method: "GET", path: r + "/state/m.room.topic", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.Body["topic"] != "still here" {
					t.Errorf("topic %s", res.Raw)
				}
			}},
		{name: "message", method: "GET", path: r + "/event/" + esc(msg), token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if field(res.Body, "content", "body") != "before restart" {
					t.Errorf("event %s", res.Raw)
				}
			}},
		{name: "txn ID remembered", method: "PUT", path: r + "/send/m.room.message/m1", token: alice.Token,
			body: map[string]any{"msgtype": "m.text", "body": "before restart"}, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.String("event_id") != msg {
					t.Errorf("retry after restart made a new event: %s", res.Raw)
				}
			}},
		{name: "alias", method: "GET", path: v3 + "/directory/room/" + esc("#kept:"+server), status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.String("room_id") != room {
					t.Errorf("alias %s", res.Raw)
				}
			}},
		{name: "can still send", method: "PUT", path: r + "/send/m.room.message/m2", token: alice.Token,
			body: map[string]any{"msgtype": "m.text", "body": "after restart"}, status: 200},
	})
}
