package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

func senderOf(userID string) spec.SenderID { return spec.SenderID(userID) }

// MembershipChange is a membership event a local user asks for.
type MembershipChange struct {
	Sender   string
	DeviceID string
	RoomID   string
	Target   string
	// Membership is join, invite, leave or ban.
	Membership string
	Reason     string
	IsDirect   bool
	TxnID      string
	// Servers are the servers to join through when the room is unknown here
	// (a join of the sender only); none means the room ID's server.
	Servers []string
}

// ChangeMembership sends a membership event for Target. Joins of a user who
// is already joined are a no-op; unbanning needs the target to be banned. A
// user's own join of a room the node does not have goes over federation,
// through mc.Servers (see SetRemote).
func (n *Node) ChangeMembership(ctx context.Context, mc MembershipChange) (string, error) {
	if _, err := spec.NewUserID(mc.Target, true); err != nil {
		return "", fmt.Errorf("%w: user ID %q", ErrInvalidParam, mc.Target)
	}
	if (mc.Membership == spec.Join || mc.Membership == spec.Leave) && mc.Target == mc.Sender {
		if known, err := n.RoomExists(ctx, mc.RoomID); err != nil {
			return "", err
		} else if !known && mc.Membership == spec.Leave {
			return n.federation.RejectOutOfBand(ctx, mc) // an invite to a room not here (node/inbound/fedleave.go)
		} else if !known {
			return n.federation.JoinRemote(ctx, mc, mc.Servers)
		}
	}
	current, err := n.Membership(ctx, mc.RoomID, mc.Target)
	if err != nil {
		return "", err
	}
	if mc.Membership == spec.Join && current.Membership == spec.Join {
		return current.EventID, nil
	}
	content := map[string]any{"membership": mc.Membership}
	if mc.Reason != "" {
		content["reason"] = mc.Reason
	}
	if mc.IsDirect {
		content["is_direct"] = true
	}
	if mc.Target == mc.Sender || mc.Membership == spec.Invite {
		// A user's own member events, and invites to them, carry their profile.
		if p, err := n.Profile(ctx, mc.Target); err == nil {
			SetOrDelete(content, "displayname", p.DisplayName)
			SetOrDelete(content, "avatar_url", p.AvatarURL)
		}
	}
	raw, _ := json.Marshal(content)
	req := SendRequest{
		Sender: mc.Sender, DeviceID: mc.DeviceID, RoomID: mc.RoomID, Type: spec.MRoomMember,
		StateKey: &mc.Target, Content: raw, TxnID: mc.TxnID,
	}
	if mc.Membership == spec.Invite && !n.IsLocalUser(mc.Target) {
		return n.federation.InviteRemote(ctx, req) // the invitee's server signs first (node/inbound/fedinvite.go)
	}
	return n.SendEvent(ctx, req)
}

// Unban lifts a ban; a target who is not banned is ErrForbidden.
func (n *Node) Unban(ctx context.Context, mc MembershipChange) (string, error) {
	current, err := n.Membership(ctx, mc.RoomID, mc.Target)
	if err != nil {
		return "", err
	}
	if current.Membership != spec.Ban {
		return "", fmt.Errorf("%w: %s is not banned", ErrForbidden, mc.Target)
	}
	mc.Membership = spec.Leave
	return n.ChangeMembership(ctx, mc)
}

// Join joins a local user to a room given by ID or alias, and returns the
// room ID. A room the node does not have is joined through the room ID's
// server.
func (n *Node) Join(ctx context.Context, userID, deviceID, roomIDOrAlias string) (string, error) {
	return n.JoinVia(ctx, userID, deviceID, roomIDOrAlias, nil)
}

// JoinVia is Join through the given servers when the room is not known here
// (and, for an alias, through the servers its resolution names).
func (n *Node) JoinVia(ctx context.Context, userID, deviceID, roomIDOrAlias string, servers []string) (string, error) {
	roomID := roomIDOrAlias
	if strings.HasPrefix(roomIDOrAlias, "#") {
		// Another server's alias is resolved by it (LookupAlias), and the
		// servers it names are joined through after the given ones.
		ra, err := n.federation.LookupAlias(ctx, roomIDOrAlias)
		if err != nil {
			return "", err
		}
		roomID, servers = ra.RoomID, append(slices.Clip(servers), ra.Servers...)
	} else if _, err := spec.NewRoomID(roomIDOrAlias); err != nil {
		return "", fmt.Errorf("%w: %q is neither a room ID nor an alias", ErrInvalidParam, roomIDOrAlias)
	}
	_, err := n.ChangeMembership(ctx, MembershipChange{
		Sender: userID, DeviceID: deviceID, RoomID: roomID, Target: userID, Membership: spec.Join, Servers: servers,
	})
	return roomID, err
}

