package syncapi

import (
	"context"

	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// chunkMembers returns, for lazy-loading clients, the member event of each
// sender of evs, as it stood after that sender's newest event in evs: a
// sender who joined within the chunk is then still found, and one who left
// later is shown as they were when they spoke. Every such member event is
// sent each time (include_redundant_members behaviour), which the spec
// allows; remembering what each device already has would need per-device
// state.
func (a *api) chunkMembers(ctx context.Context, evs []*core.Event) ([]*core.Event, error) {
	newest := map[string]*core.Event{}
	var senders []string
	for _, ev := range evs {
		s := string(ev.PDU.SenderID())
		cur, ok := newest[s]
		if !ok {
			senders = append(senders, s)
		}
		if !ok || core.TimelineLess(cur.Pos, ev.Pos) {
			newest[s] = ev
		}
	}
	out := []*core.Event{}
	for _, s := range senders {
		key := []core.StateKey{{EventType: spec.MRoomMember, StateKey: s}}
		got, err := a.n.StateAfterEvent(ctx, newest[s].PDU.EventID(), key)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}
