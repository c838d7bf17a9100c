package node

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib"
)

// isBump reports whether an accepted event bumps its room: MSC4186's
// "proper" activity types (with the unstable names of polls and beacons).
func isBump(pdu gomatrixserverlib.PDU) bool {
	switch pdu.Type() {
	case "m.room.create", "m.room.message", "m.room.encrypted", "m.sticker", "m.call.invite",
		"m.poll.start", "m.beacon_info", "org.matrix.msc3381.poll.start", "org.matrix.msc3672.beacon_info":
		return true
	}
	return false
}

// writeBump records pos as the room's latest bump position (in the room's
// commit, so the index never lags the timeline).
func writeBump(tx *kv.Txn, roomID string, pos uint64) error {
	return tx.Set(bumpKey(roomID), binary.BigEndian.AppendUint64(nil, pos))
}

// BumpStamps returns, for each room, the stream position of its latest
// bump event (0 when none is recorded, e.g. a room joined over federation
// whose messages predate the index). One read per room, no timeline scan:
// ordering a user's rooms costs the same whatever their history.
func (n *Node) BumpStamps(ctx context.Context, roomIDs []string) ([]uint64, error) {
	out := make([]uint64, len(roomIDs))
	err := n.db.View(func(tx *kv.Txn) error {
		for i, id := range roomIDs {
			if i%256 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			v, err := tx.Get(bumpKey(id))
			if errors.Is(err, kv.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if len(v) == 8 {
				out[i] = binary.BigEndian.Uint64(v)
			}
		}
		return nil
	})
	return out, err
}
