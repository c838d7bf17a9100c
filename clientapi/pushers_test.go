package clientapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnode"
)

// gatewayPost is one POST a test push gateway received.
type gatewayPost struct {
	Notification struct {
		EventID           string `json:"event_id"`
		RoomID            string `json:"room_id"`
		Type              string `json:"type"`
		Sender            string `json:"sender"`
		SenderDisplayName string `json:"sender_display_name"`
		RoomName          string `json:"room_name"`
		Prio              string `json:"prio"`
		Content           map[string]any
		Counts            struct {
			Unread *int `json:"unread"`
		} `json:"counts"`
		Devices []struct {
			AppID     string         `json:"app_id"`
			PushKey   string         `json:"pushkey"`
			PushKeyTS int64          `json:"pushkey_ts"`
			Data      map[string]any `json:"data"`
			Tweaks    map[string]any `json:"tweaks"`
		} `json:"devices"`
	} `json:"notification"`
	status int // what the gateway answered
}

// testGateway is a push gateway on 127.0.0.1. answer decides each answer
// (status and body) from the post and how many came before it.
type testGateway struct {
	*httptest.Server
	posts chan gatewayPost
	mu    sync.Mutex
	n     int
}

func startGateway(t *testing.T, answer func(p gatewayPost, n int) (int, string)) *testGateway {
	t.Helper()
	g := &testGateway{posts: make(chan gatewayPost, 100)}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p gatewayPost
		body, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.URL.Path != "/_matrix/push/v1/notify" || json.Unmarshal(body, &p) != nil {
			t.Errorf("gateway got %s %s %s", r.Method, r.URL.Path, body)
		}
		g.mu.Lock()
		n := g.n
		g.n++
		g.mu.Unlock()
		status, reply := answer(p, n)
		p.status = status
		w.WriteHeader(status)
		_, _ = io.WriteString(w, reply)
		g.posts <- p
	}))
	t.Cleanup(g.Close)
	return g
}

// next waits (boundedly) for the gateway's next post.
func (g *testGateway) next(t *testing.T) gatewayPost {
	t.Helper()
	select {
	case p := <-g.posts:
		return p
	case <-time.After(30 * time.Second):
		t.Fatal("no post reached the gateway")
		return gatewayPost{}
	}
}

func setPusher(t *testing.T, n *testnode.Node, u testnode.User, url, pushkey string, extra map[string]any) {
	t.Helper()
	data := map[string]any{"url": url + "/_matrix/push/v1/notify"}
	for k, v := range extra {
		data[k] = v
	}
	res := n.Do("POST", v3+"/pushers/set", u.Token, map[string]any{
		"kind": "http", "app_id": "org.example.app", "pushkey": pushkey, "app_display_name": "App",
		"device_display_name": "Phone", "lang": "en", "data": data,
	})
	expect(t, res, http.StatusOK, "")
}

