package core

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// RoomBump is one room of a user's sliding sync room list.
type RoomBump struct {
	RoomID string
	// Bump orders the list: the stream position of the room's latest bump
	// event while the user is joined, else of the user's membership event.
	Bump       uint64
	Membership string
	// Kicked: the user's leave was sent by someone else.
	Kicked bool
}

// userBumpValue encodes an entry: bump, kicked flag, membership's length,
// membership, room ID. The room ID is in the value too so that reading the
// list decodes no keys.
func userBumpValue(b RoomBump) []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 10+len(b.Membership)+len(b.RoomID)), b.Bump)
	k := byte(0)
	if b.Kicked {
		k = 1
	}
	v = append(v, k, byte(len(b.Membership)))
	return append(append(v, b.Membership...), b.RoomID...)
}

func decodeUserBump(v []byte) (RoomBump, error) {
	if len(v) < 10 || len(v) < 10+int(v[9]) {
		return RoomBump{}, fmt.Errorf("user bump index: short value")
	}
	ml := int(v[9])
	return RoomBump{Bump: binary.BigEndian.Uint64(v), Kicked: v[8] == 1, Membership: membershipName(v[10 : 10+ml]),
		RoomID: string(v[10+ml:])}, nil
}

// membershipName returns the constant for a membership, so a list of
// thousands of rooms does not allocate a string per room for it.
func membershipName(b []byte) string {
	for _, m := range []string{spec.Join, spec.Invite, spec.Leave, spec.Ban, spec.Knock} {
		if string(b) == m {
			return m
		}
	}
	return string(b)
}

// SetUserBump puts a user's entry for a room, in place: entries never move,
// so the index holds no deleted keys for a scan to skip.
func SetUserBump(tx *kv.Txn, userID string, b RoomBump) error {
	return tx.Set(userBumpRoomKey(userID, b.RoomID), userBumpValue(b))
}

// deleteUserBump removes a user's entry for a room, if any.
func deleteUserBump(tx *kv.Txn, userID, roomID string) error {
	return tx.Delete(userBumpRoomKey(userID, roomID))
}

// UserBumpIndexer keeps the local users' room lists (writeUserBumps) and
// their cache, which learns of the batch once it is durable.
type UserBumpIndexer struct {
	NoPrepare
	Node *Node
}

// Index writes the room list entries the batch changes.
func (x UserBumpIndexer) Index(tx *kv.Txn, c *RoomCommit, _ IndexPlan) (func(), error) {
	bumped, err := x.Node.writeUserBumps(tx, c)
	if err != nil || len(bumped) == 0 {
		return nil, err
	}
	return func() { x.Node.UserBumps.Apply(bumped) }, nil
}

