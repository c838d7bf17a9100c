package clientapi_test

import (
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

// TestStickySend: sticky_duration_ms (and its unstable name) on PUT /send
// and PUT /state gives the event msc4354_sticky.duration_ms; a bad value is
// 400 M_INVALID_PARAM; /versions advertises org.matrix.msc4354.
func TestStickySend(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	room := createRoom(t, n, alice, map[string]any{"preset": "public_chat"})
	send := v3 + "/rooms/" + esc(room) + "/send/m.room.message/"
	state := v3 + "/rooms/" + esc(room) + "/state/org.example.call/"
	msg := map[string]any{"msgtype": "m.text", "body": "hello"}
	// duration fetches the event and returns its msc4354_sticky.duration_ms
	// (nil when absent).
	duration := func(t *testing.T, res testnode.Response) any {
		t.Helper()
		id := res.String("event_id")
		ev := n.Do("GET", v3+"/rooms/"+esc(room)+"/event/"+esc(id), alice.Token, nil)
		if ev.Status != 200 {
			t.Fatalf("get event: %d %s", ev.Status, ev.Raw)
		}
		return field(ev.Body, "msc4354_sticky", "duration_ms")
	}
	want := func(d float64) func(t *testing.T, res testnode.Response) {
		return func(t *testing.T, res testnode.Response) {
			if got := duration(t, res); got != d {
				t.Errorf("msc4354_sticky.duration_ms = %v, want %v", got, d)
			}
		}
	}
	cases := []apiCase{
		{name: "stable name", method: "PUT", path: send + "s1?sticky_duration_ms=300000", token: alice.Token, body: msg, status: 200, check: want(300000)},
		{name: "unstable name", method: "PUT", path: send + "s2?org.matrix.msc4354.sticky_duration_ms=600000", token: alice.Token, body: msg, status: 200, check: want(600000)},
		{name: "zero", method: "PUT", path: send + "s3?sticky_duration_ms=0", token: alice.Token, body: msg, status: 200, check: want(0)},
		{name: "one hour", method: "PUT", path: send + "s4?sticky_duration_ms=3600000", token: alice.Token, body: msg, status: 200, check: want(3600000)},
		{name: "state event", method: "PUT", path: state + "k?org.matrix.msc4354.sticky_duration_ms=1000", token: alice.Token, body: map[string]any{"x": 1}, status: 200, check: want(1000)},
		{name: "no parameter: not sticky", method: "PUT", path: send + "s5", token: alice.Token, body: msg, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if got := duration(t, res); got != nil {
					t.Errorf("plain event has msc4354_sticky %v", got)
				}
			}},
	}
	for i, bad := range []string{"-1", "3600001", "1.5", "abc", "", "1e3", "%2B5"} {
		for _, name := range []string{"sticky_duration_ms", "org.matrix.msc4354.sticky_duration_ms"} {
			cases = append(cases,
				apiCase{name: "send " + name + "=" + bad, method: "PUT", path: send + "bad" + string(rune('a'+i)) + name + "?" + name + "=" + bad,
					token: alice.Token, body: msg, status: 400, errcode: "M_INVALID_PARAM"},
				apiCase{name: "state " + name + "=" + bad, method: "PUT", path: state + "bad?" + name + "=" + bad,
					token: alice.Token, body: map[string]any{}, status: 400, errcode: "M_INVALID_PARAM"})
		}
	}
	cases = append(cases, apiCase{name: "versions", method: "GET", path: "/_matrix/client/versions", status: 200,
		check: func(t *testing.T, res testnode.Response) {
			if got := field(res.Body, "unstable_features", "org.matrix.msc4354"); got != true {
				t.Errorf("unstable_features.org.matrix.msc4354 = %v: %s", got, res.Raw)
			}
		}})
	runCases(t, n, cases)
}
