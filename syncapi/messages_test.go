package syncapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/edgenode/edgenode/node"
)

const onlyMessages = `{"types":["m.room.message"]}`

// The reported case: 15 messages, limit 5 backwards from the newest gives
// three pages of 5 and then stops, exactly the 15 in reverse order; and
// forwards pagination from a start token continues where it stood.
func TestMessagesFifteenInPagesOfFive(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice")
	room := e.room(alice, "private_chat")
	var sent []string
	for i := range 15 {
		sent = append(sent, fmt.Sprintf("m%02d", i))
		e.say(alice, room, sent[i])
	}

	q := vals("dir", "b", "limit", "5", "filter", onlyMessages)
	var got []string
	var first messagesBody
	for page := 1; ; page++ {
		b := e.messages(alice, room, q)
		if page == 1 {
			first = b
		}
		if len(b.Chunk) != 5 {
			t.Fatalf("page %d: %d events, want 5: %v", page, len(b.Chunk), bodies(b.Chunk))
		}
		got = append(got, bodies(b.Chunk)...)
		if page < 3 && b.End == nil {
			t.Fatalf("page %d: no end", page)
		}
		if page == 3 {
			if b.End != nil {
				t.Fatalf("page 3: end %q, want none (nothing left)", *b.End)
			}
			break
		}
		q.Set("from", *b.End)
	}
	if want := reversed(sent); !slices.Equal(got, want) {
		t.Fatalf("backwards:\n got %v\nwant %v", got, want)
	}

	// Forwards from the end of the first page: the same five, in order.
	fwd := e.messages(alice, room, vals("dir", "f", "limit", "5", "from", *first.End, "filter", onlyMessages))
	if want := sent[10:]; !slices.Equal(bodies(fwd.Chunk), want) {
		t.Fatalf("forwards from page 1's end: got %v, want %v", bodies(fwd.Chunk), want)
	}
	if fwd.End != nil {
		t.Fatalf("forwards to the newest event: end %q, want none", *fwd.End)
	}

	// Forwards from the first page's start (the newest position then):
	// nothing yet, then exactly what is sent later.
	q = vals("dir", "f", "limit", "5", "from", first.Start)
	if b := e.messages(alice, room, q); len(b.Chunk) != 0 || b.End != nil {
		t.Fatalf("forwards from start before new events: %s", b.Raw)
	}
	var later []string
	for i := range 7 {
		later = append(later, fmt.Sprintf("later%d", i))
		e.say(alice, room, later[i])
	}
	if got := bodies(e.walk(alice, room, q)); !slices.Equal(got, later) {
		t.Fatalf("forwards from start: got %v, want %v", got, later)
	}
}

// Unfiltered, every event the user may see comes exactly once, backwards in
// reverse order of forwards, for every page size.
func TestMessagesWalkBothWays(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	room := e.room(alice, "public_chat")
	for i := range 12 {
		e.say(alice, room, fmt.Sprint("a", i))
	}
	e.join(bob, room)
	for i := range 5 {
		e.say(bob, room, fmt.Sprint("b", i))
	}
	all := e.walk(alice, room, vals("dir", "f", "limit", "1000"))
	if len(all) < 12+1+5 {
		t.Fatalf("only %d events", len(all))
	}
	for _, limit := range []string{"1", "2", "3", "7", "1000"} {
		t.Run("limit="+limit, func(t *testing.T) {
			back := e.walk(alice, room, vals("dir", "b", "limit", limit))
			if !slices.Equal(ids(back), reversed(ids(all))) {
				t.Fatalf("backwards differs from reversed forwards:\n%v\n%v", ids(back), reversed(ids(all)))
			}
			fwd := e.walk(alice, room, vals("dir", "f", "limit", limit))
			if !slices.Equal(ids(fwd), ids(all)) {
				t.Fatalf("forwards differs")
			}
			for _, ev := range back {
				if ev.RoomID != room {
					t.Fatalf("event %s has room_id %q", ev.EventID, ev.RoomID)
				}
			}
		})
	}
}

