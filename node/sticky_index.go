package node

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// stickyRecord is the value of tSticky (and tStickySoft) entries: enough to
// order, expire and filter a sticky event without loading it.
type stickyRecord struct {
	RoomID  string `json:"r"`
	EventID string `json:"e"`
	Sender  string `json:"s"`
	EndMS   int64  `json:"end"`
	// Pos is the event's own stream position.
	Pos uint64 `json:"p"`
}

// stickyBacklog is the value of a tStickyUser entry: one join's backlog.
// It stands for the sticky positions First..First+len(Positions)-1 (First
// is the position in its key), the i-th being the room's tSticky entry at
// Positions[i]. So a join costs one small write however many sticky events
// the room holds (8 bytes each), and the backlog still pages one event at a
// time. Entries it names that expire are swept from tSticky and skipped;
// the entry itself goes when the last of them expires (EndMS).
type stickyBacklog struct {
	RoomID    string
	EndMS     int64
	Positions []uint64
}

// marshal encodes the backlog: end, then the positions, then the room ID.
func (bl *stickyBacklog) marshal() []byte {
	b := make([]byte, 0, 12+8*len(bl.Positions)+len(bl.RoomID))
	b = binary.BigEndian.AppendUint64(b, uint64(bl.EndMS))
	b = binary.BigEndian.AppendUint32(b, uint32(len(bl.Positions)))
	for _, p := range bl.Positions {
		b = binary.BigEndian.AppendUint64(b, p)
	}
	return append(b, bl.RoomID...)
}

