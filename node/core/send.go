package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// SendRequest is a local user's new event.
type SendRequest struct {
	Sender   string
	DeviceID string
	RoomID   string
	Type     string
	// StateKey is nil for a message event.
	StateKey *string
	Content  json.RawMessage
	// TxnID makes the send idempotent per device and TxnScope: a repeat
	// returns the first event's ID and stores nothing.
	TxnID string
	// TxnScope is the endpoint and path TxnID came with; left empty, it is
	// /send's: SendTxn(RoomID, Type).
	TxnScope TxnScope
	// Redacts names the event a redaction redacts.
	Redacts string
	// StickyDurationMS, when set, makes the event sticky (MSC4354) for that
	// long: 0..MaxStickyDurationMS (see ParseStickyDuration).
	StickyDurationMS *int64
}

// SendEvent builds, signs, authorises and stores a local user's event and
// returns its event ID. Auth failures are ErrForbidden.
func (n *Node) SendEvent(ctx context.Context, req SendRequest) (string, error) {
	if req.TxnScope.Endpoint == "" {
		req.TxnScope = SendTxn(req.RoomID, req.Type)
	}
	if req.TxnID != "" {
		if id, err := n.TxnEvent(req.Sender, req.DeviceID, req.TxnScope, req.TxnID); err == nil {
			return id, nil
		} else if !errors.Is(err, kv.ErrNotFound) {
			return "", err
		}
	}
	if _, err := spec.NewRoomID(req.RoomID); err != nil {
		return "", fmt.Errorf("%w: room ID %q", ErrInvalidParam, req.RoomID)
	}
	var eventID string
	_, err := n.WithRoom(ctx, req.RoomID, func(b *Batch) error {
		if b.Room == nil {
			return fmt.Errorf("room %s: %w", req.RoomID, ErrNotFound)
		}
		if req.TxnID != "" { // a concurrent retry may have won the lock first
			if ok, err := b.Tx.Has(txnKey(req.Sender, req.DeviceID, req.TxnScope, req.TxnID)); err != nil || ok {
				if ok {
					id, err := n.TxnEvent(req.Sender, req.DeviceID, req.TxnScope, req.TxnID)
					eventID = id
					return err
				}
				return err
			}
		}
		id, err := b.BuildAndInput(req)
		eventID = id
		return err
	})
	if err != nil {
		return "", err
	}
	return eventID, nil
}

// BuildAndInput builds a local event on the batch's view and inputs it. A
// local event that would be rejected or soft-failed is refused, not stored.
func (b *Batch) BuildAndInput(req SendRequest) (string, error) {
	content := req.Content
	if len(content) == 0 {
		content = json.RawMessage("{}")
	}
	proto := gomatrixserverlib.ProtoEvent{
		SenderID: req.Sender,
		Type:     req.Type,
		StateKey: req.StateKey,
		Content:  spec.RawJSON(content),
		Redacts:  req.Redacts,
	}
	if b.Room != nil && req.Type == spec.MRoomRedaction && b.Room.Version == gomatrixserverlib.RoomVersionV11 {
		// Room version 11 moves "redacts" into the content.
		var c map[string]any
		if err := json.Unmarshal(content, &c); err != nil {
			return "", fmt.Errorf("%w: content: %v", ErrBadInput, err)
		}
		c["redacts"] = req.Redacts
		raw, err := json.Marshal(c)
		if err != nil {
			return "", fmt.Errorf("%w: content: %v", ErrBadInput, err)
		}
		proto.Content = raw
	}
	ev, err := b.Build(proto, b.Node.cfg.DefaultRoomVersion)
	if err != nil {
		return "", err
	}
	if d := req.StickyDurationMS; d != nil {
		if *d < 0 || *d > MaxStickyDurationMS {
			return "", fmt.Errorf("%w: sticky duration %d ms", ErrInvalidParam, *d)
		}
		if ev, err = b.Node.WithStickyKey(ev, *d); err != nil {
			return "", err
		}
	}
	if err := b.Input(ev, InputOpts{TxnID: req.TxnID, TxnScope: req.TxnScope, DeviceID: req.DeviceID, Sender: req.Sender}); err != nil {
		// A local event is either accepted or refused, never stored as failed.
		if p, ok := b.ByID[ev.EventID()]; ok {
			b.drop(p)
		}
		return "", err
	}
	return ev.EventID(), nil
}

func (n *Node) TxnEvent(userID, deviceID string, scope TxnScope, txnID string) (string, error) {
	var id string
	err := n.DB.View(func(tx *kv.Txn) error {
		b, err := tx.Get(txnKey(userID, deviceID, scope, txnID))
		id = string(b)
		return err
	})
	return id, err
}

// RedactRequest is a local user's redaction of an event.
type RedactRequest struct {
	Sender   string
	DeviceID string
	RoomID   string
	// EventID is the event to redact.
	EventID string
	Reason  string
	// TxnID makes the redaction idempotent per device and TxnScope.
	TxnID string
	// TxnScope is the endpoint and path TxnID came with; left empty, it is
	// /redact's: RedactTxn(RoomID, EventID).
	TxnScope TxnScope
}

// Redact redacts an event. Only its sender or a user with the room's redact
// power level may; others get ErrForbidden.
func (n *Node) Redact(ctx context.Context, req RedactRequest) (string, error) {
	sender, roomID, eventID := req.Sender, req.RoomID, req.EventID
	target, err := n.Event(ctx, sender, eventID)
	if err != nil {
		return "", err
	}
	if target.PDU.RoomID().String() != roomID {
		return "", fmt.Errorf("event %s: %w", eventID, ErrNotFound)
	}
	if string(target.PDU.SenderID()) != sender {
		pl, err := n.powerLevels(ctx, roomID)
		if err != nil {
			return "", err
		}
		if pl.UserLevel(spec.SenderID(sender)) < pl.Redact {
			return "", fmt.Errorf("%w: you may only redact your own events", ErrForbidden)
		}
	}
	content := map[string]any{}
	if req.Reason != "" {
		content["reason"] = req.Reason
	}
	raw, _ := json.Marshal(content)
	scope := req.TxnScope
	if scope.Endpoint == "" {
		scope = RedactTxn(roomID, eventID)
	}
	return n.SendEvent(ctx, SendRequest{
		Sender: sender, DeviceID: req.DeviceID, RoomID: roomID, Type: spec.MRoomRedaction,
		Content: raw, TxnID: req.TxnID, TxnScope: scope, Redacts: eventID,
	})
}

// powerLevels returns the room's current power levels (defaults if unset).
func (n *Node) powerLevels(ctx context.Context, roomID string) (*gomatrixserverlib.PowerLevelContent, error) {
	ev, err := n.CurrentStateEvent(ctx, roomID, spec.MRoomPowerLevels, "")
	if errors.Is(err, ErrNotFound) {
		var pl gomatrixserverlib.PowerLevelContent
		pl.Defaults()
		return &pl, nil
	}
	if err != nil {
		return nil, err
	}
	return ev.PDU.PowerLevels()
}
