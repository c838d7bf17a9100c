package syncapi

import (
	"context"
	"slices"

	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// roomWindow is the part of a room's timeline one response covers.
type roomWindow struct {
	events  []*core.Event
	limited bool
	// prevBatch continues backwards from the first event.
	prevBatch StreamToken
	// startState is the room's state before the first event; endState after
	// the last (at the window's end position).
	startState, endState *core.State
	// untouched is set when a bounded window held no event at all: nothing
	// happened in the room, and the states are not read (nil).
	untouched bool
}

// window reads the newest events in (lower, upper] (lower ignored when
// !bounded) that the user may see and the timeline filter keeps, at most
// the filter's limit of them, oldest first. limited says whether any such
// event was left out.
//
// last, when set, is the user's own leave at upper: it ends the timeline
// whenever the filter keeps it, even where history visibility would hide it
// from them (node's visibility rules do for "joined" and "invited" rooms), so
// the client always sees why the room went.
func (a *api) window(ctx context.Context, req *syncRequest, roomID string, lower, upper uint64, bounded bool, last string) (*roomWindow, error) {
	f := &req.filter.Room.Timeline
	limit := f.LimitOr(defaultTimelineLimit, maxTimelineLimit)
	keep := withoutIgnored(req.ignored, f.keep())
	w, err := a.paginate(ctx, req.dev.UserID, roomID, span{from: upper, to: lower, hasTo: bounded, backwards: true}, limit, keep)
	if err != nil {
		return nil, err
	}
	slices.Reverse(w.events)
	rw := &roomWindow{events: w.events, limited: w.more, prevBatch: StreamToken{Room: upper}}
	if bounded && !w.touched && last == "" && !req.fullState {
		// Nothing happened in (lower, upper]: no event, so no state change
		// either (every accepted event has a timeline entry), and the
		// caller wants no full state.
		rw.untouched = true
		return rw, nil
	}
	if last != "" && (len(rw.events) == 0 || rw.events[len(rw.events)-1].PDU.EventID() != last) {
		evs, err := a.n.Events(ctx, []string{last})
		if err != nil {
			return nil, err
		}
		if len(evs) == 1 && evs[0].Pos <= upper && (!bounded || evs[0].Pos > lower) && f.MatchEvent(evs[0]) {
			rw.events = append(rw.events, evs[0])
			if len(rw.events) > limit {
				rw.events, rw.limited = rw.events[1:], true
			}
		}
	}
	if rw.endState, err = a.n.RoomStateAt(ctx, roomID, upper); err != nil {
		return nil, err
	}
	rw.startState = rw.endState
	if len(rw.events) > 0 {
		first := rw.events[0].Pos - 1
		rw.prevBatch = StreamToken{Room: first}
		if rw.startState, err = a.n.RoomStateAt(ctx, roomID, first); err != nil {
			return nil, err
		}
	}
	return rw, nil
}

// roomUpdate is a joined or left room's part of a response: its timeline
// window and the state events to send with it.
type roomUpdate struct {
	w     *roomWindow
	state []*core.Event
	// membersChanged says whether membership changed in the span covered,
	// so the summary is due.
	membersChanged bool
	// memberIDs are the member events among the state changes (before lazy
	// loading), for device_lists.
	memberIDs []string
	// bundles are the timeline's bundled aggregations.
	bundles core.Bundles
}

// stateEntry is one key of a state and the event holding it.
type stateEntry struct {
	key core.StateKey
	id  string
}

// roomUpdate reads a room's timeline up to upper and the state that goes
// with it: the whole state when full, else what changed since req.since.
// The state is taken at the start of the timeline, or at its end for
// MSC4222's state_after. See window for bounded and last.
func (a *api) roomUpdate(ctx context.Context, req *syncRequest, roomID string, upper uint64, full, bounded bool, last string) (*roomUpdate, error) {
	w, err := a.window(ctx, req, roomID, req.since.Room, upper, bounded, last)
	if err != nil {
		return nil, err
	}
	if w.untouched {
		return &roomUpdate{w: w}, nil
	}
	var since *core.State
	if !full {
		if since, err = a.n.RoomStateAt(ctx, roomID, req.since.Room); err != nil {
			return nil, err
		}
	}
	at := w.startState
	var entries []stateEntry
	if req.stateAfterKey != "" {
		at = w.endState
		entries = stateDelta(since, at)
	} else {
		entries = withHiddenTimelineState(stateDelta(since, at), w)
	}
	u := &roomUpdate{w: w, membersChanged: membersChanged(entries, w.events)}
	for _, e := range entries {
		if e.key.EventType == spec.MRoomMember {
			u.memberIDs = append(u.memberIDs, e.id)
		}
	}
	if req.filter.Room.State.LazyLoadMembers {
		entries = lazyMembers(entries, at, w.events, req.dev.UserID, full)
	}
	if u.state, err = a.stateEvents(ctx, req, entries); err != nil {
		return nil, err
	}
	if u.bundles, err = a.bundles(ctx, req.dev.UserID, w.events); err != nil {
		return nil, err
	}
	return u, nil
}

// section renders the update; a newly joined room's timeline is always
// limited, so the client drops whatever it had of the room.
func (u *roomUpdate) section(req *syncRequest, newlyJoined bool) roomSection {
	r := newRenderer(req.filter, req.dev, true)
	r.format.Bundles = u.bundles
	sec := roomSection{Timeline: timeline{
		Events: r.events(u.w.events), Limited: u.w.limited || newlyJoined, PrevBatch: u.w.prevBatch.String(),
	}}
	sec.State, sec.StateAfter, sec.StateAfterU = stateSection(req.stateAfterKey, &eventList{Events: r.events(u.state)})
	return sec
}

// stateSection puts a room's state list under the key the client asked for:
// state (the classic section), state_after or its unstable name (MSC4222).
func stateSection(stateAfterKey string, list *eventList) (state, after, afterUnstable *eventList) {
	switch stateAfterKey {
	case "":
		return list, nil, nil
	case "state_after":
		return nil, list, nil
	default:
		return nil, nil, list
	}
}

// stateDelta lists the entries of to that differ from from (all of to when
// from is nil). Its cost follows the size of the change, not of the state.
func stateDelta(from, to *core.State) []stateEntry {
	var out []stateEntry
	if from == nil {
		out = make([]stateEntry, 0, to.Len())
		to.Each(func(k core.StateKey, id string) { out = append(out, stateEntry{k, id}) })
		return out
	}
	core.DiffState(from, to, func(k core.StateKey, _, newID string) {
		if newID != "" {
			out = append(out, stateEntry{k, newID})
		}
	})
	return out
}

// withHiddenTimelineState adds to the state at the start of the timeline
// the state changes made during it by events the timeline does not show
// (the timeline filter left them out): the client applies the state, then
// the timeline, and would otherwise never learn of them. For such a key the
// value at the end of the timeline replaces the one at its start. This is
// what Synapse does.
func withHiddenTimelineState(entries []stateEntry, w *roomWindow) []stateEntry {
	if len(w.events) == 0 {
		return entries // the window's start and end states are the same
	}
	shown := make(map[string]bool, len(w.events))
	for _, ev := range w.events {
		shown[ev.PDU.EventID()] = true
	}
	var idx map[core.StateKey]int
	core.DiffState(w.startState, w.endState, func(k core.StateKey, _, newID string) {
		if newID == "" || shown[newID] {
			return
		}
		if idx == nil {
			idx = make(map[core.StateKey]int, len(entries))
			for i, e := range entries {
				idx[e.key] = i
			}
		}
		if i, ok := idx[k]; ok {
			entries[i].id = newID
			return
		}
		idx[k] = len(entries)
		entries = append(entries, stateEntry{k, newID})
	})
	return entries
}

// lazyMembers applies lazy_load_members to the state entries. With the full
// state, only the member events of the timeline's senders and of the user
// are kept. Otherwise every membership change since the last sync is kept
// (the spec requires those in the gap before a limited timeline) and the
// member events of the timeline's senders are added: the client may never
// have had them. Redundant member events are sent, which the spec allows.
// at is the state the entries describe.
func lazyMembers(entries []stateEntry, at *core.State, timeline []*core.Event, self string, full bool) []stateEntry {
	need := map[string]bool{}
	var order []string
	add := func(u string) {
		if !need[u] {
			need[u] = true
			order = append(order, u)
		}
	}
	if full {
		add(self)
	}
	for _, ev := range timeline {
		add(string(ev.PDU.SenderID()))
	}
	out := make([]stateEntry, 0, len(entries)+len(order))
	have := map[string]bool{}
	for _, e := range entries {
		if e.key.EventType == spec.MRoomMember {
			if full && !need[e.key.StateKey] {
				continue
			}
			have[e.key.StateKey] = true
		}
		out = append(out, e)
	}
	for _, u := range order {
		if have[u] {
			continue
		}
		if id, ok := at.Get(spec.MRoomMember, u); ok {
			out = append(out, stateEntry{core.StateKey{EventType: spec.MRoomMember, StateKey: u}, id})
		}
	}
	return out
}

// stateEvents loads the state events to send, keeping those the state
// filter lets through. Types are checked on the keys first, so state the
// filter drops by type is never read.
func (a *api) stateEvents(ctx context.Context, req *syncRequest, entries []stateEntry) ([]*core.Event, error) {
	f := &req.filter.Room.State
	ids := make([]string, 0, len(entries))
	for _, e := range entries {
		if matchAnyType(f.NotTypes, e.key.EventType) || (f.Types != nil && !matchAnyType(f.Types, e.key.EventType)) {
			continue
		}
		ids = append(ids, e.id)
	}
	evs, err := a.n.Events(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := evs[:0]
	for _, ev := range evs {
		if f.MatchEvent(ev) {
			out = append(out, ev)
		}
	}
	return out, nil
}

// membersChanged says whether the state entries or the timeline change a
// membership.
func membersChanged(entries []stateEntry, evs []*core.Event) bool {
	for _, e := range entries {
		if e.key.EventType == spec.MRoomMember {
			return true
		}
	}
	for _, ev := range evs {
		if ev.PDU.Type() == spec.MRoomMember {
			return true
		}
	}
	return false
}
