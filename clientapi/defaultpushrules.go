package clientapi

// This file holds the spec's default push rules ("Predefined rules" in the
// client-server API's push notifications module), in the spec's order, with
// the user's ID and localpart filled in. They are built per call: nothing
// here is shared or mutable between requests.

// pushRule is an override, room, sender or underride rule: it always has
// a conditions list, empty or not.
type pushRule struct {
	RuleID     string          `json:"rule_id"`
	Default    bool            `json:"default"`
	Enabled    bool            `json:"enabled"`
	Conditions []pushCondition `json:"conditions"`
	Actions    []any           `json:"actions"`
}

// patternRule is a content rule: a glob on the body instead of conditions.
type patternRule struct {
	RuleID  string `json:"rule_id"`
	Default bool   `json:"default"`
	Enabled bool   `json:"enabled"`
	Pattern string `json:"pattern"`
	Actions []any  `json:"actions"`
}

// pushCondition is one condition of a push rule.
type pushCondition struct {
	Kind string `json:"kind"`
	Key  string `json:"key,omitempty"`
	// Pattern is a pointer because the empty pattern (state_key "") is a
	// real value that must be sent.
	Pattern *string `json:"pattern,omitempty"`
	Is      string  `json:"is,omitempty"`
	// Value is only nil when unused; false and "" are still sent.
	Value any `json:"value,omitempty"`
}

// pushRuleset is the rules of one scope ("global"), by kind.
type pushRuleset struct {
	Override  []pushRule    `json:"override"`
	Content   []patternRule `json:"content"`
	Room      []pushRule    `json:"room"`
	Sender    []pushRule    `json:"sender"`
	Underride []pushRule    `json:"underride"`
}

// Actions the default rules use.
func notify() any                 { return "notify" }
func soundTweak(sound string) any { return map[string]any{"set_tweak": "sound", "value": sound} }
func highlightTweak() any         { return map[string]any{"set_tweak": "highlight"} }

func eventMatch(key, pattern string) pushCondition {
	return pushCondition{Kind: "event_match", Key: key, Pattern: &pattern}
}

// defaultRule is an enabled server-default rule.
func defaultRule(id string, conds []pushCondition, actions ...any) pushRule {
	if actions == nil {
		actions = []any{} // "do nothing" is an empty list, not null
	}
	if conds == nil {
		conds = []pushCondition{}
	}
	return pushRule{RuleID: id, Default: true, Enabled: true, Conditions: conds, Actions: actions}
}

// defaultPushRules returns the spec's default ruleset for userID.
func defaultPushRules(userID string) pushRuleset {
	master := defaultRule(".m.rule.master", nil)
	master.Enabled = false
	userName := patternRule{
		RuleID: ".m.rule.contains_user_name", Default: true, Enabled: true,
		Pattern: localpart(userID),
		Actions: []any{notify(), soundTweak("default"), highlightTweak()},
	}
	roomPermission := pushCondition{Kind: "sender_notification_permission", Key: "room"}
	return pushRuleset{
		Override: []pushRule{
			master,
			defaultRule(".m.rule.suppress_notices", []pushCondition{eventMatch("content.msgtype", "m.notice")}),
			defaultRule(".m.rule.invite_for_me", []pushCondition{
				eventMatch("type", "m.room.member"),
				eventMatch("content.membership", "invite"),
				eventMatch("state_key", userID),
			}, notify(), soundTweak("default")),
			defaultRule(".m.rule.member_event", []pushCondition{eventMatch("type", "m.room.member")}),
			defaultRule(".m.rule.is_user_mention", []pushCondition{
				{Kind: "event_property_contains", Key: `content.m\.mentions.user_ids`, Value: userID},
			}, notify(), soundTweak("default"), highlightTweak()),
			defaultRule(".m.rule.contains_display_name", []pushCondition{{Kind: "contains_display_name"}},
				notify(), soundTweak("default"), highlightTweak()),
			defaultRule(".m.rule.is_room_mention", []pushCondition{
				{Kind: "event_property_is", Key: `content.m\.mentions.room`, Value: true},
				roomPermission,
			}, notify(), highlightTweak()),
			defaultRule(".m.rule.roomnotif", []pushCondition{
				eventMatch("content.body", "@room"),
				roomPermission,
			}, notify(), highlightTweak()),
			defaultRule(".m.rule.tombstone", []pushCondition{
				eventMatch("type", "m.room.tombstone"),
				eventMatch("state_key", ""),
			}, notify(), highlightTweak()),
			defaultRule(".m.rule.reaction", []pushCondition{eventMatch("type", "m.reaction")}),
			defaultRule(".m.rule.room.server_acl", []pushCondition{
				eventMatch("type", "m.room.server_acl"),
				eventMatch("state_key", ""),
			}),
			defaultRule(".m.rule.suppress_edits", []pushCondition{
				{Kind: "event_property_is", Key: `content.m\.relates_to.rel_type`, Value: "m.replace"},
			}),
		},
		Content: []patternRule{userName},
		Room:    []pushRule{},
		Sender:  []pushRule{},
		Underride: []pushRule{
			defaultRule(".m.rule.call", []pushCondition{eventMatch("type", "m.call.invite")},
				notify(), soundTweak("ring")),
			defaultRule(".m.rule.encrypted_room_one_to_one", []pushCondition{
				{Kind: "room_member_count", Is: "2"},
				eventMatch("type", "m.room.encrypted"),
			}, notify(), soundTweak("default")),
			defaultRule(".m.rule.room_one_to_one", []pushCondition{
				{Kind: "room_member_count", Is: "2"},
				eventMatch("type", "m.room.message"),
			}, notify(), soundTweak("default")),
			defaultRule(".m.rule.message", []pushCondition{eventMatch("type", "m.room.message")}, notify()),
			defaultRule(".m.rule.encrypted", []pushCondition{eventMatch("type", "m.room.encrypted")}, notify()),
		},
	}
}
