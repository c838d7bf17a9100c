package node

import "github.com/edgenode/edgenode/kv"

// Every table the node keeps, in one place, so the key layout can be read at
// a glance. Components after the table name are listed in the comments.
const (
	tAccount     = "account"     // localpart -> accountRecord
	tDevice      = "device"      // user ID, device ID -> deviceRecord
	tToken       = "token"       // sha256(token) -> tokenRecord
	tEvent       = "event"       // event ID -> eventRecord
	tEventJSON   = "eventjson"   // event ID -> the event's JSON (redacted once redacted)
	tRoom        = "room"        // room ID -> roomRecord
	tRoomStream  = "roomstream"  // room ID, position -> event ID (the room's timeline)
	tStream      = "evstream"    // position -> streamEntry (all rooms)
	tSnapshot    = "snapshot"    // snapshot ID -> superblock hashes
	tStateSuper  = "statesuper"  // superblock hash -> block hashes
	tStateBlock  = "stateblock"  // block hash -> state entries
	tMembership  = "membership"  // user ID, room ID -> membershipRecord
	tLocalMember = "localmember" // room ID, local user ID -> "join" or "invite"
	tUnread      = "unread"      // local user ID, room ID -> unreadRecord, binary (absent: nothing unread)
	tTxn         = "txn"         // user ID, device ID, endpoint, path parameters..., txn ID -> event ID (txnscope.go)
	tAlias       = "alias"       // alias -> aliasRecord
	tRoomAliases = "roomaliases" // room ID, alias -> ""
	tProfile     = "profile"     // user ID -> Profile
	tFilter      = "filter"      // user ID, filter ID -> filter JSON
	tCounter     = "counter"     // name -> uint64 (filter IDs and the like)

	// Outbound federation (fedqueue.go): the room's joined servers, and per
	// destination server a queue of local events to send and its bookkeeping.
	tRoomServers = "roomservers" // room ID, server name -> uint64 joined members, big-endian
	tFedQueue    = "fedqueue"    // destination, stream position -> event ID [NUL, sticky end] (fedQueueValue)
	tFedDest     = "feddest"     // destination -> fedDestRecord (count, transaction in flight, scan head)

	// End-to-end encryption: to-device inboxes, device and one-time keys,
	// cross-signing keys and signatures, and the device-list change log.
	tToDevice       = "todevice"       // user ID, device ID, position -> ToDeviceEvent (the device's inbox)
	tToDeviceCount  = "todevicecount"  // user ID, device ID -> uint64, messages in the inbox
	tToDeviceTxn    = "todevicetxn"    // sender user ID, device ID -> recent txn IDs ([]string)
	tDeviceKeys     = "devicekeys"     // user ID, device ID -> device_keys JSON as uploaded
	tOTKMeta        = "otkmeta"        // user ID, device ID -> otkMeta (counts, fallback keys)
	tOTK            = "otk"            // user ID, device ID, algorithm, upload seq, key ID -> key JSON
	tCrossSigning   = "crosssigning"   // user ID, usage -> cross-signing key JSON
	tKeySig         = "keysig"         // user ID, key ID, signer user ID -> map signer key ID -> signature
	tDeviceList     = "devicelist"     // position -> user ID (only each user's latest change)
	tDeviceListUser = "devicelistuser" // user ID -> its position in tDeviceList
)

// Names of the node's streams.
const streamRoomEvents = "room_events"

// Names of the end-to-end encryption streams.
const (
	streamToDevice    = "to_device"
	streamDeviceLists = "device_lists"
)

// Account data, receipts and presence: the latest value of each thing, plus
// a stream index holding only the position of each thing's latest change
// (older entries are deleted when superseded). Typing is in memory only.
const (
	tAccountData       = "accountdata"       // user ID, room ID ("" = global), type -> accountDataRecord
	tAccountDataStream = "accountdatastream" // user ID, position -> accountDataRef
	tReceipt           = "receipt"           // room ID, user ID, receipt type, thread ID ("" = unthreaded) -> receiptRecord
	tReceiptStream     = "receiptstream"     // position -> receiptRef
	tPresence          = "presence"          // user ID -> presenceRecord
	tPresenceStream    = "presencestream"    // position -> user ID
)

// Names of the account data, receipt and presence streams (and typing's
// run counter, streamTypingEpoch, in typing.go).
const (
	streamAccountData = "account_data"
	streamReceipts    = "receipts"
	streamPresence    = "presence"
)

