package push

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Unread counts per thread, as /sync reports them in
// unread_thread_notifications when the filter asks for them.
//
// Beside the room's record (unread.go), which counts the whole room and
// stays what /sync reports without the filter flag, each local user has one
// record per thread of a room with something unread in it: "main" for the
// main timeline (every event not in a thread, thread roots included), a
// thread root's event ID for its replies. An event counts in its own
// thread's record only. The records are kept as the room's are:
//
//   - the room commit adds each notifying event to its thread's record;
//   - a user's own event resets the record of its thread (their own
//     membership event resets them all);
//   - any read receipt of the user's recounts all their records of the room
//     (RecountThreadUnread): an unthreaded receipt marks every thread read up
//     to it, a threaded one (thread_id "main" or a root) only its thread.
//
// A user tracks at most MaxUnreadThreads threads per room besides "main":
// a new thread over the limit drops the thread whose latest counted event is
// oldest, so a very busy room reports its newest threads only.

// ThreadMain is the thread ID of the main timeline.
const ThreadMain = "main"

// MaxUnreadThreads bounds the threads, besides the main timeline, whose
// counts a user has kept in one room.
const MaxUnreadThreads = 50

// tUnreadThread holds the per-thread records: local user ID, room ID,
// thread ID ("main" or a root's event ID) -> threadRecord, binary.
const tUnreadThread = "unreadthread"

func unreadThreadKey(userID, roomID, threadID string) []byte {
	return kv.Key(tUnreadThread, userID, roomID, threadID)
}

func unreadThreadPrefix(userID, roomID string) []byte {
	return kv.Key(tUnreadThread, userID, roomID)
}

// threadRecord is a user's unread counts in one thread of a room, with the
// stream position of the latest event counted (which thread to drop first).
type threadRecord struct {
	unreadRecord
	Last uint64
}

func (r threadRecord) encode() []byte {
	return binary.AppendUvarint(r.unreadRecord.encode(), r.Last)
}

func decodeThreadRecord(b []byte) (threadRecord, error) {
	notify, n1 := binary.Uvarint(b)
	highlight, n2 := binary.Uvarint(b[max(n1, 0):])
	last, n3 := binary.Uvarint(b[max(n1, 0)+max(n2, 0):])
	if n1 <= 0 || n2 <= 0 || n3 <= 0 || n1+n2+n3 != len(b) {
		return threadRecord{}, fmt.Errorf("malformed unread thread record %x", b)
	}
	return threadRecord{unreadRecord{Notify: int(notify), Highlight: int(highlight)}, last}, nil
}

// ThreadUnreadCounts returns userID's unread counts in each thread of
// roomID with something unread, "main" (ThreadMain) for the main timeline:
// thread ID -> {notify, highlight}. A plain array rather than a type of this
// package, so the sync API reads it without importing push.
func (n *Push) ThreadUnreadCounts(ctx context.Context, userID, roomID string) (map[string][2]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out map[string][2]int
	err := n.DB.View(func(tx *kv.Txn) error {
		var err error
		out, err = LoadThreadUnread(tx, userID, roomID)
		return err
	})
	return out, err
}

// LoadThreadUnread reads userID's per-thread counts for roomID in tx, as
// ThreadUnreadCounts does: for a caller that must see its own writes.
func LoadThreadUnread(tx *kv.Txn, userID, roomID string) (map[string][2]int, error) {
	recs, err := loadThreadRecords(tx, userID, roomID)
	out := make(map[string][2]int, len(recs))
	for id, r := range recs {
		out[id] = [2]int{r.Notify, r.Highlight}
	}
	return out, err
}

// loadThreadRecords reads all of userID's thread records for roomID.
func loadThreadRecords(tx *kv.Txn, userID, roomID string) (map[string]threadRecord, error) {
	out := map[string]threadRecord{}
	err := tx.Each(kv.Scan{Prefix: unreadThreadPrefix(userID, roomID)}, func(k, v []byte) (bool, error) {
		id, err := kv.LastString(k)
		if err != nil {
			return false, err
		}
		r, err := decodeThreadRecord(v)
		if err != nil {
			return false, err
		}
		out[id] = r
		return true, nil
	})
	return out, err
}

