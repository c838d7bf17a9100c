package clientapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/internal/testnode"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/p2ptransport"
)

// The smaller findings of issue 13 about the client edge: what a client on
// loopback, or a web page in the device's browser, could do that it should
// not.

// TestLoginRateLimit: wrong passwords are limited (429 M_LIMIT_EXCEEDED
// with retry_after_ms), also when sent all at once, the right one too while
// the limit lasts (a guesser learns nothing), and it logs in once the
// window has passed.
func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	// A refill far slower than a bcrypt check, so that no bucket refills
	// while passwords are being checked, even on a loaded machine.
	const every = 15 * time.Second
	n := testnode.Start(t, testnode.Options{Configure: func(c *app.Config) {
		c.Node.LoginFailures = core.RateLimit{Burst: 2, Every: every}
	}})
	n.Register("alice")
	login := func(user, password string) testnode.Response {
		return n.Do("POST", v3+"/login", "", map[string]any{
			"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": user}, "password": password,
		})
	}
	limited := func(t *testing.T, res testnode.Response) time.Duration {
		t.Helper()
		expect(t, res, 429, "M_LIMIT_EXCEEDED")
		ms, ok := res.Body["retry_after_ms"].(float64)
		if !ok || ms <= 0 || ms > float64(every/time.Millisecond) {
			t.Fatalf("retry_after_ms %v, want 1..%d: %s", res.Body["retry_after_ms"], every/time.Millisecond, res.Raw)
		}
		return time.Duration(ms) * time.Millisecond
	}

	// Five guesses at once: each is charged before its password is
	// checked, so no more than the burst get through.
	const guesses = 5
	results := make(chan testnode.Response, guesses)
	for range guesses {
		go func() { results <- login("alice", "wrong") }()
	}
	statuses := map[int]int{}
	for range guesses {
		res := <-results
		if res.Status == 429 {
			limited(t, res)
		} else {
			expect(t, res, 403, "M_FORBIDDEN")
		}
		statuses[res.Status]++
	}
	if statuses[403] != 2 || statuses[429] != guesses-2 {
		t.Fatalf("answers to %d guesses at once: %v, want 2 wrong passwords and the rest limited", guesses, statuses)
	}
	limited(t, login("alice", "pw-alice"))                                   // the right password while limited
	limited(t, login("bob", "wrong"))                                        // another user from the same address
	wait := limited(t, login("@ALICE:"+n.App.Node.ServerName(), "pw-alice")) // another spelling

	// The limit is a window, not a lock-out: once it has passed (the wait
	// is what is being tested, bounded by the answer's retry_after_ms),
	// the right password works.
	deadline := time.Now().Add(2 * every)
	for {
		time.Sleep(wait)
		res := login("alice", "pw-alice")
		if res.Status == 200 {
			break
		}
		wait = limited(t, res)
		if time.Now().After(deadline) {
			t.Fatalf("still limited after %v", 2*every)
		}
	}
}

// TestUIAPasswordRateLimit: the password stage of user-interactive auth
// (deleting a device here) counts against /login's buckets, so whoever
// holds a stolen access token cannot guess the password there either; the
// right password is refused while the limit lasts, at /login too.
func TestUIAPasswordRateLimit(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{Configure: func(c *app.Config) {
		c.Node.LoginFailures = core.RateLimit{Burst: 2, Every: time.Minute}
	}})
	alice := n.Register("alice")
	deleteDevice := func(password string) testnode.Response {
		return n.Do("POST", v3+"/delete_devices", alice.Token, map[string]any{
			"devices": []string{"NOPE"},
			"auth": map[string]any{"type": "m.login.password", "session": "s",
				"identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": password},
		})
	}
	for i := range 2 {
		res := deleteDevice("wrong")
		expect(t, res, 401, "M_FORBIDDEN")
		if res.Body["flows"] == nil {
			t.Fatalf("wrong password %d: no UIA flows in %s", i+1, res.Raw)
		}
	}
	expect(t, deleteDevice("wrong"), 429, "M_LIMIT_EXCEEDED")
	expect(t, deleteDevice("pw-alice"), 429, "M_LIMIT_EXCEEDED")
	expect(t, n.Do("POST", v3+"/login", "", map[string]any{
		"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "pw-alice",
	}), 429, "M_LIMIT_EXCEEDED")
}

