package syncapi

import (
	"encoding/json"
	"testing"
)

func TestMatchWildcard(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"m.room.message", "m.room.message", true},
		{"m.room.message", "m.room.messages", false},
		{"m.room.message", "m.room", false},
		{"*", "", true},
		{"*", "anything", true},
		{"m.*", "m.room.message", true},
		{"m.*", "m.", true},
		{"m.*", "m", false},
		{"m.*", "org.m.x", false},
		{"*.member", "m.room.member", true},
		{"*.member", "m.room.members", false},
		{"m.*.member", "m.room.member", true},
		{"m.*.member", "m.member", false}, // the prefix and suffix cannot share the "."
		{"a*a", "a", false},
		{"a*a", "aa", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "acb", false},
		{"**", "x", true},
		{"m.room.?", "m.room.x", false}, // only '*' is special
		{"m.room.[a]", "m.room.[a]", true},
	}
	for _, tc := range tests {
		if got := matchWildcard(tc.pattern, tc.s); got != tc.want {
			t.Errorf("matchWildcard(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestEventFilterMatch(t *testing.T) {
	const alice, bob = "@alice:x", "@bob:x"
	tests := []struct {
		name        string
		filter      string
		evType, who string
		want        bool
	}{
		{"empty passes all", `{}`, "m.room.message", alice, true},
		{"types", `{"types":["m.room.message"]}`, "m.room.message", alice, true},
		{"types miss", `{"types":["m.room.message"]}`, "m.room.topic", alice, false},
		{"types empty list passes none", `{"types":[]}`, "m.room.message", alice, false},
		{"types null is absent", `{"types":null}`, "m.room.message", alice, true},
		{"types wildcard", `{"types":["m.room.*"]}`, "m.room.topic", alice, true},
		{"types wildcard miss", `{"types":["m.room.*"]}`, "m.call.invite", alice, false},
		{"not_types", `{"not_types":["m.room.topic"]}`, "m.room.topic", alice, false},
		{"not_types other", `{"not_types":["m.room.topic"]}`, "m.room.message", alice, true},
		{"not_types wins over types", `{"types":["m.room.*"],"not_types":["*.topic"]}`, "m.room.topic", alice, false},
		{"not_types empty excludes none", `{"not_types":[]}`, "m.room.topic", alice, true},
		{"senders", `{"senders":["@alice:x"]}`, "m.room.message", alice, true},
		{"senders miss", `{"senders":["@alice:x"]}`, "m.room.message", bob, false},
		{"senders no wildcard", `{"senders":["@*"]}`, "m.room.message", alice, false},
		{"senders empty passes none", `{"senders":[]}`, "m.room.message", alice, false},
		{"not_senders", `{"not_senders":["@bob:x"]}`, "m.room.message", bob, false},
		{"not_senders other", `{"not_senders":["@bob:x"]}`, "m.room.message", alice, true},
		{"not_senders wins", `{"senders":["@bob:x"],"not_senders":["@bob:x"]}`, "m.room.message", bob, false},
		{"all at once", `{"types":["m.*"],"not_types":["m.room.member"],"senders":["@alice:x","@bob:x"],"not_senders":["@carol:x"]}`, "m.room.message", bob, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseRoomEventFilter([]byte(tc.filter))
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Match(tc.evType, tc.who); got != tc.want {
				t.Fatalf("Match = %v, want %v", got, tc.want)
			}
			if got := f.MatchFields("!r:x", tc.evType, tc.who, []byte(`{}`)); got != tc.want {
				t.Fatalf("MatchFields = %v, want %v", got, tc.want)
			}
		})
	}
	var nilFilter *RoomEventFilter
	if !nilFilter.MatchFields("!r:x", "t", alice, nil) || !(*EventFilter)(nil).Match("t", alice) {
		t.Fatal("a nil filter must pass everything")
	}
}

func TestRoomEventFilterRoomsAndURL(t *testing.T) {
	tests := []struct {
		name    string
		filter  string
		room    string
		content string
		want    bool
	}{
		{"rooms", `{"rooms":["!a:x"]}`, "!a:x", `{}`, true},
		{"rooms miss", `{"rooms":["!a:x"]}`, "!b:x", `{}`, false},
		{"not_rooms", `{"not_rooms":["!a:x"]}`, "!a:x", `{}`, false},
		{"not_rooms wins", `{"rooms":["!a:x"],"not_rooms":["!a:x"]}`, "!a:x", `{}`, false},
		{"contains_url true with url", `{"contains_url":true}`, "!a:x", `{"url":"mxc://a/b"}`, true},
		{"contains_url true without", `{"contains_url":true}`, "!a:x", `{"body":"x"}`, false},
		{"contains_url true, url not a string", `{"contains_url":true}`, "!a:x", `{"url":{"a":1}}`, false},
		{"contains_url false with url", `{"contains_url":false}`, "!a:x", `{"url":"mxc://a/b"}`, false},
		{"contains_url false without", `{"contains_url":false}`, "!a:x", `{}`, true},
		{"contains_url absent", `{}`, "!a:x", `{"url":"mxc://a/b"}`, true},
		{"contains_url with broken content", `{"contains_url":true}`, "!a:x", `not json`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseRoomEventFilter([]byte(tc.filter))
			if err != nil {
				t.Fatal(err)
			}
			if got := f.MatchFields(tc.room, "m.room.message", "@a:x", []byte(tc.content)); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRoomFilterMatchRoom(t *testing.T) {
	var f Filter
	if err := json.Unmarshal([]byte(`{"room":{"rooms":["!a:x","!b:x"],"not_rooms":["!b:x"]}}`), &f); err != nil {
		t.Fatal(err)
	}
	for room, want := range map[string]bool{"!a:x": true, "!b:x": false, "!c:x": false} {
		if got := f.Room.MatchRoom(room); got != want {
			t.Errorf("MatchRoom(%s) = %v, want %v", room, got, want)
		}
	}
}

func TestParseFilter(t *testing.T) {
	tests := []struct {
		body string
		ok   bool
	}{
		{`{}`, true},
		{`{"room":{"timeline":{"limit":20,"lazy_load_members":true,"include_redundant_members":true,"unread_thread_notifications":true}}}`, true},
		{`{"event_format":"federation","event_fields":["content.body"]}`, true},
		{`{"event_format":"client"}`, true},
		{`{"event_format":"raw"}`, false},
		{`{"event_fields":[""]}`, false},
		{`{"event_fields":"type"}`, false},
		{`{"room":{"timeline":{"limit":-5}}}`, false},
		{`{"room":{"not_rooms":["#alias:x"]}}`, false},
		{`{"room":{"state":{"not_senders":[""]}}}`, false},
		{`{"room":{"include_leave":"true"}}`, false},
		{`{"presence":[]}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.body, func(t *testing.T) {
			f, err := ParseFilter([]byte(tc.body))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			if err == nil && f == nil {
				t.Fatal("nil filter")
			}
		})
	}
}

func TestLimitOr(t *testing.T) {
	tests := []struct {
		f             *EventFilter
		def, max, out int
	}{
		{nil, 10, 100, 10},
		{&EventFilter{}, 10, 100, 10},
		{&EventFilter{Limit: 5}, 10, 100, 5},
		{&EventFilter{Limit: 500}, 10, 100, 100},
	}
	for _, tc := range tests {
		if got := tc.f.LimitOr(tc.def, tc.max); got != tc.out {
			t.Errorf("LimitOr(%v) = %d, want %d", tc.f, got, tc.out)
		}
	}
}

func TestProjectFields(t *testing.T) {
	ev := func() map[string]any {
		return map[string]any{
			"type": "m.room.message", "sender": "@a:x", "event_id": "$e",
			"content": map[string]any{"body": "hi", "msgtype": "m.text", "m.relates_to": map[string]any{"rel_type": "x"}},
			"a.b":     1,
		}
	}
	tests := []struct {
		fields []string
		want   string
	}{
		{nil, `{"a.b":1,"content":{"body":"hi","m.relates_to":{"rel_type":"x"},"msgtype":"m.text"},"event_id":"$e","sender":"@a:x","type":"m.room.message"}`},
		{[]string{"type", "content.body"}, `{"content":{"body":"hi"},"type":"m.room.message"}`},
		{[]string{"content"}, `{"content":{"body":"hi","m.relates_to":{"rel_type":"x"},"msgtype":"m.text"}}`},
		{[]string{`content.m\.relates_to.rel_type`}, `{"content":{"m.relates_to":{"rel_type":"x"}}}`},
		{[]string{`a\.b`}, `{"a.b":1}`},
		{[]string{"a.b"}, `{}`},
		{[]string{"missing", "content.missing", "type.deeper"}, `{}`},
	}
	for _, tc := range tests {
		got, _ := json.Marshal(ProjectFields(ev(), tc.fields))
		if string(got) != tc.want {
			t.Errorf("ProjectFields(%q) = %s, want %s", tc.fields, got, tc.want)
		}
	}
}

func TestSplitPath(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"a", []string{"a"}},
		{"a.b.c", []string{"a", "b", "c"}},
		{`a\.b.c`, []string{"a.b", "c"}},
		{`a\\.b`, []string{`a\`, "b"}},
		{`a\b`, []string{`a\b`}},
		{`a.`, []string{"a", ""}},
	}
	for _, tc := range tests {
		got := splitPath(tc.in)
		if len(got) != len(tc.want) {
			t.Errorf("splitPath(%q) = %q, want %q", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("splitPath(%q) = %q, want %q", tc.in, got, tc.want)
			}
		}
	}
}
