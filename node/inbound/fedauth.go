package inbound

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
)

// Fetching the auth events a node is missing for events it got from
// another server (inbound PDUs, backfilled history, state at a gap): with
// /event_auth from that server, checked, and stored as outliers: stored
// and authed, with a stream position so they can be served as state, but
// no timeline entry, and no change to the room's state or extremities.

// Bounds on what fetching auth events costs.
const (
	// maxAuthFetches is how many /event_auth requests one call makes.
	maxAuthFetches = 5
	// maxFetchedAuthChain is the most events one /event_auth answer may have.
	maxFetchedAuthChain = 1000
)

// fetchAuthEvents makes sure every auth event of evs is stored or in have:
// for each event with some that are not, it asks server for the event's
// auth chain (/event_auth; at most maxAuthFetches requests), checks the
// events it does not have (signatures, each allowed by its own auth events,
// which must be in the answer or stored) and stores them as outliers.
// Events it cannot fetch or check are left missing: the caller's own checks
// then fail as they would have.
func (n *Inbound) fetchAuthEvents(ctx context.Context, f EventFetcher, server, roomID string, version gomatrixserverlib.RoomVersion, evs []gomatrixserverlib.PDU, have map[string]bool) error {
	fetches := 0
	for _, ev := range evs {
		missing, err := n.unknownEvents(ev.AuthEventIDs(), have)
		if err != nil {
			return err
		}
		if len(missing) == 0 {
			continue
		}
		if fetches == maxAuthFetches {
			break
		}
		fetches++
		chain, err := f.EventAuth(ctx, server, roomID, ev.EventID())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			n.Logger().Debug("event_auth failed", "server", server, "event_id", ev.EventID(), "error", err)
			continue
		}
		if len(chain) > maxFetchedAuthChain {
			n.Logger().Debug("event_auth answer too long", "server", server, "event_id", ev.EventID(), "count", len(chain))
			continue
		}
		checked, err := n.checkRemoteChain(ctx, roomID, version, chain)
		if err != nil {
			n.Logger().Debug("event_auth answer refused", "server", server, "event_id", ev.EventID(), "error", err)
			continue
		}
		if err := n.storeOutliers(ctx, roomID, checked); err != nil {
			return err
		}
		n.Logger().Debug("fetched missing auth events", "server", server, "event_id", ev.EventID(), "count", len(checked))
	}
	return nil
}

// unknownEvents lists the ids that are neither in have nor stored.
func (n *Inbound) unknownEvents(ids []string, have map[string]bool) ([]string, error) {
	var out []string
	err := n.DB.View(func(tx *kv.Txn) error {
		for _, id := range ids {
			if have[id] {
				continue
			}
			ok, err := tx.Has(core.EventKey(id))
			if err != nil {
				return err
			}
			if !ok {
				out = append(out, id)
			}
		}
		return nil
	})
	return out, err
}

// parseRemoteEvents parses and verifies events another server sent for
// roomID; those that do not parse, are in another room, fail their
// signatures or are redacted by a failed content hash are left out (a
// backfilled event in its redacted form is still history, but auth and
// state events with stripped content are no use).
func (n *Inbound) parseRemoteEvents(ctx context.Context, roomID string, version gomatrixserverlib.RoomVersion, raws []json.RawMessage, keepRedacted bool) []gomatrixserverlib.PDU {
	out := make([]gomatrixserverlib.PDU, 0, len(raws))
	seen := map[string]bool{}
	for _, raw := range raws {
		ev, redacted, err := n.parseFederatedPDU(ctx, version, raw)
		if err != nil || (redacted && !keepRedacted) || ev.RoomID().String() != roomID || seen[ev.EventID()] {
			continue
		}
		seen[ev.EventID()] = true
		out = append(out, ev)
	}
	return out
}

