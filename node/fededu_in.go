package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/edgenode/edgenode/internal/jsontext"
	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/e2ee"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Inbound EDUs: what other servers tell of their users. Every entry point
// takes the authenticated origin and refuses (ErrForbidden) a user of any
// other server, and drops (ErrNotFound, ErrNotJoined) what concerns no room
// or user this node shares with the origin: a server may only speak for its
// own users, and only to servers that share rooms with them. Such errors
// are the EDU's, never the transaction's; other errors are the node's own.

// maxSeenMessageIDs is how many to-device message IDs are remembered per
// origin. A server resends an EDU only in a retried transaction, soon after
// the first attempt; 1000 covers ten full transactions.
const maxSeenMessageIDs = 1000

// maxMessageIDLen bounds a to-device message ID (the spec says 32
// codepoints; this allows for multi-byte ones).
const maxMessageIDLen = 128

// IsEDUDrop reports whether an error from a Receive* call means the EDU was
// refused or concerned nothing here (to drop and log), rather than that the
// node failed.
func IsEDUDrop(err error) bool {
	for _, e := range []error{core.ErrForbidden, core.ErrNotFound, core.ErrNotJoined, core.ErrInvalidParam, core.ErrBadInput, core.ErrTooLarge} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// checkOrigin refuses a user ID that is not valid or not of origin.
func checkOrigin(origin, userID string) error {
	if _, err := spec.NewUserID(userID, true); err != nil {
		return fmt.Errorf("%w: user ID %q", core.ErrInvalidParam, userID)
	}
	if core.ServerOf(userID) != origin {
		return fmt.Errorf("%w: %s is not a user of %s", core.ErrForbidden, userID, origin)
	}
	return nil
}

// hasLocalMembers fails with ErrNotFound unless a local user is joined to
// roomID.
func (n *Node) hasLocalMembers(roomID string) error {
	members, err := n.localJoinedMembers(roomID)
	if err != nil {
		return err
	}
	if len(members) == 0 {
		return fmt.Errorf("%w: no local member in room %s", core.ErrNotFound, roomID)
	}
	return nil
}

// sharesRoomWithLocal fails with ErrNotFound unless userID is joined to a
// room a local user is joined to.
func sharesRoomWithLocal(tx *kv.Txn, userID string) error {
	found := false
	err := core.EachJoinedRoom(tx, userID, func(roomID string) (bool, error) {
		err := localJoinedIn(tx, roomID, func(string) { found = true })
		return !found && err == nil, err
	})
	if err == nil && !found {
		err = fmt.Errorf("%w: %s shares no room with a local user", core.ErrNotFound, userID)
	}
	return err
}

// ReceiveTyping applies an m.typing EDU: a remote user joined to a room
// that has a local member starts (for RemoteTypingTimeout, unless renewed)
// or stops typing.
func (n *Node) ReceiveTyping(ctx context.Context, origin, roomID, userID string, typing bool) error {
	if err := checkOrigin(origin, userID); err != nil {
		return err
	}
	if err := n.hasLocalMembers(roomID); err != nil {
		return err
	}
	return n.SetTyping(ctx, userID, roomID, typing, RemoteTypingTimeout)
}

// RemoteReceipt is one user's read receipt from an m.receipt EDU.
type RemoteReceipt struct {
	RoomID, UserID, EventID string
	// ThreadID is "" (unthreaded), "main" or a thread root's event ID.
	ThreadID string
}

// ReceiveReceipt applies one receipt of an m.receipt EDU: a remote user
// joined to a room that has a local member has read up to an event this
// node has. Like local receipts it never moves backwards.
func (n *Node) ReceiveReceipt(ctx context.Context, origin string, r RemoteReceipt) error {
	if err := checkOrigin(origin, r.UserID); err != nil {
		return err
	}
	if r.ThreadID != "" && r.ThreadID != ThreadMain && !isEventID(r.ThreadID) {
		return fmt.Errorf("%w: thread_id %q", core.ErrInvalidParam, r.ThreadID)
	}
	if err := n.hasLocalMembers(r.RoomID); err != nil {
		return err
	}
	m, err := n.Membership(ctx, r.RoomID, r.UserID)
	if err != nil {
		return err
	}
	if m.Membership != spec.Join {
		return fmt.Errorf("%w: %s in %s", core.ErrNotJoined, r.UserID, r.RoomID)
	}
	var ev *core.Event
	err = n.DB.View(func(tx *kv.Txn) error {
		var err error
		ev, _, err = n.LoadEvent(tx, r.EventID)
		return err
	})
	if err != nil {
		return err
	}
	if ev.PDU.RoomID().String() != r.RoomID {
		return fmt.Errorf("event %s in room %s: %w", r.EventID, r.RoomID, core.ErrNotFound)
	}
	return n.writeReceipt(ctx, r.UserID, r.RoomID, ReceiptRead, r.ThreadID, ev)
}

// RemotePresence is one user's presence from an m.presence EDU.
type RemotePresence struct {
	UserID, Presence string
	StatusMsg        *string
	LastActiveAgo    int64
}

// ReceivePresence applies one entry of an m.presence EDU for a remote user
// who shares a room with a local user. Only a change of presence or status
// message wakes anyone.
func (n *Node) ReceivePresence(ctx context.Context, origin string, p RemotePresence) error {
	if err := checkOrigin(origin, p.UserID); err != nil {
		return err
	}
	switch p.Presence {
	case PresenceOnline, PresenceOffline, PresenceUnavailable:
	default:
		return fmt.Errorf("%w: presence %q", core.ErrInvalidParam, p.Presence)
	}
	if p.StatusMsg != nil && len(*p.StatusMsg) > maxStatusMsgBytes {
		return fmt.Errorf("%w: status_msg over %d bytes", core.ErrInvalidParam, maxStatusMsgBytes)
	}
	if p.StatusMsg != nil && *p.StatusMsg == "" {
		p.StatusMsg = nil
	}
	if err := n.DB.View(func(tx *kv.Txn) error { return sharesRoomWithLocal(tx, p.UserID) }); err != nil {
		return err
	}
	visible := false
	var rec presenceRecord
	_, err := n.presence.Commit(1, func(tx *kv.Txn, pos uint64) error {
		key := presenceKey(p.UserID)
		var old presenceRecord
		if err := tx.GetJSON(key, &old); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		// FedTS: the presence stands for federationTimeout from now
		// (presence_decay.go), so a server that goes quiet leaves nobody
		// online for ever.
		now := n.Now().UnixMilli()
		rec = presenceRecord{Presence: p.Presence, StatusMsg: p.StatusMsg, Pos: old.Pos, FedTS: now}
		if p.LastActiveAgo >= 0 {
			rec.LastActiveTS = now - p.LastActiveAgo
		}
		if old.Pos != 0 && rec.Presence == old.Presence && equalStringPtr(rec.StatusMsg, old.StatusMsg) {
			return tx.SetJSON(key, rec) // fresher times only: no position, no wake-up
		}
		if old.Pos != 0 {
			if err := tx.Delete(presenceStreamKey(old.Pos)); err != nil {
				return err
			}
		}
		rec.Pos, visible = pos, true
		if err := tx.Set(presenceStreamKey(pos), []byte(p.UserID)); err != nil {
			return err
		}
		return tx.SetJSON(key, rec)
	})
	if err != nil {
		return err
	}
	n.schedulePresence(p.UserID, rec)
	if !visible {
		return nil
	}
	wake, err := n.roomMatesOf(p.UserID)
	if err != nil {
		return err
	}
	n.Notifier.Wake(wake...)
	return nil
}

// RemoteToDevice is an m.direct_to_device EDU.
type RemoteToDevice struct {
	Sender, Type, MessageID string
	// Messages maps user ID -> device ID (or "*") -> content.
	Messages map[string]map[string]json.RawMessage
}

// ReceiveToDevice delivers an m.direct_to_device EDU to the inboxes of the
// local users' devices it names (device "*": all of them), once per
// message ID and origin: a resent EDU is acknowledged without delivering
// again. Messages for other servers' users are ignored.
func (n *Node) ReceiveToDevice(ctx context.Context, origin string, m RemoteToDevice) error {
	if err := checkOrigin(origin, m.Sender); err != nil {
		return err
	}
	if m.Type == "" || m.MessageID == "" || len(m.MessageID) > maxMessageIDLen {
		return fmt.Errorf("%w: to-device EDU needs a type and a message_id of at most %d bytes", core.ErrInvalidParam, maxMessageIDLen)
	}
	var users []string
	for userID, byDevice := range m.Messages {
		if !n.IsLocalUser(userID) {
			continue
		}
		for deviceID, content := range byDevice {
			if !jsontext.IsObject(content) {
				return fmt.Errorf("%w: content for %s/%s is not an object", core.ErrBadInput, userID, deviceID)
			}
		}
		users = append(users, userID)
	}
	sort.Strings(users)
	recipients, _, err := n.DeliverToDevice(ctx, e2ee.ToDeviceSend{
		Sender: m.Sender, EvType: m.Type, Users: users, Messages: m.Messages, What: "EDU",
		Seen: func(tx *kv.Txn) (bool, error) { return messageIDSeen(tx, origin, m.MessageID) },
		Remember: func(tx *kv.Txn) ([]string, error) {
			return nil, rememberMessageID(tx, origin, m.MessageID)
		},
	})
	if errors.Is(err, kv.ErrTxnTooBig) {
		return fmt.Errorf("%w: to-device EDU too large", core.ErrTooLarge)
	}
	if err != nil {
		return err
	}
	n.Notifier.Wake(recipients...)
	return nil
}

func messageIDSeen(tx *kv.Txn, origin, id string) (bool, error) {
	var ids []string
	err := tx.GetJSON(eduSeenMsgKey(origin), &ids)
	if errors.Is(err, kv.ErrNotFound) {
		return false, nil
	}
	return slices.Contains(ids, id), err
}

func rememberMessageID(tx *kv.Txn, origin, id string) error {
	var ids []string
	if err := tx.GetJSON(eduSeenMsgKey(origin), &ids); err != nil && !errors.Is(err, kv.ErrNotFound) {
		return err
	}
	ids = append(ids, id)
	if len(ids) > maxSeenMessageIDs {
		ids = ids[len(ids)-maxSeenMessageIDs:]
	}
	return tx.SetJSON(eduSeenMsgKey(origin), ids)
}

// ReceiveDeviceListUpdate applies an m.device_list_update EDU: the remote
// user's devices changed, which local users sharing a room with them see
// in device_lists.changed (and then query the keys afresh). Which device
// changed, and how, is not kept: the keys are fetched on demand.
func (n *Node) ReceiveDeviceListUpdate(ctx context.Context, origin, userID string) error {
	if err := checkOrigin(origin, userID); err != nil {
		return err
	}
	return n.ChangeDeviceLists(ctx, 1, func(tx *kv.Txn) ([]string, error) {
		if err := sharesRoomWithLocal(tx, userID); err != nil {
			return nil, err
		}
		return []string{userID}, nil
	})
}
