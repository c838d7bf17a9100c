package clientapi_test

import (
	"slices"
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

func TestTyping(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	room := createRoom(t, n, alice, nil)
	typing := v3 + "/rooms/" + esc(room) + "/typing/"
	typists := func(want ...string) func(t *testing.T, res testnode.Response) {
		return func(t *testing.T, res testnode.Response) {
			if got, _ := n.App.Node.Typing(room); !slices.Equal(got, want) && len(got)+len(want) > 0 {
				t.Errorf("typists %v, want %v", got, want)
			}
		}
	}
	runCases(t, n, []apiCase{
		{name: "start", method: "PUT", path: typing + esc(alice.UserID), token: alice.Token,
			body: map[string]any{"typing": true, "timeout": 30000}, status: 200, check: typists(alice.UserID)},
		{name: "stop", method: "PUT", path: typing + esc(alice.UserID), token: alice.Token,
			body: map[string]any{"typing": false}, status: 200, check: typists()},
		{name: "start without a timeout", method: "PUT", path: typing + esc(alice.UserID), token: alice.Token,
			body: map[string]any{"typing": true}, status: 200, check: typists(alice.UserID)},
		{name: "for someone else", method: "PUT", path: typing + esc(bob.UserID), token: alice.Token,
			body: map[string]any{"typing": true, "timeout": 1000}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "not in the room", method: "PUT", path: typing + esc(bob.UserID), token: bob.Token,
			body: map[string]any{"typing": true, "timeout": 1000}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "typing missing", method: "PUT", path: typing + esc(alice.UserID), token: alice.Token,
			body: map[string]any{"timeout": 1000}, status: 400, errcode: "M_MISSING_PARAM"},
		{name: "typing not a boolean", method: "PUT", path: typing + esc(alice.UserID), token: alice.Token,
			body: map[string]any{"typing": "yes"}, status: 400, errcode: "M_BAD_JSON"},
		{name: "timeout not a number", method: "PUT", path: typing + esc(alice.UserID), token: alice.Token,
			body: map[string]any{"typing": true, "timeout": "long"}, status: 400, errcode: "M_BAD_JSON"},
		{name: "unknown room", method: "PUT", path: v3 + "/rooms/" + esc("!nope:"+n.App.Node.ServerName()) + "/typing/" + esc(alice.UserID),
			token: alice.Token, body: map[string]any{"typing": true}, status: 404, errcode: "M_NOT_FOUND"},
	})
}
