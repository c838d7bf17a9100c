package node

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Unread notification counts, as /sync reports them in unread_notifications.
//
// Each local user has one small record per room (tUnread) holding how many
// events since their read receipt notify them, and how many of those also
// highlight, by the spec's default push rules. The record is kept up to date
// where things change, as Synapse keeps its push actions, so reading it is
// one key lookup and /sync never walks history for it:
//
//   - a room batch's commit adds the batch's events for every local joined
//     member but the sender (and an invite for its local invitee), in the
//     commit's own transaction;
//   - a user's own event means they have read everything before it, so it
//     resets their record (Synapse does the same);
//   - a read receipt (m.read or m.read.private, unthreaded or for the main
//     timeline) moving forward recounts the room from the receipt to the
//     newest event, in the receipt's transaction (at most unreadRecountCap
//     events);
//   - leaving the room (or being kicked or banned) deletes the record, so
//     records exist only for rooms the user is in.
//
// A record of zero counts is not stored: absent means zero.
//
// The counts cover the whole room, threads included (there are no per-thread
// counts yet), and use the default push rules only: users cannot change
// them yet, and events from users the reader ignores are counted too.

// unreadRecountCap bounds how many events a receipt's recount reads,
// newest first. A user who receipts an event more than this many events
// back is told a count of at most this many; the cap keeps a receipt's
// transaction (which holds the room's input lock) short, and a client that
// far behind shows "lots" either way.
const unreadRecountCap = 1000

// unreadRecord is a user's unread counts in one room. It is stored as two
// uvarints, notify then highlight, rather than JSON: a commit reads and
// writes one per local member for every event, so decoding must be cheap.
type unreadRecord struct {
	Notify, Highlight int
}

func (r unreadRecord) encode() []byte {
	b := binary.AppendUvarint(make([]byte, 0, 4), uint64(r.Notify))
	return binary.AppendUvarint(b, uint64(r.Highlight))
}

func decodeUnread(b []byte) (unreadRecord, error) {
	notify, n1 := binary.Uvarint(b)
	highlight, n2 := binary.Uvarint(b[max(n1, 0):])
	if n1 <= 0 || n2 <= 0 || n1+n2 != len(b) {
		return unreadRecord{}, fmt.Errorf("malformed unread record %x", b)
	}
	return unreadRecord{Notify: int(notify), Highlight: int(highlight)}, nil
}

// UnreadCounts returns how many events in roomID notify userID since their
// read receipt (or their own latest event), and how many of those
// highlight, by the default push rules. Both are 0 for rooms the user is
// not in; in a room they are invited to, the invite is one notification.
func (n *Node) UnreadCounts(ctx context.Context, userID, roomID string) (notify, highlight int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	var rec unreadRecord
	err = n.DB.View(func(tx *kv.Txn) error {
		rec, err = loadUnread(tx, userID, roomID)
		return err
	})
	return rec.Notify, rec.Highlight, err
}

func loadUnread(tx *kv.Txn, userID, roomID string) (unreadRecord, error) {
	return loadUnreadKey(tx, core.UnreadKey(userID, roomID))
}

func loadUnreadKey(tx *kv.Txn, key []byte) (unreadRecord, error) {
	b, err := tx.Get(key)
	if errors.Is(err, kv.ErrNotFound) {
		return unreadRecord{}, nil
	}
	if err != nil {
		return unreadRecord{}, err
	}
	return decodeUnread(b)
}

// storeUnread writes a record at key, deleting it when it is zero.
func storeUnread(tx *kv.Txn, key []byte, rec unreadRecord) error {
	if rec == (unreadRecord{}) {
		return tx.Delete(key)
	}
	return tx.Set(key, rec.encode())
}

// unreadEntry is one user's record while a batch updates it.
type unreadEntry struct {
	key         []byte
	rec, stored unreadRecord
}

// unreadIndexer keeps the local members' unread counts (countUnread).
type unreadIndexer struct {
	core.NoPrepare
	n *Node
}

