package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
)

// Out-of-band memberships: a local user invited over federation to a room
// the node does not have yet. The node has no state and no room record for
// such a room, only the invite (and the stripped state that came with it),
// or later the leave that rejected it. Joining the room replaces all of it
// with the room itself (joinVia drops the record).

// outOfBandRecord is tOutOfBand's value.
type outOfBandRecord struct {
	Version gomatrixserverlib.RoomVersion `json:"v"`
	// Event is the invite (signed by the inviting server and this one), or
	// the leave that rejected it.
	Event json.RawMessage `json:"e"`
	// InviteState is the stripped state sent with the invite, each entry
	// {type, state_key, sender, content}; none after a rejection.
	InviteState []json.RawMessage `json:"s,omitempty"`
}

// OutOfBandRoom returns a local user's out-of-band membership in a room the
// node does not have; ErrNotFound when there is none.
func (n *Inbound) OutOfBandRoom(ctx context.Context, userID, roomID string) (*core.OutOfBandRoom, error) {
	var (
		m   core.MembershipRecord
		rec outOfBandRecord
	)
	err := n.DB.View(func(tx *kv.Txn) error {
		if err := tx.GetJSON(core.MembershipKey(userID, roomID), &m); err != nil {
			return err
		}
		if !m.OutOfBand {
			return kv.ErrNotFound
		}
		return tx.GetJSON(core.OutOfBandKey(userID, roomID), &rec)
	})
	if errors.Is(err, kv.ErrNotFound) {
		return nil, fmt.Errorf("out-of-band membership of %s in %s: %w", userID, roomID, core.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	verImpl, err := gomatrixserverlib.GetRoomVersion(rec.Version)
	if err != nil {
		return nil, fmt.Errorf("out-of-band membership of %s in %s: %w", userID, roomID, err)
	}
	pdu, err := verImpl.NewEventFromTrustedJSON(rec.Event, false)
	if err != nil {
		return nil, fmt.Errorf("out-of-band membership of %s in %s: %w", userID, roomID, err)
	}
	pdu.EventID()
	return &core.OutOfBandRoom{Event: &core.Event{PDU: pdu, Pos: m.Pos}, InviteState: rec.InviteState}, nil
}

// errRoomKnown: the room is on the node, so a membership in it is not out
// of band (it comes through the room).
var errRoomKnown = errors.New("room is known")

// errSameMembership: the out-of-band membership event is already stored.
var errSameMembership = errors.New("out-of-band membership unchanged")

// storeOutOfBand records ev as userID's membership in a room the node does
// not have, at a new stream position, and wakes the user's syncs. It
// returns errRoomKnown (nothing stored) when the room is on the node, and
// errSameMembership when ev is already the user's membership event.
func (n *Inbound) storeOutOfBand(ctx context.Context, userID, roomID, membership string, ev gomatrixserverlib.PDU, rec outOfBandRecord) error {
	// The room lock orders this against the room becoming known (joinVia
	// and all room input hold it).
	mu, err := n.LockRoom(ctx, roomID)
	if err != nil {
		return err
	}
	defer mu.Unlock()
	// Returning an error from the commit function leaves the position unused.
	var bumped core.RoomBump // the user's room list entry (userbump.go)
	_, err = n.Stream.Commit(1, func(tx *kv.Txn, pos uint64) error {
		if ok, err := tx.Has(core.RoomKey(roomID)); err != nil || ok {
			if ok {
				err = errRoomKnown
			}
			return err
		}
		var cur core.MembershipRecord
		switch err := tx.GetJSON(core.MembershipKey(userID, roomID), &cur); {
		case err == nil && cur.EventID == ev.EventID():
			return errSameMembership
		case err != nil && !errors.Is(err, kv.ErrNotFound):
			return err
		}
		if err := tx.SetJSON(core.OutOfBandKey(userID, roomID), rec); err != nil {
			return err
		}
		bumped = core.RoomBump{RoomID: roomID, Bump: pos, Membership: membership}
		if err := core.SetUserBump(tx, userID, bumped); err != nil {
			return err
		}
		return tx.SetJSON(core.MembershipKey(userID, roomID), core.MembershipRecord{
			Membership: membership, EventID: ev.EventID(), Pos: pos, OutOfBand: true,
		})
	})
	if err != nil {
		return err
	}
	n.UserBumps.Apply([]core.UserBumpChange{{UserID: userID, Entry: bumped}})
	n.Notifier.Wake(userID)
	return nil
}

// InviterServers is the server of whoever invited userID to a room the node
// does not have (none without such an invite): the one server known to be
// in the room.
func (n *Inbound) InviterServers(userID, roomID string) []string {
	var rec outOfBandRecord
	if err := n.DB.View(func(tx *kv.Txn) error { return tx.GetJSON(core.OutOfBandKey(userID, roomID), &rec) }); err != nil {
		return nil
	}
	var hdr struct {
		Sender string `json:"sender"`
	}
	if json.Unmarshal(rec.Event, &hdr) != nil || core.ServerOf(hdr.Sender) == "" {
		return nil
	}
	return []string{core.ServerOf(hdr.Sender)}
}

// dropOutOfBand deletes userID's out-of-band record for a room that is now
// on the node (its membership index entry is rewritten by the room's
// commit).
func dropOutOfBand(userID, roomID string) func(*kv.Txn) error {
	return func(tx *kv.Txn) error { return tx.Delete(core.OutOfBandKey(userID, roomID)) }
}
