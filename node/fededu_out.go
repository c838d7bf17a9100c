package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/e2ee"
)

// Outbound EDUs: what local changes tell other servers (eduqueue.go queues
// them).

// EDU types.
const (
	EDUTyping           = "m.typing"
	EDUReceipt          = "m.receipt"
	EDUPresence         = "m.presence"
	EDUDirectToDevice   = "m.direct_to_device"
	EDUDeviceListUpdate = "m.device_list_update"
)

const (
	// RemoteTypingTimeout is how long a remote user's typing notice lasts
	// unless renewed: its server says when the user stops, but may vanish
	// before it does.
	RemoteTypingTimeout = 30 * time.Second
	// typingResend is how often a local user who keeps typing is announced
	// again, so remote servers' RemoteTypingTimeout does not run out.
	typingResend = 20 * time.Second
	// maxToDeviceEDUBytes is roughly the most message content one
	// m.direct_to_device EDU carries; larger sends are split into several
	// EDUs (each with its own message ID), so every EDU fits a transaction.
	maxToDeviceEDUBytes = 256 << 10
)

// typingEDU is m.typing content.
type typingEDU struct {
	RoomID string `json:"room_id"`
	UserID string `json:"user_id"`
	Typing bool   `json:"typing"`
}

// federateTyping queues an m.typing EDU for the room's other servers when
// a local user starts or stops typing (changed), or keeps typing past
// typingResend since the last notice.
func (n *Node) federateTyping(ctx context.Context, userID, roomID string, typing, changed bool) {
	if !n.IsLocalUser(userID) {
		return
	}
	key := typingKey{roomID, userID}
	now := n.Now()
	n.edu.typingMu.Lock()
	if n.edu.typingSent == nil {
		n.edu.typingSent = map[typingKey]time.Time{}
	}
	last, sent := n.edu.typingSent[key]
	send := changed || (typing && (!sent || now.Sub(last) >= typingResend))
	if send && typing {
		n.edu.typingSent[key] = now
	} else if send {
		delete(n.edu.typingSent, key)
	}
	n.edu.typingMu.Unlock()
	if !send {
		return
	}
	dests, err := n.JoinedServers(ctx, roomID)
	if err != nil {
		n.Logger().Warn("typing notice not federated", "room_id", roomID, "err", err)
		return
	}
	content, _ := json.Marshal(typingEDU{RoomID: roomID, UserID: userID, Typing: typing})
	n.queueEphemeral(ctx, dests, queuedEDU{Type: EDUTyping, Content: content, Key: "typing\x00" + roomID + "\x00" + userID})
}

// receiptEDUUser is one user's receipt in m.receipt content.
type receiptEDUUser struct {
	EventIDs []string `json:"event_ids"`
	Data     struct {
		TS       int64  `json:"ts"`
		ThreadID string `json:"thread_id,omitempty"`
	} `json:"data"`
}

// federateReceipt queues an m.receipt EDU with a local user's public read
// receipt for the room's other servers.
func (n *Node) federateReceipt(ctx context.Context, userID, roomID, threadID, eventID string) {
	if !n.IsLocalUser(userID) {
		return
	}
	dests, err := n.JoinedServers(ctx, roomID)
	if err != nil {
		n.Logger().Warn("receipt not federated", "room_id", roomID, "err", err)
		return
	}
	u := receiptEDUUser{EventIDs: []string{eventID}}
	u.Data.TS, u.Data.ThreadID = n.Now().UnixMilli(), threadID
	content, _ := json.Marshal(map[string]map[string]map[string]receiptEDUUser{roomID: {ReceiptRead: {userID: u}}})
	n.queueEphemeral(ctx, dests, queuedEDU{Type: EDUReceipt, Content: content,
		Key: "receipt\x00" + roomID + "\x00" + userID + "\x00" + threadID})
}

// presenceEDUUser is one entry of m.presence content's push list.
type presenceEDUUser struct {
	UserID          string  `json:"user_id"`
	Presence        string  `json:"presence"`
	StatusMsg       *string `json:"status_msg,omitempty"`
	LastActiveAgo   int64   `json:"last_active_ago"`
	CurrentlyActive bool    `json:"currently_active,omitempty"`
}

// federatePresence queues an m.presence EDU with a local user's presence
// for every server sharing a room with them.
func (n *Node) federatePresence(ctx context.Context, userID string) {
	if !n.IsLocalUser(userID) {
		return
	}
	ps, err := n.Presence(ctx, userID)
	if err != nil {
		n.Logger().Warn("presence not federated", "user", userID, "err", err)
		return
	}
	var dests []string
	err = n.DB.View(func(tx *kv.Txn) error {
		dests, err = serversSharingRooms(tx, userID)
		return err
	})
	if err != nil {
		n.Logger().Warn("presence not federated", "user", userID, "err", err)
		return
	}
	content, _ := json.Marshal(map[string][]presenceEDUUser{"push": {{
		UserID: userID, Presence: ps.Presence, StatusMsg: ps.StatusMsg,
		LastActiveAgo: ps.LastActiveAgo, CurrentlyActive: ps.CurrentlyActive,
	}}})
	n.queueEphemeral(ctx, dests, queuedEDU{Type: EDUPresence, Content: content, Key: "presence\x00" + userID})
}

