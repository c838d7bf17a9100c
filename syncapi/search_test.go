package syncapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

const searchPath = "/_matrix/client/v3/search"

// searchBody is a decoded /search answer's room_events.
type searchBody struct {
	Count      int      `json:"count"`
	Highlights []string `json:"highlights"`
	Results    []struct {
		Rank    float64 `json:"rank"`
		Result  event   `json:"result"`
		Context *struct {
			Start        string                       `json:"start"`
			End          string                       `json:"end"`
			EventsBefore []event                      `json:"events_before"`
			EventsAfter  []event                      `json:"events_after"`
			ProfileInfo  map[string]map[string]string `json:"profile_info"`
		} `json:"context"`
	} `json:"results"`
	State     map[string][]event                           `json:"state"`
	Groups    map[string]map[string]searchGroup            `json:"groups"`
	NextBatch string                                       `json:"next_batch"`
	Raw       json.RawMessage                              `json:"-"`
	_         map[string]map[string]map[string]interface{} `json:"-"`
}

type searchGroup struct {
	Order     int      `json:"order"`
	Results   []string `json:"results"`
	NextBatch string   `json:"next_batch"`
}

// search posts a room_events search and fails the test unless it answers 200.
func (e *env) search(s node.Session, criteria map[string]any, nextBatch string) searchBody {
	e.t.Helper()
	path := searchPath
	if nextBatch != "" {
		path += "?next_batch=" + url.QueryEscape(nextBatch)
	}
	res := e.tn.Do("POST", path, s.AccessToken, map[string]any{"search_categories": map[string]any{"room_events": criteria}})
	if res.Status != http.StatusOK {
		e.t.Fatalf("search %v: %d %s", criteria, res.Status, res.Raw)
	}
	var b struct {
		SearchCategories struct {
			RoomEvents *searchBody `json:"room_events"`
		} `json:"search_categories"`
	}
	if err := json.Unmarshal(res.Raw, &b); err != nil {
		e.t.Fatalf("decode search: %v: %s", err, res.Raw)
	}
	if b.SearchCategories.RoomEvents == nil {
		e.t.Fatalf("search: no room_events: %s", res.Raw)
	}
	out := *b.SearchCategories.RoomEvents
	out.Raw = res.Raw
	return out
}

func (b searchBody) bodies() []string {
	out := make([]string, len(b.Results))
	for i, r := range b.Results {
		out[i] = r.Result.body()
	}
	return out
}

func term(t string) map[string]any { return map[string]any{"search_term": t} }