// threadOf is the thread an event's content puts it in: the root of an
// m.thread relation, else the main timeline.
func threadOf(ev *pushEvent) string {
	rel, _ := ev.content["m.relates_to"].(map[string]any)
	if rel == nil || rel["rel_type"] != "m.thread" {
		return ThreadMain
	}
	if root, _ := rel["event_id"].(string); root != "" {
		return root
	}
	return ThreadMain
}

// threadOfPDU is threadOf for an event not parsed yet: content without the
// string "m.thread" (canonical JSON escapes no ASCII letter) is not parsed,
// so a sender's own plain message costs no decoding.
func threadOfPDU(pdu gomatrixserverlib.PDU) string {
	if !bytes.Contains(pdu.Content(), []byte(`"m.thread"`)) {
		return ThreadMain
	}
	return threadOf(newPushEvent(pdu))
}

// threadCounts is one user's thread records while a commit updates them.
// A record is read by its key when first needed; all of them (one scan)
// only when a new thread must be bounded or a membership event resets
// them, so the usual notifying event costs one Get, as the room's record.
type threadCounts struct {
	userID, roomID string
	// recs holds the records read or changed (a zero record: none);
	// stored what the database held for them.
	recs, stored map[string]threadRecord
	all          bool // every stored record is in recs
}

func newThreadCounts(userID, roomID string) *threadCounts {
	return &threadCounts{userID: userID, roomID: roomID, recs: map[string]threadRecord{}, stored: map[string]threadRecord{}}
}

// get returns the record of thread, reading it if it was not yet.
func (t *threadCounts) get(tx *kv.Txn, thread string) (threadRecord, error) {
	if r, ok := t.recs[thread]; ok || t.all {
		return r, nil
	}
	b, err := tx.Get(unreadThreadKey(t.userID, t.roomID, thread))
	if errors.Is(err, kv.ErrNotFound) {
		t.recs[thread] = threadRecord{}
		return threadRecord{}, nil
	}
	if err != nil {
		return threadRecord{}, err
	}
	r, err := decodeThreadRecord(b)
	if err != nil {
		return threadRecord{}, err
	}
	t.recs[thread], t.stored[thread] = r, r
	return r, nil
}

// loadAll reads every stored record not yet read.
func (t *threadCounts) loadAll(tx *kv.Txn) error {
	if t.all {
		return nil
	}
	recs, err := loadThreadRecords(tx, t.userID, t.roomID)
	if err != nil {
		return err
	}
	for id, r := range recs {
		if _, ok := t.recs[id]; !ok {
			t.recs[id] = r
		}
		t.stored[id] = r
	}
	t.all = true
	return nil
}

// add counts one notifying event at pos in thread.
func (t *threadCounts) add(tx *kv.Txn, thread string, pos uint64, highlight bool) error {
	r, err := t.get(tx, thread)
	if err != nil {
		return err
	}
	if r.unreadRecord == (unreadRecord{}) && thread != ThreadMain {
		if err := t.loadAll(tx); err != nil {
			return err
		}
		t.bound()
	}
	r.Notify++
	if highlight {
		r.Highlight++
	}
	r.Last = max(r.Last, pos)
	t.recs[thread] = r
	return nil
}

// bound drops the oldest threads until there is room for one more. All
// records must have been read.
func (t *threadCounts) bound() {
	for {
		oldest, n := "", 0
		for id, r := range t.recs {
			if id == ThreadMain || r.unreadRecord == (unreadRecord{}) {
				continue
			}
			n++
			if oldest == "" || r.Last < t.recs[oldest].Last {
				oldest = id
			}
		}
		if n < MaxUnreadThreads {
			return
		}
		t.recs[oldest] = threadRecord{}
	}
}

// store writes the records that changed, deleting the zero ones.
func (t *threadCounts) store(tx *kv.Txn) error {
	for id, r := range t.recs {
		old, had := t.stored[id]
		switch {
		case r.unreadRecord == (unreadRecord{}):
			if had {
				if err := tx.Delete(unreadThreadKey(t.userID, t.roomID, id)); err != nil {
					return err
				}
			}
		case !had || old != r:
			if err := tx.Set(unreadThreadKey(t.userID, t.roomID, id), r.encode()); err != nil {
				return err
			}
		}
	}
	return nil
}

