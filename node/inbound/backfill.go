package inbound

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Backfilling a room's history from other servers, for /messages.
//
// A node that joined a room over federation has its timeline from the join
// on. When a client pages backwards past the room's first timeline event,
// and that event is not the room's create event and has prev events that
// are not in the timeline, the node asks a server in the room (/backfill
// from those prev events), checks what comes back and stores it as
// history:
//
//   - Positions: backfilled events are indexed in tRoomBackfill under
//     backfill positions (tables_history.go), counting back from the first
//     timeline event. They get no stream position and no entry in the room
//     stream, so /sync never shows them, and the room's current state,
//     forward extremities and membership indexes are untouched. Events the
//     node already stored as outliers (the state and auth chain of its
//     join) are attached to the history the same way.
//   - Checks: each event is checked like any PDU (room version, signatures,
//     content hash: a mismatch keeps the redacted form) and must be allowed
//     by its own auth events (fetched with /event_auth when unknown). Only
//     events reached from the asked-for prev events through prev_events in
//     the answer are kept, newest first; the walk stops at the first event
//     that fails, so the history stays one connected piece.
//   - State: history visibility needs the state before each event. It is
//     derived backwards from what the node has, without asking anyone: the
//     state after an event is the state before the newest of its children
//     already placed; the state before it is that, with the event's own
//     state key set back to its previous value (for membership, the
//     target's previous membership among the event's auth events; for
//     other keys, absent). This is exact for a linear history where each
//     non-membership key is set once, and an approximation otherwise (a
//     history_visibility changed more than once reads as unset, i.e.
//     "shared", before its last change); the resident server already
//     filtered what it sent by what this server may see.
//
// Backfill is best-effort: errors from other servers are logged and the
// page is what the node has.

// Bounds on one backfill round.
const (
	// backfillLimit is how many events one /backfill asks for.
	backfillLimit = 50
	// backfillServers is how many servers one round asks in turn.
	backfillServers = 3
)

// backfillRoom runs one backfill round for a room: it returns how many
// events were added to the room's history (0 when its history is complete,
// no server could help, or there is no EventFetcher).
func (n *Inbound) backfillRoom(ctx context.Context, roomID string) (int, error) {
	f := n.eventFetcher()
	if f == nil {
		return 0, nil
	}
	var version gomatrixserverlib.RoomVersion
	var front string
	var missing []string
	err := n.DB.View(func(tx *kv.Txn) error {
		room, err := core.LoadRoom(tx, roomID)
		if err != nil {
			return err
		}
		version = room.Version
		front, missing, err = n.historyFront(tx, roomID)
		return err
	})
	if err != nil || len(missing) == 0 {
		return 0, err
	}
	servers, err := n.JoinedServers(ctx, roomID)
	if err != nil {
		return 0, err
	}
	asked := 0
	for _, s := range servers {
		if s == n.ServerName() {
			continue
		}
		if asked == backfillServers {
			break
		}
		asked++
		raws, err := f.Backfill(ctx, s, roomID, missing, backfillLimit)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			n.Logger().Debug("backfill request failed", "server", s, "room_id", roomID, "error", err)
			continue
		}
		added, err := n.storeBackfill(ctx, f, s, roomID, version, front, missing, raws)
		if err != nil {
			return 0, err
		}
		n.Logger().Debug("backfilled", "server", s, "room_id", roomID, "received", len(raws), "added", added)
		if added > 0 {
			return added, nil
		}
	}
	return 0, nil
}

// historyFront is the room's first timeline event and those of its prev
// events that are not in the timeline; no prev events when the first event
// is the create event (the history is complete) or the room has none.
func (n *Inbound) historyFront(tx *kv.Txn, roomID string) (string, []string, error) {
	front, err := firstTimelineEvent(tx, roomID)
	if err != nil || front == "" {
		return "", nil, err
	}
	p, err := n.LoadPDU(tx, front)
	if err != nil {
		return "", nil, err
	}
	if p.Type() == spec.MRoomCreate && p.StateKeyEquals("") {
		return front, nil, nil
	}
	var missing []string
	for _, prev := range p.PrevEventIDs() {
		in, err := inTimeline(tx, roomID, prev)
		if err != nil {
			return "", nil, err
		}
		if !in {
			missing = append(missing, prev)
		}
	}
	return front, missing, nil
}

