package core

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/edgenode/edgenode/internal/jsontext"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// ClientEvent is an event in the client-server API's format.
type ClientEvent struct {
	Content        json.RawMessage `json:"content"`
	EventID        string          `json:"event_id"`
	OriginServerTS spec.Timestamp  `json:"origin_server_ts"`
	RoomID         string          `json:"room_id,omitempty"`
	Sender         string          `json:"sender"`
	StateKey       *string         `json:"state_key,omitempty"`
	Type           string          `json:"type"`
	Redacts        string          `json:"redacts,omitempty"`
	// Sticky is MSC4354's sticky object, under its unstable name.
	Sticky   json.RawMessage `json:"msc4354_sticky,omitempty"`
	Unsigned map[string]any  `json:"unsigned,omitempty"`
}

// ClientFormat says how ClientEvent renders an event.
type ClientFormat struct {
	// OmitRoomID leaves room_id out (the sync format).
	OmitRoomID bool
	// ForDevice, with the user, lets the sending device see its transaction ID.
	ForUser, ForDevice string
	// Bundles are the bundled aggregations of the events being rendered
	// (unsigned["m.relations"]), worked out once per response by the
	// relations concern (node/relations); nil for none.
	Bundles Bundles
}

// Bundles maps an event ID to its bundled aggregations: the object served
// as the event's unsigned["m.relations"], keyed by relation type.
type Bundles map[string]map[string]any

// ClientEvent renders e for a client.
func (e *Event) ClientEvent(f ClientFormat) ClientEvent {
	p := e.PDU
	ce := ClientEvent{
		// An event stored before the client edge and the federation
		// parser refused invalid UTF-8 and lone surrogates would be served
		// as bytes strict JSON parsers refuse: it is served as the text
		// encoding/json would have read it as (the content only: the
		// other fields are strings, which json.Marshal makes valid).
		//
		// A copy: the PDU's content is a slice of its whole JSON, and a
		// rendered event may be held a while (a /sync response holds every
		// room's events until it is written: for a user in 1,000 rooms,
		// 20 MB of event JSON kept for 2 MB of content, issue 14).
		Content:        json.RawMessage(bytes.Clone(jsontext.Sanitize(p.Content()))),
		EventID:        p.EventID(),
		OriginServerTS: p.OriginServerTS(),
		Sender:         string(p.SenderID()),
		StateKey:       p.StateKey(),
		Type:           p.Type(),
		Redacts:        p.Redacts(),
		Sticky:         StickyInfo(p),
		Unsigned:       map[string]any{},
	}
	if !f.OmitRoomID {
		ce.RoomID = p.RoomID().String()
	}
	if len(ce.Content) == 0 {
		ce.Content = json.RawMessage("{}")
	}
	if u := p.Unsigned(); len(u) > 0 {
		_ = json.Unmarshal(u, &ce.Unsigned)
		// Aggregations are the serving server's to compute: whatever a
		// remote server put there is no count this node vouches for.
		delete(ce.Unsigned, "m.relations")
	}
	if b := f.Bundles[ce.EventID]; b != nil {
		ce.Unsigned["m.relations"] = b
	}
	age := time.Now().UnixMilli() - int64(p.OriginServerTS())
	if age < 0 {
		age = 0
	}
	ce.Unsigned["age"] = age
	if e.RedactedBy != "" {
		ce.Unsigned["redacted_because"] = map[string]any{"event_id": e.RedactedBy}
	}
	if e.TxnID != "" && f.ForDevice != "" && f.ForDevice == e.DeviceID && f.ForUser == ce.Sender {
		ce.Unsigned["transaction_id"] = e.TxnID
	}
	return ce
}
