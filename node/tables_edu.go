package node

import "github.com/edgenode/edgenode/kv"

// Outbound EDU queues (eduqueue.go) and what inbound EDUs need remembered
// (fededu_in.go). Kept apart from tables.go so the EDU work reads as one
// piece.
const (
	// tEDUQueue holds each destination's queued EDUs, per class (ephemeral
	// or reliable, see eduClass), oldest first within a class.
	tEDUQueue = "eduqueue" // destination, class, seq -> queuedEDU
	// tEDUKey indexes the pending entry of each coalescing key (the latest
	// typing notice of a user in a room, a user's presence, a receipt, a
	// device's update), so a newer one replaces it.
	tEDUKey = "edukey" // destination, coalescing key -> seq (big-endian)
	// tEDUDest counts a destination's entries and lists those carried by the
	// transaction in flight (whose ID is in tFedDest).
	tEDUDest = "edudest" // destination -> eduDestRecord
	// tEDUDevices is what was last announced of a local user's devices, so
	// a device-list change can be turned into per-device updates.
	tEDUDevices = "edudevices" // local user ID -> deviceAnnouncement
	// tEDUSeenMsg remembers the message IDs of the to-device EDUs received
	// lately from a server, so a resent one is not delivered twice.
	tEDUSeenMsg = "eduseenmsg" // origin server -> []string (oldest first)
)

// streamEDUEpoch numbers the node's runs; queue sequence numbers of a run
// start at its epoch << 32, so they keep growing across restarts.
const streamEDUEpoch = "edu_epoch"

func eduQueueKey(dest string, c eduClass, seq uint64) []byte {
	return kv.Key(tEDUQueue, dest, uint64(c), seq)
}
func eduClassPrefix(dest string, c eduClass) []byte { return kv.Key(tEDUQueue, dest, uint64(c)) }
func eduKeyKey(dest, key string) []byte             { return kv.Key(tEDUKey, dest, key) }
func eduDestKey(dest string) []byte                 { return kv.Key(tEDUDest, dest) }
func eduDevicesKey(userID string) []byte            { return kv.Key(tEDUDevices, userID) }
func eduSeenMsgKey(origin string) []byte            { return kv.Key(tEDUSeenMsg, origin) }
