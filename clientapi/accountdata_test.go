package clientapi_test

import (
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

func TestAccountData(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	room := "!r:" + n.App.Node.ServerName()
	global := v3 + "/user/" + esc(alice.UserID) + "/account_data/"
	perRoom := v3 + "/user/" + esc(alice.UserID) + "/rooms/" + esc(room) + "/account_data/"
	badRoom := v3 + "/user/" + esc(alice.UserID) + "/rooms/" + esc("#a:b") + "/account_data/"
	bodyIs := func(want string) func(t *testing.T, res testnode.Response) {
		return func(t *testing.T, res testnode.Response) {
			if string(res.Raw) != want {
				t.Errorf("body %s, want %s", res.Raw, want)
			}
		}
	}
	runCases(t, n, []apiCase{
		{name: "unset is not found", method: "GET", path: global + "org.example.cfg", token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "set", method: "PUT", path: global + "org.example.cfg", token: alice.Token, body: map[string]any{"a": 1}, status: 200},
		{name: "get", method: "GET", path: global + "org.example.cfg", token: alice.Token, status: 200, check: bodyIs(`{"a":1}`)},
		{name: "replace", method: "PUT", path: global + "org.example.cfg", token: alice.Token, body: map[string]any{"b": []int{2}}, status: 200},
		{name: "get replaced", method: "GET", path: global + "org.example.cfg", token: alice.Token, status: 200, check: bodyIs(`{"b":[2]}`)},
		{name: "room data is separate", method: "GET", path: perRoom + "org.example.cfg", token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "set room data", method: "PUT", path: perRoom + "org.example.cfg", token: alice.Token, body: map[string]any{"room": true}, status: 200},
		{name: "get room data", method: "GET", path: perRoom + "org.example.cfg", token: alice.Token, status: 200, check: bodyIs(`{"room":true}`)},
		{name: "global data unchanged", method: "GET", path: global + "org.example.cfg", token: alice.Token, status: 200, check: bodyIs(`{"b":[2]}`)},

		{name: "another user's data cannot be set", method: "PUT", path: global + "x", token: bob.Token, body: map[string]any{}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "nor read", method: "GET", path: global + "org.example.cfg", token: bob.Token, status: 403, errcode: "M_FORBIDDEN"},
		{name: "nor another user's room data", method: "GET", path: perRoom + "org.example.cfg", token: bob.Token, status: 403, errcode: "M_FORBIDDEN"},
		{name: "needs a token", method: "GET", path: global + "org.example.cfg", status: 401, errcode: "M_MISSING_TOKEN"},
		{name: "m.fully_read is the server's", method: "PUT", path: perRoom + "m.fully_read", token: alice.Token,
			body: map[string]any{"event_id": "$x"}, status: 405, errcode: "M_BAD_JSON"},
		{name: "m.push_rules is the server's", method: "PUT", path: global + "m.push_rules", token: alice.Token,
			body: map[string]any{}, status: 405, errcode: "M_BAD_JSON"},
		{name: "content must be an object", method: "PUT", path: global + "x", token: alice.Token, body: []any{1}, status: 400, errcode: "M_BAD_JSON"},
		{name: "content must be JSON", method: "PUT", path: global + "x", token: alice.Token, body: []byte(`{"a":`), status: 400, errcode: "M_NOT_JSON"},
		{name: "invalid room ID on PUT", method: "PUT", path: badRoom + "x", token: alice.Token, body: map[string]any{}, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "invalid room ID on GET", method: "GET", path: badRoom + "x", token: alice.Token, status: 400, errcode: "M_INVALID_PARAM"},
	})
}

func TestTags(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	room := createRoom(t, n, alice, nil)
	tags := v3 + "/user/" + esc(alice.UserID) + "/rooms/" + esc(room) + "/tags"
	tagsAre := func(want string) func(t *testing.T, res testnode.Response) {
		return func(t *testing.T, res testnode.Response) {
			if string(res.Raw) != want {
				t.Errorf("tags %s, want %s", res.Raw, want)
			}
		}
	}
	runCases(t, n, []apiCase{
		{name: "no tags", method: "GET", path: tags, token: alice.Token, status: 200, check: tagsAre(`{"tags":{}}`)},
		{name: "add favourite", method: "PUT", path: tags + "/m.favourite", token: alice.Token, body: map[string]any{"order": 0.25}, status: 200},
		{name: "add work", method: "PUT", path: tags + "/u.work", token: alice.Token, body: map[string]any{}, status: 200},
		{name: "list", method: "GET", path: tags, token: alice.Token, status: 200,
			check: tagsAre(`{"tags":{"m.favourite":{"order":0.25},"u.work":{}}}`)},
		{name: "order must be a number", method: "PUT", path: tags + "/u.x", token: alice.Token, body: map[string]any{"order": "high"}, status: 400, errcode: "M_BAD_JSON"},
		{name: "body must be an object", method: "PUT", path: tags + "/u.x", token: alice.Token, body: []any{}, status: 400, errcode: "M_BAD_JSON"},
		{name: "tags are m.tag room account data", method: "GET", path: v3 + "/user/" + esc(alice.UserID) + "/rooms/" + esc(room) + "/account_data/m.tag",
			token: alice.Token, status: 200, check: tagsAre(`{"tags":{"m.favourite":{"order":0.25},"u.work":{}}}`)},
		{name: "remove", method: "DELETE", path: tags + "/m.favourite", token: alice.Token, status: 200},
		{name: "remove again", method: "DELETE", path: tags + "/m.favourite", token: alice.Token, status: 200},
		{name: "list after removal", method: "GET", path: tags, token: alice.Token, status: 200, check: tagsAre(`{"tags":{"u.work":{}}}`)},
		{name: "another user's tags cannot be read", method: "GET", path: tags, token: bob.Token, status: 403, errcode: "M_FORBIDDEN"},
		{name: "nor set", method: "PUT", path: tags + "/u.x", token: bob.Token, body: map[string]any{}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "nor removed", method: "DELETE", path: tags + "/u.work", token: bob.Token, status: 403, errcode: "M_FORBIDDEN"},
		{name: "invalid room ID", method: "GET", path: v3 + "/user/" + esc(alice.UserID) + "/rooms/" + esc("#a:b") + "/tags", token: alice.Token,
			status: 400, errcode: "M_INVALID_PARAM"},
	})
}