// writeUserBumps keeps the local users' room lists in order, in the room's
// commit: a local user whose membership changed gets the membership's
// position, and every local joined member gets the batch's bump position
// when it had a bump event. The cost is per local member, not per room of
// theirs.
func (n *Node) writeUserBumps(tx *kv.Txn, c *RoomCommit) ([]UserBumpChange, error) {
	var out []UserBumpChange
	changed := map[string]bool{}
	for _, ch := range c.MemberChanges {
		if ch.NewEventID == "" || !n.IsLocalUser(ch.UserID) {
			continue
		}
		entry := RoomBump{RoomID: c.RoomID, Bump: ch.Pos, Membership: ch.Membership}
		if ch.Membership == spec.Leave {
			pdu, err := c.Event(tx, ch.NewEventID)
			if err != nil {
				return nil, err
			}
			entry.Kicked = string(pdu.SenderID()) != ch.UserID
		}
		if ch.Membership == spec.Join {
			entry.Bump = max(entry.Bump, c.BumpPos)
		}
		changed[ch.UserID] = true
		out = append(out, UserBumpChange{UserID: ch.UserID, Entry: entry})
		if err := SetUserBump(tx, ch.UserID, entry); err != nil {
			return nil, err
		}
	}
	if c.BumpPos == 0 {
		return out, nil
	}
	for u, m := range c.Members {
		if m != spec.Join || changed[u] {
			continue
		}
		entry := RoomBump{RoomID: c.RoomID, Bump: c.BumpPos, Membership: spec.Join}
		out = append(out, UserBumpChange{UserID: u, Entry: entry})
		if err := SetUserBump(tx, u, entry); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RoomsByBump lists a local user's rooms for sliding sync, most recent
// bump first (ties by room ID); the slice is shared, so callers must not
// change it. Lists are cached in memory and kept up to date by the room
// commits, so asking again costs nothing whatever the number of rooms.
// Every membership is listed but forgotten rooms, out-of-band ones
// (invites to rooms this node does not have) included. The first call for
// a user whose rooms predate the index builds it from their memberships.
func (n *Node) RoomsByBump(ctx context.Context, userID string) ([]RoomBump, error) {
	if err := n.buildUserBumps(ctx, userID); err != nil {
		return nil, err
	}
	return n.UserBumps.get(userID, func() ([]RoomBump, error) {
		var out []RoomBump
		err := n.DB.View(func(tx *kv.Txn) error {
			return tx.Each(kv.Scan{Prefix: userBumpRoomPrefix(userID)}, func(_, v []byte) (bool, error) {
				b, err := decodeUserBump(v)
				if err != nil {
					return false, err
				}
				out = append(out, b)
				return true, nil
			})
		})
		return out, err
	})
}

// userBumpBuildChunk is how many rooms one transaction of a build covers,
// so a user in thousands of rooms stays under Badger's transaction limit.
const userBumpBuildChunk = 200

// buildUserBumps makes a user's index from their memberships and the rooms'
// bump stamps, once, a chunk of rooms per transaction. Each room's entry is
// worked out from records read in the transaction that writes it, so a room
// commit racing with it makes that transaction conflict; it is then tried
// again.
func (n *Node) buildUserBumps(ctx context.Context, userID string) error {
	var built bool
	var rooms []string
	err := n.DB.View(func(tx *kv.Txn) error {
		var err error
		if built, err = tx.Has(userBumpBuiltKey(userID)); err != nil || built {
			return err
		}
		return tx.Each(kv.Scan{Prefix: membershipPrefix(userID), KeysOnly: true}, func(k, _ []byte) (bool, error) {
			roomID, err := kv.LastString(k)
			rooms = append(rooms, roomID)
			return err == nil, err
		})
	})
	if err != nil || built {
		return err
	}
	for start := 0; start < len(rooms); start += userBumpBuildChunk {
		chunk := rooms[start:min(start+userBumpBuildChunk, len(rooms))]
		if err := n.retryConflicts(ctx, func(tx *kv.Txn) error { return n.buildUserBumpChunk(tx, userID, chunk) }); err != nil {
			return fmt.Errorf("build room list of %s: %w", userID, err)
		}
	}
	return n.DB.Update(func(tx *kv.Txn) error { return tx.Set(userBumpBuiltKey(userID), nil) })
}

// retryConflicts runs fn in an update transaction, again when it conflicts
// with a concurrent one (a few times at most).
func (n *Node) retryConflicts(ctx context.Context, fn func(tx *kv.Txn) error) error {
	for attempt := 0; ; attempt++ {
		err := n.DB.Update(fn)
		if !errors.Is(err, kv.ErrConflict) || attempt >= 4 || ctx.Err() != nil {
			return err
		}
	}
}

// buildUserBumpChunk writes the index entries of some of a user's rooms.
func (n *Node) buildUserBumpChunk(tx *kv.Txn, userID string, rooms []string) error {
	for _, roomID := range rooms {
		var rec MembershipRecord
		switch err := tx.GetJSON(MembershipKey(userID, roomID), &rec); {
		case errors.Is(err, kv.ErrNotFound):
			continue
		case err != nil:
			return err
		}
		if rec.Forgotten {
			if err := deleteUserBump(tx, userID, roomID); err != nil {
				return err
			}
			continue
		}
		entry := RoomBump{RoomID: roomID, Bump: rec.Pos, Membership: rec.Membership}
		switch rec.Membership {
		case spec.Join:
			v, err := tx.Get(bumpKey(roomID))
			if err != nil && !errors.Is(err, kv.ErrNotFound) {
				return err
			}
			if len(v) == 8 {
				entry.Bump = max(entry.Bump, binary.BigEndian.Uint64(v))
			}
		case spec.Leave:
			if rec.OutOfBand {
				break // a rejected remote invite: the user's own leave
			}
			pdu, err := n.LoadPDU(tx, rec.EventID)
			if err != nil {
				return err
			}
			entry.Kicked = string(pdu.SenderID()) != userID
		}
		if err := SetUserBump(tx, userID, entry); err != nil {
			return err
		}
	}
	return nil
}
