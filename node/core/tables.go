package core

import "github.com/edgenode/edgenode/kv"

// The room core's tables, in one place, so the key layout can be read at a
// glance; each concern keeps its own tables in a tables_*.go file of its
// own. Components after the table name are listed in the comments.
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
	TableUnread  = "unread"      // local user ID, room ID -> unreadRecord, binary (absent: nothing unread)
	TableTxn     = "txn"         // user ID, device ID, endpoint, path parameters..., txn ID -> event ID (txnscope.go)
	tAlias       = "alias"       // alias -> aliasRecord
	tRoomAliases = "roomaliases" // room ID, alias -> ""
	tProfile     = "profile"     // user ID -> Profile
	tFilter      = "filter"      // user ID, filter ID -> filter JSON
	tCounter     = "counter"     // name -> uint64 (filter IDs and the like)

	// The room's joined servers (sharedservers.go).
	TableRoomServers = "roomservers" // room ID, server name -> uint64 joined members, big-endian
)

// Names of the node's streams.
const streamRoomEvents = "room_events"

func AccountKey(localpart string) []byte       { return kv.Key(tAccount, localpart) }
func DeviceKey(userID, deviceID string) []byte { return kv.Key(tDevice, userID, deviceID) }
func DevicePrefix(userID string) []byte        { return kv.Key(tDevice, userID) }
func TokenKey(hash string) []byte              { return kv.Key(tToken, hash) }
func eventJSONKey(eventID string) []byte       { return kv.Key(tEventJSON, eventID) }
func EventKey(eventID string) []byte           { return kv.Key(tEvent, eventID) }
func RoomKey(roomID string) []byte             { return kv.Key(tRoom, roomID) }

func RoomStreamKey(roomID string, p uint64) []byte { return kv.Key(tRoomStream, roomID, p) }
func RoomStreamPrefix(roomID string) []byte        { return kv.Key(tRoomStream, roomID) }
func StreamKey(p uint64) []byte                    { return kv.Key(tStream, p) }
func snapshotKey(id string) []byte                 { return kv.Key(tSnapshot, id) }
func stateSuperKey(hash string) []byte             { return kv.Key(tStateSuper, hash) }
func StateBlockKey(hash string) []byte             { return kv.Key(tStateBlock, hash) }
func MembershipKey(userID, roomID string) []byte   { return kv.Key(tMembership, userID, roomID) }
func membershipPrefix(userID string) []byte        { return kv.Key(tMembership, userID) }
func LocalMemberKey(roomID, userID string) []byte  { return kv.Key(tLocalMember, roomID, userID) }
func LocalMemberPrefix(roomID string) []byte       { return kv.Key(tLocalMember, roomID) }
func UnreadKey(userID, roomID string) []byte       { return kv.Key(TableUnread, userID, roomID) }

// txnKey is in txnscope.go.

func aliasKey(alias string) []byte             { return kv.Key(tAlias, alias) }
func roomAliasKey(roomID, alias string) []byte { return kv.Key(tRoomAliases, roomID, alias) }
func ProfileKey(userID string) []byte          { return kv.Key(tProfile, userID) }
func FilterKey(userID, filterID string) []byte { return kv.Key(tFilter, userID, filterID) }
func CounterKey(name string) []byte            { return kv.Key(tCounter, name) }

// RoomIDs lists every room the node has (the one-off catch-ups of indexes
// added after rooms were stored walk them).
func RoomIDs(tx *kv.Txn) ([]string, error) {
	var rooms []string
	err := tx.Each(kv.Scan{Prefix: kv.Key(tRoom), KeysOnly: true}, func(k, _ []byte) (bool, error) {
		id, err := kv.LastString(k)
		rooms = append(rooms, id)
		return err == nil, err
	})
	return rooms, err
}
