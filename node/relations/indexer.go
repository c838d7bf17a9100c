package relations

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
)

// Indexer keeps the relations index in the room commit (core.Indexer): it
// indexes each accepted event that relates to another, and takes out of
// the index (and so out of every aggregation) each one an accepted
// redaction strips, in the batch's order.
type Indexer struct {
	core.NoPrepare
	R *Relations
}

// maxRelTypeLen bounds the rel_type, event type and parent event ID
// written into keys (the spec's limit on identifiers is 255 bytes). A
// relation beyond it is not indexed: a key longer than Badger allows would
// fail the whole commit and wedge the room, and the event's size limit
// alone lets content carry a 60 KiB "event_id".
const maxRelTypeLen = 255

// Index writes the batch's relations and applies its redactions.
func (x Indexer) Index(tx *kv.Txn, c *core.RoomCommit, _ core.IndexPlan) (func(), error) {
	var redactions map[string]string // redaction's ID -> the event it strips
	for _, p := range c.Batch.Events {
		if t := p.RedactTarget(); t != "" {
			if redactions == nil {
				redactions = map[string]string{}
			}
			redactions[p.PDU.EventID()] = t
		}
	}
	for _, ce := range c.Events {
		if t, ok := redactions[ce.PDU.EventID()]; ok {
			if err := removeRelation(tx, t); err != nil {
				return nil, fmt.Errorf("relations: redact %s: %w", t, err)
			}
			continue
		}
		r := parseRelation(ce.PDU, ce.Pos)
		if r == nil {
			continue
		}
		if err := addRelation(tx, r); err != nil {
			return nil, fmt.Errorf("relations: index %s: %w", r.EventID, err)
		}
	}
	return nil, nil
}

// relationContent is the part of an event's content that relates it.
type relationContent struct {
	RelatesTo *struct {
		RelType string `json:"rel_type"`
		EventID string `json:"event_id"`
	} `json:"m.relates_to"`
	NewContent json.RawMessage `json:"m.new_content"`
}

// relatesToKey is looked for before decoding: most events relate to
// nothing, and a send must not pay a JSON decode for them. (A sender who
// escapes the key's characters hides the relation from the index, and only
// from its aggregations: clients still see the content.)
var relatesToKey = []byte(`"m.relates_to"`)

// parseRelation returns the relation p makes, or nil: one with a rel_type
// and a parent event ID (m.in_reply_to alone is a reply, no relation).
func parseRelation(p gomatrixserverlib.PDU, pos uint64) *relRecord {
	content := p.Content()
	if !bytes.Contains(content, relatesToKey) {
		return nil
	}
	var c relationContent
	if json.Unmarshal(content, &c) != nil || c.RelatesTo == nil {
		return nil
	}
	rel := c.RelatesTo
	id := p.EventID()
	if rel.RelType == "" || len(rel.RelType) > maxRelTypeLen || len(p.Type()) > maxRelTypeLen ||
		len(rel.EventID) < 2 || len(rel.EventID) > maxRelTypeLen || rel.EventID[0] != '$' || rel.EventID == id {
		return nil
	}
	r := &relRecord{
		Room: p.RoomID().String(), Parent: rel.EventID, RelType: rel.RelType, EventType: p.Type(),
		EventID: id, Sender: string(p.SenderID()), Pos: pos, TS: int64(p.OriginServerTS()),
	}
	if rel.RelType == RelReplace && p.StateKey() == nil {
		// The spec's edit rules that need only the edit: no state key, and
		// the new content (inside the ciphertext when encrypted).
		r.Edit = p.Type() == "m.room.encrypted" || bytes.HasPrefix(bytes.TrimSpace(c.NewContent), []byte("{"))
	}
	return r
}

// addRelation writes r's keys and counts it in its parent's summary.
func addRelation(tx *kv.Txn, r *relRecord) error {
	if ok, err := tx.Has(relOfKey(r.EventID)); err != nil || ok {
		return err // indexed already
	}
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	for _, k := range [][]byte{relKey(r), relTypeKey(r), relTypeEvKey(r), relOfKey(r.EventID)} {
		if err := tx.Set(k, v); err != nil {
			return err
		}
	}
	agg, _, err := loadAgg(tx, r.Room, r.Parent)
	if err != nil {
		return err
	}
	switch r.RelType {
	case RelThread:
		agg.Thread++
		if agg.ThreadLatestPos == 0 || later(r.Pos, agg.ThreadLatestPos) {
			if err := moveThread(tx, r.Room, r.Parent, &agg, r.EventID, r.Pos); err != nil {
				return err
			}
		}
		if err := countParticipant(tx, r, 1); err != nil {
			return err
		}
	case RelReplace:
		agg.Replace++
	case RelReference:
		agg.Reference++
	default:
		return nil // indexed for /relations; nothing aggregated
	}
	return tx.SetJSON(aggKey(r.Room, r.Parent), agg)
}

