package userdir

import (
	"context"
	"fmt"
	"slices"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Catching up: indexing a room's members from its current state rather
// than from the commit's member changes, for two kinds of room.
//
//   - A room joined over federation: its remote members come with the
//     send_join answer and are written in bounded chunks before the join's
//     commit (node/fedjoin_chunks.go), which so starts from a state that
//     already holds them and lists no change for them. The join's commit
//     marks the room (tPending) and, once durable and still under the
//     room's lock, indexes them (Indexer.Index's after function).
//   - Rooms a node had before it had a user directory: Build marks them all
//     once, then indexes them under their locks.
//
// Members are written catchUpMembers per transaction: a room of thousands
// of members does not fit in one of the phone profile's transactions. A
// crash in between leaves the room marked, and Build finishes it; writing a
// member again is harmless (setMember writes the difference).
const (
	catchUpMembers = 64  // members per transaction (each up to 2*maxTokens+1 writes)
	markRooms      = 512 // rooms marked per transaction
)

// rebuildOnce marks every room for catching up, the first time the node
// opens with a user directory, and then catches up every marked room.
func (d *Directory) rebuildOnce(ctx context.Context) error {
	if err := d.markAllOnce(); err != nil {
		return err
	}
	var rooms []string
	err := d.db.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: pendingPrefix(), KeysOnly: true}, func(k, _ []byte) (bool, error) {
			id, err := kv.LastString(k)
			rooms = append(rooms, id)
			return err == nil, err
		})
	})
	if err != nil {
		return err
	}
	for _, roomID := range rooms {
		if err := d.catchUpLocked(ctx, roomID); err != nil {
			return err
		}
	}
	if len(rooms) > 0 {
		d.log.Info("user directory: rooms indexed from their state", "rooms", len(rooms))
	}
	return nil
}

// markAllOnce marks every stored room, unless that was done before.
func (d *Directory) markAllOnce() error {
	var built bool
	var rooms []string
	err := d.db.View(func(tx *kv.Txn) error {
		var err error
		if built, err = tx.Has(builtKey()); err != nil || built {
			return err
		}
		rooms, err = core.RoomIDs(tx)
		return err
	})
	if err != nil || built {
		return err
	}
	for chunk := range slices.Chunk(rooms, markRooms) {
		err := d.db.Update(func(tx *kv.Txn) error {
			for _, id := range chunk {
				if err := tx.Set(pendingKey(id), []byte{}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return d.db.Update(func(tx *kv.Txn) error { return tx.Set(builtKey(), []byte{}) })
}

// catchUpLocked is catchUp under the room's lock.
func (d *Directory) catchUpLocked(ctx context.Context, roomID string) error {
	mu, err := d.c.LockRoom(ctx, roomID)
	if err != nil {
		return err
	}
	defer mu.Unlock()
	return d.catchUp(roomID)
}

// catchUp indexes a marked room's members from its current state and
// unmarks it. The caller holds the room's lock, so no commit of the room
// runs meanwhile.
func (d *Directory) catchUp(roomID string) error {
	type member struct{ userID, eventID string }
	var members []member
	var state *core.State
	err := d.db.View(func(tx *kv.Txn) error {
		room, err := core.LoadRoom(tx, roomID)
		if err != nil {
			return err
		}
		if state, err = d.c.States.Read(tx, room.State); err != nil {
			return err
		}
		state.Each(func(k core.StateKey, id string) {
			if k.EventType == spec.MRoomMember {
				members = append(members, member{k.StateKey, id})
			}
		})
		return nil
	})
	if err != nil {
		return fmt.Errorf("userdir: catch up %s: %w", roomID, err)
	}
	locals := map[string]string{} // local members joined (findable's members)
	for chunk := range slices.Chunk(members, catchUpMembers) {
		err := d.db.Update(func(tx *kv.Txn) error {
			for _, m := range chunk {
				ev, err := d.c.LoadPDU(tx, m.eventID)
				if err != nil {
					return err
				}
				var rec *memberRecord
				if ms, err := ev.Membership(); err == nil && ms == spec.Join {
					rec = profileOf(ev)
					if d.c.IsLocalUser(m.userID) {
						locals[m.userID] = spec.Join
					}
				}
				if err := setMember(tx, roomID, m.userID, rec); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("userdir: catch up %s: %w", roomID, err)
		}
	}
	err = d.db.Update(func(tx *kv.Txn) error {
		f, err := findable(state, locals, func(id string) (gomatrixserverlib.PDU, error) { return d.c.LoadPDU(tx, id) })
		if err != nil {
			return err
		}
		if err := setFindable(tx, roomID, f); err != nil {
			return err
		}
		return tx.Delete(pendingKey(roomID))
	})
	if err != nil {
		return fmt.Errorf("userdir: catch up %s: %w", roomID, err)
	}
	return nil
}
