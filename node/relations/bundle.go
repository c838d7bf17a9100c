package relations

import (
	"context"
	"encoding/json"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
)

// Bounds on one event's bundled aggregations.
const (
	// maxEditScan caps the edits read to find the latest valid one.
	maxEditScan = 1000
	// maxReferences caps m.reference's chunk.
	maxReferences = 100
)

// Bundle works out the bundled aggregations (unsigned["m.relations"]) of
// evs as userID is served them, in one read transaction: for each event,
// one lookup of its summary, and more reads only for the events something
// relates to. State events and redacted events get none (as Synapse has
// it). The result goes into core.ClientFormat.Bundles.
func (r *Relations) Bundle(ctx context.Context, userID string, evs []*core.Event) (core.Bundles, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out core.Bundles
	err := r.DB.View(func(tx *kv.Txn) error {
		var roomID string
		var parents map[string]bool // nil: look each event up
		for _, ev := range evs {
			if len(evs) > 2 { // else lookups cost less than a scan
				if rid := ev.PDU.RoomID().String(); rid != roomID {
					var err error
					if roomID, parents, err = aggParents(tx, rid); err != nil {
						return err
					}
				}
				if parents != nil && !parents[ev.PDU.EventID()] {
					continue
				}
			}
			b, err := r.bundle(tx, userID, ev, true)
			if err != nil {
				return err
			}
			if b != nil {
				if out == nil {
					out = core.Bundles{}
				}
				out[ev.PDU.EventID()] = b
			}
		}
		return nil
	})
	return out, err
}

// maxAggPrefetch is how many summaries of a room Bundle reads in one scan
// to learn which of a page's events have any. A room with more (one with
// many threads or edits) is looked up event by event.
const maxAggPrefetch = 128

// aggParents returns the IDs of roomID's events that have a summary, from
// one scan of the room's summaries, or nil when the room has more than
// maxAggPrefetch of them (or the scan is no cheaper than lookups). A page of
// a room's timeline so costs one scan rather than a missing-key lookup per
// event, which is most of what bundling costs a /sync of many rooms.
func aggParents(tx *kv.Txn, roomID string) (string, map[string]bool, error) {
	parents := map[string]bool{}
	complete := true
	err := tx.Each(kv.Scan{Prefix: kv.Key(tRelAgg, roomID), KeysOnly: true}, func(k, _ []byte) (bool, error) {
		if len(parents) == maxAggPrefetch {
			complete = false
			return false, nil
		}
		id, err := kv.LastString(k)
		if err != nil {
			return false, err
		}
		parents[id] = true
		return true, nil
	})
	if err != nil || !complete {
		return roomID, nil, err
	}
	return roomID, parents, nil
}

// bundle is one event's aggregations (nil for none). withThread is false
// for a thread's latest event, which gets its edit only.
func (r *Relations) bundle(tx *kv.Txn, userID string, ev *core.Event, withThread bool) (map[string]any, error) {
	if ev.PDU.StateKey() != nil || ev.RedactedBy != "" {
		return nil, nil
	}
	roomID, id := ev.PDU.RoomID().String(), ev.PDU.EventID()
	agg, ok, err := loadAgg(tx, roomID, id)
	if err != nil || !ok {
		return nil, err
	}
	b := map[string]any{}
	format := core.ClientFormat{ForUser: userID}
	if agg.Thread > 0 && withThread {
		if latest, ok, err := r.VisibleEvent(tx, userID, agg.ThreadLatest); err != nil {
			return nil, err
		} else if ok {
			f := format
			if lb, err := r.bundle(tx, userID, latest, false); err != nil {
				return nil, err
			} else if lb != nil {
				f.Bundles = core.Bundles{latest.PDU.EventID(): lb}
			}
			took := string(ev.PDU.SenderID()) == userID
			if !took {
				if took, err = tx.Has(threadUserKey(roomID, id, userID)); err != nil {
					return nil, err
				}
			}
			b[RelThread] = map[string]any{
				"count":                     agg.Thread,
				"latest_event":              latest.ClientEvent(f),
				"current_user_participated": took,
			}
		}
	}
	if agg.Replace > 0 && !isEdit(ev.PDU) {
		edit, err := r.latestEdit(tx, userID, ev)
		if err != nil {
			return nil, err
		}
		if edit != nil {
			b[RelReplace] = edit.ClientEvent(format)
		}
	}
	if agg.Reference > 0 && withThread {
		chunk, err := references(tx, roomID, id)
		if err != nil {
			return nil, err
		}
		if len(chunk) > 0 {
			b[RelReference] = map[string]any{"chunk": chunk}
		}
	}
	if len(b) == 0 {
		return nil, nil
	}
	return b, nil
}

// latestEdit is the edit of ev that the spec's rules make current: of the
// valid ones (same sender and type as ev; no state key; new content), the
// one with the greatest origin_server_ts, then the greatest event ID. It
// is nil when there is none the user may see.
func (r *Relations) latestEdit(tx *kv.Txn, userID string, ev *core.Event) (*core.Event, error) {
	roomID, id := ev.PDU.RoomID().String(), ev.PDU.EventID()
	sender, evType := string(ev.PDU.SenderID()), ev.PDU.Type()
	var best *relRecord
	n := 0
	err := tx.Each(kv.Scan{Prefix: relPrefix(roomID, id, RelReplace, evType), Reverse: true}, func(_, v []byte) (bool, error) {
		rec, err := decodeRel(v)
		if err != nil {
			return false, err
		}
		n++
		if rec.Edit && rec.Sender == sender && (best == nil || rec.TS > best.TS || (rec.TS == best.TS && rec.EventID > best.EventID)) {
			best = rec
		}
		return n < maxEditScan, nil
	})
	if err != nil || best == nil {
		return nil, err
	}
	edit, ok, err := r.VisibleEvent(tx, userID, best.EventID)
	if err != nil || !ok {
		return nil, err
	}
	return edit, nil
}

// isEdit reports whether p is itself an edit, which the spec says cannot
// be edited.
func isEdit(p gomatrixserverlib.PDU) bool {
	if r := parseRelation(p, 0); r != nil {
		return r.RelType == RelReplace
	}
	return false
}

// references lists the IDs of the events that reference a parent, oldest
// first, at most maxReferences of them.
func references(tx *kv.Txn, roomID, id string) ([]map[string]string, error) {
	var chunk []map[string]string
	err := tx.Each(kv.Scan{Prefix: relPrefix(roomID, id, RelReference, "")}, func(_, v []byte) (bool, error) {
		var rec struct {
			EventID string `json:"e"`
		}
		if err := json.Unmarshal(v, &rec); err != nil {
			return false, err
		}
		chunk = append(chunk, map[string]string{"event_id": rec.EventID})
		return len(chunk) < maxReferences, nil
	})
	return chunk, err
}
