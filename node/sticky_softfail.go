package node

import (
	"encoding/json"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
)

// Soft-failure re-evaluation (MSC4354): "soft-failure checks MUST be
// re-evaluated when the membership state changes for a user with unexpired
// sticky events". Both directions are covered:
//
//   - a served sticky event whose sender is no longer joined is not
//     delivered (StickyEvents checks the sender against the current state
//     on every read, so nothing is stored for it);
//   - a soft-failed sticky event is kept in tStickySoft while unexpired;
//     when its sender's membership becomes join, it is checked again
//     against the room's new current state and, if it passes, served from
//     then on: it gets a stream position (so it enters the timeline and the
//     sticky stream as a new event would) and its record stops being
//     soft-failed. It does not become a forward extremity.

func stickySoftKey(roomID, sender, eventID string) []byte {
	return kv.Key(tStickySoft, roomID, sender, eventID)
}
func stickySoftPrefix(roomID, sender string) []byte { return kv.Key(tStickySoft, roomID, sender) }
func stickySoftExpiryKey(endMS int64, roomID, sender, eventID string) []byte {
	return kv.Key(tStickyExpiry, uint64(max(endMS, 0)), stickyKindSoft, roomID, sender, eventID)
}

// writeSoftFailedSticky keeps a soft-failed sticky event for re-evaluation.
func writeSoftFailedSticky(b *core.Batch, tx *kv.Txn, p *core.PendingEvent, endMS int64) error {
	sender := string(p.PDU.SenderID())
	rec := stickyRecord{RoomID: b.RoomID, EventID: p.PDU.EventID(), Sender: sender, EndMS: endMS}
	return setSticky(tx, stickySoftKey(b.RoomID, sender, rec.EventID), rec, stickySoftExpiryKey(endMS, b.RoomID, sender, rec.EventID))
}

// planRevive finds the user's soft-failed, unexpired sticky events in the
// room that pass auth against the batch's new current state.
func planRevive(b *core.Batch, tx *kv.Txn, plan *stickyPlan, userID string) error {
	return tx.Each(kv.Scan{Prefix: stickySoftPrefix(b.RoomID, userID)}, func(_, v []byte) (bool, error) {
		var rec stickyRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return false, fmt.Errorf("sticky soft-fail index: %w", err)
		}
		if rec.EndMS <= plan.nowMS {
			return true, nil // the sweeper will delete it
		}
		ev, err := b.Node.LoadPDU(tx, rec.EventID)
		if err != nil {
			return false, err
		}
		ok, err := allowedNow(b, tx, ev)
		if ok {
			plan.revive = append(plan.revive, rec)
		}
		return err == nil, err
	})
}

// allowedNow checks ev against the batch's current state, reading through
// tx (the batch's own read transaction is gone by commit time).
func allowedNow(b *core.Batch, tx *kv.Txn, ev gomatrixserverlib.PDU) (bool, error) {
	needed := gomatrixserverlib.StateNeededForAuth([]gomatrixserverlib.PDU{ev})
	var evs []gomatrixserverlib.PDU
	for _, t := range needed.Tuples() {
		id, ok := b.Current.Get(t.EventType, t.StateKey)
		if !ok {
			continue
		}
		if p, ok := b.ByID[id]; ok {
			evs = append(evs, p.PDU)
			continue
		}
		p, err := b.Node.LoadPDU(tx, id)
		if err != nil {
			return false, err
		}
		evs = append(evs, p)
	}
	provider, err := gomatrixserverlib.NewAuthEvents(evs)
	if err != nil {
		return false, err
	}
	return gomatrixserverlib.Allowed(ev, provider, core.UserIDForSender) == nil, nil
}

// reviveSticky serves a formerly soft-failed sticky event at pos: timeline
// and stream entries, the sticky index, and its record no longer
// soft-failed.
func reviveSticky(b *core.Batch, tx *kv.Txn, rec stickyRecord, pos uint64) error {
	er, err := core.LoadEventRecord(tx, rec.EventID)
	if err != nil {
		return err
	}
	if _, err := er.ReadJSON(tx, rec.EventID); err != nil {
		return err
	}
	er.Pos, er.SoftFailed = pos, false
	if err := core.WriteEvent(tx, rec.EventID, er); err != nil {
		return err
	}
	if err := tx.Set(core.RoomStreamKey(b.RoomID, pos), core.EncodeTimelineEntry(rec.EventID, b.Current.ID())); err != nil {
		return err
	}
	if err := tx.SetJSON(core.StreamKey(pos), core.StreamEntry{RoomID: b.RoomID, EventID: rec.EventID}); err != nil {
		return err
	}
	if err := tx.Delete(stickySoftKey(b.RoomID, rec.Sender, rec.EventID)); err != nil {
		return err
	}
	if err := tx.Delete(stickySoftExpiryKey(rec.EndMS, b.RoomID, rec.Sender, rec.EventID)); err != nil {
		return err
	}
	rec.Pos = pos
	return setSticky(tx, stickyKey(b.RoomID, pos), rec, stickyExpiryKey(rec.EndMS, stickyKindRoom, b.RoomID, pos))
}
