package syncapi

import (
	"encoding/json"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// renderer turns events into what a filter asks for: the client format
// (without room_id inside /sync) or the federation format, with
// event_fields applied.
type renderer struct {
	format core.ClientFormat
	filter *Filter
}

func newRenderer(f *Filter, dev node.Device, omitRoomID bool) renderer {
	return renderer{filter: f, format: core.ClientFormat{OmitRoomID: omitRoomID, ForUser: dev.UserID, ForDevice: dev.DeviceID}}
}

// events renders evs; never nil, so JSON gets [].
func (r renderer) events(evs []*core.Event) []any {
	out := make([]any, 0, len(evs))
	for _, ev := range evs {
		out = append(out, r.event(ev))
	}
	return out
}

func (r renderer) event(ev *core.Event) any {
	var v any = ev.ClientEvent(r.format)
	if r.filter.EventFormat == "federation" {
		v = json.RawMessage(ev.PDU.JSON())
	}
	if len(r.filter.EventFields) == 0 {
		return v
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return v
	}
	return ProjectFields(m, r.filter.EventFields)
}

// rawJSON is JSON passed through unchanged (an event's content).
type rawJSON []byte

// MarshalJSON implements json.Marshaler.
func (r rawJSON) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("{}"), nil
	}
	return r, nil
}
