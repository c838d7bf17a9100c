package node

import "github.com/edgenode/edgenode/kv"

// Simplified sliding sync (MSC4186): the stream position of each room's
// latest "bump" event, so a room list can be ordered by activity without
// reading any room's timeline.
const (
	tBump = "bump" // room ID -> uint64 stream position, big-endian
)

func bumpKey(roomID string) []byte { return kv.Key(tBump, roomID) }
