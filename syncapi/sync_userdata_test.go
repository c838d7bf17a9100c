package syncapi_test

// These tests prove over HTTP that /sync carries what Dendrite's sync API
// listed as known issues: typing and receipts, account data, to-device
// messages, the E2EE counts and device lists, presence and set_presence,
// ignored users, and long-polls that wake for each of them.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnode"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

const csV3 = "/_matrix/client/v3"

// pollBound is how long a test waits for a /sync that should answer: well
// under the long-polls' 30 s timeout, so a missed wake-up fails the test
// instead of passing as a late, empty answer.
const pollBound = 15 * time.Second

// forT returns e failing t instead: env helpers must fail the test running
// them, and subtests run in their own goroutines.
func (e *env) forT(t testing.TB) *env {
	c := *e
	c.t = t
	return &c
}

// call calls the client API as s and fails the test unless it answers 200.
func (e *env) call(s node.Session, method, path string, body any) testnode.Response {
	e.t.Helper()
	res := e.tn.Do(method, path, s.AccessToken, body)
	if res.Status != http.StatusOK {
		e.t.Fatalf("%s %s: %d %s", method, path, res.Status, res.Raw)
	}
	return res
}

// since is an incremental sync from tok that returns at once.
func (e *env) since(s node.Session, tok string) syncBody {
	e.t.Helper()
	return e.sync(s, vals("since", tok, "timeout", "0"))
}

// passwordUser registers a user with a password, so more devices can log in.
func (e *env) passwordUser(localpart string) node.Session {
	e.t.Helper()
	s, err := e.n.Register(context.Background(), node.RegisterRequest{Localpart: localpart, Password: "pw-" + localpart})
	if err != nil {
		e.t.Fatalf("register %s: %v", localpart, err)
	}
	return s
}

// newDevice logs a password user in again, on a new device.
func (e *env) newDevice(localpart string) node.Session {
	e.t.Helper()
	s, err := e.n.Login(context.Background(), localpart, "pw-"+localpart, "", "")
	if err != nil {
		e.t.Fatalf("login %s: %v", localpart, err)
	}
	return s
}

func (e *env) setTyping(s node.Session, roomID string, typing bool) {
	e.t.Helper()
	e.call(s, "PUT", csV3+"/rooms/"+url.PathEscape(roomID)+"/typing/"+url.PathEscape(s.UserID),
		map[string]any{"typing": typing, "timeout": 120000})
}

func (e *env) receipt(s node.Session, roomID, receiptType, eventID, threadID string) {
	e.t.Helper()
	body := map[string]any{}
	if threadID != "" {
		body["thread_id"] = threadID
	}
	e.call(s, "POST", csV3+"/rooms/"+url.PathEscape(roomID)+"/receipt/"+receiptType+"/"+url.PathEscape(eventID), body)
}

// putAccountData sets global account data (roomID "") or room account data.
func (e *env) putAccountData(s node.Session, roomID, evType string, content any) {
	e.t.Helper()
	path := csV3 + "/user/" + url.PathEscape(s.UserID)
	if roomID != "" {
		path += "/rooms/" + url.PathEscape(roomID)
	}
	e.call(s, "PUT", path+"/account_data/"+url.PathEscape(evType), content)
}

// sendToDevice sends one message per (user, device) through the API.
func (e *env) sendToDevice(s node.Session, evType, txnID string, messages map[string]map[string]any) {
	e.t.Helper()
	e.call(s, "PUT", csV3+"/sendToDevice/"+url.PathEscape(evType)+"/"+url.PathEscape(txnID), map[string]any{"messages": messages})
}

