package core

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/matrix-org/gomatrixserverlib/spec"
)

// publicRoom creates a public room of the given version with alice (100) as
// creator and bob (0) joined.
func publicRoom(t testing.TB, n *Node, version string) (alice, bob Session, roomID string) {
	t.Helper()
	alice, bob = session(n, "alice"), session(n, "bob")
	roomID, err := n.CreateRoom(context.Background(), CreateRoomRequest{
		Creator: alice.UserID, Preset: PresetPublicChat, RoomVersion: version,
	})
	if err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	membership(t, n, bob, roomID, bob.UserID, spec.Join)
	return alice, bob, roomID
}

func TestSendTxnIdempotent(t *testing.T) {
	ctx := context.Background()
	n := newTestNodeWith(t, func(c *Config) { c.NoSyncWrites = true })
	alice, _, roomID := publicRoom(t, n, "")
	req := SendRequest{Sender: alice.UserID, DeviceID: "PHONE", RoomID: roomID, Type: "m.room.message",
		Content: json.RawMessage(`{"msgtype":"m.text","body":"once"}`), TxnID: "txn1"}

	pos := n.StreamPosition()
	first, err := n.SendEvent(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := n.SendEvent(ctx, req)
	if err != nil || again != first {
		t.Fatalf("retry: %q, %v; want %q", again, err, first)
	}
	if got := n.StreamPosition(); got != pos+1 {
		t.Fatalf("stream position %d -> %d, want one step", pos, got)
	}

	// The sending device sees its transaction ID; nobody else does.
	ev, err := n.Event(ctx, alice.UserID, first)
	if err != nil {
		t.Fatal(err)
	}
	if ce := ev.ClientEvent(ClientFormat{ForUser: alice.UserID, ForDevice: "PHONE"}); ce.Unsigned["transaction_id"] != "txn1" {
		t.Errorf("sending device: unsigned %v, want transaction_id", ce.Unsigned)
	}
	if ce := ev.ClientEvent(ClientFormat{ForUser: alice.UserID, ForDevice: "LAPTOP"}); ce.Unsigned["transaction_id"] != nil {
		t.Errorf("other device sees the transaction ID: %v", ce.Unsigned)
	}

	// Transaction IDs are per device.
	other := req
	other.DeviceID = "LAPTOP"
	second, err := n.SendEvent(ctx, other)
	if err != nil || second == first {
		t.Fatalf("same txn ID on another device: %q, %v; want a new event", second, err)
	}

	// Concurrent retries of one transaction: one event, whoever wins.
	req.TxnID = "txn2"
	pos = n.StreamPosition()
	ids := make([]string, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() { ids[i], errs[i] = n.SendEvent(ctx, req) })
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("concurrent retry %d: %q, %v; want %q", i, ids[i], errs[i], ids[0])
		}
	}
	if got := n.StreamPosition(); got != pos+1 {
		t.Fatalf("concurrent retries: stream position %d -> %d, want one step", pos, got)
	}
}

