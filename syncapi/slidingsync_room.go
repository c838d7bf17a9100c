package syncapi

import (
	"context"
	"encoding/json"
	"errors"
	"math"

	"github.com/edgenode/edgenode/node"
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
	timeline []*node.Event
	// members are member events seen, for the e2ee extension's device lists.
	members []*node.Event
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
	if m.OutOfBand {
		return a.renderOutOfBand(ctx, dev, ignored, res, sent, had, next)
	}
	if m.Membership == spec.Invite || m.Membership == spec.Knock {
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
	upper, last := to.Room, ""
	if m.Membership != spec.Join {
		upper, last = m.Pos, m.EventID // left, kicked or banned: up to that
		next.pos = upper
	}
	// The room comes whole the first time, after the user (re)joined, and
	// when a larger timeline is asked for than the client has.
	initial := !had || (sent.membership != spec.Join && m.Membership == spec.Join)
	expanded := !initial && job.cfg.limit > sent.limit
	full := initial || expanded
	stateChanged := !full && !stateCovered(sent.stateKey, next.stateKey)
	notify, highlight := 0, 0
	if m.Membership == spec.Join {
		var err error
		if notify, highlight, err = a.n.UnreadCounts(ctx, dev.UserID, m.RoomID); err != nil {
			return nil, sent, err
		}
	}
	next.notify, next.highlight = notify, highlight
	countsChanged := !had || notify != sent.notify || highlight != sent.highlight || m.Membership != sent.membership

	req := &syncRequest{dev: dev, ignored: ignored,
		filter: &Filter{Room: RoomFilter{Timeline: RoomEventFilter{EventFilter: EventFilter{Limit: max(job.cfg.limit, 1)}}}}}
	var lower uint64
	if !full {
		lower = sent.pos
	}
	w, err := a.window(ctx, req, m.RoomID, lower, upper, !full, last)
	if err != nil {
		return nil, sent, err
	}
	if w.untouched && !stateChanged && !countsChanged {
		return nil, sent, nil
	}
	if w.endState == nil {
		if w.endState, err = a.n.RoomStateAt(ctx, m.RoomID, upper); err != nil {
			return nil, sent, err
		}
	}
	evs := w.events
	if len(evs) > job.cfg.limit {
		evs, w.limited = evs[len(evs)-job.cfg.limit:], true
	}
	if w.limited {
		next.limit = job.cfg.limit
	} else if !full {
		next.limit = max(sent.limit, job.cfg.limit)
	}
	// An expanded timeline comes with everything else whole too, so it is
	// marked initial: clients (matrix-js-sdk) then treat events they lack
	// before ones they have as scrollback, not as new.
	res.Initial, res.ExpandedTimeline, res.timeline = full, expanded, evs
	r := newRenderer(&Filter{}, dev, true)
	res.Timeline = r.events(evs)
	res.Limited = w.limited
	if len(evs) > 0 {
		res.PrevBatch = StreamToken{Room: evs[0].Pos - 1}.String()
	} else {
		res.PrevBatch = StreamToken{Room: upper}.String()
	}
	live := 0
	for _, ev := range evs {
		if ev.Pos > liveAfter {
			live++
		}
	}
	res.NumLive = &live

	// Required state: everything the config wants when the room comes
	// whole or the config changed, else what changed since it was sent.
	var entries []stateEntry
	if full || stateChanged {
		entries = stateDelta(nil, w.endState)
	} else {
		from, err := a.n.RoomStateAt(ctx, m.RoomID, sent.pos)
		if err != nil {
			return nil, sent, err
		}
		entries = stateDelta(from, w.endState)
	}
	membersChanged := full || membersChanged(entries, evs)
	var ids []string
	have := map[node.StateKey]bool{}
	for _, e := range entries {
		if job.cfg.wants(e.key, dev.UserID) || (job.cfg.lazy() && !w.limited && !full && e.key.EventType == spec.MRoomMember) {
			ids = append(ids, e.id)
			have[e.key] = true
		}
	}
	if job.cfg.lazy() {
		for _, ev := range evs {
			for _, u := range []string{string(ev.PDU.SenderID()), stateKeyOfMember(ev)} {
				k := node.StateKey{EventType: spec.MRoomMember, StateKey: u}
				if u == "" || have[k] {
					continue
				}
				if id, ok := w.endState.Get(spec.MRoomMember, u); ok {
					ids = append(ids, id)
					have[k] = true
				}
			}
		}
	}
	stateEvs, err := a.n.Events(ctx, ids)
	if err != nil {
		return nil, sent, err
	}
	res.RequiredState = r.events(stateEvs)
	for _, ev := range append(stateEvs, evs...) {
		if ev.PDU.Type() == spec.MRoomMember {
			res.members = append(res.members, ev)
		}
	}

	if full || stateChanged || hasKey(entries, spec.MRoomName) || hasKey(entries, "m.room.avatar") {
		if err := a.nameAndAvatar(ctx, w.endState, res, full); err != nil {
			return nil, sent, err
		}
	}
	if membersChanged {
		ms, err := a.memberStats(ctx, dev.UserID, w.endState)
		if err != nil {
			return nil, sent, err
		}
		res.JoinedCount, res.InvitedCount = &ms.joined, &ms.invited
		if res.Name == nil {
			for _, ev := range ms.heroes {
				var c struct {
					DisplayName string `json:"displayname"`
					AvatarURL   string `json:"avatar_url"`
				}
				_ = json.Unmarshal(ev.PDU.Content(), &c)
				res.Heroes = append(res.Heroes, ssHero{UserID: *ev.PDU.StateKey(), DisplayName: c.DisplayName, AvatarURL: c.AvatarURL})
			}
		}
	}
	if m.Membership == spec.Join && (countsChanged || full) {
		res.NotificationCount, res.HighlightCount = &notify, &highlight
	}
	return res, next, nil
}

// stateKeyOfMember is a member event's target, "" for other events.
func stateKeyOfMember(ev *node.Event) string {
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
func (a *api) nameAndAvatar(ctx context.Context, s *node.State, res *ssRoomResult, full bool) error {
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
	if errors.Is(err, node.ErrNotFound) {
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
		res.Timeline = newRenderer(&Filter{}, dev, true).events([]*node.Event{oob.Event})
	default:
		return nil, sent, nil
	}
	return res, next, nil
}