// firstTimelineEvent is the oldest event of the room's timeline: the first
// of its history, else of its stream ("" when it has none).
func firstTimelineEvent(tx *kv.Txn, roomID string) (string, error) {
	var id string
	err := tx.Each(kv.Scan{Prefix: core.RoomBackfillPrefix(roomID)}, func(_, v []byte) (bool, error) {
		id = string(v)
		return false, nil
	})
	if err != nil || id != "" {
		return id, err
	}
	err = tx.Each(kv.Scan{Prefix: core.RoomStreamPrefix(roomID)}, func(_, v []byte) (bool, error) {
		var err error
		id, _, err = core.DecodeTimelineEntry(v)
		return false, err
	})
	return id, err
}

// inTimeline reports whether an event is in the room's timeline (stream or
// history), not merely stored.
func inTimeline(tx *kv.Txn, roomID, eventID string) (bool, error) {
	rec, err := core.LoadEventRecord(tx, eventID)
	if errors.Is(err, core.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if rec.RoomID != roomID || rec.Pos == 0 {
		return false, nil
	}
	if core.IsBackfillPos(rec.Pos) {
		return tx.Has(core.RoomBackfillKey(roomID, rec.Pos))
	}
	return tx.Has(core.RoomStreamKey(roomID, rec.Pos))
}

// placedEvent is a backfilled event ready to be written.
type placedEvent struct {
	pdu           gomatrixserverlib.PDU
	rec           *core.EventRecord
	before, after *core.State
}

// storeBackfill checks a /backfill answer and adds it to the room's history
// (see the top of this file), if the room's history front is still front.
// It returns how many events were added.
func (n *Inbound) storeBackfill(ctx context.Context, f EventFetcher, server, roomID string, version gomatrixserverlib.RoomVersion, front string, missing []string, raws []json.RawMessage) (int, error) {
	if len(raws) > MaxBackfill {
		raws = raws[:MaxBackfill]
	}
	byID := map[string]gomatrixserverlib.PDU{}
	for _, ev := range n.parseRemoteEvents(ctx, roomID, version, raws, true) {
		byID[ev.EventID()] = ev
	}
	reach, have := backfillReach(byID, missing)
	if len(reach) == 0 {
		return 0, nil
	}
	if err := n.fetchAuthEvents(ctx, f, server, roomID, version, reach, have); err != nil {
		return 0, err
	}

	mu, err := n.LockRoom(ctx, roomID)
	if err != nil {
		return 0, err
	}
	defer mu.Unlock()
	var placed []placedEvent
	err = n.DB.View(func(tx *kv.Txn) error {
		cur, curMissing, err := n.historyFront(tx, roomID)
		if err != nil || cur != front {
			return err // extended meanwhile: the caller reads on
		}
		placed, err = n.placeBackfill(tx, roomID, version, front, curMissing, reach, byID)
		return err
	})
	if err != nil || len(placed) == 0 {
		return 0, err
	}
	if err := n.writeBackfill(roomID, placed); err != nil {
		return 0, err
	}
	return len(placed), nil
}

// backfillReach is what of byID hangs off the front (its missing prev
// events) through prev_events, oldest first, and the set of their IDs.
func backfillReach(byID map[string]gomatrixserverlib.PDU, missing []string) ([]gomatrixserverlib.PDU, map[string]bool) {
	var reach []gomatrixserverlib.PDU
	have := map[string]bool{}
	for queue := slices.Clone(missing); len(queue) > 0; queue = queue[1:] {
		ev, ok := byID[queue[0]]
		if !ok || have[queue[0]] {
			continue
		}
		have[queue[0]] = true
		reach = append(reach, ev)
		queue = append(queue, ev.PrevEventIDs()...)
	}
	slices.SortFunc(reach, func(a, b gomatrixserverlib.PDU) int { // oldest first
		if c := cmp.Compare(a.Depth(), b.Depth()); c != 0 {
			return c
		}
		return strings.Compare(a.EventID(), b.EventID())
	})
	return reach, have
}

// placeBackfill works out, newest first from the front, the backfill
// position and the states before and after each event of reach (oldest
// first) that passes auth and is not in the timeline yet; it stops at the
// first one that fails auth.
func (n *Inbound) placeBackfill(tx *kv.Txn, roomID string, version gomatrixserverlib.RoomVersion, front string, curMissing []string, reach []gomatrixserverlib.PDU, byID map[string]gomatrixserverlib.PDU) ([]placedEvent, error) {
	allowed, err := n.authBackfill(tx, roomID, reach)
	if err != nil {
		return nil, err
	}
	frontRec, err := core.LoadEventRecord(tx, front)
	if err != nil {
		return nil, err
	}
	frontBefore, err := n.States.Read(tx, frontRec.StateBefore)
	if err != nil {
		return nil, err
	}
	next, err := nextBackfillIndex(tx, roomID)
	if err != nil {
		return nil, err
	}
	childState := map[string]*core.State{}
	for _, id := range curMissing {
		childState[id] = frontBefore
	}
	var placed []placedEvent
	for i := len(reach) - 1; i >= 0; i-- { // newest first
		ev := reach[i]
		id := ev.EventID()
		if !allowed[id] {
			break
		}
		after, ok := childState[id]
		if !ok {
			continue // only reached through an event not placed
		}
		rec, err := core.LoadEventRecord(tx, id)
		switch {
		case errors.Is(err, core.ErrNotFound):
			rec = &core.EventRecord{RoomID: roomID, Version: string(version), JSON: ev.JSON()}
		case err != nil:
			return nil, err
		default:
			if in, err := inTimeline(tx, roomID, id); err != nil || in {
				if err != nil {
					return nil, err
				}
				continue
			}
		}
		before, err := n.stateBeforeBackfilled(tx, after, ev, byID)
		if err != nil {
			return nil, err
		}
		for _, prev := range ev.PrevEventIDs() {
			if _, ok := childState[prev]; !ok {
				childState[prev] = before
			}
		}
		rec.Pos = core.BackfillPos(next)
		next++
		rec.StateBefore, rec.StateAfter = before.ID(), after.ID()
		placed = append(placed, placedEvent{pdu: ev, rec: rec, before: before, after: after})
	}
	return placed, nil
}

// writeBackfill stores placed events, their states and their backfill
// positions in one transaction.
func (n *Inbound) writeBackfill(roomID string, placed []placedEvent) error {
	var written []*core.State
	err := n.DB.Update(func(tx *kv.Txn) error {
		for _, p := range placed {
			for _, st := range []*core.State{p.before, p.after} {
				if _, err := n.States.Write(tx, st); err != nil {
					return err
				}
				written = append(written, st)
			}
			if p.rec.JSON == nil {
				if _, err := p.rec.ReadJSON(tx, p.pdu.EventID()); err != nil {
					return err
				}
			}
			if err := core.WriteEvent(tx, p.pdu.EventID(), p.rec); err != nil {
				return err
			}
			if err := tx.Set(core.RoomBackfillKey(roomID, p.rec.Pos), []byte(p.pdu.EventID())); err != nil {
				return err
			}
			for _, x := range n.history {
				if err := x.IndexBackfilled(tx, p.pdu, p.rec.Pos); err != nil {
					return err
				}
			}
			if err := tx.Delete(core.OutlierNoStateKey(p.pdu.EventID())); err != nil {
				return err // it has its state now
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, s := range written {
		n.States.MarkWritten(s)
	}
	return nil
}

// authBackfill checks backfilled events (oldest first) against their own
// auth events, stored (not rejected) or earlier in evs and allowed. Events
// already stored are allowed if they were not rejected or soft-failed.
func (n *Inbound) authBackfill(tx *kv.Txn, roomID string, evs []gomatrixserverlib.PDU) (map[string]bool, error) {
	allowed := map[string]bool{}
	byID := map[string]gomatrixserverlib.PDU{}
	for _, ev := range evs {
		byID[ev.EventID()] = ev
	}
	for _, ev := range evs {
		id := ev.EventID()
		rec, err := core.LoadEventRecord(tx, id)
		switch {
		case err == nil:
			allowed[id] = rec.Rejected == "" && !rec.SoftFailed && rec.RoomID == roomID
			continue
		case !errors.Is(err, core.ErrNotFound):
			return nil, err
		}
		var authEvs []gomatrixserverlib.PDU
		ok := true
		for _, a := range ev.AuthEventIDs() {
			if allowed[a] {
				if p, in := byID[a]; in {
					authEvs = append(authEvs, p)
					continue
				}
			}
			rec, err := core.LoadEventRecord(tx, a)
			if errors.Is(err, core.ErrNotFound) {
				ok = false
				break
			}
			if err != nil {
				return nil, err
			}
			if rec.Rejected != "" || rec.RoomID != roomID {
				ok = false
				break
			}
			p, err := n.LoadPDU(tx, a)
			if err != nil {
				return nil, err
			}
			authEvs = append(authEvs, p)
		}
		if !ok {
			continue
		}
		provider, err := gomatrixserverlib.NewAuthEvents(authEvs)
		if err != nil {
			continue
		}
		allowed[id] = gomatrixserverlib.Allowed(ev, provider, core.UserIDForSender) == nil
	}
	return allowed, nil
}

// nextBackfillIndex is the k of the room's next (older) backfilled event.
func nextBackfillIndex(tx *kv.Txn, roomID string) (uint64, error) {
	k := uint64(1)
	err := tx.Each(kv.Scan{Prefix: core.RoomBackfillPrefix(roomID), KeysOnly: true}, func(key, _ []byte) (bool, error) {
		p, err := kv.LastUint(key)
		if err == nil && core.IsBackfillPos(p) {
			k = core.BackfillBase - p + 1
		}
		return false, err
	})
	return k, err
}

// stateBeforeBackfilled is the state before a backfilled event given the
// state after it: its own state key set back (see the top of this file).
func (n *Inbound) stateBeforeBackfilled(tx *kv.Txn, after *core.State, ev gomatrixserverlib.PDU, batch map[string]gomatrixserverlib.PDU) (*core.State, error) {
	if ev.Type() == spec.MRoomCreate && ev.StateKeyEquals("") {
		return &core.State{}, nil
	}
	sk := ev.StateKey()
	if sk == nil {
		return after, nil
	}
	if cur, ok := after.Get(ev.Type(), *sk); !ok || cur != ev.EventID() {
		return after, nil // the state after it came from elsewhere
	}
	prior := ""
	if ev.Type() == spec.MRoomMember {
		for _, a := range ev.AuthEventIDs() {
			p, ok := batch[a]
			if !ok {
				var err error
				if p, err = n.LoadPDU(tx, a); err != nil {
					continue
				}
			}
			if p.Type() == spec.MRoomMember && p.StateKeyEquals(*sk) {
				prior = a
			}
		}
	}
	if prior != "" {
		return after.With(ev.Type(), *sk, prior), nil
	}
	m := map[core.StateKey]string{}
	after.Each(func(k core.StateKey, id string) { m[k] = id })
	delete(m, core.StateKey{EventType: ev.Type(), StateKey: *sk})
	return core.StateFromMap(m), nil
}
