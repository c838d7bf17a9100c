package core

import (
	"encoding/json"

	"github.com/edgenode/edgenode/kv"
)

// Out-of-band memberships: a local user's invite to a room the node does not
// have (it came over federation with PUT /invite), or the leave that
// rejected it. The user's tMembership entry for the room says OutOfBand and
// carries the stream position; this table holds what that entry cannot.
const (
	TableOutOfBand = "oobmember" // local user ID, room ID -> outOfBandRecord
)

func OutOfBandKey(userID, roomID string) []byte { return kv.Key(TableOutOfBand, userID, roomID) }

// OutOfBandRoom is what the node has of a room it does not have, for a
// local user with an out-of-band membership in it. The inbound federation
// side stores it; it is here, with the table, because the sync API reads it.
type OutOfBandRoom struct {
	// Event is the user's membership event: the invite, or the leave that
	// rejected it. Its Pos is the membership's stream position.
	Event *Event
	// InviteState is the stripped state events (type, state_key, sender,
	// content) that came with the invite; nil after a rejection.
	InviteState []json.RawMessage
}
