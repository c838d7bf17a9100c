package clientapi_test

import (
	"strings"
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

func TestProfile(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	room := createRoom(t, n, alice, nil)
	memberEvent := func() testnode.Response {
		res := n.Do("GET", v3+"/rooms/"+esc(room)+"/state/m.room.member/"+esc(alice.UserID)+"?format=event", alice.Token, nil)
		expect(t, res, 200, "")
		return res
	}
	joinEvent := memberEvent().String("event_id")
	p := v3 + "/profile/" + esc(alice.UserID)
	runCases(t, n, []apiCase{
		{name: "profile starts with the localpart", method: "GET", path: p, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.String("displayname") != "alice" || res.Body["avatar_url"] != nil {
					t.Errorf("profile %s", res.Raw)
				}
			}},
		{name: "set displayname", method: "PUT", path: p + "/displayname", token: alice.Token,
			body: map[string]any{"displayname": "Alice A."}, status: 200},
		{name: "get displayname", method: "GET", path: p + "/displayname", status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.String("displayname") != "Alice A." || len(res.Body) != 1 {
					t.Errorf("displayname %s", res.Raw)
				}
			}},
		{name: "set avatar", method: "PUT", path: p + "/avatar_url", token: alice.Token,
			body: map[string]any{"avatar_url": "mxc://example/abc"}, status: 200},
		{name: "get avatar", method: "GET", path: p + "/avatar_url", status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.String("avatar_url") != "mxc://example/abc" {
					t.Errorf("avatar %s", res.Raw)
				}
			}},
		{name: "whole profile", method: "GET", path: p, token: bob.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.String("displayname") != "Alice A." || res.String("avatar_url") != "mxc://example/abc" {
					t.Errorf("profile %s", res.Raw)
				}
			}},
		{name: "someone else's profile", method: "PUT", path: p + "/displayname", token: bob.Token,
			body: map[string]any{"displayname": "Mallory"}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "someone else's field delete", method: "DELETE", path: p + "/avatar_url", token: bob.Token, status: 403, errcode: "M_FORBIDDEN"},
		{name: "needs a token to change", method: "PUT", path: p + "/displayname",
			body: map[string]any{"displayname": "x"}, status: 401, errcode: "M_MISSING_TOKEN"},
		{name: "displayname not a string", method: "PUT", path: p + "/displayname", token: alice.Token,
			body: map[string]any{"displayname": 5}, status: 400, errcode: "M_BAD_JSON"},
		{name: "displayname null", method: "PUT", path: p + "/displayname", token: alice.Token,
			body: map[string]any{"displayname": nil}, status: 400, errcode: "M_BAD_JSON"},
		{name: "displayname missing", method: "PUT", path: p + "/displayname", token: alice.Token,
			body: map[string]any{"name": "x"}, status: 400, errcode: "M_MISSING_PARAM"},
		{name: "displayname too long", method: "PUT", path: p + "/displayname", token: alice.Token,
			body: map[string]any{"displayname": strings.Repeat("a", 300)}, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "avatar not mxc", method: "PUT", path: p + "/avatar_url", token: alice.Token,
			body: map[string]any{"avatar_url": "https://example/a.png"}, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "malformed JSON", method: "PUT", path: p + "/displayname", token: alice.Token,
			body: []byte(`{"displayname":`), status: 400, errcode: "M_NOT_JSON"},
		{name: "invalid key", method: "PUT", path: p + "/Bad-Key", token: alice.Token,
			body: map[string]any{"Bad-Key": "x"}, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "custom key cannot be set here", method: "PUT", path: p + "/m.tz", token: alice.Token,
			body: map[string]any{"m.tz": "Europe/London"}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "custom key is not found", method: "GET", path: p + "/m.tz", status: 404, errcode: "M_NOT_FOUND"},
		{name: "deleting a custom key succeeds", method: "DELETE", path: p + "/org.example.job", token: alice.Token, status: 200},
		{name: "unknown user", method: "GET", path: v3 + "/profile/" + esc("@nobody:"+n.App.Node.ServerName()), status: 404, errcode: "M_NOT_FOUND"},
		{name: "delete avatar", method: "DELETE", path: p + "/avatar_url", token: alice.Token, status: 200},
		{name: "deleted avatar is gone", method: "GET", path: p + "/avatar_url", status: 404, errcode: "M_NOT_FOUND"},
	})

	t.Run("a profile change makes a new member event", func(t *testing.T) {
		res := memberEvent()
		if res.String("event_id") == joinEvent {
			t.Fatal("member event unchanged")
		}
		if field(res.Body, "content", "displayname") != "Alice A." || field(res.Body, "content", "membership") != "join" {
			t.Errorf("member event %s", res.Raw)
		}
		if field(res.Body, "content", "avatar_url") != nil {
			t.Errorf("deleted avatar still in member event %s", res.Raw)
		}
	})
}