// moveThread makes latestID (at pos) the thread's latest event, moving the
// thread in the room's list by activity (pos 0: out of the list).
func moveThread(tx *kv.Txn, roomID, rootID string, agg *aggRecord, latestID string, pos uint64) error {
	if agg.ThreadLatestPos > 0 {
		if err := tx.Delete(threadKey(roomID, agg.ThreadLatestPos, rootID)); err != nil {
			return err
		}
	}
	agg.ThreadLatest, agg.ThreadLatestPos = latestID, pos
	if pos == 0 {
		return nil
	}
	return tx.Set(threadKey(roomID, pos, rootID), nil)
}

// removeRelation takes a redacted event's relation out of the index and
// its parent's summary; an event that relates to nothing is left alone.
func removeRelation(tx *kv.Txn, eventID string) error {
	var r relRecord
	err := tx.GetJSON(relOfKey(eventID), &r)
	if errors.Is(err, kv.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, k := range [][]byte{relKey(&r), relTypeKey(&r), relTypeEvKey(&r), relOfKey(eventID)} {
		if err := tx.Delete(k); err != nil {
			return err
		}
	}
	agg, ok, err := loadAgg(tx, r.Room, r.Parent)
	if err != nil || !ok {
		return err
	}
	switch r.RelType {
	case RelThread:
		agg.Thread = max(agg.Thread-1, 0)
		if err := countParticipant(tx, &r, -1); err != nil {
			return err
		}
		if agg.ThreadLatest == r.EventID {
			if err := relatestThread(tx, r.Room, r.Parent, &agg); err != nil {
				return err
			}
		}
	case RelReplace:
		agg.Replace = max(agg.Replace-1, 0)
	case RelReference:
		agg.Reference = max(agg.Reference-1, 0)
	}
	if agg.empty() {
		return tx.Delete(aggKey(r.Room, r.Parent))
	}
	return tx.SetJSON(aggKey(r.Room, r.Parent), agg)
}

// countParticipant adds delta to how many replies r's sender has in r's
// thread; a sender with none left no longer took part. Counting (rather
// than scanning the thread again) keeps a redaction's cost independent of
// the thread's length.
func countParticipant(tx *kv.Txn, r *relRecord, delta int) error {
	k := threadUserKey(r.Room, r.Parent, r.Sender)
	n := uint64(0)
	v, err := tx.Get(k)
	switch {
	case errors.Is(err, kv.ErrNotFound):
	case err != nil:
		return err
	default:
		if n, _ = binary.Uvarint(v); n == 0 {
			n = 1 // unreadable: one reply at least, or the key would not be there
		}
	}
	if delta < 0 && n <= uint64(-delta) {
		return tx.Delete(k)
	}
	return tx.Set(k, binary.AppendUvarint(nil, n+uint64(delta)))
}

// relatestThread makes the newest remaining reply the thread's latest
// event, after the latest one was redacted (no reply left: the thread
// leaves the room's list).
func relatestThread(tx *kv.Txn, roomID, rootID string, agg *aggRecord) error {
	latestID, latestPos := "", uint64(0)
	err := tx.Each(kv.Scan{Prefix: relPrefix(roomID, rootID, RelThread, ""), Reverse: true}, func(_, v []byte) (bool, error) {
		r, err := decodeRel(v)
		if err != nil {
			return false, err
		}
		latestID, latestPos = r.EventID, r.Pos
		return false, nil
	})
	if err != nil {
		return err
	}
	return moveThread(tx, roomID, rootID, agg, latestID, latestPos)
}

// IndexBackfilled indexes an event of the history fetched from other
// servers (node/backfill.go), which is written outside the room commit:
// its relation goes into the index at its backfill position, in the
// transaction that stores it. (A backfilled redaction is not applied to
// the index, as the core does not apply it to its target.)
func (r *Relations) IndexBackfilled(tx *kv.Txn, p gomatrixserverlib.PDU, pos uint64) error {
	rel := parseRelation(p, pos)
	if rel == nil {
		return nil
	}
	if err := addRelation(tx, rel); err != nil {
		return fmt.Errorf("relations: index backfilled %s: %w", rel.EventID, err)
	}
	return nil
}
