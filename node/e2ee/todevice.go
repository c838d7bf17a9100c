package e2ee

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/edgenode/edgenode/internal/jsontext"
	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// To-device messages wait in a per-device inbox, keyed by to-device stream
// position, until the device acknowledges them: /sync hands out messages
// after the device's since position and deletes them only when the device
// comes back with a since at or past them, so a response lost on the way
// loses nothing.
const (
	// DefaultToDeviceLimit is how many messages ToDeviceSince returns when
	// the caller gives no limit.
	DefaultToDeviceLimit = 100
	// maxInbox bounds one device's inbox. A device that never syncs would
	// otherwise collect messages forever; past the bound its oldest
	// messages (mostly room keys, which key backup and key requests can
	// recover) are dropped.
	maxInbox = 1000
	// maxToDeviceDeliveries bounds the messages one send may queue (a
	// message to "*" counts once per device), so that one send fits one
	// transaction even on the phone profile. Clients batch far smaller
	// (matrix-rust-sdk sends at most 250 messages a request).
	maxToDeviceDeliveries = 2500
	// maxToDeviceTxnIDs is how many recent transaction IDs are kept per
	// sending device. Clients retry a request soon after it failed, so a
	// short memory makes sends idempotent without growing without bound.
	maxToDeviceTxnIDs = 64
	// ackBatch is how many messages one acknowledgement transaction
	// deletes at most.
	ackBatch = 256
)

// ToDeviceEvent is one to-device message as /sync delivers it (and as it is
// stored in the inbox).
type ToDeviceEvent struct {
	Sender  string          `json:"sender"`
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
}

// ToDevicePosition is the latest committed to-device stream position.
// Read it before ToDeviceSince when building a sync token, so that nothing
// committed between the two calls is skipped.
func (n *E2EE) ToDevicePosition() uint64 { return n.toDevice.Current() }

// delivery is one message bound for one device.
type delivery struct {
	userID, deviceID string
	content          json.RawMessage
}

// SendToDevice queues a message of type evType for each device in messages
// (user ID -> device ID, or "*" for all the user's devices -> content) and
// wakes the recipients. It is idempotent per sender, sending device, evType
// and txnID, the spec's scope for PUT /sendToDevice/{eventType}/{txnId} (an
// empty txnID turns that off). Unknown local devices are skipped.
// Messages for other servers' users are queued, in the same transaction, as
// one m.direct_to_device EDU per server (Host.SplitRemoteToDevice), so a
// send that returns is never lost; a server whose queue is full refuses the
// send.
func (n *E2EE) SendToDevice(ctx context.Context, sender, senderDevice, evType, txnID string, messages map[string]map[string]json.RawMessage) error {
	if evType == "" {
		return fmt.Errorf("%w: empty event type", core.ErrInvalidParam)
	}
	users := make([]string, 0, len(messages))
	for userID, byDevice := range messages {
		if _, err := spec.NewUserID(userID, true); err != nil {
			return fmt.Errorf("%w: user ID %q", core.ErrInvalidParam, userID)
		}
		for deviceID, content := range byDevice {
			if !jsontext.IsObject(content) {
				return fmt.Errorf("%w: content for %s/%s is not an object", core.ErrBadInput, userID, deviceID)
			}
		}
		users = append(users, userID)
	}
	sort.Strings(users)
	remoteCount, queueRemote := n.host.SplitRemoteToDevice(sender, evType, messages)
	txnEntry := core.ToDeviceTxnEntry(evType, txnID)
	recipients, dests, err := n.DeliverToDevice(ctx, ToDeviceSend{
		Sender: sender, EvType: evType, Users: users, Messages: messages,
		Remote: remoteCount, SkipEmpty: true, What: "request",
		Seen: func(tx *kv.Txn) (bool, error) { return toDeviceTxnSeen(tx, sender, senderDevice, txnEntry) },
		Remember: func(tx *kv.Txn) ([]string, error) {
			dests, err := queueRemote(tx)
			if err != nil {
				return nil, err
			}
			return dests, rememberToDeviceTxn(tx, sender, senderDevice, txnEntry)
		},
	})
	if errors.Is(err, kv.ErrTxnTooBig) {
		return fmt.Errorf("%w: to-device messages too large for one request", core.ErrTooLarge)
	}
	if err != nil {
		return err
	}
	n.host.FedQueued(dests)
	n.Notifier.Wake(recipients...)
	return nil
}

