package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/push"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Receipt types.
const (
	// ReceiptRead is the public read receipt, seen by everyone in the room.
	ReceiptRead = "m.read"
	// ReceiptReadPrivate is a read receipt only its own user sees.
	ReceiptReadPrivate = "m.read.private"
	// ReceiptFullyRead is the read marker; it is room account data, not a
	// receipt, and is set through SetReadMarkers.
	ReceiptFullyRead = "m.fully_read"
)

// ThreadMain is the thread ID of a receipt for the main timeline of a room
// (as opposed to "" for an unthreaded receipt, which covers every thread).
const ThreadMain = "main"

// receiptRecord is the latest receipt of one (room, user, type, thread).
type receiptRecord struct {
	EventID string `json:"e"`
	// EventPos is the event's stream position, so a receipt for an older
	// event than the current one can be ignored: receipts only move forward.
	EventPos uint64 `json:"ep"`
	TS       int64  `json:"ts"`
	// Pos is the receipt stream position of the write that set it.
	Pos uint64 `json:"pos"`
}

// receiptRef is the value of a receipt stream index entry.
type receiptRef struct {
	RoomID   string `json:"r"`
	UserID   string `json:"u"`
	Type     string `json:"t"`
	ThreadID string `json:"th,omitempty"`
}

// ReceiptPosition is the latest receipt stream position.
func (n *Node) ReceiptPosition() uint64 { return n.receipts.Current() }

// SetReceipt records a user's m.read or m.read.private receipt for an event.
// threadID is "" for an unthreaded receipt, "main" or a thread root's event
// ID for a threaded one. The user must be joined to the room and able to see
// the event, which must be in the room (else ErrNotFound). A receipt for an
// event before the one already receipted is accepted and ignored. A public
// receipt wakes the room's local members, a private one only its user.
func (n *Node) SetReceipt(ctx context.Context, userID, roomID, receiptType, eventID, threadID string) error {
	if receiptType != ReceiptRead && receiptType != ReceiptReadPrivate {
		return fmt.Errorf("%w: receipt type %q (m.fully_read is set with read markers)", core.ErrInvalidParam, receiptType)
	}
	ev, err := n.receiptTarget(ctx, userID, roomID, eventID, threadID)
	if err != nil {
		return err
	}
	return n.writeReceipt(ctx, userID, roomID, receiptType, threadID, ev)
}

// SetReadMarkers moves a user's read marker (m.fully_read room account data)
// and public and private read receipts in a room; empty event IDs are left
// alone. Every event is checked before anything is written, so a bad one
// changes nothing. Like receipts, the read marker never moves backwards.
func (n *Node) SetReadMarkers(ctx context.Context, userID, roomID, fullyRead, read, readPrivate string) error {
	targets := map[string]*core.Event{}
	for _, id := range []string{fullyRead, read, readPrivate} {
		if id == "" || targets[id] != nil {
			continue
		}
		ev, err := n.receiptTarget(ctx, userID, roomID, id, "")
		if err != nil {
			return err
		}
		targets[id] = ev
	}
	if fullyRead != "" {
		if err := n.setFullyRead(ctx, userID, roomID, targets[fullyRead]); err != nil {
			return err
		}
	}
	if read != "" {
		if err := n.writeReceipt(ctx, userID, roomID, ReceiptRead, "", targets[read]); err != nil {
			return err
		}
	}
	if readPrivate != "" {
		return n.writeReceipt(ctx, userID, roomID, ReceiptReadPrivate, "", targets[readPrivate])
	}
	return nil
}

// fullyReadContent is the content of m.fully_read account data.
type fullyReadContent struct {
	EventID string `json:"event_id"`
}

// setFullyRead stores the read marker unless it would move backwards.
func (n *Node) setFullyRead(ctx context.Context, userID, roomID string, ev *core.Event) error {
	return n.updateAccountData(ctx, userID, roomID, AccountDataFullyRead, func(old json.RawMessage) (json.RawMessage, error) {
		if core.IsBackfillPos(ev.Pos) {
			return old, nil // backfilled history: see writeReceipt
		}
		var cur fullyReadContent
		if old != nil && json.Unmarshal(old, &cur) == nil && cur.EventID != "" {
			curPos, err := n.eventPos(cur.EventID)
			if err == nil && curPos >= ev.Pos {
				return old, nil
			}
		}
		return json.Marshal(fullyReadContent{EventID: ev.PDU.EventID()})
	})
}

