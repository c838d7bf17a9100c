package push

import (
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// The spec's default push rules, as the unread counts and the new-event
// hook apply them to an event for one of the room's local members.

// pushEvent is what the default push rules look at in an event, parsed once
// for all the users it is evaluated for.
type pushEvent struct {
	evType   string
	stateKey *string
	msgType  string
	body     string
	hasBody  bool // body is a string (event_match never matches other types)
	// membership is content.membership of member events.
	membership string
	// relType is content.m.relates_to.rel_type (readable in encrypted
	// events too: relations are not encrypted).
	relType string
	// hasMentions is set when content has an m.mentions key at all: the
	// legacy body-matching rules are then skipped (MSC3952, spec v1.7).
	hasMentions bool
	mentionIDs  []string
	mentionRoom bool
}

func newPushEvent(pdu gomatrixserverlib.PDU) *pushEvent {
	return parsePushEvent(pdu.Type(), pdu.StateKey(), pdu.Content())
}

// parsePushEvent reads the fields the rules use. Fields of the wrong JSON
// type are treated as absent, as a rule's condition on them cannot match.
func parsePushEvent(evType string, stateKey *string, content []byte) *pushEvent {
	ev := &pushEvent{evType: evType, stateKey: stateKey}
	var c map[string]json.RawMessage
	if json.Unmarshal(content, &c) != nil {
		return ev
	}
	ev.msgType, _ = jsonString(c["msgtype"])
	ev.body, ev.hasBody = jsonString(c["body"])
	ev.membership, _ = jsonString(c["membership"])
	var rel map[string]json.RawMessage
	if json.Unmarshal(c["m.relates_to"], &rel) == nil {
		ev.relType, _ = jsonString(rel["rel_type"])
	}
	raw, ok := c["m.mentions"]
	ev.hasMentions = ok
	var mentions map[string]json.RawMessage
	if ok && json.Unmarshal(raw, &mentions) == nil {
		var ids []json.RawMessage
		if json.Unmarshal(mentions["user_ids"], &ids) == nil {
			for _, id := range ids {
				if s, ok := jsonString(id); ok {
					ev.mentionIDs = append(ev.mentionIDs, s)
				}
			}
		}
		ev.mentionRoom = string(mentions["room"]) == "true"
	}
	return ev
}

// jsonString decodes raw if it is a JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// pushContext answers the questions about the room that a few rules ask.
// Both are functions because few events need them and each may load events.
type pushContext struct {
	// displayName is the user's display name in the room ("" for none).
	displayName func(userID string) string
	// senderMayNotifyRoom reports whether the event's sender has the power
	// level notifications.room asks for (sender_notification_permission).
	senderMayNotifyRoom func() bool
}

// decidePush applies the spec's default push rules (clientapi's
// defaultPushRules, in the same order) to ev for userID, who is not its
// sender, and reports whether ev notifies them and whether it highlights.
// Sound tweaks do not matter for counts, so rules that differ only in
// sound (.m.rule.room_one_to_one and .m.rule.message, say) are one case.
// event_match conditions compare case-insensitively, as Synapse does.
func decidePush(ev *pushEvent, userID string, pc pushContext) (notify, highlight bool) {
	// Override rules (.m.rule.master is disabled by default).
	if strings.EqualFold(ev.msgType, "m.notice") {
		return false, false // .m.rule.suppress_notices
	}
	if strings.EqualFold(ev.evType, spec.MRoomMember) {
		if strings.EqualFold(ev.membership, spec.Invite) && ev.stateKey != nil && strings.EqualFold(*ev.stateKey, userID) {
			return true, false // .m.rule.invite_for_me
		}
		return false, false // .m.rule.member_event
	}
	for _, id := range ev.mentionIDs {
		if id == userID {
			return true, true // .m.rule.is_user_mention
		}
	}
	legacy := !ev.hasMentions && ev.hasBody
	if legacy && containsWord(ev.body, pc.displayName(userID)) {
		return true, true // .m.rule.contains_display_name
	}
	if ev.mentionRoom && pc.senderMayNotifyRoom() {
		return true, true // .m.rule.is_room_mention
	}
	if legacy && containsWord(ev.body, "@room") && pc.senderMayNotifyRoom() {
		return true, true // .m.rule.roomnotif
	}
	if strings.EqualFold(ev.evType, "m.room.tombstone") && ev.stateKey != nil && *ev.stateKey == "" {
		return true, true // .m.rule.tombstone
	}
	if strings.EqualFold(ev.evType, "m.reaction") {
		return false, false // .m.rule.reaction
	}
	if strings.EqualFold(ev.evType, "m.room.server_acl") && ev.stateKey != nil && *ev.stateKey == "" {
		return false, false // .m.rule.room.server_acl
	}
	if ev.relType == "m.replace" {
		return false, false // .m.rule.suppress_edits
	}
	// Content rules.
	if legacy && containsWord(ev.body, localpartOf(userID)) {
		return true, true // .m.rule.contains_user_name
	}
	// Underride rules.
	switch strings.ToLower(ev.evType) {
	case "m.call.invite", // .m.rule.call
		"m.room.message",   // .m.rule.room_one_to_one, .m.rule.message
		"m.room.encrypted": // .m.rule.encrypted_room_one_to_one, .m.rule.encrypted
		return true, false
	}
	return false, false
}

// localpartOf is the localpart of a user ID ("@alice:hs" -> "alice").
func localpartOf(userID string) string {
	lp, _, _ := strings.Cut(strings.TrimPrefix(userID, "@"), ":")
	return lp
}

// containsWord reports whether text contains word, case-insensitively, as a
// whole word: the way Synapse matches a body against a display name or a
// content rule's pattern, (?:^|\W|\b)word(?:\W|\b|$). So an edge of word
// that is itself not a word character ("@room") needs no boundary there.
func containsWord(text, word string) bool {
	if word == "" {
		return false
	}
	text, word = strings.ToLower(text), strings.ToLower(word)
	first, _ := utf8.DecodeRuneInString(word)
	last, _ := utf8.DecodeLastRuneInString(word)
	for off := 0; off <= len(text); {
		i := strings.Index(text[off:], word)
		if i < 0 {
			return false
		}
		start, end := off+i, off+i+len(word)
		before, _ := utf8.DecodeLastRuneInString(text[:start])
		after, _ := utf8.DecodeRuneInString(text[end:])
		if (start == 0 || !isWordRune(before) || !isWordRune(first)) &&
			(end == len(text) || !isWordRune(after) || !isWordRune(last)) {
			return true
		}
		_, size := utf8.DecodeRuneInString(text[start:])
		off = start + size
	}
	return false
}

// isWordRune is regex \w in Unicode mode.
func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || unicode.Is(unicode.Pc, r)
}

// pushRecipient reports whether an event from sender concerns the room's
// local member userID (membership "join" or "invite") for push rules: a
// joined member hears of others' events; an invited user is not in the room
// yet, so only their own invite (.m.rule.invite_for_me) concerns them.
func pushRecipient(ev gomatrixserverlib.PDU, userID, membership, sender string) bool {
	if userID == sender {
		return false
	}
	return membership == spec.Join ||
		membership == spec.Invite && ev.Type() == spec.MRoomMember && ev.StateKeyEquals(userID)
}