func TestSearchFindsWords(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice")
	room := e.room(alice, "private_chat")
	e.setState(alice, room, "m.room.name", "", map[string]string{"name": "Weekend Plans"})
	e.setState(alice, room, "m.room.topic", "", map[string]string{"topic": "hiking and climbing"})
	e.say(alice, room, "Hello world")
	e.say(alice, room, "goodbye, WORLD!")
	e.say(alice, room, "Café au lait, s'il vous plaît")
	e.say(alice, room, "東京で会いましょう")
	e.send(alice, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": 42}) // not a string: not indexed

	for _, tc := range []struct {
		name     string
		criteria map[string]any
		want     []string // bodies, newest first (recent) or rank order
	}{
		{"one word, any case", map[string]any{"search_term": "world", "order_by": "recent"}, []string{"goodbye, WORLD!", "Hello world"}},
		{"all words", map[string]any{"search_term": "hello WORLD", "order_by": "recent"}, []string{"Hello world"}},
		{"word missing", term("hello mars"), nil},
		{"unicode lowercasing", term("CAFÉ"), []string{"Café au lait, s'il vous plaît"}},
		{"punctuation splits", term("s il"), []string{"Café au lait, s'il vous plaît"}},
		{"han characters", term("東京"), []string{"東京で会いましょう"}},
		{"prefix is no match", term("wor"), nil},
		{"room name", map[string]any{"search_term": "weekend", "keys": []string{"content.name"}}, []string{""}},
		{"topic", map[string]any{"search_term": "climbing", "keys": []string{"content.topic"}}, []string{""}},
		{"topic not in body", map[string]any{"search_term": "climbing", "keys": []string{"content.body"}}, nil},
		{"empty term", term("  ,. "), nil},
		{"empty keys are all keys", map[string]any{"search_term": "weekend", "keys": []string{}}, []string{""}},
		{"several keys", map[string]any{"search_term": "hello", "keys": []string{"content.name", "content.body"}}, []string{"Hello world"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.forT(t).search(alice, tc.criteria, "")
			if got := b.bodies(); !slices.Equal(got, tc.want) {
				t.Errorf("results %q, want %q: %s", got, tc.want, b.Raw)
			}
			if b.Count != len(tc.want) {
				t.Errorf("count %d, want %d", b.Count, len(tc.want))
			}
			if b.NextBatch != "" {
				t.Errorf("next_batch %q on the only page", b.NextBatch)
			}
		})
	}
	b := e.search(alice, term("Hello, World"), "")
	if !slices.Equal(b.Highlights, []string{"hello", "world"}) {
		t.Errorf("highlights %q, want [hello world]", b.Highlights)
	}
	if b.Results[0].Result.RoomID != room || b.Results[0].Result.Sender != alice.UserID || b.Results[0].Rank <= 0 {
		t.Errorf("result %+v: want the event in full with a positive rank", b.Results[0])
	}
}

func TestSearchErrors(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice")
	room := e.room(alice, "private_chat")
	e.say(alice, room, "hello")
	long := strings.Repeat("a ", 600)
	many := "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17"
	crit := func(c map[string]any) map[string]any {
		return map[string]any{"search_categories": map[string]any{"room_events": c}}
	}
	for _, tc := range []struct {
		name   string
		query  string
		body   any
		status int
		code   string
	}{
		{"not JSON", "", []byte("{nope"), 400, "M_NOT_JSON"},
		{"not an object", "", []byte(`["a"]`), 400, "M_BAD_JSON"},
		{"no search_categories", "", map[string]any{}, 400, "M_BAD_JSON"},
		{"no search_term", "", crit(map[string]any{"keys": []string{"content.body"}}), 400, "M_BAD_JSON"},
		{"search_term not a string", "", crit(map[string]any{"search_term": 7}), 400, "M_BAD_JSON"},
		{"keys not a list", "", crit(map[string]any{"search_term": "a", "keys": "content.body"}), 400, "M_BAD_JSON"},
		{"unknown key", "", crit(map[string]any{"search_term": "a", "keys": []string{"content.url"}}), 400, "M_INVALID_PARAM"},
		{"unknown order", "", crit(map[string]any{"search_term": "a", "order_by": "oldest"}), 400, "M_INVALID_PARAM"},
		{"unknown group", "", crit(map[string]any{"search_term": "a", "groupings": map[string]any{"group_by": []any{map[string]string{"key": "type"}}}}), 400, "M_INVALID_PARAM"},
		{"negative before_limit", "", crit(map[string]any{"search_term": "a", "event_context": map[string]any{"before_limit": -1}}), 400, "M_INVALID_PARAM"},
		{"bad filter", "", crit(map[string]any{"search_term": "a", "filter": map[string]any{"rooms": []string{"nope"}}}), 400, "M_BAD_JSON"},
		{"filter not an object", "", crit(map[string]any{"search_term": "a", "filter": 3}), 400, "M_BAD_JSON"},
		{"term too long", "", crit(map[string]any{"search_term": long}), 400, "M_INVALID_PARAM"},
		{"too many words", "", crit(map[string]any{"search_term": many}), 400, "M_INVALID_PARAM"},
		{"garbage next_batch", "?next_batch=%21%21", crit(map[string]any{"search_term": "hello"}), 400, "M_INVALID_PARAM"},
		{"empty next_batch", "?next_batch=", crit(map[string]any{"search_term": "hello"}), 400, "M_INVALID_PARAM"},
		{"forged next_batch", "?next_batch=eyJvIjoicmFuayIsInAiOjB9", crit(map[string]any{"search_term": "hello"}), 400, "M_INVALID_PARAM"},
		{"huge next_batch", "?next_batch=" + strings.Repeat("A", 4000), crit(map[string]any{"search_term": "hello"}), 400, "M_INVALID_PARAM"},
		{"next_batch of the other order", "?next_batch=eyJvIjoicmVjZW50IiwicCI6NX0", crit(map[string]any{"search_term": "hello"}), 400, "M_INVALID_PARAM"},
		{"no room_events", "", map[string]any{"search_categories": map[string]any{}}, 200, ""},
		{"search_categories not an object", "", map[string]any{"search_categories": []int{1}}, 400, "M_BAD_JSON"},
		{"order_by not a string", "", crit(map[string]any{"search_term": "a", "order_by": 1}), 400, "M_BAD_JSON"},
		{"event_context not an object", "", crit(map[string]any{"search_term": "a", "event_context": "yes"}), 400, "M_BAD_JSON"},
		{"before_limit not a number", "", crit(map[string]any{"search_term": "a", "event_context": map[string]any{"before_limit": "5"}}), 400, "M_BAD_JSON"},
		{"group_by not a list", "", crit(map[string]any{"search_term": "a", "groupings": map[string]any{"group_by": "room_id"}}), 400, "M_BAD_JSON"},
		{"include_state not a bool", "", crit(map[string]any{"search_term": "a", "include_state": "true"}), 400, "M_BAD_JSON"},
		{"filter limit negative", "", crit(map[string]any{"search_term": "a", "filter": map[string]any{"limit": -1}}), 400, "M_BAD_JSON"},
		{"duplicate keys", "", []byte(`{"search_categories":{"room_events":{"search_term":"a","search_term":"b"}}}`), 400, "M_BAD_JSON"},
		{"sixteen words are fine", "", crit(map[string]any{"search_term": "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16"}), 200, ""},
		{"huge limits are capped", "", crit(map[string]any{"search_term": "hello", "filter": map[string]any{"limit": 1 << 30}, "event_context": map[string]any{"before_limit": 1 << 30, "after_limit": 1 << 30}}), 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.tn.Do("POST", searchPath+tc.query, alice.AccessToken, tc.body)
			if res.Status != tc.status || res.Errcode() != tc.code {
				t.Errorf("got %d %q, want %d %q: %s", res.Status, res.Errcode(), tc.status, tc.code, res.Raw)
			}
		})
	}
	if res := e.tn.Do("POST", searchPath, "", crit(term("hello"))); res.Status != 401 || res.Errcode() != "M_MISSING_TOKEN" {
		t.Errorf("no token: %d %s", res.Status, res.Raw)
	}
}