// eventPos is an event's stream position (0 for events never served).
func (n *Node) eventPos(eventID string) (uint64, error) {
	var pos uint64
	err := n.DB.View(func(tx *kv.Txn) error {
		rec, err := core.LoadEventRecord(tx, eventID)
		if err == nil {
			pos = rec.Pos
		}
		return err
	})
	return pos, err
}

// receiptTarget checks that userID is joined to roomID and may see eventID,
// an event of that room, and that threadID is a sensible thread for it.
func (n *Node) receiptTarget(ctx context.Context, userID, roomID, eventID, threadID string) (*core.Event, error) {
	m, err := n.Membership(ctx, roomID, userID)
	if err != nil {
		return nil, err
	}
	if m.Membership != spec.Join {
		return nil, fmt.Errorf("%w: %s", core.ErrNotJoined, roomID)
	}
	ev, err := n.Event(ctx, userID, eventID)
	if err != nil {
		return nil, err
	}
	if ev.PDU.RoomID().String() != roomID {
		return nil, fmt.Errorf("event %s in room %s: %w", eventID, roomID, core.ErrNotFound)
	}
	if threadID == "" || threadID == ThreadMain {
		return ev, nil
	}
	if !isEventID(threadID) {
		return nil, fmt.Errorf("%w: thread_id must be %q or an event ID", core.ErrInvalidParam, ThreadMain)
	}
	// Only a plain contradiction is refused: the event is in another thread.
	// Events without a thread relation (the root itself, reactions, edits)
	// may carry any thread's receipt, as clients send those too.
	if root := threadRootOf(ev); root != "" && root != threadID {
		return nil, fmt.Errorf("%w: event %s is in thread %s, not %s", core.ErrInvalidParam, eventID, root, threadID)
	}
	return ev, nil
}

func isEventID(s string) bool { return len(s) > 1 && s[0] == '$' }

// threadRootOf returns the thread root an event replies in, or "".
func threadRootOf(ev *core.Event) string {
	var c struct {
		RelatesTo struct {
			RelType string `json:"rel_type"`
			EventID string `json:"event_id"`
		} `json:"m.relates_to"`
	}
	if json.Unmarshal(ev.PDU.Content(), &c) != nil || c.RelatesTo.RelType != "m.thread" {
		return ""
	}
	return c.RelatesTo.EventID
}

