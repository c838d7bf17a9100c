package userdir

import (
	"context"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// rebuildOnce indexes every room the node has from its current state,
// unless that was done before (builtKey). A node made with the directory
// in place does it on its first start, over no rooms.
func (d *Directory) rebuildOnce(ctx context.Context) error {
	var built bool
	if err := d.db.View(func(tx *kv.Txn) error {
		var err error
		built, err = tx.Has(builtKey())
		return err
	}); err != nil || built {
		return err
	}
	var rooms []string
	if err := d.db.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: kv.Key(core.TableRoom), KeysOnly: true}, func(k, _ []byte) (bool, error) {
			id, err := kv.LastString(k)
			rooms = append(rooms, id)
			return err == nil, err
		})
	}); err != nil {
		return err
	}
	for _, roomID := range rooms {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := d.db.Update(func(tx *kv.Txn) error { return d.rebuildRoom(tx, roomID) })
		if errors.Is(err, kv.ErrTxnTooBig) {
			d.log.Warn("user directory: room too large to index at once; its members are found once they change", "room", roomID)
			continue
		}
		if err != nil {
			return fmt.Errorf("room %s: %w", roomID, err)
		}
	}
	if len(rooms) > 0 {
		d.log.Info("user directory built", "rooms", len(rooms))
	}
	return d.db.Update(func(tx *kv.Txn) error { return tx.Set(builtKey(), []byte{}) })
}

// rebuildRoom replaces a room's entries with those of its current state.
// (One transaction per room: a room of many thousand members may exceed
// the phone profile's transaction size; such a room is logged and left
// out rather than stopping the node from opening.)
func (d *Directory) rebuildRoom(tx *kv.Txn, roomID string) error {
	room, err := core.LoadRoom(tx, roomID)
	if err != nil {
		return err
	}
	s, err := d.c.States.Read(tx, room.State)
	if err != nil {
		return err
	}
	var old []string
	if err := tx.Each(kv.Scan{Prefix: memberPrefix(roomID), KeysOnly: true}, func(k, _ []byte) (bool, error) {
		id, err := kv.LastString(k)
		old = append(old, id)
		return err == nil, err
	}); err != nil {
		return err
	}
	for _, userID := range old {
		if err := setMember(tx, roomID, userID, nil); err != nil {
			return err
		}
	}
	members := map[string]string{}
	var ferr error
	s.Each(func(k core.StateKey, eventID string) {
		if ferr != nil || k.EventType != spec.MRoomMember {
			return
		}
		ev, err := d.c.LoadPDU(tx, eventID)
		if err != nil {
			ferr = err
			return
		}
		m, err := ev.Membership()
		if err != nil || m != spec.Join {
			return
		}
		if d.c.IsLocalUser(k.StateKey) {
			members[k.StateKey] = m
		}
		ferr = setMember(tx, roomID, k.StateKey, profileOf(ev))
	})
	if ferr != nil {
		return ferr
	}
	f, err := findable(s, members, func(id string) (gomatrixserverlib.PDU, error) { return d.c.LoadPDU(tx, id) })
	if err != nil {
		return err
	}
	return setFindable(tx, roomID, f)
}
