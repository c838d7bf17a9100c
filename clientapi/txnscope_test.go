package clientapi_test

import (
	"strings"
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

// TestTxnScope checks the spec's scope of transaction IDs: the device and
// the request path. The same ID sent to another room, with another event
// type, to /redact or to /sendToDevice is a new request; only a repeat on
// the same path is a retry.
func TestTxnScope(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	roomA := createRoom(t, n, alice, nil)
	roomB := createRoom(t, n, alice, nil)
	send := func(room, evType string) string { return v3 + "/rooms/" + esc(room) + "/send/" + evType + "/dupe1" }
	msg := map[string]any{"msgtype": "m.text", "body": "hello"}
	ids := map[string]string{} // case name -> event ID answered
	// eventIn checks an answered event ID is a new event stored in room.
	eventIn := func(name, room string) func(t *testing.T, res testnode.Response) {
		return func(t *testing.T, res testnode.Response) {
			id := res.String("event_id")
			for prev, other := range ids {
				if other == id {
					t.Fatalf("got %s, the event of %q: nothing new was sent", id, prev)
				}
			}
			ids[name] = id
			ev := n.Do("GET", v3+"/rooms/"+esc(room)+"/event/"+esc(id), alice.Token, nil)
			expect(t, ev, 200, "")
			if ev.String("room_id") != room || field(ev.Body, "unsigned", "transaction_id") != "dupe1" {
				t.Errorf("event %s", ev.Raw)
			}
		}
	}
	same := func(name string) func(t *testing.T, res testnode.Response) {
		return func(t *testing.T, res testnode.Response) {
			if got := res.String("event_id"); got != ids[name] {
				t.Errorf("retry got %s, want %s (%s)", got, ids[name], name)
			}
		}
	}
	runCases(t, n, []apiCase{
		{name: "send in A", method: "PUT", path: send(roomA, "m.room.message"), token: alice.Token, body: msg, status: 200,
			check: eventIn("send in A", roomA)},
		{name: "same ID in B sends in B", method: "PUT", path: send(roomB, "m.room.message"), token: alice.Token, body: msg, status: 200,
			check: eventIn("same ID in B", roomB)},
		{name: "same ID, another type, sends", method: "PUT", path: send(roomA, "org.example.note"), token: alice.Token, body: msg, status: 200,
			check: eventIn("another type", roomA)},
		{name: "retry in A is a retry", method: "PUT", path: send(roomA, "m.room.message"), token: alice.Token, body: msg, status: 200,
			check: same("send in A")},
		{name: "retry in B is a retry", method: "PUT", path: send(roomB, "m.room.message"), token: alice.Token, body: msg, status: 200,
			check: same("same ID in B")},
	})

	// The redactions' paths need the event IDs the sends answered.
	redact := func(room, target string) string {
		return v3 + "/rooms/" + esc(room) + "/redact/" + esc(target) + "/dupe1"
	}
	runCases(t, n, []apiCase{
		{name: "redact with a send's ID redacts", method: "PUT", path: redact(roomA, ids["send in A"]), token: alice.Token,
			body: map[string]any{"reason": "r"}, status: 200, check: eventIn("redact A", roomA)},
		{name: "redaction retry is a retry", method: "PUT", path: redact(roomA, ids["send in A"]), token: alice.Token,
			body: map[string]any{"reason": "r"}, status: 200, check: same("redact A")},
		{name: "same ID redacting another event redacts it", method: "PUT", path: redact(roomA, ids["another type"]), token: alice.Token,
			body: map[string]any{}, status: 200, check: eventIn("redact other", roomA)},
		{name: "redaction through /send with the same ID redacts", method: "PUT", path: send(roomB, "m.room.redaction"), token: alice.Token,
			body: map[string]any{"redacts": ids["same ID in B"]}, status: 200, check: eventIn("send redaction B", roomB)},
	})
	for _, c := range []struct{ room, id string }{
		{roomA, ids["send in A"]}, {roomA, ids["another type"]}, {roomB, ids["same ID in B"]},
	} {
		ev := n.Do("GET", v3+"/rooms/"+esc(c.room)+"/event/"+esc(c.id), alice.Token, nil)
		expect(t, ev, 200, "")
		if field(ev.Body, "unsigned", "redacted_because") == nil || field(ev.Body, "content", "body") != nil {
			t.Errorf("event %s not redacted: %s", c.id, ev.Raw)
		}
	}
}

// TestToDeviceTxnScope checks that a to-device transaction ID is scoped by
// the path's event type: the same ID with another type is delivered, a
// repeat with the same type is not.
func TestToDeviceTxnScope(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	toBob := map[string]any{"messages": map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{"n": 1}}}}
	for _, path := range []string{"/sendToDevice/m.test.one/dupe1", "/sendToDevice/m.test.two/dupe1", "/sendToDevice/m.test.one/dupe1"} {
		expect(t, n.Do("PUT", v3+path, alice.Token, toBob), 200, "")
	}
	res := n.Do("GET", v3+"/sync?timeout=0", bob.Token, nil)
	expect(t, res, 200, "")
	events, _ := field(res.Body, "to_device", "events").([]any)
	var types []string
	for _, e := range events {
		s, _ := field(e, "type").(string)
		types = append(types, s)
	}
	if strings.Join(types, ",") != "m.test.one,m.test.two" {
		t.Errorf("bob got to-device types %v, want m.test.one,m.test.two (the repeat of one dropped)", types)
	}
}