// Index counts the batch's events; nothing is left for after the commit
// (the notifier wakes the members).
func (x unreadIndexer) Index(tx *kv.Txn, c *core.RoomCommit, _ core.IndexPlan) (func(), error) {
	return nil, x.n.countUnread(tx, c)
}

// countUnread applies the batch's accepted events, in order, to the records
// of the room's local members. c.Members is the room's local membership
// after the batch (user ID -> "join" or "invite"), as writeMemberships found
// it. Membership at the end of the batch is the right one to use: a member
// who joined or left within it did so by their own event, which resets
// their count anyway, or was kicked, which deletes their record.
func (n *Node) countUnread(tx *kv.Txn, c *core.RoomCommit) error {
	entries := map[string]*unreadEntry{}
	entry := func(userID string) (*unreadEntry, error) {
		if e, ok := entries[userID]; ok {
			return e, nil
		}
		key := core.UnreadKey(userID, c.RoomID)
		rec, err := loadUnreadKey(tx, key)
		if err != nil {
			return nil, err
		}
		e := &unreadEntry{key: key, rec: rec, stored: rec}
		entries[userID] = e
		return e, nil
	}
	look := &pushLookup{load: func(id string) (gomatrixserverlib.PDU, error) { return c.Event(tx, id) }}
	for _, ce := range c.Events {
		sender := string(ce.PDU.SenderID())
		if n.IsLocalUser(sender) {
			e, err := entry(sender)
			if err != nil {
				return err
			}
			e.rec = unreadRecord{}
		}
		// Parsed once, for the first member who needs it: most events of a
		// room with no other local member are never looked at.
		var ev *pushEvent
		var pc pushContext
		for userID, m := range c.Members {
			if !pushRecipient(ce.PDU, userID, m, sender) { // newevents.go
				continue
			}
			if ev == nil {
				ev = newPushEvent(ce.PDU)
				state := ce.State // the room's state as of the event
				pc = look.context(func() (*core.State, error) { return state, nil }, sender)
			}
			notify, highlight := decidePush(ev, userID, pc)
			if look.err != nil {
				return look.err
			}
			if !notify {
				continue
			}
			e, err := entry(userID)
			if err != nil {
				return err
			}
			e.rec.Notify++
			if highlight {
				e.rec.Highlight++
			}
		}
	}
	for _, e := range entries {
		if e.rec == e.stored {
			continue // the common case of a sender with nothing unread
		}
		if err := storeUnread(tx, e.key, e.rec); err != nil {
			return err
		}
	}
	return nil
}

// unreadReceipt reports whether a receipt of this type and thread marks the
// room read for unread counts: a read receipt (public or private) that is
// unthreaded or for the main timeline.
func unreadReceipt(receiptType, threadID string) bool {
	return (receiptType == ReceiptRead || receiptType == ReceiptReadPrivate) &&
		(threadID == "" || threadID == ThreadMain)
}

