package core

import (
	"encoding/json"
	"errors"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// HistoryVisibility reads m.room.history_visibility from s ("shared" when unset).
func (n *Node) HistoryVisibility(tx *kv.Txn, s *State) (string, error) {
	id, ok := s.Get(spec.MRoomHistoryVisibility, "")
	if !ok {
		return "shared", nil
	}
	p, err := n.LoadPDU(tx, id)
	if err != nil {
		return "", err
	}
	var c struct {
		HV string `json:"history_visibility"`
	}
	if json.Unmarshal(p.Content(), &c) != nil || c.HV == "" {
		return "shared", nil
	}
	return c.HV, nil
}

// visible applies m.room.history_visibility as in force before the event:
// world_readable events are visible to all; members at the event see it;
// invitees see "invited" history; with "shared" history, a user who is joined
// now, or who was joined at some point after the event, sees it.
func (n *Node) visible(tx *kv.Txn, userID string, ev *Event, rec *EventRecord) (bool, error) {
	before, err := n.States.Read(tx, rec.StateBefore)
	if err != nil {
		return false, err
	}
	hv, err := n.HistoryVisibility(tx, before)
	if err != nil {
		return false, err
	}
	if hv == "world_readable" {
		return true, nil
	}
	if ev.PDU.Type() == spec.MRoomMember && ev.PDU.StateKeyEquals(userID) {
		// Users always see their own membership events (as Synapse does):
		// a leave, kick, ban or rejected invite must reach its subject.
		return true, nil
	}
	membership := ""
	if ev.PDU.Type() == spec.MRoomMember && ev.PDU.StateKeyEquals(userID) {
		membership, _ = ev.PDU.Membership()
	} else if id, ok := before.Get(spec.MRoomMember, userID); ok {
		p, err := n.LoadPDU(tx, id)
		if err != nil {
			return false, err
		}
		membership, _ = p.Membership()
	}
	switch {
	case membership == spec.Join:
		return true, nil
	case membership == spec.Invite && hv == "invited":
		return true, nil
	case hv != "shared":
		return false, nil
	}
	var now MembershipRecord
	err = tx.GetJSON(MembershipKey(userID, rec.RoomID), &now)
	if errors.Is(err, kv.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if now.Membership == spec.Join {
		return true, nil
	}
	if now.Membership != spec.Leave && now.Membership != spec.Ban {
		return false, nil
	}
	// Only if they were joined after the event: a rejected invite or a ban
	// before joining is no membership that shows history.
	end, joined, err := n.lastJoinEnd(tx, userID, now.EventID)
	if err != nil {
		return false, err
	}
	return joined && !TimelineLess(end, rec.Pos), nil // backfilled history comes first
}