// TestPushGateway: a push gateway on 127.0.0.1 gets exactly one
// notification per notifying event, in the push gateway API's format, a
// failed post retried; none once the pusher is removed; and a pusher whose
// pushkey the gateway rejects is deleted.
func TestPushGateway(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice, bob, carol := n.Register("alice"), n.Register("bob"), n.Register("carol")
	roomID := sharedRoom(t, n, alice, bob)
	expect(t, n.Do("POST", v3+"/join/"+esc(roomID), carol.Token, map[string]any{}), http.StatusOK, "")
	expect(t, n.Do("PUT", v3+"/rooms/"+esc(roomID)+"/state/m.room.name", alice.Token, map[string]any{"name": "Garden"}), http.StatusOK, "")
	expect(t, n.Do("PUT", v3+"/profile/"+esc(alice.UserID)+"/displayname", alice.Token, map[string]any{"displayname": "Alice A"}), http.StatusOK, "")

	// The gateway fails its first post, then accepts; carol's pushkey is
	// rejected once asked to.
	var rejectCarol sync.Once
	rejecting := make(chan struct{})
	g := startGateway(t, func(p gatewayPost, i int) (int, string) {
		if i == 0 {
			return 500, `{"error":"try later"}`
		}
		select {
		case <-rejecting:
			if len(p.Notification.Devices) == 1 && p.Notification.Devices[0].PushKey == "carol-key" {
				return 200, `{"rejected":["carol-key"]}`
			}
		default:
		}
		return 200, `{}`
	})
	setPusher(t, n, bob, g.URL, "bob-key", map[string]any{"custom": "x"})

	res := n.Do("GET", v3+"/pushers", bob.Token, nil)
	expect(t, res, http.StatusOK, "")
	ps, _ := res.Body["pushers"].([]any)
	if len(ps) != 1 || field(ps[0], "pushkey") != "bob-key" || field(ps[0], "kind") != "http" || field(ps[0], "data", "url") == nil {
		t.Fatalf("pushers %s", res.Raw)
	}

	// Three notifying events, one that does not (a reaction): three
	// notifications, the first posted twice (500, then 200).
	var want []string
	for _, txn := range []string{"a", "b", "c"} {
		want = append(want, sendText(t, n, alice, roomID, txn, "hello "+txn))
	}
	n.Do("PUT", v3+"/rooms/"+esc(roomID)+"/send/m.reaction/r", alice.Token, map[string]any{})
	delivered := map[string]int{}
	var failed int
	for len(delivered) < 3 || failed == 0 {
		p := g.next(t)
		if p.status != 200 {
			failed++
			continue
		}
		delivered[p.Notification.EventID]++
		if p.Notification.EventID != want[0] {
			continue
		}
		x := p.Notification
		if x.RoomID != roomID || x.Type != "m.room.message" || x.Sender != alice.UserID || x.SenderDisplayName != "Alice A" ||
			x.RoomName != "Garden" || x.Prio != "high" || x.Content["body"] != "hello a" || x.Counts.Unread == nil || *x.Counts.Unread < 1 {
			t.Errorf("notification %+v", x)
		}
		if len(x.Devices) != 1 {
			t.Fatalf("devices %+v", x.Devices)
		}
		d := x.Devices[0]
		if d.AppID != "org.example.app" || d.PushKey != "bob-key" || d.PushKeyTS <= 0 || d.Data["custom"] != "x" ||
			d.Data["url"] != nil || d.Tweaks == nil {
			t.Errorf("device %+v", d)
		}
	}
	for _, id := range want {
		if delivered[id] != 1 {
			t.Errorf("event %s delivered %d times, want once (all: %v)", id, delivered[id], delivered)
		}
	}
	if failed != 1 {
		t.Errorf("%d failed posts, want 1", failed)
	}

	// event_id_only: carol's pusher gets only the IDs and counts. Bob's
	// pusher goes, so the next event reaches the gateway for carol alone.
	setPusher(t, n, carol, g.URL, "carol-key", map[string]any{"format": "event_id_only"})
	res = n.Do("POST", v3+"/pushers/set", bob.Token, map[string]any{"kind": nil, "app_id": "org.example.app", "pushkey": "bob-key"})
	expect(t, res, http.StatusOK, "")
	if res := n.Do("GET", v3+"/pushers", bob.Token, nil); len(res.Body["pushers"].([]any)) != 0 {
		t.Fatalf("bob's pushers after deleting: %s", res.Raw)
	}
	d := sendText(t, n, alice, roomID, "d", "after")
	p := g.next(t)
	if p.Notification.EventID != d || p.Notification.Devices[0].PushKey != "carol-key" || p.Notification.Type != "" ||
		p.Notification.Sender != "" || p.Notification.Content != nil {
		t.Errorf("event_id_only post %+v", p.Notification)
	}

	// The gateway rejects carol's pushkey: her pusher is deleted.
	rejectCarol.Do(func() { close(rejecting) })
	sendText(t, n, alice, roomID, "e", "rejected")
	if p := g.next(t); p.Notification.Devices[0].PushKey != "carol-key" {
		t.Fatalf("post %+v", p.Notification)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res := n.Do("GET", v3+"/pushers", carol.Token, nil)
		if len(res.Body["pushers"].([]any)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("carol's rejected pusher is still there: %s", res.Raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// No pusher left: nothing more is posted (the barrier: a pusher set
	// again, whose first post must be the next event's).
	sendText(t, n, alice, roomID, "f", "nobody listens")
	setPusher(t, n, bob, g.URL, "bob-key-2", nil)
	last := sendText(t, n, alice, roomID, "g", "heard")
	if p := g.next(t); p.Notification.EventID != last {
		t.Errorf("after the pushers were gone, the gateway got %s (want only %s)", p.Notification.EventID, last)
	}
}

// TestPushers: the pusher API's errors and bounds, and pushers going with
// their device.
func TestPushers(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	good := func(edit func(map[string]any)) map[string]any {
		body := map[string]any{"kind": "http", "app_id": "org.example.app", "pushkey": "k", "app_display_name": "App",
			"device_display_name": "Phone", "lang": "en", "data": map[string]any{"url": "https://gw.example/_matrix/push/v1/notify"}}
		if edit != nil {
			edit(body)
		}
		return body
	}
	set := v3 + "/pushers/set"
	runCases(t, n, []apiCase{
		{name: "set", method: "POST", path: set, token: alice.Token, body: good(nil), status: 200},
		{name: "set again replaces", method: "POST", path: set, token: alice.Token, body: good(func(b map[string]any) { b["lang"] = "fr" }), status: 200,
			check: func(t *testing.T, _ testnode.Response) {
				res := n.Do("GET", v3+"/pushers", alice.Token, nil)
				ps := res.Body["pushers"].([]any)
				if len(ps) != 1 || field(ps[0], "lang") != "fr" {
					t.Errorf("pushers %s", res.Raw)
				}
			}},
		{name: "delete a missing one", method: "POST", path: set, token: alice.Token, status: 200,
			body: map[string]any{"kind": nil, "app_id": "org.example.app", "pushkey": "nope"}},
		{name: "no app_id", method: "POST", path: set, token: alice.Token, status: 400, errcode: "M_MISSING_PARAM",
			body: good(func(b map[string]any) { delete(b, "app_id") })},
		{name: "no kind", method: "POST", path: set, token: alice.Token, status: 400, errcode: "M_MISSING_PARAM",
			body: good(func(b map[string]any) { delete(b, "kind") })},
		{name: "kind not a string", method: "POST", path: set, token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: good(func(b map[string]any) { b["kind"] = 1 })},
		{name: "no lang", method: "POST", path: set, token: alice.Token, status: 400, errcode: "M_MISSING_PARAM",
			body: good(func(b map[string]any) { delete(b, "lang") })},
		{name: "no data", method: "POST", path: set, token: alice.Token, status: 400, errcode: "M_MISSING_PARAM",
			body: good(func(b map[string]any) { delete(b, "data") })},
		{name: "no url", method: "POST", path: set, token: alice.Token, status: 400, errcode: "M_MISSING_PARAM",
			body: good(func(b map[string]any) { b["data"] = map[string]any{} })},
		{name: "wrong path", method: "POST", path: set, token: alice.Token, status: 400, errcode: "M_INVALID_PARAM",
			body: good(func(b map[string]any) { b["data"] = map[string]any{"url": "https://gw.example/notify"} })},
		{name: "not http", method: "POST", path: set, token: alice.Token, status: 400, errcode: "M_INVALID_PARAM",
			body: good(func(b map[string]any) { b["data"] = map[string]any{"url": "file:///_matrix/push/v1/notify"} })},
		{name: "email pushers", method: "POST", path: set, token: alice.Token, status: 400, errcode: "M_INVALID_PARAM",
			body: good(func(b map[string]any) { b["kind"] = "email" })},
		{name: "unknown format", method: "POST", path: set, token: alice.Token, status: 400, errcode: "M_INVALID_PARAM",
			body: good(func(b map[string]any) {
				b["data"] = map[string]any{"url": "https://gw.example/_matrix/push/v1/notify", "format": "full"}
			})},
		{name: "app_id too long", method: "POST", path: set, token: alice.Token, status: 400, errcode: "M_INVALID_PARAM",
			body: good(func(b map[string]any) { b["app_id"] = string(make([]byte, 65)) + "x" })},
		{name: "pushkey too long", method: "POST", path: set, token: alice.Token, status: 400, errcode: "M_INVALID_PARAM",
			body: good(func(b map[string]any) { b["pushkey"] = string(make([]rune, 513)) })},
		{name: "data too large", method: "POST", path: set, token: alice.Token, status: 413, errcode: "M_TOO_LARGE",
			body: good(func(b map[string]any) {
				b["data"] = map[string]any{"url": "https://gw.example/_matrix/push/v1/notify", "x": string(make([]byte, 5000))}
			})},
		{name: "not JSON", method: "POST", path: set, token: alice.Token, status: 400, errcode: "M_NOT_JSON", body: []byte("pusher")},
		{name: "needs a token", method: "GET", path: v3 + "/pushers", status: 401, errcode: "M_MISSING_TOKEN"},
	})

	// Bounded per user.
	for i := 1; i < 20; i++ {
		expect(t, n.Do("POST", set, alice.Token, good(func(b map[string]any) { b["pushkey"] = fmt.Sprint("key", i) })), http.StatusOK, "")
	}
	expect(t, n.Do("POST", set, alice.Token, good(func(b map[string]any) { b["pushkey"] = "one too many" })), http.StatusRequestEntityTooLarge, "M_TOO_LARGE")

	// Another user setting the same app ID and pushkey takes it over, unless
	// appending.
	bob := n.Register("bob")
	expect(t, n.Do("POST", set, bob.Token, good(func(b map[string]any) { b["append"] = true })), http.StatusOK, "")
	if got := len(n.Do("GET", v3+"/pushers", alice.Token, nil).Body["pushers"].([]any)); got != 20 {
		t.Errorf("alice has %d pushers after bob appended, want 20", got)
	}
	expect(t, n.Do("POST", set, bob.Token, good(nil)), http.StatusOK, "")
	if got := len(n.Do("GET", v3+"/pushers", alice.Token, nil).Body["pushers"].([]any)); got != 19 {
		t.Errorf("alice has %d pushers after bob took k over, want 19", got)
	}

	// A pusher goes with the device (access token) that set it.
	res := n.Do("POST", v3+"/login", "", map[string]any{
		"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "bob"}, "password": "pw-bob",
	})
	expect(t, res, http.StatusOK, "")
	bob2 := res.String("access_token")
	expect(t, n.Do("POST", v3+"/logout", bob.Token, map[string]any{}), http.StatusOK, "")
	if res := n.Do("GET", v3+"/pushers", bob2, nil); len(res.Body["pushers"].([]any)) != 0 {
		t.Errorf("bob's pushers after logging out the device that set them: %s", res.Raw)
	}
}
