package core

import "github.com/edgenode/edgenode/kv"

// Simplified sliding sync (MSC4186): the stream position of each room's
// latest "bump" event, so a room list can be ordered by activity without
// reading any room's timeline.
const (
	tBump = "bump" // room ID -> uint64 stream position, big-endian
)

func bumpKey(roomID string) []byte { return kv.Key(tBump, roomID) }

// Each local user's rooms with their bump stamps (userbump.go), read in one
// prefix scan and sorted in memory for a sliding sync room list.
const (
	tUserBumpRoom  = "userbumproom"  // user ID, room ID -> RoomBump (userBumpValue)
	tUserBumpBuilt = "userbumpbuilt" // user ID -> "" once the user's index covers rooms from before it existed
)

func userBumpRoomKey(userID, roomID string) []byte {
	return kv.Key(tUserBumpRoom, userID, roomID)
}
func userBumpRoomPrefix(userID string) []byte { return kv.Key(tUserBumpRoom, userID) }
func userBumpBuiltKey(userID string) []byte   { return kv.Key(tUserBumpBuilt, userID) }
