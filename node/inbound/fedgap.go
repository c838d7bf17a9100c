package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Recovering inbound PDUs that get_missing_events could not complete
// (fetchMissingPrevs), as the spec says and Synapse and Dendrite do:
//
//   - auth events the node does not have are fetched from the origin with
//     /event_auth and stored as outliers (fedauth.go);
//   - for each prev event still missing, the origin is asked for the state
//     before it (/state_ids; the events not known here with /event, or all
//     at once with /state when there are many) and for the prev event
//     itself (/event). All of them are checked (signatures, each allowed by
//     its own auth events) and stored as outliers; the prev event's record
//     carries the state before and after it. The PDU is then input as any
//     other: its state is resolved from its prev events' states, it joins
//     the forward extremities (the gap stays a gap: nothing before the prev
//     event is fetched), and it is authorised and soft-failed as usual.
//
// Everything is bounded: PDUs per batch, prev events per PDU, events
// fetched one by one, state size.

// Bounds on gap filling.
const (
	maxGapPDUs      = 5    // PDUs of one batch whose gaps are filled
	maxGapPrevs     = 3    // missing prev events filled per PDU
	maxEventFetches = 20   // unknown state events fetched one by one; more: /state
	maxGapState     = 5000 // state events accepted for one prev event
)

// fillGaps retries the PDUs of a batch that still fail with
// ErrMissingEvents after fetchMissingPrevs, fetching their missing auth
// events and the state at their missing prev events from in.Origin.
// Results of the retried PDUs are replaced by the retry's; a failed fetch
// leaves a result as it is.
func (n *Inbound) fillGaps(ctx context.Context, in FederatedInput, results []FederatedPDUResult) error {
	f := n.eventFetcher()
	if f == nil || in.noFetch || in.Origin == "" || in.Origin == n.ServerName() {
		return nil
	}
	done := 0
	for i, res := range results {
		if res.EventID == "" || !errors.Is(res.Err, ErrMissingEvents) {
			continue
		}
		if done == maxGapPDUs {
			break
		}
		done++
		ok, err := n.fillGap(ctx, f, in.Origin, res.RoomID, in.PDUs[i])
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		retry, err := n.InputFederatedPDUs(ctx, FederatedInput{Origin: in.Origin, PDUs: []json.RawMessage{in.PDUs[i]}, noFetch: true})
		if err != nil {
			return err
		}
		results[i] = retry[0]
	}
	return nil
}

// fillGap fetches what one PDU is missing; ok is false when nothing could
// be done (then the PDU is not retried).
func (n *Inbound) fillGap(ctx context.Context, f EventFetcher, origin, roomID string, raw json.RawMessage) (ok bool, err error) {
	version, err := n.RoomVersion(roomID)
	if err != nil {
		return false, err
	}
	ev, _, err := n.parseFederatedPDU(ctx, version, raw)
	if err != nil {
		return false, nil
	}
	// Prev events first: one fetched as an auth event would be stored as a
	// plain outlier, without the state before and after it.
	missing, err := n.prevsWithoutState(ev.PrevEventIDs())
	if err != nil {
		return false, err
	}
	if len(missing) > maxGapPrevs {
		n.Logger().Debug("too many missing prev events to fill", "origin", origin, "event_id", ev.EventID(), "missing", len(missing))
		return false, nil
	}
	for _, prev := range missing {
		if err := n.fetchStateAt(ctx, f, origin, roomID, version, prev); err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			n.Logger().Debug("state at a missing prev event not fetched", "origin", origin, "event_id", prev, "error", err)
			return false, nil
		}
	}
	if err := n.fetchAuthEvents(ctx, f, origin, roomID, version, []gomatrixserverlib.PDU{ev}, nil); err != nil {
		return false, err
	}
	n.Logger().Debug("filled a gap with fetched state", "origin", origin, "event_id", ev.EventID(), "prev_events", len(missing))
	return true, nil
}

// fetchStateAt fetches the event prev and the state before it from server,
// checks them, and stores them as outliers, prev with its state before and
// after it. A problem with what the server sent is an error (nothing of
// it is stored but auth events already checked).
func (n *Inbound) fetchStateAt(ctx context.Context, f EventFetcher, server, roomID string, version gomatrixserverlib.RoomVersion, prev string) error {
	ids, err := f.StateIDs(ctx, server, roomID, prev)
	if err != nil {
		return err
	}
	if len(ids.StateIDs) > maxGapState || len(ids.AuthChainIDs) > maxFetchedAuthChain {
		return fmt.Errorf("%w: state at %s: %d events, %d in the auth chain", core.ErrTooLarge, prev, len(ids.StateIDs), len(ids.AuthChainIDs))
	}
	prevRaw, prevEv, err := n.fetchPrevEvent(ctx, f, server, roomID, version, prev)
	if err != nil {
		return err
	}
	raws, err := n.fetchUnknownState(ctx, f, server, roomID, prev, ids)
	if err != nil {
		return err
	}
	raws = append(raws, prevRaw)
	checked, err := n.checkRemoteChain(ctx, roomID, version, raws)
	if err != nil {
		return err
	}
	fetched := map[string]gomatrixserverlib.PDU{}
	for _, ev := range checked {
		fetched[ev.EventID()] = ev
	}
	if _, ok := fetched[prev]; !ok {
		if done, err := n.prevStoredWithState(prev); err != nil || done {
			return err
		}
	}
	before, err := n.stateFromIDs(roomID, prev, ids.StateIDs, fetched)
	if err != nil {
		return err
	}
	after := before
	if sk := prevEv.StateKey(); sk != nil {
		after = before.With(prevEv.Type(), *sk, prev)
	}
	others := make([]gomatrixserverlib.PDU, 0, len(checked))
	for _, ev := range checked {
		if ev.EventID() != prev {
			others = append(others, ev)
		}
	}
	if err := n.storeOutliers(ctx, roomID, others); err != nil {
		return err
	}
	return n.storeOutlierWithState(ctx, roomID, prevEv, before, after)
}

