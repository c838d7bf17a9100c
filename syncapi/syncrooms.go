package syncapi

import (
	"context"
	"slices"

	"github.com/edgenode/edgenode/node"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// joinedRoom is one entry of rooms.join.
type joinedRoom struct {
	Timeline timeline `json:"timeline"`
	// State is the state at the start of the timeline; StateAfter (MSC4222)
	// replaces it when the client asked for it, under its own key.
	State       *eventList     `json:"state,omitempty"`
	StateAfter  *eventList     `json:"state_after,omitempty"`
	StateAfterU *eventList     `json:"org.matrix.msc4222.state_after,omitempty"`
	Summary     *roomSummary   `json:"summary,omitempty"`
	Ephemeral   eventList      `json:"ephemeral"`
	AccountData eventList      `json:"account_data"`
	Unread      map[string]int `json:"unread_notifications,omitempty"`
}

// leftRoom is one entry of rooms.leave: the room up to the user's leave.
type leftRoom struct {
	Timeline    timeline   `json:"timeline"`
	State       *eventList `json:"state,omitempty"`
	StateAfter  *eventList `json:"state_after,omitempty"`
	StateAfterU *eventList `json:"org.matrix.msc4222.state_after,omitempty"`
	AccountData eventList  `json:"account_data"`
}

// invitedRoom is one entry of rooms.invite.
type invitedRoom struct {
	InviteState eventList `json:"invite_state"`
}

type timeline struct {
	Events    []any  `json:"events"`
	Limited   bool   `json:"limited"`
	PrevBatch string `json:"prev_batch,omitempty"`
}

type eventList struct {
	Events []any `json:"events"`
}

type roomSummary struct {
	Heroes  []string `json:"m.heroes,omitempty"`
	Joined  int      `json:"m.joined_member_count"`
	Invited int      `json:"m.invited_member_count"`
}

// syncRooms fills rooms.join, invite and leave. Rooms come from the user's
// membership index; for each, what changed in (since, to] is worked out from
// the timeline index and state snapshots, so an old since token costs no
// more than a recent one.
func (a *api) syncRooms(ctx context.Context, req *syncRequest, to StreamToken, res *syncResponse) error {
	memberships, err := a.n.Memberships(ctx, req.dev.UserID)
	if err != nil {
		return err
	}
	for _, m := range memberships {
		if !req.filter.Room.MatchRoom(m.RoomID) || m.Pos > to.Room {
			continue // filtered out, or newer than this response
		}
		changed := !req.hasSince || m.Pos > req.since.Room
		switch m.Membership {
		case spec.Join:
			req.joinedRooms = append(req.joinedRooms, m.RoomID)
			newlyJoined := changed
			if req.hasSince && changed {
				if was, err := a.membershipAt(ctx, m.RoomID, req.dev.UserID, req.since.Room); err != nil {
					return err
				} else if was == spec.Join {
					newlyJoined = false // a duplicate join is no news
				}
			}
			jr, err := a.joinedRoom(ctx, req, m.RoomID, to, newlyJoined)
			if err != nil {
				return err
			}
			if jr != nil {
				res.Rooms.Join[m.RoomID] = jr
			}
		case spec.Invite:
			if inviter, err := a.inviter(ctx, m.EventID); err != nil {
				return err
			} else if req.ignored[inviter] {
				continue // invites from ignored users are not shown
			}
			if changed || req.fullState {
				ir, err := a.invitedRoom(ctx, m)
				if err != nil {
					return err
				}
				res.Rooms.Invite[m.RoomID] = ir
			}
		case spec.Leave, spec.Ban:
			if m.Forgotten || (!req.hasSince && !req.filter.Room.IncludeLeave) || (req.hasSince && !changed && !req.fullState) {
				continue
			}
			if req.fullState && !changed && !req.filter.Room.IncludeLeave {
				continue
			}
			lr, err := a.leftRoom(ctx, req, m)
			if err != nil {
				return err
			}
			res.Rooms.Leave[m.RoomID] = lr
		}
	}
	return nil
}

// membershipAt is the user's membership in a room at a stream position.
func (a *api) membershipAt(ctx context.Context, roomID, userID string, pos uint64) (string, error) {
	s, err := a.n.RoomStateAt(ctx, roomID, pos)
	if err != nil {
		return "", err
	}
	id, ok := s.Get(spec.MRoomMember, userID)
	if !ok {
		return "", nil
	}
	evs, err := a.n.Events(ctx, []string{id})
	if err != nil || len(evs) == 0 {
		return "", err
	}
	m, _ := evs[0].PDU.Membership()
	return m, nil
}

// roomWindow is the part of a room's timeline one response covers.
type roomWindow struct {
	events  []*node.Event
	limited bool
	// prevBatch continues backwards from the first event.
	prevBatch StreamToken
	// startState is the room's state before the first event; endState after
	// the last (at the window's end position).
	startState, endState *node.State
}

// window reads the newest visible events in (lower, upper] (lower ignored
// when !bounded), newest limit of them, oldest first.
func (a *api) window(ctx context.Context, req *syncRequest, roomID string, lower, upper uint64, bounded bool) (*roomWindow, error) {
	f := &req.filter.Room.Timeline
	limit := f.LimitOr(defaultTimelineLimit, maxTimelineLimit)
	keep := f.keep()
	if len(req.ignored) > 0 {
		filterKeep := keep
		keep = func(ev *node.Event) bool {
			return !req.ignored[string(ev.PDU.SenderID())] && (filterKeep == nil || filterKeep(ev))
		}
	}
	w, err := a.paginate(ctx, req.dev.UserID, roomID, span{from: upper, to: lower, hasTo: bounded, backwards: true}, limit, keep)
	if err != nil {
		return nil, err
	}
	slices.Reverse(w.events)
	rw := &roomWindow{events: w.events, limited: w.more, prevBatch: StreamToken{Room: upper}}
	if rw.endState, err = a.n.RoomStateAt(ctx, roomID, upper); err != nil {
		return nil, err
	}
	rw.startState = rw.endState
	if len(w.events) > 0 {
		first := w.events[0].Pos - 1
		rw.prevBatch = StreamToken{Room: first}
		if rw.startState, err = a.n.RoomStateAt(ctx, roomID, first); err != nil {
			return nil, err
		}
	}
	return rw, nil
}

// joinedRoom builds a rooms.join entry, or nil when nothing changed.
func (a *api) joinedRoom(ctx context.Context, req *syncRequest, roomID string, to StreamToken, newlyJoined bool) (*joinedRoom, error) {
	full := !req.hasSince || req.fullState || newlyJoined
	bounded := req.hasSince && !newlyJoined
	w, err := a.window(ctx, req, roomID, req.since.Room, to.Room, bounded)
	if err != nil {
		return nil, err
	}
	var sinceState *node.State
	if !full {
		if sinceState, err = a.n.RoomStateAt(ctx, roomID, req.since.Room); err != nil {
			return nil, err
		}
	}
	// state is the state at the start of the timeline; state_after the
	// state at its end. Both are whole when full, deltas from since if not.
	stateTo := w.startState
	if req.stateAfterKey != "" {
		stateTo = w.endState
	}
	stateIDs := stateDelta(sinceState, stateTo)
	if !full && len(w.events) == 0 && len(stateIDs) == 0 {
		return nil, nil
	}
	state, err := a.stateEvents(ctx, req, stateIDs, w.events)
	if err != nil {
		return nil, err
	}
	if req.hasSince {
		if err := a.noteMembers(ctx, req, stateIDs, w.events); err != nil {
			return nil, err
		}
	}
	r := newRenderer(req.filter, req.dev, true)
	jr := &joinedRoom{
		Timeline: timeline{
			Events: r.events(w.events), Limited: w.limited || newlyJoined, PrevBatch: w.prevBatch.String(),
		},
		Ephemeral:   eventList{Events: []any{}},
		AccountData: eventList{Events: []any{}},
	}
	jr.State, jr.StateAfter, jr.StateAfterU = stateSection(req.stateAfterKey, &eventList{Events: r.events(state)})
	if full || membersChanged(stateIDs, w.events) {
		if jr.Summary, err = a.summary(ctx, req.dev.UserID, w.endState); err != nil {
			return nil, err
		}
	}
	return jr, nil
}

// stateDelta lists the event IDs of to that differ from from (all of to when
// from is nil).
func stateDelta(from, to *node.State) []string {
	if from == nil {
		return to.EventIDs()
	}
	var ids []string
	node.DiffState(from, to, func(_ node.StateKey, _, newID string) {
		if newID != "" {
			ids = append(ids, newID)
		}
	})
	return ids
}

// stateEvents loads the state events to send, applying the state filter and,
// when asked, lazy loading of members (only the timeline's senders and the
// user themself; redundant members are always sent, which the spec allows).
func (a *api) stateEvents(ctx context.Context, req *syncRequest, ids []string, timelineEvents []*node.Event) ([]*node.Event, error) {
	evs, err := a.n.Events(ctx, ids)
	if err != nil {
		return nil, err
	}
	f := &req.filter.Room.State
	var senders map[string]bool
	if f.LazyLoadMembers {
		senders = map[string]bool{req.dev.UserID: true}
		for _, ev := range timelineEvents {
			senders[string(ev.PDU.SenderID())] = true
		}
	}
	out := evs[:0]
	for _, ev := range evs {
		if !f.MatchEvent(ev) {
			continue
		}
		if senders != nil && ev.PDU.Type() == spec.MRoomMember && !ev.PDU.StateKeyEquals("") {
			if sk := ev.PDU.StateKey(); sk != nil && !senders[*sk] {
				continue
			}
		}
		out = append(out, ev)
	}
	return out, nil
}

func membersChanged(stateIDs []string, evs []*node.Event) bool {
	if len(stateIDs) > 0 {
		return true
	}
	for _, ev := range evs {
		if ev.PDU.Type() == spec.MRoomMember {
			return true
		}
	}
	return false
}

// summary counts joined and invited members and picks up to five heroes
// (other members, by user ID) for rooms without a name.
func (a *api) summary(ctx context.Context, userID string, s *node.State) (*roomSummary, error) {
	var ids []string
	s.Each(func(k node.StateKey, id string) {
		if k.EventType == spec.MRoomMember {
			ids = append(ids, id)
		}
	})
	evs, err := a.n.Events(ctx, ids)
	if err != nil {
		return nil, err
	}
	sum := &roomSummary{}
	var heroes []string
	for _, ev := range evs {
		m, _ := ev.PDU.Membership()
		target := *ev.PDU.StateKey()
		switch m {
		case spec.Join:
			sum.Joined++
		case spec.Invite:
			sum.Invited++
		default:
			continue
		}
		if target != userID {
			heroes = append(heroes, target)
		}
	}
	slices.Sort(heroes)
	sum.Heroes = heroes[:min(len(heroes), 5)]
	return sum, nil
}

// invitedRoom is the stripped state the invitee may see: the room's
// identifying state and the invite itself.
func (a *api) invitedRoom(ctx context.Context, m node.RoomMembership) (*invitedRoom, error) {
	s, err := a.n.RoomStateAt(ctx, m.RoomID, m.Pos)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, t := range []string{spec.MRoomCreate, spec.MRoomJoinRules, spec.MRoomName, "m.room.avatar",
		"m.room.canonical_alias", "m.room.encryption", spec.MRoomTopic} {
		if id, ok := s.Get(t, ""); ok {
			ids = append(ids, id)
		}
	}
	ids = append(ids, m.EventID)
	evs, err := a.n.Events(ctx, ids)
	if err != nil {
		return nil, err
	}
	ir := &invitedRoom{InviteState: eventList{Events: make([]any, 0, len(evs))}}
	for _, ev := range evs {
		ir.InviteState.Events = append(ir.InviteState.Events, strippedEvent{
			Type: ev.PDU.Type(), StateKey: *ev.PDU.StateKey(), Sender: string(ev.PDU.SenderID()), Content: ev.PDU.Content(),
		})
	}
	return ir, nil
}

// strippedEvent is the spec's StrippedStateEvent.
type strippedEvent struct {
	Type     string  `json:"type"`
	StateKey string  `json:"state_key"`
	Sender   string  `json:"sender"`
	Content  rawJSON `json:"content"`
}

// leftRoom builds a rooms.leave entry: the timeline up to and including the
// user's leave, and the state at its start.
func (a *api) leftRoom(ctx context.Context, req *syncRequest, m node.RoomMembership) (*leftRoom, error) {
	bounded := req.hasSince && !req.fullState
	w, err := a.window(ctx, req, m.RoomID, req.since.Room, m.Pos, bounded)
	if err != nil {
		return nil, err
	}
	var sinceState *node.State
	if bounded {
		if sinceState, err = a.n.RoomStateAt(ctx, m.RoomID, req.since.Room); err != nil {
			return nil, err
		}
	}
	stateTo := w.startState
	if req.stateAfterKey != "" {
		stateTo = w.endState
	}
	state, err := a.stateEvents(ctx, req, stateDelta(sinceState, stateTo), w.events)
	if err != nil {
		return nil, err
	}
	if req.hasSince {
		// Everyone in the room left may no longer share a room with the user.
		if err := a.noteMembers(ctx, req, w.endState.EventIDs(), nil); err != nil {
			return nil, err
		}
		for u := range req.members.joined {
			req.members.left[u] = true
		}
	}
	r := newRenderer(req.filter, req.dev, true)
	lr := &leftRoom{
		Timeline:    timeline{Events: r.events(w.events), Limited: w.limited, PrevBatch: w.prevBatch.String()},
		AccountData: eventList{Events: []any{}},
	}
	lr.State, lr.StateAfter, lr.StateAfterU = stateSection(req.stateAfterKey, &eventList{Events: r.events(state)})
	return lr, nil
}

// noteMembers records the member events among state IDs and timeline
// events for device_lists.
func (a *api) noteMembers(ctx context.Context, req *syncRequest, stateIDs []string, evs []*node.Event) error {
	stateEvs, err := a.n.Events(ctx, stateIDs)
	if err != nil {
		return err
	}
	for _, ev := range append(stateEvs, evs...) {
		req.members.note(ev, req.dev.UserID)
	}
	return nil
}

// inviter is the sender of an invite event.
func (a *api) inviter(ctx context.Context, eventID string) (string, error) {
	evs, err := a.n.Events(ctx, []string{eventID})
	if err != nil || len(evs) == 0 {
		return "", err
	}
	return string(evs[0].PDU.SenderID()), nil
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
