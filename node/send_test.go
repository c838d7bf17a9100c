package node

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// publicRoom creates a public room of the given version with alice (100) as
// creator and bob (0) joined.
func publicRoom(t testing.TB, n *Node, version string) (alice, bob Session, roomID string) {
	t.Helper()
	alice, bob = session(n, "alice"), session(n, "bob")
	roomID, err := n.CreateRoom(context.Background(), core.CreateRoomRequest{
		Creator: alice.UserID, Preset: core.PresetPublicChat, RoomVersion: version,
	})
	if err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	membership(t, n, bob, roomID, bob.UserID, spec.Join)
	return alice, bob, roomID
}

// TestDeleteDeviceForgetsTxns: deleting a device deletes its transaction ID
// records, those from before IDs were scoped too, more than one write's
// worth of them; another device's stay, and a new login with the same
// device ID starts afresh (the same transaction ID sends a new event).
func TestDeleteDeviceForgetsTxns(t *testing.T) {
	ctx := context.Background()
	n := newTestNodeWith(t, func(c *core.Config) { c.NoSyncWrites = true })
	alice := register(t, n, "alice")
	roomID, err := n.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID})
	if err != nil {
		t.Fatal(err)
	}
	req := core.SendRequest{Sender: alice.UserID, DeviceID: alice.DeviceID, RoomID: roomID, Type: "m.room.message",
		Content: json.RawMessage(`{"msgtype":"m.text","body":"hi"}`), TxnID: "t1"}
	first, err := n.SendEvent(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	laptop := req
	laptop.DeviceID = "LAPTOP"
	if _, err := n.SendEvent(ctx, laptop); err != nil {
		t.Fatal(err)
	}
	// Unscoped records (user, device, txn ID), as written before scoping.
	const old = 2*core.TxnSweepBatch + 1
	err = n.DB.Update(func(tx *kv.Txn) error {
		for i := range old {
			if err := tx.Set(kv.Key(core.TableTxn, alice.UserID, alice.DeviceID, fmt.Sprintf("old%d", i)), []byte("$x")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := countPrefix(t, n, kv.Key(core.TableTxn, alice.UserID, alice.DeviceID)); got != old+1 {
		t.Fatalf("%d records before deletion, want %d", got, old+1)
	}

	if err := n.DeleteDevice(ctx, alice.UserID, alice.DeviceID); err != nil {
		t.Fatal(err)
	}
	if got := countPrefix(t, n, kv.Key(core.TableTxn, alice.UserID, alice.DeviceID)); got != 0 {
		t.Fatalf("%d transaction records left of the deleted device", got)
	}
	if got := countPrefix(t, n, kv.Key(core.TableTxn, alice.UserID, "LAPTOP")); got != 1 {
		t.Fatalf("%d transaction records of the other device, want 1", got)
	}
	again, err := n.Login(ctx, "alice", "pw-alice", alice.DeviceID, "")
	if err != nil {
		t.Fatal(err)
	}
	req.DeviceID = again.DeviceID
	second, err := n.SendEvent(ctx, req)
	if err != nil || second == first {
		t.Fatalf("same txn ID on a new login with the old device ID: %q, %v; want a new event", second, err)
	}
}
