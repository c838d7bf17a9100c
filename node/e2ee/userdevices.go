package e2ee

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// UserDevices is a local user's device list as another server sees it
// (federation's user/devices).
type UserDevices struct {
	UserID string
	// StreamID is the user's position in the device-list stream: it grows
	// with every change to the user's devices or keys.
	StreamID uint64
	// Devices are the devices that have identity keys, by device ID.
	Devices        []UserDevice
	MasterKey      json.RawMessage // nil when the user has none
	SelfSigningKey json.RawMessage // nil when the user has none
}

// UserDevice is one device of a UserDevices.
type UserDevice struct {
	DeviceID    string
	DisplayName string
	Keys        json.RawMessage
}

// UserDevices returns a local user's devices with identity keys and the
// user's master and self-signing keys (never the user-signing key), with
// the signatures their owner made. An unknown or remote user is
// ErrNotFound.
//
// The stream ID is read before the keys: a change that lands in between is
// then in the answer under an older stream ID, and the next device-list
// update (with a newer one) makes the other server ask again; the other
// order could hide the change behind an ID the other server already has.
func (n *E2EE) UserDevices(ctx context.Context, userID string) (*UserDevices, error) {
	if !n.IsLocalUser(userID) {
		return nil, fmt.Errorf("%s is not a user of this server: %w", userID, core.ErrNotFound)
	}
	localpart := userID[1 : len(userID)-len(n.ServerName())-1]
	out := &UserDevices{UserID: userID, Devices: []UserDevice{}}
	err := n.DB.View(func(tx *kv.Txn) error {
		if ok, err := tx.Has(core.AccountKey(localpart)); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("user %s: %w", userID, core.ErrNotFound)
			}
			return err
		}
		pos, err := tx.Get(deviceListUserKey(userID))
		if err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if len(pos) == 8 {
			out.StreamID = binary.BigEndian.Uint64(pos)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Only the owner's signatures: the asking server is no user.
	devKeys, master, selfSigning, _, err := n.QueryKeys(ctx, userID, map[string][]string{userID: nil})
	if err != nil {
		return nil, err
	}
	devices, err := n.host.DeviceNames(ctx, userID)
	if err != nil {
		return nil, err
	}
	for _, d := range devices {
		keys, ok := devKeys[userID][d.DeviceID]
		if !ok {
			continue
		}
		out.Devices = append(out.Devices, UserDevice{DeviceID: d.DeviceID, DisplayName: d.DisplayName, Keys: keys})
	}
	out.MasterKey, out.SelfSigningKey = master[userID], selfSigning[userID]
	return out, nil
}
