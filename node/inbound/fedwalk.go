package inbound

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
)

// walkedEvent is an event found by walkBack.
type walkedEvent struct {
	depth int64
	id    string
	json  json.RawMessage
}

// walkBack walks a room's DAG back along prev_events, breadth first, from
// start (included), for another server (get_missing_events and backfill):
// events in stop, unknown here or of another room are passed over; an
// event keep refuses is neither served nor walked past; an event origin may
// not see (serverMaySee) is walked past, and served redacted if
// redactHidden, else not at all. It returns at most
// limit events and looks at no more than 10*limit, so a walk through events
// left out is bounded too.
func (n *Inbound) walkBack(tx *kv.Txn, origin, roomID string, start []string, stop map[string]bool, limit int,
	redactHidden bool, keep func(rec *core.EventRecord, p gomatrixserverlib.PDU) bool) ([]walkedEvent, error) {
	var out []walkedEvent
	seen := map[string]bool{}
	queue := slices.Clone(start)
	for budget := 10 * limit; len(queue) > 0 && len(out) < limit && len(seen) < budget; {
		id := queue[0]
		queue = queue[1:]
		if seen[id] || stop[id] {
			continue
		}
		seen[id] = true
		rec, err := core.LoadEventRecord(tx, id)
		if errors.Is(err, core.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if rec.RoomID != roomID || rec.Rejected != "" {
			continue
		}
		p, err := n.LoadPDU(tx, id)
		if err != nil {
			return nil, err
		}
		if !keep(rec, p) {
			continue
		}
		queue = append(queue, p.PrevEventIDs()...)
		ok, err := n.serverMaySee(tx, origin, rec, p.Type(), p.StateKey())
		if err != nil {
			return nil, err
		}
		if !ok && !redactHidden {
			continue
		}
		j, err := rec.ReadJSON(tx, id)
		if err != nil {
			return nil, err
		}
		if !ok && rec.RedactedBy == "" {
			if j, err = redactedJSON(rec.Version, j); err != nil {
				return nil, fmt.Errorf("event %s: %w", id, err)
			}
		}
		out = append(out, walkedEvent{p.Depth(), id, j})
	}
	return out, nil
}

// walkedJSON is the events' JSON ordered by depth (then event ID, so the
// order is stable), oldest first or newest first.
func walkedJSON(evs []walkedEvent, newestFirst bool) []json.RawMessage {
	slices.SortFunc(evs, func(a, b walkedEvent) int {
		c := cmp.Compare(a.depth, b.depth)
		if newestFirst {
			c = -c
		}
		if c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	out := make([]json.RawMessage, len(evs))
	for i, e := range evs {
		out[i] = e.json
	}
	return out
}
