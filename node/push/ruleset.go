package push

import (
	"bytes"
	"encoding/json"
	"strings"
)

// The push rules as the client-server API shows them (GET /pushrules/, the
// m.push_rules account data): a ruleset of five kinds, each an ordered list
// of rules. The spec's predefined rules (".m.rule.*") are built per user
// (defaultRuleset): a user may enable or disable them and change their
// actions, never delete them or add rules beside them.

// Rule kinds, in evaluation order.
const (
	KindOverride  = "override"
	KindContent   = "content"
	KindRoom      = "room"
	KindSender    = "sender"
	KindUnderride = "underride"
)

// ruleKinds are the kinds in the order rules are evaluated.
func ruleKinds() [5]string {
	return [5]string{KindOverride, KindContent, KindRoom, KindSender, KindUnderride}
}

// ValidKind reports whether kind is one of the five rule kinds.
func ValidKind(kind string) bool {
	for _, k := range ruleKinds() {
		if k == kind {
			return true
		}
	}
	return false
}

// Rule is one push rule. Conditions is sent for every kind but content
// (where Pattern is), an empty list included.
type Rule struct {
	RuleID     string            `json:"rule_id"`
	Default    bool              `json:"default"`
	Enabled    bool              `json:"enabled"`
	Conditions []Condition       `json:"conditions,omitempty"`
	Pattern    *string           `json:"pattern,omitempty"`
	Actions    []json.RawMessage `json:"actions"`
}

// Condition is one condition of a rule.
type Condition struct {
	Kind string `json:"kind"`
	Key  string `json:"key,omitempty"`
	// Pattern is a pointer because the empty pattern (state_key "") is a
	// real value that must be sent.
	Pattern *string `json:"pattern,omitempty"`
	Is      string  `json:"is,omitempty"`
	// Value is raw JSON: a string, integer, boolean or null (JSON null is
	// kept as "null", which is a value to match, not an absence).
	Value json.RawMessage `json:"value,omitempty"`
}

// Ruleset is the rules of the global scope, by kind, in priority order.
type Ruleset struct {
	Override  []Rule `json:"override"`
	Content   []Rule `json:"content"`
	Room      []Rule `json:"room"`
	Sender    []Rule `json:"sender"`
	Underride []Rule `json:"underride"`
}

// Kind returns a pointer to the list of rules of kind (nil for an unknown
// kind).
func (rs *Ruleset) Kind(kind string) *[]Rule {
	switch kind {
	case KindOverride:
		return &rs.Override
	case KindContent:
		return &rs.Content
	case KindRoom:
		return &rs.Room
	case KindSender:
		return &rs.Sender
	case KindUnderride:
		return &rs.Underride
	}
	return nil
}

// MarshalJSON writes every kind as a list (never null), and conditions for
// every kind but content.
func (rs Ruleset) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, kind := range ruleKinds() {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`"` + kind + `":[`)
		for j, r := range *rs.Kind(kind) {
			if j > 0 {
				buf.WriteByte(',')
			}
			b, err := marshalRule(kind, r)
			if err != nil {
				return nil, err
			}
			buf.Write(b)
		}
		buf.WriteByte(']')
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// MarshalRule writes one rule of kind as the API shows it.
func MarshalRule(kind string, r Rule) ([]byte, error) { return marshalRule(kind, r) }

func marshalRule(kind string, r Rule) ([]byte, error) {
	if r.Actions == nil {
		r.Actions = []json.RawMessage{} // "do nothing" is an empty list
	}
	if kind == KindContent {
		r.Conditions = nil
		return json.Marshal(r)
	}
	r.Pattern = nil
	type withConds struct {
		Rule
		Conditions []Condition `json:"conditions"`
	}
	conds := r.Conditions
	if conds == nil {
		conds = []Condition{}
	}
	return json.Marshal(withConds{Rule: r, Conditions: conds})
}

// Actions the default rules use (json.RawMessage of each per use: a
// shared slice could be changed by a caller).
const (
	actNotify       = `"notify"`
	actSoundDefault = `{"set_tweak":"sound","value":"default"}`
	actSoundRing    = `{"set_tweak":"sound","value":"ring"}`
	actHighlight    = `{"set_tweak":"highlight"}`
)

// acts turns action constants into a rule's action list.
func acts(a ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(a))
	for i, s := range a {
		out[i] = json.RawMessage(s)
	}
	return out
}

func eventMatch(key, pattern string) Condition {
	return Condition{Kind: "event_match", Key: key, Pattern: &pattern}
}

func rawJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v) // strings and booleans always marshal
	return b
}

// defaultRule is an enabled server-default rule.
func defaultRule(id string, conds []Condition, actions ...string) Rule {
	if conds == nil {
		conds = []Condition{}
	}
	return Rule{RuleID: id, Default: true, Enabled: true, Conditions: conds, Actions: acts(actions...)}
}

// masterRuleID is the one default override rule that comes before the
// user's own override rules; the other defaults of each kind come after.
const masterRuleID = ".m.rule.master"