func (bl *stickyBacklog) unmarshal(b []byte) error {
	if len(b) < 12 {
		return errors.New("sticky backlog: short record")
	}
	bl.EndMS = int64(binary.BigEndian.Uint64(b))
	n := int(binary.BigEndian.Uint32(b[8:]))
	b = b[12:]
	if len(b) < 8*n {
		return errors.New("sticky backlog: short record")
	}
	bl.Positions = make([]uint64, n)
	for i := range bl.Positions {
		bl.Positions[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	bl.RoomID = string(b[8*n:])
	return nil
}

// stickyPlan is what a batch's commit writes for sticky events, worked out
// before the commit because backlog entries need stream positions, and
// Stream.Commit must know how many up front.
type stickyPlan struct {
	nowMS int64
	// events are the batch's accepted, still sticky events, with their ends.
	events []*core.PendingEvent
	ends   map[*core.PendingEvent]int64
	// joins are the local users whose membership becomes join in this
	// batch, with their join event.
	joins []stickyJoin
	// stored are the positions of the room's unexpired sticky events already
	// stored, oldest first, and the latest of their ends: every joiner's
	// backlog starts with them.
	stored    []uint64
	storedEnd int64
	// softFailed are the batch's soft-failed, still sticky events, kept in
	// tStickySoft to be re-evaluated (sticky_softfail.go).
	softFailed []*core.PendingEvent
	// revive are stored soft-failed sticky events whose sender joined in
	// this batch and which pass auth against the new current state.
	revive []stickyRecord
	// push queues this server's unexpired sticky events for servers whose
	// first member joins in this batch (sticky_fed.go).
	push stickyPush
	// reserve is how many stream positions revived events, the backlogs
	// and the push may use (at most: unused ones are gaps, which the stream tolerates).
	reserve int
}

type stickyJoin struct {
	userID, eventID string
}

// stickyIndexer keeps the sticky indexes (MSC4354) in the room commit:
// prepareSticky before the transaction (backlogs and the push to newly
// joined servers need stream positions of their own), writeSticky in it.
//
// Unlike the other indexers it reaches into the batch (RoomCommit.b): a
// soft-failed sticky event that becomes valid is revived by the commit,
// which writes the room's timeline, stream entry and event record (core
// keys) and checks auth against the batch's state. It can move out of the
// room core once the core offers such a revival itself.
type stickyIndexer struct{ n *Node }

// Prepare works out the batch's sticky writes (prepareSticky).
func (stickyIndexer) Prepare(c *core.RoomCommit) (core.IndexPlan, error) {
	plan, err := prepareSticky(c.Batch)
	if err != nil {
		return core.IndexPlan{}, err
	}
	return core.IndexPlan{Positions: plan.reserve, Data: plan}, nil
}

// Index writes them from the first reserved position; after the commit the
// sender hears of the pushed events and the sweeper of the new entries.
func (x stickyIndexer) Index(tx *kv.Txn, c *core.RoomCommit, ip core.IndexPlan) (func(), error) {
	plan := ip.Data.(*stickyPlan)
	wrote, err := writeSticky(c.Batch, tx, plan, ip.First)
	if err != nil {
		return nil, err
	}
	dests := plan.push.notify()
	if !wrote && len(dests) == 0 {
		return nil, nil
	}
	return func() {
		x.n.fedQueued(dests) // new joiners' sticky events (sticky_fed.go)
		if wrote {
			x.n.sticky.poke()
		}
	}, nil
}

// prepareSticky works out the batch's sticky writes. It reads the database
// only when the room's state changed, and the room's sticky index only when
// a local user joins.
func prepareSticky(b *core.Batch) (*stickyPlan, error) {
	plan := &stickyPlan{nowMS: b.Node.Now().UnixMilli(), ends: map[*core.PendingEvent]int64{}}
	for _, p := range b.Events {
		if !p.Accepted && !p.Record.SoftFailed {
			continue
		}
		if end, ok := core.StickyEndOf(p.PDU, plan.nowMS); ok && end > plan.nowMS {
			if p.Accepted {
				plan.events = append(plan.events, p)
			} else {
				plan.softFailed = append(plan.softFailed, p)
			}
			plan.ends[p] = end
		}
	}
	if b.Room == nil || b.Start.ID() == b.Current.ID() {
		return plan, nil // no state change: nobody joined
	}
	err := b.Node.DB.View(func(tx *kv.Txn) error {
		var err error
		var joined []string // everyone who joined, local or not
		core.DiffState(b.Start, b.Current, func(k core.StateKey, oldID, newID string) {
			if err != nil || k.EventType != spec.MRoomMember || newID == "" {
				return
			}
			var now, was string
			if now, err = b.MembershipOf(tx, newID); err != nil || now != spec.Join {
				return
			}
			if was, err = b.MembershipOf(tx, oldID); err != nil || was == spec.Join {
				return
			}
			joined = append(joined, k.StateKey)
			if b.Node.IsLocalUser(k.StateKey) {
				plan.joins = append(plan.joins, stickyJoin{userID: k.StateKey, eventID: newID})
			} else {
				err = noteJoiner(b, tx, &plan.push, k.StateKey)
			}
		})
		if err != nil {
			return err
		}
		for _, u := range joined {
			if err := planRevive(b, tx, plan, u); err != nil {
				return err
			}
		}
		if len(plan.joins) == 0 && len(plan.push.dests) == 0 {
			return nil
		}
		return tx.Each(kv.Scan{Prefix: stickyRoomPrefix(b.RoomID)}, func(_, v []byte) (bool, error) {
			var rec stickyRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return false, fmt.Errorf("sticky index: %w", err)
			}
			if rec.EndMS > plan.nowMS && len(plan.joins) > 0 {
				plan.stored = append(plan.stored, rec.Pos)
				plan.storedEnd = max(plan.storedEnd, rec.EndMS)
			}
			noteOwnSticky(b, &plan.push, rec, plan.nowMS)
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	// Revived events are numbered after every event of the batch, so after
	// any join in it: joiners get them through tSticky, not the backlog.
	plan.reserve = len(plan.revive) + len(plan.joins)*(len(plan.stored)+len(plan.events)) + plan.push.size()
	return plan, nil
}

// writeSticky indexes the batch's sticky events and writes each joiner's
// backlog, numbering backlog entries from next (the first of the positions
// plan.reserve reserved, after the batch's events). It reports whether it wrote anything.
func writeSticky(b *core.Batch, tx *kv.Txn, plan *stickyPlan, next uint64) (bool, error) {
	wrote := false
	last := next + uint64(plan.reserve)
	for _, p := range plan.softFailed {
		if err := writeSoftFailedSticky(b, tx, p, plan.ends[p]); err != nil {
			return false, err
		}
		wrote = true
	}
	// Revived events take the first reserved positions, before any
	// backlog: a joiner in this batch gets them through tSticky.
	for _, rec := range plan.revive {
		if err := reviveSticky(b, tx, rec, next); err != nil {
			return false, err
		}
		next++
		wrote = true
	}
	for _, p := range plan.events {
		rec := stickyRecord{RoomID: b.RoomID, EventID: p.PDU.EventID(), Sender: string(p.PDU.SenderID()), EndMS: plan.ends[p], Pos: p.Record.Pos}
		if err := setSticky(tx, stickyKey(b.RoomID, rec.Pos), rec, stickyExpiryKey(rec.EndMS, stickyKindRoom, b.RoomID, rec.Pos)); err != nil {
			return false, err
		}
		wrote = true
	}
	for _, j := range plan.joins {
		joinPos, err := batchEventPos(b, tx, j.eventID)
		if err != nil {
			return false, err
		}
		if err := tx.Set(stickyJoinKey(j.userID, b.RoomID), binary.BigEndian.AppendUint64(nil, joinPos)); err != nil {
			return false, err
		}
		if err := dropBacklog(tx, j.userID, b.RoomID); err != nil {
			return false, err
		}
		bl := stickyBacklog{RoomID: b.RoomID, EndMS: plan.storedEnd, Positions: slices.Clone(plan.stored)}
		for _, p := range plan.events {
			if p.Record.Pos < joinPos { // later ones reach the joiner through tSticky
				bl.Positions = append(bl.Positions, p.Record.Pos)
				bl.EndMS = max(bl.EndMS, plan.ends[p])
			}
		}
		if len(bl.Positions) == 0 {
			continue
		}
		if next+uint64(len(bl.Positions)) > last {
			return false, fmt.Errorf("sticky backlog of %s: more entries than reserved positions", j.userID)
		}
		if err := tx.Set(stickyUserKey(j.userID, next), bl.marshal()); err != nil {
			return false, err
		}
		if err := tx.Set(stickyExpiryKey(bl.EndMS, stickyKindUser, j.userID, next), nil); err != nil {
			return false, err
		}
		next += uint64(len(bl.Positions))
		wrote = true
	}
	// The push comes last: after the join and the rest of the batch in
	// each destination's queue.
	if _, err := writeStickyPush(tx, &plan.push, next, last); err != nil {
		return false, err
	}
	return wrote, nil
}

// dropBacklog deletes what is left of the user's backlog of an earlier join
// to the room: the new backlog holds those events again, and a client that
// had neither would otherwise get them twice.
func dropBacklog(tx *kv.Txn, userID, roomID string) error {
	_, err := tx.DeleteEach(kv.Scan{Prefix: stickyUserPrefix(userID)}, func(k, v []byte, del func([]byte)) (bool, error) {
		var bl stickyBacklog
		if err := bl.unmarshal(v); err != nil {
			return false, err
		}
		if bl.RoomID == roomID {
			pos, err := kv.LastUint(k)
			if err != nil {
				return false, err
			}
			del(stickyUserKey(userID, pos))
			del(stickyExpiryKey(bl.EndMS, stickyKindUser, userID, pos))
		}
		return true, nil
	})
	return err
}

// setSticky writes an index entry and its expiry entry.
func setSticky(tx *kv.Txn, key []byte, rec stickyRecord, expiryKey []byte) error {
	if err := tx.SetJSON(key, rec); err != nil {
		return err
	}
	return tx.Set(expiryKey, nil)
}

// batchEventPos is the stream position of an event of the batch or stored.
func batchEventPos(b *core.Batch, tx *kv.Txn, eventID string) (uint64, error) {
	if p, ok := b.ByID[eventID]; ok {
		return p.Record.Pos, nil
	}
	rec, err := core.LoadEventRecord(tx, eventID)
	if err != nil {
		return 0, err
	}
	return rec.Pos, nil
}

// stickyJoinPos decodes a tStickyJoin value.
func stickyJoinPos(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("sticky join marker: %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
