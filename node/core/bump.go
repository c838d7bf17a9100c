package core

import (
	"encoding/binary"

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
