package node

import (
	"context"
	"encoding/json"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/e2ee"
)

// End-to-end encryption and devices live in node/e2ee; node.Node embeds
// it. This file is the seam: the names the node's API keeps for its
// consumers, and e2eeHost, through which e2ee reaches the accounts and the
// outbound queues that stay here.

// ToDeviceEvent is one to-device message as /sync delivers it (e2ee's).
type ToDeviceEvent = e2ee.ToDeviceEvent

// UserDevices is a local user's device list as another server sees it
// (e2ee's).
type UserDevices = e2ee.UserDevices

// UserDevice is one device of a UserDevices (e2ee's).
type UserDevice = e2ee.UserDevice

// Helpers the inbound federation files use, kept under their old names.
type (
	crossSigningKeyJSON = e2ee.CrossSigningKeyJSON
	deviceKeysJSON      = e2ee.DeviceKeysJSON
)

func isJSONObject(raw json.RawMessage) bool { return e2ee.IsJSONObject(raw) }

// deletePrefix deletes every key under prefix. Callers use it on prefixes
// whose size is bounded.
func deletePrefix(tx *kv.Txn, prefix []byte) error {
	_, err := tx.DeleteFirst(kv.Scan{Prefix: prefix}, 0)
	return err
}

// e2eeHost is the node as e2ee sees it (e2ee.Host).
type e2eeHost struct{ n *Node }

func (h e2eeHost) DeviceDisplayName(tx *kv.Txn, userID, deviceID string) (string, error) {
	d, err := readDevice(tx, userID, deviceID)
	return d.DisplayName, err
}

func (h e2eeHost) DeviceNames(ctx context.Context, userID string) ([]e2ee.DeviceName, error) {
	devices, err := h.n.Devices(ctx, userID)
	out := make([]e2ee.DeviceName, len(devices))
	for i, d := range devices {
		out[i] = e2ee.DeviceName{DeviceID: d.DeviceID, DisplayName: d.DisplayName}
	}
	return out, err
}

func (h e2eeHost) QueueDeviceListUpdate(tx *kv.Txn, userID string, pos uint64) ([]string, error) {
	return h.n.queueDeviceListUpdate(tx, userID, pos)
}

func (h e2eeHost) SplitRemoteToDevice(sender, evType string, messages map[string]map[string]json.RawMessage) (int, func(tx *kv.Txn) ([]string, error)) {
	remote, count := h.n.splitRemote(messages)
	return count, func(tx *kv.Txn) ([]string, error) { return h.n.queueToDevice(tx, sender, evType, remote) }
}

func (h e2eeHost) FedQueued(dests []string) { h.n.fedQueued(dests) }
