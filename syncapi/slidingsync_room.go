package syncapi

import (
	"context"
	"encoding/json"
	"errors"
	"math"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// ssRoomResult is one room of a sliding sync response. Both dialects'
// names are sent where they differ (invite_state and stripped_state).
type ssRoomResult struct {
	Name              *string  `json:"name,omitempty"`
	Avatar            *string  `json:"avatar,omitempty"`
	Heroes            []ssHero `json:"heroes,omitempty"`
	Initial           bool     `json:"initial,omitempty"`
	ExpandedTimeline  bool     `json:"expanded_timeline,omitempty"`
	IsDM              bool     `json:"is_dm,omitempty"`
	RequiredState     []any    `json:"required_state,omitempty"`
	Timeline          []any    `json:"timeline,omitempty"`
	PrevBatch         string   `json:"prev_batch,omitempty"`
	Limited           bool     `json:"limited,omitempty"`
	NumLive           *int     `json:"num_live,omitempty"`
	JoinedCount       *int     `json:"joined_count,omitempty"`
	InvitedCount      *int     `json:"invited_count,omitempty"`
	NotificationCount *int     `json:"notification_count,omitempty"`
	HighlightCount    *int     `json:"highlight_count,omitempty"`
	BumpStamp         uint64   `json:"bump_stamp,omitempty"`
	Membership        string   `json:"membership,omitempty"`
	Lists             []string `json:"lists,omitempty"`
	InviteState       []any    `json:"invite_state,omitempty"`
	StrippedState     []any    `json:"stripped_state,omitempty"`

	roomID   string
	timeline []*core.Event
	// members are member events seen, for the e2ee extension's device lists.
	members []*core.Event
}

// ssHero is a member a client may name a room after.
type ssHero struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"displayname,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// roomJob is a room the response may include and how.
type roomJob struct {
	r     ssRoom
	cfg   roomConfig
	lists []string
}

// renderRoom works out a room's result, or nil when the connection has
// everything of it already. sent is what the connection had (ok false when
// nothing); liveAfter is the room-stream position after which events are
// live for this response.
func (a *api) renderRoom(ctx context.Context, dev node.Device, ignored map[string]bool, job roomJob, sent sentRoom, had bool, liveAfter uint64, to StreamToken, facts *roomFacts) (*ssRoomResult, sentRoom, error) {
	m := job.r.m
	if m.Pos > to.Room {
		// The membership changed after to was read: the next response,
		// which this change wakes, has the room as it is then.
		return nil, sent, nil
	}
	res := &ssRoomResult{roomID: m.RoomID, BumpStamp: job.r.bump, Membership: m.Membership, Lists: job.lists, IsDM: facts.dms[m.RoomID]}
	next := sentRoom{pos: to.Room, limit: job.cfg.limit, stateKey: job.cfg.stateKey(), membership: m.Membership}
	switch {
	case m.OutOfBand:
		return a.renderOutOfBand(ctx, dev, ignored, res, sent, had, next)
	case m.Membership == spec.Invite || m.Membership == spec.Knock:
		return a.renderInvite(ctx, ignored, m, res, sent, had, next)
	}
	rr := &roomRender{dev: dev, ignored: ignored, cfg: job.cfg, m: m, sent: sent, had: had,
		liveAfter: liveAfter, res: res, next: next}
	return a.renderMember(ctx, rr, to)
}

// renderInvite renders a room the user is invited to or knocked on: its
// stripped state, once for each such membership, and not at all when the
// inviter is ignored.
func (a *api) renderInvite(ctx context.Context, ignored map[string]bool, m core.RoomMembership, res *ssRoomResult, sent sentRoom, had bool, next sentRoom) (*ssRoomResult, sentRoom, error) {
	if had && sent.membership == m.Membership && sent.pos >= m.Pos {
		return nil, sent, nil
	}
	inviter, err := a.inviter(ctx, m.EventID)
	if err != nil || ignored[inviter] {
		return nil, sent, err
	}
	ir, err := a.invitedRoom(ctx, m)
	if err != nil {
		return nil, sent, err
	}
	res.Initial = true
	res.InviteState, res.StrippedState = ir.InviteState.Events, ir.InviteState.Events
	return res, next, nil
}

// ssRenderer renders a sliding sync room's events: client format, without
// room IDs (the room is the key), no filter.
func ssRenderer(dev node.Device) renderer {
	return newRenderer(&Filter{}, dev, true)
}

// roomRender carries a room the user is joined to or left through the steps
// of its render (renderMember): what the connection had of it, the result
// and the connection's next record of it being built, and what the steps
// work out on the way.
type roomRender struct {
	dev       node.Device
	ignored   map[string]bool
	cfg       roomConfig
	m         core.RoomMembership
	sent      sentRoom
	had       bool
	liveAfter uint64
	res       *ssRoomResult
	next      sentRoom

	// upper is the timeline's end: the response's position, or the
	// membership of a room the user left (kicked, banned), whose event ID
	// is last ("" when joined).
	upper uint64
	last  string
	// full is set when the room comes whole: initial (first time, or
	// after a (re)join) or expanded (a larger timeline than the client
	// has). stateChanged is set when the required_state config changed
	// since the room was last sent.
	full, expanded, stateChanged bool
	// notify and highlight are the unread counts (0 unless joined);
	// countsChanged says they or the membership differ from what was sent.
	notify, highlight int
	countsChanged     bool
	// w is the timeline window read, evs the part of it sent.
	w   *roomWindow
	evs []*core.Event
	// bundles are the sent timeline's bundled aggregations.
	bundles core.Bundles
}

// renderMember renders a room the user is joined to or left: its timeline
// since what the connection had (or whole), the required state, name,
// avatar, heroes and counts; nil when nothing of it changed.
func (a *api) renderMember(ctx context.Context, rr *roomRender, to StreamToken) (*ssRoomResult, sentRoom, error) {
	rr.plan(to)
	if err := a.ssUnreadCounts(ctx, rr); err != nil {
		return nil, rr.sent, err
	}
	changed, err := a.ssWindow(ctx, rr)
	if err != nil || !changed {
		return nil, rr.sent, err
	}
	sent := rr.w.events // what timeline keeps of them
	if len(sent) > rr.cfg.limit {
		sent = sent[len(sent)-rr.cfg.limit:]
	}
	if rr.bundles, err = a.bundles(ctx, rr.dev.UserID, sent); err != nil {
		return nil, rr.sent, err
	}
	rr.timeline()
	entries, err := a.ssRequiredState(ctx, rr)
	if err != nil {
		return nil, rr.sent, err
	}
	if err := a.ssSummary(ctx, rr, entries); err != nil {
		return nil, rr.sent, err
	}
	return rr.res, rr.next, nil
}

// plan works out which part of the room's timeline the response covers and
// whether the room comes whole.
func (rr *roomRender) plan(to StreamToken) {
	m := rr.m
	rr.upper = to.Room
	if m.Membership != spec.Join {
		rr.upper, rr.last = m.Pos, m.EventID // left, kicked or banned: up to that
		rr.next.pos = rr.upper
	}
	// The room comes whole the first time, after the user (re)joined, and
	// when a larger timeline is asked for than the client has.
	initial := !rr.had || (rr.sent.membership != spec.Join && m.Membership == spec.Join)
	rr.expanded = !initial && rr.cfg.limit > rr.sent.limit
	rr.full = initial || rr.expanded
	rr.stateChanged = !rr.full && !stateCovered(rr.sent.stateKey, rr.next.stateKey)
}

// ssUnreadCounts reads a joined room's unread counts into the render and
// the connection's record, and notes whether they (or the membership)
// changed since the room was last sent.
func (a *api) ssUnreadCounts(ctx context.Context, rr *roomRender) error {
	if rr.m.Membership == spec.Join {
		var err error
		if rr.notify, rr.highlight, err = a.n.UnreadCounts(ctx, rr.dev.UserID, rr.m.RoomID); err != nil {
			return err
		}
	}
	rr.next.notify, rr.next.highlight = rr.notify, rr.highlight
	rr.countsChanged = !rr.had || rr.notify != rr.sent.notify || rr.highlight != rr.sent.highlight || rr.m.Membership != rr.sent.membership
	return nil
}

// ssWindow reads the room's timeline window: everything up to the
// timeline's end when the room comes whole, else what followed the
// position it was sent up to. It says false when nothing the response
// would carry changed; else the window's end state is set too.
func (a *api) ssWindow(ctx context.Context, rr *roomRender) (bool, error) {
	req := &syncRequest{dev: rr.dev, ignored: rr.ignored,
		filter: &Filter{Room: RoomFilter{Timeline: RoomEventFilter{EventFilter: EventFilter{Limit: max(rr.cfg.limit, 1)}}}}}
	var lower uint64
	if !rr.full {
		lower = rr.sent.pos
	}
	w, err := a.window(ctx, req, rr.m.RoomID, lower, rr.upper, !rr.full, rr.last)
	if err != nil {
		return false, err
	}
	if w.untouched && !rr.stateChanged && !rr.countsChanged {
		return false, nil
	}
	if w.endState == nil {
		if w.endState, err = a.n.RoomStateAt(ctx, rr.m.RoomID, rr.upper); err != nil {
			return false, err
		}
	}
	rr.w = w
	return true, nil
}

// timeline cuts the window to the configured limit and sets the result's
// timeline, prev_batch and num_live, and the timeline size the client will
// have of the room.
func (rr *roomRender) timeline() {
	w, res := rr.w, rr.res
	evs := w.events
	if len(evs) > rr.cfg.limit {
		evs, w.limited = evs[len(evs)-rr.cfg.limit:], true
	}
	if w.limited {
		rr.next.limit = rr.cfg.limit
	} else if !rr.full {
		rr.next.limit = max(rr.sent.limit, rr.cfg.limit)
	}
	rr.evs = evs
	// An expanded timeline comes with everything else whole too, so it is
	// marked initial: clients (matrix-js-sdk) then treat events they lack
	// before ones they have as scrollback, not as new.
	res.Initial, res.ExpandedTimeline, res.timeline = rr.full, rr.expanded, evs
	r := ssRenderer(rr.dev)
	r.format.Bundles = rr.bundles
	res.Timeline = r.events(evs)
	res.Limited = w.limited
	if len(evs) > 0 {
		res.PrevBatch = StreamToken{Room: evs[0].Pos - 1}.String()
	} else {
		res.PrevBatch = StreamToken{Room: rr.upper}.String()
	}
	live := 0
	for _, ev := range evs {
		if ev.Pos > rr.liveAfter {
			live++
		}
	}
	res.NumLive = &live
}

// ssRequiredState sets the result's required state: everything the config
// wants when the room comes whole or the config changed, else what changed
// since it was sent; with lazy-loaded members, the members of the
// timeline's senders and targets too. It also collects the member events
// seen for the e2ee extension, and returns the state entries it chose from.
func (a *api) ssRequiredState(ctx context.Context, rr *roomRender) ([]stateEntry, error) {
	w, evs := rr.w, rr.evs
	var entries []stateEntry
	if rr.full || rr.stateChanged {
		entries = stateDelta(nil, w.endState)
	} else {
		from, err := a.n.RoomStateAt(ctx, rr.m.RoomID, rr.sent.pos)
		if err != nil {
			return nil, err
		}
		entries = stateDelta(from, w.endState)
	}
	var ids []string
	have := map[core.StateKey]bool{}
	for _, e := range entries {
		if rr.cfg.wants(e.key, rr.dev.UserID) || (rr.cfg.lazy() && !w.limited && !rr.full && e.key.EventType == spec.MRoomMember) {
			ids = append(ids, e.id)
			have[e.key] = true
		}
	}
	if rr.cfg.lazy() {
		ids = ssLazyMembers(ids, have, evs, w.endState)
	}
	stateEvs, err := a.n.Events(ctx, ids)
	if err != nil {
		return nil, err
	}
	rr.res.RequiredState = ssRenderer(rr.dev).events(stateEvs)
	for _, ev := range append(stateEvs, evs...) {
		if ev.PDU.Type() == spec.MRoomMember {
			rr.res.members = append(rr.res.members, ev)
		}
	}
	return entries, nil
}

// ssLazyMembers adds to ids the member events, in state s, of the senders
// and targets of evs that have does not hold yet, and marks them had.
func ssLazyMembers(ids []string, have map[core.StateKey]bool, evs []*core.Event, s *core.State) []string {
	for _, ev := range evs {
		for _, u := range []string{string(ev.PDU.SenderID()), stateKeyOfMember(ev)} {
			k := core.StateKey{EventType: spec.MRoomMember, StateKey: u}
			if u == "" || have[k] {
				continue
			}
			if id, ok := s.Get(spec.MRoomMember, u); ok {
				ids = append(ids, id)
				have[k] = true
			}
		}
	}
	return ids
}

// ssSummary sets what the result says about the room beside its events:
// name and avatar when they may have changed, member counts and heroes
// when the members may have, and the unread counts of a joined room when
// they changed or the room comes whole. entries are the state entries
// ssRequiredState chose from.
func (a *api) ssSummary(ctx context.Context, rr *roomRender, entries []stateEntry) error {
	res, full := rr.res, rr.full
	if full || rr.stateChanged || hasKey(entries, spec.MRoomName) || hasKey(entries, "m.room.avatar") {
		if err := a.nameAndAvatar(ctx, rr.w.endState, res, full); err != nil {
			return err
		}
	}
	if full || membersChanged(entries, rr.evs) {
		ms, err := a.memberStats(ctx, rr.dev.UserID, rr.w.endState)
		if err != nil {
			return err
		}
		res.JoinedCount, res.InvitedCount = &ms.joined, &ms.invited
		if res.Name == nil {
			res.Heroes = heroes(ms.heroes)
		}
	}
	if rr.m.Membership == spec.Join && (rr.countsChanged || full) {
		notify, highlight := rr.notify, rr.highlight
		res.NotificationCount, res.HighlightCount = &notify, &highlight
	}
	return nil
}

// heroes are the result's heroes from their member events.
func heroes(evs []*core.Event) []ssHero {
	var out []ssHero
	for _, ev := range evs {
		var c struct {
			DisplayName string `json:"displayname"`
			AvatarURL   string `json:"avatar_url"`
		}
		_ = json.Unmarshal(ev.PDU.Content(), &c)
		out = append(out, ssHero{UserID: *ev.PDU.StateKey(), DisplayName: c.DisplayName, AvatarURL: c.AvatarURL})
	}
	return out
}

// stateKeyOfMember is a member event's target, "" for other events.
func stateKeyOfMember(ev *core.Event) string {
	if ev.PDU.Type() != spec.MRoomMember || ev.PDU.StateKey() == nil {
		return ""
	}
	return *ev.PDU.StateKey()
}

func hasKey(entries []stateEntry, evType string) bool {
	for _, e := range entries {
		if e.key.EventType == evType {
			return true
		}
	}
	return false
}

// nameAndAvatar sets the room's name and avatar from its state. On a
// whole room an absent or empty one is left out; on an update an empty
// one is sent, so the client clears what it had.
func (a *api) nameAndAvatar(ctx context.Context, s *core.State, res *ssRoomResult, full bool) error {
	var ids []string
	for _, t := range []string{spec.MRoomName, "m.room.avatar"} {
		if id, ok := s.Get(t, ""); ok {
			ids = append(ids, id)
		}
	}
	evs, err := a.n.Events(ctx, ids)
	if err != nil {
		return err
	}
	for _, ev := range evs {
		var c struct {
			Name string `json:"name"`
			URL  string `json:"url"`
		}
		_ = json.Unmarshal(ev.PDU.Content(), &c)
		switch ev.PDU.Type() {
		case spec.MRoomName:
			if c.Name != "" || !full {
				res.Name = &c.Name
			}
		default:
			if c.URL != "" || !full {
				res.Avatar = &c.URL
			}
		}
	}
	return nil
}

// noLive is the liveAfter of a connection's first response: nothing in it
// is live.
const noLive = math.MaxUint64

// renderOutOfBand renders a room the node does not have, where the user
// was invited over federation: the invite's stripped state, or once it is
// rejected, the leave alone.
func (a *api) renderOutOfBand(ctx context.Context, dev node.Device, ignored map[string]bool, res *ssRoomResult, sent sentRoom, had bool, next sentRoom) (*ssRoomResult, sentRoom, error) {
	if had && sent.membership == res.Membership {
		return nil, sent, nil
	}
	oob, err := a.n.OutOfBandRoom(ctx, dev.UserID, res.roomID)
	if errors.Is(err, core.ErrNotFound) {
		return nil, sent, nil // the room arrived meanwhile: the next response has it
	}
	if err != nil {
		return nil, sent, err
	}
	res.Initial = true
	switch res.Membership {
	case spec.Invite:
		if ignored[string(oob.Event.PDU.SenderID())] {
			return nil, sent, nil
		}
		res.InviteState = outOfBandInviteState(oob)
		res.StrippedState = res.InviteState
	case spec.Leave:
		res.Timeline = ssRenderer(dev).events([]*core.Event{oob.Event})
	default:
		return nil, sent, nil
	}
	return res, next, nil
}