// checkRemoteChain parses an auth chain (or state) from another server and
// returns the events the node does not have, oldest first, each allowed by
// its own auth events (in the answer or stored, and not rejected). An event
// that fails makes the whole answer fail: it is one chain.
func (n *Inbound) checkRemoteChain(ctx context.Context, roomID string, version gomatrixserverlib.RoomVersion, raws []json.RawMessage) ([]gomatrixserverlib.PDU, error) {
	evs := n.parseRemoteEvents(ctx, roomID, version, raws, false)
	slices.SortFunc(evs, func(a, b gomatrixserverlib.PDU) int {
		if c := cmp.Compare(a.Depth(), b.Depth()); c != 0 {
			return c
		}
		return strings.Compare(a.EventID(), b.EventID())
	})
	byID := map[string]gomatrixserverlib.PDU{}
	for _, ev := range evs {
		byID[ev.EventID()] = ev
	}
	var out []gomatrixserverlib.PDU
	err := n.DB.View(func(tx *kv.Txn) error {
		ok := map[string]bool{}
		for _, ev := range evs {
			if stored, err := tx.Has(core.EventKey(ev.EventID())); err != nil {
				return err
			} else if stored {
				continue
			}
			var authEvs []gomatrixserverlib.PDU
			for _, id := range ev.AuthEventIDs() {
				if a, in := byID[id]; in && ok[id] {
					authEvs = append(authEvs, a)
					continue
				}
				rec, err := core.LoadEventRecord(tx, id)
				if err != nil {
					return fmt.Errorf("%w: auth event %s of %s: %v", ErrMissingEvents, id, ev.EventID(), err)
				}
				if rec.Rejected != "" || rec.RoomID != roomID {
					return fmt.Errorf("%w: auth event %s of %s is rejected or in another room", core.ErrForbidden, id, ev.EventID())
				}
				a, err := n.LoadPDU(tx, id)
				if err != nil {
					return err
				}
				authEvs = append(authEvs, a)
			}
			provider, err := gomatrixserverlib.NewAuthEvents(authEvs)
			if err != nil {
				return fmt.Errorf("%w: auth events of %s: %v", core.ErrBadInput, ev.EventID(), err)
			}
			if err := gomatrixserverlib.Allowed(ev, provider, core.UserIDForSender); err != nil {
				return fmt.Errorf("%w: event %s: %v", core.ErrForbidden, ev.EventID(), err)
			}
			ok[ev.EventID()] = true
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// storeOutliers stores checked events of a known room as outliers. Their
// state is recorded as the room's current state (they are not in the
// timeline, so it is only what serving them to other servers reads), and
// they are marked as having no state of their own (tOutlierNoState), so
// they are not taken as prev events as they are.
//
// They go in batches of at most joinChunkBytes (fedjoin_chunks.go): an
// /event_auth answer or the state at a gap may hold thousands of events,
// more than Badger takes in one transaction. evs are in auth order, so
// each batch's auth events are stored by then, and a batch stored before a
// crash is a set of valid outliers that a retry skips.
func (n *Inbound) storeOutliers(ctx context.Context, roomID string, evs []gomatrixserverlib.PDU) error {
	for len(evs) > 0 {
		k, size := 0, 0
		for k < len(evs) {
			// Values over Badger's value threshold (1 KiB in every
			// profile) count as pointers; the rest in full.
			sz := min(len(evs[k].JSON()), 1024) + 3*len(evs[k].EventID()) + 256
			if k > 0 && (size+sz > joinChunkBytes || 3*(k+1) > joinChunkWrites) {
				break
			}
			size += sz
			k++
		}
		if err := n.storeOutlierBatch(ctx, roomID, evs[:k]); err != nil {
			return err
		}
		evs = evs[k:]
	}
	return nil
}

// storeOutlierBatch stores one batch of storeOutliers in one commit.
func (n *Inbound) storeOutlierBatch(ctx context.Context, roomID string, evs []gomatrixserverlib.PDU) error {
	_, err := n.WithRoom(ctx, roomID, func(b *core.Batch) error {
		if b.Room == nil {
			return fmt.Errorf("room %s: %w", roomID, core.ErrNotFound)
		}
		for _, ev := range evs {
			if ok, err := known(b, ev.EventID()); err != nil {
				return err
			} else if ok {
				continue
			}
			p := &core.PendingEvent{PDU: ev, Outlier: true, Record: core.EventRecord{
				RoomID: roomID, Version: string(b.Room.Version), JSON: ev.JSON(),
				StateBefore: b.Room.State, StateAfter: b.Room.State,
			}}
			b.Events = append(b.Events, p)
			b.ByID[ev.EventID()] = p
			id := ev.EventID()
			b.Extra = append(b.Extra, func(tx *kv.Txn) error { return tx.Set(core.OutlierNoStateKey(id), nil) })
		}
		return nil
	})
	return err
}

// knownWithState reports whether an event is in the batch, or stored with
// the state before and after it (not an outlier fetched on its own): what
// an event needs to be a prev event.
func knownWithState(b *core.Batch, id string) (bool, error) {
	if _, ok := b.ByID[id]; ok {
		return true, nil
	}
	if ok, err := b.Tx.Has(core.EventKey(id)); err != nil || !ok {
		return false, err
	}
	noState, err := b.Tx.Has(core.OutlierNoStateKey(id))
	return !noState, err
}

// prevsWithoutState lists the ids that are not stored, or stored as
// outliers without their state.
func (n *Inbound) prevsWithoutState(ids []string) ([]string, error) {
	var out []string
	err := n.DB.View(func(tx *kv.Txn) error {
		for _, id := range ids {
			ok, err := tx.Has(core.EventKey(id))
			if err != nil {
				return err
			}
			if ok {
				if ok, err = tx.Has(core.OutlierNoStateKey(id)); err != nil {
					return err
				}
				ok = !ok
			}
			if !ok {
				out = append(out, id)
			}
		}
		return nil
	})
	return out, err
}