func accountDataKey(userID, roomID, evType string) []byte {
	return kv.Key(tAccountData, userID, roomID, evType)
}
func accountDataStreamKey(userID string, p uint64) []byte {
	return kv.Key(tAccountDataStream, userID, p)
}
func accountDataStreamPrefix(userID string) []byte { return kv.Key(tAccountDataStream, userID) }
func receiptKey(roomID, userID, receiptType, threadID string) []byte {
	return kv.Key(tReceipt, roomID, userID, receiptType, threadID)
}
func receiptRoomPrefix(roomID string) []byte { return kv.Key(tReceipt, roomID) }
func receiptStreamKey(p uint64) []byte       { return kv.Key(tReceiptStream, p) }
func presenceKey(userID string) []byte       { return kv.Key(tPresence, userID) }
func presenceStreamKey(p uint64) []byte      { return kv.Key(tPresenceStream, p) }

func accountKey(localpart string) []byte           { return kv.Key(tAccount, localpart) }
func deviceKey(userID, deviceID string) []byte     { return kv.Key(tDevice, userID, deviceID) }
func devicePrefix(userID string) []byte            { return kv.Key(tDevice, userID) }
func tokenKey(hash string) []byte                  { return kv.Key(tToken, hash) }
func eventJSONKey(eventID string) []byte           { return kv.Key(tEventJSON, eventID) }
func eventKey(eventID string) []byte               { return kv.Key(tEvent, eventID) }
func roomKey(roomID string) []byte                 { return kv.Key(tRoom, roomID) }
func roomStreamKey(roomID string, p uint64) []byte { return kv.Key(tRoomStream, roomID, p) }
func roomStreamPrefix(roomID string) []byte        { return kv.Key(tRoomStream, roomID) }
func streamKey(p uint64) []byte                    { return kv.Key(tStream, p) }
func snapshotKey(id string) []byte                 { return kv.Key(tSnapshot, id) }
func stateSuperKey(hash string) []byte             { return kv.Key(tStateSuper, hash) }
func stateBlockKey(hash string) []byte             { return kv.Key(tStateBlock, hash) }
func membershipKey(userID, roomID string) []byte   { return kv.Key(tMembership, userID, roomID) }
func membershipPrefix(userID string) []byte        { return kv.Key(tMembership, userID) }
func localMemberKey(roomID, userID string) []byte  { return kv.Key(tLocalMember, roomID, userID) }
func localMemberPrefix(roomID string) []byte       { return kv.Key(tLocalMember, roomID) }
func unreadKey(userID, roomID string) []byte       { return kv.Key(tUnread, userID, roomID) }

// txnKey is in txnscope.go.

func aliasKey(alias string) []byte             { return kv.Key(tAlias, alias) }
func roomAliasKey(roomID, alias string) []byte { return kv.Key(tRoomAliases, roomID, alias) }
func profileKey(userID string) []byte          { return kv.Key(tProfile, userID) }
func filterKey(userID, filterID string) []byte { return kv.Key(tFilter, userID, filterID) }
func counterKey(name string) []byte            { return kv.Key(tCounter, name) }

func toDeviceKey(userID, deviceID string, p uint64) []byte {
	return kv.Key(tToDevice, userID, deviceID, p)
}
func toDevicePrefix(userID, deviceID string) []byte { return kv.Key(tToDevice, userID, deviceID) }
func toDeviceCountKey(userID, deviceID string) []byte {
	return kv.Key(tToDeviceCount, userID, deviceID)
}
func toDeviceTxnKey(userID, deviceID string) []byte { return kv.Key(tToDeviceTxn, userID, deviceID) }
func deviceKeysKey(userID, deviceID string) []byte  { return kv.Key(tDeviceKeys, userID, deviceID) }
func deviceKeysPrefix(userID string) []byte         { return kv.Key(tDeviceKeys, userID) }
func otkMetaKey(userID, deviceID string) []byte     { return kv.Key(tOTKMeta, userID, deviceID) }
func otkKey(userID, deviceID, alg string, seq uint64, keyID string) []byte {
	return kv.Key(tOTK, userID, deviceID, alg, seq, keyID)
}
func otkAlgPrefix(userID, deviceID, alg string) []byte { return kv.Key(tOTK, userID, deviceID, alg) }
func otkDevicePrefix(userID, deviceID string) []byte   { return kv.Key(tOTK, userID, deviceID) }
func crossSigningKey(userID, usage string) []byte      { return kv.Key(tCrossSigning, userID, usage) }
func keySigKey(userID, keyID, signer string) []byte    { return kv.Key(tKeySig, userID, keyID, signer) }
func keySigPrefix(userID, keyID string) []byte         { return kv.Key(tKeySig, userID, keyID) }
func deviceListKey(p uint64) []byte                    { return kv.Key(tDeviceList, p) }
func deviceListUserKey(userID string) []byte           { return kv.Key(tDeviceListUser, userID) }