// deviceKeys is a device's identity keys as a client uploads them; tag makes
// different uploads differ.
func deviceKeys(s node.Session, tag string) map[string]any {
	return map[string]any{
		"user_id": s.UserID, "device_id": s.DeviceID,
		"algorithms": []string{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		"keys": map[string]string{
			"curve25519:" + s.DeviceID: "curve-" + tag, "ed25519:" + s.DeviceID: "ed-" + tag,
		},
	}
}

// ephemeral returns a joined room's ephemeral events of one type.
func ephemeral(b syncBody, roomID, evType string) []event {
	var out []event
	for _, ev := range b.Rooms.Join[roomID].Ephemeral.Events {
		if ev.Type == evType {
			out = append(out, ev)
		}
	}
	return out
}

// typingIn returns the user_ids of a room's m.typing event, and whether the
// response had one.
func typingIn(t testing.TB, b syncBody, roomID string) ([]string, bool) {
	t.Helper()
	evs := ephemeral(b, roomID, "m.typing")
	if len(evs) == 0 {
		return nil, false
	}
	if len(evs) > 1 {
		t.Errorf("%d m.typing events in %s, want one", len(evs), roomID)
	}
	var c struct {
		UserIDs *[]string `json:"user_ids"`
	}
	if err := json.Unmarshal(evs[0].Content, &c); err != nil || c.UserIDs == nil {
		t.Fatalf("m.typing content %s: want user_ids list", evs[0].Content)
	}
	return *c.UserIDs, true
}

// receiptEntry is one user's receipt in m.receipt content.
type receiptEntry struct {
	TS       *int64 `json:"ts"`
	ThreadID string `json:"thread_id"`
}

// receiptsIn merges a room's m.receipt events: event ID -> receipt type ->
// user ID -> receipt.
func receiptsIn(t testing.TB, b syncBody, roomID string) map[string]map[string]map[string]receiptEntry {
	t.Helper()
	out := map[string]map[string]map[string]receiptEntry{}
	for _, ev := range ephemeral(b, roomID, "m.receipt") {
		var c map[string]map[string]map[string]receiptEntry
		if err := json.Unmarshal(ev.Content, &c); err != nil {
			t.Fatalf("m.receipt content %s: %v", ev.Content, err)
		}
		for id, byType := range c {
			if out[id] == nil {
				out[id] = map[string]map[string]receiptEntry{}
			}
			for typ, byUser := range byType {
				if out[id][typ] == nil {
					out[id][typ] = map[string]receiptEntry{}
				}
				for u, r := range byUser {
					out[id][typ][u] = r
				}
			}
		}
	}
	return out
}

// eventTypes lists the types of events, sorted.
func eventTypes(evs []event) []string {
	out := []string{}
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	sort.Strings(out)
	return out
}

// contentOf returns the content of the first event of a type, or nil.
func contentOf(evs []event, evType string) json.RawMessage {
	for _, ev := range evs {
		if ev.Type == evType {
			return ev.Content
		}
	}
	return nil
}

// presenceContent is the content of an m.presence event.
type presenceContent struct {
	Presence  string  `json:"presence"`
	StatusMsg *string `json:"status_msg"`
}

// presenceOf returns the last m.presence event of a user in a response.
func presenceOf(t testing.TB, b syncBody, userID string) (presenceContent, bool) {
	t.Helper()
	var p presenceContent
	found := false
	for _, ev := range b.Presence.Events {
		if ev.Sender != userID {
			continue
		}
		if ev.Type != "m.presence" {
			t.Errorf("presence event of type %q", ev.Type)
		}
		if err := json.Unmarshal(ev.Content, &p); err != nil {
			t.Fatalf("m.presence content %s: %v", ev.Content, err)
		}
		found = true
	}
	return p, found
}

// newsIn lists the sections of a raw /sync body that carry anything: every
// top-level key but next_batch and the key counts (which are always sent),
// counting lists of events and rooms maps only when they are not empty.
func newsIn(t testing.TB, raw []byte) []string {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	var out []string
	for k, v := range top {
		switch k {
		case "next_batch", "device_one_time_keys_count", "device_unused_fallback_key_types",
			"org.matrix.msc2732.device_unused_fallback_key_types":
		case "rooms":
			var rooms map[string]map[string]json.RawMessage
			if err := json.Unmarshal(v, &rooms); err != nil {
				t.Fatalf("rooms: %v: %s", err, v)
			}
			for kind, m := range rooms {
				for id, r := range m {
					out = append(out, "rooms."+kind+"."+id+": "+string(r))
				}
			}
		case "device_lists":
			var dl struct{ Changed, Left []string }
			if json.Unmarshal(v, &dl) != nil || len(dl.Changed)+len(dl.Left) > 0 {
				out = append(out, k+": "+string(v))
			}
		default:
			var l struct{ Events []json.RawMessage }
			if json.Unmarshal(v, &l) != nil || len(l.Events) > 0 {
				out = append(out, k+": "+string(v))
			}
		}
	}
	sort.Strings(out)
	return out
}

// pollResult is what a background /sync answered.
type pollResult struct {
	status  int
	raw     []byte
	body    syncBody
	err     error
	elapsed time.Duration
}

// startSync starts a /sync in the background (the test's env helpers may
// not run outside its goroutine). The request is cancelled when the test
// ends, before the node stops.
func (e *env) startSync(s node.Session, q url.Values) <-chan pollResult {
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	ch := make(chan pollResult, 1)
	target := e.tn.URL + csV3 + "/sync?" + q.Encode()
	go func() {
		start := time.Now()
		var r pollResult
		defer func() { r.elapsed = time.Since(start); ch <- r }()
		req, err := http.NewRequestWithContext(ctx, "GET", target, nil)
		if err != nil {
			r.err = err
			return
		}
		req.Header.Set("Authorization", "Bearer "+s.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			r.err = err
			return
		}
		defer res.Body.Close()
		r.status = res.StatusCode
		if r.raw, r.err = io.ReadAll(res.Body); r.err == nil && r.status == http.StatusOK {
			r.err = json.Unmarshal(r.raw, &r.body)
		}
	}()
	return ch
}

// await waits at most pollBound for a background /sync.
func (e *env) await(ch <-chan pollResult, what string) pollResult {
	e.t.Helper()
	select {
	case r := <-ch:
		if r.err != nil || r.status != http.StatusOK {
			e.t.Fatalf("%s: sync: %v %d %s", what, r.err, r.status, r.raw)
		}
		return r
	case <-time.After(pollBound):
		e.t.Fatalf("%s: /sync did not answer within %v", what, pollBound)
	}
	return pollResult{}
}

func TestSyncTyping(t *testing.T) {
	e := newEnv(t)
	alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
	roomID := e.room(alice, core.PresetPublicChat)
	e.join(bob, roomID)
	e.room(carol, core.PresetPublicChat) // carol has a room of her own, not this one
	aliceTok, carolTok := e.sync(alice, nil).NextBatch, e.sync(carol, nil).NextBatch

	steps := []struct {
		name   string
		action func()
		// want is alice's typing list; nil means no m.typing at all.
		want []string
	}{
		{"bob starts typing", func() { e.setTyping(bob, roomID, true) }, []string{bob.UserID}},
		{"nothing new is not repeated", func() {}, nil},
		{"alice types too", func() { e.setTyping(alice, roomID, true) }, []string{alice.UserID, bob.UserID}},
		{"bob renews his notice: no change", func() { e.setTyping(bob, roomID, true) }, nil},
		{"both stop", func() { e.setTyping(bob, roomID, false); e.setTyping(alice, roomID, false) }, []string{}},
		{"the stop is not repeated", func() {}, nil},
		{"stopping again changes nothing", func() { e.setTyping(bob, roomID, false) }, nil},
		{"bob types again", func() { e.setTyping(bob, roomID, true) }, []string{bob.UserID}},
	}
	for _, st := range steps {
		st.action()
		b := e.since(alice, aliceTok)
		got, ok := typingIn(t, b, roomID)
		switch {
		case st.want == nil && ok:
			t.Errorf("%s: alice got m.typing %v, want none", st.name, got)
		case st.want != nil && !ok:
			t.Errorf("%s: alice got no m.typing, want %v", st.name, st.want)
		case st.want != nil && !slices.Equal(got, st.want):
			t.Errorf("%s: alice got m.typing %v, want %v", st.name, got, st.want)
		}
		aliceTok = b.NextBatch

		c := e.since(carol, carolTok)
		if _, ok := c.Rooms.Join[roomID]; ok {
			t.Errorf("%s: carol, not a member, got the room: %+v", st.name, c.Rooms.Join[roomID])
		}
		for id := range c.Rooms.Join {
			if got, ok := typingIn(t, c, id); ok {
				t.Errorf("%s: carol got m.typing %v in %s", st.name, got, id)
			}
		}
		carolTok = c.NextBatch
	}

	// An initial sync shows who is typing now.
	if got, ok := typingIn(t, e.sync(alice, nil), roomID); !ok || !slices.Equal(got, []string{bob.UserID}) {
		t.Errorf("initial sync: m.typing %v (present %v), want [bob]", got, ok)
	}
	// Typing is refused to non-members, so it cannot leak through them.
	if res := e.tn.Do("PUT", csV3+"/rooms/"+url.PathEscape(roomID)+"/typing/"+url.PathEscape(carol.UserID),
		carol.AccessToken, map[string]any{"typing": true}); res.Status != http.StatusForbidden {
		t.Errorf("typing by a non-member: %d %s, want 403", res.Status, res.Raw)
	}
}

func TestSyncReceipts(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	roomID := e.room(alice, core.PresetPublicChat)
	e.join(bob, roomID)
	e1 := e.say(alice, roomID, "one")
	e2 := e.say(alice, roomID, "two")
	root := e.say(alice, roomID, "thread root")
	reply := e.send(alice, roomID, "m.room.message", map[string]any{
		"msgtype": "m.text", "body": "in thread",
		"m.relates_to": map[string]string{"rel_type": "m.thread", "event_id": root},
	})
	e5 := e.say(alice, roomID, "five")
	aliceTok, bobTok := e.sync(alice, nil).NextBatch, e.sync(bob, nil).NextBatch

	cases := []struct {
		name                      string
		receiptType, eventID, thr string
		// Who sees bob's receipt.
		alice, bob bool
	}{
		{"public", "m.read", e1, "", true, true},
		{"private", "m.read.private", e2, "", false, true},
		{"main thread", "m.read", root, "main", true, true},
		{"thread", "m.read", reply, root, true, true},
		{"private in thread", "m.read.private", e5, root, false, true},
	}
	for _, tc := range cases {
		before := time.Now().UnixMilli()
		e.receipt(bob, roomID, tc.receiptType, tc.eventID, tc.thr)
		for _, who := range []struct {
			s    node.Session
			tok  *string
			want bool
		}{{alice, &aliceTok, tc.alice}, {bob, &bobTok, tc.bob}} {
			b := e.since(who.s, *who.tok)
			*who.tok = b.NextBatch
			got := receiptsIn(t, b, roomID)
			r, ok := got[tc.eventID][tc.receiptType][bob.UserID]
			if !who.want {
				if ok || len(got) > 0 {
					t.Errorf("%s: %s sees receipts %v, want none", tc.name, who.s.UserID, got)
				}
				continue
			}
			if !ok {
				t.Errorf("%s: %s does not see bob's %s on %s; got %v", tc.name, who.s.UserID, tc.receiptType, tc.eventID, got)
				continue
			}
			if r.TS == nil || *r.TS < before-1000 {
				t.Errorf("%s: receipt ts %v, want about %d", tc.name, r.TS, before)
			}
			if r.ThreadID != tc.thr {
				t.Errorf("%s: thread_id %q, want %q", tc.name, r.ThreadID, tc.thr)
			}
			if len(got) != 1 {
				t.Errorf("%s: %s got receipts for %d events, want only the new one: %v", tc.name, who.s.UserID, len(got), got)
			}
		}
	}

	// Nothing new: no receipts again.
	if got := receiptsIn(t, e.since(alice, aliceTok), roomID); len(got) != 0 {
		t.Errorf("receipts repeated: %v", got)
	}
	// An initial sync has every current receipt alice may see, no private ones.
	got := receiptsIn(t, e.sync(alice, nil), roomID)
	for _, id := range []string{e1, root, reply} {
		if _, ok := got[id]["m.read"][bob.UserID]; !ok {
			t.Errorf("initial sync: no m.read by bob on %s: %v", id, got)
		}
	}
	for id, byType := range got {
		if _, ok := byType["m.read.private"]; ok {
			t.Errorf("initial sync: alice sees a private receipt on %s", id)
		}
	}
	got = receiptsIn(t, e.sync(bob, nil), roomID)
	if _, ok := got[e2]["m.read.private"][bob.UserID]; !ok {
		t.Errorf("bob's initial sync lacks his private receipt: %v", got)
	}
}

func TestSyncAccountData(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice")
	roomID := e.room(alice, core.PresetPrivateChat)
	tok0 := e.sync(alice, nil).NextBatch

	e.putAccountData(alice, "", "com.example.a", map[string]int{"n": 1})
	e.putAccountData(alice, "", "com.example.b", map[string]int{"n": 2})
	e.putAccountData(alice, roomID, "com.example.r", map[string]int{"n": 3})
	e.call(alice, "PUT", csV3+"/user/"+url.PathEscape(alice.UserID)+"/rooms/"+url.PathEscape(roomID)+"/tags/u.work",
		map[string]any{"order": 0.5})

	// mine keeps the types this test set, so defaults the server may add
	// (push rules) do not matter.
	mine := func(evs []event) []string {
		var out []string
		for _, ty := range eventTypes(evs) {
			if ty == "m.tag" || len(ty) > 12 && ty[:12] == "com.example." {
				out = append(out, ty)
			}
		}
		return out
	}
	cases := []struct {
		name, filter   string
		global, inRoom []string
		checkContent   bool
	}{
		{"no filter", "", []string{"com.example.a", "com.example.b"}, []string{"com.example.r", "m.tag"}, true},
		{"types", `{"account_data":{"types":["com.example.a"]}}`, []string{"com.example.a"}, []string{"com.example.r", "m.tag"}, false},
		{"not_types", `{"account_data":{"not_types":["com.example.a"]}}`, []string{"com.example.b"}, []string{"com.example.r", "m.tag"}, false},
		{"wildcard minus one", `{"account_data":{"types":["com.example.*"],"not_types":["com.example.b"]}}`, []string{"com.example.a"}, []string{"com.example.r", "m.tag"}, false},
		{"room types", `{"room":{"account_data":{"types":["m.tag"]}}}`, []string{"com.example.a", "com.example.b"}, []string{"m.tag"}, false},
		{"room not_types", `{"room":{"account_data":{"not_types":["*"]}}}`, []string{"com.example.a", "com.example.b"}, nil, false},
		{"global none", `{"account_data":{"types":[]}}`, nil, []string{"com.example.r", "m.tag"}, false},
	}
	for _, tc := range cases {
		for _, initial := range []bool{false, true} {
			q := vals("since", tok0, "filter", tc.filter)
			if initial {
				q.Del("since")
			}
			if tc.filter == "" {
				q.Del("filter")
			}
			name := fmt.Sprintf("%s (initial %v)", tc.name, initial)
			b := e.sync(alice, q)
			if got := mine(b.AccountData.Events); !slices.Equal(got, tc.global) {
				t.Errorf("%s: global account data %v, want %v", name, got, tc.global)
			}
			room, ok := b.Rooms.Join[roomID]
			if !ok && len(tc.inRoom) > 0 {
				t.Errorf("%s: room missing from rooms.join", name)
				continue
			}
			if got := mine(room.AccountData.Events); !slices.Equal(got, tc.inRoom) {
				t.Errorf("%s: room account data %v, want %v", name, got, tc.inRoom)
			}
			if !tc.checkContent {
				continue
			}
			for ty, want := range map[string]string{"com.example.a": `{"n":1}`, "com.example.b": `{"n":2}`} {
				if got := contentOf(b.AccountData.Events, ty); string(got) != want {
					t.Errorf("%s: %s content %s, want %s", name, ty, got, want)
				}
			}
			if got := contentOf(room.AccountData.Events, "com.example.r"); string(got) != `{"n":3}` {
				t.Errorf("%s: room data content %s", name, got)
			}
			var tags struct {
				Tags map[string]struct{ Order float64 } `json:"tags"`
			}
			if err := json.Unmarshal(contentOf(room.AccountData.Events, "m.tag"), &tags); err != nil || tags.Tags["u.work"].Order != 0.5 {
				t.Errorf("%s: m.tag content %s, want u.work with order 0.5", name, contentOf(room.AccountData.Events, "m.tag"))
			}
		}
	}

	// Incrementally: what changed, once, with its new content.
	tok := e.sync(alice, vals("since", tok0)).NextBatch
	if b := e.since(alice, tok); len(b.AccountData.Events) != 0 || len(b.Rooms.Join) != 0 {
		t.Errorf("account data repeated: %v, rooms %v", eventTypes(b.AccountData.Events), b.Rooms.Join)
	}
	e.putAccountData(alice, "", "com.example.a", map[string]int{"n": 10})
	e.putAccountData(alice, roomID, "com.example.r", map[string]int{"n": 30})
	b := e.since(alice, tok)
	if got := mine(b.AccountData.Events); !slices.Equal(got, []string{"com.example.a"}) {
		t.Errorf("after an update: global %v, want [com.example.a]", got)
	} else if c := contentOf(b.AccountData.Events, "com.example.a"); string(c) != `{"n":10}` {
		t.Errorf("after an update: content %s", c)
	}
	if got := mine(b.Rooms.Join[roomID].AccountData.Events); !slices.Equal(got, []string{"com.example.r"}) {
		t.Errorf("after an update: room %v, want [com.example.r]", got)
	} else if c := contentOf(b.Rooms.Join[roomID].AccountData.Events, "com.example.r"); string(c) != `{"n":30}` {
		t.Errorf("after an update: room content %s", c)
	}
	// Writing the same value again is no news.
	e.putAccountData(alice, "", "com.example.a", map[string]int{"n": 10})
	if raw := newsIn(t, e.since(alice, b.NextBatch).Raw); len(raw) != 0 {
		t.Errorf("rewriting the same value: %v", raw)
	}
}

// toDeviceIndexes lists the "i" of to-device messages' content, checking
// sender and type.
func toDeviceIndexes(t testing.TB, evs []event, sender, evType string) []int {
	t.Helper()
	var out []int
	for _, ev := range evs {
		if ev.Sender != sender || ev.Type != evType {
			t.Errorf("to-device event from %q of type %q, want %q %q", ev.Sender, ev.Type, sender, evType)
		}
		var c struct{ I int }
		if err := json.Unmarshal(ev.Content, &c); err != nil {
			t.Errorf("to-device content %s: %v", ev.Content, err)
		}
		out = append(out, c.I)
	}
	return out
}

func TestSyncToDevice(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.passwordUser("alice"), e.user("bob")
	alice2 := e.newDevice("alice")
	tok1, tok2 := e.sync(alice, nil).NextBatch, e.sync(alice2, nil).NextBatch

	t.Run("delivered until acknowledged", func(t *testing.T) {
		e := e.forT(t)
		e.sendToDevice(bob, "m.test", "txn1", map[string]map[string]any{
			alice.UserID: {alice.DeviceID: map[string]any{"i": 1, "body": "hi"}},
		})
		b := e.since(alice, tok1)
		if len(b.ToDevice.Events) != 1 {
			t.Fatalf("to_device %+v, want one message", b.ToDevice.Events)
		}
		ev := b.ToDevice.Events[0]
		if ev.Sender != bob.UserID || ev.Type != "m.test" || string(ev.Content) != `{"body":"hi","i":1}` {
			t.Errorf("to-device event %+v", ev)
		}
		// The response may have been lost: the old since gets it again.
		again := e.since(alice, tok1)
		if got := toDeviceIndexes(t, again.ToDevice.Events, bob.UserID, "m.test"); !slices.Equal(got, []int{1}) {
			t.Errorf("with the old since: %v, want [1] again", got)
		}
		// Moving on acknowledges it.
		next := e.since(alice, again.NextBatch)
		if len(next.ToDevice.Events) != 0 {
			t.Errorf("after since moved on: %+v, want nothing", next.ToDevice.Events)
		}
		// That acknowledged it for good: even the old since no longer has it.
		if b := e.since(alice, tok1); len(b.ToDevice.Events) != 0 {
			t.Errorf("acknowledged message still delivered to the old since: %+v", b.ToDevice.Events)
		}
		tok1 = next.NextBatch
		// The other device got nothing; the same transaction ID sends nothing.
		e.sendToDevice(bob, "m.test", "txn1", map[string]map[string]any{
			alice.UserID: {alice.DeviceID: map[string]any{"i": 1, "body": "hi"}},
		})
		if b := e.since(alice, tok1); len(b.ToDevice.Events) != 0 {
			t.Errorf("a repeated transaction was delivered again: %+v", b.ToDevice.Events)
		}
		b2 := e.since(alice2, tok2)
		if len(b2.ToDevice.Events) != 0 {
			t.Errorf("alice's other device got %+v", b2.ToDevice.Events)
		}
		tok2 = b2.NextBatch
	})

	t.Run("star reaches every device", func(t *testing.T) {
		e := e.forT(t)
		e.sendToDevice(bob, "m.test", "txn2", map[string]map[string]any{alice.UserID: {"*": map[string]any{"i": 2}}})
		for _, d := range []struct {
			s   node.Session
			tok *string
		}{{alice, &tok1}, {alice2, &tok2}} {
			b := e.since(d.s, *d.tok)
			if got := toDeviceIndexes(t, b.ToDevice.Events, bob.UserID, "m.test"); !slices.Equal(got, []int{2}) {
				t.Errorf("device %s: %v, want [2]", d.s.DeviceID, got)
			}
			*d.tok = b.NextBatch
		}
	})

	t.Run("more than a response holds", func(t *testing.T) {
		e := e.forT(t)
		const total = 250
		ctx := context.Background()
		for i := range total {
			content, _ := json.Marshal(map[string]int{"i": i})
			err := e.n.SendToDevice(ctx, bob.UserID, bob.DeviceID, "m.bulk", "bulk"+strconv.Itoa(i),
				map[string]map[string]json.RawMessage{alice.UserID: {alice.DeviceID: content}})
			if err != nil {
				t.Fatal(err)
			}
		}
		var got []int
		responses := 0
		tok := tok1
		for {
			b := e.since(alice, tok)
			if len(b.ToDevice.Events) > 100 {
				t.Errorf("one response has %d to-device messages, more than 100", len(b.ToDevice.Events))
			}
			if responses == 1 {
				// Repeating a since in the middle gives the same batch.
				again := e.since(alice, tok)
				if a, b := toDeviceIndexes(t, again.ToDevice.Events, bob.UserID, "m.bulk"),
					toDeviceIndexes(t, b.ToDevice.Events, bob.UserID, "m.bulk"); !slices.Equal(a, b) {
					t.Errorf("the same since gave %v then %v", b, a)
				}
			}
			if len(b.ToDevice.Events) == 0 {
				break
			}
			got = append(got, toDeviceIndexes(t, b.ToDevice.Events, bob.UserID, "m.bulk")...)
			tok = b.NextBatch
			if responses++; responses > 10 {
				t.Fatalf("still receiving after %d responses", responses)
			}
		}
		want := make([]int, total)
		for i := range want {
			want[i] = i
		}
		if !slices.Equal(got, want) {
			t.Errorf("received %d messages %v, want 0..%d in order", len(got), got, total-1)
		}
		if responses < 3 {
			t.Errorf("%d messages came in %d responses, want at least 3", total, responses)
		}
		if b := e.since(alice2, tok2); len(b.ToDevice.Events) != 0 {
			t.Errorf("alice's other device got %d bulk messages", len(b.ToDevice.Events))
		}
	})
}

// TestSyncE2EECounts checks the one-time key counts and unused fallback key
// types against uploads and claims.
func TestSyncE2EECounts(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	otk := func(id string) map[string]any {
		return map[string]any{"key": "key-" + id, "signatures": map[string]any{alice.UserID: map[string]string{"ed25519:" + alice.DeviceID: "sig"}}}
	}
	claim := func() {
		e.call(bob, "POST", csV3+"/keys/claim", map[string]any{
			"one_time_keys": map[string]any{alice.UserID: map[string]string{alice.DeviceID: "signed_curve25519"}},
		})
	}
	b := e.sync(alice, nil)
	if b.OTKCounts["signed_curve25519"] != 0 || b.FallbackKeyTypes == nil || len(b.FallbackKeyTypes) != 0 {
		t.Errorf("before any upload: counts %v, fallback %#v; want 0 and []", b.OTKCounts, b.FallbackKeyTypes)
	}
	tok := b.NextBatch
	steps := []struct {
		name     string
		action   func()
		count    int
		fallback []string
	}{
		{"upload two keys and a fallback key", func() {
			e.call(alice, "POST", csV3+"/keys/upload", map[string]any{
				"device_keys":   deviceKeys(alice, "1"),
				"one_time_keys": map[string]any{"signed_curve25519:AAAAAQ": otk("1"), "signed_curve25519:AAAAAg": otk("2")},
				"fallback_keys": map[string]any{"signed_curve25519:AAAAFB": otk("fb")},
			})
		}, 2, []string{"signed_curve25519"}},
		{"claim one", claim, 1, []string{"signed_curve25519"}},
		{"claim the last", claim, 0, []string{"signed_curve25519"}},
		{"claim the fallback key", claim, 0, []string{}},
		{"upload one more", func() {
			e.call(alice, "POST", csV3+"/keys/upload", map[string]any{"one_time_keys": map[string]any{"signed_curve25519:AAAAAw": otk("3")}})
		}, 1, []string{}},
		{"new fallback key", func() {
			e.call(alice, "POST", csV3+"/keys/upload", map[string]any{"fallback_keys": map[string]any{"signed_curve25519:AAAAFC": otk("fb2")}})
		}, 1, []string{"signed_curve25519"}},
	}
	for _, st := range steps {
		st.action()
		for _, initial := range []bool{false, true} {
			q := vals("since", tok)
			if initial {
				q = nil
			}
			b := e.sync(alice, q)
			if got := b.OTKCounts["signed_curve25519"]; got != st.count {
				t.Errorf("%s (initial %v): signed_curve25519 count %d, want %d", st.name, initial, got, st.count)
			}
			if b.FallbackKeyTypes == nil || !slices.Equal(b.FallbackKeyTypes, st.fallback) {
				t.Errorf("%s (initial %v): unused fallback key types %#v, want %v", st.name, initial, b.FallbackKeyTypes, st.fallback)
			}
			if !initial {
				tok = b.NextBatch
			}
		}
	}
}

// TestSyncDeviceLists checks device_lists.changed and left, and
// /keys/changes over the same spans.
func TestSyncDeviceLists(t *testing.T) {
	e := newEnv(t)
	alice, bob, carol, dave := e.user("alice"), e.user("bob"), e.user("carol"), e.user("dave")
	roomID := e.room(alice, core.PresetPublicChat)
	e.join(bob, roomID)
	e.room(carol, core.PresetPublicChat) // carol shares nothing with alice
	tok := e.sync(alice, nil).NextBatch

	keysChanges := func(from, to string) (changed, left []string, ok bool) {
		t.Helper()
		res := e.get(alice.AccessToken, csV3+"/keys/changes", vals("from", from, "to", to))
		if res.Status == http.StatusNotFound && res.Errcode() == "M_UNRECOGNIZED" {
			return nil, nil, false
		}
		if res.Status != http.StatusOK {
			t.Fatalf("keys/changes: %d %s", res.Status, res.Raw)
		}
		var b struct{ Changed, Left []string }
		if err := json.Unmarshal(res.Raw, &b); err != nil {
			t.Fatal(err)
		}
		return b.Changed, b.Left, true
	}
	steps := []struct {
		name          string
		action        func()
		changed, left []string
	}{
		{"bob uploads device keys", func() {
			e.call(bob, "POST", csV3+"/keys/upload", map[string]any{"device_keys": deviceKeys(bob, "1")})
		}, []string{bob.UserID}, nil},
		{"the same keys again change nothing", func() {
			e.call(bob, "POST", csV3+"/keys/upload", map[string]any{"device_keys": deviceKeys(bob, "1")})
		}, nil, nil},
		{"a stranger's keys are not alice's business", func() {
			e.call(carol, "POST", csV3+"/keys/upload", map[string]any{"device_keys": deviceKeys(carol, "1")})
		}, nil, nil},
		{"bob changes his keys", func() {
			e.call(bob, "POST", csV3+"/keys/upload", map[string]any{"device_keys": deviceKeys(bob, "2")})
		}, []string{bob.UserID}, nil},
		{"dave joins: his devices are new to alice", func() { e.join(dave, roomID) }, []string{dave.UserID}, nil},
		{"bob leaves the only room he shared with alice", func() {
			e.membership(bob, roomID, bob.UserID, "leave")
		}, nil, []string{bob.UserID}},
		{"bob's keys no longer concern alice", func() {
			e.call(bob, "POST", csV3+"/keys/upload", map[string]any{"device_keys": deviceKeys(bob, "3")})
		}, nil, nil},
	}
	haveKeysChanges := true
	for _, st := range steps {
		st.action()
		b := e.since(alice, tok)
		if !slices.Equal(b.DeviceLists.Changed, st.changed) || !slices.Equal(b.DeviceLists.Left, st.left) {
			t.Errorf("%s: device_lists changed %v left %v, want %v %v", st.name, b.DeviceLists.Changed, b.DeviceLists.Left, st.changed, st.left)
		}
		if haveKeysChanges {
			changed, left, ok := keysChanges(tok, b.NextBatch)
			if !ok {
				t.Log("GET /keys/changes is not served: skipping its checks")
				haveKeysChanges = false
			} else if !slices.Equal(changed, nonNil(st.changed)) || !slices.Equal(left, nonNil(st.left)) {
				t.Errorf("%s: /keys/changes changed %v left %v, want %v %v", st.name, changed, left, st.changed, st.left)
			}
		}
		tok = b.NextBatch
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestSyncPresence(t *testing.T) {
	e := newEnv(t)
	alice, bob, carol, dave := e.user("alice"), e.user("bob"), e.user("carol"), e.user("dave")
	roomID := e.room(alice, core.PresetPublicChat)
	e.join(bob, roomID)
	e.join(dave, roomID)
	e.room(carol, core.PresetPublicChat) // carol shares nothing with them
	aliceTok, carolTok := e.sync(alice, nil).NextBatch, e.sync(carol, nil).NextBatch
	status := func(s node.Session, presence, msg string) {
		e.call(s, "PUT", csV3+"/presence/"+url.PathEscape(s.UserID)+"/status", map[string]string{"presence": presence, "status_msg": msg})
	}
	type seen struct {
		user     string
		presence string // "" means no event for the user
		msg      string
	}
	steps := []struct {
		name   string
		action func()
		want   []seen
	}{
		{"bob syncs with set_presence=online", func() { e.sync(bob, vals("set_presence", "online")) },
			[]seen{{bob.UserID, "online", ""}, {dave.UserID, "", ""}}},
		{"dave syncs with set_presence=offline", func() { e.sync(dave, vals("set_presence", "offline")) },
			[]seen{{dave.UserID, "", ""}, {bob.UserID, "", ""}}},
		{"bob syncs again: no change, no news", func() { e.sync(bob, nil) }, []seen{{bob.UserID, "", ""}}},
		{"bob sets a status message", func() { status(bob, "online", "at lunch") }, []seen{{bob.UserID, "online", "at lunch"}}},
		{"bob syncs with set_presence=unavailable", func() { e.sync(bob, vals("set_presence", "unavailable")) },
			[]seen{{bob.UserID, "unavailable", "at lunch"}}},
		{"dave goes online by syncing", func() { e.sync(dave, nil) }, []seen{{dave.UserID, "online", ""}}},
	}
	for _, st := range steps {
		st.action()
		b := e.since(alice, aliceTok)
		aliceTok = b.NextBatch
		for _, w := range st.want {
			p, ok := presenceOf(t, b, w.user)
			switch {
			case w.presence == "" && ok:
				t.Errorf("%s: alice sees %s as %+v, want no event", st.name, w.user, p)
			case w.presence != "" && !ok:
				t.Errorf("%s: alice sees no presence of %s, want %s", st.name, w.user, w.presence)
			case w.presence != "" && (p.Presence != w.presence || w.msg != "" && (p.StatusMsg == nil || *p.StatusMsg != w.msg)):
				t.Errorf("%s: alice sees %s as %+v, want %s %q", st.name, w.user, p, w.presence, w.msg)
			}
		}
		c := e.since(carol, carolTok)
		carolTok = c.NextBatch
		for _, ev := range c.Presence.Events {
			if ev.Sender != carol.UserID {
				t.Errorf("%s: carol, a stranger, sees presence of %s", st.name, ev.Sender)
			}
		}
	}
	// An initial sync has the current presence of room-mates.
	b := e.sync(alice, nil)
	if p, ok := presenceOf(t, b, bob.UserID); !ok || p.Presence != "unavailable" {
		t.Errorf("initial sync: bob %+v (present %v), want unavailable", p, ok)
	}
	for _, ev := range e.sync(carol, nil).Presence.Events {
		if ev.Sender != carol.UserID {
			t.Errorf("carol's initial sync has presence of %s", ev.Sender)
		}
	}
}

func TestSyncIgnoredUsers(t *testing.T) {
	e := newEnv(t)
	alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
	roomID := e.room(alice, core.PresetPublicChat)
	e.join(bob, roomID)
	e.join(carol, roomID)
	e.say(bob, roomID, "bob before")
	tok := e.sync(alice, nil).NextBatch

	e.putAccountData(alice, "", "m.ignored_user_list", map[string]any{"ignored_users": map[string]any{bob.UserID: map[string]any{}}})
	e.say(bob, roomID, "bob after")
	carolAfter := e.say(carol, roomID, "carol after")
	// A state event by bob: his new display name, on his member event.
	bobby := "Bobby"
	if err := e.n.SetProfile(context.Background(), bob.UserID, bob.DeviceID, &bobby, nil); err != nil {
		t.Fatal(err)
	}
	e.say(bob, roomID, "bob last")

	bobInvites := e.room(bob, core.PresetPrivateChat)
	e.membership(bob, bobInvites, alice.UserID, "invite")
	carolInvites := e.room(carol, core.PresetPrivateChat)
	e.membership(carol, carolInvites, alice.UserID, "invite")

	for _, initial := range []bool{false, true} {
		q := vals("since", tok)
		if initial {
			q = nil
		}
		b := e.sync(alice, q)
		room := b.Rooms.Join[roomID]
		got := bodies(room.Timeline.Events)
		for _, ev := range room.Timeline.Events {
			if ev.Sender == bob.UserID && ev.StateKey == nil {
				t.Errorf("initial %v: alice's timeline has bob's %s %q", initial, ev.Type, ev.body())
			}
		}
		if !slices.Contains(got, "carol after") {
			t.Errorf("initial %v: carol's message missing from %q", initial, got)
		}
		// State events of ignored users are still sent.
		renamed := false
		for _, ev := range append(append([]event{}, room.State.Events...), room.Timeline.Events...) {
			var c struct{ Displayname string }
			_ = json.Unmarshal(ev.Content, &c)
			if ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey == bob.UserID && c.Displayname == bobby {
				renamed = true
			}
		}
		if !renamed {
			t.Errorf("initial %v: bob's new member event is neither in state %v nor in the timeline", initial, stateTypes(room.State.Events))
		}
		if _, ok := b.Rooms.Invite[bobInvites]; ok {
			t.Errorf("initial %v: alice sees bob's invite", initial)
		}
		if _, ok := b.Rooms.Invite[carolInvites]; !ok {
			t.Errorf("initial %v: alice does not see carol's invite", initial)
		}
		if !slices.Contains(eventTypes(b.AccountData.Events), "m.ignored_user_list") {
			t.Errorf("initial %v: m.ignored_user_list not in account data", initial)
		}
	}

	// Nor does history show bob's messages: /messages both ways, /context.
	hist := map[string][]event{
		"messages backwards": e.walk(alice, roomID, vals("dir", "b")),
		"messages forwards":  e.walk(alice, roomID, vals("dir", "f")),
	}
	res := e.get(alice.AccessToken, "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/context/"+url.PathEscape(carolAfter), vals("limit", "20"))
	var c struct{ EventsBefore, EventsAfter []event }
	if res.Status != http.StatusOK || json.Unmarshal(res.Raw, &c) != nil {
		t.Fatalf("context: %d %s", res.Status, res.Raw)
	}
	hist["context"] = append(c.EventsBefore, c.EventsAfter...)
	for what, evs := range hist {
		if !slices.Contains(bodies(evs), "carol after") && what != "context" {
			t.Errorf("%s: carol's message missing from %q", what, bodies(evs))
		}
		for _, ev := range evs {
			if ev.Sender == bob.UserID && ev.StateKey == nil {
				t.Errorf("%s: alice is shown bob's %s %q", what, ev.Type, ev.body())
			}
		}
	}

	// Others still see bob.
	if got := bodies(e.sync(carol, nil).Rooms.Join[roomID].Timeline.Events); !slices.Contains(got, "bob last") {
		t.Errorf("carol does not see bob's message: %q", got)
	}
	// Unignoring shows bob's new messages again.
	tok = e.sync(alice, nil).NextBatch
	e.putAccountData(alice, "", "m.ignored_user_list", map[string]any{"ignored_users": map[string]any{}})
	e.say(bob, roomID, "bob forgiven")
	if got := bodies(e.since(alice, tok).Rooms.Join[roomID].Timeline.Events); !slices.Contains(got, "bob forgiven") {
		t.Errorf("after unignoring: %q lacks bob's message", got)
	}
}

// TestSyncLongPollWakes checks that a waiting /sync answers promptly when
// something of each kind happens. Carol shares a room with alice only: the
// presence change alice's long-poll makes as it starts is how the test
// knows the long-poll has begun, with no sleeps. Alice's long-polls filter
// presence out, so their own change does not end them.
func TestSyncLongPollWakes(t *testing.T) {
	e := newEnv(t)
	alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
	roomID := e.room(alice, core.PresetPublicChat)
	e.join(bob, roomID)
	signal := e.room(carol, core.PresetPublicChat)
	e.join(alice, signal)
	target := e.say(alice, roomID, "read me")
	aliceTok := e.sync(alice, nil).NextBatch
	carolTok := e.sync(carol, nil).NextBatch
	const noPresence = `{"presence":{"not_types":["*"]}}`

	cases := []struct {
		name    string
		trigger func(e *env)
		check   func(t *testing.T, b syncBody)
	}{
		{"typing", func(e *env) { e.setTyping(bob, roomID, true) }, func(t *testing.T, b syncBody) {
			if got, _ := typingIn(t, b, roomID); !slices.Equal(got, []string{bob.UserID}) {
				t.Errorf("typing %v, want [bob]", got)
			}
		}},
		{"receipt", func(e *env) { e.receipt(bob, roomID, "m.read", target, "") }, func(t *testing.T, b syncBody) {
			if _, ok := receiptsIn(t, b, roomID)[target]["m.read"][bob.UserID]; !ok {
				t.Errorf("no receipt: %+v", b.Rooms.Join[roomID].Ephemeral)
			}
		}},
		{"to-device", func(e *env) {
			e.sendToDevice(bob, "m.test", "wake", map[string]map[string]any{alice.UserID: {alice.DeviceID: map[string]int{"i": 7}}})
		}, func(t *testing.T, b syncBody) {
			if got := toDeviceIndexes(t, b.ToDevice.Events, bob.UserID, "m.test"); !slices.Equal(got, []int{7}) {
				t.Errorf("to-device %v, want [7]", got)
			}
		}},
		{"account data", func(e *env) { e.putAccountData(alice, "", "com.example.wake", map[string]int{"n": 1}) }, func(t *testing.T, b syncBody) {
			if !slices.Contains(eventTypes(b.AccountData.Events), "com.example.wake") {
				t.Errorf("account data %v", eventTypes(b.AccountData.Events))
			}
		}},
		{"room account data", func(e *env) { e.putAccountData(alice, roomID, "com.example.wake", map[string]int{"n": 1}) }, func(t *testing.T, b syncBody) {
			if got := eventTypes(b.Rooms.Join[roomID].AccountData.Events); !slices.Contains(got, "com.example.wake") {
				t.Errorf("room account data %v", got)
			}
		}},
		{"device keys", func(e *env) {
			e.call(bob, "POST", csV3+"/keys/upload", map[string]any{"device_keys": deviceKeys(bob, "1")})
		}, func(t *testing.T, b syncBody) {
			if !slices.Equal(b.DeviceLists.Changed, []string{bob.UserID}) {
				t.Errorf("device_lists.changed %v, want [bob]", b.DeviceLists.Changed)
			}
		}},
		{"typing stops", func(e *env) { e.setTyping(bob, roomID, false) }, func(t *testing.T, b syncBody) {
			if got, ok := typingIn(t, b, roomID); !ok || len(got) != 0 {
				t.Errorf("typing %v (present %v), want []", got, ok)
			}
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.forT(t)
			presence := []string{"unavailable", "online"}[i%2]
			carolPoll := e.startSync(carol, vals("since", carolTok, "timeout", "30000"))
			alicePoll := e.startSync(alice, vals("since", aliceTok, "timeout", "30000", "set_presence", presence, "filter", noPresence))
			c := e.await(carolPoll, "carol waiting for alice's presence")
			if p, ok := presenceOf(t, c.body, alice.UserID); !ok || p.Presence != presence {
				t.Fatalf("carol woke with %s, want alice %s", c.raw, presence)
			}
			carolTok = c.body.NextBatch
			select {
			case r := <-alicePoll:
				t.Fatalf("alice's long-poll answered before anything happened: %d %s", r.status, r.raw)
			default:
			}
			tc.trigger(e)
			r := e.await(alicePoll, tc.name)
			tc.check(t, r.body)
			if len(r.body.Presence.Events) != 0 {
				t.Errorf("presence filtered out, yet sent: %+v", r.body.Presence.Events)
			}
			aliceTok = r.body.NextBatch
		})
	}
}

// TestSyncNextBatchRoundTrips checks that after each kind of news, the
// next_batch of the response that carried it, used as since, gives an empty
// response, and so does the next one.
func TestSyncNextBatchRoundTrips(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	roomID := e.room(alice, core.PresetPublicChat)
	e.join(bob, roomID)
	target := e.say(bob, roomID, "hello")

	tok := e.sync(alice, nil).NextBatch
	kinds := []struct {
		name   string
		action func()
	}{
		{"nothing", func() {}},
		{"message", func() { e.say(bob, roomID, "news") }},
		{"typing", func() { e.setTyping(bob, roomID, true) }},
		{"typing stops", func() { e.setTyping(bob, roomID, false) }},
		{"receipt", func() { e.receipt(bob, roomID, "m.read", target, "") }},
		{"private receipt", func() { e.receipt(alice, roomID, "m.read.private", target, "") }},
		{"to-device", func() {
			e.sendToDevice(bob, "m.test", "rt", map[string]map[string]any{alice.UserID: {alice.DeviceID: map[string]int{"i": 1}}})
		}},
		{"account data", func() { e.putAccountData(alice, "", "com.example.rt", map[string]int{"n": 1}) }},
		{"room account data", func() { e.putAccountData(alice, roomID, "com.example.rt", map[string]int{"n": 1}) }},
		{"presence", func() { e.sync(bob, vals("set_presence", "online")) }},
		{"device keys", func() { e.call(bob, "POST", csV3+"/keys/upload", map[string]any{"device_keys": deviceKeys(bob, "1")}) }},
		{"one-time keys (counts are not news)", func() {
			e.call(alice, "POST", csV3+"/keys/upload", map[string]any{"one_time_keys": map[string]any{"signed_curve25519:A": map[string]string{"key": "k"}}})
		}},
		{"invite", func() {
			r := e.room(bob, core.PresetPrivateChat)
			e.membership(bob, r, alice.UserID, "invite")
		}},
	}
	for _, k := range kinds {
		k.action()
		tok = e.since(alice, tok).NextBatch
		for i := range 2 {
			b := e.since(alice, tok)
			if news := newsIn(t, b.Raw); len(news) != 0 {
				t.Errorf("after %s, round trip %d: not empty: %v", k.name, i+1, news)
			}
			if b.NextBatch == "" {
				t.Fatalf("after %s: no next_batch", k.name)
			}
			tok = b.NextBatch
		}
	}
}