// MembershipInfo is a user's membership in a room as the node knows it.
type MembershipInfo struct {
	// Membership is "" when the user never had one.
	Membership string
	EventID    string
	Pos        uint64
	Forgotten  bool
	// OutOfBand: the room is not on this node; the user was invited to it
	// over federation (or rejected such an invite). See OutOfBandRoom.
	OutOfBand bool
}

// Membership returns a user's current membership in a room. An unknown room
// is ErrNotFound, unless the user has an out-of-band membership in it.
func (n *Node) Membership(ctx context.Context, roomID, userID string) (MembershipInfo, error) {
	var mi MembershipInfo
	err := n.DB.View(func(tx *kv.Txn) error {
		known, err := tx.Has(RoomKey(roomID))
		if err != nil {
			return err
		}
		var rec MembershipRecord
		switch err := tx.GetJSON(MembershipKey(userID, roomID), &rec); {
		case errors.Is(err, kv.ErrNotFound):
		case err != nil:
			return err
		}
		if !known && !rec.OutOfBand {
			return fmt.Errorf("room %s: %w", roomID, ErrNotFound)
		}
		mi = MembershipInfo(rec)
		return nil
	})
	return mi, err
}

// RoomMembership is one entry of a user's membership list.
type RoomMembership struct {
	RoomID string
	MembershipInfo
}

// Memberships lists every room a user has a membership in.
func (n *Node) Memberships(ctx context.Context, userID string) ([]RoomMembership, error) {
	var out []RoomMembership
	err := n.DB.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: membershipPrefix(userID)}, func(k, v []byte) (bool, error) {
			roomID, err := kv.LastString(k)
			if err != nil {
				return false, err
			}
			var rec MembershipRecord
			if err := DecodeJSON(v, &rec); err != nil {
				return false, err
			}
			out = append(out, RoomMembership{RoomID: roomID, MembershipInfo: MembershipInfo(rec)})
			return true, nil
		})
	})
	return out, err
}

// JoinedRooms lists the rooms a user is joined to.
func (n *Node) JoinedRooms(ctx context.Context, userID string) ([]string, error) {
	all, err := n.Memberships(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, m := range all {
		if m.Membership == spec.Join {
			out = append(out, m.RoomID)
		}
	}
	return out, nil
}

// Forget hides a room the user has left from their room lists. A joined or
// invited user must leave first.
func (n *Node) Forget(ctx context.Context, userID, roomID string) error {
	err := n.DB.Update(func(tx *kv.Txn) error {
		var rec MembershipRecord
		if err := tx.GetJSON(MembershipKey(userID, roomID), &rec); err != nil {
			if errors.Is(err, kv.ErrNotFound) {
				return fmt.Errorf("%w: not a member of %s", ErrNotFound, roomID)
			}
			return err
		}
		if rec.Membership == spec.Join || rec.Membership == spec.Invite {
			return fmt.Errorf("%w: leave the room before forgetting it", ErrBadInput)
		}
		rec.Forgotten = true
		if err := deleteUserBump(tx, userID, roomID); err != nil {
			return err
		}
		return tx.SetJSON(MembershipKey(userID, roomID), rec)
	})
	if err == nil {
		n.UserBumps.Apply([]UserBumpChange{{UserID: userID, Entry: RoomBump{RoomID: roomID}, deleted: true}})
	}
	return err
}

// EachJoinedRoom calls fn with each room userID is joined to, until fn
// returns false.
func EachJoinedRoom(tx *kv.Txn, userID string, fn func(roomID string) (bool, error)) error {
	return tx.Each(kv.Scan{Prefix: membershipPrefix(userID)}, func(k, v []byte) (bool, error) {
		var rec MembershipRecord
		if err := DecodeJSON(v, &rec); err != nil {
			return false, err
		}
		if rec.Membership != spec.Join {
			return true, nil
		}
		roomID, err := kv.LastString(k)
		if err != nil {
			return false, err
		}
		return fn(roomID)
	})
}
