package core

import (
	"fmt"

	"github.com/matrix-org/gomatrixserverlib"
)

// maxAuthChain bounds the auth chain walked for one resolution, so a hostile
// DAG cannot make the node load without limit.
const maxAuthChain = 100000

// resolve merges several states with state resolution v2 (via
// gomatrixserverlib). Equal states resolve to themselves without work.
func (b *Batch) resolve(states []*State) (*State, error) {
	if len(states) == 1 {
		return states[0], nil
	}
	same := true
	for _, s := range states[1:] {
		if s.ID() != states[0].ID() {
			same = false
			break
		}
	}
	if same {
		return states[0], nil
	}
	version := gomatrixserverlib.RoomVersionV10
	if b.Room != nil {
		version = b.Room.Version
	}
	sets := make([][]gomatrixserverlib.PDU, len(states))
	var all []gomatrixserverlib.PDU
	for i, s := range states {
		evs, err := b.loadAll(s.EventIDs())
		if err != nil {
			return nil, err
		}
		sets[i] = evs
		all = append(all, evs...)
	}
	chain, err := b.authChain(all)
	if err != nil {
		return nil, err
	}
	isRejected := func(id string) bool {
		rec, err := b.record(id)
		return err != nil || rec.Rejected != ""
	}
	// ResolveConflictsNew splits conflicted from unconflicted state as the
	// spec says (a key missing from one set is conflicted). It needs the
	// whole auth chain, create event included, or it returns nothing.
	resolved, err := gomatrixserverlib.ResolveConflictsNew(version, sets, chain, UserIDForSender, isRejected)
	if err != nil {
		return nil, fmt.Errorf("state resolution: %w", err)
	}
	if len(resolved) == 0 {
		return nil, fmt.Errorf("state resolution returned no state")
	}
	m := make(map[StateKey]string, len(resolved))
	for _, ev := range resolved {
		if sk := ev.StateKey(); sk != nil {
			m[StateKey{EventType: ev.Type(), StateKey: *sk}] = ev.EventID()
		}
	}
	return StateFromMap(m), nil
}

func (b *Batch) loadAll(ids []string) ([]gomatrixserverlib.PDU, error) {
	out := make([]gomatrixserverlib.PDU, 0, len(ids))
	for _, id := range ids {
		p, err := b.PDU(id)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// authChain is the union of the auth chains of evs (not including evs unless
// they are in each other's chains).
func (b *Batch) authChain(evs []gomatrixserverlib.PDU) ([]gomatrixserverlib.PDU, error) {
	seen := map[string]bool{}
	var out []gomatrixserverlib.PDU
	queue := []string{}
	for _, ev := range evs {
		queue = append(queue, ev.AuthEventIDs()...)
	}
	for len(queue) > 0 {
		id := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if seen[id] {
			continue
		}
		seen[id] = true
		if len(seen) > maxAuthChain {
			return nil, fmt.Errorf("auth chain longer than %d events", maxAuthChain)
		}
		p, err := b.PDU(id)
		if err != nil {
			return nil, fmt.Errorf("auth chain: %w", err)
		}
		out = append(out, p)
		queue = append(queue, p.AuthEventIDs()...)
	}
	return out, nil
}
