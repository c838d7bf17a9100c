package core

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib"
)

// EventRecord is what is stored for every event the node has seen (in the
// binary form of eventrecord_codec.go). The
// event's JSON is stored apart from the rest (eventJSONKey), because most
// reads need only this small record and the parsed event is usually cached.
type EventRecord struct {
	RoomID  string
	Version string
	// JSON is loaded on demand (see json) and written by writeEvent.
	JSON json.RawMessage
	// Pos is the stream position; 0 for events clients never see (rejected,
	// soft-failed).
	Pos uint64
	// Rejected holds why the event failed auth; a rejected event is never
	// served and never part of any state.
	Rejected string
	// SoftFailed events passed auth at their own state but not against the
	// room's current state: stored, not served, not extremities.
	SoftFailed  bool
	StateBefore string
	StateAfter  string
	// RedactedBy is the ID of the redaction applied to this event's JSON.
	RedactedBy string
	// TxnID and DeviceID let the sending device see its transaction ID.
	TxnID    string
	DeviceID string
}

// Event is a stored event as the rest of the node and the APIs see it.
type Event struct {
	PDU        gomatrixserverlib.PDU
	Pos        uint64
	RedactedBy string
	TxnID      string
	DeviceID   string
}

// ReadJSON returns the event's JSON, reading it on first use.
func (r *EventRecord) ReadJSON(tx *kv.Txn, eventID string) (json.RawMessage, error) {
	if r.JSON == nil {
		b, err := tx.Get(eventJSONKey(eventID))
		if err != nil {
			return nil, fmt.Errorf("event %s JSON: %w", eventID, err)
		}
		r.JSON = b
	}
	return r.JSON, nil
}

// WriteEvent stores an event's record and its JSON.
func WriteEvent(tx *kv.Txn, eventID string, r *EventRecord) error {
	if err := tx.Set(EventKey(eventID), r.marshalRecord()); err != nil {
		return err
	}
	return tx.Set(eventJSONKey(eventID), r.JSON)
}

// parse turns the record back into an Event.
func (r *EventRecord) parse(tx *kv.Txn, eventID string) (*Event, error) {
	verImpl, err := gomatrixserverlib.GetRoomVersion(gomatrixserverlib.RoomVersion(r.Version))
	if err != nil {
		return nil, err
	}
	raw, err := r.ReadJSON(tx, eventID)
	if err != nil {
		return nil, err
	}
	pdu, err := verImpl.NewEventFromTrustedJSONWithEventID(eventID, raw, r.RedactedBy != "")
	if err != nil {
		return nil, fmt.Errorf("parse stored event %s: %w", eventID, err)
	}
	return &Event{PDU: pdu, Pos: r.Pos, RedactedBy: r.RedactedBy, TxnID: r.TxnID, DeviceID: r.DeviceID}, nil
}

// LoadEventRecord reads the stored record for eventID.
func LoadEventRecord(tx *kv.Txn, eventID string) (*EventRecord, error) {
	b, err := tx.Get(EventKey(eventID))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, fmt.Errorf("event %s: %w", eventID, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var rec EventRecord
	if err := rec.unmarshalRecord(b); err != nil {
		return nil, fmt.Errorf("event %s: %w", eventID, err)
	}
	return &rec, nil
}

// pduCache keeps recently used parsed events (the auth events above all).
// Cached PDUs have had EventID() called, so they are safe to share. It is
// bounded by bytes as well as by count (caches.go): 8,192 events of up to
// 64 KiB each could otherwise hold over 500 MiB.
type pduCache = lru[string, gomatrixserverlib.PDU]

// LoadPDU returns the parsed event, from the cache when possible. Rejected
// events are returned too: callers that must not use them check separately.
func (n *Node) LoadPDU(tx *kv.Txn, eventID string) (gomatrixserverlib.PDU, error) {
	if p, ok := n.pdus.Get(eventID); ok {
		return p, nil
	}
	rec, err := LoadEventRecord(tx, eventID)
	if err != nil {
		return nil, err
	}
	ev, err := rec.parse(tx, eventID)
	if err != nil {
		return nil, err
	}
	n.pdus.Put(eventID, ev.PDU)
	return ev.PDU, nil
}
