package syncapi

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// TestTypingAfterTokenIsNotRepeated pins the race TestSyncLongPollWakes can
// hit: a typing change committed after a response read its token, but before
// it read the room's typists. Sending it then would send it again in the
// next response, whose since is before it; it must wait for that one.
// It calls syncEphemeral directly, with the token the racing response read.
func TestTypingAfterTokenIsNotRepeated(t *testing.T) {
	ctx := context.Background()
	n, err := node.New(ctx, core.Config{
		DataDir: t.TempDir(), OpenRegistration: true, StorageProfile: "phone",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	var users []node.Session
	for _, name := range []string{"alice", "bob"} {
		s, err := n.Register(ctx, node.RegisterRequest{Localpart: name})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, s)
	}
	alice, bob := users[0], users[1]
	room, err := n.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPublicChat})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.ChangeMembership(ctx, core.MembershipChange{Sender: bob.UserID, RoomID: room, Target: bob.UserID, Membership: "join"}); err != nil {
		t.Fatal(err)
	}
	a := &api{n: n, budget: scanBudget}
	typingIn := func(since, to StreamToken, fresh bool) bool {
		t.Helper()
		req := &syncRequest{dev: node.Device{UserID: alice.UserID, DeviceID: alice.DeviceID}, filter: &Filter{}, joinedRooms: []string{room}}
		res := &syncResponse{Rooms: roomsResponse{Join: map[string]*joinedRoom{}}}
		if err := a.syncEphemeral(ctx, req, since, to, fresh, res); err != nil {
			t.Fatal(err)
		}
		jr := res.Rooms.Join[room]
		return jr != nil && len(jr.Ephemeral.Events) > 0
	}

	stale := a.currentToken()
	if err := n.SetTyping(ctx, bob.UserID, room, true, time.Minute); err != nil {
		t.Fatal(err)
	}
	if typingIn(stale, stale, false) {
		t.Error("incremental: a typing change after the response's token was sent with it")
	}
	if typingIn(StreamToken{}, stale, true) {
		t.Error("initial: a typing change after the response's token was sent with it")
	}
	now := a.currentToken()
	if !typingIn(stale, now, false) {
		t.Error("the next response does not carry the change")
	}
	if typingIn(now, a.currentToken(), false) {
		t.Error("the change is repeated after the response that carried it")
	}
}