// webRequest is a request as a browser page sends it: with an Origin.
func webRequest(t *testing.T, n *testnode.Node, method, path, origin string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, n.URL+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain") // a "simple" request: no preflight
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return res.StatusCode, out, res.Header
}

// TestWebOrigins: a web page (a request with an Origin) may not register or
// log in unless its origin is allowed; authenticated endpoints and reads
// stay open to pages (a token guards them), and clients without an Origin
// (native apps, matrix-js-sdk in Node) are not affected.
func TestWebOrigins(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{Configure: func(c *app.Config) {
		c.Node.WebOrigins = []string{"https://app.example"}
	}})
	alice := n.Register("alice") // no Origin
	reg := func(name string) map[string]any {
		return map[string]any{"username": name, "password": "pw", "auth": map[string]any{"type": "m.login.dummy"}}
	}
	login := map[string]any{"type": "m.login.password", "user": "alice", "password": "pw-alice"}
	for _, c := range []struct {
		name, method, path, origin string
		body                       any
		status                     int
		errcode                    string
	}{
		{"a foreign page registers", "POST", v3 + "/register", "https://evil.example", reg("mallory"), 403, "M_FORBIDDEN"},
		{"a foreign page logs in", "POST", v3 + "/login", "https://evil.example", login, 403, "M_FORBIDDEN"},
		{"an opaque origin logs in", "POST", v3 + "/login", "null", login, 403, "M_FORBIDDEN"},
		{"a DNS-rebound page logs in", "POST", v3 + "/login", strings.Replace(n.URL, "127.0.0.1", "rebound.example", 1), login, 403, "M_FORBIDDEN"},
		{"a foreign page reads the login flows", "GET", v3 + "/login", "https://evil.example", nil, 200, ""},
		{"an allowed page logs in", "POST", v3 + "/login", "https://app.example", login, 200, ""},
		{"an allowed page registers", "POST", v3 + "/register", "https://app.example", reg("carol"), 200, ""},
		{"no Origin registers", "POST", v3 + "/register", "", reg("dave"), 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body any
			if c.body != nil {
				body = c.body
			}
			status, out, h := webRequest(t, n, c.method, c.path, c.origin, body)
			code, _ := out["errcode"].(string)
			if status != c.status || code != c.errcode {
				t.Fatalf("got %d %q, want %d %q: %v", status, code, c.status, c.errcode, out)
			}
			if h.Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("Access-Control-Allow-Origin %q, want * (the spec's CORS)", h.Get("Access-Control-Allow-Origin"))
			}
		})
	}
	t.Run("mallory was not registered", func(t *testing.T) {
		res := n.Do("GET", v3+"/register/available?username=mallory", "", nil)
		expect(t, res, 200, "")
	})
	t.Run("an authenticated request from any page works", func(t *testing.T) {
		req, _ := http.NewRequest("POST", n.URL+v3+"/createRoom", strings.NewReader(`{}`))
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("createRoom with a token from a page: %d", res.StatusCode)
		}
	})
}

