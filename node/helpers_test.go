package node

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
)

// newTestNode opens a node on a fresh directory with open registration and
// closes it when the test ends.
func newTestNode(t testing.TB) *Node {
	t.Helper()
	n, err := New(context.Background(), Config{
		DataDir: t.TempDir(), OpenRegistration: true, StorageProfile: "phone",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// register creates a user and returns its session.
func register(t testing.TB, n *Node, localpart string) Session {
	t.Helper()
	s, err := n.Register(context.Background(), RegisterRequest{Localpart: localpart, Password: "pw-" + localpart})
	if err != nil {
		t.Fatalf("Register %s: %v", localpart, err)
	}
	return s
}

// send sends an m.room.message with the given body.
func send(t testing.TB, n *Node, s Session, roomID, body string) string {
	t.Helper()
	c, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": body})
	id, err := n.SendEvent(context.Background(), SendRequest{
		Sender: s.UserID, DeviceID: s.DeviceID, RoomID: roomID, Type: "m.room.message", Content: c,
	})
	if err != nil {
		t.Fatalf("send %q: %v", body, err)
	}
	return id
}
