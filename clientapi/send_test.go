package clientapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
	"github.com/edgenode/edgenode/node/core"
)

func TestSend(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	room := createRoom(t, n, alice, map[string]any{"preset": "public_chat"})
	send := v3 + "/rooms/" + esc(room) + "/send/m.room.message/"
	msg := map[string]any{"msgtype": "m.text", "body": "hello"}
	var first string
	runCases(t, n, []apiCase{
		{name: "send", method: "PUT", path: send + "t1", token: alice.Token, body: msg, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if first = res.String("event_id"); !strings.HasPrefix(first, "$") {
					t.Errorf("event_id %s", res.Raw)
				}
			}},
		{name: "same txn ID gives the same event", method: "PUT", path: send + "t1", token: alice.Token, body: msg, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.String("event_id") != first {
					t.Errorf("retry got %s, first was %s", res.String("event_id"), first)
				}
			}},
		{name: "non-member cannot send", method: "PUT", path: send + "b1", token: bob.Token, body: msg, status: 403, errcode: "M_FORBIDDEN"},
		{name: "unknown room", method: "PUT", path: v3 + "/rooms/" + esc("!nope:"+n.App.Node.ServerName()) + "/send/m.room.message/x", token: alice.Token,
			body: msg, status: 404, errcode: "M_NOT_FOUND"},
		{name: "malformed room ID", method: "PUT", path: v3 + "/rooms/nope/send/m.room.message/x", token: alice.Token,
			body: msg, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "malformed JSON", method: "PUT", path: send + "t2", token: alice.Token, body: []byte(`{"body": "x"`), status: 400, errcode: "M_NOT_JSON"},
		{name: "content not an object", method: "PUT", path: send + "t3", token: alice.Token, body: []byte(`"hello"`), status: 400, errcode: "M_BAD_JSON"},
		{name: "body over the event limit", method: "PUT", path: send + "t4", token: alice.Token, status: 413, errcode: "M_TOO_LARGE",
			body: map[string]any{"body": strings.Repeat("x", 70000)}},
		{name: "body under the limit, event over it", method: "PUT", path: send + "t5", token: alice.Token, status: 413, errcode: "M_TOO_LARGE",
			body: map[string]any{"body": strings.Repeat("x", 65400)}},
		{name: "missing token", method: "PUT", path: send + "t6", body: msg, status: 401, errcode: "M_MISSING_TOKEN"},
		{name: "bad token", method: "PUT", path: send + "t6", token: "bad", body: msg, status: 401, errcode: "M_UNKNOWN_TOKEN"},
		{name: "wrong method", method: "POST", path: send + "t6", token: alice.Token, body: msg, status: 405, errcode: "M_UNRECOGNIZED"},
	})

	t.Run("a repeated txn ID stores one event", func(t *testing.T) {
		page, err := n.App.Node.RoomEvents(context.Background(), alice.UserID, room, core.Range{Backwards: true, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		count := 0
		for _, ev := range page.Events {
			if ev.PDU.Type() == "m.room.message" {
				count++
				if ev.PDU.EventID() != first {
					t.Errorf("unexpected message %s", ev.PDU.EventID())
				}
			}
		}
		if count != 1 {
			t.Errorf("%d messages stored, want 1", count)
		}
	})

	t.Run("the sending device sees its txn ID", func(t *testing.T) {
		res := n.Do("GET", v3+"/rooms/"+esc(room)+"/event/"+esc(first), alice.Token, nil)
		expect(t, res, 200, "")
		if got := field(res.Body, "unsigned", "transaction_id"); got != "t1" {
			t.Errorf("transaction_id %v: %s", got, res.Raw)
		}
		if field(res.Body, "content", "body") != "hello" || res.String("room_id") != room || res.String("sender") != alice.UserID {
			t.Errorf("event %s", res.Raw)
		}
	})

	t.Run("txn IDs are per device", func(t *testing.T) {
		login := n.Do("POST", v3+"/login", "", map[string]any{"type": "m.login.password", "user": "alice", "password": "pw-alice"})
		expect(t, login, 200, "")
		res := n.Do("PUT", send+"t1", login.String("access_token"), msg)
		expect(t, res, 200, "")
		if res.String("event_id") == first {
			t.Error("another device's txn ID returned the first device's event")
		}
	})
}

func TestEventAndRedact(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	carol := n.Register("carol")
	room := createRoom(t, n, alice, map[string]any{"preset": "public_chat"})
	other := createRoom(t, n, alice, nil)
	expect(t, n.Do("POST", v3+"/rooms/"+esc(room)+"/join", bob.Token, nil), 200, "")
	aliceMsg := sendText(t, n, alice, room, "a1", "secret words")
	bobMsg := sendText(t, n, bob, room, "b1", "bob's words")
	bobMsg2 := sendText(t, n, bob, room, "b2", "more words")
	otherMsg := sendText(t, n, alice, other, "o1", "elsewhere")
	r := v3 + "/rooms/" + esc(room)
	var redaction string
	runCases(t, n, []apiCase{
		{name: "get event", method: "GET", path: r + "/event/" + esc(aliceMsg), token: bob.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if field(res.Body, "content", "body") != "secret words" || field(res.Body, "unsigned", "transaction_id") != nil {
					t.Errorf("event %s", res.Raw)
				}
			}},
		{name: "event of another room", method: "GET", path: r + "/event/" + esc(otherMsg), token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "unknown event", method: "GET", path: r + "/event/" + esc("$nope"), token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "non-member cannot see the event", method: "GET", path: r + "/event/" + esc(aliceMsg), token: carol.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "member cannot redact others' events", method: "PUT", path: r + "/redact/" + esc(aliceMsg) + "/r1", token: bob.Token,
			body: map[string]any{}, status: 403, errcode: "M_FORBIDDEN"},
		{name: "redact own event", method: "PUT", path: r + "/redact/" + esc(bobMsg) + "/r2", token: bob.Token,
			body: map[string]any{"reason": "oops"}, status: 200,
			check: func(t *testing.T, res testnode.Response) { redaction = res.String("event_id") }},
		{name: "redaction retry is idempotent", method: "PUT", path: r + "/redact/" + esc(bobMsg) + "/r2", token: bob.Token,
			body: map[string]any{"reason": "oops"}, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.String("event_id") != redaction {
					t.Errorf("retry gave %s, first %s", res.String("event_id"), redaction)
				}
			}},
		{name: "redacted event has empty content", method: "GET", path: r + "/event/" + esc(bobMsg), token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if c, ok := res.Body["content"].(map[string]any); !ok || len(c) != 0 {
					t.Errorf("content not stripped: %s", res.Raw)
				}
				if field(res.Body, "unsigned", "redacted_because") == nil {
					t.Errorf("no redacted_because: %s", res.Raw)
				}
			}},
		{name: "admin redacts others' events", method: "PUT", path: r + "/redact/" + esc(aliceMsg) + "/r3", token: alice.Token,
			body: map[string]any{}, status: 200},
		{name: "redaction via send", method: "PUT", path: r + "/send/m.room.redaction/r4", token: bob.Token,
			body: map[string]any{"redacts": bobMsg2, "reason": "also oops"}, status: 200},
		{name: "redacted via send", method: "GET", path: r + "/event/" + esc(bobMsg2), token: bob.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if c, _ := res.Body["content"].(map[string]any); len(c) != 0 {
					t.Errorf("content not stripped: %s", res.Raw)
				}
			}},
		{name: "redaction via send needs redacts", method: "PUT", path: r + "/send/m.room.redaction/r5", token: bob.Token,
			body: map[string]any{"reason": "x"}, status: 400, errcode: "M_MISSING_PARAM"},
		{name: "redact unknown event", method: "PUT", path: r + "/redact/" + esc("$nope") + "/r6", token: alice.Token,
			body: map[string]any{}, status: 404, errcode: "M_NOT_FOUND"},
		{name: "redact event of another room", method: "PUT", path: r + "/redact/" + esc(otherMsg) + "/r7", token: alice.Token,
			body: map[string]any{}, status: 404, errcode: "M_NOT_FOUND"},
		{name: "redact mis-shaped", method: "PUT", path: r + "/redact/" + esc(aliceMsg) + "/r8", token: alice.Token,
			body: map[string]any{"reason": false}, status: 400, errcode: "M_BAD_JSON"},
	})
}

// TestRedactV11 checks redaction in a room version 11 room, where the
// redacted event's ID moved into the redaction's content.
func TestRedactV11(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	room := createRoom(t, n, alice, map[string]any{"room_version": "11"})
	msg := sendText(t, n, alice, room, "a1", "v11 words")
	r := v3 + "/rooms/" + esc(room)
	var redaction string
	runCases(t, n, []apiCase{
		{name: "redact", method: "PUT", path: r + "/redact/" + esc(msg) + "/r1", token: alice.Token,
			body: map[string]any{"reason": "gone"}, status: 200,
			check: func(t *testing.T, res testnode.Response) { redaction = res.String("event_id") }},
		{name: "stripped", method: "GET", path: r + "/event/" + esc(msg), token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if c, _ := res.Body["content"].(map[string]any); len(c) != 0 {
					t.Errorf("content not stripped: %s", res.Raw)
				}
			}},
	})
	res := n.Do("GET", r+"/event/"+esc(redaction), alice.Token, nil)
	expect(t, res, 200, "")
	if field(res.Body, "content", "redacts") != msg || field(res.Body, "content", "reason") != "gone" {
		t.Errorf("redaction %s", res.Raw)
	}
}
