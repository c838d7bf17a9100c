package relations

import (
	"encoding/json"
	"errors"

	"github.com/edgenode/edgenode/kv"
)

// The relations index. Every relation is written under three keys, so
// each of /relations' three paths (all relations of a parent, those of one
// rel_type, those of one rel_type and event type) is one ordered prefix
// scan by stream position, never a scan that skips other kinds; tRelOf
// finds them again when the relating event is redacted.
const (
	tRel       = "rel"       // room ID, parent ID, position -> relRecord
	tRelType   = "reltype"   // room ID, parent ID, rel_type, position -> relRecord
	tRelTypeEv = "reltypeev" // room ID, parent ID, rel_type, event type, position -> relRecord
	tRelOf     = "relof"     // relating event ID -> relRecord
	// tRelAgg is a parent's aggregation summary, so bundling an event costs
	// one key lookup (absent for the many events nothing relates to).
	tRelAgg = "relagg" // room ID, parent ID -> aggRecord
	// The room's threads by latest activity, and who took part in each.
	tThread     = "thread"     // room ID, latest event's position, root ID -> ""
	tThreadUser = "threaduser" // room ID, root ID, user ID -> uvarint replies by the user (absent: none)
)

func relKey(r *relRecord) []byte { return kv.Key(tRel, r.Room, r.Parent, r.Pos) }
func relTypeKey(r *relRecord) []byte {
	return kv.Key(tRelType, r.Room, r.Parent, r.RelType, r.Pos)
}
func relTypeEvKey(r *relRecord) []byte {
	return kv.Key(tRelTypeEv, r.Room, r.Parent, r.RelType, r.EventType, r.Pos)
}
func relOfKey(eventID string) []byte { return kv.Key(tRelOf, eventID) }
func aggKey(roomID, parentID string) []byte {
	return kv.Key(tRelAgg, roomID, parentID)
}
func threadKey(roomID string, pos uint64, rootID string) []byte {
	return kv.Key(tThread, roomID, pos, rootID)
}
func threadPrefix(roomID string) []byte { return kv.Key(tThread, roomID) }
func threadUserKey(roomID, rootID, userID string) []byte {
	return kv.Key(tThreadUser, roomID, rootID, userID)
}

// relPrefix is the scan prefix of a parent's relations, narrowed to a
// rel_type and an event type when given (an event type only with a
// rel_type, as /relations' paths have it).
func relPrefix(roomID, parentID, relType, evType string) []byte {
	switch {
	case relType == "":
		return kv.Key(tRel, roomID, parentID)
	case evType == "":
		return kv.Key(tRelType, roomID, parentID, relType)
	default:
		return kv.Key(tRelTypeEv, roomID, parentID, relType, evType)
	}
}

// relKeyAt is the key at pos under relPrefix (a scan's start).
func relKeyAt(roomID, parentID, relType, evType string, pos uint64) []byte {
	switch {
	case relType == "":
		return kv.Key(tRel, roomID, parentID, pos)
	case evType == "":
		return kv.Key(tRelType, roomID, parentID, relType, pos)
	default:
		return kv.Key(tRelTypeEv, roomID, parentID, relType, evType, pos)
	}
}

// relRecord is one relation: the relating event and what bundling and the
// filters need of it without loading it.
type relRecord struct {
	Room      string `json:"r"`
	Parent    string `json:"p"`
	RelType   string `json:"rt"`
	EventType string `json:"t"`
	EventID   string `json:"e"`
	Sender    string `json:"s"`
	Pos       uint64 `json:"n"`
	// TS is origin_server_ts, which orders edits (the spec's rule).
	TS int64 `json:"ts,omitempty"`
	// Edit is set on an m.replace that may be a valid edit on its own
	// terms: no state key, and m.new_content (or encrypted).
	Edit bool `json:"ed,omitempty"`
}

func decodeRel(v []byte) (*relRecord, error) {
	var r relRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// aggRecord summarises a parent's relations of the aggregated types.
type aggRecord struct {
	// Thread is the number of thread replies; ThreadLatest the newest
	// one's ID and position.
	Thread          int    `json:"th,omitempty"`
	ThreadLatest    string `json:"tl,omitempty"`
	ThreadLatestPos uint64 `json:"tp,omitempty"`
	// Replace and Reference count the m.replace and m.reference
	// relations (edits are validated when bundled: the parent may arrive
	// after them).
	Replace   int `json:"rp,omitempty"`
	Reference int `json:"rf,omitempty"`
}

func (a *aggRecord) empty() bool { return a.Thread == 0 && a.Replace == 0 && a.Reference == 0 }

// loadAgg reads a parent's summary (the zero record when absent).
func loadAgg(tx *kv.Txn, roomID, parentID string) (aggRecord, bool, error) {
	var a aggRecord
	err := tx.GetJSON(aggKey(roomID, parentID), &a)
	if errors.Is(err, kv.ErrNotFound) {
		return a, false, nil
	}
	return a, err == nil, err
}