// TestDeviceDisplayNameLimit: device display names are at most 100
// characters (Synapse's limit). A rename over it is refused with Synapse's
// answer, 400 M_TOO_LARGE; the initial name a client makes up at login or
// registration is cut to the limit instead, so that no login fails for it.
// Device IDs a client chooses are at most 512 bytes (Synapse's limit;
// longer ones made a 500 at registration).
func TestDeviceDisplayNameLimit(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	long, most := strings.Repeat("x", 101), strings.Repeat("é", 100) // 100 characters, 200 bytes
	huge := strings.Repeat("é", 50000)                               // 100,000 bytes
	dev := v3 + "/devices/" + esc(alice.DeviceID)
	login := func(name, deviceID string) map[string]any {
		return map[string]any{"type": "m.login.password", "user": "alice", "password": "pw-alice",
			"initial_device_display_name": name, "device_id": deviceID}
	}
	reg := func(user, name, deviceID string) map[string]any {
		return map[string]any{"username": user, "password": "pw", "auth": map[string]any{"type": "m.login.dummy"},
			"initial_device_display_name": name, "device_id": deviceID}
	}
	named := func(want string) func(t *testing.T, res testnode.Response) {
		return func(t *testing.T, res testnode.Response) {
			d := n.Do("GET", v3+"/devices/"+esc(res.String("device_id")), res.String("access_token"), nil)
			expect(t, d, 200, "")
			if got := d.String("display_name"); got != want {
				t.Errorf("display_name %d bytes %.20q..., want %d bytes", len(got), got, len(want))
			}
		}
	}
	runCases(t, n, []apiCase{
		{name: "rename to 101 characters", method: "PUT", path: dev, token: alice.Token, body: map[string]any{"display_name": long}, status: 400, errcode: "M_TOO_LARGE"},
		{name: "rename to 100,000 bytes", method: "PUT", path: dev, token: alice.Token, body: map[string]any{"display_name": huge}, status: 400, errcode: "M_TOO_LARGE"},
		{name: "rename to 100 characters", method: "PUT", path: dev, token: alice.Token, body: map[string]any{"display_name": most}, status: 200},
		{name: "the name is kept", method: "GET", path: dev, token: alice.Token, status: 200, check: func(t *testing.T, res testnode.Response) {
			if res.String("display_name") != most {
				t.Errorf("display_name %q", res.String("display_name"))
			}
		}},
		{name: "login with a 100,000-byte initial name gets it cut", method: "POST", path: v3 + "/login", body: login(huge, ""), status: 200,
			check: named(strings.Repeat("é", 100))},
		{name: "register with a 101-character initial name gets it cut", method: "POST", path: v3 + "/register", body: reg("bob", long, ""), status: 200,
			check: named(strings.Repeat("x", 100))},
		{name: "login with a 513-byte device ID", method: "POST", path: v3 + "/login", body: login("", strings.Repeat("D", 513)), status: 400, errcode: "M_INVALID_PARAM"},
		{name: "register with a 70,000-byte device ID", method: "POST", path: v3 + "/register", body: reg("carol", "", strings.Repeat("D", 70000)), status: 400, errcode: "M_INVALID_PARAM"},
		{name: "login with a 512-byte device ID", method: "POST", path: v3 + "/login", body: login("", strings.Repeat("D", 512)), status: 200},
	})
}

// TestCreateRoomCreationContent: a creation_content of the wrong shape, or
// with a field the spec defines of the wrong type, is the request's fault:
// 400 M_BAD_JSON, not an auth error.
func TestCreateRoomCreationContent(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	var cases []apiCase
	for _, c := range []struct {
		name    string
		content any
		status  int
	}{
		{"a string", "yes", 400},
		{"an array", []any{1}, 400},
		{"m.federate a string", map[string]any{"m.federate": "yes"}, 400},
		{"m.federate null", map[string]any{"m.federate": nil}, 400},
		{"type a number", map[string]any{"type": 5}, 400},
		{"predecessor a string", map[string]any{"predecessor": "!old:x"}, 400},
		{"predecessor without room_id", map[string]any{"predecessor": map[string]any{"event_id": "$e"}}, 400},
		{"predecessor room_id a number", map[string]any{"predecessor": map[string]any{"room_id": 1}}, 400},
		{"well typed", map[string]any{"m.federate": false, "type": "m.space", "predecessor": map[string]any{"room_id": "!old:x", "event_id": "$e"}, "org.example": 1}, 200},
		{"null", nil, 200},
	} {
		tc := apiCase{name: c.name, method: "POST", path: v3 + "/createRoom", token: alice.Token,
			body: map[string]any{"creation_content": c.content}, status: c.status}
		if c.status == 400 {
			tc.errcode = "M_BAD_JSON"
		}
		cases = append(cases, tc)
	}
	runCases(t, n, cases)
}

