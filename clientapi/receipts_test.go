package clientapi_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

func TestReceiptsAndReadMarkers(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	carol := n.Register("carol")
	room := createRoom(t, n, alice, map[string]any{"preset": "public_chat"})
	expect(t, n.Do("POST", v3+"/rooms/"+esc(room)+"/join", bob.Token, map[string]any{}), 200, "")
	e1 := sendText(t, n, alice, room, "t1", "one")
	e2 := sendText(t, n, alice, room, "t2", "two")
	r := v3 + "/rooms/" + esc(room)
	receipt := func(typ, ev string) string { return r + "/receipt/" + typ + "/" + esc(ev) }
	fullyRead := func(want string) func(t *testing.T, res testnode.Response) {
		return func(t *testing.T, res testnode.Response) {
			if res.String("event_id") != want {
				t.Errorf("m.fully_read %s, want %s", res.Raw, want)
			}
		}
	}
	markerPath := v3 + "/user/" + esc(bob.UserID) + "/rooms/" + esc(room) + "/account_data/m.fully_read"
	runCases(t, n, []apiCase{
		{name: "read receipt", method: "POST", path: receipt("m.read", e1), token: bob.Token, body: map[string]any{}, status: 200},
		{name: "without a body", method: "POST", path: receipt("m.read", e1), token: bob.Token, status: 200},
		{name: "threaded", method: "POST", path: receipt("m.read", e1), token: bob.Token, body: map[string]any{"thread_id": "main"}, status: 200},
		{name: "private", method: "POST", path: receipt("m.read.private", e2), token: bob.Token, body: map[string]any{}, status: 200},
		{name: "fully read through the receipt endpoint", method: "POST", path: receipt("m.fully_read", e1), token: bob.Token, body: map[string]any{}, status: 200},
		{name: "marker set", method: "GET", path: markerPath, token: bob.Token, status: 200, check: fullyRead(e1)},
		{name: "read markers", method: "POST", path: r + "/read_markers", token: bob.Token,
			body: map[string]any{"m.fully_read": e2, "m.read": e2, "m.read.private": e2}, status: 200},
		{name: "marker moved", method: "GET", path: markerPath, token: bob.Token, status: 200, check: fullyRead(e2)},
		{name: "read markers may be empty", method: "POST", path: r + "/read_markers", token: bob.Token, body: map[string]any{}, status: 200},

		{name: "unknown receipt type", method: "POST", path: receipt("m.unread", e1), token: bob.Token, body: map[string]any{}, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "empty thread_id", method: "POST", path: receipt("m.read", e1), token: bob.Token, body: map[string]any{"thread_id": ""}, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "thread_id not a string", method: "POST", path: receipt("m.read", e1), token: bob.Token, body: map[string]any{"thread_id": 5}, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "thread_id on m.fully_read", method: "POST", path: receipt("m.fully_read", e1), token: bob.Token, body: map[string]any{"thread_id": "main"}, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "unknown event", method: "POST", path: receipt("m.read", "$nope"), token: bob.Token, body: map[string]any{}, status: 404, errcode: "M_NOT_FOUND"},
		{name: "not joined", method: "POST", path: receipt("m.read", e1), token: carol.Token, body: map[string]any{}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "read markers: not joined", method: "POST", path: r + "/read_markers", token: carol.Token, body: map[string]any{"m.read": e1}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "read markers: wrong type", method: "POST", path: r + "/read_markers", token: bob.Token, body: map[string]any{"m.read": 5}, status: 400, errcode: "M_BAD_JSON"},
		{name: "read markers: unknown event", method: "POST", path: r + "/read_markers", token: bob.Token, body: map[string]any{"m.fully_read": "$nope"}, status: 404, errcode: "M_NOT_FOUND"},
		{name: "needs a token", method: "POST", path: receipt("m.read", e1), body: map[string]any{}, status: 401, errcode: "M_MISSING_TOKEN"},
	})

	// What the receipts endpoints stored, as /sync will read it.
	node := n.App.Node
	read := func(forUser string) map[string]map[string]map[string]map[string]any {
		t.Helper()
		got, err := node.ReceiptsSince(context.Background(), forUser, []string{room}, 0, node.ReceiptPosition())
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]map[string]map[string]map[string]any
		if err := json.Unmarshal(got[room], &c); err != nil {
			t.Fatalf("m.receipt %s: %v", got[room], err)
		}
		return c
	}
	if c := read(alice.UserID); c[e2]["m.read"][bob.UserID] == nil || c[e2]["m.read.private"] != nil {
		t.Errorf("alice sees %v", c)
	}
	if c := read(bob.UserID); c[e2]["m.read.private"][bob.UserID] == nil {
		t.Errorf("bob does not see his private receipt: %v", c)
	}
	if c := read(alice.UserID); c[e1]["m.read"][bob.UserID]["thread_id"] != "main" {
		t.Errorf("threaded receipt: %v", c)
	}
}