// defaultRuleset returns the spec's predefined rules for userID, in the
// spec's order ("Predefined rules" in the push notifications module),
// including the poll rules of MSC3930 (spec v1.7): .m.rule.poll_response
// right after .m.rule.room.server_acl, the poll start and end rules after
// .m.rule.encrypted.
func defaultRuleset(userID string) Ruleset {
	master := defaultRule(masterRuleID, nil)
	master.Enabled = false
	localpart := localpartOf(userID)
	roomPermission := Condition{Kind: "sender_notification_permission", Key: "room"}
	oneToOne := Condition{Kind: "room_member_count", Is: "2"}
	return Ruleset{
		Override: []Rule{
			master,
			defaultRule(".m.rule.suppress_notices", []Condition{eventMatch("content.msgtype", "m.notice")}),
			defaultRule(".m.rule.invite_for_me", []Condition{
				eventMatch("type", "m.room.member"),
				eventMatch("content.membership", "invite"),
				eventMatch("state_key", userID),
			}, actNotify, actSoundDefault),
			defaultRule(".m.rule.member_event", []Condition{eventMatch("type", "m.room.member")}),
			defaultRule(".m.rule.is_user_mention", []Condition{
				{Kind: "event_property_contains", Key: `content.m\.mentions.user_ids`, Value: rawJSON(userID)},
			}, actNotify, actSoundDefault, actHighlight),
			defaultRule(".m.rule.contains_display_name", []Condition{{Kind: "contains_display_name"}},
				actNotify, actSoundDefault, actHighlight),
			defaultRule(".m.rule.is_room_mention", []Condition{
				{Kind: "event_property_is", Key: `content.m\.mentions.room`, Value: rawJSON(true)},
				roomPermission,
			}, actNotify, actHighlight),
			defaultRule(".m.rule.roomnotif", []Condition{
				roomPermission,
				eventMatch("content.body", "@room"),
			}, actNotify, actHighlight),
			defaultRule(".m.rule.tombstone", []Condition{
				eventMatch("type", "m.room.tombstone"),
				eventMatch("state_key", ""),
			}, actNotify, actHighlight),
			defaultRule(".m.rule.reaction", []Condition{eventMatch("type", "m.reaction")}),
			defaultRule(".m.rule.room.server_acl", []Condition{
				eventMatch("type", "m.room.server_acl"),
				eventMatch("state_key", ""),
			}),
			defaultRule(".m.rule.poll_response", []Condition{eventMatch("type", "m.poll.response")}),
			defaultRule(".m.rule.suppress_edits", []Condition{
				{Kind: "event_property_is", Key: `content.m\.relates_to.rel_type`, Value: rawJSON("m.replace")},
			}),
		},
		Content: []Rule{{
			RuleID: ".m.rule.contains_user_name", Default: true, Enabled: true, Pattern: &localpart,
			Actions: acts(actNotify, actSoundDefault, actHighlight),
		}},
		Room:   []Rule{},
		Sender: []Rule{},
		Underride: []Rule{
			defaultRule(".m.rule.call", []Condition{eventMatch("type", "m.call.invite")}, actNotify, actSoundRing),
			defaultRule(".m.rule.encrypted_room_one_to_one", []Condition{oneToOne, eventMatch("type", "m.room.encrypted")},
				actNotify, actSoundDefault),
			defaultRule(".m.rule.room_one_to_one", []Condition{oneToOne, eventMatch("type", "m.room.message")},
				actNotify, actSoundDefault),
			defaultRule(".m.rule.message", []Condition{eventMatch("type", "m.room.message")}, actNotify),
			defaultRule(".m.rule.encrypted", []Condition{eventMatch("type", "m.room.encrypted")}, actNotify),
			defaultRule(".m.rule.poll_start_one_to_one", []Condition{oneToOne, eventMatch("type", "m.poll.start")},
				actNotify, actSoundDefault),
			defaultRule(".m.rule.poll_start", []Condition{eventMatch("type", "m.poll.start")}, actNotify),
			defaultRule(".m.rule.poll_end_one_to_one", []Condition{oneToOne, eventMatch("type", "m.poll.end")},
				actNotify, actSoundDefault),
			defaultRule(".m.rule.poll_end", []Condition{eventMatch("type", "m.poll.end")}, actNotify),
		},
	}
}

// isDefaultID reports whether id is reserved for server-default rules.
func isDefaultID(id string) bool { return strings.HasPrefix(id, ".") }

// rebase lays the user's stored ruleset over this server's current
// defaults for userID: the defaults come from the code (so a server update
// brings new predefined rules to everyone), with the enabled flag and
// actions the user chose for each; the user's own rules are kept in their
// order, after .m.rule.master and before the other defaults of their kind.
// Stored entries for defaults this server no longer has are dropped.
func rebase(userID string, stored *Ruleset) Ruleset {
	out := defaultRuleset(userID)
	if stored == nil {
		return out
	}
	for _, kind := range ruleKinds() {
		defaults := *out.Kind(kind)
		chosen := map[string]Rule{}
		var own []Rule
		for _, r := range *stored.Kind(kind) {
			if isDefaultID(r.RuleID) {
				chosen[r.RuleID] = r
			} else if r.RuleID != "" {
				r.Default = false
				own = append(own, r)
			}
		}
		merged := make([]Rule, 0, len(defaults)+len(own))
		split := 0
		if kind == KindOverride {
			split = 1 // .m.rule.master first
		}
		for i, d := range defaults {
			if i == split {
				merged = append(merged, own...)
			}
			if c, ok := chosen[d.RuleID]; ok {
				d.Enabled = c.Enabled
				if c.Actions != nil {
					d.Actions = c.Actions
				}
			}
			merged = append(merged, d)
		}
		if len(defaults) <= split {
			merged = append(merged, own...)
		}
		*out.Kind(kind) = merged
	}
	return out
}
