package inbound

import (
	"context"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Inbound PDUs for a room in which no local user is joined are refused
// without being input: the node keeps a room's events for its users, and a
// room they have all left (or that only a test set up, with no local
// member) is nobody's here. Resident servers stop sending to a server
// whose users have left; anything still sent would only take disk. Invites
// come through the invite endpoint (fedinvite.go), and a room known only
// from an invite is not a room here (outofband.go); a membership event of
// a local user that does come through /send is let in all the same. A room
// a local user is joining right now is waited for (joining.go) before it
// is judged.

// aboutLocalMember reports whether a PDU is a membership event of a local
// user (an invite into a room the user left, say): such an event is let
// in even where no local user is joined, so it reaches the user.
func (n *Inbound) aboutLocalMember(h *pduHeader) bool {
	return h.Type == spec.MRoomMember && h.StateKey != nil && n.IsLocalUser(*h.StateKey)
}

// roomsWithoutLocalJoin is the set of rooms the headers name that the node
// has but where no local user is joined. Rooms versions does not know are
// not in it (they are refused as unknown), nor, with allowNew, rooms a
// create event of the batch starts.
func (n *Inbound) roomsWithoutLocalJoin(ctx context.Context, headers []*pduHeader, versions map[string]gomatrixserverlib.RoomVersion, allowNew bool) (map[string]bool, error) {
	creating := map[string]bool{}
	if allowNew {
		for _, h := range headers {
			if h != nil && h.isCreate() {
				creating[h.RoomID] = true
			}
		}
	}
	check := func() (map[string]bool, error) {
		out := map[string]bool{}
		seen := map[string]bool{}
		err := n.DB.View(func(tx *kv.Txn) error {
			for _, h := range headers {
				if h == nil || seen[h.RoomID] || creating[h.RoomID] {
					continue
				}
				seen[h.RoomID] = true
				if _, ok := versions[h.RoomID]; !ok {
					continue
				}
				joined, err := hasLocalJoin(tx, h.RoomID)
				if err != nil {
					return err
				}
				if !joined {
					out[h.RoomID] = true
				}
			}
			return nil
		})
		return out, err
	}
	out, err := check()
	if err != nil || len(out) == 0 {
		return out, err
	}
	for roomID := range out {
		n.joining.wait(ctx, roomID)
	}
	// Checked again whether a join was waited for or not: one may have
	// ended between the first check and the wait, and its room would be
	// refused though a local user is now in it.
	return check()
}

// hasLocalJoin reports whether a local user is joined to roomID.
func hasLocalJoin(tx *kv.Txn, roomID string) (bool, error) {
	joined := false
	err := tx.Each(kv.Scan{Prefix: core.LocalMemberPrefix(roomID)}, func(_, v []byte) (bool, error) {
		joined = string(v) == spec.Join
		return !joined, nil
	})
	return joined, err
}
