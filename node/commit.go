package node

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// streamEntry is the global event stream's value: which event, which room.
type streamEntry struct {
	RoomID  string `json:"r"`
	EventID string `json:"e"`
}

// noteRedaction marks an accepted redaction to be applied to its target's
// stored content at commit, if the redacter may do so: the target's own
// sender, or a user with the room's redact power level.
func (b *roomBatch) noteRedaction(p *pendingEvent, before *State) {
	targetID := p.pdu.Redacts()
	target, err := b.pdu(targetID)
	if err != nil || target.RoomID().String() != b.roomID {
		return // unknown target: nothing to apply now
	}
	if target.SenderID() != p.pdu.SenderID() {
		plID, ok := before.Get(spec.MRoomPowerLevels, "")
		if !ok {
			return
		}
		plEv, err := b.pdu(plID)
		if err != nil {
			return
		}
		pl, err := plEv.PowerLevels()
		if err != nil || pl.UserLevel(p.pdu.SenderID()) < pl.Redact {
			return
		}
	}
	p.redactTarget = targetID
}

// commit writes every event input in the batch, the snapshots they need, the
// room head, the stream and membership indexes and any redactions, all in one
// transaction, giving each accepted event the next stream position.
func (b *roomBatch) commit() error {
	if len(b.events) == 0 {
		return nil
	}
	n := b.n
	if len(b.extra) == 0 && !slices.ContainsFunc(b.events, func(p *pendingEvent) bool { return p.rec.Rejected == "" }) {
		// Only rejected events: nothing to write (rejectedmarks.go).
		for _, p := range b.events {
			n.noteRejected(p.pdu.EventID(), b.roomID, p.rec.Rejected)
		}
		return nil
	}
	accepted := 0
	for _, p := range b.events {
		if p.accepted || p.outlier {
			accepted++
		}
	}
	sticky, err := b.prepareSticky()
	if err != nil {
		return fmt.Errorf("commit room %s: %w", b.roomID, err)
	}
	var written []*State
	redacted := map[string]string{}
	replaced := map[string]int{} // redacted target -> bytes of its old stored JSON
	var fedDests []string        // destinations given outbound events
	stickyWritten := false
	var bumped []userBumpChange // room list entries written (userbump.go)
	_, err = n.stream.Commit(accepted+sticky.reserve, func(tx *kv.Txn, first uint64) error {
		pos := first
		var lastPos, bumpPos uint64
		positions := map[string]uint64{}
		for _, p := range b.events {
			if p.outlier {
				p.rec.Pos = pos
				positions[p.pdu.EventID()] = pos
				lastPos = pos
				pos++
			}
			if p.accepted {
				p.rec.Pos = pos
				positions[p.pdu.EventID()] = pos
				lastPos = pos
				if err := tx.Set(roomStreamKey(b.roomID, pos), encodeTimelineEntry(p.pdu.EventID(), p.current.ID())); err != nil {
					return err
				}
				if err := tx.SetJSON(streamKey(pos), streamEntry{RoomID: b.roomID, EventID: p.pdu.EventID()}); err != nil {
					return err
				}
				if isBump(p.pdu) {
					bumpPos = pos
				}
				if p.txnKey != nil {
					if err := tx.Set(p.txnKey, []byte(p.pdu.EventID())); err != nil {
						return err
					}
				}
				pos++
			}
			for _, st := range []*State{p.before, p.after, p.current} {
				if st == nil {
					continue
				}
				if _, err := n.states.write(tx, st); err != nil {
					return err
				}
				written = append(written, st)
			}
			if p.redactTarget != "" {
				redacted[p.redactTarget] = p.pdu.EventID()
			}
		}
		if bumpPos > 0 {
			if err := writeBump(tx, b.roomID, bumpPos); err != nil {
				return err
			}
		}
		var err error
		if stickyWritten, err = b.writeSticky(tx, sticky, pos); err != nil {
			return err
		}
		if b.room == nil {
			return nil // only a rejected create event
		}
		if _, err := n.states.write(tx, b.current); err != nil {
			return err
		}
		written = append(written, b.current)
		if err := tx.SetJSON(roomKey(b.roomID), b.room); err != nil {
			return err
		}
		members, err := b.writeMemberships(tx, positions, lastPos)
		if err != nil {
			return err
		}
		b.members = members // for observers after the commit (newevents.go)
		if bumped, err = b.writeUserBumps(tx, members, bumpPos); err != nil {
			return err
		}
		if err := b.countUnread(tx, members); err != nil {
			return err
		}
		if fedDests, err = b.enqueueOutbound(tx); err != nil {
			return err
		}
		for targetID, by := range redacted {
			size, err := b.applyRedaction(tx, targetID, by)
			if err != nil {
				return err
			}
			replaced[targetID] = size
		}
		for _, p := range b.events {
			if p.rec.Rejected != "" {
				continue // remembered in memory only (rejectedmarks.go)
			}
			if err := writeEvent(tx, p.pdu.EventID(), &p.rec); err != nil {
				return err
			}
		}
		for _, fn := range b.extra {
			if err := fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit room %s: %w", b.roomID, err)
	}
	for _, s := range written {
		n.states.markWritten(s)
	}
	for _, p := range b.events {
		if p.rec.Rejected != "" {
			n.noteRejected(p.pdu.EventID(), b.roomID, p.rec.Rejected)
			continue
		}
		n.pdus.put(p.pdu.EventID(), p.pdu)
	}
	for targetID := range redacted {
		n.pdus.remove(targetID)
		n.noteValueGarbage(replaced[targetID]) // vloggc.go
	}
	if b.membersChanged {
		n.membersGen.Add(1)
	}
	n.userBumps.apply(bumped)
	n.notifier.wake(b.wake...)
	n.fedQueued(fedDests)
	n.fedQueued(sticky.push.notify()) // new joiners' sticky events (sticky_fed.go)
	if stickyWritten {
		n.sticky.poke()
	}
	n.newEvents.observe(b)
	return nil
}

// writeMemberships updates the per-user membership index, and the room's
// index of local joined and invited users, for every member key whose event
// changed between the start of the batch and now. It notes in b.wake the
// local users whose membership changed, and returns the room's local
// members after the batch (user ID -> "join" or "invite").
func (b *roomBatch) writeMemberships(tx *kv.Txn, positions map[string]uint64, lastPos uint64) (map[string]string, error) {
	var err error
	diffState(b.start, b.current, func(k StateKey, oldID, newID string) {
		if err != nil || k.EventType != spec.MRoomMember {
			return
		}
		b.membersChanged = true
		rec := membershipRecord{Membership: spec.Leave, EventID: newID, Pos: lastPos}
		if p, ok := positions[newID]; ok {
			rec.Pos = p
		}
		if newID != "" {
			// Not b.pdu: the batch's read transaction is discarded by now.
			var ev gomatrixserverlib.PDU
			if p, ok := b.byID[newID]; ok {
				ev = p.pdu
			} else if ev, err = b.n.loadPDU(tx, newID); err != nil {
				return
			}
			if rec.Membership, err = ev.Membership(); err != nil {
				return
			}
		}
		if err = tx.SetJSON(membershipKey(k.StateKey, b.roomID), rec); err != nil {
			return
		}
		if err = b.noteJoinedServer(tx, k.StateKey, oldID, rec.Membership); err != nil {
			return
		}
		if !b.n.isLocalUser(k.StateKey) {
			return
		}
		b.wake = append(b.wake, k.StateKey)
		if rec.Membership == spec.Join || rec.Membership == spec.Invite {
			err = tx.Set(localMemberKey(b.roomID, k.StateKey), []byte(rec.Membership))
		} else if err = tx.Delete(localMemberKey(b.roomID, k.StateKey)); err == nil {
			err = tx.Delete(unreadKey(k.StateKey, b.roomID)) // nothing unread in a room left
		}
	})
	if err != nil {
		return nil, err
	}
	// Everyone local in the room hears of its new events.
	members := map[string]string{}
	err = tx.Each(kv.Scan{Prefix: localMemberPrefix(b.roomID)}, func(k, v []byte) (bool, error) {
		u, err := kv.LastString(k)
		b.wake = append(b.wake, u)
		switch string(v) { // constants, not a string per member and batch
		case spec.Join:
			members[u] = spec.Join
		case spec.Invite:
			members[u] = spec.Invite
		}
		return err == nil, err
	})
	return members, err
}

// applyRedaction strips the target's stored JSON as its room version's
// redaction algorithm says. It returns the size of the stored JSON it
// replaced (0 if the target is written by this batch or already redacted).
func (b *roomBatch) applyRedaction(tx *kv.Txn, targetID, by string) (int, error) {
	var rec *eventRecord
	if p, ok := b.byID[targetID]; ok {
		rec = &p.rec
	} else {
		r, err := loadEventRecord(tx, targetID)
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
	raw, err := rec.json(tx, targetID)
	if err != nil {
		return 0, err
	}
	stripped, err := verImpl.RedactEventJSON(raw)
	if err != nil {
		return 0, fmt.Errorf("redact %s: %w", targetID, err)
	}
	rec.JSON = json.RawMessage(stripped)
	rec.RedactedBy = by
	if _, ok := b.byID[targetID]; ok {
		return 0, nil // written with the batch's events, never stored unredacted
	}
	return len(raw), writeEvent(tx, targetID, rec)
}

// diffState calls fn for each key whose event differs between a and b ("" for
// absent). Blocks with equal hashes are skipped without looking inside.
func diffState(a, b *State, fn func(k StateKey, oldID, newID string)) {
	for i := range a.blocks {
		ab, bb := a.blocks[i], b.blocks[i]
		if ab == bb || (ab != nil && bb != nil && ab.hash == bb.hash) {
			continue
		}
		old := map[StateKey]string{}
		if ab != nil {
			for _, e := range ab.entries {
				old[StateKey{EventType: e.Type, StateKey: e.StateKey}] = e.EventID
			}
		}
		if bb != nil {
			for _, e := range bb.entries {
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