// fetchPrevEvent fetches the event prev from server (/event) and parses it,
// refusing an answer that is another event or does not parse.
func (n *Inbound) fetchPrevEvent(ctx context.Context, f EventFetcher, server, roomID string, version gomatrixserverlib.RoomVersion, prev string) (json.RawMessage, gomatrixserverlib.PDU, error) {
	prevRaw, err := f.Event(ctx, server, prev)
	if err != nil {
		return nil, nil, err
	}
	prevEvs := n.parseRemoteEvents(ctx, roomID, version, []json.RawMessage{prevRaw}, true)
	if len(prevEvs) != 1 || prevEvs[0].EventID() != prev {
		return nil, nil, fmt.Errorf("%w: /event %s answered another or a bad event", core.ErrBadInput, prev)
	}
	return prevRaw, prevEvs[0], nil
}

// fetchUnknownState fetches the events of the state before prev and its
// auth chain (ids) that the node does not have: one by one when there are
// at most maxEventFetches of them, else the whole state at once (/state).
func (n *Inbound) fetchUnknownState(ctx context.Context, f EventFetcher, server, roomID, prev string, ids *RoomStateIDs) ([]json.RawMessage, error) {
	unknown, err := n.unknownEvents(append(append([]string{}, ids.StateIDs...), ids.AuthChainIDs...), nil)
	if err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	if len(unknown) <= maxEventFetches {
		for _, id := range unknown {
			j, err := f.Event(ctx, server, id)
			if err != nil {
				return nil, err
			}
			raws = append(raws, j)
		}
	} else {
		st, err := f.State(ctx, server, roomID, prev)
		if err != nil {
			return nil, err
		}
		raws = append(append(raws, st.State...), st.AuthChain...)
	}
	return raws, nil
}

// prevStoredWithState is for a prev that checkRemoteChain did not return:
// it was stored already (with its state meanwhile, or as an outlier without
// it, checked then), or it failed its auth checks (an error). done is true
// when prev is stored with its state, so there is nothing left to do.
func (n *Inbound) prevStoredWithState(prev string) (done bool, err error) {
	unknown, err := n.unknownEvents([]string{prev}, nil)
	if err != nil {
		return false, err
	}
	if len(unknown) != 0 {
		return false, fmt.Errorf("%w: event %s did not pass its auth checks", core.ErrForbidden, prev)
	}
	noState, err := n.prevsWithoutState([]string{prev})
	if err != nil {
		return false, err
	}
	return len(noState) == 0, nil
}

// stateFromIDs is the state before prev from its event IDs, keyed by what
// the events say they are: each one either just fetched and checked, or
// stored here, not rejected and in the room. It must hold a create event.
func (n *Inbound) stateFromIDs(roomID, prev string, stateIDs []string, fetched map[string]gomatrixserverlib.PDU) (*core.State, error) {
	m := map[core.StateKey]string{}
	err := n.DB.View(func(tx *kv.Txn) error {
		for _, id := range stateIDs {
			p, ok := fetched[id]
			if !ok {
				rec, err := core.LoadEventRecord(tx, id)
				if err != nil {
					return fmt.Errorf("%w: state event %s: %v", ErrMissingEvents, id, err)
				}
				if rec.Rejected != "" || rec.RoomID != roomID {
					return fmt.Errorf("%w: state event %s is rejected or in another room", core.ErrForbidden, id)
				}
				if p, err = n.LoadPDU(tx, id); err != nil {
					return err
				}
			}
			sk := p.StateKey()
			if sk == nil {
				return fmt.Errorf("%w: %s in the state is not a state event", core.ErrBadInput, id)
			}
			m[core.StateKey{EventType: p.Type(), StateKey: *sk}] = id
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := m[core.StateKey{EventType: spec.MRoomCreate}]; !ok {
		return nil, fmt.Errorf("%w: state at %s has no create event", core.ErrBadInput, prev)
	}
	return core.StateFromMap(m), nil
}

// storeOutlierWithState stores a checked event as an outlier whose state
// before and after it are known (a prev event at a gap).
func (n *Inbound) storeOutlierWithState(ctx context.Context, roomID string, ev gomatrixserverlib.PDU, before, after *core.State) error {
	_, err := n.WithRoom(ctx, roomID, func(b *core.Batch) error {
		if b.Room == nil {
			return fmt.Errorf("room %s: %w", roomID, core.ErrNotFound)
		}
		id := ev.EventID()
		if ok, err := knownWithState(b, id); err != nil || ok {
			return err
		}
		// Unknown, or an outlier without state: (re)written with it.
		p := &core.PendingEvent{PDU: ev, Outlier: true, Before: before, After: after, Record: core.EventRecord{
			RoomID: roomID, Version: string(b.Room.Version), JSON: ev.JSON(),
			StateBefore: before.ID(), StateAfter: after.ID(),
		}}
		b.Events = append(b.Events, p)
		b.ByID[id] = p
		b.Extra = append(b.Extra, func(tx *kv.Txn) error { return tx.Delete(core.OutlierNoStateKey(id)) })
		return nil
	})
	return err
}