// ToDeviceSend is one delivery of to-device messages to the inboxes of
// local devices: a client's send (SendToDevice) or a federated EDU (the
// node's ReceiveToDevice), which share DeliverToDevice.
type ToDeviceSend struct {
	Sender, EvType string
	Users          []string // the local users Messages names, sorted
	Messages       map[string]map[string]json.RawMessage
	// Remote is how many messages go to other servers' users (they count
	// against maxToDeviceDeliveries); SkipEmpty: with nothing to deliver
	// anywhere, nothing is written (not even Remember's record).
	Remote    int
	SkipEmpty bool
	What      string // "request" or "EDU", for the limit's error
	// Seen reports whether the send was done before (its transaction or
	// message ID); Remember records it, in the delivery's commit, and
	// returns the destinations it queued messages for.
	Seen     func(tx *kv.Txn) (bool, error)
	Remember func(tx *kv.Txn) ([]string, error)
}

// DeliverToDevice writes a send's messages to the local inboxes, once: the
// commit needs its number of positions up front, so the deliveries are
// worked out first and checked again inside it. It returns the local
// recipients (to wake; sorted, each once) and the destinations Remember
// queued for.
func (n *E2EE) DeliverToDevice(ctx context.Context, s ToDeviceSend) (recipients, dests []string, err error) {
	err = RetryConflicts(ctx, func() error {
		recipients, dests = nil, nil
		var deliveries []delivery
		dup := false
		err := n.DB.View(func(tx *kv.Txn) error {
			var err error
			if dup, err = s.Seen(tx); err != nil || dup {
				return err
			}
			deliveries, err = n.planDeliveries(tx, s.Users, s.Messages)
			return err
		})
		if err != nil || dup || s.SkipEmpty && len(deliveries)+s.Remote == 0 {
			return err // with nothing to deliver there is nothing to repeat either
		}
		if len(deliveries)+s.Remote > maxToDeviceDeliveries {
			return fmt.Errorf("%w: %d to-device messages in one %s (at most %d)", core.ErrTooLarge, len(deliveries)+s.Remote, s.What, maxToDeviceDeliveries)
		}
		_, err = n.toDevice.Commit(len(deliveries), func(tx *kv.Txn, first uint64) error {
			if dup, err := s.Seen(tx); err != nil || dup {
				return err // a concurrent retry got there first; its positions stay unused
			}
			var err error
			if recipients, err = n.writeDeliveries(tx, s, deliveries, first); err != nil {
				return err
			}
			dests, err = s.Remember(tx)
			return err
		})
		return err
	})
	return uniqueStrings(recipients), dests, err
}

// writeDeliveries writes each delivery at its position (from first) and
// grows the inboxes, returning the recipients.
func (n *E2EE) writeDeliveries(tx *kv.Txn, s ToDeviceSend, deliveries []delivery, first uint64) ([]string, error) {
	var recipients []string
	added := map[[2]string]int{}
	for i, d := range deliveries {
		// A device deleted since planning is skipped; its position is left
		// unused, which readers do not notice.
		if ok, err := tx.Has(core.DeviceKey(d.userID, d.deviceID)); err != nil || !ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		ev := ToDeviceEvent{Sender: s.Sender, Type: s.EvType, Content: d.content}
		if err := tx.SetJSON(toDeviceKey(d.userID, d.deviceID, first+uint64(i)), ev); err != nil {
			return nil, err
		}
		added[[2]string{d.userID, d.deviceID}]++
		recipients = append(recipients, d.userID)
	}
	for dev, count := range added {
		if err := n.growInbox(tx, dev[0], dev[1], count); err != nil {
			return nil, err
		}
	}
	return recipients, nil
}