// roomsScannedOneByOne: serversSharingRooms scans the room-servers table
// room by room for a user in at most this many rooms, and whole beyond.
const roomsScannedOneByOne = 64

// serversSharingRooms lists the other servers with a member joined to a
// room userID is joined to, sorted.
func serversSharingRooms(tx *kv.Txn, userID string) ([]string, error) {
	self := core.ServerOf(userID)
	seen := map[string]bool{}
	var rooms []string
	err := core.EachJoinedRoom(tx, userID, func(roomID string) (bool, error) {
		rooms = append(rooms, roomID)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	note := func(k []byte) error {
		s, err := kv.LastString(k)
		if err == nil && s != self {
			seen[s] = true
		}
		return err
	}
	if len(rooms) <= roomsScannedOneByOne {
		for _, roomID := range rooms {
			err := tx.Each(kv.Scan{Prefix: core.RoomServerPrefix(roomID), KeysOnly: true}, func(k, _ []byte) (bool, error) {
				err := note(k)
				return err == nil, err
			})
			if err != nil {
				return nil, err
			}
		}
	} else {
		// One scan of the whole table: an iterator per room cost 60-100
		// ms for a user in 1,000 rooms at every presence change (issue 14).
		joined := make(map[string]bool, len(rooms))
		for _, r := range rooms {
			joined[r] = true
		}
		err = tx.Each(kv.Scan{Prefix: kv.Key(core.TableRoomServers), KeysOnly: true}, func(k, _ []byte) (bool, error) {
			_, parts, err := kv.DecodeKey(k)
			if err != nil {
				return false, err
			}
			if len(parts) != 2 {
				return false, fmt.Errorf("room servers key of %d parts", len(parts))
			}
			if room, _ := parts[0].(string); joined[room] {
				err = note(k)
			}
			return err == nil, err
		})
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	slices.Sort(out)
	return out, err
}

// remoteMessages is to-device messages for one server's users: user ID ->
// device ID (or "*") -> content.
type remoteMessages map[string]map[string]json.RawMessage

// splitRemote takes the messages for other servers' users out of a
// to-device send, grouped by server, and counts them.
func (n *Node) splitRemote(messages map[string]map[string]json.RawMessage) (map[string]remoteMessages, int) {
	out := map[string]remoteMessages{}
	count := 0
	for userID, byDevice := range messages {
		if n.IsLocalUser(userID) || len(byDevice) == 0 {
			continue
		}
		s := core.ServerOf(userID)
		if out[s] == nil {
			out[s] = remoteMessages{}
		}
		out[s][userID] = byDevice
		count += len(byDevice)
	}
	return out, count
}

// directToDeviceEDU is m.direct_to_device content.
type directToDeviceEDU struct {
	Sender    string         `json:"sender"`
	Type      string         `json:"type"`
	MessageID string         `json:"message_id"`
	Messages  remoteMessages `json:"messages"`
}

// queueToDevice queues, in the transaction that accepts a to-device send,
// one m.direct_to_device EDU per destination server (more if the messages
// are large). A destination whose queue is full refuses the whole send. It
// returns the destinations.
func (n *Node) queueToDevice(tx *kv.Txn, sender, evType string, remote map[string]remoteMessages) ([]string, error) {
	dests := make([]string, 0, len(remote))
	for d := range remote {
		dests = append(dests, d)
	}
	slices.Sort(dests)
	for _, dest := range dests {
		chunks := chunkMessages(remote[dest])
		if err := n.checkReliableRoom(tx, dest, len(chunks)); err != nil {
			return nil, err
		}
		for _, c := range chunks {
			content, err := json.Marshal(directToDeviceEDU{Sender: sender, Type: evType, MessageID: core.RandomString(16), Messages: c})
			if err != nil {
				return nil, err
			}
			if err := n.enqueueEDU(tx, dest, eduReliable, queuedEDU{Type: EDUDirectToDevice, Content: content}); err != nil {
				return nil, err
			}
		}
	}
	return dests, nil
}

// chunkMessages splits one server's messages into groups of about
// maxToDeviceEDUBytes, in a stable order.
func chunkMessages(m remoteMessages) []remoteMessages {
	users := make([]string, 0, len(m))
	for u := range m {
		users = append(users, u)
	}
	sort.Strings(users)
	var out []remoteMessages
	cur, size := remoteMessages{}, 0
	for _, u := range users {
		devices := make([]string, 0, len(m[u]))
		for d := range m[u] {
			devices = append(devices, d)
		}
		sort.Strings(devices)
		for _, d := range devices {
			c := m[u][d]
			if size > 0 && size+len(c) > maxToDeviceEDUBytes {
				out = append(out, cur)
				cur, size = remoteMessages{}, 0
			}
			if cur[u] == nil {
				cur[u] = map[string]json.RawMessage{}
			}
			cur[u][d] = c
			size += len(c) + len(u) + len(d) + 8
		}
	}
	if size > 0 {
		out = append(out, cur)
	}
	return out
}

// deviceAnnouncement is what other servers were last told of a local
// user's devices.
type deviceAnnouncement struct {
	// Prev is the stream ID of the last update sent (prev_id of the next).
	Prev uint64 `json:"p,omitempty"`
	// Devices maps each device ID to a hash of its display name and keys.
	Devices map[string]string `json:"d,omitempty"`
}

// deviceListUpdateEDU is m.device_list_update content.
type deviceListUpdateEDU struct {
	UserID      string          `json:"user_id"`
	DeviceID    string          `json:"device_id"`
	DisplayName string          `json:"device_display_name,omitempty"`
	StreamID    uint64          `json:"stream_id"`
	PrevID      []uint64        `json:"prev_id,omitempty"`
	Deleted     bool            `json:"deleted,omitempty"`
	Keys        json.RawMessage `json:"keys,omitempty"`
}

// queueDeviceListUpdate runs in the transaction that records a device-list
// change of a local user at position pos: it compares the user's devices
// with what was last announced and queues an m.device_list_update per new,
// changed or deleted device (every device, when none differs: a change of
// signatures or cross-signing keys) for every server sharing a room with
// the user. stream_id is pos, prev_id the previous update's. Entries are
// coalesced per (user, device): a receiver that misses an update sees an
// unknown prev_id and fetches the list afresh, as the spec has it.
func (n *Node) queueDeviceListUpdate(tx *kv.Txn, userID string, pos uint64) ([]string, error) {
	var ann deviceAnnouncement
	if err := tx.GetJSON(eduDevicesKey(userID), &ann); err != nil && !errors.Is(err, kv.ErrNotFound) {
		return nil, err
	}
	type device struct {
		id, name string
		keys     json.RawMessage
	}
	var devices []device
	now := map[string]string{}
	err := tx.Each(kv.Scan{Prefix: core.DevicePrefix(userID)}, func(k, v []byte) (bool, error) {
		id, err := kv.LastString(k)
		if err != nil {
			return false, err
		}
		var rec deviceRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return false, err
		}
		keys, err := tx.Get(e2ee.DeviceKeysKey(userID, id))
		if err != nil && !errors.Is(err, kv.ErrNotFound) {
			return false, err
		}
		sum := sha256.Sum256(append([]byte(rec.DisplayName+"\x00"), keys...))
		now[id] = hex.EncodeToString(sum[:12])
		devices = append(devices, device{id, rec.DisplayName, keys})
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	var updates []deviceListUpdateEDU
	base := deviceListUpdateEDU{UserID: userID, StreamID: pos}
	if ann.Prev != 0 {
		base.PrevID = []uint64{ann.Prev}
	}
	for _, d := range devices {
		if ann.Devices[d.id] != now[d.id] {
			u := base
			u.DeviceID, u.DisplayName, u.Keys = d.id, d.name, d.keys
			updates = append(updates, u)
		}
	}
	gone := make([]string, 0)
	for id := range ann.Devices {
		if _, ok := now[id]; !ok {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	for _, id := range gone {
		u := base
		u.DeviceID, u.Deleted = id, true
		updates = append(updates, u)
	}
	if len(updates) == 0 {
		for _, d := range devices {
			u := base
			u.DeviceID, u.DisplayName, u.Keys = d.id, d.name, d.keys
			updates = append(updates, u)
		}
	}
	if err := tx.SetJSON(eduDevicesKey(userID), deviceAnnouncement{Prev: pos, Devices: now}); err != nil {
		return nil, err
	}
	dests, err := serversSharingRooms(tx, userID)
	if err != nil || len(updates) == 0 {
		return nil, err
	}
	for _, dest := range dests {
		for _, u := range updates {
			content, err := json.Marshal(u)
			if err != nil {
				return nil, err
			}
			e := queuedEDU{Type: EDUDeviceListUpdate, Content: content, Key: "device\x00" + userID + "\x00" + u.DeviceID}
			if err := n.enqueueEDU(tx, dest, eduReliable, e); err != nil {
				return nil, err
			}
		}
	}
	return dests, nil
}
