package core

import "github.com/edgenode/edgenode/kv"

// Out-of-band memberships: a local user's invite to a room the node does not
// have (it came over federation with PUT /invite), or the leave that
// rejected it. The user's tMembership entry for the room says OutOfBand and
// carries the stream position; this table holds what that entry cannot.
const (
	TableOutOfBand = "oobmember" // local user ID, room ID -> outOfBandRecord
)

func OutOfBandKey(userID, roomID string) []byte { return kv.Key(TableOutOfBand, userID, roomID) }
