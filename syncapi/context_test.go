package syncapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
)

// contextBody is a decoded /context answer.
type contextBody struct {
	Start        string  `json:"start"`
	End          string  `json:"end"`
	EventsBefore []event `json:"events_before"`
	Event        event   `json:"event"`
	EventsAfter  []event `json:"events_after"`
	State        []event `json:"state"`
}

func contextPath(room, eventID string) string {
	return "/_matrix/client/v3/rooms/" + url.PathEscape(room) + "/context/" + url.PathEscape(eventID)
}

func TestContext(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	room := e.room(alice, "public_chat")
	e.join(bob, room)
	var msgs []string
	for i := range 10 {
		who := alice
		if i%3 == 0 {
			who = bob
		}
		msgs = append(msgs, e.say(who, room, fmt.Sprint(i)))
	}
	target := msgs[5]

	tests := []struct {
		name          string
		q             url.Values
		before, after []string
	}{
		{"default limit", vals("filter", onlyMessages), []string{"4", "3", "2", "1", "0"}, []string{"6", "7", "8", "9"}},
		{"limit 4", vals("limit", "4", "filter", onlyMessages), []string{"4", "3"}, []string{"6", "7"}},
		{"limit 5 puts the extra one after", vals("limit", "5", "filter", onlyMessages), []string{"4", "3"}, []string{"6", "7", "8"}},
		{"limit 1", vals("limit", "1", "filter", onlyMessages), nil, []string{"6"}},
		{"limit 0", vals("limit", "0"), nil, nil},
		{"filter by sender", vals("limit", "4", "filter", `{"senders":["`+bob.UserID+`"],"types":["m.room.message"]}`), []string{"3", "0"}, []string{"6", "9"}},
		{"lazy members", vals("limit", "2", "filter", `{"lazy_load_members":true}`), []string{"4"}, []string{"6"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := e.get(alice.AccessToken, contextPath(room, target), tc.q)
			if res.Status != http.StatusOK {
				t.Fatalf("%d %s", res.Status, res.Raw)
			}
			var b contextBody
			if err := json.Unmarshal(res.Raw, &b); err != nil {
				t.Fatal(err)
			}
			if b.Event.EventID != target || b.Event.RoomID != room {
				t.Fatalf("event %+v", b.Event)
			}
			if got := bodies(b.EventsBefore); !slices.Equal(got, tc.before) && len(got)+len(tc.before) > 0 {
				t.Fatalf("before %v, want %v", got, tc.before)
			}
			if got := bodies(b.EventsAfter); !slices.Equal(got, tc.after) && len(got)+len(tc.after) > 0 {
				t.Fatalf("after %v, want %v", got, tc.after)
			}
			if b.EventsBefore == nil || b.EventsAfter == nil || b.State == nil {
				t.Fatalf("arrays must be present: %s", res.Raw)
			}
			// The tokens continue where the context stops, on both sides.
			q := vals("filter", tc.q.Get("filter"), "limit", "1000")
			older := e.messages(alice, room, withFrom(q, "b", b.Start))
			newer := e.messages(alice, room, withFrom(q, "f", b.End))
			if tc.q.Get("filter") == onlyMessages {
				var wantOlder, wantNewer []string
				for i := 5 - len(b.EventsBefore) - 1; i >= 0; i-- {
					wantOlder = append(wantOlder, fmt.Sprint(i))
				}
				for i := 6 + len(b.EventsAfter); i < 10; i++ {
					wantNewer = append(wantNewer, fmt.Sprint(i))
				}
				if got := bodies(older.Chunk); !slices.Equal(got, wantOlder) && len(got)+len(wantOlder) > 0 {
					t.Fatalf("older than start: %v, want %v", got, wantOlder)
				}
				if got := bodies(newer.Chunk); !slices.Equal(got, wantNewer) && len(got)+len(wantNewer) > 0 {
					t.Fatalf("newer than end: %v, want %v", got, wantNewer)
				}
			}
			// State: everything after the last event, or only the
			// senders' member events when lazy-loading.
			types := map[string]int{}
			var members []string
			for _, ev := range b.State {
				types[ev.Type]++
				if ev.Type == "m.room.member" {
					members = append(members, *ev.StateKey)
				}
			}
			slices.Sort(members)
			switch {
			case tc.name == "lazy members":
				// 4 and 5 are alice's, 6 is bob's.
				if want := []string{alice.UserID, bob.UserID}; len(types) != 1 || !slices.Equal(members, want) {
					t.Fatalf("lazy state: %v members %v", types, members)
				}
			case tc.q.Get("filter") == "":
				if types["m.room.create"] != 1 || types["m.room.power_levels"] != 1 || len(members) != 2 {
					t.Fatalf("full state: %v members %v", types, members)
				}
			}
		})
	}
}

func withFrom(q url.Values, dir, from string) url.Values {
	q = cloneValues(q)
	q.Set("dir", dir)
	q.Set("from", from)
	return q
}

func TestContextErrors(t *testing.T) {
	e := newEnv(t)
	alice, bob, eve := e.user("alice"), e.user("bob"), e.user("eve")
	room := e.room(alice, "public_chat", historyVisibility("joined"))
	hidden := e.say(alice, room, "before bob")
	e.join(bob, room)
	seen := e.say(alice, room, "after bob")
	other := e.room(alice, "private_chat")
	elsewhere := e.say(alice, other, "elsewhere")

	tests := []struct {
		name          string
		token         string
		room, eventID string
		q             url.Values
		status        int
		errcode       string
	}{
		{"ok", bob.AccessToken, room, seen, nil, 200, ""},
		{"not visible", bob.AccessToken, room, hidden, nil, 404, "M_NOT_FOUND"},
		{"unknown event", bob.AccessToken, room, "$nope", nil, 404, "M_NOT_FOUND"},
		{"event of another room", alice.AccessToken, room, elsewhere, nil, 404, "M_NOT_FOUND"},
		{"never a member", eve.AccessToken, room, seen, nil, 403, "M_FORBIDDEN"},
		{"unknown room", alice.AccessToken, "!nowhere:x", seen, nil, 403, "M_FORBIDDEN"},
		{"bad limit", bob.AccessToken, room, seen, vals("limit", "x"), 400, "M_INVALID_PARAM"},
		{"bad filter", bob.AccessToken, room, seen, vals("filter", `{"limit":"x"}`), 400, "M_INVALID_PARAM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := e.get(tc.token, contextPath(tc.room, tc.eventID), tc.q)
			if res.Status != tc.status || res.Errcode() != tc.errcode {
				t.Fatalf("got %d %s, want %d %s: %s", res.Status, res.Errcode(), tc.status, tc.errcode, res.Raw)
			}
		})
	}
}
