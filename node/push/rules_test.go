package push

import (
	"encoding/json"
	"testing"
)

// TestDecidePush checks the default push rules' verdicts, one rule at a
// time, for the user @bob:hs, whose display name in the room is "Bobby".
func TestDecidePush(t *testing.T) {
	const bob = "@bob:hs"
	strp := func(s string) *string { return &s }
	type verdict struct{ notify, highlight bool }
	none, notifies, highlights := verdict{}, verdict{true, false}, verdict{true, true}
	cases := []struct {
		name     string
		evType   string
		stateKey *string
		content  string
		power    bool // the sender may @room
		want     verdict
	}{
		{"message", "m.room.message", nil, `{"msgtype":"m.text","body":"hello"}`, false, notifies},
		{"message without body", "m.room.message", nil, `{}`, false, notifies},
		{"notice", "m.room.message", nil, `{"msgtype":"m.notice","body":"beep"}`, false, none},
		{"notice mentioning me", "m.room.message", nil, `{"msgtype":"m.notice","body":"beep","m.mentions":{"user_ids":["@bob:hs"]}}`, false, none},
		{"edit", "m.room.message", nil, `{"msgtype":"m.text","body":"* hi","m.relates_to":{"rel_type":"m.replace","event_id":"$x"}}`, false, none},
		{"edit mentioning me", "m.room.message", nil, `{"msgtype":"m.text","body":"* hi","m.mentions":{"user_ids":["@bob:hs"]},"m.relates_to":{"rel_type":"m.replace","event_id":"$x"}}`, false, highlights},
		{"edit naming me, legacy", "m.room.message", nil, `{"msgtype":"m.text","body":"* hi bob","m.relates_to":{"rel_type":"m.replace","event_id":"$x"}}`, false, none},
		{"thread reply", "m.room.message", nil, `{"msgtype":"m.text","body":"hi","m.relates_to":{"rel_type":"m.thread","event_id":"$x"}}`, false, notifies},
		{"mention of me", "m.room.message", nil, `{"body":"hi","m.mentions":{"user_ids":["@alice:hs","@bob:hs"]}}`, false, highlights},
		{"mention of another", "m.room.message", nil, `{"body":"hi Bobby bob","m.mentions":{"user_ids":["@alice:hs"]}}`, false, notifies},
		{"empty mentions turn off legacy", "m.room.message", nil, `{"body":"hi Bobby and bob","m.mentions":{}}`, false, notifies},
		{"bad mentions", "m.room.message", nil, `{"body":"hi","m.mentions":{"user_ids":"@bob:hs","room":"true"}}`, true, notifies},
		{"room mention with power", "m.room.message", nil, `{"body":"all","m.mentions":{"room":true}}`, true, highlights},
		{"room mention without power", "m.room.message", nil, `{"body":"all","m.mentions":{"room":true}}`, false, notifies},
		{"legacy @room with power", "m.room.message", nil, `{"body":"hey @room!"}`, true, highlights},
		{"legacy @room without power", "m.room.message", nil, `{"body":"hey @room!"}`, false, notifies},
		{"legacy @room inside a word", "m.room.message", nil, `{"body":"see @roomful"}`, true, notifies},
		{"legacy display name", "m.room.message", nil, `{"body":"thanks, bobby!"}`, false, highlights},
		{"legacy display name inside a word", "m.room.message", nil, `{"body":"Bobbyish"}`, false, notifies},
		{"legacy localpart", "m.room.message", nil, `{"body":"ask BOB"}`, false, highlights},
		{"legacy localpart inside a word", "m.room.message", nil, `{"body":"a bobcat"}`, false, notifies},
		{"legacy localpart in a user ID", "m.room.message", nil, `{"body":"ping @bob:hs"}`, false, highlights},
		{"body not a string", "m.room.message", nil, `{"body":["bob"]}`, false, notifies},
		{"encrypted", "m.room.encrypted", nil, `{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"x"}`, false, notifies},
		{"encrypted edit", "m.room.encrypted", nil, `{"ciphertext":"x","m.relates_to":{"rel_type":"m.replace","event_id":"$x"}}`, false, none},
		{"call invite", "m.call.invite", nil, `{"call_id":"1"}`, false, notifies},
		{"sticker (no default rule)", "m.sticker", nil, `{"body":"a cat","url":"mxc://hs/x"}`, false, none},
		{"reaction", "m.reaction", nil, `{"m.relates_to":{"rel_type":"m.annotation","event_id":"$x","key":"👍"}}`, false, none},
		{"reaction mentioning me", "m.reaction", nil, `{"m.mentions":{"user_ids":["@bob:hs"]}}`, false, highlights},
		{"invite for me", "m.room.member", strp(bob), `{"membership":"invite"}`, false, notifies},
		{"invite for another", "m.room.member", strp("@carol:hs"), `{"membership":"invite"}`, false, none},
		{"join", "m.room.member", strp("@carol:hs"), `{"membership":"join","displayname":"bob"}`, false, none},
		{"name change", "m.room.name", strp(""), `{"name":"Bobby's room"}`, false, none},
		{"tombstone", "m.room.tombstone", strp(""), `{"body":"moved","replacement_room":"!new:hs"}`, false, highlights},
		{"server acl", "m.room.server_acl", strp(""), `{"allow":["*"],"body":"bob"}`, false, none},
		{"other event", "org.example.thing", nil, `{"x":1}`, false, none},
		{"poll start", "m.poll.start", nil, `{"m.poll":{}}`, false, notifies},
		{"poll response", "m.poll.response", nil, `{"m.selections":["a"]}`, false, none},
		{"poll end", "m.poll.end", nil, `{"m.text":[]}`, false, notifies},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := parsePushEvent(c.evType, c.stateKey, []byte(c.content))
			pc := pushContext{
				displayName:     func(u string) string { return map[string]string{bob: "Bobby"}[u] },
				senderMayNotify: func(key string) bool { return key == "room" && c.power },
				memberCount:     func(limit int) int { return min(3, limit) },
			}
			rs := defaultRuleset(bob)
			v := compileRules(&rs).eval(ev, bob, pc)
			if got := (verdict{v.Notify, v.Highlight}); got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

// TestContainsWord checks whole-word matching of display names and the
// legacy patterns, including names that are not plain words.
func TestContainsWord(t *testing.T) {
	cases := []struct {
		text, word string
		want       bool
	}{
		{"hi bob", "bob", true},
		{"hi bob.", "Bob", true},
		{"bob", "bob", true},
		{"bobby", "bob", false},
		{"abob bob2 bob_ _bob", "bob", false},
		{"abob and then bob", "bob", true},
		{"hello Dr. B (admin)!", "dr. b (admin)", true},
		{"x@room", "@room", true}, // no boundary needed before a non-word character
		{"@rooms", "@room", false},
		{"Ünïcödé name", "ÜNÏCÖDÉ", true},
		{"namé", "nam", false},
		{"anything", "", false},
	}
	for _, c := range cases {
		if got := containsWord(c.text, c.word); got != c.want {
			t.Errorf("containsWord(%q, %q) = %v, want %v", c.text, c.word, got, c.want)
		}
	}
}

// TestUserRules checks the verdicts of user rules and of changed defaults:
// each case's rules are the defaults for @bob:hs with the case's rule of
// its kind put first among the user's own (rebase) or a default changed.
func TestUserRules(t *testing.T) {
	const bob = "@bob:hs"
	strp := func(s string) *string { return &s }
	type verdict struct{ notify, highlight bool }
	none, notifies, highlights := verdict{}, verdict{true, false}, verdict{true, true}
	dontNotify := []json.RawMessage{}
	notifyHL := []json.RawMessage{json.RawMessage(`"notify"`), json.RawMessage(`{"set_tweak":"highlight","value":true}`)}
	msg := `{"msgtype":"m.text","body":"the cake is a lie","n":3,"flag":false,"nothing":null,"tags":["a","b"],"a.b":{"c":"x"}}`
	cases := []struct {
		name    string
		kind    string
		rule    Rule
		disable string // a default rule to disable instead
		members int
		content string
		want    verdict
	}{
		{"muted room", KindRoom, Rule{RuleID: "!r:hs", Actions: dontNotify}, "", 5, msg, none},
		{"muted room, another room", KindRoom, Rule{RuleID: "!other:hs", Actions: dontNotify}, "", 5, msg, notifies},
		{"muted room still hears mentions", KindRoom, Rule{RuleID: "!r:hs", Actions: dontNotify}, "", 5,
			`{"body":"x","m.mentions":{"user_ids":["@bob:hs"]}}`, highlights},
		{"override mute beats mentions", KindOverride, Rule{RuleID: "mute", Actions: dontNotify,
			Conditions: []Condition{eventMatch("room_id", "!r:hs")}}, "", 5, `{"body":"x","m.mentions":{"user_ids":["@bob:hs"]}}`, none},
		{"sender", KindSender, Rule{RuleID: "@alice:hs", Actions: notifyHL}, "", 5, msg, highlights},
		{"keyword glob", KindContent, Rule{RuleID: "cake", Pattern: strp("cak?"), Actions: notifyHL}, "", 5, msg, highlights},
		{"keyword glob not a word", KindContent, Rule{RuleID: "cake", Pattern: strp("ca?"), Actions: notifyHL}, "", 5, msg, notifies},
		{"keyword star", KindContent, Rule{RuleID: "cake", Pattern: strp("c*e"), Actions: notifyHL}, "", 5, msg, highlights},
		{"event_match whole value", KindOverride, Rule{RuleID: "t", Actions: notifyHL,
			Conditions: []Condition{eventMatch("content.msgtype", "m.*")}}, "", 5, msg, highlights},
		{"event_match whole value only", KindOverride, Rule{RuleID: "t", Actions: notifyHL,
			Conditions: []Condition{eventMatch("content.msgtype", "m.")}}, "", 5, msg, notifies},
		{"escaped dot", KindOverride, Rule{RuleID: "t", Actions: notifyHL,
			Conditions: []Condition{eventMatch(`content.a\.b.c`, "x")}}, "", 5, msg, highlights},
		{"property is integer", KindOverride, Rule{RuleID: "t", Actions: notifyHL,
			Conditions: []Condition{{Kind: "event_property_is", Key: "content.n", Value: json.RawMessage("3")}}}, "", 5, msg, highlights},
		{"property is not the string", KindOverride, Rule{RuleID: "t", Actions: notifyHL,
			Conditions: []Condition{{Kind: "event_property_is", Key: "content.n", Value: json.RawMessage(`"3"`)}}}, "", 5, msg, notifies},
		{"property is false", KindOverride, Rule{RuleID: "t", Actions: notifyHL,
			Conditions: []Condition{{Kind: "event_property_is", Key: "content.flag", Value: json.RawMessage("false")}}}, "", 5, msg, highlights},
		{"property is null", KindOverride, Rule{RuleID: "t", Actions: notifyHL,
			Conditions: []Condition{{Kind: "event_property_is", Key: "content.nothing", Value: json.RawMessage("null")}}}, "", 5, msg, highlights},
		{"absent is not null", KindOverride, Rule{RuleID: "t", Actions: notifyHL,
			Conditions: []Condition{{Kind: "event_property_is", Key: "content.absent", Value: json.RawMessage("null")}}}, "", 5, msg, notifies},
		{"property contains", KindOverride, Rule{RuleID: "t", Actions: notifyHL,
			Conditions: []Condition{{Kind: "event_property_contains", Key: "content.tags", Value: json.RawMessage(`"b"`)}}}, "", 5, msg, highlights},
		{"member count <", KindOverride, Rule{RuleID: "t", Actions: notifyHL,
			Conditions: []Condition{{Kind: "room_member_count", Is: "<10"}}}, "", 5, msg, highlights},
		{"member count >=", KindOverride, Rule{RuleID: "t", Actions: notifyHL,
			Conditions: []Condition{{Kind: "room_member_count", Is: ">=6"}}}, "", 5, msg, notifies},
		{"member count ==", KindOverride, Rule{RuleID: "t", Actions: notifyHL,
			Conditions: []Condition{{Kind: "room_member_count", Is: "5"}}}, "", 5, msg, highlights},
		{"unknown condition never holds", KindOverride, Rule{RuleID: "t", Actions: notifyHL,
			Conditions: []Condition{{Kind: "org.example.future"}}}, "", 5, msg, notifies},
		{"no conditions always hold", KindUnderride, Rule{RuleID: "t", Actions: notifyHL}, "", 5, `{"x":1}`, highlights},
		{"disabled .m.rule.message", "", Rule{}, ".m.rule.message", 5, msg, none},
		{"disabled master stays off", "", Rule{}, ".m.rule.master", 5, msg, notifies},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stored := defaultRuleset(bob)
			if c.kind != "" {
				list := stored.Kind(c.kind)
				*list = append([]Rule{{RuleID: c.rule.RuleID, Enabled: true, Conditions: c.rule.Conditions,
					Pattern: c.rule.Pattern, Actions: c.rule.Actions}}, *list...)
			}
			for _, kind := range ruleKinds() {
				for i, r := range *stored.Kind(kind) {
					if r.RuleID == c.disable {
						(*stored.Kind(kind))[i].Enabled = false
					}
				}
			}
			rs := rebase(bob, &stored)
			ev := parsePushEvent("m.room.message", nil, []byte(c.content))
			ev.sender, ev.roomID = "@alice:hs", "!r:hs"
			pc := pushContext{
				displayName:     func(string) string { return "" },
				senderMayNotify: func(string) bool { return false },
				memberCount:     func(limit int) int { return min(c.members, limit) },
			}
			v := compileRules(&rs).eval(ev, bob, pc)
			if got := (verdict{v.Notify, v.Highlight}); got != c.want {
				t.Errorf("got %+v (rule %s), want %+v", got, v.RuleID, c.want)
			}
		})
	}
}
