package clientapi_test

import (
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

func TestPresence(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	carol := n.Register("carol")
	room := createRoom(t, n, alice, map[string]any{"preset": "public_chat"})
	expect(t, n.Do("POST", v3+"/rooms/"+esc(room)+"/join", bob.Token, map[string]any{}), 200, "")
	status := func(u testnode.User) string { return v3 + "/presence/" + esc(u.UserID) + "/status" }
	presenceIs := func(presence string, msg any, active bool) func(t *testing.T, res testnode.Response) {
		return func(t *testing.T, res testnode.Response) {
			if res.Body["presence"] != presence || res.Body["status_msg"] != msg || (res.Body["currently_active"] == true) != active {
				t.Errorf("presence %s", res.Raw)
			}
		}
	}
	runCases(t, n, []apiCase{
		{name: "never set is offline", method: "GET", path: status(alice), token: alice.Token, status: 200, check: presenceIs("offline", nil, false)},
		{name: "set", method: "PUT", path: status(alice), token: alice.Token, body: map[string]any{"presence": "online", "status_msg": "hi"}, status: 200},
		{name: "own", method: "GET", path: status(alice), token: alice.Token, status: 200, check: presenceIs("online", "hi", true)},
		{name: "a room-mate's", method: "GET", path: status(alice), token: bob.Token, status: 200, check: presenceIs("online", "hi", true)},
		{name: "a stranger's", method: "GET", path: status(alice), token: carol.Token, status: 403, errcode: "M_FORBIDDEN"},
		{name: "an unknown user's", method: "GET", path: v3 + "/presence/" + esc("@nobody:"+n.App.Node.ServerName()) + "/status", token: alice.Token,
			status: 403, errcode: "M_FORBIDDEN"},
		{name: "no message clears it", method: "PUT", path: status(alice), token: alice.Token, body: map[string]any{"presence": "unavailable"}, status: 200},
		{name: "cleared", method: "GET", path: status(alice), token: bob.Token, status: 200, check: presenceIs("unavailable", nil, false)},
		{name: "someone else's", method: "PUT", path: status(alice), token: bob.Token, body: map[string]any{"presence": "online"}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "unknown state", method: "PUT", path: status(alice), token: alice.Token, body: map[string]any{"presence": "busy"}, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "state missing", method: "PUT", path: status(alice), token: alice.Token, body: map[string]any{"status_msg": "x"}, status: 400, errcode: "M_MISSING_PARAM"},
		{name: "message not a string", method: "PUT", path: status(alice), token: alice.Token, body: map[string]any{"presence": "online", "status_msg": 5}, status: 400, errcode: "M_BAD_JSON"},
		{name: "needs a token", method: "GET", path: status(alice), status: 401, errcode: "M_MISSING_TOKEN"},
	})
}
