package node

import "github.com/edgenode/edgenode/kv"

// Sticky events (MSC4354; see sticky.go): the index of unexpired sticky
// events beside the event stream, the per-user backlogs made on joining, and
// the expiry index the sweeper walks to delete both.
const (
	tSticky       = "sticky"       // room ID, stream position -> stickyRecord
	tStickyUser   = "stickyuser"   // local user ID, backlog position -> stickyRecord (a join's backlog)
	tStickyJoin   = "stickyjoin"   // local user ID, room ID -> uint64 position of the join that made the backlog
	tStickySoft   = "stickysoft"   // room ID, sender, event ID -> stickyRecord (soft-failed; sticky_softfail.go)
	tStickyExpiry = "stickyexpiry" // end ms, kind, then room ID, position ("r"); user ID, position ("u"); room ID, sender, event ID ("s") -> ""
)

// Kinds of entries in tStickyExpiry.
const (
	stickyKindRoom = "r"
	stickyKindUser = "u"
	stickyKindSoft = "s"
)

func stickyKey(roomID string, pos uint64) []byte { return kv.Key(tSticky, roomID, pos) }
func stickyRoomPrefix(roomID string) []byte      { return kv.Key(tSticky, roomID) }
func stickyUserKey(userID string, pos uint64) []byte {
	return kv.Key(tStickyUser, userID, pos)
}
func stickyUserPrefix(userID string) []byte { return kv.Key(tStickyUser, userID) }
func stickyJoinKey(userID, roomID string) []byte {
	return kv.Key(tStickyJoin, userID, roomID)
}
func stickyExpiryKey(endMS int64, kind, owner string, pos uint64) []byte {
	return kv.Key(tStickyExpiry, uint64(max(endMS, 0)), kind, owner, pos)
}
func stickyExpiryPrefix() []byte { return kv.Key(tStickyExpiry) }
