package core

import (
	"fmt"
	"slices"
)

// extStates is the state after each of the room's forward extremities, in
// the order of room.Extremities. The room head keeps them, so that taking
// in an event never loads every extremity's record (a peer's thousand forks
// made each of its events cost a thousand reads). A head written before it
// kept them (or by a join) has them looked up once here.
func (b *Batch) extStates() ([]string, error) {
	r := b.Room
	if len(r.ExtStates) == len(r.Extremities) {
		return r.ExtStates, nil
	}
	out := make([]string, len(r.Extremities))
	for i, id := range r.Extremities {
		s, err := b.stateAfter(id)
		if err != nil {
			return nil, fmt.Errorf("forward extremity: %w", err)
		}
		out[i] = s.ID()
	}
	r.ExtStates = out
	return out, nil
}

// stateOf is the state with ID stateID, the state after the extremity
// extID: taken from the batch when extID is input in it (its state is not
// stored yet), else read (cached).
func (b *Batch) stateOf(extID, stateID string) (*State, error) {
	if p, ok := b.ByID[extID]; ok && p.After != nil && p.After.ID() == stateID {
		return p.After, nil
	}
	for _, s := range []*State{b.Current, b.Start} {
		if s != nil && s.ID() == stateID {
			return s, nil
		}
	}
	return b.Node.States.Read(b.Tx, stateID)
}

// prevEventsForLocal chooses the prev events of a new local event: every
// forward extremity when there are at most maxPrevEvents of them, else
// maxPrevEvents of them. The choice takes first the newest extremity with
// each distinct state after it (so the new event's state is the room's
// current state whenever the extremities hold at most maxPrevEvents
// distinct states, as they do with any number of a peer's message forks),
// then the newest of the rest. room.Extremities is kept newest first (by
// acceptance here, not by the depth a peer claims), and the new event
// becomes the newest extremity, so each local event takes up to
// maxPrevEvents-1 others off the list: forks converge as the room is used.
//
// The depth is one more than the deepest prev event's, capped at maxDepth.
func (b *Batch) prevEventsForLocal() ([]string, int64, error) {
	ext := b.Room.Extremities
	prevs := ext
	if len(ext) > MaxPrevEvents {
		states, err := b.extStates()
		if err != nil {
			return nil, 0, err
		}
		prevs = make([]string, 0, MaxPrevEvents)
		taken := make([]bool, len(ext))
		seen := map[string]bool{}
		for i, s := range states {
			if len(prevs) == MaxPrevEvents {
				break
			}
			if !seen[s] {
				seen[s], taken[i] = true, true
				prevs = append(prevs, ext[i])
			}
		}
		for i, id := range ext {
			if len(prevs) == MaxPrevEvents {
				break
			}
			if !taken[i] {
				prevs = append(prevs, id)
			}
		}
	}
	var depth int64
	for _, id := range prevs {
		p, err := b.PDU(id)
		if err != nil {
			return nil, 0, fmt.Errorf("prev event: %w", err)
		}
		depth = max(depth, p.Depth())
	}
	return slices.Clone(prevs), min(depth, MaxDepth-1) + 1, nil
}
