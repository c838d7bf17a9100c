package e2ee

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// The device-list stream is a log of users whose devices or keys changed:
// a new device, a deleted one, new or changed device keys, new cross-signing
// keys or signatures. Clients that see a user in device_lists.changed query
// that user's keys again, so only the fact of a change matters, not what it
// was: the log keeps one entry per user, at the position of their latest
// change, and so holds at most one entry per user ever seen.
//
// A reader asking about (from, to] misses a user whose change in that window
// was superseded by a later one after to; it sees the user in the window
// that holds the later change instead, which is all a client needs.

// DeviceListPosition is the latest committed device-list stream position.
func (n *E2EE) DeviceListPosition() uint64 { return n.deviceLists.Current() }

// maxConflictRetries bounds how often a transaction that lost a write
// conflict to a concurrent one is run again. Conflicts here come from
// requests touching one device's records at once (claims of its one-time
// keys, its inbox count); each round lets at least one of them commit, so
// a caller among k concurrent ones needs at most k tries.
const maxConflictRetries = 64

// RetryConflicts runs fn until it does not fail with kv.ErrConflict (at
// most maxConflictRetries times). fn must be safe to run again: it redoes a
// whole transaction. The outbound queues use it too.
func RetryConflicts(ctx context.Context, fn func() error) error {
	for i := 0; ; i++ {
		err := fn()
		if !errors.Is(err, kv.ErrConflict) || i+1 >= maxConflictRetries {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// ChangeDevices runs fn in a transaction that also records a device-list
// change for userID, and wakes the local users who share a room with
// userID once it commits. Accounts use it when a device is created or
// deleted.
func (n *E2EE) ChangeDevices(ctx context.Context, userID string, fn func(tx *kv.Txn) error) error {
	return n.ChangeDeviceLists(ctx, 1, func(tx *kv.Txn) ([]string, error) {
		if err := fn(tx); err != nil {
			return nil, err
		}
		return []string{userID}, nil
	})
}

// ChangeDeviceLists runs fn in one transaction with up to maxUsers new
// device-list positions; fn returns the users whose device lists it
// changed (at most maxUsers; positions it leaves unused are gaps, which
// readers skip). After the commit the changed users' room-mates are woken.
// Received device-list updates (an EDU) use it too.
func (n *E2EE) ChangeDeviceLists(ctx context.Context, maxUsers int, fn func(tx *kv.Txn) ([]string, error)) error {
	var changed, dests []string
	err := RetryConflicts(ctx, func() error {
		changed, dests = nil, nil
		_, err := n.deviceLists.Commit(maxUsers, func(tx *kv.Txn, first uint64) error {
			users, err := fn(tx)
			if err != nil {
				return err
			}
			users = uniqueStrings(users)
			if len(users) > maxUsers {
				return fmt.Errorf("device lists: %d users changed, %d positions allocated", len(users), maxUsers)
			}
			for i, u := range users {
				if err := recordDeviceListChange(tx, u, first+uint64(i)); err != nil {
					return err
				}
				if n.IsLocalUser(u) { // other servers hear of it (Host.QueueDeviceListUpdate)
					d, err := n.host.QueueDeviceListUpdate(tx, u, first+uint64(i))
					if err != nil {
						return err
					}
					dests = append(dests, d...)
				}
			}
			changed = users
			return nil
		})
		return err
	})
	if err != nil {
		return err
	}
	n.host.FedQueued(uniqueStrings(dests))
	n.wakeDeviceListWatchers(changed)
	return nil
}

// recordDeviceListChange moves userID's entry in the change log to pos,
// deleting the older entry so that the log stays one entry per user.
func recordDeviceListChange(tx *kv.Txn, userID string, pos uint64) error {
	old, err := tx.Get(deviceListUserKey(userID))
	switch {
	case errors.Is(err, kv.ErrNotFound):
	case err != nil:
		return err
	case len(old) == 8:
		if err := tx.Delete(deviceListKey(binary.BigEndian.Uint64(old))); err != nil {
			return err
		}
	}
	if err := tx.Set(deviceListKey(pos), []byte(userID)); err != nil {
		return err
	}
	return tx.Set(deviceListUserKey(userID), binary.BigEndian.AppendUint64(nil, pos))
}

// wakeDeviceListWatchers wakes the local users who share a joined room with
// any of users (and the users themselves), the readers whose
// device_lists.changed may now include them.
func (n *E2EE) wakeDeviceListWatchers(users []string) {
	if len(users) == 0 {
		return
	}
	var wake []string
	err := n.DB.View(func(tx *kv.Txn) error {
		for _, u := range users {
			if n.IsLocalUser(u) {
				wake = append(wake, u)
			}
			rooms, err := joinedRoomSet(tx, u)
			if err != nil {
				return err
			}
			for roomID := range rooms {
				err := tx.Each(kv.Scan{Prefix: core.LocalMemberPrefix(roomID)}, func(k, v []byte) (bool, error) {
					if string(v) != spec.Join {
						return true, nil
					}
					local, err := kv.LastString(k)
					wake = append(wake, local)
					return err == nil, err
				})
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		// The change is committed; a reader that is not woken still sees it
		// on its next request, so a failed lookup only delays it.
		n.Logger().Warn("device lists: finding users to wake", "err", err)
	}
	n.Notifier.Wake(uniqueStrings(wake)...)
}

// DeviceListChangesSince returns the users whose devices or keys changed at
// a position in (from, to] and who share a joined room with forUser, or are
// forUser. Users who left rooms are for the caller to work out from
// membership changes.
func (n *E2EE) DeviceListChangesSince(ctx context.Context, forUser string, from, to uint64) ([]string, error) {
	changed := []string{}
	if to <= from {
		return changed, nil
	}
	err := n.DB.View(func(tx *kv.Txn) error {
		var candidates []string
		err := tx.Each(kv.Scan{Prefix: kv.Key(tDeviceList), From: deviceListKey(from + 1)}, func(k, v []byte) (bool, error) {
			pos, err := kv.LastUint(k)
			if err != nil || pos > to {
				return false, err
			}
			candidates = append(candidates, string(v))
			return true, nil
		})
		if err != nil || len(candidates) == 0 {
			return err
		}
		mine, err := joinedRoomSet(tx, forUser)
		if err != nil {
			return err
		}
		for _, u := range candidates {
			if u == forUser {
				changed = append(changed, u)
				continue
			}
			shared, err := sharesRoom(tx, u, mine)
			if err != nil {
				return err
			}
			if shared {
				changed = append(changed, u)
			}
		}
		return nil
	})
	slices.Sort(changed)
	return changed, err
}

// joinedRoomSet is the set of rooms userID is joined to, from the
// membership index (which covers remote users too).
func joinedRoomSet(tx *kv.Txn, userID string) (map[string]bool, error) {
	rooms := map[string]bool{}
	err := core.EachJoinedRoom(tx, userID, func(roomID string) (bool, error) {
		rooms[roomID] = true
		return true, nil
	})
	return rooms, err
}

// sharesRoom reports whether userID is joined to any room of rooms.
func sharesRoom(tx *kv.Txn, userID string, rooms map[string]bool) (bool, error) {
	if len(rooms) == 0 {
		return false, nil
	}
	found := false
	err := core.EachJoinedRoom(tx, userID, func(roomID string) (bool, error) {
		found = rooms[roomID]
		return !found, nil
	})
	return found, err
}

// uniqueStrings sorts s and drops repeats.
func uniqueStrings(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// PurgeDevice deletes everything end-to-end encryption keeps for a
// device: its to-device inbox and transaction IDs, its device keys and the
// signatures on them, and its one-time and fallback keys. Deleting a device
// calls it in the same transaction.
func PurgeDevice(tx *kv.Txn, userID, deviceID string) error {
	prefixes := [][]byte{
		toDevicePrefix(userID, deviceID),
		otkDevicePrefix(userID, deviceID),
		keySigPrefix(userID, deviceID),
	}
	for _, p := range prefixes {
		if err := deletePrefix(tx, p); err != nil {
			return err
		}
	}
	for _, k := range [][]byte{
		toDeviceCountKey(userID, deviceID), toDeviceTxnKey(userID, deviceID),
		DeviceKeysKey(userID, deviceID), otkMetaKey(userID, deviceID),
	} {
		if err := tx.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// deletePrefix deletes every key under prefix. Callers use it on prefixes
// whose size is bounded (an inbox, a device's one-time keys).
func deletePrefix(tx *kv.Txn, prefix []byte) error {
	_, err := tx.DeleteFirst(kv.Scan{Prefix: prefix}, 0)
	return err
}
