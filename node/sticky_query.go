package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// StickyEvent is an unexpired sticky event due to a client.
type StickyEvent struct {
	*core.Event
	RoomID string
	// Pos orders the sticky stream: the event's stream position, or for an
	// entry of a join's backlog the position given to that entry.
	Pos uint64
	// EndMS is when the event stops being sticky (Unix ms), and TTLMS how
	// long that was from when it was read.
	EndMS, TTLMS int64
}

// StickyQuery asks which sticky events a user's client has not seen.
type StickyQuery struct {
	UserID string
	// Rooms are the rooms the user is joined to; others' events are not due.
	Rooms []string
	// After and Upto bound the sticky stream positions: (After, Upto].
	After, Upto uint64
	// Limit caps the events returned; the rest follow from the returned
	// cursor.
	Limit int
	// Keep, when set, drops events the caller will not deliver (an ignored
	// sender, an event already in the timeline); they count as passed.
	Keep func(roomID string, ev *core.Event) bool
}

// StickyEvents returns the unexpired sticky events in the user's joined
// rooms with sticky positions in (After, Upto], oldest first, at most Limit,
// and the cursor to resume from: the position of the last event returned
// when more remain, else Upto.
//
// For each joined room these are the room's sticky events after the user's
// join (tSticky) and the backlog the join copied (tStickyUser), so every
// unexpired event of a room reaches a joiner once, whatever its history
// visibility. Redacted events, and those whose sender is no longer joined
// (they would soft-fail against the current state now), are left out.
func (n *Node) StickyEvents(ctx context.Context, q StickyQuery) ([]StickyEvent, uint64, error) {
	if q.Upto <= q.After {
		return nil, q.Upto, nil
	}
	nowMS := n.Now().UnixMilli()
	var out []StickyEvent
	next := q.Upto
	err := n.DB.View(func(tx *kv.Txn) error {
		var cands []stickyCand
		joined := make(map[string]bool, len(q.Rooms))
		for _, room := range q.Rooms {
			joined[room] = true
			var err error
			if cands, err = roomStickyCands(tx, q, room, nowMS, cands); err != nil {
				return err
			}
		}
		cands, err := backlogStickyCands(tx, q, joined, nowMS, cands)
		if err != nil {
			return err
		}
		slices.SortFunc(cands, func(a, b stickyCand) int { return compareUint(a.pos, b.pos) })
		out, next, err = n.dueSticky(ctx, tx, q, cands, nowMS)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return out, next, nil
}

// stickyCand is an unexpired entry of the sticky indexes at a position of
// the user's sticky stream, not yet checked against the room.
type stickyCand struct {
	pos uint64
	rec stickyRecord
}

// roomStickyCands appends to cands the room's unexpired sticky events in
// (After, Upto] and after the user's join (earlier ones came with the
// join's backlog).
func roomStickyCands(tx *kv.Txn, q StickyQuery, room string, nowMS int64, cands []stickyCand) ([]stickyCand, error) {
	from := q.After + 1
	switch v, err := tx.Get(stickyJoinKey(q.UserID, room)); {
	case err == nil:
		joinPos, err := stickyJoinPos(v)
		if err != nil {
			return nil, err
		}
		from = max(from, joinPos+1)
	case !errors.Is(err, kv.ErrNotFound):
		return nil, err
	}
	err := tx.Each(kv.Scan{Prefix: stickyRoomPrefix(room), From: stickyKey(room, from)}, func(k, v []byte) (bool, error) {
		pos, err := kv.LastUint(k)
		if err != nil || pos > q.Upto {
			return false, err
		}
		var rec stickyRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return false, fmt.Errorf("sticky index: %w", err)
		}
		if rec.EndMS > nowMS {
			cands = append(cands, stickyCand{pos, rec})
		}
		return true, nil
	})
	return cands, err
}

// backlogStickyCands appends to cands the unexpired entries in (After,
// Upto] of the user's backlogs of joined rooms: few (one per recent join
// to a room with sticky events), each standing for a run of positions.
func backlogStickyCands(tx *kv.Txn, q StickyQuery, joined map[string]bool, nowMS int64, cands []stickyCand) ([]stickyCand, error) {
	err := tx.Each(kv.Scan{Prefix: stickyUserPrefix(q.UserID)}, func(k, v []byte) (bool, error) {
		first, err := kv.LastUint(k)
		if err != nil || first > q.Upto {
			return false, err
		}
		var bl stickyBacklog
		if err := bl.unmarshal(v); err != nil {
			return false, err
		}
		if !joined[bl.RoomID] || bl.EndMS <= nowMS {
			return true, nil
		}
		start := uint64(0)
		if q.After >= first {
			start = q.After + 1 - first
		}
		for i := start; i < uint64(len(bl.Positions)) && first+i <= q.Upto; i++ {
			var rec stickyRecord
			switch err := tx.GetJSON(stickyKey(bl.RoomID, bl.Positions[i]), &rec); {
			case errors.Is(err, kv.ErrNotFound):
				continue // expired and swept
			case err != nil:
				return false, err
			}
			if rec.EndMS > nowMS {
				cands = append(cands, stickyCand{first + i, rec})
			}
		}
		return true, nil
	})
	return cands, err
}

// dueSticky loads the candidates (in position order) due to the client:
// once each, sender still joined, not redacted, served, kept by q.Keep; at
// most q.Limit, with the cursor to resume from (Upto when none remain).
func (n *Node) dueSticky(ctx context.Context, tx *kv.Txn, q StickyQuery, cands []stickyCand, nowMS int64) ([]StickyEvent, uint64, error) {
	var out []StickyEvent
	senderJoined := map[[2]string]bool{}
	delivered := map[string]bool{} // a user's backlog may repeat a room's entry
	for i, c := range cands {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		if q.Limit > 0 && len(out) == q.Limit {
			return out, cands[i-1].pos, nil
		}
		key := [2]string{c.rec.RoomID, c.rec.Sender}
		ok, seen := senderJoined[key]
		if !seen {
			var err error
			if ok, err = n.isJoinedNow(tx, c.rec.RoomID, c.rec.Sender); err != nil {
				return nil, 0, err
			}
			senderJoined[key] = ok
		}
		if !ok || delivered[c.rec.EventID] {
			continue
		}
		delivered[c.rec.EventID] = true
		rec, err := core.LoadEventRecord(tx, c.rec.EventID)
		if err != nil {
			return nil, 0, err
		}
		if rec.RedactedBy != "" || rec.Pos == 0 {
			continue // no longer sticky, or not served
		}
		pdu, err := n.LoadPDU(tx, c.rec.EventID)
		if err != nil {
			return nil, 0, err
		}
		ev := &core.Event{PDU: pdu, Pos: rec.Pos, TxnID: rec.TxnID, DeviceID: rec.DeviceID}
		if q.Keep != nil && !q.Keep(c.rec.RoomID, ev) {
			continue
		}
		out = append(out, StickyEvent{Event: ev, RoomID: c.rec.RoomID, Pos: c.pos, EndMS: c.rec.EndMS, TTLMS: c.rec.EndMS - nowMS})
	}
	return out, q.Upto, nil
}

// isJoinedNow says whether the user is joined to the room in its current
// state.
func (n *Node) isJoinedNow(tx *kv.Txn, roomID, userID string) (bool, error) {
	room, err := core.LoadRoom(tx, roomID)
	if err != nil {
		return false, err
	}
	s, err := n.States.Read(tx, room.State)
	if err != nil {
		return false, err
	}
	id, ok := s.Get(spec.MRoomMember, userID)
	if !ok {
		return false, nil
	}
	ev, err := n.LoadPDU(tx, id)
	if err != nil {
		return false, err
	}
	m, err := ev.Membership()
	return m == spec.Join, err
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// StickyTTLs says, for events of a room's timeline, how long each that is
// still sticky has left (ms), by stream position; others are absent.
func (n *Node) StickyTTLs(ctx context.Context, roomID string, positions []uint64) (map[uint64]int64, error) {
	nowMS := n.Now().UnixMilli()
	out := map[uint64]int64{}
	err := n.DB.View(func(tx *kv.Txn) error {
		for _, pos := range positions {
			if err := ctx.Err(); err != nil {
				return err
			}
			var rec stickyRecord
			switch err := tx.GetJSON(stickyKey(roomID, pos), &rec); {
			case errors.Is(err, kv.ErrNotFound):
				continue
			case err != nil:
				return err
			}
			if rec.EndMS > nowMS {
				out[pos] = rec.EndMS - nowMS
			}
		}
		return nil
	})
	return out, err
}
