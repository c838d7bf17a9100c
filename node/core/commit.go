package core

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// StreamEntry is the global event stream's value: which event, which room.
type StreamEntry struct {
	RoomID  string `json:"r"`
	EventID string `json:"e"`
}

// noteRedaction marks an accepted redaction to be applied to its target's
// stored content at commit, if the redacter may do so: the target's own
// sender, or a user with the room's redact power level.
func (b *Batch) noteRedaction(p *PendingEvent, before *State) {
	targetID := p.PDU.Redacts()
	target, err := b.PDU(targetID)
	if err != nil || target.RoomID().String() != b.RoomID {
		return // unknown target: nothing to apply now
	}
	if target.SenderID() != p.PDU.SenderID() {
		plID, ok := before.Get(spec.MRoomPowerLevels, "")
		if !ok {
			return
		}
		plEv, err := b.PDU(plID)
		if err != nil {
			return
		}
		pl, err := plEv.PowerLevels()
		if err != nil || pl.UserLevel(p.PDU.SenderID()) < pl.Redact {
			return
		}
	}
	p.redactTarget = targetID
}

// commit writes every event input in the batch, the snapshots they need, the
// room head, the stream and membership indexes and any redactions, and has
// every registered indexer (indexer.go) write its keys, all in one
// transaction, giving each accepted event the next stream position. What
// the indexers do after the commit runs once it is durable.
func (b *Batch) commit() error {
	if len(b.Events) == 0 {
		return nil
	}
	if len(b.Extra) == 0 && !slices.ContainsFunc(b.Events, func(p *PendingEvent) bool { return p.Record.Rejected == "" }) {
		// Only rejected events: nothing to write (rejectedmarks.go).
		for _, p := range b.Events {
			b.Node.noteRejected(p.PDU.EventID(), b.RoomID, p.Record.Rejected)
		}
		return nil
	}
	c := &RoomCommit{RoomID: b.RoomID, Start: b.Start, Current: b.Current, Batch: b}
	plans, reserve, err := b.prepareIndexers(c)
	if err != nil {
		return fmt.Errorf("commit room %s: %w", b.RoomID, err)
	}
	positions := b.positions()
	c.Events = make([]CommittedEvent, 0, positions)
	w := &commitWrites{redacted: map[string]string{}, replaced: map[string]int{}, after: make([]func(), 0, len(plans))}
	_, err = b.Node.Stream.Commit(positions+reserve, func(tx *kv.Txn, first uint64) error {
		return b.write(tx, first, c, plans, w)
	})
	if err != nil {
		return fmt.Errorf("commit room %s: %w", b.RoomID, err)
	}
	b.afterCommit(w)
	return nil
}

// commitWrites is what a commit's transaction wrote that the node's
// memory must learn of once it is durable.
type commitWrites struct {
	written  []*State          // snapshots written
	redacted map[string]string // redacted target -> redaction
	replaced map[string]int    // redacted target -> bytes of its old stored JSON
	after    []func()          // the indexers' actions, in their order
}

// positions is how many stream positions the batch's own events take.
func (b *Batch) positions() int {
	n := 0
	for _, p := range b.Events {
		if p.Accepted || p.Outlier {
			n++
		}
	}
	return n
}

// prepareIndexers runs every indexer's Prepare and returns their plans and
// the stream positions they reserve in all.
func (b *Batch) prepareIndexers(c *RoomCommit) ([]IndexPlan, int, error) {
	plans := make([]IndexPlan, len(b.Node.indexers))
	reserve := 0
	for i, ix := range b.Node.indexers {
		plan, err := ix.Prepare(c)
		if err != nil {
			return nil, 0, err
		}
		plans[i] = plan
		reserve += plan.Positions
	}
	return plans, reserve, nil
}

// write is the commit's transaction: the room core's writes, the
// indexers', the event records, then the batch's extra writes.
func (b *Batch) write(tx *kv.Txn, first uint64, c *RoomCommit, plans []IndexPlan, w *commitWrites) error {
	positions := map[string]uint64{}
	next, err := b.writeTimeline(tx, first, c, positions, w)
	if err != nil {
		return err
	}
	if c.BumpPos > 0 {
		if err := writeBump(tx, b.RoomID, c.BumpPos); err != nil {
			return err
		}
	}
	if b.Room == nil {
		return nil // only a rejected create event
	}
	lastPos := uint64(0) // the batch's last position, if it has any
	if next > first {
		lastPos = next - 1
	}
	if err := b.writeRoom(tx, c, positions, lastPos, w); err != nil {
		return err
	}
	for i, ix := range b.Node.indexers {
		plans[i].First = next
		next += uint64(plans[i].Positions)
		after, err := ix.Index(tx, c, plans[i])
		if err != nil {
			return err
		}
		if after != nil {
			w.after = append(w.after, after)
		}
	}
	if err := b.writeRecords(tx, w); err != nil {
		return err
	}
	for _, fn := range b.Extra {
		if err := fn(tx); err != nil {
			return err
		}
	}
	return nil
}