func TestSearchHistoryVisibility(t *testing.T) {
	e := newEnv(t)
	alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
	for _, tc := range []struct {
		hv   string
		want []string // what bob, who joins after the first message, finds
	}{
		{"joined", []string{"secret late"}},
		{"invited", []string{"secret late"}},
		{"shared", []string{"secret late", "secret early"}},
		{"world_readable", []string{"secret late", "secret early"}},
	} {
		t.Run(tc.hv, func(t *testing.T) {
			e := e.forT(t)
			room := e.room(alice, "public_chat", historyVisibility(tc.hv))
			e.say(alice, room, "secret early "+tc.hv)
			e.join(bob, room)
			e.say(alice, room, "secret late "+tc.hv)
			crit := map[string]any{"search_term": "secret " + tc.hv, "order_by": "recent"}
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = w + " " + tc.hv
			}
			if got := e.search(bob, crit, "").bodies(); !slices.Equal(got, want) {
				t.Errorf("bob finds %q, want %q", got, want)
			}
			if got := e.search(alice, crit, ""); len(got.Results) != 2 || got.Count != 2 {
				t.Errorf("alice finds %q (count %d), want both", got.bodies(), got.Count)
			}
			if got := e.search(carol, crit, ""); len(got.Results) != 0 || got.Count != 0 {
				t.Errorf("carol, never in the room, finds %q (count %d)", got.bodies(), got.Count)
			}
		})
	}

	// After leaving, bob still finds what he could see, and nothing sent
	// since; with shared history that includes what came before his join.
	for _, hv := range []string{"joined", "shared"} {
		room := e.room(alice, "public_chat", historyVisibility(hv))
		e.say(alice, room, "parting words early "+hv)
		e.join(bob, room)
		e.say(alice, room, "parting words before "+hv)
		e.membership(bob, room, bob.UserID, "leave")
		e.say(alice, room, "parting words after "+hv)
		want := []string{"parting words before " + hv}
		if hv == "shared" {
			want = append(want, "parting words early "+hv)
		}
		b := e.search(bob, map[string]any{"search_term": "parting words " + hv, "order_by": "recent"}, "")
		if got := b.bodies(); !slices.Equal(got, want) || b.Count != len(want) {
			t.Errorf("%s: after leaving, bob finds %q (count %d), want %q", hv, got, b.Count, want)
		}
	}
}

