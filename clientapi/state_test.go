package clientapi_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

func TestState(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	carol := n.Register("carol")
	room := createRoom(t, n, alice, map[string]any{"preset": "public_chat", "name": "Old"})
	expect(t, n.Do("POST", v3+"/rooms/"+esc(room)+"/join", bob.Token, nil), 200, "")
	r := v3 + "/rooms/" + esc(room)
	var nameEvent string
	runCases(t, n, []apiCase{
		{name: "set state without state key", method: "PUT", path: r + "/state/m.room.name", token: alice.Token,
			body: map[string]any{"name": "New"}, status: 200,
			check: func(t *testing.T, res testnode.Response) { nameEvent = res.String("event_id") }},
		{name: "read it with the trailing slash", method: "GET", path: r + "/state/m.room.name/", token: bob.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.Body["name"] != "New" || len(res.Body) != 1 {
					t.Errorf("content %s", res.Raw)
				}
			}},
		{name: "read it as an event", method: "GET", path: r + "/state/m.room.name?format=event", token: bob.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.String("event_id") != nameEvent || field(res.Body, "content", "name") != "New" || res.String("state_key") != "" {
					t.Errorf("event %s", res.Raw)
				}
				if _, ok := res.Body["state_key"]; !ok {
					t.Errorf("empty state_key left out: %s", res.Raw)
				}
			}},
		{name: "bad format", method: "GET", path: r + "/state/m.room.name?format=xml", token: bob.Token, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "state key with a slash", method: "PUT", path: r + "/state/org.example.thing/" + esc("a/b"), token: alice.Token,
			body: map[string]any{"v": 1}, status: 200},
		{name: "read state key with a slash", method: "GET", path: r + "/state/org.example.thing/" + esc("a/b"), token: bob.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.Body["v"] != float64(1) {
					t.Errorf("content %s", res.Raw)
				}
			}},
		{name: "state keyed by another user", method: "PUT", path: r + "/state/org.example.thing/" + esc(bob.UserID), token: alice.Token,
			body: map[string]any{"v": 2}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "below the power level", method: "PUT", path: r + "/state/m.room.name/", token: bob.Token,
			body: map[string]any{"name": "Mine"}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "non-member cannot set state", method: "PUT", path: r + "/state/m.room.topic", token: carol.Token,
			body: map[string]any{"topic": "x"}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "missing state", method: "GET", path: r + "/state/m.room.topic", token: bob.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "non-member cannot read state", method: "GET", path: r + "/state/m.room.name", token: carol.Token, status: 403, errcode: "M_FORBIDDEN"},
		{name: "non-member cannot read all state", method: "GET", path: r + "/state", token: carol.Token, status: 403, errcode: "M_FORBIDDEN"},
		{name: "malformed JSON", method: "PUT", path: r + "/state/m.room.topic", token: alice.Token, body: []byte("{"), status: 400, errcode: "M_NOT_JSON"},
		{name: "content not an object", method: "PUT", path: r + "/state/m.room.topic", token: alice.Token, body: []byte("[1]"), status: 400, errcode: "M_BAD_JSON"},
		{name: "oversized", method: "PUT", path: r + "/state/m.room.topic", token: alice.Token,
			body: map[string]any{"topic": strings.Repeat("t", 66000)}, status: 413, errcode: "M_TOO_LARGE"},
		{name: "all state", method: "GET", path: r + "/state", token: bob.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				var evs []map[string]any
				decodeRaw(t, res, &evs)
				types := map[string]int{}
				for _, ev := range evs {
					types[ev["type"].(string)]++
				}
				for _, want := range []string{"m.room.create", "m.room.power_levels", "m.room.join_rules", "m.room.name"} {
					if types[want] != 1 {
						t.Errorf("%s: %d", want, types[want])
					}
				}
				if types["m.room.member"] != 2 || types["org.example.thing"] != 1 {
					t.Errorf("types %v", types)
				}
			}},
	})

	// Once bob leaves he sees the state as it was when he left.
	expect(t, n.Do("POST", r+"/leave", bob.Token, nil), 200, "")
	expect(t, n.Do("PUT", r+"/state/m.room.name", alice.Token, map[string]any{"name": "After"}), 200, "")
	res := n.Do("GET", r+"/state/m.room.name", bob.Token, nil)
	expect(t, res, 200, "")
	if res.Body["name"] != "New" {
		t.Errorf("left user sees %s, want the name at leaving", res.Raw)
	}
}

func TestMembers(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	carol := n.Register("carol")
	room := createRoom(t, n, alice, map[string]any{"preset": "public_chat", "invite": []string{carol.UserID}})
	r := v3 + "/rooms/" + esc(room)
	expect(t, n.Do("POST", r+"/join", bob.Token, nil), 200, "")
	expect(t, n.Do("PUT", v3+"/profile/"+esc(alice.UserID)+"/avatar_url", alice.Token, map[string]any{"avatar_url": "mxc://x/y"}), 200, "")
	members := func(query string, want ...string) apiCase {
		return apiCase{name: "members" + query, method: "GET", path: r + "/members" + query, token: bob.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				chunk, _ := res.Body["chunk"].([]any)
				var got []string
				for _, ev := range chunk {
					if field(ev, "type") != "m.room.member" {
						t.Errorf("not a member event: %v", ev)
					}
					got = append(got, field(ev, "state_key").(string))
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("got %v, want %v", got, want)
				}
			}}
	}
	runCases(t, n, []apiCase{
		members("", alice.UserID, bob.UserID, carol.UserID),
		members("?membership=join", alice.UserID, bob.UserID),
		members("?not_membership=join", carol.UserID),
		members("?membership=invite&not_membership=invite", alice.UserID, bob.UserID, carol.UserID),
		members("?membership=ban"),
		{name: "bad filter", method: "GET", path: r + "/members?membership=party", token: bob.Token, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "non-member", method: "GET", path: r + "/members", token: n.Register("dave").Token, status: 403, errcode: "M_FORBIDDEN"},
		{name: "joined_members", method: "GET", path: r + "/joined_members", token: bob.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				joined, _ := res.Body["joined"].(map[string]any)
				if len(joined) != 2 {
					t.Fatalf("joined %s", res.Raw)
				}
				if field(joined, alice.UserID, "display_name") != "alice" || field(joined, alice.UserID, "avatar_url") != "mxc://x/y" {
					t.Errorf("alice %s", res.Raw)
				}
				if field(joined, bob.UserID, "display_name") != "bob" {
					t.Errorf("bob %s", res.Raw)
				}
			}},
		{name: "joined_members needs joined", method: "GET", path: r + "/joined_members", token: carol.Token, status: 403, errcode: "M_FORBIDDEN"},
		{name: "joined_members unknown room", method: "GET", path: v3 + "/rooms/" + esc("!x:"+n.App.Node.ServerName()) + "/joined_members", token: carol.Token,
			status: 404, errcode: "M_NOT_FOUND"},
	})
}
