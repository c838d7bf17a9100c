package push

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Unread notification counts, as /sync reports them in unread_notifications.
//
// Each local user has one small record per room (core.TableUnread) holding
// how many events since their read receipt notify them, and how many of
// those also highlight, by the user's push rules. The record is
// kept up to date where things change, as Synapse keeps its push actions, so
// reading it is one key lookup and /sync never walks history for it:
//
//   - a room batch's commit adds the batch's events for every local joined
//     member but the sender (and an invite for its local invitee), in the
//     commit's own transaction;
//   - a user's own event means they have read everything before it, so it
//     resets their record (Synapse does the same);
//   - a read receipt (m.read or m.read.private, unthreaded or for the main
//     timeline) moving forward recounts the room from the receipt to the
//     newest event, in the receipt's transaction (at most UnreadRecountCap
//     events);
//   - leaving the room (or being kicked or banned) deletes the record, so
//     records exist only for rooms the user is in.
//
// A record of zero counts is not stored: absent means zero.
//
// The counts cover the whole room, threads included, by each user's own
// push rules (userrules.go); events from users the reader ignores are
// counted too. The counts per thread are kept beside them
// (unread_threads.go).

// UnreadRecountCap bounds how many events a receipt's recount reads,
// newest first. A user who receipts an event more than this many events
// back is told a count of at most this many; the cap keeps a receipt's
// transaction (which holds the room's input lock) short, and a client that
// far behind shows "lots" either way.
const UnreadRecountCap = 1000

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
// highlight, by the user's push rules. Both are 0 for rooms the user is
// not in; in a room they are invited to, the invite is one notification.
func (n *Push) UnreadCounts(ctx context.Context, userID, roomID string) (notify, highlight int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	err = n.DB.View(func(tx *kv.Txn) error {
		notify, highlight, err = LoadUnread(tx, userID, roomID)
		return err
	})
	return notify, highlight, err
}