func TestRedaction(t *testing.T) {
	for _, version := range SupportedRoomVersions() {
		t.Run(string(version), func(t *testing.T) {
			ctx := context.Background()
			n := newTestNodeWith(t, func(c *Config) { c.NoSyncWrites = true })
			alice, bob, roomID := publicRoom(t, n, string(version))
			tests := []struct {
				name       string
				author     Session
				redacter   Session
				wantErr    error
				wantStrips bool
			}{
				{"sender redacts own", alice, alice, nil, true},
				{"member redacts own", bob, bob, nil, true},
				{"moderator redacts another's", bob, alice, nil, true},
				{"member redacts another's", alice, bob, ErrForbidden, false},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					target := send(t, n, tc.author, roomID, "secret "+tc.name)
					pos := n.StreamPosition()
					redID, err := n.Redact(ctx, RedactRequest{Sender: tc.redacter.UserID, DeviceID: tc.redacter.DeviceID, RoomID: roomID, EventID: target, Reason: "spam"})
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("Redact: %v, want %v", err, tc.wantErr)
					}
					if tc.wantErr != nil && n.StreamPosition() != pos {
						t.Errorf("refused redaction moved the stream")
					}
					expectRedacted(t, n, alice.UserID, target, redID, tc.wantStrips)
				})
			}

			// The auth rules (v3 and later) accept any member's redaction
			// event into the room; it must not be applied unless its sender
			// may redact the target.
			target := send(t, n, alice, roomID, "alice's")
			redID, err := n.SendEvent(ctx, SendRequest{Sender: bob.UserID, RoomID: roomID, Type: spec.MRoomRedaction,
				Content: json.RawMessage(`{}`), Redacts: target})
			if err != nil {
				t.Fatalf("bob's redaction event: %v", err)
			}
			if ev, err := n.Event(ctx, alice.UserID, redID); err != nil || ev.PDU.Redacts() != target {
				t.Fatalf("redaction event: %v, %v", ev, err)
			}
			expectRedacted(t, n, alice.UserID, target, "", false)

			// Unknown events and events of other rooms cannot be redacted.
			if _, err := n.Redact(ctx, RedactRequest{Sender: alice.UserID, RoomID: roomID, EventID: "$nosuchevent"}); !errors.Is(err, ErrNotFound) {
				t.Errorf("redact unknown event: %v", err)
			}
			_, _, other := publicRoom(t, n, string(version))
			if _, err := n.Redact(ctx, RedactRequest{Sender: alice.UserID, RoomID: other, EventID: target}); !errors.Is(err, ErrNotFound) {
				t.Errorf("redact an event through another room: %v", err)
			}
			expectRedacted(t, n, alice.UserID, target, "", false)
		})
	}
}

// expectRedacted checks whether target's content was stripped by redaction
// redID, as served and as stored.
func expectRedacted(t *testing.T, n *Node, viewer, target, redID string, stripped bool) {
	t.Helper()
	ev, err := n.Event(context.Background(), viewer, target)
	if err != nil {
		t.Fatal(err)
	}
	var content map[string]any
	if err := json.Unmarshal(ev.PDU.Content(), &content); err != nil {
		t.Fatal(err)
	}
	if !stripped {
		if ev.RedactedBy != "" || content["body"] == nil {
			t.Errorf("event redacted (by %q), content %v; want untouched", ev.RedactedBy, content)
		}
		return
	}
	if ev.RedactedBy != redID || len(content) != 0 || !ev.PDU.Redacted() {
		t.Errorf("redacted by %q, content %v, Redacted() %v; want by %s, empty content", ev.RedactedBy, content, ev.PDU.Redacted(), redID)
	}
	if ce := ev.ClientEvent(ClientFormat{}); ce.Unsigned["redacted_because"] == nil {
		t.Errorf("client event has no redacted_because: %v", ce.Unsigned)
	}
	// Also stripped on disk, not only on the way out.
	var stored struct {
		Content map[string]any `json:"content"`
	}
	if err := json.Unmarshal(storedRecord(t, n, target).JSON, &stored); err != nil || len(stored.Content) != 0 {
		t.Errorf("stored content %v, %v; want empty", stored.Content, err)
	}
}

// TestRedactionInOneBatch inputs a message and its sender's redaction in one
// batch, as one federation transaction may carry them: the message is stored
// already stripped.
func TestRedactionInOneBatch(t *testing.T) {
	n, d := failRoom(t)
	dave := d.user("dave")
	d.build("msg", dagEvent{Sender: dave, Type: "m.room.message", Content: map[string]any{"body": "oops"},
		Prev: []string{"A1"}, Auth: []string{"C", "A1", "Md"}})
	d.build("red", dagEvent{Sender: dave, Type: spec.MRoomRedaction, Content: map[string]any{}, Redacts: "msg",
		Prev: []string{"msg"}, Auth: []string{"C", "A1", "Md"}})
	for i, err := range d.input(n, "msg", "red") {
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	expectRedacted(t, n, d.user("alice"), d.id("msg"), d.id("red"), true)
}
