package clientapi_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

func TestCreateRoom(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	server := n.App.Node.ServerName()
	var full string // the room created with every option
	runCases(t, n, []apiCase{
		{name: "empty body", method: "POST", path: v3 + "/createRoom", token: alice.Token, body: map[string]any{}, status: 200},
		{name: "every option", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 200,
			body: map[string]any{
				"preset": "public_chat", "visibility": "public", "name": "Lobby", "topic": "hi",
				"room_alias_name": "lobby", "invite": []string{bob.UserID}, "is_direct": false,
				"room_version":     "11",
				"creation_content": map[string]any{"m.federate": false},
				"initial_state": []map[string]any{
					{"type": "m.room.encryption", "state_key": "", "content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2"}},
					{"type": "org.example.thing", "content": map[string]any{"x": 1}},
				},
				"power_level_content_override": map[string]any{"events_default": 10},
			},
			check: func(t *testing.T, res testnode.Response) { full = res.String("room_id") }},
		{name: "null object fields mean absent", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 200,
			body: map[string]any{"creation_content": nil, "power_level_content_override": nil}},
		{name: "unsupported room version", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 400, errcode: "M_UNSUPPORTED_ROOM_VERSION",
			body: map[string]any{"room_version": "12"}},
		{name: "unknown room version", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 400, errcode: "M_UNSUPPORTED_ROOM_VERSION",
			body: map[string]any{"room_version": "banana"}},
		{name: "alias taken", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 400, errcode: "M_ROOM_IN_USE",
			body: map[string]any{"room_alias_name": "lobby"}},
		{name: "bad alias name", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 400, errcode: "M_INVALID_PARAM",
			body: map[string]any{"room_alias_name": "a:b"}},
		{name: "unknown preset", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"preset": "party"}},
		{name: "bad visibility", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 400, errcode: "M_INVALID_PARAM",
			body: map[string]any{"visibility": "secret"}},
		{name: "bad invitee", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 400, errcode: "M_INVALID_PARAM",
			body: map[string]any{"invite": []string{"bob"}}},
		{name: "not JSON", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 400, errcode: "M_NOT_JSON",
			body: []byte(`{"name": "x",}`)},
		{name: "body not an object", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: []byte(`["name"]`)},
		{name: "name is a number", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"name": 5}},
		{name: "creation_content not an object", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"creation_content": "x"}},
		{name: "initial_state without type", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"initial_state": []map[string]any{{"content": map[string]any{}}}}},
		{name: "initial_state content not an object", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"initial_state": []map[string]any{{"type": "x.y", "content": 3}}}},
		{name: "initial_state may not hold members", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"initial_state": []map[string]any{{"type": "m.room.member", "state_key": bob.UserID, "content": map[string]any{"membership": "join"}}}}},
		{name: "oversized initial state", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 413, errcode: "M_TOO_LARGE",
			body: map[string]any{"initial_state": []map[string]any{{"type": "x.big", "content": map[string]any{"v": strings.Repeat("a", 70000)}}}}},
		{name: "needs a token", method: "POST", path: v3 + "/createRoom", body: map[string]any{}, status: 401, errcode: "M_MISSING_TOKEN"},
	})

	t.Run("options took effect", func(t *testing.T) {
		get := func(evType string) testnode.Response {
			return n.Do("GET", v3+"/rooms/"+esc(full)+"/state/"+evType+"/", alice.Token, nil)
		}
		checks := map[string][2]string{
			"m.room.name":            {"name", "Lobby"},
			"m.room.topic":           {"topic", "hi"},
			"m.room.join_rules":      {"join_rule", "public"},
			"m.room.canonical_alias": {"alias", "#lobby:" + server},
			"m.room.create":          {"room_version", "11"},
			"m.room.encryption":      {"algorithm", "m.megolm.v1.aes-sha2"},
		}
		for evType, kv := range checks {
			res := get(evType)
			expect(t, res, 200, "")
			if res.Body[kv[0]] != kv[1] {
				t.Errorf("%s: %s", evType, res.Raw)
			}
		}
		if res := get("m.room.create"); res.Body["m.federate"] != false {
			t.Errorf("creation_content not applied: %s", res.Raw)
		}
		if res := get("m.room.power_levels"); res.Body["events_default"] != float64(10) {
			t.Errorf("power level override not applied: %s", res.Raw)
		}
		res := n.Do("GET", v3+"/rooms/"+esc(full)+"/state/org.example.thing", alice.Token, nil)
		expect(t, res, 200, "")
		res = n.Do("GET", v3+"/rooms/"+esc(full)+"/state/m.room.member/"+esc(bob.UserID), alice.Token, nil)
		if res.Body["membership"] != "invite" {
			t.Errorf("bob not invited: %s", res.Raw)
		}
		res = n.Do("GET", v3+"/directory/room/"+esc("#lobby:"+server), "", nil)
		if res.String("room_id") != full {
			t.Errorf("alias: %s", res.Raw)
		}
	})

	t.Run("joined_rooms", func(t *testing.T) {
		res := n.Do("GET", v3+"/joined_rooms", alice.Token, nil)
		expect(t, res, 200, "")
		rooms, _ := res.Body["joined_rooms"].([]any)
		if len(rooms) != 3 || !slices.Contains(rooms, any(full)) {
			t.Errorf("alice's rooms %s", res.Raw)
		}
		res = n.Do("GET", v3+"/joined_rooms", bob.Token, nil)
		expect(t, res, 200, "")
		if rooms, ok := res.Body["joined_rooms"].([]any); !ok || len(rooms) != 0 {
			t.Errorf("bob (only invited) has joined rooms: %s", res.Raw)
		}
	})
}
