package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/node"
)

// Inbound EDUs of PUT /send. Each EDU is parsed and applied on its own and
// hostile by default: one that is malformed, speaks for a user of another
// server than the authenticated origin, or concerns no room or user shared
// with this node is dropped and logged at debug level, while the rest of
// the transaction applies. Only the node failing to store a to-device
// message or a device-list change (which must not be lost) fails the
// transaction, so that the origin retries it; to-device messages are
// deduplicated by message ID, so the retry delivers nothing twice.

// errMalformedEDU marks an EDU whose content does not parse.
var errMalformedEDU = errors.New("malformed EDU")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformedEDU, fmt.Sprintf(format, args...))
}

// edu is an EDU as a transaction carries it.
type edu struct {
	Type    string          `json:"edu_type"`
	Content json.RawMessage `json:"content"`
}

// applyEDUs applies a transaction's EDUs from origin; applied reports
// whether any was (a dropped or ignored one changes nothing).
func (h *handler) applyEDUs(ctx context.Context, origin, txnID string, raw []json.RawMessage) (applied bool, err error) {
	deviceUsers := map[string]bool{} // one device-list change per user and transaction is enough
	for i, r := range raw {
		var e edu
		if err := json.Unmarshal(r, &e); err != nil || e.Type == "" || !isObject(e.Content) {
			h.log.Debug("dropped malformed EDU", "origin", origin, "txn_id", txnID, "index", i)
			continue
		}
		var err error
		reliable := false
		switch e.Type {
		case node.EDUTyping:
			err = h.typingEDU(ctx, origin, e.Content)
		case node.EDUReceipt:
			err = h.receiptEDU(ctx, origin, txnID, e.Content)
		case node.EDUPresence:
			err = h.presenceEDU(ctx, origin, txnID, e.Content)
		case node.EDUDirectToDevice:
			reliable = true
			err = h.toDeviceEDU(ctx, origin, e.Content)
		case node.EDUDeviceListUpdate:
			reliable = true
			err = h.deviceListEDU(ctx, origin, e.Content, deviceUsers)
		default:
			h.log.Debug("ignored EDU of unsupported type", "origin", origin, "txn_id", txnID, "edu_type", e.Type)
			continue
		}
		switch {
		case err == nil:
			applied = true
		case errors.Is(err, errMalformedEDU) || node.IsEDUDrop(err):
			h.log.Debug("dropped EDU", "origin", origin, "txn_id", txnID, "index", i, "edu_type", e.Type, "error", err)
		case reliable:
			return applied, fmt.Errorf("%s EDU: %w", e.Type, err)
		default:
			h.log.Warn("inbound EDU not applied", "origin", origin, "edu_type", e.Type, "error", err)
		}
	}
	return applied, nil
}

func isObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil && m != nil
}

// typingEDU applies m.typing.
func (h *handler) typingEDU(ctx context.Context, origin string, content json.RawMessage) error {
	var c struct {
		RoomID string `json:"room_id"`
		UserID string `json:"user_id"`
		Typing *bool  `json:"typing"`
	}
	if err := json.Unmarshal(content, &c); err != nil || c.RoomID == "" || c.UserID == "" || c.Typing == nil {
		return malformed("m.typing needs room_id, user_id and typing")
	}
	return h.n.ReceiveTyping(ctx, origin, c.RoomID, c.UserID, *c.Typing)
}

// receiptEDU applies m.receipt: each receipt on its own, so one bad entry
// drops only itself.
func (h *handler) receiptEDU(ctx context.Context, origin, txnID string, content json.RawMessage) error {
	var rooms map[string]map[string]json.RawMessage
	if err := json.Unmarshal(content, &rooms); err != nil {
		return malformed("m.receipt: %v", err)
	}
	for roomID, byType := range rooms {
		var users map[string]struct {
			EventIDs []string `json:"event_ids"`
			Data     struct {
				ThreadID string `json:"thread_id"`
			} `json:"data"`
		}
		read, ok := byType[node.ReceiptRead]
		if !ok || json.Unmarshal(read, &users) != nil {
			h.log.Debug("dropped receipts of a room", "origin", origin, "txn_id", txnID, "room_id", roomID)
			continue
		}
		for userID, u := range users {
			if len(u.EventIDs) == 0 {
				continue
			}
			err := h.n.ReceiveReceipt(ctx, origin, node.RemoteReceipt{
				RoomID: roomID, UserID: userID, EventID: u.EventIDs[0], ThreadID: u.Data.ThreadID})
			if err != nil {
				h.log.Debug("dropped receipt", "origin", origin, "txn_id", txnID, "room_id", roomID, "user", userID, "error", err)
			}
		}
	}
	return nil
}

// presenceEDU applies m.presence, entry by entry.
func (h *handler) presenceEDU(ctx context.Context, origin, txnID string, content json.RawMessage) error {
	var c struct {
		Push []json.RawMessage `json:"push"`
	}
	if err := json.Unmarshal(content, &c); err != nil {
		return malformed("m.presence: %v", err)
	}
	for _, raw := range c.Push {
		var p struct {
			UserID        string  `json:"user_id"`
			Presence      string  `json:"presence"`
			StatusMsg     *string `json:"status_msg"`
			LastActiveAgo *int64  `json:"last_active_ago"`
		}
		err := json.Unmarshal(raw, &p)
		if err == nil {
			ago := int64(-1)
			if p.LastActiveAgo != nil {
				ago = *p.LastActiveAgo
			}
			err = h.n.ReceivePresence(ctx, origin, node.RemotePresence{UserID: p.UserID, Presence: p.Presence, StatusMsg: p.StatusMsg, LastActiveAgo: ago})
		}
		if err != nil {
			h.log.Debug("dropped presence", "origin", origin, "txn_id", txnID, "user", p.UserID, "error", err)
		}
	}
	return nil
}

// toDeviceEDU applies m.direct_to_device.
func (h *handler) toDeviceEDU(ctx context.Context, origin string, content json.RawMessage) error {
	var c struct {
		Sender    string                                `json:"sender"`
		Type      string                                `json:"type"`
		MessageID string                                `json:"message_id"`
		Messages  map[string]map[string]json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(content, &c); err != nil || c.Sender == "" || c.Type == "" || c.MessageID == "" {
		return malformed("m.direct_to_device needs sender, type, message_id and messages")
	}
	return h.n.ReceiveToDevice(ctx, origin, node.RemoteToDevice{Sender: c.Sender, Type: c.Type, MessageID: c.MessageID, Messages: c.Messages})
}

// deviceListEDU applies m.device_list_update (once per user and
// transaction).
func (h *handler) deviceListEDU(ctx context.Context, origin string, content json.RawMessage, seen map[string]bool) error {
	var c struct {
		UserID   string  `json:"user_id"`
		DeviceID string  `json:"device_id"`
		StreamID *uint64 `json:"stream_id"`
	}
	if err := json.Unmarshal(content, &c); err != nil || c.UserID == "" || c.DeviceID == "" || c.StreamID == nil {
		return malformed("m.device_list_update needs user_id, device_id and stream_id")
	}
	if seen[c.UserID] {
		return nil
	}
	if err := h.n.ReceiveDeviceListUpdate(ctx, origin, c.UserID); err != nil {
		return err
	}
	seen[c.UserID] = true
	return nil
}
