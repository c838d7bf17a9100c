package clientapi_test

import (
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

func TestMembership(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	carol := n.Register("carol")
	server := n.App.Node.ServerName()
	public := createRoom(t, n, alice, map[string]any{"preset": "public_chat", "room_alias_name": "pub"})
	private := createRoom(t, n, alice, map[string]any{"preset": "private_chat"})
	pub, priv := v3+"/rooms/"+esc(public), v3+"/rooms/"+esc(private)
	memberOf := func(room, user, want string) apiCase {
		return apiCase{name: user + " is " + want, method: "GET", path: room + "/state/m.room.member/" + esc(user), token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.Body["membership"] != want {
					t.Errorf("membership %s", res.Raw)
				}
			}}
	}
	var bobLeave string
	runCases(t, n, []apiCase{
		// Joining.
		{name: "join by alias", method: "POST", path: v3 + "/join/" + esc("#pub:"+server), token: bob.Token, body: map[string]any{}, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.String("room_id") != public {
					t.Errorf("join %s", res.Raw)
				}
			}},
		memberOf(pub, bob.UserID, "join"),
		{name: "join again is a no-op", method: "POST", path: pub + "/join", token: bob.Token, status: 200},
		{name: "join by room ID with reason", method: "POST", path: v3 + "/join/" + esc(public), token: carol.Token,
			body: map[string]any{"reason": "hello"}, status: 200},
		{name: "join unknown alias", method: "POST", path: v3 + "/join/" + esc("#nope:"+server), token: bob.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "join unknown room", method: "POST", path: v3 + "/rooms/" + esc("!nope:"+server) + "/join", token: bob.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "join neither ID nor alias", method: "POST", path: v3 + "/join/nope", token: bob.Token, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "join invite-only room uninvited", method: "POST", path: priv + "/join", token: bob.Token, status: 403, errcode: "M_FORBIDDEN"},
		{name: "join mis-shaped", method: "POST", path: pub + "/join", token: bob.Token, body: map[string]any{"reason": 1}, status: 400, errcode: "M_BAD_JSON"},

		// Inviting.
		{name: "invite needs user_id", method: "POST", path: priv + "/invite", token: alice.Token, body: map[string]any{}, status: 400, errcode: "M_MISSING_PARAM"},
		{name: "invite bad user_id", method: "POST", path: priv + "/invite", token: alice.Token, body: map[string]any{"user_id": "bob"}, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "non-member cannot invite", method: "POST", path: priv + "/invite", token: carol.Token, body: map[string]any{"user_id": bob.UserID}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "invite", method: "POST", path: priv + "/invite", token: alice.Token, body: map[string]any{"user_id": bob.UserID, "reason": "come"}, status: 200},
		memberOf(priv, bob.UserID, "invite"),
		{name: "decline the invite", method: "POST", path: priv + "/leave", token: bob.Token, status: 200},
		memberOf(priv, bob.UserID, "leave"),
		{name: "invite again", method: "POST", path: priv + "/invite", token: alice.Token, body: map[string]any{"user_id": bob.UserID}, status: 200},
		{name: "accept the invite", method: "POST", path: priv + "/join", token: bob.Token, status: 200},
		{name: "invite a joined user", method: "POST", path: priv + "/invite", token: alice.Token, body: map[string]any{"user_id": bob.UserID}, status: 403, errcode: "M_FORBIDDEN"},

		// Leaving and forgetting.
		{name: "forget while joined", method: "POST", path: priv + "/forget", token: bob.Token, status: 400, errcode: "M_UNKNOWN"},
		{name: "leave", method: "POST", path: priv + "/leave", token: bob.Token, body: map[string]any{"reason": "bye"}, status: 200,
			check: func(t *testing.T, res testnode.Response) { bobLeave = memberEventID(t, n, alice, private, bob.UserID) }},
		memberOf(priv, bob.UserID, "leave"),
		{name: "leave again is a no-op", method: "POST", path: priv + "/leave", token: bob.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if got := memberEventID(t, n, alice, private, bob.UserID); got != bobLeave {
					t.Errorf("leaving twice sent another event: %s, was %s", got, bobLeave)
				}
			}},
		{name: "leave a room never joined", method: "POST", path: priv + "/leave", token: carol.Token, status: 403, errcode: "M_FORBIDDEN"},
		{name: "leave an unknown room", method: "POST", path: v3 + "/rooms/" + esc("!nope:"+server) + "/leave", token: carol.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "forget", method: "POST", path: priv + "/forget", token: bob.Token, status: 200},
		{name: "forget a room never joined", method: "POST", path: priv + "/forget", token: carol.Token, status: 404, errcode: "M_NOT_FOUND"},

		// Kicking.
		{name: "kick needs user_id", method: "POST", path: pub + "/kick", token: alice.Token, body: map[string]any{}, status: 400, errcode: "M_MISSING_PARAM"},
		{name: "member cannot kick", method: "POST", path: pub + "/kick", token: bob.Token, body: map[string]any{"user_id": carol.UserID}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "kick", method: "POST", path: pub + "/kick", token: alice.Token, body: map[string]any{"user_id": carol.UserID, "reason": "spam"}, status: 200},
		memberOf(pub, carol.UserID, "leave"),
		{name: "kick someone not in the room", method: "POST", path: pub + "/kick", token: alice.Token, body: map[string]any{"user_id": carol.UserID}, status: 403, errcode: "M_FORBIDDEN"},

		// Banning.
		{name: "member cannot ban", method: "POST", path: pub + "/ban", token: bob.Token, body: map[string]any{"user_id": carol.UserID}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "ban", method: "POST", path: pub + "/ban", token: alice.Token, body: map[string]any{"user_id": carol.UserID, "reason": "spam"}, status: 200},
		memberOf(pub, carol.UserID, "ban"),
		{name: "banned user cannot join", method: "POST", path: pub + "/join", token: carol.Token, status: 403, errcode: "M_FORBIDDEN"},
		{name: "banned user cannot join by alias", method: "POST", path: v3 + "/join/" + esc("#pub:"+server), token: carol.Token, status: 403, errcode: "M_FORBIDDEN"},
		{name: "kick does not unban", method: "POST", path: pub + "/kick", token: alice.Token, body: map[string]any{"user_id": carol.UserID}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "member cannot unban", method: "POST", path: pub + "/unban", token: bob.Token, body: map[string]any{"user_id": carol.UserID}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "unban", method: "POST", path: pub + "/unban", token: alice.Token, body: map[string]any{"user_id": carol.UserID}, status: 200},
		memberOf(pub, carol.UserID, "leave"),
		{name: "unban someone not banned", method: "POST", path: pub + "/unban", token: alice.Token, body: map[string]any{"user_id": carol.UserID}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "rejoin after unban", method: "POST", path: pub + "/join", token: carol.Token, status: 200},
	})
}

// memberEventID is the ID of user's current member event, as viewer sees it.
func memberEventID(t *testing.T, n *testnode.Node, viewer testnode.User, roomID, user string) string {
	t.Helper()
	res := n.Do("GET", v3+"/rooms/"+esc(roomID)+"/state/m.room.member/"+esc(user)+"?format=event", viewer.Token, nil)
	expect(t, res, 200, "")
	return res.String("event_id")
}