// from and to bound a stretch between two tokens, in both directions.
func TestMessagesFromTo(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice")
	room := e.room(alice, "private_chat")
	for i := range 10 {
		e.say(alice, room, fmt.Sprint(i))
	}
	// Tokens after 3 and after 7 (forwards pages end after their last event).
	after3 := e.messages(alice, room, vals("dir", "f", "limit", "4", "filter", onlyMessages))
	after7 := e.messages(alice, room, vals("dir", "f", "limit", "4", "filter", onlyMessages, "from", *after3.End))
	if got := bodies(after7.Chunk); !slices.Equal(got, []string{"4", "5", "6", "7"}) {
		t.Fatalf("second forward page: %v", got)
	}
	tests := []struct {
		name string
		q    url.Values
		want []string
	}{
		{"forwards from to", vals("dir", "f", "from", *after3.End, "to", *after7.End), []string{"4", "5", "6", "7"}},
		{"backwards from to", vals("dir", "b", "from", *after7.End, "to", *after3.End), []string{"7", "6", "5", "4"}},
		{"backwards to beyond from", vals("dir", "b", "from", *after3.End, "to", *after7.End), nil},
		{"forwards to s0", vals("dir", "f", "to", "s0"), nil},
		{"backwards from s0", vals("dir", "b", "from", "s0"), nil},
		{"forwards limit 2 with to", vals("dir", "f", "from", *after3.End, "to", *after7.End, "limit", "2"), []string{"4", "5", "6", "7"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Set("filter", onlyMessages)
			got := bodies(e.walk(alice, room, tc.q))
			if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMessagesErrors(t *testing.T) {
	e := newEnv(t)
	alice, eve := e.user("alice"), e.user("eve")
	room := e.room(alice, "public_chat")
	readable := e.room(alice, "public_chat", historyVisibility("world_readable"))
	path := func(r string) string { return "/_matrix/client/v3/rooms/" + url.PathEscape(r) + "/messages" }
	tests := []struct {
		name    string
		token   string
		room    string
		q       url.Values
		status  int
		errcode string
	}{
		{"ok", alice.AccessToken, room, vals("dir", "b"), 200, ""},
		{"no token", "", room, vals("dir", "b"), 401, "M_MISSING_TOKEN"},
		{"no dir", alice.AccessToken, room, nil, 400, "M_MISSING_PARAM"},
		{"bad dir", alice.AccessToken, room, vals("dir", "x"), 400, "M_INVALID_PARAM"},
		{"dir word", alice.AccessToken, room, vals("dir", "backwards"), 400, "M_INVALID_PARAM"},
		{"limit not a number", alice.AccessToken, room, vals("dir", "b", "limit", "ten"), 400, "M_INVALID_PARAM"},
		{"negative limit", alice.AccessToken, room, vals("dir", "b", "limit", "-1"), 400, "M_INVALID_PARAM"},
		{"huge limit is capped", alice.AccessToken, room, vals("dir", "b", "limit", "99999999"), 200, ""},
		{"limit overflow", alice.AccessToken, room, vals("dir", "b", "limit", "99999999999999999999999"), 400, "M_INVALID_PARAM"},
		{"from garbage", alice.AccessToken, room, vals("dir", "b", "from", "garbage"), 400, "M_INVALID_PARAM"},
		{"from sign", alice.AccessToken, room, vals("dir", "b", "from", "s-1"), 400, "M_INVALID_PARAM"},
		{"from empty part", alice.AccessToken, room, vals("dir", "b", "from", "s1__2"), 400, "M_INVALID_PARAM"},
		{"from overflow", alice.AccessToken, room, vals("dir", "f", "from", "s184467440737095516160"), 400, "M_INVALID_PARAM"},
		{"from future streams", alice.AccessToken, room, vals("dir", "b", "from", "s3_9_9_9"), 200, ""},
		{"to garbage", alice.AccessToken, room, vals("dir", "b", "to", "t1-2"), 400, "M_INVALID_PARAM"},
		{"filter not json", alice.AccessToken, room, vals("dir", "b", "filter", "{"), 400, "M_INVALID_PARAM"},
		{"filter not object", alice.AccessToken, room, vals("dir", "b", "filter", "[]"), 400, "M_INVALID_PARAM"},
		{"filter wrong shape", alice.AccessToken, room, vals("dir", "b", "filter", `{"types":"m.room.message"}`), 400, "M_INVALID_PARAM"},
		{"filter bad sender", alice.AccessToken, room, vals("dir", "b", "filter", `{"senders":["alice"]}`), 400, "M_INVALID_PARAM"},
		{"filter twice encoded", alice.AccessToken, room, vals("dir", "b", "filter", url.QueryEscape(onlyMessages)), 200, ""},
		{"never a member", eve.AccessToken, room, vals("dir", "b"), 403, "M_FORBIDDEN"},
		{"unknown room", alice.AccessToken, "!nowhere:example.org", vals("dir", "b"), 403, "M_FORBIDDEN"},
		{"world readable", eve.AccessToken, readable, vals("dir", "b"), 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := e.get(tc.token, path(tc.room), tc.q)
			if res.Status != tc.status || res.Errcode() != tc.errcode {
				t.Fatalf("got %d %s, want %d %s: %s", res.Status, res.Errcode(), tc.status, tc.errcode, res.Raw)
			}
		})
	}
}

func TestMessagesFilters(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	room := e.room(alice, "public_chat")
	e.join(bob, room)
	e.say(alice, room, "a1")
	e.send(bob, room, "m.room.message", map[string]string{"msgtype": "m.image", "body": "b-img", "url": "mxc://x/y"})
	e.send(alice, room, "org.example.custom", map[string]any{"body": "a-custom", "url": 5})
	e.say(bob, room, "b2")
	e.send(alice, room, "m.room.topic", map[string]string{"topic": "t"})

	tests := []struct {
		filter string
		want   []string // bodies, newest first; state events have ""
	}{
		{`{"types":["m.room.message"]}`, []string{"b2", "b-img", "a1"}},
		{`{"types":["m.room.m*"],"not_types":["m.room.member"]}`, []string{"b2", "b-img", "a1"}},
		{`{"types":["*custom"]}`, []string{"a-custom"}},
		{`{"types":["org.*","m.room.topic"]}`, []string{"", "a-custom"}},
		{`{"not_types":["m.*"]}`, []string{"a-custom"}},
		{`{"types":[]}`, nil},
		{`{"senders":["` + bob.UserID + `"],"types":["m.room.message"]}`, []string{"b2", "b-img"}},
		{`{"not_senders":["` + alice.UserID + `"],"not_types":["m.room.member"]}`, []string{"b2", "b-img"}},
		{`{"senders":["` + bob.UserID + `"],"not_senders":["` + bob.UserID + `"]}`, nil},
		{`{"contains_url":true}`, []string{"b-img"}},
		{`{"contains_url":false,"types":["m.room.message","org.example.custom"]}`, []string{"b2", "a-custom", "a1"}},
		{`{"rooms":["!other:x"]}`, nil},
		{`{"not_rooms":["` + room + `"]}`, nil},
		{`{"rooms":["` + room + `"],"types":["org.example.custom"]}`, []string{"a-custom"}},
	}
	for _, tc := range tests {
		t.Run(tc.filter, func(t *testing.T) {
			for _, limit := range []string{"1", "10"} {
				got := bodies(e.walk(alice, room, vals("dir", "b", "limit", limit, "filter", tc.filter)))
				if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
					t.Fatalf("limit %s: got %q, want %q", limit, got, tc.want)
				}
			}
		})
	}

	// The filter's own limit caps the page.
	b := e.messages(alice, room, vals("dir", "b", "filter", `{"limit":2}`))
	if len(b.Chunk) != 2 || b.End == nil {
		t.Fatalf("filter limit 2: %d events, end %v", len(b.Chunk), b.End)
	}
}

// A user who joined a "joined"-visibility room sees nothing before their
// join; pages over hidden history still advance and end. One who left sees
// nothing after leaving.
func TestMessagesVisibility(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	room := e.room(alice, "public_chat", historyVisibility("joined"))
	for i := range 20 {
		e.say(alice, room, fmt.Sprint("before", i))
	}
	e.join(bob, room)
	e.say(alice, room, "during")
	e.membership(bob, room, bob.UserID, "leave")
	e.say(alice, room, "after")

	// The room's first events were sent under the default "shared"
	// visibility, before "joined" was set, so bob sees those; of the
	// messages, only the one sent while he was joined.
	for _, limit := range []string{"1", "3", "50"} {
		got := e.walk(bob, room, vals("dir", "b", "limit", limit))
		var msgs []string
		sawJoin := false
		for _, ev := range got {
			switch {
			case ev.Type == "m.room.message":
				msgs = append(msgs, ev.body())
			case ev.Type == "m.room.member" && *ev.StateKey == bob.UserID:
				sawJoin = true
			}
		}
		if !slices.Equal(msgs, []string{"during"}) || !sawJoin {
			t.Fatalf("limit %s: bob sees messages %v (join seen: %v), want [during] and his join", limit, msgs, sawJoin)
		}
	}
	if res := e.get(bob.AccessToken, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/messages", vals("dir", "f")); res.Status != http.StatusOK {
		t.Fatalf("left member: %d %s", res.Status, res.Raw)
	}
}

func TestMessagesLazyLoadMembers(t *testing.T) {
	e := newEnv(t)
	alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
	room := e.room(alice, "public_chat")
	e.join(bob, room)
	e.join(carol, room)
	e.say(alice, room, "hi")
	e.say(bob, room, "hello")
	e.say(alice, room, "how are you")

	b := e.messages(alice, room, vals("dir", "b", "limit", "3", "filter", `{"lazy_load_members":true}`))
	var members []string
	for _, ev := range b.State {
		if ev.Type != "m.room.member" || ev.StateKey == nil {
			t.Fatalf("unexpected state event %s %s", ev.Type, ev.EventID)
		}
		members = append(members, *ev.StateKey)
	}
	slices.Sort(members)
	if want := []string{alice.UserID, bob.UserID}; !slices.Equal(members, want) {
		t.Fatalf("lazy-loaded members %v, want %v", members, want)
	}
	if b := e.messages(alice, room, vals("dir", "b", "limit", "3")); len(b.State) != 0 {
		t.Fatalf("state without lazy loading: %s", b.Raw)
	}
}

// Under "shared" history, a user sees what was sent before they left only if
// they had joined: an invite they rejected, or a ban before joining, shows
// them nothing.
func TestMessagesNeverJoinedSeesNoSharedHistory(t *testing.T) {
	e := newEnv(t)
	alice, bob, eve, mallory := e.user("alice"), e.user("bob"), e.user("eve"), e.user("mallory")
	room := e.room(alice, "private_chat") // history_visibility shared
	e.say(alice, room, "secret")
	// bob joins, leaves, is invited again and rejects: he still sees what
	// was sent before his first leave, not what came after.
	e.membership(alice, room, bob.UserID, "invite")
	e.join(bob, room)
	e.say(alice, room, "while bob was in")
	e.membership(bob, room, bob.UserID, "leave")
	e.say(alice, room, "after bob left")
	e.membership(alice, room, bob.UserID, "invite")
	e.membership(bob, room, bob.UserID, "leave")
	// eve rejects an invite; mallory is invited and banned.
	e.membership(alice, room, eve.UserID, "invite")
	e.membership(eve, room, eve.UserID, "leave")
	e.membership(alice, room, mallory.UserID, "invite")
	e.membership(alice, room, mallory.UserID, "ban")

	tests := []struct {
		who  node.Session
		want []string
	}{
		{eve, nil},
		{mallory, nil},
		{bob, []string{"while bob was in", "secret"}},
	}
	for _, tc := range tests {
		t.Run(tc.who.UserID, func(t *testing.T) {
			if got := msgBodies(e.walk(tc.who, room, vals("dir", "b"))); !slices.Equal(got, tc.want) {
				t.Fatalf("sees %q, want %q", got, tc.want)
			}
		})
	}
}

func msgBodies(evs []event) []string {
	var out []string
	for _, ev := range evs {
		if ev.Type == "m.room.message" {
			out = append(out, ev.body())
		}
	}
	return out
}
