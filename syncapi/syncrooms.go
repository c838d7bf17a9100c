package syncapi

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// joinedRoom is one entry of rooms.join.
type joinedRoom struct {
	roomSection
	Summary     *roomSummary   `json:"summary,omitempty"`
	Ephemeral   eventList      `json:"ephemeral"`
	AccountData eventList      `json:"account_data"`
	Unread      map[string]int `json:"unread_notifications,omitempty"`
	// UnreadThreads is unread_thread_notifications: thread root -> counts,
	// only when the filter asks for it (unread.go).
	UnreadThreads map[string]map[string]int `json:"unread_thread_notifications,omitempty"`
	// Sticky is MSC4354's section (sticky.go); timeline is what it needs
	// to know of Timeline's events.
	Sticky   *eventList    `json:"msc4354_sticky,omitempty"`
	timeline timelineNotes `json:"-"`
}

// timelineNotes is what the sticky section needs to know of a timeline:
// its event IDs (not to repeat them) and its sticky events (to give them
// their TTL). Not the events themselves: a response holds every room's
// entry until it is written, and an initial sync of a user in 1,000 rooms
// kept 20,000 parsed events alive so, about 50 MB (issue 14).
type timelineNotes struct {
	ids    []string
	sticky []timelineSticky
}

// timelineSticky is a sticky event of a timeline: its index in the
// timeline and its stream position.
type timelineSticky struct {
	i   int
	pos uint64
}

// noteTimeline makes the notes of a timeline.
func noteTimeline(evs []*core.Event) timelineNotes {
	tn := timelineNotes{ids: make([]string, len(evs))}
	for i, ev := range evs {
		tn.ids[i] = ev.PDU.EventID()
		if core.StickyInfo(ev.PDU) != nil {
			tn.sticky = append(tn.sticky, timelineSticky{i: i, pos: ev.Pos})
		}
	}
	return tn
}

// leftRoom is one entry of rooms.leave: the room up to the user's leave.
type leftRoom struct {
	roomSection
	AccountData eventList `json:"account_data"`
}