// LoadUnread reads userID's counts for roomID in tx, as UnreadCounts does:
// for a caller that must see its own transaction's writes.
func LoadUnread(tx *kv.Txn, userID, roomID string) (notify, highlight int, err error) {
	rec, err := loadUnreadKey(tx, core.UnreadKey(userID, roomID))
	return rec.Notify, rec.Highlight, err
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

// UnreadIndexer keeps the local members' unread counts (countUnread) in
// the room commit's transaction.
type UnreadIndexer struct {
	core.NoPrepare
	Push *Push
}

// Index counts the batch's events and writes the notifications index; once
// the commit is durable, the events that notify a user with pushers go to
// the pusher queue (the notifier wakes the members).
func (x UnreadIndexer) Index(tx *kv.Txn, c *core.RoomCommit, _ core.IndexPlan) (func(), error) {
	jobs, err := x.Push.countUnread(tx, c)
	if err != nil || len(jobs) == 0 {
		return nil, err
	}
	return func() { x.Push.pushers.enqueue(jobs) }, nil
}

// countUnread applies the batch's accepted events, in order, to the records
// of the room's local members, by each member's push rules, and writes their
// notifications. c.Members is the room's local membership after the batch
// (user ID -> "join" or "invite"), as writeMemberships found it. Membership
// at the end of the batch is the right one to use: a member who joined or
// left within it did so by their own event, which resets their count
// anyway, or was kicked, which deletes their record. It returns the
// notifications for users with pushers.
func (n *Push) countUnread(tx *kv.Txn, c *core.RoomCommit) ([]pushJob, error) {
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
	threads := map[string]*threadCounts{} // per-thread records (unread_threads.go)
	threadsOf := func(userID string) *threadCounts {
		if t, ok := threads[userID]; ok {
			return t
		}
		t := newThreadCounts(userID, c.RoomID)
		threads[userID] = t
		return t
	}
	rules := map[string]*compiledRules{} // the batch's users' rules, read once
	notifs := map[string][]pendingNotif{}
	var jobs []pushJob
	now := n.now().UnixMilli()
	look := &pushLookup{load: func(id string) (gomatrixserverlib.PDU, error) { return c.Event(tx, id) }}
	for _, ce := range c.Events {
		sender := string(ce.PDU.SenderID())
		// Parsed once, for the first member who needs it: most events of a
		// room with no other local member are never looked at.
		var ev *pushEvent
		var pc pushContext
		var pcSet bool
		if n.IsLocalUser(sender) {
			e, err := entry(sender)
			if err != nil {
				return nil, err
			}
			e.rec = unreadRecord{}
			if err := threadsOf(sender).ownEvent(tx, ce.PDU, threadOfPDU(ce.PDU)); err != nil {
				return nil, err
			}
		}
		if err := n.resetLeftThreads(tx, ce.PDU, c.Members, threadsOf); err != nil {
			return nil, err
		}
		for userID, m := range c.Members {
			if !pushRecipient(ce.PDU, userID, m, sender) { // rules.go
				continue
			}
			if !pcSet {
				if ev == nil {
					ev = newPushEvent(ce.PDU)
				}
				state := ce.State // the room's state as of the event
				pc, pcSet = look.context(func() (*core.State, error) { return state, nil }, sender), true
			}
			ur, ok := rules[userID]
			if !ok {
				var err error
				if ur, err = n.userRules(tx, userID); err != nil {
					return nil, err
				}
				rules[userID] = ur
			}
			v := ur.eval(ev, userID, pc)
			if look.err != nil {
				return nil, look.err
			}
			if !v.Notify {
				continue
			}
			e, err := entry(userID)
			if err != nil {
				return nil, err
			}
			e.rec.Notify++
			if v.Highlight {
				e.rec.Highlight++
			}
			if err := threadsOf(userID).add(tx, threadOf(ev), ce.Pos, v.Highlight); err != nil {
				return nil, err
			}
			notifs[userID] = append(notifs[userID], pendingNotif{pos: ce.Pos, rec: notifRecord{
				RoomID: c.RoomID, EventID: ce.PDU.EventID(), Highlight: v.Highlight, Actions: v.Actions, TS: now}})
			if n.pushers.has(userID) {
				jobs = append(jobs, pushJob{userID: userID, pdu: ce.PDU, state: ce.State, verdict: v})
			}
		}
	}
	for _, e := range entries {
		if e.rec == e.stored {
			continue // the common case of a sender with nothing unread
		}
		if err := storeUnread(tx, e.key, e.rec); err != nil {
			return nil, err
		}
	}
	for _, t := range threads {
		if err := t.store(tx); err != nil {
			return nil, err
		}
	}
	for userID, ns := range notifs {
		if err := writeNotifications(tx, userID, ns); err != nil {
			return nil, err
		}
	}
	return jobs, nil
}

// RecountUnread recomputes userID's record for roomID in tx: the events
// after readUpTo up to the newest, stopping early at the user's own latest
// event and after UnreadRecountCap events. readUpTo is the stream position
// of the latest event the user's read receipts mark read (0 for none): the
// receipts code, which calls this when such a receipt moves on, knows which
// receipts count. The caller holds the room's lock.
func (n *Push) RecountUnread(tx *kv.Txn, roomID, userID string, readUpTo uint64) error {
	var m core.MembershipRecord
	if err := tx.GetJSON(core.MembershipKey(userID, roomID), &m); err != nil && !errors.Is(err, kv.ErrNotFound) {
		return err
	}
	if m.Membership != spec.Join {
		return tx.Delete(core.UnreadKey(userID, roomID))
	}
	// Nothing before the user's own membership event counts: it is theirs
	// (a join, or a profile change), so they had read up to it.
	from := max(m.Pos, readUpTo)
	look := &pushLookup{load: func(id string) (gomatrixserverlib.PDU, error) { return n.LoadPDU(tx, id) }}
	ur, err := n.userRules(tx, userID)
	if err != nil {
		return err
	}
	var rec unreadRecord
	err = n.eachRecent(tx, roomID, from, func(_ uint64, pdu gomatrixserverlib.PDU, stateID string) (bool, error) {
		sender := string(pdu.SenderID())
		if sender == userID {
			return false, nil // their own event: read up to here
		}
		// The state stored with the timeline entry is the room's state as of
		// the event, the same state the commit counted it with.
		state := func() (*core.State, error) { return n.States.Read(tx, stateID) }
		verdict := ur.eval(newPushEvent(pdu), userID, look.context(state, sender))
		if look.err != nil {
			return false, look.err
		}
		if verdict.Notify {
			rec.Notify++
			if verdict.Highlight {
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

// eachRecent calls fn for the events of roomID's timeline after position
// from, newest first, at most UnreadRecountCap of them, with the snapshot
// stored with each (the room's state as of the event, the state the commit
// counted it with), until fn returns false.
func (n *Push) eachRecent(tx *kv.Txn, roomID string, from uint64, fn func(pos uint64, pdu gomatrixserverlib.PDU, stateID string) (bool, error)) error {
	scanned := 0
	return tx.Each(kv.Scan{Prefix: core.RoomStreamPrefix(roomID), Reverse: true}, func(k, v []byte) (bool, error) {
		pos, err := kv.LastUint(k)
		if err != nil {
			return false, err
		}
		if pos <= from || scanned >= UnreadRecountCap {
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
		return fn(pos, pdu, stateID)
	})
}