// TestJoinUnresolvableAlias: an alias whose server cannot be found is an
// alias that cannot be resolved, 404 M_NOT_FOUND as the spec has it, not a
// gateway error.
func TestJoinUnresolvableAlias(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{Configure: func(c *app.Config) {
		c.P2P = &app.P2PConfig{Config: p2ptransport.Config{ListenAddrs: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}}}
	}})
	alice := n.Register("alice")
	runCases(t, n, []apiCase{
		{name: "join", method: "POST", path: v3 + "/join/" + esc("#x:unknown.server"), token: alice.Token, body: map[string]any{},
			status: 404, errcode: "M_NOT_FOUND"},
		{name: "directory lookup", method: "GET", path: v3 + "/directory/room/" + esc("#x:unknown.server"), token: alice.Token,
			status: 404, errcode: "M_NOT_FOUND"},
	})
}

// TestDuplicateKeys: a body with the same key twice in some object, at any
// depth, is refused (400 M_BAD_JSON) before anything is stored or signed.
func TestDuplicateKeys(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	room := createRoom(t, n, alice, nil)
	send := v3 + "/rooms/" + esc(room) + "/send/m.room.message/"
	state := v3 + "/rooms/" + esc(room) + "/state/m.room.topic"
	runCases(t, n, []apiCase{
		{name: "message, top level", method: "PUT", path: send + "d1", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: []byte(`{"msgtype":"m.text","body":"one","body":"two"}`)},
		{name: "message, nested", method: "PUT", path: send + "d2", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: []byte(`{"msgtype":"m.text","body":"x","m.relates_to":{"rel_type":"m.thread","event_id":"$a","event_id":"$b"}}`)},
		{name: "message, in an array", method: "PUT", path: send + "d3", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: []byte(`{"msgtype":"m.text","body":"x","list":[{"k":1,"k":2}]}`)},
		{name: "message, escaped spelling", method: "PUT", path: send + "d4", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: []byte(`{"msgtype":"m.text","body":"x","\u0062ody":"y"}`)},
		{name: "state event", method: "PUT", path: state, token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: []byte(`{"topic":"a","topic":"b"}`)},
		{name: "createRoom", method: "POST", path: v3 + "/createRoom", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: []byte(`{"name":"a","name":"b"}`)},
		{name: "same key in sibling objects is fine", method: "PUT", path: send + "d5", token: alice.Token, status: 200,
			body: []byte(`{"msgtype":"m.text","body":"x","a":{"k":1},"b":{"k":1}}`)},
		{name: "nothing of the refused sends was stored", method: "GET", path: v3 + "/rooms/" + esc(room) + "/messages?dir=b&limit=50", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if bytes.Count(res.Raw, []byte(`"m.room.message"`)) != 1 {
					t.Errorf("want only the last message stored: %s", res.Raw)
				}
			}},
	})
}

// TestRegisterPassword: an empty password is refused (400 M_WEAK_PASSWORD,
// it would make an account nobody can log into while its client thinks it
// has a password); no password at all stays allowed, as the spec has it.
func TestRegisterPassword(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	reg := func(user string, password any) map[string]any {
		b := map[string]any{"username": user, "auth": map[string]any{"type": "m.login.dummy"}}
		if password != nil {
			b["password"] = password
		}
		return b
	}
	runCases(t, n, []apiCase{
		{name: "empty password", method: "POST", path: v3 + "/register", body: reg("alice", ""), status: 400, errcode: "M_WEAK_PASSWORD"},
		{name: "empty password, before the auth stages", method: "POST", path: v3 + "/register", status: 400, errcode: "M_WEAK_PASSWORD",
			body: map[string]any{"username": "alice", "password": ""}},
		{name: "alice was not registered", method: "GET", path: v3 + "/register/available?username=alice", status: 200},
		{name: "no password", method: "POST", path: v3 + "/register", body: reg("bob", nil), status: 200},
		{name: "a password", method: "POST", path: v3 + "/register", body: reg("carol", "pw"), status: 200},
		{name: "carol logs in", method: "POST", path: v3 + "/login", status: 200,
			body: map[string]any{"type": "m.login.password", "user": "carol", "password": "pw"}},
	})
}
