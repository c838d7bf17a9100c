package testnet

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// Register registers localpart on n as an admin with a logged-in device
// (what most multi-node tests want of their users).
func Register(ctx context.Context, tb testing.TB, n *node.Node, localpart string) node.Session {
	tb.Helper()
	return RegisterWith(ctx, tb, n, node.RegisterRequest{Localpart: localpart, Admin: true})
}

// RegisterWith registers an account on n as req asks.
func RegisterWith(ctx context.Context, tb testing.TB, n *node.Node, req node.RegisterRequest) node.Session {
	tb.Helper()
	s, err := n.Register(ctx, req)
	if err != nil {
		tb.Fatalf("register %s on %s: %v", req.Localpart, n.ServerName(), err)
	}
	return s
}

// CreateRoom creates a room on n as req asks and returns its ID.
func CreateRoom(ctx context.Context, tb testing.TB, n *node.Node, req core.CreateRoomRequest) string {
	tb.Helper()
	roomID, err := n.CreateRoom(ctx, req)
	if err != nil {
		tb.Fatalf("create room on %s: %v", n.ServerName(), err)
	}
	return roomID
}

// PublicRoom creates a public room on n with creator as its creator.
func PublicRoom(ctx context.Context, tb testing.TB, n *node.Node, creator string) string {
	tb.Helper()
	return CreateRoom(ctx, tb, n, core.CreateRoomRequest{Creator: creator, Preset: core.PresetPublicChat})
}

// SendText sends an m.text message with body to roomID on n as sender
// (from deviceID, which may be empty) and returns its event ID.
func SendText(ctx context.Context, tb testing.TB, n *node.Node, sender, deviceID, roomID, body string) string {
	tb.Helper()
	content, err := json.Marshal(struct {
		MsgType string `json:"msgtype"`
		Body    string `json:"body"`
	}{"m.text", body})
	if err != nil {
		tb.Fatal(err)
	}
	id, err := n.SendEvent(ctx, core.SendRequest{
		Sender: sender, DeviceID: deviceID, RoomID: roomID, Type: "m.room.message", Content: content,
	})
	if err != nil {
		tb.Fatalf("send on %s: %v", n.ServerName(), err)
	}
	return id
}