// roomSection is what joined and left rooms share: the timeline, and the
// state the client needs with it. State is the state at the start of the
// timeline; StateAfter (MSC4222) replaces it when the client asked for it,
// under the key it asked with.
type roomSection struct {
	Timeline    timeline   `json:"timeline"`
	State       *eventList `json:"state,omitempty"`
	StateAfter  *eventList `json:"state_after,omitempty"`
	StateAfterU *eventList `json:"org.matrix.msc4222.state_after,omitempty"`
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

// syncRooms fills rooms.join, invite and leave, and notes the joined rooms
// and membership changes the other sections need. Rooms come from the user's
// membership index; for each, what changed in (since, to] is worked out from
// the timeline index and state snapshots, so an old since token costs no
// more than a recent one. Rooms are independent, so they are worked out
// concurrently; what they add to req is merged afterwards, in order.
func (a *api) syncRooms(ctx context.Context, req *syncRequest, to StreamToken, res *syncResponse) error {
	memberships, err := a.n.Memberships(ctx, req.dev.UserID)
	if err != nil {
		return err
	}
	if req.hasSince && !req.fullState && to.Room <= req.since.Room {
		// Nothing committed to any room since: no room has news. The
		// joined rooms are still noted, for their ephemeral events.
		for _, m := range memberships {
			if m.Membership == spec.Join && m.Pos <= to.Room && req.filter.Room.MatchRoom(m.RoomID) {
				req.joinedRooms = append(req.joinedRooms, m.RoomID)
			}
		}
		return nil
	}
	out := make([]roomEntry, len(memberships))
	err = forEach(ctx, len(memberships), syncWorkers(), func(ctx context.Context, i int) error {
		var err error
		out[i], err = a.syncRoom(ctx, req, to, memberships[i])
		return err
	})
	if err != nil {
		return err
	}
	for i, o := range out {
		id := memberships[i].RoomID
		switch {
		case o.joined:
			req.joinedRooms = append(req.joinedRooms, id)
			if o.join != nil {
				res.Rooms.Join[id] = o.join
			}
		case o.invite != nil:
			res.Rooms.Invite[id] = o.invite
		case o.leave != nil:
			res.Rooms.Leave[id] = o.leave
		}
		for _, ev := range o.members {
			if o.leave == nil {
				req.members.note(ev, req.dev.UserID)
			} else if sk := ev.PDU.StateKey(); sk != nil && *sk != req.dev.UserID {
				// Everyone in a room the user left may no longer share a
				// room with them.
				req.members.left[*sk] = true
			}
		}
	}
	return nil
}

// roomEntry is what one room adds to a response.
type roomEntry struct {
	// joined is set for a room the user is joined to, with or without news
	// (join is nil without).
	joined bool
	join   *joinedRoom
	invite *invitedRoom
	leave  *leftRoom
	// members are member events for device_lists (see memberChanges).
	members []*core.Event
}

// syncRoom works out one room's entry.
func (a *api) syncRoom(ctx context.Context, req *syncRequest, to StreamToken, m core.RoomMembership) (roomEntry, error) {
	var e roomEntry
	if !req.filter.Room.MatchRoom(m.RoomID) {
		return e, nil
	}
	if m.OutOfBand {
		return a.outOfBandRoom(ctx, req, to, m) // a room not on this node (outofband.go)
	}
	if m.Pos > to.Room {
		// The membership changed after to was read. Skipping the room
		// would lose its events in (since, to] for good (the next sync
		// starts at to), so use the membership in force at to.
		var err error
		if m, err = a.membershipAtPos(ctx, m.RoomID, req.dev.UserID, to.Room); err != nil || m.Membership == "" {
			return e, err
		}
	}
	changed := !req.hasSince || m.Pos > req.since.Room
	var err error
	switch m.Membership {
	case spec.Join:
		e.joined = true
		// Newly joined: not joined at since (a duplicate join is no news).
		// An initial sync has no since, and nothing is new.
		newlyJoined := false
		if req.hasSince && changed {
			was, err := a.membershipAtPos(ctx, m.RoomID, req.dev.UserID, req.since.Room)
			if err != nil {
				return e, err
			}
			newlyJoined = was.Membership != spec.Join
		}
		e.join, e.members, err = a.joinedRoom(ctx, req, m.RoomID, to, newlyJoined)
	case spec.Invite:
		if !changed && !req.fullState {
			return e, nil
		}
		inviter, err := a.inviter(ctx, m.EventID)
		if err != nil || req.ignored[inviter] {
			return e, err // invites from ignored users are not shown
		}
		e.invite, err = a.invitedRoom(ctx, m)
		return e, err
	case spec.Leave, spec.Ban:
		// Incremental syncs report a leave once; initial and full-state
		// ones report every left room when include_leave asks.
		show := req.hasSince && changed || (!req.hasSince || req.fullState) && req.filter.Room.IncludeLeave
		if !m.Forgotten && show {
			e.leave, e.members, err = a.leftRoom(ctx, req, m)
		}
	}
	return e, err
}

// syncWorkers is how many rooms one sync works on at once.
func syncWorkers() int { return min(runtime.GOMAXPROCS(0), 8) }

// forEach calls fn for 0..n-1 on up to workers goroutines. The first error
// cancels the context the others get and is returned once all are done.
func forEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	if workers <= 1 || n <= 1 {
		for i := range n {
			if err := fn(ctx, i); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// membershipAtPos is the user's membership in a room as it stood at a
// stream position, with its event's ID and position; Membership is "" when
// they had none.
func (a *api) membershipAtPos(ctx context.Context, roomID, userID string, pos uint64) (core.RoomMembership, error) {
	m := core.RoomMembership{RoomID: roomID}
	s, err := a.n.RoomStateAt(ctx, roomID, pos)
	if err != nil {
		return m, err
	}
	id, ok := s.Get(spec.MRoomMember, userID)
	if !ok {
		return m, nil
	}
	evs, err := a.n.Events(ctx, []string{id})
	if err != nil || len(evs) == 0 {
		return m, err
	}
	m.Membership, _ = evs[0].PDU.Membership()
	m.EventID, m.Pos = id, evs[0].Pos
	return m, nil
}

// membershipAt is the user's membership in a room at a stream position
// ("" when none).
func (a *api) membershipAt(ctx context.Context, roomID, userID string, pos uint64) (string, error) {
	m, err := a.membershipAtPos(ctx, roomID, userID, pos)
	return m.Membership, err
}

// joinedRoom builds a rooms.join entry, or nil when nothing changed, and
// on incremental syncs the member events for device_lists. A newly joined
// room comes whole: full state, the newest events whatever since says, and
// limited, so the client drops anything it had.
func (a *api) joinedRoom(ctx context.Context, req *syncRequest, roomID string, to StreamToken, newlyJoined bool) (*joinedRoom, []*core.Event, error) {
	full := !req.hasSince || req.fullState || newlyJoined
	u, err := a.roomUpdate(ctx, req, roomID, to.Room, full, req.hasSince && !newlyJoined, "")
	if err != nil {
		return nil, nil, err
	}
	if !full && len(u.w.events) == 0 && len(u.state) == 0 {
		return nil, nil, nil
	}
	var members []*core.Event
	if req.hasSince {
		if members, err = a.memberEvents(ctx, u.memberIDs, u.w.events); err != nil {
			return nil, nil, err
		}
	}
	jr := &joinedRoom{
		roomSection: u.section(req, newlyJoined),
		Ephemeral:   eventList{Events: []any{}},
		AccountData: eventList{Events: []any{}},
		timeline:    noteTimeline(u.w.events),
	}
	if full || u.membersChanged {
		if jr.Summary, err = a.summary(ctx, req.dev.UserID, u.w.endState); err != nil {
			return nil, nil, err
		}
	}
	return jr, members, nil
}

// summary counts joined and invited members and picks up to five heroes
// (other members, by user ID) for rooms without a name.
func (a *api) summary(ctx context.Context, userID string, s *core.State) (*roomSummary, error) {
	ms, err := a.memberStats(ctx, userID, s)
	if err != nil {
		return nil, err
	}
	sum := &roomSummary{Joined: ms.joined, Invited: ms.invited}
	for _, ev := range ms.heroes {
		sum.Heroes = append(sum.Heroes, *ev.PDU.StateKey())
	}
	return sum, nil
}

// roomMemberStats is what /sync's summary and sliding sync's counts and
// heroes are made of.
type roomMemberStats struct {
	joined, invited int
	// heroes are the member events of up to five joined or invited members
	// other than the user, by user ID.
	heroes []*core.Event
}

// memberStats reads the member events of a state and counts them.
func (a *api) memberStats(ctx context.Context, userID string, s *core.State) (roomMemberStats, error) {
	var ms roomMemberStats
	var ids []string
	s.Each(func(k core.StateKey, id string) {
		if k.EventType == spec.MRoomMember {
			ids = append(ids, id)
		}
	})
	evs, err := a.n.Events(ctx, ids)
	if err != nil {
		return ms, err
	}
	var heroes []*core.Event
	for _, ev := range evs {
		m, _ := ev.PDU.Membership()
		target := *ev.PDU.StateKey()
		switch m {
		case spec.Join:
			ms.joined++
		case spec.Invite:
			ms.invited++
		default:
			continue
		}
		if target != userID {
			heroes = append(heroes, ev)
		}
	}
	slices.SortFunc(heroes, func(x, y *core.Event) int { return strings.Compare(*x.PDU.StateKey(), *y.PDU.StateKey()) })
	ms.heroes = heroes[:min(len(heroes), 5)]
	return ms, nil
}

// invitedRoom is the stripped state the invitee may see: the room's
// identifying state and the invite itself.
func (a *api) invitedRoom(ctx context.Context, m core.RoomMembership) (*invitedRoom, error) {
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
// user's leave, and the state with it; and on incremental syncs the room's
// member events for device_lists. A room the user joined and left since the
// last sync comes whole, as a newly joined room does: the client has nothing
// of it.
func (a *api) leftRoom(ctx context.Context, req *syncRequest, m core.RoomMembership) (*leftRoom, []*core.Event, error) {
	newlyJoined := false
	if req.hasSince && m.Pos > req.since.Room {
		was, err := a.membershipAtPos(ctx, m.RoomID, req.dev.UserID, req.since.Room)
		if err != nil {
			return nil, nil, err
		}
		if was.Membership != spec.Join && m.Pos > 0 {
			before, err := a.membershipAtPos(ctx, m.RoomID, req.dev.UserID, m.Pos-1)
			if err != nil {
				return nil, nil, err
			}
			newlyJoined = before.Membership == spec.Join
		}
	}
	full := !req.hasSince || req.fullState || newlyJoined
	u, err := a.roomUpdate(ctx, req, m.RoomID, m.Pos, full, req.hasSince && !newlyJoined, m.EventID)
	if err != nil {
		return nil, nil, err
	}
	var members []*core.Event
	if req.hasSince {
		var ids []string
		u.w.endState.Each(func(k core.StateKey, id string) {
			if k.EventType == spec.MRoomMember {
				ids = append(ids, id)
			}
		})
		if members, err = a.memberEvents(ctx, ids, nil); err != nil {
			return nil, nil, err
		}
	}
	return &leftRoom{roomSection: u.section(req, newlyJoined), AccountData: eventList{Events: []any{}}}, members, nil
}

// memberEvents loads the events of ids and adds the member events of evs.
func (a *api) memberEvents(ctx context.Context, ids []string, evs []*core.Event) ([]*core.Event, error) {
	out, err := a.n.Events(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		if ev.PDU.Type() == spec.MRoomMember {
			out = append(out, ev)
		}
	}
	return out, nil
}

// inviter is the sender of an invite event.
func (a *api) inviter(ctx context.Context, eventID string) (string, error) {
	evs, err := a.n.Events(ctx, []string{eventID})
	if err != nil || len(evs) == 0 {
		return "", err
	}
	return string(evs[0].PDU.SenderID()), nil
}
