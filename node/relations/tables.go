package relations

import (
	"encoding/json"
	"errors"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// The relations index. Every relation is written under three keys, so
// each of /relations' three paths (all relations of a parent, those of one
// rel_type, those of one rel_type and event type) is one ordered prefix
// scan by stream position, never a scan that skips other kinds; tRelOf
// finds them again when the relating event is redacted.
const (
	tRel       = "rel"       // room ID, parent ID, order(position) -> relRecord
	tRelType   = "reltype"   // room ID, parent ID, rel_type, order(position) -> relRecord
	tRelTypeEv = "reltypeev" // room ID, parent ID, rel_type, event type, order(position) -> relRecord
	tRelOf     = "relof"     // relating event ID -> relRecord
	// tRelAgg is a parent's aggregation summary, so bundling an event costs
	// one key lookup (absent for the many events nothing relates to).
	tRelAgg = "relagg" // room ID, parent ID -> aggRecord
	// The room's threads by latest activity, and who took part in each.
	tThread     = "thread"     // room ID, order(latest event's position), root ID -> ""
	tThreadUser = "threaduser" // room ID, root ID, user ID -> uvarint replies by the user (absent: none)
)

// order maps a timeline position to its place in the index's keys: the
// history backfilled from other servers (core.IsBackfillPos: positions
// above 2^62) before every stream position, each range in its own order,
// as core.TimelineLess orders them. Keys hold order(pos), records and
// tokens the position itself.
func order(pos uint64) uint64 {
	if core.IsBackfillPos(pos) {
		return pos - 1<<62 // below 2^62, newer history higher
	}
	return pos + 1<<62 // stream positions never reach 2^62
}

// unorder is order's inverse.
func unorder(o uint64) uint64 {
	if o < 1<<62 {
		return o + 1<<62
	}
	return o - 1<<62
}

// later reports whether position a comes after b in the room's timeline.
func later(a, b uint64) bool { return order(a) > order(b) }

func relKey(r *relRecord) []byte { return kv.Key(tRel, r.Room, r.Parent, order(r.Pos)) }
func relTypeKey(r *relRecord) []byte {
	return kv.Key(tRelType, r.Room, r.Parent, r.RelType, order(r.Pos))
}
func relTypeEvKey(r *relRecord) []byte {
	return kv.Key(tRelTypeEv, r.Room, r.Parent, r.RelType, r.EventType, order(r.Pos))
}
func relOfKey(eventID string) []byte { return kv.Key(tRelOf, eventID) }
func aggKey(roomID, parentID string) []byte {
	return kv.Key(tRelAgg, roomID, parentID)
}
func threadKey(roomID string, pos uint64, rootID string) []byte {
	return kv.Key(tThread, roomID, order(pos), rootID)
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

// relKeyAt is the key at order o under relPrefix (a scan's start).
func relKeyAt(roomID, parentID, relType, evType string, o uint64) []byte {
	switch {
	case relType == "":
		return kv.Key(tRel, roomID, parentID, o)
	case evType == "":
		return kv.Key(tRelType, roomID, parentID, relType, o)
	default:
		return kv.Key(tRelTypeEv, roomID, parentID, relType, evType, o)
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
