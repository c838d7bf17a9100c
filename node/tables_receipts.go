package node

import "github.com/edgenode/edgenode/kv"

// Receipts and presence: the latest value of each thing, plus a stream index
// holding only the position of each thing's latest change (older entries are
// deleted when superseded). Typing is in memory only.
const (
	tReceipt        = "receipt"        // room ID, user ID, receipt type, thread ID ("" = unthreaded) -> receiptRecord
	tReceiptStream  = "receiptstream"  // position -> receiptRef
	tPresence       = "presence"       // user ID -> presenceRecord
	tPresenceStream = "presencestream" // position -> user ID
)

// Names of the receipt and presence streams (and typing's run counter,
// streamTypingEpoch, in typing.go).
const (
	streamReceipts = "receipts"
	streamPresence = "presence"
)

func receiptKey(roomID, userID, receiptType, threadID string) []byte {
	return kv.Key(tReceipt, roomID, userID, receiptType, threadID)
}
func receiptRoomPrefix(roomID string) []byte { return kv.Key(tReceipt, roomID) }
func receiptStreamKey(p uint64) []byte       { return kv.Key(tReceiptStream, p) }
func presenceKey(userID string) []byte       { return kv.Key(tPresence, userID) }
func presenceStreamKey(p uint64) []byte      { return kv.Key(tPresenceStream, p) }
