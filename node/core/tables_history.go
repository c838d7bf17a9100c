package core

import "github.com/edgenode/edgenode/kv"

// Room history fetched from other servers (node/inbound/backfill.go): events older than
// the room's first timeline event, in a key range of their own so that
// nothing that reads the room stream (sync above all) ever sees them.
const (
	tRoomBackfill = "roombackfill" // room ID, backfill position -> event ID
	// Outliers fetched on their own (auth events, state at a gap) are stored
	// without knowing the state around them; until they get it (as a prev
	// event at a gap, or placed in the history) they cannot be a prev event.
	tOutlierNoState = "outliernostate" // event ID -> ""
)

// Backfill positions. Backfilled events have no stream position: they are
// older than everything the node has. They get positions backfillPos(k),
// where k counts from 1 (just before the room's first timeline event)
// backwards in time. base-k grows as events get newer, so within the range
// numeric order is timeline order and a position minus one is the one
// before it, as for stream positions; and the whole range sits above any
// stream position (a Badger sequence never reaches 2^62), where no sync
// token ever points. timelineOrder puts the range before stream positions.
const (
	BackfillBase  uint64 = 1 << 63
	backfillFloor uint64 = 1 << 62
)

// BackfillPos is the position of the k-th backfilled event (k >= 1).
func BackfillPos(k uint64) uint64 { return BackfillBase - k }

// IsBackfillPos reports whether p is in the backfill range.
func IsBackfillPos(p uint64) bool { return p > backfillFloor && p < BackfillBase }

// timelineOrder maps a position to its place in the room's timeline:
// backfill positions before every stream position, each range in its own
// numeric order.
func timelineOrder(p uint64) int64 {
	if IsBackfillPos(p) {
		return -int64(BackfillBase - p)
	}
	return int64(p)
}

func RoomBackfillKey(roomID string, p uint64) []byte { return kv.Key(tRoomBackfill, roomID, p) }
func RoomBackfillPrefix(roomID string) []byte        { return kv.Key(tRoomBackfill, roomID) }
func OutlierNoStateKey(eventID string) []byte        { return kv.Key(tOutlierNoState, eventID) }