// writeReceipt stores a checked receipt and wakes whoever may see it.
func (n *Node) writeReceipt(ctx context.Context, userID, roomID, receiptType, threadID string, ev *core.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if core.IsBackfillPos(ev.Pos) {
		// History backfilled from other servers predates the node's
		// timeline: a receipt there changes nothing, and its position must
		// not be compared with stream positions.
		return nil
	}
	// A read receipt moving on recounts the user's unread notifications, in
	// the receipt's transaction and under the room's lock (see lockRoom).
	// Any read receipt, threaded or not, recounts the per-thread counts.
	recount := (receiptType == ReceiptRead || receiptType == ReceiptReadPrivate) && n.IsLocalUser(userID)
	if recount {
		mu, err := n.LockRoom(ctx, roomID)
		if err != nil {
			return err
		}
		defer mu.Unlock()
	}
	_, err := n.receipts.Commit(1, func(tx *kv.Txn, pos uint64) error {
		key := receiptKey(roomID, userID, receiptType, threadID)
		var old receiptRecord
		if err := tx.GetJSON(key, &old); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if old.Pos != 0 && old.EventPos >= ev.Pos {
			return errUnchanged // never move a receipt backwards, or re-send it
		}
		if old.Pos != 0 {
			if err := tx.Delete(receiptStreamKey(old.Pos)); err != nil {
				return err
			}
		}
		ref := receiptRef{RoomID: roomID, UserID: userID, Type: receiptType, ThreadID: threadID}
		if err := tx.SetJSON(receiptStreamKey(pos), ref); err != nil {
			return err
		}
		if err := tx.SetJSON(key, receiptRecord{EventID: ev.PDU.EventID(), EventPos: ev.Pos, TS: n.Now().UnixMilli(), Pos: pos}); err != nil {
			return err
		}
		if !recount {
			return nil
		}
		if unreadReceipt(receiptType, threadID) {
			if err := n.recountUnread(tx, roomID, userID); err != nil {
				return err
			}
		}
		return n.recountThreadUnread(tx, roomID, userID)
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	if err != nil {
		return err
	}
	if receiptType == ReceiptReadPrivate {
		n.Notifier.Wake(userID)
		return nil
	}
	n.federateReceipt(ctx, userID, roomID, threadID, ev.PDU.EventID())
	members, err := n.localJoinedMembers(roomID)
	if err != nil {
		return err
	}
	n.Notifier.Wake(members...)
	return nil
}

// unreadReceipt reports whether a receipt of this type and thread marks the
// room read for unread counts: a read receipt (public or private) that is
// unthreaded or for the main timeline.
func unreadReceipt(receiptType, threadID string) bool {
	return (receiptType == ReceiptRead || receiptType == ReceiptReadPrivate) &&
		(threadID == "" || threadID == ThreadMain)
}

// recountUnread recomputes userID's unread counts for roomID in tx
// (push.RecountUnread) from the later of their read receipts that mark the
// room read (public and private, unthreaded and main). The caller holds the
// room's lock.
func (n *Node) recountUnread(tx *kv.Txn, roomID, userID string) error {
	var readUpTo uint64
	for _, t := range []string{ReceiptRead, ReceiptReadPrivate} {
		for _, th := range []string{"", ThreadMain} {
			var r receiptRecord
			err := tx.GetJSON(receiptKey(roomID, userID, t, th), &r)
			if err != nil && !errors.Is(err, kv.ErrNotFound) {
				return err
			}
			readUpTo = max(readUpTo, r.EventPos)
		}
	}
	return n.RecountUnread(tx, roomID, userID, readUpTo)
}

// recountThreadUnread recomputes userID's per-thread unread counts for
// roomID in tx (push.RecountThreadUnread) from all their read receipts
// there: unthreaded ones mark every thread, threaded ones their thread. The
// caller holds the room's lock.
func (n *Node) recountThreadUnread(tx *kv.Txn, roomID, userID string) error {
	marks := push.ThreadMarks{Threads: map[string]uint64{}}
	err := tx.Each(kv.Scan{Prefix: kv.Key(tReceipt, roomID, userID)}, func(k, v []byte) (bool, error) {
		ref, err := decodeReceiptKey(k)
		if err != nil {
			return false, err
		}
		if ref.Type != ReceiptRead && ref.Type != ReceiptReadPrivate {
			return true, nil
		}
		var r receiptRecord
		if err := core.DecodeJSON(v, &r); err != nil {
			return false, err
		}
		if ref.ThreadID == "" {
			marks.All = max(marks.All, r.EventPos)
		} else {
			marks.Threads[ref.ThreadID] = max(marks.Threads[ref.ThreadID], r.EventPos)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	return n.RecountThreadUnread(tx, roomID, userID, marks)
}

// localJoinedMembers lists the local users joined to a room.
func (n *Node) localJoinedMembers(roomID string) ([]string, error) {
	var out []string
	err := n.DB.View(func(tx *kv.Txn) error {
		return localJoinedIn(tx, roomID, func(u string) { out = append(out, u) })
	})
	return out, err
}

// localJoinedIn calls fn for each local user joined to roomID.
func localJoinedIn(tx *kv.Txn, roomID string, fn func(userID string)) error {
	return tx.Each(kv.Scan{Prefix: core.LocalMemberPrefix(roomID)}, func(k, v []byte) (bool, error) {
		if string(v) != spec.Join {
			return true, nil
		}
		u, err := kv.LastString(k)
		if err != nil {
			return false, err
		}
		fn(u)
		return true, nil
	})
}

// receiptUser is one user's receipt in m.receipt content.
type receiptUser struct {
	TS       int64  `json:"ts"`
	ThreadID string `json:"thread_id,omitempty"`
}

// receiptContent is m.receipt content: event ID -> type -> user ID -> receipt.
type receiptContent map[string]map[string]map[string]receiptUser

func (c receiptContent) add(ref receiptRef, rec receiptRecord) {
	byType := c[rec.EventID]
	if byType == nil {
		byType = map[string]map[string]receiptUser{}
		c[rec.EventID] = byType
	}
	byUser := byType[ref.Type]
	if byUser == nil {
		byUser = map[string]receiptUser{}
		byType[ref.Type] = byUser
	}
	// A user has one entry per event and type; with threads, two threads'
	// receipts can name the same event, and the later one wins.
	if cur, ok := byUser[ref.UserID]; !ok || rec.TS >= cur.TS {
		byUser[ref.UserID] = receiptUser{TS: rec.TS, ThreadID: ref.ThreadID}
	}
}

// ReceiptsSince returns, for each of roomIDs with receipts changed after from
// up to and including to, the m.receipt EDU content of those receipts (from
// 0: every current receipt of the rooms up to to). Only the latest receipt
// per (user, room, type, thread) is kept, so a later change replaces an
// earlier one. m.read.private receipts are included only for forUser. A
// receipt changed again after to is left out: it is reported by the next
// call, from to.
func (n *Node) ReceiptsSince(ctx context.Context, forUser string, roomIDs []string, from, to uint64) (map[string]json.RawMessage, error) {
	contents := map[string]receiptContent{}
	add := func(ref receiptRef, rec receiptRecord) {
		if ref.Type == ReceiptReadPrivate && ref.UserID != forUser {
			return
		}
		c := contents[ref.RoomID]
		if c == nil {
			c = receiptContent{}
			contents[ref.RoomID] = c
		}
		c.add(ref, rec)
	}
	if to <= from || len(roomIDs) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	err := n.DB.View(func(tx *kv.Txn) error {
		if from == 0 {
			// Everything: read each room's current receipts directly.
			for _, roomID := range roomIDs {
				err := tx.Each(kv.Scan{Prefix: receiptRoomPrefix(roomID)}, func(k, v []byte) (bool, error) {
					ref, err := decodeReceiptKey(k)
					if err != nil {
						return false, err
					}
					var rec receiptRecord
					if err := core.DecodeJSON(v, &rec); err != nil {
						return false, err
					}
					if rec.Pos <= to {
						add(ref, rec)
					}
					return true, nil
				})
				if err != nil {
					return err
				}
			}
			return nil
		}
		wanted := make(map[string]bool, len(roomIDs))
		for _, r := range roomIDs {
			wanted[r] = true
		}
		scan := kv.Scan{Prefix: kv.Key(tReceiptStream), From: receiptStreamKey(from + 1)}
		return tx.Each(scan, func(k, v []byte) (bool, error) {
			pos, err := kv.LastUint(k)
			if err != nil {
				return false, err
			}
			if pos > to {
				return false, nil
			}
			var ref receiptRef
			if err := core.DecodeJSON(v, &ref); err != nil {
				return false, err
			}
			if !wanted[ref.RoomID] {
				return true, nil
			}
			var rec receiptRecord
			if err := tx.GetJSON(receiptKey(ref.RoomID, ref.UserID, ref.Type, ref.ThreadID), &rec); err != nil {
				return false, fmt.Errorf("receipt index %d: %w", pos, err)
			}
			add(ref, rec)
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage, len(contents))
	for roomID, c := range contents {
		b, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		out[roomID] = b
	}
	return out, nil
}

// decodeReceiptKey reads (room, user, type, thread) back from a receipt key.
func decodeReceiptKey(k []byte) (receiptRef, error) {
	_, parts, err := kv.DecodeKey(k)
	if err != nil {
		return receiptRef{}, err
	}
	if len(parts) != 4 {
		return receiptRef{}, fmt.Errorf("receipt key: %d parts", len(parts))
	}
	var s [4]string
	for i, p := range parts {
		v, ok := p.(string)
		if !ok {
			return receiptRef{}, fmt.Errorf("receipt key: part %d not a string", i)
		}
		s[i] = v
	}
	return receiptRef{RoomID: s[0], UserID: s[1], Type: s[2], ThreadID: s[3]}, nil
}
