package node

import (
	"context"
	"encoding/json"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/e2ee"
)

// End-to-end encryption and devices live in node/e2ee; node.Node embeds
// it. This file is the seam: e2eeHost, through which e2ee reaches the
// accounts and the outbound queues that stay here.

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