func TestSearchRedacted(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	room := e.room(alice, "public_chat")
	e.join(bob, room)
	own := e.say(alice, room, "oops my password hunter2")
	other := e.say(bob, room, "bob says hunter2 too")
	e.say(alice, room, "hunter2 is fine here")
	for _, r := range []struct {
		by    node.Session
		event string
	}{{alice, own}, {alice, other}} { // alice is the room's creator: she may redact bob's
		if _, err := e.n.Redact(context.Background(), core.RedactRequest{Sender: r.by.UserID, DeviceID: r.by.DeviceID, RoomID: room, EventID: r.event}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []node.Session{alice, bob} {
		b := e.search(s, term("hunter2"), "")
		if got := b.bodies(); !slices.Equal(got, []string{"hunter2 is fine here"}) || b.Count != 1 {
			t.Errorf("%s finds %q (count %d) after the redactions", s.UserID, got, b.Count)
		}
	}
	// A redaction bob may not make (alice's message, no power) leaves it.
	kept := e.say(alice, room, "unredactable hunter3")
	if _, err := e.n.Redact(context.Background(), core.RedactRequest{Sender: bob.UserID, DeviceID: bob.DeviceID, RoomID: room, EventID: kept}); err == nil {
		if got := e.search(alice, term("hunter3"), "").bodies(); len(got) != 1 {
			t.Errorf("a redaction without power removed the message from search: %q", got)
		}
	}
}

func TestSearchPagination(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice")
	room := e.room(alice, "private_chat")
	var want []string
	for i := range 25 {
		body := "needle " + strings.Repeat("x", i) // distinct bodies
		if i%5 == 0 {
			body += " needle needle" // rank 3 instead of 1
		}
		e.say(alice, room, body)
		want = append(want, body)
	}
	slices.Reverse(want) // newest first

	for _, order := range []string{"recent", "rank"} {
		t.Run(order, func(t *testing.T) {
			e := e.forT(t)
			crit := map[string]any{"search_term": "needle", "order_by": order, "filter": map[string]any{"limit": 10}}
			var got []string
			var ranks []float64
			batch := ""
			for page := 0; ; page++ {
				if page > 5 {
					t.Fatal("pagination does not end")
				}
				b := e.search(alice, crit, batch)
				if b.Count != 25 {
					t.Errorf("page %d: count %d, want 25", page, b.Count)
				}
				if len(b.Results) > 10 {
					t.Fatalf("page %d has %d results over the limit", page, len(b.Results))
				}
				for _, r := range b.Results {
					got = append(got, r.Result.body())
					ranks = append(ranks, r.Rank)
				}
				if b.NextBatch == "" {
					break
				}
				batch = b.NextBatch
			}
			wantOrder := want
			if order == "rank" {
				// The rank-3 messages first (newest first among them), then the rest.
				var high, low []string
				for _, b := range want {
					if strings.HasSuffix(b, "needle needle") {
						high = append(high, b)
					} else {
						low = append(low, b)
					}
				}
				wantOrder = append(high, low...)
				if ranks[0] != 3 || ranks[len(ranks)-1] != 1 {
					t.Errorf("ranks %v: want 3 first, 1 last", ranks)
				}
			}
			if !slices.Equal(got, wantOrder) {
				t.Errorf("pages give\n%q\nwant\n%q", got, wantOrder)
			}
		})
	}
}

func TestSearchFilterGroupsStateContext(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	if err := e.n.SetProfile(context.Background(), alice.UserID, alice.DeviceID, ptr("Alice A."), nil); err != nil {
		t.Fatal(err)
	}
	r1 := e.room(alice, "public_chat")
	r2 := e.room(alice, "public_chat")
	e.join(bob, r1)
	e.join(bob, r2)
	e.say(alice, r1, "before one")
	hit1 := e.say(alice, r1, "topic lunch in one")
	e.say(bob, r1, "after one")
	hit2 := e.say(bob, r2, "lunch in two")
	hit3 := e.say(alice, r2, "lunch again in two")

	t.Run("filter", func(t *testing.T) {
		e := e.forT(t)
		for _, tc := range []struct {
			filter map[string]any
			want   []string
		}{
			{map[string]any{"rooms": []string{r1}}, []string{hit1}},
			{map[string]any{"not_rooms": []string{r1}}, []string{hit3, hit2}},
			{map[string]any{"senders": []string{bob.UserID}}, []string{hit2}},
			{map[string]any{"not_senders": []string{bob.UserID}}, []string{hit3, hit1}},
			{map[string]any{"types": []string{"m.room.topic"}}, nil},
			{map[string]any{"limit": 1}, []string{hit3}},
		} {
			b := e.search(bob, map[string]any{"search_term": "lunch", "order_by": "recent", "filter": tc.filter}, "")
			var got []string
			for _, r := range b.Results {
				got = append(got, r.Result.EventID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("filter %v: got %q, want %q", tc.filter, got, tc.want)
			}
		}
	})

	t.Run("groupings", func(t *testing.T) {
		e := e.forT(t)
		b := e.search(bob, map[string]any{
			"search_term": "lunch", "order_by": "recent",
			"groupings": map[string]any{"group_by": []any{map[string]string{"key": "room_id"}, map[string]string{"key": "sender"}}},
		}, "")
		rooms, senders := b.Groups["room_id"], b.Groups["sender"]
		if !slices.Equal(rooms[r2].Results, []string{hit3, hit2}) || !slices.Equal(rooms[r1].Results, []string{hit1}) || rooms[r2].Order != 1 || rooms[r1].Order != 2 {
			t.Errorf("room groups %+v", rooms)
		}
		if !slices.Equal(senders[alice.UserID].Results, []string{hit3, hit1}) || !slices.Equal(senders[bob.UserID].Results, []string{hit2}) {
			t.Errorf("sender groups %+v", senders)
		}

		// A group's next_batch continues that group only.
		b = e.search(bob, map[string]any{
			"search_term": "lunch", "order_by": "recent", "filter": map[string]any{"limit": 1},
			"groupings": map[string]any{"group_by": []any{map[string]string{"key": "sender"}}},
		}, "")
		g := b.Groups["sender"][alice.UserID]
		if len(g.Results) != 1 || g.NextBatch == "" {
			t.Fatalf("first page's alice group %+v", g)
		}
		next := e.search(bob, map[string]any{"search_term": "lunch", "order_by": "recent", "filter": map[string]any{"limit": 1}}, g.NextBatch)
		if len(next.Results) != 1 || next.Results[0].Result.EventID != hit1 {
			t.Errorf("alice's group continues with %q, want %s", next.bodies(), hit1)
		}
	})

	t.Run("include_state", func(t *testing.T) {
		e := e.forT(t)
		b := e.search(bob, map[string]any{"search_term": "lunch", "include_state": true, "filter": map[string]any{"rooms": []string{r1}}}, "")
		if len(b.State) != 1 || len(b.State[r1]) == 0 {
			t.Fatalf("state %v", b.State)
		}
		types := map[string]bool{}
		for _, ev := range b.State[r1] {
			types[ev.Type] = true
		}
		if !types["m.room.create"] || !types["m.room.member"] {
			t.Errorf("state of %s has types %v", r1, types)
		}
	})

	t.Run("event_context", func(t *testing.T) {
		e := e.forT(t)
		b := e.search(bob, map[string]any{
			"search_term": "lunch", "filter": map[string]any{"rooms": []string{r1}},
			"event_context": map[string]any{"before_limit": 1, "after_limit": 1, "include_profile": true},
		}, "")
		if len(b.Results) != 1 || b.Results[0].Context == nil {
			t.Fatalf("results %s", b.Raw)
		}
		c := b.Results[0].Context
		if bodies(c.EventsBefore)[0] != "before one" || len(c.EventsBefore) != 1 {
			t.Errorf("events_before %q", bodies(c.EventsBefore))
		}
		if len(c.EventsAfter) != 1 || c.EventsAfter[0].body() != "after one" {
			t.Errorf("events_after %q", bodies(c.EventsAfter))
		}
		if c.ProfileInfo[alice.UserID]["displayname"] != "Alice A." {
			t.Errorf("profile_info %v", c.ProfileInfo)
		}
		if _, ok := c.ProfileInfo[bob.UserID]; !ok {
			t.Errorf("profile_info lacks bob, who sent an event after: %v", c.ProfileInfo)
		}
		// The tokens page on in /messages.
		m := e.messages(bob, r1, vals("from", c.Start, "dir", "b", "limit", "1"))
		if len(m.Chunk) != 1 || m.Chunk[0].Type != "m.room.member" {
			t.Errorf("/messages from context start: %q %s", bodies(m.Chunk), m.Raw)
		}

		// No event_context: no context.
		if b := e.search(bob, term("lunch"), ""); b.Results[0].Context != nil {
			t.Errorf("context without event_context: %s", b.Raw)
		}
	})
}

func TestSearchEncryptedRoomFindsNothing(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice")
	room := e.room(alice, "private_chat", core.InitialStateEvent{
		Type: "m.room.encryption", Content: json.RawMessage(`{"algorithm":"m.megolm.v1.aes-sha2"}`),
	})
	e.send(alice, room, "m.room.encrypted", map[string]any{
		"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnAcontent body secret", "sender_key": "abc", "session_id": "def", "device_id": "DEV",
	})
	for _, q := range []string{"secret", "awgaenacontent", "megolm"} {
		if b := e.search(alice, term(q), ""); len(b.Results) != 0 || b.Count != 0 {
			t.Errorf("%q found in an encrypted room: %s", q, b.Raw)
		}
	}
}