// writeTimeline numbers the batch's accepted events and outliers from
// first, writes the room's timeline and the global stream entries of the
// accepted ones, their transaction IDs and the state snapshots of every
// event, and notes the redactions to apply. It returns the first position
// the events did not use.
func (b *Batch) writeTimeline(tx *kv.Txn, first uint64, c *RoomCommit, positions map[string]uint64, w *commitWrites) (uint64, error) {
	pos := first
	for _, p := range b.Events {
		if p.Outlier {
			p.Record.Pos = pos
			positions[p.PDU.EventID()] = pos
			pos++
		}
		if p.Accepted {
			if err := b.writeAccepted(tx, p, pos, c); err != nil {
				return 0, err
			}
			positions[p.PDU.EventID()] = pos
			pos++
		}
		for _, st := range []*State{p.Before, p.After, p.Current} {
			if st == nil {
				continue
			}
			if _, err := b.Node.States.Write(tx, st); err != nil {
				return 0, err
			}
			w.written = append(w.written, st)
		}
		if p.redactTarget != "" {
			w.redacted[p.redactTarget] = p.PDU.EventID()
		}
	}
	return pos, nil
}

// writeAccepted gives an accepted event its position: timeline and stream
// entries, its transaction ID, and its place in c.
func (b *Batch) writeAccepted(tx *kv.Txn, p *PendingEvent, pos uint64, c *RoomCommit) error {
	p.Record.Pos = pos
	if err := tx.Set(RoomStreamKey(b.RoomID, pos), EncodeTimelineEntry(p.PDU.EventID(), p.Current.ID())); err != nil {
		return err
	}
	if err := tx.SetJSON(StreamKey(pos), StreamEntry{RoomID: b.RoomID, EventID: p.PDU.EventID()}); err != nil {
		return err
	}
	if isBump(p.PDU) {
		c.BumpPos = pos
	}
	if p.txnKey != nil {
		if err := tx.Set(p.txnKey, []byte(p.PDU.EventID())); err != nil {
			return err
		}
	}
	c.Events = append(c.Events, CommittedEvent{PDU: p.PDU, Pos: pos, State: p.Current})
	return nil
}

// writeRoom writes the room's current state, its record and the membership
// indexes (lastPos: the batch's last position), filling in c's members.
func (b *Batch) writeRoom(tx *kv.Txn, c *RoomCommit, positions map[string]uint64, lastPos uint64, w *commitWrites) error {
	if _, err := b.Node.States.Write(tx, b.Current); err != nil {
		return err
	}
	w.written = append(w.written, b.Current)
	if err := tx.SetJSON(RoomKey(b.RoomID), b.Room); err != nil {
		return err
	}
	return b.writeMemberships(tx, c, positions, lastPos)
}

// writeRecords applies the batch's redactions and writes its events'
// records (after the indexers, which so read a redacted event as it was).
func (b *Batch) writeRecords(tx *kv.Txn, w *commitWrites) error {
	for targetID, by := range w.redacted {
		size, err := b.applyRedaction(tx, targetID, by)
		if err != nil {
			return err
		}
		w.replaced[targetID] = size
	}
	for _, p := range b.Events {
		if p.Record.Rejected != "" {
			continue // remembered in memory only (rejectedmarks.go)
		}
		if err := WriteEvent(tx, p.PDU.EventID(), &p.Record); err != nil {
			return err
		}
	}
	return nil
}

// afterCommit brings the node's memory up to date with a durable commit,
// then runs the indexers' actions.
func (b *Batch) afterCommit(w *commitWrites) {
	n := b.Node
	for _, s := range w.written {
		n.States.MarkWritten(s)
	}
	for _, p := range b.Events {
		if p.Record.Rejected != "" {
			n.noteRejected(p.PDU.EventID(), b.RoomID, p.Record.Rejected)
			continue
		}
		n.pdus.Put(p.PDU.EventID(), p.PDU)
	}
	for targetID := range w.redacted {
		n.pdus.remove(targetID)
		n.noteValueGarbage(w.replaced[targetID]) // vloggc.go
	}
	if b.membersChanged {
		n.membersGen.Add(1)
	}
	for _, fn := range w.after {
		fn()
	}
}

