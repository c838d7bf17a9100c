package push

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// The event side of push rule evaluation (eval.go): what the rules look at
// in an event, parsed once for all the users it is evaluated for, and the
// questions about the room a few conditions ask.

// pushEvent is an event as push rules see it: its top-level fields and its
// content, decoded once (numbers kept as json.Number, so integers compare
// exactly).
type pushEvent struct {
	evType   string
	stateKey *string
	sender   string
	roomID   string
	content  map[string]any
	body     string
	hasBody  bool // body is a string (event_match never matches other types)
	// hasMentions is set when content has an m.mentions key at all: the
	// legacy body-matching rules are then skipped (MSC3952, spec v1.7).
	hasMentions bool
}

func newPushEvent(pdu gomatrixserverlib.PDU) *pushEvent {
	ev := parsePushEvent(pdu.Type(), pdu.StateKey(), pdu.Content())
	ev.sender, ev.roomID = string(pdu.SenderID()), pdu.RoomID().String()
	return ev
}

// parsePushEvent reads the fields the rules use. Content that is not a
// JSON object is treated as empty.
func parsePushEvent(evType string, stateKey *string, content []byte) *pushEvent {
	ev := &pushEvent{evType: evType, stateKey: stateKey}
	d := json.NewDecoder(bytes.NewReader(content))
	d.UseNumber()
	if d.Decode(&ev.content) != nil {
		ev.content = nil
		return ev
	}
	ev.body, ev.hasBody = ev.content["body"].(string)
	_, ev.hasMentions = ev.content["m.mentions"]
	return ev
}

// lookup returns the value at a dotted key's path (split by splitPath).
func (ev *pushEvent) lookup(path []string) (any, bool) {
	if len(path) == 0 {
		return nil, false
	}
	if len(path) == 1 {
		switch path[0] {
		case "type":
			return ev.evType, true
		case "state_key":
			if ev.stateKey == nil {
				return nil, false
			}
			return *ev.stateKey, true
		case "sender":
			return ev.sender, ev.sender != ""
		case "room_id":
			return ev.roomID, ev.roomID != ""
		}
		return nil, false
	}
	if path[0] != "content" || ev.content == nil {
		return nil, false
	}
	var cur any = ev.content
	for _, p := range path[1:] {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
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

// pushContext answers the questions about the room that a few conditions
// ask. They are functions because few events need them and each may load
// events.
type pushContext struct {
	// displayName is the user's display name in the room ("" for none).
	displayName func(userID string) string
	// senderMayNotify reports whether the event's sender has the power level
	// notifications.<key> asks for (sender_notification_permission).
	senderMayNotify func(key string) bool
	// memberCount counts the room's joined members, stopping at limit.
	memberCount func(limit int) int
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
