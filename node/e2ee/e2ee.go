// Package e2ee owns end-to-end encryption and devices' keys on the server:
// each device's identity, one-time and fallback keys (upload, query, claim),
// users' cross-signing keys and the signatures uploaded on keys, the
// device-list change stream, the to-device inboxes, and a local user's
// device list as other servers ask for it.
//
// It is a concern of its own because none of it is room state: it hangs off
// the accounts (a device's keys and inbox live and die with the device) and
// feeds the outbound federation queues (device-list updates, to-device
// messages for other servers), and /sync reads its two streams. The room
// core does not call it.
//
// It may import kv, node/core, internal/jsontext and gomatrixserverlib,
// never node (node assembles it). What it needs of the concerns that stay in
// node (the device records of accounts, the outbound queues) it asks through
// Host.
package e2ee

import (
	"context"
	"encoding/json"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// E2EE is the end-to-end encryption concern of a node: the room core it
// stores into, what it needs of the rest of the node, and its two streams.
// node.Node embeds it, so its exported methods are the node's.
type E2EE struct {
	*core.Node
	host Host

	// toDevice numbers to-device messages and deviceLists device-list
	// changes: each is a stream of its own, so a sync token carries both.
	toDevice    *kv.Stream
	deviceLists *kv.Stream
}

// Host is what E2EE needs of the concerns around it in the node: the
// accounts' device records and the outbound federation queues. The node
// provides it; keeping it an interface lets this package stay below node.
type Host interface {
	// DeviceDisplayName returns a device's display name, or an error
	// wrapping core.ErrNotFound when the user has no such device.
	DeviceDisplayName(tx *kv.Txn, userID, deviceID string) (string, error)
	// DeviceNames lists a user's devices, by device ID.
	DeviceNames(ctx context.Context, userID string) ([]DeviceName, error)
	// QueueDeviceListUpdate queues, in tx, the m.device_list_update EDUs
	// telling the servers that share a room with local user userID of a
	// change at device-list position pos, and returns those servers.
	QueueDeviceListUpdate(tx *kv.Txn, userID string, pos uint64) ([]string, error)
	// SplitRemoteToDevice takes the messages for other servers' users out of
	// a to-device send and counts them; queue queues them, in the
	// transaction that accepts the send, and returns their destinations.
	SplitRemoteToDevice(sender, evType string, messages map[string]map[string]json.RawMessage) (count int, queue func(tx *kv.Txn) ([]string, error))
	// FedQueued tells the outbound queues that dests have new work, once
	// the transaction that queued it has committed.
	FedQueued(dests []string)
}

// DeviceName is a device as UserDevices lists it.
type DeviceName struct {
	DeviceID    string
	DisplayName string
}

// Open opens the to-device and device-list streams on c's database. The
// node calls it once: a kv.Stream must be opened once per database.
func Open(c *core.Node, host Host) (*E2EE, error) {
	n := &E2EE{Node: c, host: host}
	var err error
	if n.toDevice, err = n.DB.Stream(streamToDevice); err != nil {
		return nil, err
	}
	if n.deviceLists, err = n.DB.Stream(streamDeviceLists); err != nil {
		return nil, err
	}
	return n, nil
}