// recountUnread recomputes userID's record for roomID in tx: the events
// after the later of their read receipts (public and private, unthreaded
// and main) up to the newest, stopping early at the user's own latest event
// and after unreadRecountCap events. The caller holds the room's lock.
func (n *Node) recountUnread(tx *kv.Txn, roomID, userID string) error {
	var m core.MembershipRecord
	if err := tx.GetJSON(core.MembershipKey(userID, roomID), &m); err != nil && !errors.Is(err, kv.ErrNotFound) {
		return err
	}
	if m.Membership != spec.Join {
		return tx.Delete(core.UnreadKey(userID, roomID))
	}
	// Nothing before the user's own membership event counts: it is theirs
	// (a join, or a profile change), so they had read up to it.
	from := m.Pos
	for _, t := range []string{ReceiptRead, ReceiptReadPrivate} {
		for _, th := range []string{"", ThreadMain} {
			var r receiptRecord
			err := tx.GetJSON(receiptKey(roomID, userID, t, th), &r)
			if err != nil && !errors.Is(err, kv.ErrNotFound) {
				return err
			}
			from = max(from, r.EventPos)
		}
	}
	look := &pushLookup{load: func(id string) (gomatrixserverlib.PDU, error) { return n.LoadPDU(tx, id) }}
	var rec unreadRecord
	scanned := 0
	err := tx.Each(kv.Scan{Prefix: core.RoomStreamPrefix(roomID), Reverse: true}, func(k, v []byte) (bool, error) {
		pos, err := kv.LastUint(k)
		if err != nil {
			return false, err
		}
		if pos <= from || scanned >= unreadRecountCap {
			return false, nil
		}
		scanned++
		eventID, stateID, err := core.DecodeTimelineEntry(v)
		if err != nil {
			return false, err
		}
		pdu, err := n.LoadPDU(tx, eventID)
		if err != nil {
			return false, err
		}
		sender := string(pdu.SenderID())
		if sender == userID {
			return false, nil // their own event: read up to here
		}
		// The state stored with the timeline entry is the room's state as of
		// the event, the same state the commit counted it with.
		state := func() (*core.State, error) { return n.States.Read(tx, stateID) }
		notify, highlight := decidePush(newPushEvent(pdu), userID, look.context(state, sender))
		if look.err != nil {
			return false, look.err
		}
		if notify {
			rec.Notify++
			if highlight {
				rec.Highlight++
			}
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	return storeUnread(tx, core.UnreadKey(userID, roomID), rec)
}

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

// pushLookup builds pushContexts from room state, caching what it loads
// across the events of a batch or a recount. The first load error is kept
// in err: the rules cannot return one, so callers check it after each
// decision.
type pushLookup struct {
	load   func(eventID string) (gomatrixserverlib.PDU, error)
	names  map[string]string                               // member event ID -> display name
	levels map[string]*gomatrixserverlib.PowerLevelContent // power levels event ID -> content
	err    error
}

// context answers for an event whose room state (as of the event) state
// returns, read only if a rule asks.
func (l *pushLookup) context(state func() (*core.State, error), sender string) pushContext {
	var s *core.State
	get := func() *core.State {
		if s == nil && l.err == nil {
			s, l.err = state()
		}
		return s
	}
	return pushContext{
		displayName: func(userID string) string {
			st := get()
			if st == nil {
				return ""
			}
			return l.displayName(st, userID)
		},
		senderMayNotifyRoom: func() bool {
			st := get()
			return st != nil && l.mayNotifyRoom(st, sender)
		},
	}
}

// displayName is userID's displayname in their member event in s.
func (l *pushLookup) displayName(s *core.State, userID string) string {
	id, ok := s.Get(spec.MRoomMember, userID)
	if !ok {
		return ""
	}
	if name, ok := l.names[id]; ok {
		return name
	}
	pdu, err := l.load(id)
	if err != nil {
		l.err = err
		return ""
	}
	var c struct {
		DisplayName json.RawMessage `json:"displayname"`
	}
	_ = json.Unmarshal(pdu.Content(), &c) // bad content: no name
	name, _ := jsonString(c.DisplayName)
	if l.names == nil {
		l.names = map[string]string{}
	}
	l.names[id] = name
	return name
}

// mayNotifyRoom reports whether sender's power level in s reaches
// notifications.room (50 unless set). Without a power levels event the
// room's creator has every power and everyone else none.
func (l *pushLookup) mayNotifyRoom(s *core.State, sender string) bool {
	id, ok := s.Get(spec.MRoomPowerLevels, "")
	if !ok {
		createID, ok := s.Get(spec.MRoomCreate, "")
		if !ok {
			return false
		}
		create, err := l.load(createID)
		if err != nil {
			l.err = err
			return false
		}
		return string(create.SenderID()) == sender
	}
	pl, ok := l.levels[id]
	if !ok {
		pdu, err := l.load(id)
		if err != nil {
			l.err = err
			return false
		}
		if pl, err = pdu.PowerLevels(); err != nil {
			pl = nil // unparseable levels give no one the power
		}
		if l.levels == nil {
			l.levels = map[string]*gomatrixserverlib.PowerLevelContent{}
		}
		l.levels[id] = pl
	}
	return pl != nil && pl.UserLevel(spec.SenderID(sender)) >= pl.NotificationLevel("room")
}
