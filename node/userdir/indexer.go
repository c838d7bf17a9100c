package userdir

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Indexer keeps the directory in the room commit: the joined members'
// profiles and tokens, and whether everyone may find the room's members.
// A batch that changes no member key, no local user's membership and
// neither the join rule nor the history visibility writes nothing.
type Indexer struct {
	D *Directory
}

// Prepare finds the commit of a room joined over federation (catchup.go):
// a local user's join into a room the node does not have yet. Other
// batches cost a look at their events' types.
func (ix Indexer) Prepare(c *core.RoomCommit) (core.IndexPlan, error) {
	localJoin := slices.ContainsFunc(c.Batch.Events, func(p *core.PendingEvent) bool {
		sk := p.PDU.StateKey()
		if !p.Accepted || p.PDU.Type() != spec.MRoomMember || sk == nil || !ix.D.c.IsLocalUser(*sk) {
			return false
		}
		m, err := p.PDU.Membership()
		return err == nil && m == spec.Join
	})
	if !localJoin {
		return core.IndexPlan{}, nil
	}
	var stored bool
	err := ix.D.db.View(func(tx *kv.Txn) error {
		var err error
		stored, err = tx.Has(core.RoomKey(c.RoomID))
		return err
	})
	return core.IndexPlan{Data: !stored && c.Start.Len() > 0}, err
}

// Index writes the batch's changes to the directory in the commit's
// transaction.
func (ix Indexer) Index(tx *kv.Txn, c *core.RoomCommit, plan core.IndexPlan) (func(), error) {
	d := ix.D
	if joined, _ := plan.Data.(bool); joined {
		// The remote members are not among the member changes: index them
		// all once the join is durable, still under the room's lock.
		if err := tx.Set(pendingKey(c.RoomID), []byte{}); err != nil {
			return nil, err
		}
		return func() {
			if err := d.catchUp(c.RoomID); err != nil {
				d.log.Error("user directory: members of a joined room not indexed (done at the next start)", "room", c.RoomID, "err", err)
			}
		}, nil
	}
	roomChanged := stateChanged(c, spec.MRoomJoinRules) || stateChanged(c, spec.MRoomHistoryVisibility)
	for _, ch := range c.MemberChanges {
		if d.c.IsLocalUser(ch.UserID) {
			// A local user's join or leave can start or end the node's
			// following the room (see setFindable).
			roomChanged = true
		}
		if ch.OldMembership != spec.Join && ch.Membership != spec.Join {
			continue
		}
		var rec *memberRecord
		if ch.Membership == spec.Join {
			ev, err := c.Event(tx, ch.NewEventID)
			if err != nil {
				return nil, err
			}
			rec = profileOf(ev)
		}
		if err := setMember(tx, c.RoomID, ch.UserID, rec); err != nil {
			return nil, err
		}
	}
	if roomChanged {
		findable, err := findable(c.Current, c.Members, func(id string) (gomatrixserverlib.PDU, error) { return c.Event(tx, id) })
		if err != nil {
			return nil, err
		}
		if err := setFindable(tx, c.RoomID, findable); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// stateChanged reports whether the batch changed the room's (evType, "")
// state event.
func stateChanged(c *core.RoomCommit, evType string) bool {
	before, _ := c.Start.Get(evType, "")
	after, _ := c.Current.Get(evType, "")
	return before != after
}

// Bounds on what a member record keeps of a member event (which another
// server may fill up to the event size limit).
const (
	maxStoredName   = 512 // bytes of display name
	maxStoredAvatar = 512 // bytes of avatar URL
)

// profileOf reads a member event's display name and avatar; a field that
// is not a string is no field, an avatar that is not an mxc:// URI (the
// spec's pattern) or is over maxStoredAvatar is none, and a name over
// maxStoredName is cut.
func profileOf(ev gomatrixserverlib.PDU) *memberRecord {
	var content struct {
		DisplayName any `json:"displayname"`
		AvatarURL   any `json:"avatar_url"`
	}
	_ = json.Unmarshal(ev.Content(), &content) // an accepted event's content is an object
	rec := &memberRecord{}
	name, _ := content.DisplayName.(string)
	rec.DisplayName = truncate(name, maxStoredName)
	if av, _ := content.AvatarURL.(string); strings.HasPrefix(av, "mxc://") && len(av) <= maxStoredAvatar {
		rec.AvatarURL = av
	}
	return rec
}

// setMember replaces a member's record and tokens in a room (rec nil: the
// user is no longer joined). Only the tokens that change are written.
func setMember(tx *kv.Txn, roomID, userID string, rec *memberRecord) error {
	var old []string
	var oldRec memberRecord
	switch err := tx.GetJSON(memberKey(roomID, userID), &oldRec); {
	case err == nil:
		old = tokens(userID, oldRec.DisplayName)
	case !errors.Is(err, kv.ErrNotFound):
		return err
	}
	var toks []string
	if rec != nil {
		toks = tokens(userID, rec.DisplayName)
		if err := tx.SetJSON(memberKey(roomID, userID), rec); err != nil {
			return err
		}
	} else if old != nil {
		if err := tx.Delete(memberKey(roomID, userID)); err != nil {
			return err
		}
	}
	for _, t := range old {
		if !slices.Contains(toks, t) {
			if err := tx.Delete(tokenKey(t, userID, roomID)); err != nil {
				return err
			}
		}
	}
	for _, t := range toks {
		if !slices.Contains(old, t) {
			if err := tx.Set(tokenKey(t, userID, roomID), []byte{}); err != nil {
				return err
			}
		}
	}
	return nil
}

// findable reports whether everyone may find the members of a room with
// state s: its join rule is public or its history world_readable, and a
// local user is still joined (members is the room's local members), so the
// node still follows who is in it. (A room the node has left keeps its
// last members here, but nobody finds them through it.)
func findable(s *core.State, members map[string]string, event func(id string) (gomatrixserverlib.PDU, error)) (bool, error) {
	localJoined := false
	for _, m := range members {
		if m == spec.Join {
			localJoined = true
			break
		}
	}
	if !localJoined {
		return false, nil
	}
	for _, k := range []struct{ evType, field, value string }{
		{spec.MRoomJoinRules, "join_rule", spec.Public},
		{spec.MRoomHistoryVisibility, "history_visibility", string(gomatrixserverlib.HistoryVisibilityWorldReadable)},
	} {
		id, ok := s.Get(k.evType, "")
		if !ok {
			continue
		}
		ev, err := event(id)
		if err != nil {
			return false, err
		}
		var content map[string]any
		_ = json.Unmarshal(ev.Content(), &content)
		if v, _ := content[k.field].(string); v == k.value {
			return true, nil
		}
	}
	return false, nil
}

// setFindable records whether everyone may find the room's members.
func setFindable(tx *kv.Txn, roomID string, yes bool) error {
	if yes {
		return tx.Set(roomKey(roomID), []byte{})
	}
	return tx.Delete(roomKey(roomID))
}
