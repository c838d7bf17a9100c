package clientapi_test

import (
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

func TestDirectory(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	server := n.App.Node.ServerName()
	room := createRoom(t, n, alice, map[string]any{"preset": "public_chat"})
	alias := "#team:" + server
	d := v3 + "/directory/room/"
	runCases(t, n, []apiCase{
		{name: "unknown alias", method: "GET", path: d + esc(alias), status: 404, errcode: "M_NOT_FOUND"},
		{name: "non-member cannot create", method: "PUT", path: d + esc(alias), token: bob.Token,
			body: map[string]any{"room_id": room}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "create", method: "PUT", path: d + esc(alias), token: alice.Token, body: map[string]any{"room_id": room}, status: 200},
		{name: "resolve without a token", method: "GET", path: d + esc(alias), status: 200,
			check: func(t *testing.T, res testnode.Response) {
				servers, _ := res.Body["servers"].([]any)
				if res.String("room_id") != room || len(servers) != 1 || servers[0] != server {
					t.Errorf("resolve %s", res.Raw)
				}
			}},
		{name: "taken", method: "PUT", path: d + esc(alias), token: alice.Token, body: map[string]any{"room_id": room}, status: 409, errcode: "M_UNKNOWN"},
		{name: "missing room_id", method: "PUT", path: d + esc("#x:"+server), token: alice.Token, body: map[string]any{}, status: 400, errcode: "M_MISSING_PARAM"},
		{name: "unknown room", method: "PUT", path: d + esc("#x:"+server), token: alice.Token,
			body: map[string]any{"room_id": "!nope:" + server}, status: 404, errcode: "M_NOT_FOUND"},
		{name: "alias on another server", method: "PUT", path: d + esc("#x:elsewhere"), token: alice.Token,
			body: map[string]any{"room_id": room}, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "not an alias", method: "GET", path: d + "team", status: 400, errcode: "M_INVALID_PARAM"},
		{name: "room aliases", method: "GET", path: v3 + "/rooms/" + esc(room) + "/aliases", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if as, _ := res.Body["aliases"].([]any); len(as) != 1 || as[0] != alias {
					t.Errorf("aliases %s", res.Raw)
				}
			}},
		{name: "room aliases for non-members", method: "GET", path: v3 + "/rooms/" + esc(room) + "/aliases", token: bob.Token, status: 403, errcode: "M_FORBIDDEN"},
		{name: "others cannot delete", method: "DELETE", path: d + esc(alias), token: bob.Token, status: 403, errcode: "M_FORBIDDEN"},
		{name: "delete", method: "DELETE", path: d + esc(alias), token: alice.Token, status: 200},
		{name: "gone", method: "GET", path: d + esc(alias), status: 404, errcode: "M_NOT_FOUND"},
		{name: "delete again", method: "DELETE", path: d + esc(alias), token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
	})
}
