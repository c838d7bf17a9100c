package userdir

import "github.com/edgenode/edgenode/kv"

// The directory's tables.
const (
	tMember = "udmember" // room ID, user ID -> memberRecord (joined members only)
	tToken  = "udtoken"  // token, user ID, room ID -> "" (joined members only)
	tRoom   = "udroom"   // room ID -> "" while everyone may find the room's members
	tMeta   = "udmeta"   // "built" -> "" once the index covers the rooms made before it
	// tPending lists the rooms whose members are to be indexed from their
	// current state (catchup.go).
	tPending = "udpending" // room ID -> ""
)

func memberKey(roomID, userID string) []byte       { return kv.Key(tMember, roomID, userID) }
func tokenKey(token, userID, roomID string) []byte { return kv.Key(tToken, token, userID, roomID) }
func roomKey(roomID string) []byte                 { return kv.Key(tRoom, roomID) }
func builtKey() []byte                             { return kv.Key(tMeta, "built") }
func pendingKey(roomID string) []byte              { return kv.Key(tPending, roomID) }
func pendingPrefix() []byte                        { return kv.Key(tPending) }

// tokenPrefix is the prefix of the keys of every token that starts with
// word. kv.Key ends a string component with a two-byte terminator (0x00
// 0x01), so dropping it leaves the component open; tokens hold no NUL
// (words are letters and digits), so no escaping is in the way.
// tokenPrefixOK (tables_test.go) checks this against kv's encoding.
func tokenPrefix(word string) []byte {
	k := kv.Key(tToken, word)
	return k[:len(k)-2]
}

// memberRecord is a joined member's profile in one room, from their
// member event.
type memberRecord struct {
	DisplayName string `json:"d,omitempty"`
	AvatarURL   string `json:"a,omitempty"`
}