// reset zeroes every record (all must have been read).
func (t *threadCounts) reset() {
	for id := range t.recs {
		t.recs[id] = threadRecord{}
	}
}

// ownEvent resets the user's records for their own event: its thread, or
// every thread for their membership event (a join starts afresh).
func (t *threadCounts) ownEvent(tx *kv.Txn, pdu gomatrixserverlib.PDU, thread string) error {
	if pdu.Type() == spec.MRoomMember {
		if err := t.loadAll(tx); err != nil {
			return err
		}
		t.reset()
		return nil
	}
	if _, err := t.get(tx, thread); err != nil {
		return err
	}
	t.recs[thread] = threadRecord{}
	return nil
}

// resetLeftThreads drops the thread records of a local user whom a
// membership event (a kick or ban, or their own leave) leaves out of the
// room's local members after the batch, as the commit deletes their room
// record. members is the room's local membership after the batch.
func (n *Push) resetLeftThreads(tx *kv.Txn, pdu gomatrixserverlib.PDU, members map[string]string, threadsOf func(string) *threadCounts) error {
	sk := pdu.StateKey()
	if pdu.Type() != spec.MRoomMember || sk == nil || !n.IsLocalUser(*sk) {
		return nil
	}
	if _, in := members[*sk]; in {
		return nil
	}
	t := threadsOf(*sk)
	if err := t.loadAll(tx); err != nil {
		return err
	}
	t.reset()
	return nil
}

// ThreadMarks says how far a user has read a room, for
// RecountThreadUnread: All from their unthreaded read receipts, and per
// thread ID ("main" or a root) from their receipts for that thread.
type ThreadMarks struct {
	All     uint64
	Threads map[string]uint64
}

// RecountThreadUnread recomputes all of userID's thread records for roomID
// in tx from marks: the events after the mark of their thread up to the
// newest, stopping at the user's own event in that thread, after
// UnreadRecountCap events, and at MaxUnreadThreads threads (the newest).
// The caller holds the room's lock.
func (n *Push) RecountThreadUnread(tx *kv.Txn, roomID, userID string, marks ThreadMarks) error {
	old := newThreadCounts(userID, roomID)
	if err := old.loadAll(tx); err != nil {
		return err
	}
	old.reset()
	var m core.MembershipRecord
	if err := tx.GetJSON(core.MembershipKey(userID, roomID), &m); err != nil && !errors.Is(err, kv.ErrNotFound) {
		return err
	}
	if m.Membership != spec.Join {
		return old.store(tx)
	}
	from := max(m.Pos, marks.All)
	read := map[string]uint64{}
	for id, p := range marks.Threads {
		read[id] = p
	}
	look := &pushLookup{load: func(id string) (gomatrixserverlib.PDU, error) { return n.LoadPDU(tx, id) }}
	ur, err := n.userRules(tx, userID)
	if err != nil {
		return err
	}
	threads := 0
	err = n.eachRecent(tx, roomID, from, func(pos uint64, pdu gomatrixserverlib.PDU, stateID string) (bool, error) {
		ev := newPushEvent(pdu)
		thread := threadOf(ev)
		if pos <= read[thread] {
			return true, nil
		}
		sender := string(pdu.SenderID())
		if sender == userID {
			read[thread] = pos // their own event: this thread is read up to here
			return true, nil
		}
		r := old.recs[thread]
		tracked := r.unreadRecord != (unreadRecord{})
		if !tracked && thread != ThreadMain {
			if threads >= MaxUnreadThreads {
				return true, nil // an older thread than those kept
			}
		}
		state := func() (*core.State, error) { return n.States.Read(tx, stateID) }
		verdict := ur.eval(ev, userID, look.context(state, sender))
		if look.err != nil {
			return false, look.err
		}
		if !verdict.Notify {
			return true, nil
		}
		if !tracked && thread != ThreadMain {
			threads++
		}
		r.Notify++
		if verdict.Highlight {
			r.Highlight++
		}
		r.Last = max(r.Last, pos)
		old.recs[thread] = r
		return true, nil
	})
	if err != nil {
		return err
	}
	return old.store(tx)
}