// writeMemberships updates the per-user membership index, and the room's
// index of local joined and invited users, for every member key whose event
// changed between the start of the batch and now, noting each change in
// c.MemberChanges. It notes in c.Wake the local users whose membership
// changed and every local member, and in c.Members the room's local members
// after the batch (user ID -> "join" or "invite").
func (b *Batch) writeMemberships(tx *kv.Txn, c *RoomCommit, positions map[string]uint64, lastPos uint64) error {
	var err error
	DiffState(b.Start, b.Current, func(k StateKey, oldID, newID string) {
		if err != nil || k.EventType != spec.MRoomMember {
			return
		}
		b.membersChanged = true
		ch := MemberChange{UserID: k.StateKey, OldEventID: oldID, NewEventID: newID, Membership: spec.Leave, Pos: lastPos}
		if p, ok := positions[newID]; ok {
			ch.Pos = p
		}
		if newID != "" {
			var ev gomatrixserverlib.PDU
			if ev, err = c.Event(tx, newID); err != nil {
				return
			}
			if ch.Membership, err = ev.Membership(); err != nil {
				return
			}
		}
		if ch.OldMembership, err = b.MembershipOf(tx, oldID); err != nil {
			return
		}
		c.MemberChanges = append(c.MemberChanges, ch)
		err = b.writeMembership(tx, c, ch)
	})
	if err != nil {
		return err
	}
	// Everyone local in the room hears of its new events.
	c.Members = map[string]string{}
	return tx.Each(kv.Scan{Prefix: LocalMemberPrefix(b.RoomID)}, func(k, v []byte) (bool, error) {
		u, err := kv.LastString(k)
		c.Wake = append(c.Wake, u)
		switch string(v) { // constants, not a string per member and batch
		case spec.Join:
			c.Members[u] = spec.Join
		case spec.Invite:
			c.Members[u] = spec.Invite
		}
		return err == nil, err
	})
}

// writeMembership writes one member key's change to the membership
// indexes: the user's, the room's joined servers and its local members.
func (b *Batch) writeMembership(tx *kv.Txn, c *RoomCommit, ch MemberChange) error {
	rec := MembershipRecord{Membership: ch.Membership, EventID: ch.NewEventID, Pos: ch.Pos}
	if err := tx.SetJSON(MembershipKey(ch.UserID, b.RoomID), rec); err != nil {
		return err
	}
	if err := b.noteJoinedServer(tx, ch.UserID, ch.OldMembership, ch.Membership); err != nil {
		return err
	}
	if !b.Node.IsLocalUser(ch.UserID) {
		return nil
	}
	c.Wake = append(c.Wake, ch.UserID)
	if ch.Membership == spec.Join || ch.Membership == spec.Invite {
		return tx.Set(LocalMemberKey(b.RoomID, ch.UserID), []byte(ch.Membership))
	}
	if err := tx.Delete(LocalMemberKey(b.RoomID, ch.UserID)); err != nil {
		return err
	}
	return tx.Delete(UnreadKey(ch.UserID, b.RoomID)) // nothing unread in a room left
}

// applyRedaction strips the target's stored JSON as its room version's
// redaction algorithm says. It returns the size of the stored JSON it
// replaced (0 if the target is written by this batch or already redacted).
func (b *Batch) applyRedaction(tx *kv.Txn, targetID, by string) (int, error) {
	var rec *EventRecord
	if p, ok := b.ByID[targetID]; ok {
		rec = &p.Record
	} else {
		r, err := LoadEventRecord(tx, targetID)
		if err != nil {
			return 0, err
		}
		rec = r
	}
	if rec.RedactedBy != "" {
		return 0, nil
	}
	verImpl, err := gomatrixserverlib.GetRoomVersion(gomatrixserverlib.RoomVersion(rec.Version))
	if err != nil {
		return 0, err
	}
	raw, err := rec.ReadJSON(tx, targetID)
	if err != nil {
		return 0, err
	}
	stripped, err := verImpl.RedactEventJSON(raw)
	if err != nil {
		return 0, fmt.Errorf("redact %s: %w", targetID, err)
	}
	rec.JSON = json.RawMessage(stripped)
	rec.RedactedBy = by
	if _, ok := b.ByID[targetID]; ok {
		return 0, nil // written with the batch's events, never stored unredacted
	}
	return len(raw), WriteEvent(tx, targetID, rec)
}

// DiffState calls fn for each key whose event differs between a and b, with
// "" for a key absent on one side. Unchanged parts of the two states are
// skipped without being read, so the cost follows the size of the change,
// not of the state.
func DiffState(a, b *State, fn func(k StateKey, oldID, newID string)) {
	for i := range a.Blocks {
		ab, bb := a.Blocks[i], b.Blocks[i]
		if ab == bb || (ab != nil && bb != nil && ab.Hash == bb.Hash) {
			continue
		}
		old := map[StateKey]string{}
		if ab != nil {
			for _, e := range ab.Entries {
				old[StateKey{EventType: e.Type, StateKey: e.StateKey}] = e.EventID
			}
		}
		if bb != nil {
			for _, e := range bb.Entries {
				k := StateKey{EventType: e.Type, StateKey: e.StateKey}
				if o := old[k]; o != e.EventID {
					fn(k, o, e.EventID)
				}
				delete(old, k)
			}
		}
		for k, o := range old {
			fn(k, o, "")
		}
	}
}