// planDeliveries expands messages into one delivery per existing local
// device, in a stable order.
func (n *E2EE) planDeliveries(tx *kv.Txn, users []string, messages map[string]map[string]json.RawMessage) ([]delivery, error) {
	var out []delivery
	for _, userID := range users {
		if !n.IsLocalUser(userID) {
			continue // queued for its server instead (Host.SplitRemoteToDevice)
		}
		byDevice := messages[userID]
		deviceIDs := make([]string, 0, len(byDevice))
		for id := range byDevice {
			deviceIDs = append(deviceIDs, id)
		}
		sort.Strings(deviceIDs)
		for _, id := range deviceIDs {
			content := byDevice[id]
			if id != "*" {
				ok, err := tx.Has(core.DeviceKey(userID, id))
				if err != nil {
					return nil, err
				}
				if ok {
					out = append(out, delivery{userID, id, content})
				}
				continue
			}
			err := tx.Each(kv.Scan{Prefix: core.DevicePrefix(userID), KeysOnly: true}, func(k, _ []byte) (bool, error) {
				dev, err := kv.LastString(k)
				out = append(out, delivery{userID, dev, content})
				return err == nil, err
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// growInbox adds added to a device's inbox count and, past maxInbox, drops
// the oldest messages.
func (n *E2EE) growInbox(tx *kv.Txn, userID, deviceID string, added int) error {
	count, err := inboxCount(tx, userID, deviceID)
	if err != nil {
		return err
	}
	count += uint64(added)
	if count > maxInbox {
		drop := count - maxInbox
		dropped, err := tx.DeleteFirst(kv.Scan{Prefix: toDevicePrefix(userID, deviceID)}, int(drop))
		if err != nil {
			return err
		}
		count -= uint64(dropped)
		n.Logger().Warn("to-device: inbox full, dropped oldest messages", "user", userID, "device", deviceID, "dropped", dropped)
	}
	return tx.Set(toDeviceCountKey(userID, deviceID), binary.BigEndian.AppendUint64(nil, count))
}

// inboxCount is how many messages a device's inbox holds.
func inboxCount(tx *kv.Txn, userID, deviceID string) (uint64, error) {
	b, err := tx.Get(toDeviceCountKey(userID, deviceID))
	if errors.Is(err, kv.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("to-device: bad inbox count for %s/%s", userID, deviceID)
	}
	return binary.BigEndian.Uint64(b), nil
}

// toDeviceTxnSeen reports whether a sending device already used txnID.
func toDeviceTxnSeen(tx *kv.Txn, sender, deviceID, txnID string) (bool, error) {
	if txnID == "" {
		return false, nil
	}
	ids, err := recentToDeviceTxns(tx, sender, deviceID)
	return slices.Contains(ids, txnID), err
}

// rememberToDeviceTxn adds txnID to the sending device's recent IDs,
// forgetting the oldest past maxToDeviceTxnIDs.
func rememberToDeviceTxn(tx *kv.Txn, sender, deviceID, txnID string) error {
	if txnID == "" {
		return nil
	}
	ids, err := recentToDeviceTxns(tx, sender, deviceID)
	if err != nil {
		return err
	}
	ids = append(ids, txnID)
	if len(ids) > maxToDeviceTxnIDs {
		ids = ids[len(ids)-maxToDeviceTxnIDs:]
	}
	return tx.SetJSON(toDeviceTxnKey(sender, deviceID), ids)
}

func recentToDeviceTxns(tx *kv.Txn, sender, deviceID string) ([]string, error) {
	var ids []string
	err := tx.GetJSON(toDeviceTxnKey(sender, deviceID), &ids)
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil
	}
	return ids, err
}

// ToDeviceSince returns the messages in a device's inbox at positions after
// from, oldest first, at most limit of them (DefaultToDeviceLimit when limit
// is not positive), and upTo, the position of the last one returned (from
// when none is). Nothing is deleted: see AckToDevice.
func (n *E2EE) ToDeviceSince(ctx context.Context, userID, deviceID string, from uint64, limit int) ([]ToDeviceEvent, uint64, error) {
	if limit <= 0 {
		limit = DefaultToDeviceLimit
	}
	events := []ToDeviceEvent{}
	upTo := from
	err := n.DB.View(func(tx *kv.Txn) error {
		scan := kv.Scan{Prefix: toDevicePrefix(userID, deviceID), From: toDeviceKey(userID, deviceID, from+1)}
		return tx.Each(scan, func(k, v []byte) (bool, error) {
			pos, err := kv.LastUint(k)
			if err != nil {
				return false, err
			}
			var ev ToDeviceEvent
			if err := core.DecodeJSON(v, &ev); err != nil {
				return false, err
			}
			events = append(events, ev)
			upTo = pos
			return len(events) < limit, nil
		})
	})
	if err != nil {
		return nil, from, err
	}
	return events, upTo, nil
}

// AckToDevice deletes the messages in a device's inbox at positions up to
// and including upTo: the device has seen them, as its since token shows.
func (n *E2EE) AckToDevice(ctx context.Context, userID, deviceID string, upTo uint64) error {
	for {
		more := false
		err := RetryConflicts(ctx, func() error {
			more = false
			return n.DB.Update(func(tx *kv.Txn) error {
				deleted, m, err := tx.DeleteUpTo(kv.Scan{Prefix: toDevicePrefix(userID, deviceID)}, upTo, ackBatch)
				more = m
				if err != nil || deleted == 0 {
					return err
				}
				count, err := inboxCount(tx, userID, deviceID)
				if err != nil {
					return err
				}
				if count <= uint64(deleted) {
					return tx.Delete(toDeviceCountKey(userID, deviceID))
				}
				return tx.Set(toDeviceCountKey(userID, deviceID), binary.BigEndian.AppendUint64(nil, count-uint64(deleted)))
			})
		})
		if err != nil || !more {
			return err
		}
	}
}
